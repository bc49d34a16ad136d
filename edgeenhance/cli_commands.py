"""Handlers of the data, training and evaluation commands (imports of torch stay inside)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgeenhance.errors import UserError

FMT = argparse.RawDescriptionHelpFormatter


def _progress(args) -> bool:
    return not getattr(args, "quiet", False)


def add_data(sub, positive, parse_size):
    p = sub.add_parser("data", help="make synthetic datasets", description="Make datasets you can inspect.")
    s = p.add_subparsers(dest="data_command", metavar="ACTION")
    q = s.add_parser("synth", formatter_class=FMT, help="render a paired or unpaired exposure dataset",
                     description="Render procedural scenes through a camera model and write them as a dataset.\n"
                                 "  paired:   DIR/input/*.png (badly exposed) + DIR/target/*.png (well exposed)\n"
                                 "  unpaired: DIR/trainA/*.png (over-exposed) + DIR/trainB/*.png (well exposed),\n"
                                 "            from disjoint scenes (for CycleGAN)")
    q.add_argument("--kind", choices=["paired", "unpaired"], required=True)
    q.add_argument("--n", type=positive, default=100, help="images (per domain for unpaired; default 100)")
    q.add_argument("--exposure", choices=["under", "over"], default="under", help="paired inputs: under- (low light) or over-exposed")
    q.add_argument("--size", type=parse_size, default=(256, 256), help="HxW (default 256)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--workers", type=positive, default=None, help="processes (default: all cores)")
    q.add_argument("-o", "--out", required=True, type=Path)
    q.add_argument("--quiet", action="store_true")
    q.set_defaults(func=cmd_data_synth)
    r = s.add_parser("reexpose", formatter_class=FMT, help="MSEC-style exposure errors from a folder of good photos",
                     description="Re-capture each well-exposed photo at EV -1.5, -1, 0, +1, +1.5 the way a camera\n"
                                 "would: sRGB -> linear light, exposure scaled by 2^EV, Poisson-Gaussian sensor noise\n"
                                 "at the ISO that offset implies, clipping at sensor white before the tone curve,\n"
                                 "the curve re-applied, JPEG. The same code makes training pairs on the fly\n"
                                 "(edgeenhance.data.exposure). Writes INPUT_IMAGES/ and GT_IMAGES/ (MSEC layout).")
    r.add_argument("src", type=Path, help="folder of well-exposed photos")
    r.add_argument("-o", "--out", required=True, type=Path, help="output dataset folder")
    r.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_data_reexpose)
    p.set_defaults(func=lambda a: p.print_help())


def cmd_data_synth(a):
    from edgeenhance.data.synth import write_dataset

    out = write_dataset(a.out, a.kind, a.n, a.exposure, a.size, a.seed, a.workers, _progress(a))
    print(f"wrote {a.kind} dataset to {out}")


def cmd_data_reexpose(a):
    from edgeenhance.data.synth import exposure_errors_from_folder

    out = exposure_errors_from_folder(a.src, a.out, a.seed, _progress(a))
    print(f"wrote MSEC-style dataset to {out}")


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0 <= v < float("inf"):
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds >= 0")
    return v


def _common_train(q, positive):
    q.add_argument("--resume", action="store_true",
                   help="continue from OUT/last.safetensors, exactly as the uninterrupted run would have")
    q.add_argument("--save-every", type=_seconds, default=300.0, metavar="SECONDS",
                   help="also write OUT/last.safetensors this often; Ctrl-C or SIGTERM saves it and stops "
                        "(default 300)")
    q.add_argument("--seed", type=int, default=0, help="random seed of initialisation and data (default 0)")
    q.add_argument("--device", default="auto", help="cpu, cuda or auto (default auto: cuda when present)")
    q.add_argument("--skip-bad", action="store_true",
                   help="warn about and skip unreadable or unmatched files (default: stop with an error)")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.add_argument("-o", "--out", required=True, type=Path, help="run folder (checkpoints, logs)")


def _stopped(r) -> int:
    """Exit status of a run a signal stopped (the trainer said where it saved): 128 + the signal's
    number, as a shell reports it."""
    return 128 + r["signum"]


def add_train(sub, positive):
    p = sub.add_parser("train", help="train an enhancer", description="Train an enhancer.")
    s = p.add_subparsers(dest="train_command", metavar="MODEL")
    b = s.add_parser("bilateral", formatter_class=FMT, help="bilateral-grid illumination enhancer",
                     description="Train the bilateral-grid enhancer for under-exposed and low-light photos, or with\n"
                                 "--exposure over for over-exposed ones (the zoo's bilateral-over).\n"
                                 "--data takes a folder of well-exposed real photos (exposure errors are synthesized\n"
                                 "from them on the fly: linear light, -1..-6 EV or +1..+3 EV, ISO noise, clipping\n"
                                 "per channel at sensor white, tone curve, JPEG), a paired dataset folder (LOL, FiveK, MSEC, input/+target/) or 'synthetic'\n"
                                 "(rendered pairs). --zero-ref adds real dark photos without targets (Zero-DCE\n"
                                 "losses). --zero-reference with a plain folder of (dark) photos trains on them\n"
                                 "without targets. The last 15% of each photo folder by name is held out for\n"
                                 "validation. Writes OUT/best.safetensors (best validation PSNR; with no targets,\n"
                                 "best no-reference score: dark lift - 2 x newly clipped - LOE fraction),\n"
                                 "OUT/final.safetensors and OUT/last.safetensors (training state for --resume).\n"
                                 "On a 2-core CPU: about 1 s per step at the defaults (3000 steps: about an hour).\n"
                                 "example:\n"
                                 "  edgeenhance train bilateral --data ../shared/data/photos \\\n"
                                 "      --zero-ref ../shared/data/exposure/lol_our485_low -o runs/bilateral\n"
                                 "  edgeenhance train bilateral --exposure over --data ../shared/data/photos \\\n"
                                 "      --zero-ref ../shared/data/exposure/sice_part1 --zero-ref-weight 0 -o runs/over\n"
                                 "scripts/train_bilateral.py holds the recipes of the shipped weights.")
    b.add_argument("--data", default="synthetic",
                   help="folder of well-exposed photos, a paired dataset folder, or 'synthetic' (default: synthetic)")
    b.add_argument("--layout", choices=["photos", "lol", "fivek", "msec", "paired"],
                   help="dataset layout (default: detected; a folder of plain photos is 'photos')")
    b.add_argument("--exposure", choices=["under", "over"], default="under",
                   help="which exposure errors to fix: synthesized from --data photos, rendered, or the MSEC "
                        "subset (default: under)")
    b.add_argument("--zero-ref", action="append", type=Path, default=[], metavar="DIR",
                   help="folder of real badly exposed photos without targets (repeatable; default: none). "
                        "--exposure under: frames darker than mean luminance 0.3, trained with zero-reference "
                        "losses; over: frames brighter than 0.6, scored at each validation and the targets "
                        "of --teacher")
    b.add_argument("--zero-ref-weight", type=float, default=0.1, help="weight of those losses (default 0.1)")
    b.add_argument("--zero-ref-level", type=float, default=0.5,
                   help="exposure level those losses pull 16x16 patches towards (default 0.5; Zero-DCE: 0.6)")
    b.add_argument("--teacher", type=Path, metavar="CKPT",
                   help="CycleGAN generator (teacher.safetensors): its outputs on the --zero-ref frames are "
                        "their targets (distillation; default: none)")
    b.add_argument("--teacher-weight", type=float, default=1.0, help="weight of the teacher's targets (default 1)")
    b.add_argument("--render-mix", type=float, default=0.0,
                   help="fraction of each batch taken from rendered pairs next to real photos (default 0)")
    b.add_argument("--zero-reference", action="store_true",
                   help="train on --data with zero-reference losses only (no targets used); a plain folder "
                        "of photos is then taken as is, and checkpoints are chosen by a no-reference score")
    b.add_argument("--steps", type=positive, default=3000, help="optimizer steps (default 3000)")
    b.add_argument("--batch", type=positive, default=8, help="images per step (default 8)")
    b.add_argument("--crop", type=positive, default=192, help="training crop side in pixels (default 192)")
    b.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate, cosine-decayed (default 1e-3)")
    b.add_argument("--n-images", type=positive, default=512, help="rendered training pairs (default 512)")
    b.add_argument("--val-images", type=positive, default=24,
                   help="validation pairs, or held-out photos without targets (default 24)")
    b.add_argument("--val-every", type=positive, default=250, help="steps between validations (default 250)")
    b.add_argument("--workers", type=int, default=1, help="data-loading processes for photo folders (default 1)")
    _common_train(b, positive)
    b.set_defaults(func=cmd_train_bilateral)
    c = s.add_parser("cyclegan", formatter_class=FMT, help="CycleGAN teacher: over-exposed <-> well-exposed",
                     description="Train a CycleGAN on unpaired over-exposed and well-exposed photos.\n"
                                 "G maps over -> normal (the teacher), F maps normal -> over.\n"
                                 "Per epoch: OUT/log.jsonl, OUT/samples_epochNNN.png (input, G(x), F(G(x))),\n"
                                 "OUT/teacher.safetensors, OUT/discriminator_normal.safetensors, OUT/last.safetensors.")
    c.add_argument("--over", default=None, help="folder of over-exposed photos, or 'synthetic'")
    c.add_argument("--normal", default=None, help="folder of well-exposed photos, or 'synthetic'")
    c.add_argument("--data", default=None, help="a trainA/ (over) + trainB/ (normal) folder instead of --over/--normal")
    c.add_argument("--n-images", type=positive, default=1000, help="synthetic images per domain (default 1000)")
    c.add_argument("--epochs", type=positive, default=10,
                   help="epochs: half at constant LR, half decaying linearly to 0 (default 10)")
    c.add_argument("--batch", type=positive, default=4, help="images per domain per step (default 4)")
    c.add_argument("--crop", type=positive, default=256, help="training crop side in pixels (default 256)")
    c.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (default 2e-4)")
    c.add_argument("--lambda-cycle", type=float, default=10.0, help="weight of the cycle-consistency loss (default 10.0)")
    c.add_argument("--lambda-identity", type=float, default=0.5,
                   help="weight of the identity loss, relative to --lambda-cycle (default 0.5)")
    c.add_argument("--gan-mode", choices=["lsgan", "vanilla"], default="lsgan",
                   help="adversarial loss: least squares or log-likelihood (default lsgan)")
    c.add_argument("--pool-size", type=int, default=50,
                   help="earlier fakes kept to show the discriminators; 0 = none (default 50)")
    c.add_argument("--ngf", type=positive, default=64, help="generator width (default 64)")
    c.add_argument("--n-blocks", type=positive, default=9, help="generator ResNet blocks (default 9)")
    c.add_argument("--ndf", type=positive, default=64, help="discriminator width (default 64)")
    c.add_argument("--no-amp", action="store_true", help="no bf16 mixed precision on GPU (default: bf16 on GPU)")
    _common_train(c, positive)
    c.set_defaults(func=cmd_train_cyclegan)
    p.set_defaults(func=lambda a: p.print_help())


def _check_lr(a):
    if not 0 < a.lr < float("inf"):  # also refuses nan
        raise UserError(f"--lr must be a positive number, got {a.lr}")


def _check_resume(a):
    """--resume: refuse a missing or unreadable OUT/last.safetensors before any data is loaded."""
    if getattr(a, "resume", False):
        from edgeenhance.train.common import TrainingState

        TrainingState(a.out / "last.safetensors")


def cmd_train_bilateral(a):
    from edgeenhance.train.bilateral import train_bilateral

    if not (a.lr > 0):  # also refuses nan
        raise UserError(f"--lr must be a positive number, got {a.lr}")
    _check_resume(a)
    r = train_bilateral(a.out, a.data, a.layout, a.steps, a.batch, a.crop, a.lr, a.n_images, a.val_images, a.exposure,
                        a.zero_reference, a.resume, a.seed, a.val_every, a.device, progress=_progress(a),
                        skip_bad=a.skip_bad, zero_ref=a.zero_ref, zero_ref_weight=a.zero_ref_weight,
                        zero_ref_level=a.zero_ref_level, teacher=a.teacher, teacher_weight=a.teacher_weight,
                        render_mix=a.render_mix, workers=max(0, a.workers), save_every_s=a.save_every)
    if r["stopped"]:
        return _stopped(r)
    b = r["best"]
    if r["selected_by"] == "noref":
        print(f"best validation no-reference score {b['score']:.4f} -> {a.out / 'best.safetensors'}")
    else:
        print(f"best validation PSNR {b['psnr']:.2f} dB, SSIM {b.get('ssim', 0):.4f} -> {a.out / 'best.safetensors'}")


def cmd_train_cyclegan(a):
    from edgeenhance.models.registry import check_config
    from edgeenhance.train.cyclegan import train_cyclegan
    from edgeenhance.train.data import trainab, unpaired_data

    _check_lr(a)
    _check_resume(a)
    check_config("resnet_generator", {"ngf": a.ngf, "n_blocks": a.n_blocks})  # before allocating, not after
    check_config("patch_discriminator", {"ndf": a.ndf})
    if a.data:
        over, normal = trainab(a.data, a.skip_bad)
    elif a.over and a.normal:
        over, normal = unpaired_data(a.over, a.normal, a.n_images, a.crop, a.seed, a.skip_bad, _progress(a))
    else:
        raise UserError("say where the images are: --over DIR --normal DIR, --data DIR (trainA/trainB), "
                        "or --over synthetic --normal synthetic")
    r = train_cyclegan(a.out, over, normal, a.epochs, a.batch, a.crop, a.lr, a.lambda_cycle, a.lambda_identity,
                       a.gan_mode, a.pool_size, a.ngf, a.n_blocks, a.ndf, a.resume, a.seed, a.device,
                       False if a.no_amp else None, _progress(a), save_every_s=a.save_every)
    if r["stopped"]:
        return _stopped(r)
    print(f"teacher written to {Path(r['out_dir']) / 'teacher.safetensors'}")


def add_distill(sub, positive):
    d = sub.add_parser("distill", formatter_class=FMT, help="distil the CycleGAN teacher into a phone-sized student",
                       description="Train a small student generator to reproduce the teacher (over -> normal):\n"
                                   "pixel L1 + matching of the teacher's bottleneck features, optionally an\n"
                                   "adversarial term with the teacher's discriminator (--adv W --discriminator CKPT).")
    d.add_argument("--teacher", required=True, help="teacher.safetensors from `train cyclegan`")
    d.add_argument("--student", default="small", choices=["tiny", "small"], help="student size (default small)")
    d.add_argument("--data", default="synthetic",
                   help="'synthetic' or a folder of over-exposed photos (default: synthetic)")
    d.add_argument("--n-images", type=positive, default=1000, help="rendered training images (default 1000)")
    d.add_argument("--steps", type=positive, default=3000, help="optimizer steps (default 3000)")
    d.add_argument("--batch", type=positive, default=8, help="images per step (default 8)")
    d.add_argument("--crop", type=positive, default=256, help="training crop side in pixels (default 256)")
    d.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate, cosine-decayed (default 2e-3)")
    d.add_argument("--feat", type=float, default=1.0, help="weight of feature matching (default 1.0)")
    d.add_argument("--adv", type=float, default=0.0, help="weight of the adversarial term (default 0.0: off)")
    d.add_argument("--discriminator", default=None,
                   help="discriminator_normal.safetensors from `train cyclegan`, for --adv (default: none)")
    d.add_argument("--val-images", type=positive, default=16,
                   help="held-out rendered images for PSNR(student, teacher) (default 16)")
    d.add_argument("--val-every", type=positive, default=250, help="steps between validations (default 250)")
    d.add_argument("--cache-teacher", action="store_true",
                   help="run the teacher once per image up front, then train on pixel L1 only (fast on CPU)")
    d.add_argument("--init", default=None, help="start from this student checkpoint (fine-tune; default: none)")
    _common_train(d, positive)
    d.set_defaults(func=cmd_distill)


def cmd_distill(a):
    from edgeenhance.train.data import heldout_over_pairs, unpaired_data
    from edgeenhance.train.distill import check_inputs, distill

    _check_lr(a)
    _check_resume(a)
    teacher, disc, init = check_inputs(a.teacher, a.discriminator, a.init, a.student, a.adv)  # before rendering
    if a.data == "synthetic":
        over, _ = unpaired_data("synthetic", "synthetic", a.n_images, a.crop, a.seed, progress=_progress(a))
    else:
        over, _ = unpaired_data(a.data, a.data, a.n_images, a.crop, a.seed, a.skip_bad, _progress(a))
    val = [x for x, _ in heldout_over_pairs(a.val_images, a.crop)]
    r = distill(a.out, teacher, over, val, a.student, a.steps, a.batch, a.crop, a.lr, a.feat, a.adv, disc,
                a.resume, a.seed, a.device, a.val_every, _progress(a), cache_teacher=a.cache_teacher, init=init,
                save_every_s=a.save_every)
    if r["stopped"]:
        return _stopped(r)
    print(f"best PSNR(student, teacher) on held-out images {r['best_psnr_vs_teacher']:.2f} dB -> {a.out / 'best.safetensors'}")


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


def add_enhance(sub):
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


def add_eval(sub, positive):
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


def add_info(sub, parse_size):
    i = sub.add_parser("info", help="parameters, MACs and I/O spec of a model (no MODEL: list the zoo)")
    i.add_argument("model", nargs="?", help="zoo name or checkpoint path")
    i.add_argument("--size", type=parse_size, default=(1080, 1920), help="HxW for the MAC count (default 1080x1920)")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=cmd_info)


def model_info(spec: str, size=(1080, 1920)) -> dict:
    from edgeenhance.models.macs import count_macs, count_params
    from edgeenhance.models.registry import CLASSICAL, ZOO, deploy_forms, load_int8_model, load_model

    m = load_model(spec)
    info = {"model": spec, "family": m.family, "config": m.config}
    if m.family in CLASSICAL:
        info.update(params=0, note="classical algorithm (no network)")
        return info
    h, w = size
    info["params"] = count_params(m)
    info["macs"] = {f"{h}x{w}": count_macs(m, (1, 3, h + (-h) % m.pad_multiple, w + (-w) % m.pad_multiple)),
                    "256x256": count_macs(m, (1, 3, 256, 256))}
    info["forms"] = {}
    for name, f in deploy_forms(m).items():
        fixed = f.fixed_size
        info["forms"][name] = {
            "input": {"shape": [1, 3, *(fixed or ["H", "W"])], "layout": "NCHW", "dtype": "float32", "range": [0, 1]},
            "output": ({"shape": [1, 12 * m.bins, m.config["grid_size"], m.config["grid_size"]], "layout": "NCHW",
                        "meaning": f"bilateral grid, {f.extras['grid_layout']}"} if f.output == "grid" else
                       {"shape": [1, 3, *(fixed or ["H", "W"])], "layout": "NCHW", "dtype": "float32", "range": [0, 1]}),
            "size_multiple": m.pad_multiple,
            # the PyTorch model is NCHW; exported TFLite files default to channel-last
            "tflite_layout": "NHWC (export --layout nchw keeps NCHW); ONNX and CoreML files are NCHW",
        }
    if spec in ZOO:
        info["fixes"] = ZOO[spec].fixes
        tuned = load_int8_model(spec)
        if tuned is not None:  # how they were tuned, as the checkpoint records it (see mark_int8_tuned)
            floats = sorted({n for mod in tuned.modules() for n in getattr(mod, "int8_float_modules", ())})
            layers = f"float layers: {', '.join(floats)}" if floats else "every layer int8"
            scales = "one scale per weight tensor" if getattr(tuned, "int8_weight_scales", "channel") == "tensor" \
                else "one scale per output channel"
            info["int8_weights"] = (f"{ZOO[spec].int8_weights}: fine-tuned for int8 (QAT, {layers}, {scales}); "
                                    "TFLite/ONNX int8 and CoreML w8a8 exports start from them "
                                    "(--float-weights: from the float weights)")
    return info


def cmd_info(a):
    from edgeenhance.models.macs import human
    from edgeenhance.models.registry import ZOO

    if not a.model:
        for name, e in ZOO.items():
            print(f"{name:<16}{e.fixes}")
        return
    info = model_info(a.model, a.size)
    if a.json:
        print(json.dumps(info, indent=2))
        return
    print(f"{a.model}: {info['family']} {info['config']}")
    print(f"  parameters: {info['params']:,}")
    for k, v in info.get("macs", {}).items():
        print(f"  MACs at {k}: {human(v)}")
    for name, f in info.get("forms", {}).items():
        print(f"  form {name}: in {f['input']['shape']} -> out {f['output']['shape']} (NCHW; TFLite exports: NHWC)")
    if "int8_weights" in info:
        print(f"  int8 weights: {info['int8_weights']}")
