"""Reading and writing photos as float32 RGB in [0, 1], keeping what a user expects of their files.

Kept: 8- and 16-bit samples (float TIFF as float), gray, alpha (RGBA and gray+alpha), EXIF (camera,
date, GPS; the orientation is applied to the pixels and reset to 1), ICC profiles and lossless WebP.
Refused with a clear message: what would be lost (animations and multi-page files, float samples
outside [0, 1]) and images over a pixel limit.
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeenhance.errors import UserError
from edgeenhance.fileio import atomic_path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
# Above Pillow's decompression-bomb limit (179 MP) but not above today's largest phone sensors
# (200 MP: 16384 x 12288 = 201 MP).
MAX_PIXELS = 250_000_000
ORIENTATION, EXIF_IFD, GPS_IFD, INTEROP_IFD, ICC_TAG = 0x0112, 0x8769, 0x8825, 0xA005, 34675
# TIFF files keep EXIF's IFD0 tags among their structural ones: only these describe the photo.
_TIFF_PHOTO_TAGS = {270, 271, 272, 274, 282, 283, 296, 305, 306, 315, 33432}
_CHANNELS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


@dataclass
class ImageInfo:
    """What to restore on output: sample type, channel layout, alpha plane and metadata."""

    bit_depth: int = 8  # 8, 16, or 32 (float samples)
    mode: str = "RGB"  # channel layout of the file: "RGB", "RGBA", "L" or "LA"
    alpha: np.ndarray | None = None
    exif: bytes | None = None  # "Exif\0\0" + TIFF block; orientation already applied, so reset to 1
    icc_profile: bytes | None = None
    lossless: bool = False  # a lossless WebP stays lossless


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if is_image_file(p))


def read_image(path, with_info: bool = False, max_pixels: int = MAX_PIXELS):
    """Read an image as an (H, W, 3) float32 array in [0, 1] (RGB, EXIF orientation applied).

    Images of more than ``max_pixels`` pixels raise UserError before anything is decoded."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected an image file")
    try:
        with _no_pillow_pixel_limit():
            with open(path, "rb") as fp:
                tiff = fp.read(4) in (b"II*\0", b"MM\0*")
            arr, info = _read_tiff(path, max_pixels) if tiff else _read_pillow(path, max_pixels)
    except UnidentifiedImageError:
        raise UserError(f"{path}: not a readable image (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError, EOFError, KeyError, struct.error, zlib.error) as e:
        raise UserError(f"{path}: cannot read image ({e})") from None
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise UserError(f"{path}: image is empty")
    return (arr, info) if with_info else arr


@contextlib.contextmanager
def _no_pillow_pixel_limit():
    """Pillow's decompression-bomb check raises a non-OSError at 179 MP; read_image checks ``max_pixels`` itself."""
    from PIL import Image

    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def _check_size(path, w, h, max_pixels):
    if w * h > max_pixels:
        raise UserError(f"{path}: {w}x{h} = {w * h:,} pixels, over the limit of {max_pixels:,} (enhance "
                        "--max-pixels raises it, if there is memory for it)")


def _refuse_frames(path, what):
    raise UserError(f"{path}: {what}; only single images are supported (the output would keep only the first "
                    "frame): extract the frames first")


def _check_float(path, a):
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    if not np.isfinite(a).all() or lo < -1e-3 or hi > 1 + 1e-3:
        raise UserError(f"{path}: float samples outside [0, 1] (range {lo:g} to {hi:g}; HDR or scene-linear?): "
                        "enhancers take display-referred images, and clipping would lose the highlights")


def _read_pillow(path, max_pixels):
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        _check_size(path, *im.size, max_pixels)
        n = getattr(im, "n_frames", 1)
        if n > 1 and im.format != "MPO":  # MPO: a JPEG whose extra frames are previews, not photos
            _refuse_frames(path, f"animated {im.format} with {n} frames")
        # Pillow decodes 16-bit colour and gray+alpha PNGs to 8 bit: read those with OpenCV. (Before
        # getexif, which decodes a PNG to reach an eXIf chunk after the pixels, and empties the tiles.)
        rawmode = str(im.tile[0].args) if im.format == "PNG" and im.tile else ""
        exif, icc = im.getexif(), im.info.get("icc_profile")
        exif_bytes = _photo_exif(exif, tiff=False)  # before exif_transpose deletes the orientation
        if any(m in rawmode for m in ("RGB;16", "RGBA;16", "LA;16")):
            arr, info = _read_cv2(path, exif.get(ORIENTATION, 1), gray="LA;16" in rawmode)
        else:
            ImageOps.exif_transpose(im, in_place=True)  # in place: no second copy of a big photo
            arr, info = _from_pil(path, im)
        info.exif, info.icc_profile = exif_bytes, _matching_icc(icc, info.mode)
        info.lossless = im.format == "WEBP" and _webp_is_lossless(path)
    return arr, info


def _read_tiff(path, max_pixels):
    """TIFF: Pillow decodes 8-bit files; OpenCV 16-bit and float ones (Pillow rounds the first to
    8 bit and cannot open float RGB). Tags come from the file's first directory."""
    from PIL import ExifTags, Image

    with open(path, "rb") as fp:
        tags = Image.Exif()
        tags.load_from_fp(fp)
        exif = _photo_exif(tags, tiff=True)  # reads the EXIF and GPS directories while fp is open
        pages = bool(tags.get_ifd(ExifTags.IFD.IFD1))  # a second directory: another page
    _check_size(path, tags.get(256, 0), tags.get(257, 0), max_pixels)
    if pages:
        _refuse_frames(path, "multi-page TIFF")
    bits, float_samples = max(_tuple(tags.get(258, 1))), 3 in _tuple(tags.get(339, 1))
    if bits > 8 or float_samples:
        if tags.get(277, 1) not in (1, 3, 4):  # OpenCV reads 16-bit gray+alpha as 8-bit gray
            raise UserError(f"{path}: {bits}-bit TIFF with {tags.get(277)} channels cannot be read without losing "
                            "depth or alpha; save it as gray, RGB or RGBA")
        arr, info = _read_cv2(path, tags.get(ORIENTATION, 1), gray=False, tiff=True)
    else:
        from PIL import ImageOps

        with Image.open(path) as im:
            ImageOps.exif_transpose(im, in_place=True)
            arr, info = _from_pil(path, im)
    info.exif, info.icc_profile = exif, _matching_icc(tags.get(ICC_TAG), info.mode)
    return arr, info


def _tuple(v):
    return v if isinstance(v, tuple) else (v,)


def _read_cv2(path, orientation, gray: bool, tiff: bool = False):
    """16-bit or float pixels via OpenCV (BGR order), oriented like Pillow's exif_transpose.
    ``gray``: a gray+alpha file, which OpenCV hands back as BGRA."""
    import cv2

    if tiff and orientation != 1:
        # OpenCV applies a TIFF's orientation itself, even with IMREAD_UNCHANGED, and fails on the
        # rotated ones (5-8): decode a copy whose orientation says 1 and orient here, like every other file.
        buf = _tiff_upright(bytearray(Path(path).read_bytes()))
        a = cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_UNCHANGED)
    else:
        a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise UserError(f"{path}: cannot decode image")
    if a.dtype == np.uint16:
        bit_depth, scale = 16, 65535.0
    elif a.dtype == np.uint8:
        bit_depth, scale = 8, 255.0
    elif a.dtype == np.float32:
        bit_depth, scale = 32, 1.0
        _check_float(path, a)
    else:
        raise UserError(f"{path}: {a.dtype} samples are not supported (8-bit, 16-bit or float32 are)")
    a = _orient(a, orientation)
    info = ImageInfo(bit_depth=bit_depth)
    if a.ndim == 2:
        a = a[..., None]
    c = a.shape[2]
    if gray and c == 4:  # gray replicated into B, G and R
        a = a[..., [0, 3]]
        c = 2
    info.mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c]
    if c in (2, 4):
        info.alpha = np.clip(a[..., -1].astype(np.float32) / scale, 0, 1)
    out = np.empty(a.shape[:2] + (3,), np.float32)
    out[...] = a[..., :1] if c <= 2 else a[..., 2::-1]
    out /= scale
    return np.clip(out, 0, 1, out=out), info


