"""Training and validation data from the renderer or from a dataset folder."""

from __future__ import annotations

from edgeenhance.data.datasets import load_images, load_pairs
from edgeenhance.data.layouts import MSEC_OVER, MSEC_UNDER, detect_layout, find_pairs, find_unpaired
from edgeenhance.data.synth import HELDOUT_SEED, render_domain, render_pairs
from edgeenhance.errors import UserError


def paired_data(data: str, layout: str | None, n: int, exposure: str, size: int, seed: int, val_n: int,
                skip_bad: bool = False, progress: bool = True):
    """(train pairs, val pairs) as float arrays. ``data`` is 'synthetic' or a dataset folder; for a
    folder, the last ``val_n`` pairs (sorted by name) are held out."""
    if data == "synthetic":
        train = render_pairs(range(seed, seed + n), exposure, (size, size), progress=progress)
        val = render_pairs(range(HELDOUT_SEED + seed, HELDOUT_SEED + seed + val_n), exposure, (size, size))
        return train, val
    layout = layout or detect_layout(data)
    if layout == "unpaired":
        raise UserError(f"{data}: an unpaired (trainA/trainB) folder has no targets; use --zero-reference "
                        "with a folder of photos, or a paired layout")
    exposures = {"under": MSEC_UNDER, "over": MSEC_OVER}.get(exposure) if layout == "msec" else None
    pairs = load_pairs(find_pairs(data, layout, strict=not skip_bad, exposures=exposures), skip_bad=skip_bad)
    if len(pairs) < 2:
        return pairs, pairs
    k = max(1, min(val_n, len(pairs) // 5))
    return pairs[:-k], pairs[-k:]


def is_photo_folder(data) -> bool:
    """A folder of plain photos (no dataset layout): exposure errors are synthesized from them."""
    from pathlib import Path

    from edgeenhance.data.imageio import list_images

    root = Path(data)
    if not root.is_dir():
        return False
    try:
        detect_layout(root)
        return False
    except UserError:
        return any(list_images(d) for d in [root, *(p for p in root.rglob("*") if p.is_dir())])


def unpaired_data(over: str, normal: str, n: int, size: int, seed: int, skip_bad: bool = False, progress: bool = True):
    """(over-exposed images, well-exposed images) from the renderer (disjoint scenes) or two folders."""
    if over == "synthetic" or normal == "synthetic":
        if not (over == normal == "synthetic"):
            raise UserError("--over and --normal must both be 'synthetic' or both be folders")
        a = render_domain(range(seed, seed + 2 * n, 2), "over", (size, size), progress=progress)
        b = render_domain(range(seed + 1, seed + 2 * n, 2), "normal", (size, size), progress=progress)
        return a, b
    from pathlib import Path

    from edgeenhance.data.imageio import list_images

    def folder(p):
        p = Path(p)
        if (p / "trainA").is_dir():
            raise UserError(f"{p}: looks like a trainA/trainB folder; pass --over {p}/trainA --normal {p}/trainB")
        if not p.is_dir():
            raise UserError(f"{p}: no such folder")
        files = list_images(p)
        if not files:
            raise UserError(f"{p}: no images found")
        return load_images(files, skip_bad)

    return folder(over), folder(normal)


def trainab(root: str, skip_bad=False):
    """Images of a trainA/trainB folder (A = over-exposed, B = well exposed)."""
    a, b = find_unpaired(root, strict=not skip_bad)
    return load_images(a, skip_bad), load_images(b, skip_bad)


def heldout_over_pairs(n: int, size: int = 256, seed: int = 0):
    return render_pairs(range(HELDOUT_SEED + 500_000 + seed, HELDOUT_SEED + 500_000 + seed + n), "over", (size, size))
