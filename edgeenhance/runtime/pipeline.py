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


class GridPipeline:
    """The bilateral ``grid`` form as deployed: resize the photo to the network's low resolution,
    run the network for the grid, then slice it at full resolution in one fused pass."""

    def __init__(self, engine: Engine, guide: dict, lowres: int):
        self.engine, self.guide, self.lowres, self.timings = engine, guide, lowres, {}
        # the export-time channel normalization, undone per frame: grid = out / scale + offset
        self.grid_scale = np.asarray(guide["grid_scale"], np.float32) if "grid_scale" in guide else None
        self.grid_offset = np.asarray(guide["grid_offset"], np.float32) if "grid_scale" in guide else None

    def __call__(self, img: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        low = resize_bilinear(img, (self.lowres, self.lowres))
        t1 = time.perf_counter()
        grid = self.engine.run_hwc(low)  # (g, g, C)
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
        if not manifest_entry or "guide" not in manifest_entry.get("extras", {}):
            raise UserError(f"{engine.name}: a bilateral grid model needs its manifest.json beside it "
                            "(the guide weights for slicing are stored there)")
        return GridPipeline(engine, manifest_entry["extras"]["guide"], int(engine.input_shape[2]))
    return ImagePipeline(engine)
