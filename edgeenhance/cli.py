"""The `edgeenhance` command line. Heavy libraries are imported inside the handlers so that
`edgeenhance --help` stays fast."""

from __future__ import annotations

import argparse
import sys

from edgeenhance import __version__
from edgeenhance.errors import UserError

EPILOG = """examples:
  edgeenhance data synth --kind paired --n 200 -o data/under
  edgeenhance train bilateral --data synthetic --steps 3000 -o runs/bilateral
  edgeenhance enhance photos/ -o enhanced/ --model bilateral
  edgeenhance eval --model bilateral --model lime --data synthetic-under
  edgeenhance export --model bilateral --target tflite --int8 -o export/
  edgeenhance bench export/*.tflite --size 1920x1080
"""


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' (or a single number for a square) -> (H, W)."""
    try:
        parts = [int(p) for p in text.lower().replace("*", "x").split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size; use HxW, e.g. 1080x1920") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size; use HxW, e.g. 1080x1920")
    return parts[0], parts[1]


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edgeenhance", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Train small photo enhancers, export them as int8 phone models, and check on numbers that "
                    "the phone model matches the float one and is fast enough for a camera preview.")
    p.add_argument("--version", action="version", version=f"edgeenhance {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    from edgeenhance import cli_commands as c

    c.add_data(sub, _positive, parse_size)
    c.add_train(sub, _positive)
    c.add_distill(sub, _positive)
    c.add_enhance(sub)
    c.add_eval(sub, _positive)
    c.add_info(sub, parse_size)
    from edgeenhance import cli_deploy as d

    d.add_all(sub, _positive, parse_size)
    return p


def _check_outputs(args) -> None:
    """Refuse output paths that cannot be written before any work starts (not an hour into training)."""
    from pathlib import Path

    from edgeenhance.fileio import check_writable

    for name in ("out", "json", "csv", "sheet"):
        value = getattr(args, name, None)
        if isinstance(value, Path):
            check_writable(value)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        _check_outputs(args)
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"edgeenhance: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgeenhance: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
