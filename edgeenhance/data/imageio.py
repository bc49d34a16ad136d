"""Reading and writing photos as float32 RGB in [0, 1], keeping what a user expects of their files.

8- and 16-bit, grayscale, RGBA (alpha kept aside and restored) and EXIF orientation are handled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeenhance.errors import UserError
from edgeenhance.fileio import atomic_path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass
class ImageInfo:
    """What to restore on output: bit depth, original channel layout and the alpha plane."""

    bit_depth: int = 8
    mode: str = "RGB"  # "RGB", "L" or "RGBA"
    alpha: np.ndarray | None = None


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if is_image_file(p))


def read_image(path, with_info: bool = False):
    """Read an image as an (H, W, 3) float32 array in [0, 1] (RGB, EXIF orientation applied)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected an image file")
    try:
        with Image.open(path) as im:
            # Pillow decodes 16-bit RGB PNGs to 8 bit: spot them from the tile before decoding.
            sixteen_bit_rgb = any(";16" in str(t.args) for t in (im.tile or [])) and im.mode in ("RGB", "RGBA")
            im.load()
            if im.format == "PNG" and sixteen_bit_rgb:
                arr, info = _read_png16(path)
            else:
                im = ImageOps.exif_transpose(im)
                arr, info = _from_pil(im)
    except UnidentifiedImageError:
        raise UserError(f"{path}: not a readable image (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise UserError(f"{path}: cannot read image ({e})") from None
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise UserError(f"{path}: image is empty")
    return (arr, info) if with_info else arr


def _from_pil(im):
    info = ImageInfo()
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im).astype(np.float32)
        maxv = 65535.0 if a.max(initial=0) > 255 or im.mode.startswith("I;16") else 255.0
        info.bit_depth, info.mode = (16 if maxv > 255 else 8), "L"
        g = np.clip(a / maxv, 0, 1)
        return np.repeat(g[..., None], 3, axis=2), info
    if im.mode in ("L", "LA", "1"):
        info.mode = "L"
        if im.mode == "LA":
            info.alpha = np.asarray(im.getchannel("A")).astype(np.float32) / 255.0
        g = np.asarray(im.convert("L")).astype(np.float32) / 255.0
        return np.repeat(g[..., None], 3, axis=2), info
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA")).astype(np.float32) / 255.0
        info.mode, info.alpha = "RGBA", rgba[..., 3].copy()
        return np.ascontiguousarray(rgba[..., :3]), info
    return np.asarray(im.convert("RGB")).astype(np.float32) / 255.0, info


def _read_png16(path):
    import cv2

    a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise UserError(f"{path}: cannot decode 16-bit PNG")
    a = a.astype(np.float32) / 65535.0
    info = ImageInfo(bit_depth=16)
    if a.ndim == 2:
        info.mode = "L"
        return np.repeat(a[..., None], 3, axis=2), info
    if a.shape[2] == 4:
        info.mode, info.alpha = "RGBA", a[..., 3].copy()
    return np.ascontiguousarray(a[..., 2::-1]), info


def write_image(path, rgb: np.ndarray, info: ImageInfo | None = None) -> None:
    """Write (H, W, 3) float RGB in [0, 1] atomically, restoring bit depth, gray and alpha from ``info``."""
    from PIL import Image

    info = info or ImageInfo()
    path = Path(path)
    rgb = np.clip(np.nan_to_num(rgb, nan=0.0), 0.0, 1.0)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise UserError(f"{path}: unsupported output format '{suffix}' (use one of {sorted(IMAGE_SUFFIXES)})")
    sixteen = info.bit_depth == 16 and suffix in (".png", ".tif", ".tiff")
    with atomic_path(path) as tmp:
        if sixteen:
            import cv2

            q = np.round(rgb * 65535).astype(np.uint16)
            if info.mode == "L":
                out = _luma16(rgb)
            else:
                out = q[..., ::-1]
                if info.mode == "RGBA" and info.alpha is not None:
                    out = np.dstack([out, np.round(info.alpha * 65535).astype(np.uint16)])
            if not cv2.imwrite(str(tmp), np.ascontiguousarray(out)):
                raise UserError(f"{path}: could not encode image")
            return
        q = np.round(rgb * 255).astype(np.uint8)
        if info.mode == "L":
            im = Image.fromarray(np.round(_luma(rgb) * 255).astype(np.uint8), "L")
        elif info.mode == "RGBA" and info.alpha is not None and suffix in (".png", ".webp", ".tif", ".tiff"):
            im = Image.fromarray(np.dstack([q, np.round(info.alpha * 255).astype(np.uint8)]), "RGBA")
        else:
            im = Image.fromarray(q, "RGB")
        fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}[suffix]
        kwargs = {"quality": 95} if fmt == "JPEG" else {}
        im.save(tmp, format=fmt, **kwargs)


def _luma(rgb):
    return rgb.mean(axis=2)


def _luma16(rgb):
    return np.round(_luma(rgb) * 65535).astype(np.uint16)


def to_tensor(rgb: np.ndarray):
    """(H, W, 3) float array -> (1, 3, H, W) float32 tensor."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32))[None]


def to_numpy(t) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) tensor -> (H, W, 3) float32 array."""
    a = t.detach().float().cpu().numpy()
    if a.ndim == 4:
        a = a[0]
    return np.ascontiguousarray(a.transpose(1, 2, 0))
