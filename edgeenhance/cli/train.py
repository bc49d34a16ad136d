"""`edgeenhance train bilateral|cyclegan`, and the options every trainer shares."""

from __future__ import annotations

from pathlib import Path

from edgeenhance.cli.args import FMT, positive, progress, seconds
from edgeenhance.errors import UserError
from edgeenhance.train.configs import BilateralConfig, CycleGANConfig, RunConfig


def common_train_options(q):
    q.add_argument("--resume", action="store_true",
                   help="continue from OUT/last.safetensors, exactly as the uninterrupted run would have")
    q.add_argument("--save-every", type=seconds, default=RunConfig.save_every_s, metavar="SECONDS",
                   help="also write OUT/last.safetensors this often (0: after every step); Ctrl-C or SIGTERM "
                        "saves it and stops (default 300)")
    q.add_argument("--seed", type=int, default=RunConfig.seed,
                   help="random seed of initialisation and data (default 0)")
    q.add_argument("--device", default="auto", help="cpu, cuda or auto (default auto: cuda when present; under torchrun each process "
                        "takes its own GPU)")
    q.add_argument("--skip-bad", action="store_true",
                   help="warn about and skip unreadable or unmatched files (default: stop with an error)")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.add_argument("--lr-scale", choices=["none", "linear"], default=RunConfig.lr_scale,
                   help="under torchrun: 'linear' multiplies --lr by the number of processes (the global batch\n"
                        "grows with them: per-process --batch x processes); 'none' keeps --lr (default none)")
    q.add_argument("--compile", action="store_true",
                   help="torch.compile the trained networks: the first steps are slow (minutes on a CPU); falls "
                        "back to eager with a warning where it cannot compile (default off)")
    q.add_argument("--no-amp", action="store_true", help="no bf16 mixed precision on GPU (default: bf16 on GPU)")
    q.add_argument("-o", "--out", required=True, type=Path, help="run folder (checkpoints, logs)")


def run_options(a) -> dict:
    """The ``RunConfig`` fields, from the options ``common_train_options`` added."""
    return dict(resume=a.resume, save_every_s=a.save_every, seed=a.seed, device=a.device, progress=progress(a),
                lr_scale=a.lr_scale, compile=a.compile, amp=False if a.no_amp else None)


def stopped(r) -> int:
    """Exit status of a run a signal stopped (the trainer said where it saved): 128 + the signal's
    number, as a shell reports it."""
    return 128 + r["signum"]


