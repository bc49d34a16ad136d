"""`edgeenhance bench`: latency, memory and accuracy of model files, on this host or a phone."""

from __future__ import annotations

from pathlib import Path

from edgeenhance.cli.args import FMT, parse_size, positive
from edgeenhance.errors import UserError


def add(sub):
    b = sub.add_parser("bench", formatter_class=FMT, help="latency, memory and accuracy of model files",
                       description="Benchmark model files in their real runtimes (each in a fresh process), next to\n"
                                   "the PyTorch float reference of the model they were exported from.\n"
                                   "With --device adb[:SERIAL], run TFLite files on an Android phone.")
    b.add_argument("files", nargs="+", type=Path)
    b.add_argument("--size", type=parse_size, default=(1080, 1920), help="photo size HxW (default 1080x1920)")
    b.add_argument("--threads", default="2", help="threads, e.g. 2 or 1,2,4 (default 2)")
    b.add_argument("--runs", type=positive, default=10)
    b.add_argument("--warmup", type=positive, default=2)
    b.add_argument("--no-reference", action="store_true", help="skip the PyTorch float reference and accuracy")
    b.add_argument("--device", default="host", help="host (default) or adb[:SERIAL]")
    b.add_argument("--delegate", default="cpu", help="adb: cpu,xnnpack,gpu,nnapi (comma list)")
    b.add_argument("--benchmark-binary", type=Path, help="adb: path to TFLite's benchmark_model for the phone")
    b.add_argument("--json", type=Path)
    b.add_argument("--csv", type=Path)
    b.add_argument("--quiet", action="store_true")
    b.set_defaults(func=cmd_bench)


def _threads(text: str) -> list[int]:
    try:
        t = [int(x) for x in str(text).split(",") if x]
    except ValueError:
        raise UserError(f"--threads: '{text}' is not a number or comma list") from None
    if not t or min(t) < 1:
        raise UserError("--threads: give positive numbers, e.g. 2 or 1,2,4")
    return t


def cmd_bench(a):
    from edgeenhance.fileio import write_json
    from edgeenhance.runtime.bench import bench, format_table, write_csv

    threads = _threads(a.threads)
    if a.device != "host":
        from edgeenhance.runtime.adb import PhoneBench, bench_adb

        return bench_adb(PhoneBench(a.files, a.device, a.delegate, a.benchmark_binary, a.runs, a.warmup,
                                    not a.no_reference, a.json), threads)
    results = None
    for t in threads:
        r = bench(a.files, a.size, t, a.runs, a.warmup, not a.no_reference, not a.quiet)
        print(format_table(r))
        if results is None:
            results = r
        else:
            results["results"] += r["results"]
    if a.json:
        write_json(a.json, results)
    if a.csv:
        write_csv(a.csv, results)
    errors = [r for r in results["results"] if "error" in r]
    files = [r for r in results["results"] if r.get("format") != "torch" and not r.get("reference")]
    if files and all(r.get("user_error") for r in files):  # nothing measured, and why is the user's to fix
        raise UserError("\n".join(dict.fromkeys(r["error"] for r in files)))
    return 1 if errors else 0
