"""`edgeenhance distill`: the CycleGAN teacher into a phone-sized student."""

from __future__ import annotations

from edgeenhance.cli.args import FMT, positive, progress
from edgeenhance.cli.train import check_lr, check_resume, common_train_options, run_options, stopped
from edgeenhance.train.configs import DistillConfig


def add(sub):
    d = sub.add_parser("distill", formatter_class=FMT, help="distil the CycleGAN teacher into a phone-sized student",
                       description="Train a small student generator to reproduce the teacher (over -> normal):\n"
                                   "pixel L1 + matching of the teacher's bottleneck features, optionally an\n"
                                   "adversarial term with the teacher's discriminator (--adv W --discriminator CKPT).")
    D = DistillConfig  # the defaults are its own (test_cli: each help states its default)
    d.add_argument("--teacher", required=True, help="teacher.safetensors from `train cyclegan`")
    d.add_argument("--student", default=D.student_size, choices=["tiny", "small"], help="student size (default small)")
    d.add_argument("--data", default="synthetic",
                   help="'synthetic' or a folder of over-exposed photos (default: synthetic)")
    d.add_argument("--n-images", type=positive, default=1000, help="rendered training images (default 1000)")
    d.add_argument("--steps", type=positive, default=D.steps, help="optimizer steps (default 3000)")
    d.add_argument("--batch", type=positive, default=D.batch,
                   help="images per step and process (under torchrun the global batch is this x processes; "
                        "default 8)")
    d.add_argument("--crop", type=positive, default=D.crop, help="training crop side in pixels (default 256)")
    d.add_argument("--lr", type=float, default=D.lr, help="Adam learning rate, cosine-decayed (default 2e-3)")
    d.add_argument("--feat", type=float, default=D.w_feat, help="weight of feature matching (default 1.0)")
    d.add_argument("--adv", type=float, default=D.w_adv, help="weight of the adversarial term (default 0.0: off)")
    d.add_argument("--discriminator", default=None,
                   help="discriminator_normal.safetensors from `train cyclegan`, for --adv (default: none)")
    d.add_argument("--val-images", type=positive, default=16,
                   help="held-out rendered images for PSNR(student, teacher) (default 16)")
    d.add_argument("--val-every", type=positive, default=D.val_every, help="steps between validations (default 250)")
    d.add_argument("--cache-teacher", action="store_true",
                   help="run the teacher once per image up front, then train on pixel L1 only (fast on CPU)")
    d.add_argument("--init", default=None, help="start from this student checkpoint (fine-tune; default: none)")
    common_train_options(d)
    d.set_defaults(func=cmd_distill)


def cmd_distill(a):
    from edgeenhance.train.data import heldout_over_pairs, unpaired_data
    from edgeenhance.train.distill import check_inputs, distill

    check_lr(a)
    check_resume(a)
    teacher, disc, init = check_inputs(a.teacher, a.discriminator, a.init, a.student, a.adv)  # before rendering
    if a.data == "synthetic":
        over, _ = unpaired_data("synthetic", "synthetic", a.n_images, a.crop, a.seed, progress=progress(a))
    else:
        over, _ = unpaired_data(a.data, a.data, a.n_images, a.crop, a.seed, a.skip_bad, progress(a))
    val = [x for x, _ in heldout_over_pairs(a.val_images, a.crop)]
    cfg = DistillConfig(student_size=a.student, steps=a.steps, batch=a.batch, crop=a.crop, lr=a.lr, w_feat=a.feat,
                        w_adv=a.adv, discriminator=disc, init=init, cache_teacher=a.cache_teacher,
                        val_every=a.val_every, **run_options(a))
    r = distill(a.out, teacher, over, val, cfg)
    if r["stopped"]:
        return stopped(r)
    print(f"best PSNR(student, teacher) on held-out images {r['best_psnr_vs_teacher']:.2f} dB -> {a.out / 'best.safetensors'}")
