"""Argument types and helpers every command module shares."""

from __future__ import annotations

import argparse
import textwrap


class FMT(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; option help rewrapped to the terminal, except lines indented by two
    spaces (tables, examples), which are kept as they are."""

    def _split_lines(self, text, width):
        out, para = [], []
        for line in text.splitlines():
            if line.startswith("  "):
                out += textwrap.wrap(" ".join(para), width)
                para = []
                out.append(line)
            else:
                para.append(line.strip())
        return out + textwrap.wrap(" ".join(para), width)


def progress(args) -> bool:
    """Progress bars unless --quiet."""
    return not getattr(args, "quiet", False)


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


def positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0 <= v < float("inf"):
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds >= 0")
    return v