def _tiff_upright(data: bytearray) -> bytearray:
    """TIFF bytes with the first directory's orientation entry set to 1 (top-left)."""
    e = "<" if data[:2] == b"II" else ">"
    start = struct.unpack(e + "I", data[4:8])[0]
    for i in range(struct.unpack(e + "H", data[start:start + 2])[0]):
        entry = start + 2 + 12 * i
        if struct.unpack(e + "H", data[entry:entry + 2])[0] == ORIENTATION:
            data[entry + 8:entry + 10] = struct.pack(e + "H", 1)
    return data


def _orient(a, orientation):
    """Apply an EXIF orientation to an (H, W[, C]) array, as ``ImageOps.exif_transpose`` does."""
    ops = {2: lambda x: x[:, ::-1], 3: lambda x: x[::-1, ::-1], 4: lambda x: x[::-1],
           5: lambda x: x.swapaxes(0, 1), 6: lambda x: np.rot90(x, -1), 7: lambda x: np.rot90(x, 2).swapaxes(0, 1),
           8: lambda x: np.rot90(x, 1)}
    return np.ascontiguousarray(ops[orientation](a)) if orientation in ops else a


def _from_pil(path, im):
    info = ImageInfo()
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im).astype(np.float32)
        maxv = 65535.0 if a.max(initial=0) > 255 or im.mode.startswith("I;16") else 255.0
        info.bit_depth, info.mode = (16 if maxv > 255 else 8), "L"
        g = np.clip(a / maxv, 0, 1)
        return np.repeat(g[..., None], 3, axis=2), info
    if im.mode == "F":  # float gray TIFF; convert("RGB") would read values in [0, 1] as black
        a = np.asarray(im, dtype=np.float32)
        _check_float(path, a)
        info.bit_depth, info.mode = 32, "L"
        return np.repeat(np.clip(a, 0, 1)[..., None], 3, axis=2), info
    if im.mode in ("L", "LA", "1"):
        info.mode = "L"
        if im.mode == "LA":
            info.mode, info.alpha = "LA", _unit8(np.asarray(im.getchannel("A")))
        g = _unit8(np.asarray(im.convert("L")))
        return np.repeat(g[..., None], 3, axis=2), info
    if im.mode in ("RGBA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"))
        info.mode, info.alpha = "RGBA", _unit8(rgba[..., 3])
        return _unit8(rgba[..., :3]), info
    return _unit8(np.asarray(im if im.mode == "RGB" else im.convert("RGB"))), info


