"""Evaluation of any enhancer on paired data: PSNR, SSIM, a no-reference score and time per image."""

from __future__ import annotations

import time

import numpy as np
import torch

from edgeenhance.metrics import exposedness, psnr, ssim


# Tile side for local models. student-small on a 48 MP photo, whole: 8.9 GB peak; in 768-pixel tiles
# 1.37 GB for the whole `enhance` run (1024: 1.47 GB; 512: 1.28 GB and slower), no slower than whole.
TILE = 768


def enhance_array(model, img: np.ndarray, device="cpu", tile: int = TILE, inplace: bool = False) -> np.ndarray:
    """Run any model (torch module or LIME) on one (H, W, 3) image.

    A model with a ``receptive_radius`` (one whose output pixel sees only its neighbourhood) runs an image
    larger than ``tile`` in tiles that overlap by that radius, so memory stays bounded; the output is the
    untiled one, since each tile's uncertain border is cropped away. ``tile=0`` never tiles. ``inplace``:
    tiled output may be written over ``img`` (a float32 array), which saves a full-size copy of a big photo."""
    if hasattr(model, "enhance"):
        return model.enhance(img)
    h, w = img.shape[:2]
    m = getattr(model, "pad_multiple", 1)
    ph, pw = (-h) % m, (-w) % m
    pad_mode = "reflect" if min(h, w) > max(ph, pw) else "edge"
    radius = getattr(model, "receptive_radius", None)
    if radius is not None and tile and max(h, w) > tile:
        writable = inplace and img.dtype == np.float32 and img.flags.writeable
        out = img if writable else np.empty((h, w, 3), np.float32)
        return _enhance_tiled(model, img, device, tile, radius, m, pad_mode, out)
    if ph or pw:  # reflect-pad to what the strided network takes, crop back afterwards
        img = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode=pad_mode)
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].to(device)
        return model(x)[0].float().cpu().numpy().transpose(1, 2, 0)[:h, :w]


