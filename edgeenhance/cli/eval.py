"""`edgeenhance eval`: paired PSNR/SSIM or no-reference scores, per method, with an input row."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeenhance.cli.args import FMT, positive
from edgeenhance.errors import UserError


def add(sub):
    def side(text):
        try:
            v = int(text)
        except ValueError:
            v = -1
        if v < 0:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number >= 0")
        return v

    e = sub.add_parser("eval", formatter_class=FMT, help="PSNR/SSIM or no-reference scores and time per image",
                       description="Evaluate one or more models side by side with the input.\n"
                                   "--data: a dataset folder, synthetic-under / synthetic-over (held-out rendered\n"
                                   "pairs whose seeds never overlap training), or a plain folder of photos.\n"
                                   "Paired data: PSNR/SSIM against the targets and mean well-exposedness\n"
                                   "(Mertens et al.), higher is better exposed.\n"
                                   "Plain folder (no targets): NIQE of the output (lower looks more natural;\n"
                                   "compare methods with this tool only, never with numbers from papers), LOE\n"
                                   "lightness-order error against the input (lower keeps the input's order of\n"
                                   "light and dark), mean luminance, mean luminance gain of the 30% darkest input\n"
                                   "pixels (dark lift: low-light photos), mean luminance loss of the 30% brightest\n"
                                   "(bright drop: over-exposed photos), the % of pixels clipped to white (any\n"
                                   "channel at 255; the input row: before), and the % clipped that were not\n"
                                   "clipped in the input.")
    e.add_argument("--model", action="append", required=True,
                   help="zoo name or checkpoint path; repeat for several models")
    e.add_argument("--data", required=True,
                   help="dataset folder, plain folder of photos, synthetic-under or synthetic-over")
    e.add_argument("--layout", choices=["lol", "fivek", "msec", "paired", "folder"],
                   help="default: detected; folder = plain photos without targets")
    e.add_argument("--exposure", choices=["under", "over"], help="MSEC subset (default: all exposures)")
    e.add_argument("--n", type=positive, default=None,
                   help="synthetic pairs (default 50); plain folder: the first N photos by name (default all)")
    e.add_argument("--size", type=positive, default=256, help="synthetic image size (default 256)")
    e.add_argument("--max-side", type=side, default=1024,
                   help="plain folder: shrink photos whose longer side is above this before evaluating, "
                        "for speed (default 1024; 0 = full size)")
    e.add_argument("--no-niqe", action="store_true",
                   help="plain folder: skip NIQE, which needs photos of at least 193x193 px (default: computed)")
    e.add_argument("--sheet", type=Path, metavar="OUT.png",
                   help="also write a contact sheet: per photo the input, each model (and the target) "
                        "(default: none)")
    e.add_argument("--sheet-rows", type=positive, default=8, help="photos on the contact sheet (default 8)")
    e.add_argument("--json", type=Path, help="also write all rows here (default: none)")
    e.add_argument("--device", default="cpu", help="torch device (default cpu)")
    e.add_argument("--skip-bad", action="store_true",
                   help="leave out unreadable or unmatched files with a warning (default: stop with an error)")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=cmd_eval)


def cmd_eval(a):
    from edgeenhance.data.datasets import load_pairs
    from edgeenhance.data.layouts import MSEC_OVER, MSEC_UNDER, detect_layout, find_pairs
    from edgeenhance.data.synth import HELDOUT_SEED, render_pairs
    from edgeenhance.evaluate import (enhance_array, evaluate, evaluate_input, evaluate_noref, evaluate_noref_input,
                                      load_folder)
    from edgeenhance.fileio import write_json
    from edgeenhance.models.registry import load_model
    from edgeenhance.niqe import MIN_SIDE
    from edgeenhance.sheet import contact_sheet

    if a.sheet and a.sheet.suffix.lower() != ".png":
        raise UserError(f"{a.sheet}: the contact sheet is written as PNG; give it a .png name")
    models = [load_model(m, a.device) for m in a.model]  # fail fast on a bad name before loading data
    synthetic = a.data in ("synthetic-under", "synthetic-over")
    layout = a.layout
    if not synthetic and layout is None:
        try:
            layout = detect_layout(a.data)
        except UserError:
            if not Path(a.data).is_dir():
                raise
            layout = "folder"  # no layout: photos without targets
    if layout == "folder":
        paths, images = load_folder(a.data, a.n, a.max_side, a.skip_bad, progress=not a.quiet)
        small = [(p, x.shape) for p, x in zip(paths, images) if min(x.shape[:2]) < MIN_SIDE]
        if small and not a.no_niqe:  # say so before the long run, not half-way through it
            (p, (h, w, _)), more = small[0], f" (and {len(small) - 1} more)" if len(small) > 1 else ""
            raise UserError(f"{p}: {w}x{h}{more} is too small for NIQE, which needs {MIN_SIDE} px per side; "
                            "pass --no-niqe, or a larger --max-side")
        rows, outs = {"input": evaluate_noref_input(images, with_niqe=not a.no_niqe)}, []
        for name, m in zip(a.model, models):
            rows[name] = evaluate_noref(m, images, a.device, progress=not a.quiet, desc=f"eval {name}",
                                        with_niqe=not a.no_niqe, keep_outputs=a.sheet_rows if a.sheet else False)
            outs.append(rows[name].pop("outputs", []))
        print(f"{'model':<28}{'NIQE':>8}{'LOE':>8}{'mean lum':>10}{'dark lift':>11}{'bright drop':>13}"
              f"{'clipped %':>11}{'new clip %':>12}{'ms/img':>9}"
              f"   ({len(images)} photos, {a.data}; NIQE and LOE: lower is better)")
        for name, r in rows.items():
            niqe = "-" if r["niqe"] is None else f"{r['niqe']:.2f}"
            print(f"{name:<28}{niqe:>8}{r['loe']:>8.1f}{r['mean_lum']:>10.3f}{r['dark_lift']:>+11.3f}"
                  f"{r['bright_drop']:>+13.3f}{r['clipped_after'] * 100:>11.2f}{r['new_clipped'] * 100:>12.2f}"
                  f"{r['sec_per_image'] * 1000:>9.1f}")
        if a.sheet:
            k = min(a.sheet_rows, len(images))
            contact_sheet([[images[i]] + [o[i] for o in outs] for i in range(k)], ["input", *a.model], a.sheet)
        if a.json:
            write_json(a.json, {"data": a.data, "n": len(images), "mode": "no-reference",
                                "files": [p.name for p in paths], "results": rows})
        return
    if synthetic:
        exp = a.data.split("-")[1]
        n = a.n or 50
        pairs = render_pairs(range(HELDOUT_SEED, HELDOUT_SEED + n), exp, (a.size, a.size), progress=not a.quiet)
    else:
        exposures = {"under": MSEC_UNDER, "over": MSEC_OVER}.get(a.exposure) if layout == "msec" else None
        pairs = load_pairs(find_pairs(a.data, layout, strict=not a.skip_bad, exposures=exposures), a.skip_bad)
    rows = {"input": evaluate_input(pairs)}
    for name, m in zip(a.model, models):
        rows[name] = evaluate(m, pairs, a.device, progress=not a.quiet, desc=f"eval {name}")
    print(f"{'model':<28}{'PSNR dB':>9}{'SSIM':>8}{'exposed':>9}{'ms/img':>9}   ({len(pairs)} images, {a.data})")
    for name, r in rows.items():
        print(f"{name:<28}{r['psnr']:>9.2f}{r['ssim']:>8.4f}{r['exposedness']:>9.3f}{r['sec_per_image'] * 1000:>9.1f}")
    if a.sheet:  # the first photos again: evaluate() keeps no outputs
        shown = pairs[:a.sheet_rows]
        contact_sheet([[x, *(enhance_array(m, x, a.device) for m in models), y] for x, y in shown],
                      ["input", *a.model, "target"], a.sheet)
    if a.json:
        write_json(a.json, {"data": a.data, "n": len(pairs), "results": rows})
