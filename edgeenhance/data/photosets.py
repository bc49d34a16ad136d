"""Folders of real photos as training data: a fixed train/validation split, photos held in memory
as 8-bit, and torch Datasets that crop, flip and synthesize exposure errors on the fly (in
DataLoader worker processes). Sample k is a pure function of (seed, k): a run resumed at step s
sees exactly the batches the uninterrupted run would have seen, whatever the number of workers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgeenhance.data.exposure import synthesize
from edgeenhance.errors import UserError

VAL_FRACTION = 0.15


def natural_key(path: Path):
    """'img_10' after 'img_9': frames numbered by scene stay together when split by name."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def photo_files(folder, split: str = "train", val_fraction: float = VAL_FRACTION) -> list[Path]:
    """Images under ``folder`` (and its sub-folders), split per folder by name: the last
    ``val_fraction`` of each folder is validation, never trained on."""
    from edgeenhance.data.imageio import list_images

    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder")
    folders = [root] + sorted(p for p in root.rglob("*") if p.is_dir())
    out = []
    for f in folders:
        files = sorted(list_images(f), key=natural_key)
        k = int(round(len(files) * val_fraction)) if len(files) >= 4 else 0
        out += {"train": files[:len(files) - k], "val": files[len(files) - k:], "all": files}[split]
    if not out:
        raise UserError(f"{root}: no images found for the '{split}' split")
    return out


def load_photos(files, max_side: int | None = None, progress: bool = False, desc: str = "loading photos",
                keep=None) -> list[np.ndarray]:
    """(H, W, 3) uint8 arrays (a quarter of float32's memory), optionally shrunk to ``max_side``;
    ``keep(img_float)`` can filter (e.g. only dark frames)."""
    from tqdm import tqdm

    from edgeenhance.data.imageio import read_image

    out = []
    for f in tqdm(files, desc=desc, unit="img", disable=not progress):
        img = read_image(f)
        if max_side:
            img = shrink(img, max_side)
        if keep is None or keep(img):
            out.append(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8))
    return out


def shrink(img: np.ndarray, max_side: int) -> np.ndarray:
    """Area-resample so that the longer side is at most ``max_side`` (0 or a smaller image: unchanged)."""
    import cv2

    h, w = img.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return img
    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.clip(cv2.resize(np.ascontiguousarray(img), size, interpolation=cv2.INTER_AREA), 0, 1)


def random_crop(img: np.ndarray, crop: int, rng: np.random.Generator, flips: bool = True, zoom: bool = True) -> np.ndarray:
    """A random square window scaled to ``crop`` x ``crop``, as float32 in [0, 1]. With ``zoom`` the
    window side is drawn (log-uniform) between ``crop`` and the photo's short side, so the network
    sees whole-frame views like the downscaled frame it gets when deployed, as well as native pixels."""
    import cv2

    h, w = img.shape[:2]
    if min(h, w) < crop:  # upscale small photos so a crop always fits
        s = crop / min(h, w)
        img = cv2.resize(img, (max(crop, round(w * s)), max(crop, round(h * s))), interpolation=cv2.INTER_LINEAR)
        h, w = img.shape[:2]
    side = crop
    if zoom and min(h, w) > crop:
        side = int(round(np.exp(rng.uniform(np.log(crop), np.log(min(h, w))))))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    out = img[y:y + side, x:x + side]
    if side != crop:
        out = cv2.resize(out, (crop, crop), interpolation=cv2.INTER_AREA)
    if flips and rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out, np.float32) / 255.0


def _chw(a: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


class _Stream:
    """Map-style dataset over an endless stream of samples: index k -> sample k."""

    def __init__(self, photos: list[np.ndarray], crop: int = 256, seed: int = 0, length: int = 10**9):
        if not photos:
            raise UserError("no photos to train on")
        self.photos, self.crop, self.seed, self.length = photos, crop, seed, length

    def __len__(self):
        return self.length

    def _rng(self, k: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, k])


class ExposurePairs(_Stream):
    """(badly exposed crop, original crop) pairs synthesized from well-exposed photos.
    ``kinds`` maps an exposure kind (under, over, normal) to its probability; ``highlights``: the
    probability that an under-exposed sample's highlights were brighter than the photo's white;
    ``ev_range``: the (lo, hi) EV of the badly exposed samples (None: each kind's default)."""

    def __init__(self, photos, crop: int = 256, seed: int = 0, length: int = 10**9, kinds=None,
                 highlights: float = 0.0, ev_range=None):
        super().__init__(photos, crop, seed, length)
        self.highlights, self.ev_range = highlights, ev_range
        kinds = kinds or {"under": 1.0}
        self.kinds, p = list(kinds), np.array(list(kinds.values()), np.float64)
        self.p = p / p.sum()

    def __getitem__(self, k: int):
        rng = self._rng(k)
        target = random_crop(self.photos[int(rng.integers(len(self.photos)))], self.crop, rng)
        kind = self.kinds[int(rng.choice(len(self.kinds), p=self.p))]
        bad, _ = synthesize(target, rng, kind, self.ev_range if kind != "normal" else None,
                            highlights=self.highlights if kind == "under" else 0.0)
        return _chw(bad), _chw(target)


class PhotoCrops(_Stream):
    """Random crops of real photos that have no target (for the zero-reference losses)."""

    def __getitem__(self, k: int):
        rng = self._rng(k)
        return _chw(random_crop(self.photos[int(rng.integers(len(self.photos)))], self.crop, rng))


def batches(dataset, batch: int, start_step: int = 0, workers: int = 0, rank: int = 0, processes: int = 1):
    """Endless batches ``start_step``, ``start_step + 1``, ... of ``dataset`` (batch s holds samples
    s*batch .. s*batch+batch-1), loaded by ``workers`` processes. With several training processes,
    process ``rank`` gets samples (s*processes + rank)*batch ...: the processes' batches s together are
    the global batch s of one process with ``batch * processes`` (samples are keyed by index, so the
    shares never overlap and every process draws different data)."""
    import torch
    from torch.utils.data import DataLoader

    steps = len(dataset) // (batch * processes) - start_step

    class _From(torch.utils.data.Sampler):
        def __iter__(self):
            for s in range(start_step, start_step + steps):
                first = (s * processes + rank) * batch
                yield from range(first, first + batch)

        def __len__(self):
            return steps * batch

    loader = DataLoader(dataset, batch_size=batch, sampler=_From(), num_workers=workers,
                        persistent_workers=workers > 0, prefetch_factor=4 if workers else None, drop_last=True,
                        worker_init_fn=_ignore_sigint if workers else None, pin_memory=torch.cuda.is_available())
    return iter(loader)


def _ignore_sigint(_worker_id):
    """Ctrl-C reaches the whole process group: a worker that died of it would fail the batch the
    training loop waits for before it can save and stop. (SIGTERM stays: DataLoader's shutdown uses it.)"""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def heldout_pairs(photos, n: int | None = None, kind: str = "under", ev_range=(-4.0, -2.0), seed: int = 0,
                  max_side: int = 512) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed (input, target) validation pairs from held-out photos, at most ``max_side`` pixels."""
    out = []
    for i, p in enumerate(photos[:n]):
        img = shrink(p.astype(np.float32) / 255.0, max_side)
        bad, _ = synthesize(img, np.random.default_rng([seed, 7919, i]), kind, ev_range)
        out.append((bad, img))
    return out