def _enhance_tiled(model, img, device, tile, radius, m, pad_mode, out):
    """``enhance_array`` in tiles of the padded image, a band of rows at a time, into ``out``. Tile origins
    and overlaps are multiples of ``pad_multiple``, so every tile sees the strided layers' grid of the whole
    image; tiles at the bottom and right get the same padding as the whole image would. Output rows
    wait until no later band reads those input rows, so ``out`` may be ``img``."""
    h, w = img.shape[:2]
    hp, wp = h + (-h) % m, w + (-w) % m
    step = max(m, tile // m * m)
    margin = -(-radius // m) * m
    pending = []  # (first row, output rows) not yet in ``out``

    def flush(until):  # write the pending rows above ``until``; keep a copy of the rest, not its whole band
        while pending and pending[0][0] < until:
            r, rows = pending.pop(0)
            n = min(len(rows), until - r)
            out[r:r + n] = rows[:n]
            if n < len(rows):
                pending.insert(0, (r + n, rows[n:].copy()))

    with torch.no_grad():
        for y0 in range(0, hp, step):  # y0 < h: the padding is shorter than one step
            y1, ya, yb = min(y0 + step, h), max(0, y0 - margin), min(hp, y0 + step + margin)
            band = np.empty((y1 - y0, w, 3), np.float32)
            for x0 in range(0, wp, step):
                x1, xa, xb = min(x0 + step, w), max(0, x0 - margin), min(wp, x0 + step + margin)
                win = img[ya:min(yb, h), xa:min(xb, w)]
                if yb > h or xb > w:
                    win = np.pad(win, ((0, max(0, yb - h)), (0, max(0, xb - w)), (0, 0)), mode=pad_mode)
                x = torch.from_numpy(np.ascontiguousarray(win.transpose(2, 0, 1)))[None].to(device)
                y = model(x)[0, :, y0 - ya:y1 - ya, x0 - xa:x1 - xa]
                band[:, x0:x1] = y.float().cpu().numpy().transpose(1, 2, 0)
            pending.append((y0, band))
            del band
            flush(y1 - margin)  # the next band reads from y1 - margin on
    flush(h)
    return out


def evaluate(model, pairs, device="cpu", progress: bool = False, desc: str = "evaluating") -> dict:
    """Mean PSNR/SSIM against targets, mean exposedness (no-reference) and mean seconds per image."""
    from tqdm import tqdm

    rows, times = [], []
    for x, y in tqdm(pairs, desc=desc, unit="img", disable=not progress):
        t0 = time.perf_counter()
        out = enhance_array(model, x, device)
        times.append(time.perf_counter() - t0)
        rows.append((psnr(out, y), ssim(out, y), exposedness(out)))
    a = np.array(rows)
    return {"psnr": float(a[:, 0].mean()), "ssim": float(a[:, 1].mean()), "exposedness": float(a[:, 2].mean()),
            "sec_per_image": float(np.mean(times)), "n": len(pairs)}


def evaluate_input(pairs) -> dict:
    """The same scores for the unprocessed input (the 'do nothing' row)."""
    a = np.array([(psnr(x, y), ssim(x, y), exposedness(x)) for x, y in pairs])
    return {"psnr": float(a[:, 0].mean()), "ssim": float(a[:, 1].mean()), "exposedness": float(a[:, 2].mean()),
            "sec_per_image": 0.0, "n": len(pairs)}


def fast_enhance(model, img: np.ndarray, device="cpu", inplace: bool = False) -> np.ndarray:
    """Like ``enhance_array``, through the path the model deploys as where it has its own
    (``enhance_deployed``: the bilateral model's low-res network + fused slicing, about 40x faster
    at 12 MP with the same numbers)."""
    deployed = getattr(model, "enhance_deployed", None)
    out = deployed(img, device) if deployed is not None else None
    return enhance_array(model, img, device, inplace=inplace) if out is None else out


NOREF_KEYS = ("niqe", "loe", "mean_lum", "dark_lift", "new_clipped", "clipped_before", "clipped_after", "bright_drop")


def _mean_rows(rows: list[dict]) -> dict:
    out = {}
    for k in NOREF_KEYS:
        vals = [r[k] for r in rows if r[k] is not None]
        out[k] = float(np.mean(vals)) if vals else None
    return out


def evaluate_noref(model, images, device="cpu", progress: bool = False, desc: str = "evaluating",
                   with_niqe: bool = True, keep_outputs: bool | int = False) -> dict:
    """Mean no-reference scores (``edgeenhance.noref.scores``) of a model on photos without targets,
    plus sec_per_image and n. ``keep_outputs``: True (all) or a count of leading outputs to return
    under "outputs", e.g. for a contact sheet."""
    from tqdm import tqdm

    from edgeenhance.noref import scores

    keep = len(images) if keep_outputs is True else int(keep_outputs)
    rows, times, outputs = [], [], []
    if len(images):  # untimed warm-up: the first call compiles (or loads) the slicing kernel
        fast_enhance(model, np.ascontiguousarray(images[0][:32, :32]), device)
    for i, x in enumerate(tqdm(images, desc=desc, unit="img", disable=not progress)):
        t0 = time.perf_counter()
        out = fast_enhance(model, x, device)
        times.append(time.perf_counter() - t0)
        out = np.clip(np.nan_to_num(out, nan=0.0), 0, 1)  # scored as it would be saved
        rows.append(scores(x, out, with_niqe))
        if i < keep:
            outputs.append(out)
    res = {**_mean_rows(rows), "sec_per_image": float(np.mean(times)), "n": len(images)}
    if keep_outputs:
        res["outputs"] = outputs
    return res


def evaluate_noref_input(images, with_niqe: bool = True) -> dict:
    """The no-reference row of the unprocessed input ('do nothing'): its NIQE, brightness and clipping."""
    from edgeenhance.niqe import niqe
    from edgeenhance.noref import clipped_fraction, mean_luminance

    rows = [{"niqe": niqe(x) if with_niqe else None, "loe": 0.0, "mean_lum": mean_luminance(x), "dark_lift": 0.0,
             "new_clipped": 0.0, "clipped_before": clipped_fraction(x), "clipped_after": clipped_fraction(x),
             "bright_drop": 0.0} for x in images]
    return {**_mean_rows(rows), "sec_per_image": 0.0, "n": len(images)}


def load_folder(folder, n: int | None = None, max_side: int = 0, skip_bad: bool = False,
                progress: bool = False) -> tuple[list, list[np.ndarray]]:
    """(paths, images) of the first ``n`` images of a plain folder (sorted by name), each shrunk so that
    its longer side is at most ``max_side`` (0: full size). Unreadable files raise unless ``skip_bad``."""
    import warnings
    from pathlib import Path

    from tqdm import tqdm

    from edgeenhance.data.imageio import list_images, read_image
    from edgeenhance.data.photosets import shrink
    from edgeenhance.errors import UserError

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder")
    files = list_images(folder)
    if not files:
        raise UserError(f"{folder}: no images found (and no dataset layout such as input/+target/ or low/+high/)")
    paths, images = [], []
    for f in tqdm(files[:n] if n else files, desc="loading", unit="img", disable=not progress):
        try:
            img = read_image(f)
        except UserError as e:
            if not skip_bad:
                raise UserError(f"{e}; pass --skip-bad to leave it out") from None
            warnings.warn(f"{e}; skipped", stacklevel=2)
            continue
        paths.append(f)
        images.append(shrink(img, max_side))
    if not images:
        raise UserError(f"{folder}: none of the images could be read")
    return paths, images

