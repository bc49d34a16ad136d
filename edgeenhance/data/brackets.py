"""Real under-exposure pairs from a folder of exposure brackets (multi-exposure frames of static
scenes, e.g. SICE): each dark frame is paired with the exposure fusion of its whole bracket.

The frames of a scene need not be grouped in the folder: consecutive frames (by natural name order)
whose rank-transformed luminance correlates (exposure changes a frame's values, hardly their order)
are one bracket. The target is Mertens et al.'s exposure fusion of the bracket (shadows from the bright
frames, highlights from the dark ones), as SICE's own references were made from fusion and HDR
results; a camera's real dark frame (its noise, tone curve, lamps) learns what a real photo needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeenhance.data.photosets import _chw, _Stream, photo_files, random_crop
from edgeenhance.errors import UserError

SAME_SCENE = 0.8  # rank correlation of two consecutive frames' luminance above which they are one bracket
_THUMB = 64


def _ranks(img: np.ndarray) -> np.ndarray:
    import cv2

    g = cv2.resize(np.ascontiguousarray(img.mean(axis=2, dtype=np.float32)), (_THUMB, _THUMB),
                   interpolation=cv2.INTER_AREA).ravel()
    r = np.empty(g.size, np.float64)
    r[g.argsort(kind="stable")] = np.arange(g.size)
    return r


def bracket_groups(frames: list[np.ndarray], same_scene: float = SAME_SCENE) -> list[list[int]]:
    """Indices of ``frames`` (in order) cut into runs of the same scene: a run continues while a frame
    has the previous one's size and its luminance ranks correlate with the previous frame's above
    ``same_scene``."""
    groups, prev = [], None
    for i, f in enumerate(frames):
        r = _ranks(f)
        same = (prev is not None and f.shape == frames[i - 1].shape
                and np.corrcoef(prev, r)[0, 1] > same_scene)
        if same:
            groups[-1].append(i)
        else:
            groups.append([i])
        prev = r
    return groups


def fuse_exposures(frames: list[np.ndarray]) -> np.ndarray:
    """Mertens exposure fusion of aligned uint8 RGB frames -> uint8 RGB."""
    import cv2

    bgr = [np.ascontiguousarray(f[..., ::-1]) for f in frames]
    fused = cv2.createMergeMertens().process(bgr)[..., ::-1]
    return np.round(np.clip(fused, 0, 1) * 255).astype(np.uint8)


def bracket_pairs(folder, split: str = "train", dark_max: float = 0.3, max_side: int = 1024,
                  progress: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """(dark frame, fusion of its bracket) uint8 pairs of ``folder``'s ``split`` (the split of
    ``photosets.photo_files``): every frame darker than mean luminance ``dark_max`` in a bracket of
    two frames or more. The last training bracket is dropped: it may continue into the held-out frames."""
    from tqdm import tqdm

    from edgeenhance.data.photosets import load_photos
    from edgeenhance.noref import mean_luminance

    frames = load_photos(photo_files(folder, split), max_side=max_side, progress=progress,
                         desc=f"loading {Path(folder).name} brackets")
    groups = bracket_groups(frames)
    if split == "train":
        groups = groups[:-1]
    groups = [g for g in groups if len(g) > 1]
    out = []
    for g in tqdm(groups, desc="fusing brackets", unit="bracket", disable=not progress):
        dark = [i for i in g if mean_luminance(frames[i].astype(np.float32) / 255) < dark_max]
        if dark:
            fused = fuse_exposures([frames[i] for i in g])
            out += [(frames[i], fused) for i in dark]
    if not out:
        raise UserError(f"--brackets {folder}: no frame darker than mean luminance {dark_max} with a bracket "
                        f"(consecutive frames of the same scene) in its '{split}' split")
    return out


class BracketPairs(_Stream):
    """Random crops (the same window, flip and zoom in both) of (dark frame, fused bracket) pairs."""

    def __getitem__(self, k: int):
        rng = self._rng(k)
        x, y = self.photos[int(rng.integers(len(self.photos)))]
        state = rng.bit_generator.state  # the same draws (window, zoom, flip) for both
        cx = random_crop(x, self.crop, rng)
        rng.bit_generator.state = state
        return _chw(cx), _chw(random_crop(y, self.crop, rng))
