"""Loaders for the standard dataset layouts. Each returns file lists; nothing is decoded here.

| layout   | folders                                                        |
|----------|----------------------------------------------------------------|
| lol      | low/ + high/ (or sub-sets such as our485/, eval15/ holding them) |
| fivek    | input/ + expertC/                                              |
| msec     | INPUT_IMAGES/<name>_{N1.5,N1,0,P1,P1.5}.JPG + GT_IMAGES/<name>.* |
| paired   | input/ + target/ with matching file names                      |
| unpaired | trainA/ + trainB/ (testA/ + testB/ with split="test")          |
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from edgeenhance.data.imageio import IMAGE_SUFFIXES, list_images
from edgeenhance.errors import UserError

PAIRED_LAYOUTS = ("paired", "lol", "fivek", "msec")
LAYOUTS = PAIRED_LAYOUTS + ("unpaired",)
_MSEC_RE = re.compile(r"^(?P<name>.+)_(?P<tag>N1\.5|N1|0|P1|P1\.5)$")
MSEC_UNDER, MSEC_OVER = ("N1.5", "N1"), ("P1", "P1.5")


def _need_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise UserError(f"{path}: missing folder ({what})")
    return path


def _images(folder: Path, strict: bool) -> list[Path]:
    """Image files of a folder; other files are an error (strict) or a warning."""
    others = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
              and p.suffix.lower() not in IMAGE_SUFFIXES]
    if others:
        msg = f"{others[0]}: not an image file ({len(others)} such file(s) in {folder})"
        if strict:
            raise UserError(msg + "; remove them or pass --skip-bad")
        warnings.warn(msg + "; skipped", stacklevel=3)
    files = list_images(folder)
    if not files:
        raise UserError(f"{folder}: no images found")
    return files


def _match(inputs: list[Path], targets: list[Path], strict: bool, key=lambda p: p.stem) -> list[tuple[Path, Path]]:
    by_key = {p.stem: p for p in targets}
    pairs, missing = [], []
    for p in inputs:
        t = by_key.get(key(p))
        (pairs.append((p, t)) if t else missing.append(p))
    if missing:
        msg = f"{missing[0]}: no matching target in {targets[0].parent} ({len(missing)} unmatched input(s))"
        if strict:
            raise UserError(msg + "; pass --skip-bad to leave them out")
        warnings.warn(msg + "; skipped", stacklevel=3)
    if not pairs:
        raise UserError(f"no input/target pairs matched between {inputs[0].parent} and {targets[0].parent}")
    return pairs


def find_pairs(root, layout: str, strict: bool = True, exposures: tuple[str, ...] | None = None) -> list[tuple[Path, Path]]:
    """(input, target) file pairs of a paired dataset. ``exposures`` filters MSEC tags (e.g. MSEC_UNDER)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such dataset folder")
    if layout not in PAIRED_LAYOUTS:
        raise UserError(f"unknown paired layout '{layout}' (choose from {', '.join(PAIRED_LAYOUTS)})")
    if layout == "paired":
        return _match(_images(_need_dir(root / "input", "paired layout needs input/"), strict),
                      _images(_need_dir(root / "target", "paired layout needs target/"), strict), strict)
    if layout == "fivek":
        return _match(_images(_need_dir(root / "input", "FiveK layout needs input/"), strict),
                      _images(_need_dir(root / "expertC", "FiveK layout needs expertC/"), strict), strict)
    if layout == "lol":
        sets = [root] if (root / "low").is_dir() else sorted(d for d in root.iterdir() if (d / "low").is_dir())
        if not sets:
            raise UserError(f"{root}: missing folder low/ (LOL layout: low/ + high/, or sub-sets holding them)")
        return [pair for s in sets for pair in _match(
            _images(s / "low", strict), _images(_need_dir(s / "high", "LOL layout needs high/ beside low/"), strict), strict)]
    inputs = _images(_need_dir(root / "INPUT_IMAGES", "MSEC layout needs INPUT_IMAGES/"), strict)
    gts = _images(_need_dir(root / "GT_IMAGES", "MSEC layout needs GT_IMAGES/"), strict)
    bad = [p for p in inputs if not _MSEC_RE.match(p.stem)]
    if bad:
        msg = f"{bad[0]}: MSEC input names end in _N1.5, _N1, _0, _P1 or _P1.5"
        if strict:
            raise UserError(msg)
        warnings.warn(msg + "; skipped", stacklevel=2)
    inputs = [p for p in inputs if _MSEC_RE.match(p.stem)]
    if exposures:
        inputs = [p for p in inputs if _MSEC_RE.match(p.stem)["tag"] in exposures]
    if not inputs:
        raise UserError(f"{root / 'INPUT_IMAGES'}: no inputs with exposure tags {exposures}")
    return _match(inputs, gts, strict, key=lambda p: _MSEC_RE.match(p.stem)["name"])


def find_unpaired(root, split: str = "train", strict: bool = True) -> tuple[list[Path], list[Path]]:
    """(domain A files, domain B files) of a CycleGAN-style folder."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such dataset folder")
    a = _need_dir(root / f"{split}A", f"unpaired layout needs {split}A/ and {split}B/")
    b = _need_dir(root / f"{split}B", f"unpaired layout needs {split}A/ and {split}B/")
    return _images(a, strict), _images(b, strict)


def detect_layout(root) -> str:
    """Guess the layout of a dataset folder from its sub-folders."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such dataset folder")
    names = {p.name for p in root.iterdir() if p.is_dir()}
    for layout, need in (("msec", {"INPUT_IMAGES", "GT_IMAGES"}), ("fivek", {"input", "expertC"}),
                         ("paired", {"input", "target"}), ("lol", {"low", "high"}), ("unpaired", {"trainA", "trainB"})):
        if need <= names:
            return layout
    if any((root / n / "low").is_dir() for n in names):
        return "lol"
    raise UserError(f"{root}: cannot tell the dataset layout; expected one of: input/+target/, low/+high/, "
                    "input/+expertC/, INPUT_IMAGES/+GT_IMAGES/, trainA/+trainB/ (or pass --layout)")
