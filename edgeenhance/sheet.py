"""Contact sheets: one row per photo, one column per method, for looking at results side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PAD = 4
LABEL_H = 18
BACKGROUND = (32, 32, 32)


def thumbnail(img: np.ndarray, thumb: int):
    """Pillow image of an (H, W, 3) float image in [0, 1], scaled (keeping aspect) to fit thumb x thumb."""
    from PIL import Image

    a = np.round(np.clip(np.nan_to_num(np.asarray(img, np.float32)[..., :3]), 0, 1) * 255).astype(np.uint8)
    im = Image.fromarray(a)
    h, w = a.shape[:2]
    tw, th = _fit(h, w, thumb)
    if (tw, th) != (w, h):
        im = im.resize((tw, th), Image.LANCZOS if tw < w else Image.BICUBIC)
    return im


def _fit(h: int, w: int, thumb: int) -> tuple[int, int]:
    s = thumb / max(h, w)
    return max(1, round(w * s)), max(1, round(h * s))


def sheet_size(shapes: list[list[tuple[int, int]]], thumb: int, cols: int | None = None) -> tuple[int, int]:
    """(width, height) of the sheet for rows of image (H, W) shapes (``cols``: default the longest row)."""
    cols = cols or max(len(r) for r in shapes)
    heights = [max(_fit(h, w, thumb)[1] for h, w in r) for r in shapes]
    return PAD + cols * (thumb + PAD), LABEL_H + PAD + sum(h + PAD for h in heights)


def contact_sheet(rows, labels, path, thumb: int = 256) -> Path:
    """Write a PNG grid: ``rows`` is a list (one per photo) of images [input, method 1, ...], ``labels``
    names the columns (written above them). Thumbnails keep their aspect ratio inside thumb x thumb."""
    from PIL import Image, ImageDraw, ImageFont

    from edgeenhance.fileio import atomic_path

    rows = [list(r) for r in rows]
    if not rows or not all(rows):
        raise ValueError("contact_sheet needs at least one row of images")
    if any(len(r) > len(labels) for r in rows):
        raise ValueError(f"{len(labels)} labels for rows of up to {max(map(len, rows))} images")
    thumbs = [[thumbnail(img, thumb) for img in r] for r in rows]
    width, height = sheet_size([[np.shape(img)[:2] for img in r] for r in rows], thumb, len(labels))
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for c, label in enumerate(labels):
        text = str(label)
        while len(text) > 4 and draw.textlength(text, font=font) > thumb:  # long checkpoint paths
            text = "..." + text[4:]
        x = PAD + c * (thumb + PAD) + (thumb - draw.textlength(text, font=font)) / 2
        draw.text((x, 3), text, fill=(235, 235, 235), font=font)
    y = LABEL_H + PAD
    for r in thumbs:
        for c, im in enumerate(r):
            sheet.paste(im, (PAD + c * (thumb + PAD) + (thumb - im.width) // 2, y))
        y += max(im.height for im in r) + PAD
    path = Path(path)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path
