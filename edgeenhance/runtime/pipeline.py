"""End-to-end runners: a plain engine, or the bilateral grid form (resize -> network -> fused slicing)."""

from __future__ import annotations

import time

import numpy as np

from edgeenhance.runtime.engines import Engine
from edgeenhance.runtime.fused_slice import fused_slice, resize_bilinear


class ImagePipeline:
    """Runs an image-to-image engine on (H, W, 3) photos; ``timings`` holds the last call's parts."""

    def __init__(self, engine: Engine):
        self.engine, self.timings = engine, {}

    def __call__(self, img: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.engine.run_hwc(img)
        self.timings = {"network": time.perf_counter() - t0}
        return np.ascontiguousarray(out)


MAX_BINS, MAX_GUIDE_HIDDEN = 64, 256


def _array(value, ndim: int) -> np.ndarray | None:
    try:
        a = np.asarray(value, np.float64)
    except (TypeError, ValueError, OverflowError):
        return None
    return a if a.ndim == ndim and a.size and np.isfinite(a).all() else None


def check_guide(g, where: str = "manifest.json") -> None:
    """The slicing parameters of a grid file, checked against bounds: the compiled slicing pass indexes
    memory with them (a crafted ``bins`` would read out of bounds)."""
    from edgeenhance.errors import UserError

    def bad(why):
        raise UserError(f"{where}: extras.guide {why}")

    if not isinstance(g, dict):
        bad("is missing: a bilateral grid model needs the guide weights for slicing (export --form grid writes them)")
    bins = g.get("bins")
    if not (isinstance(bins, int) and not isinstance(bins, bool) and 2 <= bins <= MAX_BINS):
        bad(f"'bins' must be a whole number from 2 to {MAX_BINS}")
    w1 = _array(g.get("w1"), 2)
    if w1 is None or w1.shape[1] != 3 or not 1 <= w1.shape[0] <= MAX_GUIDE_HIDDEN:
        bad(f"'w1' must be finite numbers, (hidden, 3) with hidden 1..{MAX_GUIDE_HIDDEN}")
    hidden = w1.shape[0]
    if g.get("guide", "mlp") not in ("mlp", "linear"):
        bad("'guide' must be 'mlp' (the default) or 'linear'")
    if g.get("guide") == "linear" and hidden != 1:
        bad("'w1' of a linear guide must be one row of 3 weights")
    for key, shape in (("b1", (hidden,)), ("w2", (1, hidden)), ("b2", (1,))):
        a = _array(g.get(key), len(shape))
        if a is None or a.shape != shape:
            bad(f"'{key}' must be finite numbers of shape {shape}")
    m = g.get("min_illumination", 0.05)
    if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 < m <= 1:
        bad("'min_illumination' must be a number in (0, 1]")
    if ("grid_scale" in g) != ("grid_offset" in g):
        bad("needs both 'grid_scale' and 'grid_offset' or neither")
    for key in ("grid_scale", "grid_offset"):
        if key in g:
            a = _array(g[key], 1)
            if a is None or a.shape != (12 * bins,) or (key == "grid_scale" and not np.all(a)):
                none_zero = ", none zero" if key == "grid_scale" else ""
                bad(f"'{key}' must be {12 * bins} finite numbers (12 per bin){none_zero}")


class GridPipeline:
    """The bilateral ``grid`` form as deployed: resize the photo to the network's low resolution,
    run the network for the grid, then slice it at full resolution in one fused pass."""

    def __init__(self, engine: Engine, guide: dict, lowres: int):
        check_guide(guide, engine.name)
        self.engine, self.guide, self.lowres, self.timings = engine, guide, lowres, {}
        # the export-time channel normalization, undone per frame: grid = out / scale + offset
        self.grid_scale = np.asarray(guide["grid_scale"], np.float32) if "grid_scale" in guide else None
        self.grid_offset = np.asarray(guide["grid_offset"], np.float32) if "grid_scale" in guide else None

    def __call__(self, img: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        low = resize_bilinear(img, (self.lowres, self.lowres))
        t1 = time.perf_counter()
        grid = self.engine.run_hwc(low)  # (g, g, C)
        if grid.ndim != 3 or grid.shape[2] != 12 * int(self.guide["bins"]):
            from edgeenhance.errors import UserError

            raise UserError(f"{self.engine.name}: the network gives {grid.shape[-1]} grid channels, but its manifest "
                            f"entry's guide has {self.guide['bins']} bins ({12 * int(self.guide['bins'])} channels)")
        if self.grid_scale is not None:
            grid = grid / self.grid_scale + self.grid_offset
        grid = grid.transpose(2, 0, 1)  # a view: fused_slice works channel-last again without a copy
        t2 = time.perf_counter()
        out = fused_slice(img, grid, self.guide)
        t3 = time.perf_counter()
        self.timings = {"resize": t1 - t0, "network": t2 - t1, "slicing": t3 - t2}
        return out


def make_pipeline(engine: Engine, manifest_entry: dict | None = None):
    """The right pipeline for an engine: grid engines need the guide from the export manifest."""
    from edgeenhance.errors import UserError

    if engine.output_kind == "grid":
        if not manifest_entry or "guide" not in (manifest_entry.get("extras") or {}):
            raise UserError(f"{engine.name}: a bilateral grid model needs its manifest.json beside it, listing this "
                            "file (the guide weights for slicing are stored there)")
        return GridPipeline(engine, manifest_entry["extras"]["guide"], int(engine.input_shape[2]))
    return ImagePipeline(engine)
