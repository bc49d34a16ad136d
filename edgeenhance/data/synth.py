"""Synthetic exposure data: paired (badly exposed -> well exposed) and unpaired domains,
from the procedural renderer or from a folder of good photos."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from edgeenhance.data.camera import Camera
from edgeenhance.data.scenes import random_scene, render

# Exposure offsets (stops) of each synthetic kind of input.
EV_RANGES = {"under": (-5.0, -2.0), "over": (1.5, 3.0)}
MSEC_EVS = {"N1.5": -1.5, "N1": -1.0, "0": 0.0, "P1": 1.0, "P1.5": 1.5}


def _camera(rng: np.random.Generator, look: np.random.Generator, ev: float, exposure: str) -> Camera:
    """The capturing camera: its tone curve comes from ``look`` (shared with the target), its
    sensor noise from the ISO it had to use."""
    gamma = 0.0 if look.random() < 0.5 else float(look.uniform(1.9, 2.5))
    contrast = float(look.uniform(1.3, 1.8))
    wb = (1.0, 1.0, 1.0)
    iso = 100.0
    if exposure == "under":
        wb = tuple(float(g) for g in rng.uniform(0.95, 1.05, 3))
        iso = float(2 ** rng.uniform(np.log2(800), np.log2(6400)))  # low light: high ISO
    # A small pixel: ~20k electrons at sensor white at ISO 100 and ~3 electrons of read noise;
    # gain divides the electrons that white stands for, so both noises grow with ISO.
    full_well = 2e6 / iso * float(rng.uniform(0.7, 1.4))
    read_e = float(rng.uniform(2.0, 4.0))
    return Camera(ev=ev, wb_gains=wb, gamma=gamma, contrast=contrast, full_well=full_well, read_noise=read_e / full_well)


def render_pair(seed: int, exposure: str = "under", size=(256, 256)) -> tuple[np.ndarray, np.ndarray]:
    """One scene, captured badly exposed (``under`` or ``over``) and well exposed: (input, target).

    The exposure offset stands for the light source's power relative to the camera's metering:
    a dim lamp gives a dark noisy frame, a strong sun clipped highlights. Both go through the same
    tone curve. The target depends on the seed only, so the under and over inputs of one seed share it.
    """
    rng = np.random.default_rng([seed, 1 if exposure == "under" else 2])
    look = np.random.default_rng([seed, 0])  # response curve: shared by input and target
    radiance = render(random_scene(seed), size)
    ev = float(rng.uniform(*EV_RANGES[exposure]))
    cam = _camera(rng, look, ev, exposure)
    bad = cam.capture(radiance, rng)
    good_cam = Camera(ev=0.0, gamma=cam.gamma, contrast=cam.contrast, full_well=20000.0, read_noise=0.0002)
    good = good_cam.capture(radiance, np.random.default_rng([seed, 3]))
    return bad, good


def render_single(seed: int, exposure: str, size=(256, 256)) -> np.ndarray:
    """One image of one domain: ``normal``, ``under`` or ``over``."""
    if exposure == "normal":
        return render_pair(seed, "under", size)[1]
    return render_pair(seed, exposure, size)[0]


def _job(args):
    kind, seed, exposure, size, out, name = args
    from edgeenhance.data.imageio import write_image

    if kind == "paired":
        bad, good = render_pair(seed, exposure, size)
        write_image(out / "input" / name, bad)
        write_image(out / "target" / name, good)
    else:
        domain, exp = ("trainA", "over") if exposure == "A" else ("trainB", "normal")
        write_image(out / domain / name, render_single(seed, exp, size))
    return name


def write_dataset(out: Path, kind: str, n: int, exposure: str = "under", size=(256, 256), seed: int = 0,
                  workers: int | None = None, progress: bool = True) -> Path:
    """Write a dataset in the plain layouts: ``paired`` -> input/ + target/; ``unpaired`` ->
    trainA/ (over-exposed) + trainB/ (well exposed), rendered from disjoint scenes."""
    from tqdm import tqdm

    out = Path(out)
    if kind == "paired":
        jobs = [("paired", seed + i, exposure, size, out, f"{i:05d}.png") for i in range(n)]
    else:
        # Disjoint scenes: domain A takes even seeds, domain B odd ones.
        jobs = [("unpaired", seed + 2 * i, "A", size, out, f"{i:05d}.png") for i in range(n)]
        jobs += [("unpaired", seed + 2 * i + 1, "B", size, out, f"{i:05d}.png") for i in range(n)]
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    bar = tqdm(total=len(jobs), desc=f"rendering {kind}", unit="img", disable=not progress)
    if workers <= 1:
        for j in jobs:
            _job(j)
            bar.update()
    else:
        with ProcessPoolExecutor(workers) as ex:
            for _ in ex.map(_job, jobs, chunksize=8):
                bar.update()
    bar.close()
    return out


def exposure_errors_from_folder(src: Path, out: Path, seed: int = 0, progress: bool = True) -> Path:
    """MSEC-style pairs from good photos: INPUT_IMAGES/<name>_{N1.5,N1,0,P1,P1.5}.JPG + GT_IMAGES/<name>.jpg."""
    from tqdm import tqdm

    from edgeenhance.data.exposure import capture, fixed_exposure
    from edgeenhance.data.imageio import list_images, read_image, write_image
    from edgeenhance.errors import UserError

    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise UserError(f"{src}: no such folder")
    files = list_images(src)
    if not files:
        raise UserError(f"{src}: no images found (looked for .png/.jpg/.jpeg/.bmp/.tif/.webp)")
    for i, f in enumerate(tqdm(files, desc="re-exposing", unit="img", disable=not progress)):
        img = read_image(f)
        write_image(out / "GT_IMAGES" / f"{f.stem}.jpg", img)
        for tag, ev in MSEC_EVS.items():
            rng = np.random.default_rng([seed, i, int(ev * 10) + 100])
            write_image(out / "INPUT_IMAGES" / f"{f.stem}_{tag}.JPG", capture(img, fixed_exposure(ev), rng))
    return out


def _pair_job(args):
    return render_pair(*args)


def _single_job(args):
    return render_single(*args)


def render_pairs(seeds, exposure: str = "under", size=(256, 256), workers: int | None = None, progress: bool = False):
    """In-memory (input, target) pairs for a list of scene seeds, rendered in parallel."""
    return _parallel(_pair_job, [(s, exposure, size) for s in seeds], workers, progress, f"rendering {exposure} pairs")


def render_domain(seeds, exposure: str, size=(256, 256), workers: int | None = None, progress: bool = False):
    """In-memory images of one domain (``normal``, ``under``, ``over``)."""
    return _parallel(_single_job, [(s, exposure, size) for s in seeds], workers, progress, f"rendering {exposure}")


def _parallel(fn, jobs, workers, progress, desc):
    from tqdm import tqdm

    workers = workers or min(len(jobs), os.cpu_count() or 1)
    if workers <= 1 or len(jobs) < 4:
        return [fn(j) for j in tqdm(jobs, desc=desc, unit="img", disable=not progress)]
    with ProcessPoolExecutor(workers) as ex:
        return list(tqdm(ex.map(fn, jobs, chunksize=4), total=len(jobs), desc=desc, unit="img", disable=not progress))


# Seeds of synthetic held-out data never overlap training seeds (training uses 0 .. 999_999).
HELDOUT_SEED = 1_000_000