def _unit8(a):
    """uint8 -> float32 in [0, 1] without a float64 temporary (a 48 MP photo is 576 MB as float32)."""
    out = np.empty(a.shape, np.float32)
    np.divide(a, np.float32(255), out=out)
    return out


def _photo_exif(exif, tiff: bool) -> bytes | None:
    """The EXIF block to carry over: orientation reset to 1 (the pixels are upright now); from a TIFF
    only the tags that describe the photo, not its strips and sample layout."""
    from PIL import Image

    out = Image.Exif()
    for tag, value in exif.items():
        if tag in (EXIF_IFD, GPS_IFD) or (tiff and tag not in _TIFF_PHOTO_TAGS):
            continue
        out[tag] = value
    for ifd in (EXIF_IFD, GPS_IFD):
        sub = dict(exif.get_ifd(ifd)) if ifd in exif else {}
        if INTEROP_IFD in sub:  # its stored offset would be stale in the new block
            sub[INTEROP_IFD] = exif.get_ifd(INTEROP_IFD)
        if sub:
            out[ifd] = sub
    if ORIENTATION in out:
        out[ORIENTATION] = 1
    return out.tobytes() if len(out) else None


def _matching_icc(icc, mode):
    """The ICC profile if it describes the output's colours (an RGB profile for RGB, gray for gray):
    a CMYK file is written as RGB, and its profile would be wrong there."""
    if not icc or len(icc) < 20:
        return None
    space = icc[16:20]
    return icc if space == (b"GRAY" if mode in ("L", "LA") else b"RGB ") else None


