"""ARM64 numerics check: the aarch64 LiteRT interpreter under qemu user-mode emulation.

The first run assembles an aarch64 Python 3.11 sysroot from Debian's arm64 packages and PyPI's
aarch64 wheels (numpy, ai-edge-litert and their dependencies) into a cache folder; later runs reuse it.
Every download is pinned to one version (``sysroot_pins``): the Debian packages to the versions this
host has installed (arm64 builds of the same version: Multi-Arch "same" packages must match), the
wheels to the versions this environment runs (or ``WHEEL_PINS``), so ARM and x86 run the same code. The sysroot holds
a fake ARM /proc/cpuinfo and /sys CPU list: LiteRT's CPU detection would otherwise read the x86
host's and crash under qemu. Emulation is for numerics, never for timing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgeenhance.errors import UserError

DEBIAN_PACKAGES = [
    "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "python3.11", "libc6", "libstdc++6",
    "libgcc-s1", "zlib1g", "libexpat1", "libffi8", "libssl3", "libbz2-1.0", "liblzma5", "libsqlite3-0",
    "libncursesw6", "libtinfo6", "libreadline8", "libuuid1", "libdb5.3", "libgdbm6", "libnsl2", "libtirpc3",
    "libcrypt1",
]
DEBIAN_ARCH_ALL = ["media-types"]
WHEELS_BINARY = ["numpy", "ai-edge-litert", "ml-dtypes", "protobuf"]
WHEELS_PURE = ["flatbuffers", "backports.strenum", "typing-extensions", "tqdm"]
# Versions fetched where this environment lacks a package (those of requirements-lock.txt); numpy and
# ai-edge-litert are always this environment's own, so both sides run the same interpreter and kernels.
WHEEL_PINS = {"ml-dtypes": "0.6.0", "protobuf": "7.36.2", "flatbuffers": "25.12.19", "backports.strenum": "1.2.8",
              "typing-extensions": "4.12.2", "tqdm": "4.70.1"}
FETCHES = ("Debian bookworm arm64 packages (apt-get download: python3.11 and the C libraries it links) and "
           "aarch64 wheels from PyPI (pip download: numpy, ai-edge-litert, ml-dtypes, protobuf, flatbuffers, "
           "backports.strenum, typing-extensions, tqdm), each pinned to the version this host runs")
OFFLINE_HINT = ("the first ARM64 run downloads its sysroot (deb.debian.org, pypi.org) and needs network access once; "
                "later runs use the cache (--cache, or build it on a connected machine and copy the folder)")
CPUINFO = "".join(f"processor\t: {i}\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 "
                  "atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\n"
                  "CPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n" for i in range(2))

RUNNER = r'''
import sys, json, numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType
model, inputs, outputs, kernels = sys.argv[1:5]
kw = {"num_threads": 1}
if kernels == "builtin":
    kw["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
elif kernels == "reference":
    kw["experimental_op_resolver_type"] = OpResolverType.BUILTIN_REF
it = Interpreter(model, **kw)
it.allocate_tensors()
i, o = it.get_input_details()[0], it.get_output_details()[0]
xs = np.load(inputs)
res = []
for x in xs:
    it.set_tensor(i["index"], x[None].astype(i["dtype"]))
    it.invoke()
    res.append(it.get_tensor(o["index"])[0])
np.save(outputs, np.stack(res))
print(json.dumps({"machine": __import__("platform").machine(), "numpy": np.__version__}))
'''


def default_cache() -> Path:
    return Path(os.environ.get("EDGEENHANCE_CACHE", Path.home() / ".cache" / "edgeenhance")) / "arm64"


def _run(cmd, what, check=True, **kw):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    except subprocess.TimeoutExpired:
        raise UserError(f"building the ARM64 sysroot: {what} timed out; {OFFLINE_HINT}") from None
    except OSError as e:
        raise UserError(f"building the ARM64 sysroot: {what} could not run ({e})") from None
    if check and p.returncode != 0:
        tail = " | ".join((p.stderr or p.stdout).strip().splitlines())[-400:]
        raise UserError(f"building the ARM64 sysroot: {what} failed: {tail}"
                        + (f" ({OFFLINE_HINT})" if "download" in what or "update" in what else ""))
    return p


def sysroot_pins() -> tuple[list[str], list[str]]:
    """(apt-get download arguments, pip requirements), every one pinned to an exact version."""
    from importlib.metadata import PackageNotFoundError, version

    debs = []
    for name in DEBIAN_PACKAGES + DEBIAN_ARCH_ALL:
        p = _run(["dpkg-query", "-W", "-f", "${Version}", name], f"dpkg-query {name}", check=False)
        v = p.stdout.strip()
        if p.returncode != 0 or not v:
            raise UserError(f"ARM64 emulation pins its Debian packages to this host's versions, and {name} is not "
                            f"installed here (apt-get install {name})")
        debs.append(f"{name}={v}" if name in DEBIAN_ARCH_ALL else f"{name}:arm64={v}")
    wheels = []
    for name in WHEELS_BINARY + WHEELS_PURE:
        try:
            v = version(name)
        except PackageNotFoundError:
            if name not in WHEEL_PINS:
                raise UserError(f"ARM64 emulation needs {name} installed here (pip install {name})") from None
            v = WHEEL_PINS[name]
        wheels.append(f"{name}=={v}")
    return debs, wheels


def _mirror_pin(pinned: str) -> str:
    """``name[:arch]=version`` re-pinned to the version the mirror offers (apt-cache policy's candidate)."""
    name = pinned.split("=")[0]
    out = _run(["apt-cache", "policy", name], f"apt-cache policy {name}").stdout
    cand = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.strip().startswith("Candidate:")), "")
    if not cand or cand == "(none)":
        raise UserError(f"building the ARM64 sysroot: {name} is not on the Debian mirror")
    return f"{name}={cand}"