def add(sub):
    B, C = BilateralConfig, CycleGANConfig  # the defaults are theirs (test_cli: each help states its default)
    p = sub.add_parser("train", help="train an enhancer", description="Train an enhancer. Every trainer also runs under torchrun on several processes,\n"
                                                                       "GPUs or machines: torchrun --nproc-per-node N -m edgeenhance train ...\n"
                                                                       "(see README, 'Training on several GPUs or machines').")
    s = p.add_subparsers(dest="train_command", metavar="MODEL")
    b = s.add_parser("bilateral", formatter_class=FMT, help="bilateral-grid illumination enhancer",
                     description="Train the bilateral-grid enhancer for under-exposed and low-light photos, or with\n"
                                 "--exposure over for over-exposed ones (the zoo's bilateral-over).\n"
                                 "--data takes a folder of well-exposed real photos (exposure errors are synthesized\n"
                                 "from them on the fly: linear light, -1..-6 EV or +1..+3 EV, ISO noise, clipping\n"
                                 "per channel at sensor white, tone curve, JPEG), a paired dataset folder (LOL, FiveK, MSEC, input/+target/) or 'synthetic'\n"
                                 "(rendered pairs). --zero-ref adds real dark photos without targets (Zero-DCE\n"
                                 "losses), --brackets real dark frames with their bracket's fusion as target.\n"
                                 "--zero-reference with a plain folder of (dark) photos trains on them\n"
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
    b.add_argument("--exposure", choices=["under", "over"], default=B.exposure,
                   help="which exposure errors to fix: synthesized from --data photos, rendered, or the MSEC "
                        "subset (default: under)")
    b.add_argument("--zero-ref", action="append", type=Path, default=[], metavar="DIR",
                   help="folder of real badly exposed photos without targets (repeatable; default: none). "
                        "--exposure under: frames darker than mean luminance 0.3, trained with zero-reference "
                        "losses; over: frames brighter than 0.6, scored at each validation and the targets "
                        "of --teacher")
    b.add_argument("--zero-ref-weight", type=float, default=B.zero_ref_weight,
                   help="weight of those losses (default 0.1)")
    b.add_argument("--zero-ref-level", type=float, default=B.zero_ref_level,
                   help="exposure level those losses pull 16x16 patches towards (default 0.5; Zero-DCE: 0.6)")
    b.add_argument("--zero-ref-one-sided", action="store_true",
                   help="the exposure term only lifts patches darker than the level; brighter ones (a sky, a "
                        "lamp) are left as they are instead of being pulled down to it (default: both ways)")
    b.add_argument("--zero-ref-below", type=float, default=B.zero_ref_below, metavar="LUM",
                   help="apply the zero-reference losses only to training crops darker than this mean "
                        "luminance, e.g. 0.1: really dark frames (night, LOL), where synthesized pairs cannot "
                        "say how far to lift; brighter crops (a dim room with a lit window) keep only the "
                        "penalty on newly blown pixels (default 1: every crop)")
    b.add_argument("--zero-ref-highlights", type=float, default=B.zero_ref_highlights, metavar="LUM",
                   help="also apply them to crops whose brightest 2%% are above this luminance, e.g. 0.7: a dim "
                        "room with a lit window or a street with lamps, whose shadows synthesized pairs do not "
                        "teach to lift (no validation pair is like that); default 1: none")
    b.add_argument("--zero-ref-shadows", type=float, default=B.zero_ref_shadows, metavar="LUM",
                   help="with those losses, also lift the darkest 30%% of each such crop to at least this mean "
                        "luminance, e.g. 0.3: brightens the shadows of a night frame without pushing its "
                        "mid-tones as far as a higher --zero-ref-level would (default 0: off)")
    b.add_argument("--clip-weight", type=float, default=B.clip_weight, metavar="W",
                   help="weight of the penalty on pushing pixels that were not bright (luminance below 0.9) past "
                        f"white, on the pairs and the --zero-ref frames (default {B.clip_weight:g})")
    b.add_argument("--max-gain", type=float, metavar="G",
                   help="the largest brightening the model may apply to a pixel (its illumination S is at least "
                        "1/G): the darkest real night frames want more than 20x, but noise and the int8 file's "
                        "error grow with it (at 40x the low-light model's int8 grid failed 38 dB against float; "
                        "default: the model's, 20)")
    b.add_argument("--ema", type=float, default=B.ema, metavar="DECAY",
                   help="validate and save a moving average of the weights with this decay, e.g. 0.998 "
                        "(about the last 500 steps); smooths the swings of competing losses (default 0: off)")
    b.add_argument("--highlights", type=float, default=B.highlights, metavar="P",
                   help="share of the under-exposed pairs synthesized from --data photos whose lamps, windows and "
                        "sky were brighter than the photo's white, so they stay bright in the dark copy as in a "
                        f"real night photo (0..1, default {B.highlights:g})")
    b.add_argument("--ev-range", type=float, nargs=2, metavar=("LO", "HI"),
                   help="exposure errors synthesized from --data photos, in EV (stops) from the photo (default: "
                        "-6 -1 for --exposure under, 1 3 for over)")
    b.add_argument("--teacher", type=Path, metavar="CKPT",
                   help="CycleGAN generator (teacher.safetensors): its outputs on the --zero-ref frames are "
                        "their targets (distillation; default: none)")
    b.add_argument("--teacher-weight", type=float, default=B.teacher_weight,
                   help="weight of the teacher's targets (default 1)")
    b.add_argument("--render-mix", type=float, default=B.render_mix,
                   help="fraction of each batch taken from rendered pairs next to real photos (default 0)")
    b.add_argument("--brackets", action="append", type=Path, default=[], metavar="DIR",
                   help="folder of exposure brackets (multi-exposure frames of static scenes, e.g. SICE part 1; "
                        "frames of a scene consecutive by name, found by their likeness): every frame darker "
                        "than mean luminance 0.3 is a training input, the exposure fusion of its bracket its "
                        "target (repeatable; default: none)")
    b.add_argument("--bracket-mix", type=float, default=B.bracket_mix,
                   help=f"fraction of each batch taken from the bracket pairs (default {B.bracket_mix:g})")
    b.add_argument("--init", metavar="MODEL",
                   help="start from this bilateral model, a zoo name (e.g. bilateral) or a checkpoint, instead of "
                        "the identity: fine-tuning, with a fresh optimizer and schedule (default: none)")
    b.add_argument("--zero-reference", action="store_true",
                   help="train on --data with zero-reference losses only (no targets used); a plain folder "
                        "of photos is then taken as is, and checkpoints are chosen by a no-reference score")
    b.add_argument("--steps", type=positive, default=B.steps, help="optimizer steps (default 3000)")
    b.add_argument("--batch", type=positive, default=B.batch,
                   help="images per step and process (under torchrun the global batch is this x processes; "
                        "default 8)")
    b.add_argument("--crop", type=positive, default=B.crop, help="training crop side in pixels (default 192)")
    b.add_argument("--lr", type=float, default=B.lr, help="Adam learning rate, cosine-decayed (default 1e-3)")
    b.add_argument("--n-images", type=positive, default=B.n_images, help="rendered training pairs (default 512)")
    b.add_argument("--val-images", type=positive, default=B.val_images,
                   help="validation pairs, or held-out photos without targets (default 24)")
    b.add_argument("--val-every", type=positive, default=B.val_every, help="steps between validations (default 250)")
    b.add_argument("--workers", type=int, default=B.workers,
                   help="data-loading processes for photo folders (default 1)")
    common_train_options(b)
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
    c.add_argument("--epochs", type=positive, default=C.epochs,
                   help="epochs: half at constant LR, half decaying linearly to 0 (default 10)")
    c.add_argument("--batch", type=positive, default=C.batch,
                   help="images per domain, step and process (default 4)")
    c.add_argument("--crop", type=positive, default=C.crop, help="training crop side in pixels (default 256)")
    c.add_argument("--lr", type=float, default=C.lr, help="Adam learning rate (default 2e-4)")
    c.add_argument("--lambda-cycle", type=float, default=C.lam,
                   help="weight of the cycle-consistency loss (default 10.0)")
    c.add_argument("--lambda-identity", type=float, default=C.lam_id,
                   help="weight of the identity loss, relative to --lambda-cycle (default 0.5)")
    c.add_argument("--gan-mode", choices=["lsgan", "vanilla"], default=C.gan_mode,
                   help="adversarial loss: least squares or log-likelihood (default lsgan)")
    c.add_argument("--pool-size", type=int, default=C.pool_size,
                   help="earlier fakes kept to show the discriminators; 0 = none (default 50)")
    c.add_argument("--ngf", type=positive, default=C.ngf, help="generator width (default 64)")
    c.add_argument("--n-blocks", type=positive, default=C.n_blocks, help="generator ResNet blocks (default 9)")
    c.add_argument("--ndf", type=positive, default=C.ndf, help="discriminator width (default 64)")
    common_train_options(c)
    c.set_defaults(func=cmd_train_cyclegan)
    p.set_defaults(func=lambda a: p.print_help())


def check_lr(a):
    if not 0 < a.lr < float("inf"):  # also refuses nan
        raise UserError(f"--lr must be a positive number, got {a.lr}")


def check_resume(a):
    """--resume: refuse a missing or unreadable OUT/last.safetensors before any data is loaded."""
    if getattr(a, "resume", False):
        from edgeenhance.train.common import TrainingState

        TrainingState(a.out / "last.safetensors")


def cmd_train_bilateral(a):
    from edgeenhance.train.bilateral import train_bilateral

    if not (a.lr > 0):  # also refuses nan
        raise UserError(f"--lr must be a positive number, got {a.lr}")
    if a.max_gain is not None and not a.max_gain >= 1.0:
        raise UserError(f"--max-gain must be 1 or more, got {a.max_gain}")
    check_resume(a)
    cfg = BilateralConfig(data=a.data, layout=a.layout, exposure=a.exposure, zero_reference=a.zero_reference,
                          zero_ref=tuple(a.zero_ref), zero_ref_weight=a.zero_ref_weight,
                          zero_ref_level=a.zero_ref_level, zero_ref_one_sided=a.zero_ref_one_sided, ema=a.ema,
                          zero_ref_below=a.zero_ref_below,
                          zero_ref_highlights=a.zero_ref_highlights,
                          zero_ref_shadows=a.zero_ref_shadows, clip_weight=a.clip_weight,
                          highlights=a.highlights, ev_range=None if a.ev_range is None else tuple(a.ev_range),
                          teacher=a.teacher, teacher_weight=a.teacher_weight,
                          render_mix=a.render_mix, brackets=tuple(a.brackets), bracket_mix=a.bracket_mix,
                          steps=a.steps, batch=a.batch, crop=a.crop, lr=a.lr,
                          n_images=a.n_images, val_images=a.val_images, val_every=a.val_every,
                          workers=max(0, a.workers), skip_bad=a.skip_bad,
                          model_config=None if a.max_gain is None else {"min_illumination": 1.0 / a.max_gain},
                          init=a.init,
                          **run_options(a))
    r = train_bilateral(a.out, cfg)
    if r["stopped"]:
        return stopped(r)
    b = r["best"]
    if r["selected_by"] == "noref":
        print(f"best validation no-reference score {b['score']:.4f} -> {a.out / 'best.safetensors'}")
    else:
        print(f"best validation PSNR {b['psnr']:.2f} dB, SSIM {b.get('ssim', 0):.4f} -> {a.out / 'best.safetensors'}")


def cmd_train_cyclegan(a):
    from edgeenhance.models.registry import check_config
    from edgeenhance.train.cyclegan import train_cyclegan
    from edgeenhance.train.data import trainab, unpaired_data

    check_lr(a)
    check_resume(a)
    check_config("resnet_generator", {"ngf": a.ngf, "n_blocks": a.n_blocks})  # before allocating, not after
    check_config("patch_discriminator", {"ndf": a.ndf})
    if a.data:
        over, normal = trainab(a.data, a.skip_bad)
    elif a.over and a.normal:
        over, normal = unpaired_data(a.over, a.normal, a.n_images, a.crop, a.seed, a.skip_bad, progress(a))
    else:
        raise UserError("say where the images are: --over DIR --normal DIR, --data DIR (trainA/trainB), "
                        "or --over synthetic --normal synthetic")
    cfg = CycleGANConfig(epochs=a.epochs, batch=a.batch, crop=a.crop, lr=a.lr, lam=a.lambda_cycle,
                         lam_id=a.lambda_identity, gan_mode=a.gan_mode, pool_size=a.pool_size, ngf=a.ngf,
                         n_blocks=a.n_blocks, ndf=a.ndf, **run_options(a))
    r = train_cyclegan(a.out, over, normal, cfg)
    if r["stopped"]:
        return stopped(r)
    print(f"teacher written to {Path(r['out_dir']) / 'teacher.safetensors'}")