def _webp_is_lossless(path) -> bool:
    """True if the WebP's image chunk is VP8L (lossless), found by walking the RIFF chunks."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
            return False
        while True:
            ch = f.read(8)
            if len(ch) < 8:
                return False
            tag, size = ch[:4], struct.unpack("<I", ch[4:])[0]
            if tag in (b"VP8 ", b"VP8L"):
                return tag == b"VP8L"
            f.seek(size + (size & 1), 1)


def write_image(path, rgb: np.ndarray, info: ImageInfo | None = None) -> None:
    """Write (H, W, 3) float RGB in [0, 1] atomically, restoring sample type, gray, alpha and metadata
    from ``info`` (as far as the format of ``path`` holds them)."""
    from PIL import Image

    info = info or ImageInfo()
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise UserError(f"{path}: unsupported output format '{suffix}' (use one of {sorted(IMAGE_SUFFIXES)})")
    mode = info.mode if info.alpha is not None or info.mode in ("L", "RGB") else info.mode[:-1]
    if suffix in (".jpg", ".jpeg"):
        mode = mode.rstrip("A")  # JPEG has no alpha
    with atomic_path(path) as tmp:
        if info.bit_depth > 8 and suffix in (".png", ".tif", ".tiff"):
            dtype = np.float32 if info.bit_depth == 32 and suffix != ".png" else np.uint16
            planes = _planes(rgb, info.alpha, mode, dtype)
            (_write_png16 if suffix == ".png" else _write_tiff)(tmp, planes, info.exif, info.icc_profile)
            return
        planes = _planes(rgb, info.alpha, mode, np.uint8)
        im = Image.fromarray(planes[..., 0] if mode == "L" else planes, mode)
        del planes  # Pillow holds its own copy
        fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
               ".webp": "WEBP"}[suffix]
        if fmt == "BMP" and mode == "LA":
            im = im.convert("RGBA")  # BMP has no gray+alpha
        kwargs = {}
        if fmt == "JPEG" or (fmt == "WEBP" and not info.lossless):
            kwargs["quality"] = 95
        if fmt == "WEBP" and info.lossless:
            kwargs.update(lossless=True, exact=True)  # exact: keep the colour under transparent pixels
        if fmt != "BMP":
            kwargs.update({k: v for k, v in (("exif", info.exif), ("icc_profile", info.icc_profile)) if v})
        try:
            im.save(tmp, format=fmt, **kwargs)
        except ValueError as e:  # e.g. an EXIF block too long for JPEG
            raise UserError(f"{path}: could not encode image ({e})") from None


def _planes(rgb, alpha, mode, dtype):
    """(H, W, channels of ``mode``) samples of ``dtype`` (uint8, uint16 or float32), in row bands so that
    a big photo needs no full-size float temporaries."""
    h, w = rgb.shape[:2]
    out = np.empty((h, w, _CHANNELS[mode]), dtype)
    scale = {np.uint8: 255.0, np.uint16: 65535.0}.get(dtype)
    gray = mode in ("L", "LA")
    band = max(1, (1 << 20) // max(w, 1))
    for y in range(0, h, band):
        x = np.clip(np.nan_to_num(rgb[y:y + band], nan=0.0), 0.0, 1.0)
        if gray:
            x = _luma(x)[..., None]
        planes = [x] if alpha is None or mode in ("L", "RGB") else [x, np.clip(alpha[y:y + band], 0, 1)[..., None]]
        x = np.concatenate(planes, axis=2) if len(planes) > 1 else x
        out[y:y + band] = x if scale is None else np.round(x * scale)
    return out


def _luma(rgb):
    return rgb.mean(axis=2)


def _write_png16(path, a, exif, icc):
    """16-bit PNG (gray, gray+alpha, RGB or RGBA) with eXIf and iCCP chunks; OpenCV writes no gray+alpha
    and Pillow no 16-bit colour. Rows use the Up filter."""
    h, w, c = a.shape

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)))
        if icc:
            f.write(chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc)))
        if exif:
            f.write(chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif))
        z = zlib.compressobj(6)
        prev = np.zeros(w * c * 2, np.uint8)
        band = max(1, (1 << 20) // (w * c * 2))
        for y in range(0, h, band):
            rows = a[y:y + band].astype(">u2").reshape(-1, w * c).view(np.uint8)
            up = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
            up[:, 0] = 2  # filter type Up: byte minus the byte above, mod 256
            up[:, 1:] = rows - np.vstack([prev[None], rows[:-1]])
            prev = rows[-1].copy()
            data = z.compress(up.tobytes())
            if data:
                f.write(chunk(b"IDAT", data))
        f.write(chunk(b"IDAT", z.flush()) + chunk(b"IEND", b""))


def _write_tiff(path, a, exif, icc):
    """16-bit or float TIFF (gray, RGB or RGBA; unassociated alpha), deflate strips,
    with the EXIF tags and ICC profile that OpenCV's TIFF writer drops. Pillow serializes the tags."""
    from PIL import Image, TiffImagePlugin as T, TiffTags

    if a.shape[2] == 2:  # gray+alpha as RGBA: OpenCV, which reads these back, cannot read 2-channel 16-bit TIFF
        a = a[..., [0, 0, 0, 1]]
    h, w, c = a.shape
    a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"), copy=False))
    ifd = T.ImageFileDirectory_v2(prefix=b"II")
    if exif:
        e = Image.Exif()
        e.load(exif)
        for tag, value in e.items():
            ifd[tag] = e.get_ifd(tag) if tag in (EXIF_IFD, GPS_IFD) else value
    if icc:
        ifd[ICC_TAG] = icc
        ifd.tagtype[ICC_TAG] = TiffTags.UNDEFINED
    bits = 8 * a.dtype.itemsize
    ifd[256], ifd[257] = w, h
    ifd[258] = (bits,) * c
    ifd[259] = 8  # Adobe deflate
    ifd[262] = 1 if c == 1 else 2  # black is zero / RGB
    ifd[277], ifd[284] = c, 1
    if c == 4:
        ifd[338] = 2  # unassociated alpha
    ifd[339] = (3 if a.dtype.kind == "f" else 1,) * c
    rps = max(1, min(h, (1 << 18) // (w * c * a.dtype.itemsize)))
    ifd[278] = rps

    def directory(sizes):  # strip offsets are relative: tobytes moves them past the directory
        for tag, values in ((273, np.cumsum([0, *sizes[:-1]])), (279, sizes)):
            ifd[tag] = tuple(int(v) for v in values)
            ifd.tagtype[tag] = TiffTags.LONG
        return b"II*\0" + struct.pack("<I", 8) + ifd.tobytes(8)

    n = -(-h // rps)
    with open(path, "wb") as f:
        f.write(bytes(len(directory([0] * n))))  # same length once the sizes are known: LONG values
        sizes = []
        for y in range(0, h, rps):  # strip by strip: the compressed photo is never in memory whole
            sizes.append(f.write(zlib.compress(a[y:y + rps].tobytes(), 6)))
        f.seek(0)
        f.write(directory(sizes))


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