def ensure_sysroot(cache: Path | None = None, log=print) -> Path:
    """Build (once) and return the aarch64 sysroot."""
    cache = Path(cache or default_cache())
    root = cache / "sysroot"
    if (root / ".complete").exists():
        return root
    for tool in ("qemu-aarch64-static", "apt-get", "dpkg", "dpkg-query"):
        if shutil.which(tool) is None:
            hint = "apt-get install qemu-user-static" if tool.startswith("qemu") else "a Debian-based system"
            raise UserError(f"ARM64 emulation needs {tool} ({hint})")
    debs_pinned, wheels_pinned = sysroot_pins()
    log(f"building the ARM64 sysroot in {root} (first use; about a minute): downloading {len(debs_pinned)} Debian "
        f"packages and {len(wheels_pinned)} wheels ({', '.join(wheels_pinned)}) ...")
    from edgeenhance.fileio import ensure_dir

    ensure_dir(cache)
    tmp = Path(tempfile.mkdtemp(prefix=".sysroot.", dir=cache))
    debs = tmp / "debs"
    debs.mkdir()
    try:
        archs = _run(["dpkg", "--print-foreign-architectures"], "dpkg").stdout.split()
        if "arm64" not in archs:
            if os.geteuid() != 0:
                raise UserError("the first ARM64 run needs root once (dpkg --add-architecture arm64; apt-get update)")
            _run(["dpkg", "--add-architecture", "arm64"], "dpkg --add-architecture arm64")
            _run(["apt-get", "update", "-qq"], "apt-get update", timeout=600)
        p = _run(["apt-get", "download", *debs_pinned], "apt-get download", check=False, cwd=debs, timeout=600)
        if p.returncode != 0:  # lists may be stale: refresh once
            _run(["apt-get", "update", "-qq"], "apt-get update", timeout=600)
            p = _run(["apt-get", "download", *debs_pinned], "apt-get download", check=False, cwd=debs, timeout=600)
        if p.returncode != 0:  # the mirror no longer has this host's versions for arm64: pin its own, and say so
            debs_pinned = [_mirror_pin(d) for d in debs_pinned]
            log(f"this host's Debian versions are not on the mirror for arm64; using: {' '.join(debs_pinned)}")
            _run(["apt-get", "download", *debs_pinned], "apt-get download", cwd=debs, timeout=600)
        sysroot = tmp / "sysroot"
        for deb in sorted(debs.glob("*.deb")):
            _run(["dpkg", "-x", str(deb), str(sysroot)], f"dpkg -x {deb.name}")
        wheels = tmp / "wheels"
        v = {w.split("==")[0]: w.split("==")[1] for w in wheels_pinned}
        plat = []
        for tag in ("manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_27_aarch64", "manylinux_2_28_aarch64"):
            plat += ["--platform", tag]
        # few retries, short timeouts: offline, pip would otherwise retry for minutes before failing
        common = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(wheels),
                  "--python-version", "3.11", "--implementation", "cp", "--retries", "1", "--timeout", "20"]
        binary = [w for w in wheels_pinned if w.split("==")[0] in WHEELS_BINARY]
        pure = [w for w in wheels_pinned if w.split("==")[0] in WHEELS_PURE]
        _run(common + plat + binary, "pip download (aarch64 wheels)", timeout=900)
        _run(common + ["--platform", "any"] + pure, "pip download (pure wheels)", timeout=600)
        site = sysroot / "opt" / "site"
        site.mkdir(parents=True)
        import zipfile

        for whl in wheels.glob("*.whl"):
            with zipfile.ZipFile(whl) as z:
                z.extractall(site)
        (sysroot / "proc").mkdir(exist_ok=True)
        (sysroot / "proc" / "cpuinfo").write_text(CPUINFO)
        cpu = sysroot / "sys" / "devices" / "system" / "cpu"
        cpu.mkdir(parents=True, exist_ok=True)
        for f in ("possible", "present", "online"):
            (cpu / f).write_text("0-1\n")
        (sysroot / "opt" / "runner.py").write_text(RUNNER)
        (sysroot / ".complete").write_text(json.dumps({**v, "debian": debs_pinned}))
        if root.exists():
            shutil.rmtree(root)
        os.replace(sysroot, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def run_arm64(model: Path, inputs: np.ndarray, kernels: str = "xnnpack", cache: Path | None = None,
              timeout: float = 1800) -> tuple[np.ndarray, dict]:
    """Run a .tflite on raw model inputs (already in the model's dtype range) under qemu-aarch64."""
    root = ensure_sysroot(cache)
    with tempfile.TemporaryDirectory(prefix="ee_arm64_") as d:
        inp, out = Path(d) / "in.npy", Path(d) / "out.npy"
        np.save(inp, inputs)
        env = {"PATH": "/usr/bin:/bin", "QEMU_CPU": "cortex-a76", "PYTHONPATH": "/opt/site", "PYTHONNOUSERSITE": "1",
               "HOME": d, "LANG": "C.UTF-8"}
        cmd = ["qemu-aarch64-static", "-L", str(root), str(root / "usr/bin/python3.11"), "/opt/runner.py",
               str(Path(model).resolve()), str(inp), str(out), kernels]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise UserError(f"ARM64 emulation timed out after {timeout:.0f} s") from None
        if p.returncode != 0 or not out.exists():
            raise UserError(f"the aarch64 interpreter failed (exit {p.returncode}): {(p.stderr or p.stdout).strip()[-400:]}")
        info = json.loads(p.stdout.strip().splitlines()[-1])
        return np.load(out), info


def _inputs(engine, images_dir, n, model):
    from edgeenhance.export.calib import calibration_images, synthetic_pairs

    size = tuple(engine.input_shape[2:])
    if images_dir:
        imgs = calibration_images(model, str(images_dir), n, size)
    else:
        imgs = [x for x, _ in synthetic_pairs(model, n, size, 5_000_000)]
    return np.stack([im.transpose(2, 0, 1) for im in imgs]).astype(np.float32)


def emulate_arm64(model_path: Path, images: Path | None = None, n: int = 2, kernels: str = "xnnpack",
                  cache: Path | None = None) -> dict:
    """ARM (emulated) vs x86 LiteRT on the same inputs, and both vs the PyTorch float model."""
    from edgeenhance.export.manifest import find_entry, reference_model
    from edgeenhance.metrics import max_abs_error, psnr
    from edgeenhance.models.registry import load_model
    from edgeenhance.runtime.engines import LiteRTEngine

    model_path = Path(model_path)
    if model_path.suffix != ".tflite":
        raise UserError(f"{model_path}: emulation runs .tflite models")
    if not model_path.is_file():
        raise UserError(f"{model_path}: no such model file")
    entry = find_entry(model_path)  # refuses a file that is not the one its manifest describes
    engine = LiteRTEngine(model_path, 1, xnnpack=(kernels == "xnnpack"))
    spec = reference_model(model_path, entry)
    model = None
    if spec:
        try:
            model = load_model(spec)
        except UserError:
            model = None
    x = _inputs(engine, images, n, model)
    raw = np.stack([engine.encode(xi[None])[0] for xi in x])  # the file's own layout and dtype
    arm_raw, info = run_arm64(model_path, raw, kernels, cache)
    x86_raw = np.stack([engine.invoke_raw(r[None])[0] for r in raw])
    arm = engine.decode(arm_raw)
    x86 = engine.decode(x86_raw)
    res = {"model": model_path.name, "kernels": kernels, "images": len(x), "arm": info,
           "input_shape": list(engine.input_shape), "output_dtype": str(np.dtype(engine.out["dtype"])),
           "bit_identical": bool(np.array_equal(arm_raw, x86_raw)),
           "differing_values_fraction": float(np.mean(arm_raw != x86_raw)),
           "max_abs_error_arm_vs_x86": max_abs_error(arm, x86),
           "psnr_arm_vs_x86": min(psnr(arm, x86), 999.0)}
    if model is not None and engine.output_kind == "image":
        import torch

        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        res.update(psnr_arm_vs_float=psnr(arm, ref), psnr_x86_vs_float=psnr(x86, ref),
                   max_abs_error_arm_vs_float=max_abs_error(arm, ref))
    elif model is not None:  # grid form: compare the sliced images
        from edgeenhance.evaluate import enhance_array
        from edgeenhance.runtime.engines import Engine
        from edgeenhance.runtime.pipeline import GridPipeline

        class _Fixed(Engine):
            def __init__(self, out):
                self.out, self.input_shape, self.output_kind = out, engine.input_shape, "grid"

            def run(self, _):
                return self.out[None]

        guide = entry["extras"]["guide"]
        outs_arm, outs_x86, refs = [], [], []
        for xi, ga, gx in zip(x, arm, x86):
            img = np.ascontiguousarray(xi.transpose(1, 2, 0))
            outs_arm.append(GridPipeline(_Fixed(ga), guide, engine.input_shape[2])(img))
            outs_x86.append(GridPipeline(_Fixed(gx), guide, engine.input_shape[2])(img))
            refs.append(enhance_array(model, img))
        res.update(psnr_arm_vs_float=psnr(np.stack(outs_arm), np.stack(refs)),
                   psnr_x86_vs_float=psnr(np.stack(outs_x86), np.stack(refs)),
                   max_abs_error_arm_vs_float=max_abs_error(np.stack(outs_arm), np.stack(refs)),
                   compared="sliced full-resolution images (grid form)")
    return res


def format_emulation(r: dict) -> str:
    lines = [f"{r['model']}: {r['images']} image(s), kernels={r['kernels']}, ARM side {r['arm']}",
             f"  ARM vs x86: bit-identical={r['bit_identical']}  differing values {r['differing_values_fraction'] * 100:.3f}%"
             f"  max abs error {r['max_abs_error_arm_vs_x86']:.3g}  PSNR {r['psnr_arm_vs_x86']:.2f} dB"]
    if "psnr_arm_vs_float" in r:
        lines.append(f"  vs PyTorch float: ARM {r['psnr_arm_vs_float']:.2f} dB, x86 {r['psnr_x86_vs_float']:.2f} dB"
                     f" (max abs error ARM {r['max_abs_error_arm_vs_float']:.4f})")
    return "\n".join(lines)
