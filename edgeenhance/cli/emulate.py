"""`edgeenhance emulate arm64`: a TFLite file under qemu with the aarch64 LiteRT build."""

from __future__ import annotations

from pathlib import Path

from edgeenhance.cli.args import FMT, positive


def add(sub):
    e = sub.add_parser("emulate", formatter_class=FMT,
                       help="run a TFLite model with the aarch64 LiteRT interpreter under qemu",
                       description="ARM64 numerics check: runs MODEL.tflite with the aarch64 build of LiteRT under\n"
                                   "qemu user-mode emulation, on the same inputs as the host run, and reports\n"
                                   "ARM vs x86 and ARM vs the PyTorch float model.\n"
                                   "The first run needs network access once: it downloads, each pinned to the version\n"
                                   "this host runs, Debian bookworm arm64 packages (apt-get download: python3.11,\n"
                                   "libpython3.11-stdlib and the C libraries they link, e.g. libc6, libssl3, zlib1g)\n"
                                   "and aarch64 wheels from PyPI (pip download: numpy, ai-edge-litert, ml-dtypes,\n"
                                   "protobuf, flatbuffers, backports.strenum, typing-extensions, tqdm), and assembles\n"
                                   "an aarch64 Python sysroot in the cache folder; later runs work offline.\n"
                                   "Needs qemu-user-static, and root once if dpkg lacks the arm64 architecture.")
    e.add_argument("arch", choices=["arm64"])
    e.add_argument("model", type=Path)
    e.add_argument("--images", type=Path, help="folder of input photos (default: 2 rendered images)")
    e.add_argument("--n", type=positive, default=2)
    e.add_argument("--kernels", choices=["xnnpack", "builtin", "reference"], default="xnnpack")
    e.add_argument("--cache", type=Path, default=None, help="sysroot cache (default ~/.cache/edgeenhance/arm64)")
    e.add_argument("--json", type=Path)
    e.set_defaults(func=cmd_emulate)


def cmd_emulate(a):
    from edgeenhance.runtime.emulate import emulate_arm64, format_emulation

    res = emulate_arm64(a.model, a.images, a.n, a.kernels, a.cache)
    print(format_emulation(res))
    if a.json:
        from edgeenhance.fileio import write_json

        write_json(a.json, res)
