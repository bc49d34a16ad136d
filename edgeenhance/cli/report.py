"""`edgeenhance report`: an HTML report from bench results."""

from __future__ import annotations

from pathlib import Path


def add(sub):
    r = sub.add_parser("report", help="HTML report from bench results")
    r.add_argument("results", nargs="+", type=Path)
    r.add_argument("-o", "--out", type=Path, required=True)
    r.set_defaults(func=cmd_report)


def cmd_report(a):
    from edgeenhance.runtime.report import write_report

    print(f"report written to {write_report(a.results, a.out)}")
