"""The `edgeenhance` command line: `edgeenhance X` is defined in `edgeenhance/cli/X.py` (a dash in a
command's name is an underscore in its module's), each module with an ``add(sub)`` that registers it.
Heavy libraries are imported inside the handlers so that `edgeenhance --help` stays fast."""

from __future__ import annotations

import argparse
import importlib
import sys

from edgeenhance import __version__
from edgeenhance.cli.args import parse_size, positive  # noqa: F401  (the CLI's argument types, re-exported)
from edgeenhance.errors import UserError

# the commands in the order `edgeenhance --help` lists them
COMMANDS = ("data", "train", "distill", "enhance", "eval", "info", "export", "quantize", "bench", "report",
            "gpu-report", "demo", "emulate")

EPILOG = """examples:
  edgeenhance data synth --kind paired --n 200 -o data/under
  edgeenhance train bilateral --data synthetic --steps 3000 -o runs/bilateral
  edgeenhance enhance photos/ -o enhanced/ --model bilateral
  edgeenhance eval --model bilateral --model lime --data synthetic-under
  edgeenhance export --model bilateral --target tflite --int8 -o export/
  edgeenhance bench export/*.tflite --size 1920x1080
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edgeenhance", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Train small photo enhancers, export them as int8 phone models, and check on numbers that "
                    "the phone model matches the float one and is fast enough for a camera preview.")
    p.add_argument("--version", action="version", version=f"edgeenhance {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"edgeenhance.cli.{name.replace('-', '_')}").add(sub)
    return p


def _check_outputs(args) -> None:
    """Refuse output paths that cannot be written before any work starts (not an hour into training)."""
    from pathlib import Path

    from edgeenhance.fileio import check_writable

    for name in ("out", "json", "csv", "sheet"):
        value = getattr(args, name, None)
        if isinstance(value, Path):
            check_writable(value)


def _rank() -> str:
    """' (rank R of N)' in a process torchrun started, else ''."""
    import os

    n = int(os.environ.get("WORLD_SIZE", "1") or 1)
    return f" (rank {os.environ.get('RANK', '?')} of {n})" if n > 1 else ""


def _lost_peer(e: BaseException) -> bool:
    """A collective that failed because another process of the job died (its own message says why)."""
    return type(e).__name__ in ("DistBackendError", "DistNetworkError") or "Connection closed by peer" in str(e) \
        or "Connection reset by peer" in str(e)


def _record(e: BaseException, line: str | None = None) -> None:
    """The error, where torchrun's failure summary reads it (its "Root Cause" then names it): a user
    error as its one line, anything else with its traceback."""
    import os

    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    if line is None:
        from torch.distributed.elastic.multiprocessing.errors import ErrorHandler

        ErrorHandler().record_exception(e)
        return
    import json
    import time

    with open(path, "w") as fh:  # the format ErrorHandler writes, without the stack
        json.dump({"message": {"message": line, "extraInfo": {"py_callstack": line,
                                                             "timestamp": str(int(time.time()))}}}, fh)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    if _rank() and not _rank().startswith(" (rank 0 "):  # under torchrun one process speaks: rank 0
        import os

        sys.stdout = open(os.devnull, "w")
    try:
        _check_outputs(args)
        code = int(args.func(args) or 0)
        if code > 128 and _rank():  # a trainer stopped by a signal saved its state: torchrun's summary says so
            _record(None, f"edgeenhance: stopped by signal {code - 128}; the training state is saved: run the "
                          "same command with --resume to continue")
        return code
    except UserError as e:
        print(f"edgeenhance: error{_rank()}: {e}", file=sys.stderr)
        if _rank():
            _record(e, f"edgeenhance: error: {e}")
        return 2
    except KeyboardInterrupt:
        print("edgeenhance: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if not _rank():
            raise
        # one process of a torchrun job failed: one line from it (after its traceback); the others,
        # whose collectives then fail, say only that they stopped because of it
        if _lost_peer(e):
            print(f"edgeenhance: stopped{_rank()}: another process of this job failed (see its error)",
                  file=sys.stderr)
        else:
            import traceback

            traceback.print_exc()
            print(f"edgeenhance: error{_rank()}: {type(e).__name__}: {e}", file=sys.stderr)
            _record(e)
        return 1
    finally:
        if "edgeenhance.train.distributed" in sys.modules:
            sys.modules["edgeenhance.train.distributed"].teardown()


if __name__ == "__main__":
    sys.exit(main())
