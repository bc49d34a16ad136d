"""`edgeenhance data ...`: synthetic and re-exposed datasets you can inspect."""

from __future__ import annotations

from pathlib import Path

from edgeenhance.cli.args import FMT, parse_size, positive, progress


def add(sub):
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

    out = write_dataset(a.out, a.kind, a.n, a.exposure, a.size, a.seed, a.workers, progress(a))
    print(f"wrote {a.kind} dataset to {out}")


def cmd_data_reexpose(a):
    from edgeenhance.data.synth import exposure_errors_from_folder

    out = exposure_errors_from_folder(a.src, a.out, a.seed, progress(a))
    print(f"wrote MSEC-style dataset to {out}")
