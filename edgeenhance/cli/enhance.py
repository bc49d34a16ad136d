"""`edgeenhance enhance`: photos in, enhanced photos out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgeenhance.errors import UserError


def _pixel_count(text: str) -> int:
    """'250000000', '250M' or '250MP' -> 250000000."""
    t = text.strip().upper().removesuffix("P")
    try:
        n = round(float(t[:-1]) * 1e6) if t.endswith("M") else int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a pixel count; use e.g. 250M or 250000000") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 pixel, got {text}")
    return n


def add(sub):
    e = sub.add_parser("enhance", help="enhance photos (files or folders)",
                       description="Enhance photos. Output keeps each input's name, size, bit depth, alpha, EXIF and "
                                   "ICC profile. Inputs are never replaced unless --overwrite is given.")
    e.add_argument("inputs", nargs="+", type=Path, help="image files or folders")
    e.add_argument("-o", "--out", required=True, type=Path, help="output folder")
    e.add_argument("--model", default="bilateral",
                   help="zoo name (`edgeenhance info` lists them: bilateral for dark photos, bilateral-over for "
                        "over-exposed ones, ...) or a checkpoint path (default bilateral)")
    e.add_argument("--overwrite", action="store_true", help="let outputs replace their inputs (-o an input folder)")
    e.add_argument("--max-pixels", type=_pixel_count, default=None, metavar="N",
                   help="skip (as failed) images of more than N pixels, e.g. 100M (default 250M: today's largest "
                        "phone sensors have 200 MP)")
    e.add_argument("--device", default="cpu")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=cmd_enhance)


def cmd_enhance(a):
    from tqdm import tqdm

    from edgeenhance.data.imageio import MAX_PIXELS, list_images, read_image, write_image
    from edgeenhance.evaluate import fast_enhance
    from edgeenhance.models.registry import load_model

    files = []
    for p in a.inputs:
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise UserError(f"{p}: folder holds no images")
            files += found
        elif p.exists():
            files.append(p)
        else:
            raise UserError(f"{p}: no such file or folder")
    if a.out.exists() and not a.out.is_dir():
        raise UserError(f"{a.out}: exists and is not a folder")
    plan = _enhance_plan(files, a.out, a.overwrite)
    model = load_model(a.model, a.device)
    failed = []
    for f, dst in tqdm(plan, desc=f"enhance ({a.model})", unit="img", disable=a.quiet):
        try:
            img, info = read_image(f, with_info=True, max_pixels=a.max_pixels or MAX_PIXELS)
            out = fast_enhance(model, img, a.device, inplace=True)  # a 48 MP photo is 0.58 GB in float32
            del img
            write_image(dst, out, info)
            del out
        except UserError as e:
            failed.append(str(e))
        except MemoryError:
            failed.append(f"{f}: not enough memory to enhance it; close other programs, or skip photos this big "
                          "with a smaller --max-pixels")
    for msg in failed:
        print(f"edgeenhance: error: {msg}", file=sys.stderr)
    print(f"enhanced {len(plan) - len(failed)} of {len(plan)} image(s) into {a.out}"
          + (f" ({len(failed)} failed, see above)" if failed else ""))
    return 2 if failed else 0


def _enhance_plan(files: list[Path], out: Path, overwrite: bool) -> list[tuple[Path, Path]]:
    """(input, output) pairs, one per distinct input file. Refuses, before anything is written, outputs
    that two inputs would share (the later would replace the earlier) and, unless ``overwrite``, outputs
    that would replace an input."""
    import os

    from edgeenhance.data.imageio import is_image_file

    def file_id(p):  # the same file through a symlink, a hard link or another spelling of its path
        st = os.stat(p)
        return st.st_dev, st.st_ino

    plan, seen, by_name = [], {}, {}
    for f in files:
        if file_id(f) in seen:  # given twice, e.g. as a file and inside its folder
            continue
        seen[file_id(f)] = f
        dst = out / (f.stem + (f.suffix if is_image_file(f) else ".png"))
        by_name.setdefault(dst.name.casefold(), (dst, []))[1].append(f)  # casefold: X.jpg is x.jpg on macOS
        plan.append((f, dst))

    def listing(items):
        return "; ".join(items[:5]) + (f"; and {len(items) - 5} more" if len(items) > 5 else "")

    clashes = [f"{dst} <- {', '.join(map(str, srcs))}" for dst, srcs in by_name.values() if len(srcs) > 1]
    if clashes:
        raise UserError(f"{len(clashes)} output name(s) would be written by more than one input, losing all but the "
                        f"last: {listing(clashes)}. Rename those inputs, or enhance them into separate -o folders")
    if not overwrite:
        replaced = [str(dst) if dst.resolve() == seen[file_id(dst)].resolve() else f"{dst} (is {seen[file_id(dst)]})"
                    for _, dst in plan if dst.exists() and file_id(dst) in seen]
        if replaced:
            raise UserError(f"{len(replaced)} output(s) would replace input photos: {listing(replaced)}. Choose "
                            "another -o folder, or pass --overwrite to replace them")
    return plan
