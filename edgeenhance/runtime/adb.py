"""Benchmarks on Android phones over adb with TFLite's `benchmark_model`.

Finds the device, pushes the model and the benchmark binary, runs it per (threads, delegate),
parses its timings and memory, and always cleans up the device folder. `adb shell` hands its
arguments to the phone's shell as one command line, so every remote argument is shell-quoted, models
are pushed under generated names (model_0.tflite, ...) and each run has its own remote folder: two runs
on one phone never delete each other's files. Every failure the real
world produces (no device, unauthorized, several devices, device gone, crash, timeout) becomes a
clear message; results gathered so far are kept and written atomically after each run.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from edgeenhance.errors import UserError

REMOTE_BASE = "/data/local/tmp/edgeenhance"  # each run works in REMOTE_BASE/run-<random>
BENCHMARK_HELP = ("TFLite's benchmark_model for Android (arm64) is needed: pass --benchmark-binary PATH. Get the "
                  "prebuilt 'android_aarch64_benchmark_model' from the LiteRT/TensorFlow Lite performance "
                  "benchmark page, or build it with bazel: //tflite/tools/benchmark:benchmark_model "
                  "--config=android_arm64.")
DELEGATE_FLAGS = {
    "cpu": ["--use_xnnpack=false"],
    "xnnpack": ["--use_xnnpack=true"],
    "gpu": ["--use_gpu=true"],
    "nnapi": ["--use_nnapi=true"],
}


class AdbError(Exception):
    """adb or the device failed (as opposed to a user mistake, which is a UserError)."""


@dataclass
class Device:
    serial: str
    state: str
    description: str = ""


def subprocess_runner(adb_path: str):
    """A runner: callable(args, timeout) -> (returncode, stdout, stderr). Tests pass their own."""
    def run(args, timeout):
        try:
            p = subprocess.run([adb_path, *args], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AdbError(f"adb {' '.join(args[:3])} timed out after {timeout:.0f} s") from None
        return p.returncode, p.stdout, p.stderr

    return run


def parse_devices(text: str) -> list[Device]:
    """Parse `adb devices -l`."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("List of devices") or line.startswith("*"):
            continue
        parts = line.split()
        if len(parts) >= 2:
            out.append(Device(parts[0], parts[1], " ".join(parts[2:])))
    return out


def pick_device(devices: list[Device], serial: str | None) -> Device:
    if serial:
        found = [d for d in devices if d.serial == serial]
        if not found:
            listed = ", ".join(d.serial for d in devices) or "none"
            raise UserError(f"adb: device '{serial}' not found (connected: {listed})")
        dev = found[0]
    else:
        if not devices:
            raise UserError("adb: no device connected. Plug in a phone with USB debugging enabled (Settings > "
                            "Developer options) and check `adb devices`")
        if len(devices) > 1:
            raise UserError("adb: several devices connected; choose one with --device adb:SERIAL "
                            f"({', '.join(d.serial for d in devices)})")
        dev = devices[0]
    if dev.state == "unauthorized":
        raise UserError(f"adb: device {dev.serial} is unauthorized: unlock the phone and accept the "
                        "'Allow USB debugging' prompt, then retry")
    if dev.state != "device":
        raise UserError(f"adb: device {dev.serial} is '{dev.state}', not ready")
    return dev


_NUM = r"([-+0-9.eE]+)"


def parse_benchmark_output(text: str) -> dict:
    """Timings (us -> ms) and memory (MB) from benchmark_model's output; an AdbError if it has none."""
    res: dict = {}
    m = re.search(r"Inference timings in us: Init: " + _NUM + r", First inference: " + _NUM
                  + r", Warmup \(avg\): " + _NUM + r", Inference \(avg\): " + _NUM, text)
    if not m:
        tail = " | ".join(text.strip().splitlines()[-3:])
        raise AdbError(f"benchmark_model printed no timings (last lines: {tail[:300]})")
    init, first, warm, avg = (float(v) / 1000.0 for v in m.groups())
    res.update(init_ms=init, first_ms=first, warmup_avg_ms=warm, avg_ms=avg)
    s = re.search(r"count=(\d+) first=(\d+) curr=(\d+) min=(\d+) max=(\d+) avg=" + _NUM + r" std=(\d+)", text.split("Running benchmark")[-1]) \
        if "Running benchmark" in text else None
    if s:
        res.update(runs=int(s.group(1)), min_ms=int(s.group(4)) / 1000.0, max_ms=int(s.group(5)) / 1000.0,
                   std_ms=int(s.group(7)) / 1000.0)
    mem = re.search(r"Peak memory footprint \(MB\): init=" + _NUM + r" overall=" + _NUM, text)
    if mem:
        res.update(peak_memory_mb=float(mem.group(2)))
    d = re.search(r"Replacing (\d+) out of (\d+) node\(s\) with delegate", text)
    if d:
        res.update(delegated_nodes=int(d.group(1)), total_nodes=int(d.group(2)))
    return res


class AdbBench:
    def __init__(self, runner, serial: str | None = None, timeout: float = 300.0):
        self.run_adb, self.timeout = runner, timeout
        code, out, err = self.run_adb(["devices", "-l"], 30)
        if code != 0:
            raise UserError(f"adb: `adb devices` failed: {(err or out).strip()[:300]}")
        self.device = pick_device(parse_devices(out), serial)
        self.serial = self.device.serial
        self.remote_dir = f"{REMOTE_BASE}/run-{uuid.uuid4().hex[:12]}"
        self.pushed = 0

    def _adb(self, *args, timeout=None):
        code, out, err = self.run_adb(["-s", self.serial, *args], timeout or self.timeout)
        text = (out or "") + (err or "")
        if "not found" in text and "device" in text or "no devices" in text or "device offline" in text:
            raise AdbError(f"device {self.serial} disconnected ({text.strip()[:200]})")
        if code != 0:
            raise AdbError(f"adb {' '.join(args)[:120]} failed (exit {code}): {text.strip()[:300]}")
        return out

    def shell(self, *args, timeout=None):
        """A command on the phone; each argument quoted for the phone's shell (adb joins them into one line)."""
        return self._adb("shell", *map(shlex.quote, map(str, args)), timeout=timeout)

    def setup(self, binary: Path):
        self.shell("mkdir", "-p", self.remote_dir)
        self._adb("push", str(binary), f"{self.remote_dir}/benchmark_model")
        self.shell("chmod", "755", f"{self.remote_dir}/benchmark_model")

    def push(self, model: Path) -> str:
        """Push a model under a generated name: the local name never reaches the phone's shell."""
        remote = f"{self.remote_dir}/model_{self.pushed}.tflite"
        self.pushed += 1
        self._adb("push", str(model), remote)
        return remote

    def command(self, remote_model: str, threads: int, delegate: str, runs: int, warmup: int) -> list[str]:
        args = [f"{self.remote_dir}/benchmark_model", f"--graph={remote_model}", f"--num_threads={int(threads)}",
                f"--num_runs={int(runs)}", f"--warmup_runs={int(warmup)}", "--report_peak_memory_footprint=true",
                *DELEGATE_FLAGS[delegate]]
        return ["shell", *map(shlex.quote, args)]

    def bench(self, remote_model: str, threads: int, delegate: str, runs: int, warmup: int) -> dict:
        args = self.command(remote_model, threads, delegate, runs, warmup)
        code, out, err = self.run_adb(["-s", self.serial, *args], self.timeout)
        text = (out or "") + (err or "")
        if code != 0 and "Inference timings" not in text:
            if "not found" in text and "device" in text:
                raise AdbError(f"device {self.serial} disconnected during the run")
            sig = " (crashed: signal)" if code in (134, 139, -6, -11) or "Segmentation" in text else ""
            raise AdbError(f"benchmark_model exited with {code}{sig}: {text.strip().splitlines()[-1][:200] if text.strip() else ''}")
        return parse_benchmark_output(text)

    def cleanup(self):
        try:
            self.shell("rm", "-rf", self.remote_dir, timeout=30)  # this run's folder only
        except AdbError:
            pass  # the device may be gone; nothing more to clean


def run_phone_bench(files, runner, serial, binary: Path, threads: list[int], delegates: list[str], runs=50,
                    warmup=5, on_result=None, timeout=300.0) -> list[dict]:
    """Benchmark each (file, threads, delegate); returns rows (errors become rows, partial results kept)."""
    for d in delegates:
        if d not in DELEGATE_FLAGS:
            raise UserError(f"--delegate: unknown '{d}' (choose from {', '.join(DELEGATE_FLAGS)})")
    for f in files:
        if Path(f).suffix != ".tflite":
            raise UserError(f"{f}: phones run .tflite files with benchmark_model")
        if not Path(f).exists():
            raise UserError(f"{f}: no such model file")
    if binary is None:
        raise UserError(BENCHMARK_HELP)
    if not Path(binary).is_file():
        raise UserError(f"{binary}: no such file. {BENCHMARK_HELP}")
    ab = AdbBench(runner, serial, timeout)
    rows = []
    try:
        ab.setup(Path(binary))
        for f in files:
            remote = ab.push(Path(f))
            for t in threads:
                for d in delegates:
                    row = {"file": Path(f).name, "device": ab.serial, "threads": t, "delegate": d,
                           "runtime": "benchmark_model (adb)"}
                    try:
                        row.update(ab.bench(remote, t, d, runs, warmup))
                    except AdbError as e:
                        row["error"] = str(e)
                        rows.append(row)
                        if on_result:
                            on_result(rows)
                        if "disconnected" in str(e):
                            return rows
                        continue
                    rows.append(row)
                    if on_result:
                        on_result(rows)
    except AdbError as e:
        rows.append({"file": "-", "device": ab.serial, "error": str(e)})
    finally:
        ab.cleanup()
    return rows


def format_phone_table(rows: list[dict], host_rows: list[dict] | None = None) -> str:
    lines = [f"{'model file':<40}{'thr':>4}{'delegate':>9}{'init ms':>9}{'first ms':>10}{'avg ms':>9}{'peak MB':>9}"]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['file'][:39]:<40}{r.get('threads', ''):>4}{r.get('delegate', ''):>9}  failed: {r['error']}")
            continue
        pk = r.get("peak_memory_mb")
        lines.append(f"{r['file'][:39]:<40}{r['threads']:>4}{r['delegate']:>9}{r['init_ms']:>9.2f}{r['first_ms']:>10.2f}"
                     f"{r['avg_ms']:>9.2f}{'-' if pk is None else f'{pk:.1f}':>9}")
    for h in host_rows or []:
        if "latency_ms" in h:
            lines.append(f"{('host: ' + h['file'])[:39]:<40}{h['threads']:>4}{'host':>9}{'-':>9}{'-':>10}"
                         f"{h['latency_ms']['mean']:>9.2f}{h.get('peak_rss_mb', 0):>9.1f}")
    return "\n".join(lines)


@dataclass
class PhoneBench:
    """What `edgeenhance bench --device adb[:SERIAL]` measures: TFLite files on a phone, each delegate."""

    files: list
    device: str = "adb"  # adb or adb:SERIAL
    delegate: str = "cpu"  # comma list: cpu,xnnpack,gpu,nnapi
    benchmark_binary: Path | None = None
    runs: int = 10
    warmup: int = 2
    reference: bool = True  # also time the host float reference
    json: Path | None = None


def bench_adb(a: PhoneBench, threads: list[int]) -> int:
    """`edgeenhance bench --device adb[:SERIAL] ...`"""
    from edgeenhance.fileio import write_json

    serial = a.device.split(":", 1)[1] if ":" in a.device else None
    if not a.device.startswith("adb"):
        raise UserError(f"--device: '{a.device}' is not 'host' or 'adb[:SERIAL]'")
    adb_path = shutil.which("adb")
    if adb_path is None:
        raise UserError("adb is not installed: install Android platform-tools (Debian/Ubuntu: apt-get install adb)")
    delegates = [d for d in a.delegate.split(",") if d]

    def save(rows):
        if a.json:
            write_json(a.json, {"device": serial, "results": rows})

    rows = run_phone_bench(a.files, subprocess_runner(adb_path), serial, a.benchmark_binary, threads, delegates,
                           max(a.runs, 1), a.warmup, on_result=save)
    host = []
    if a.reference:  # the host float reference beside the phone numbers
        from edgeenhance.export.manifest import find_entry, reference_model
        from edgeenhance.runtime.bench import measure_isolated

        refs = {}  # float model -> (name shown, input size)
        for f in a.files:
            try:
                entry = find_entry(Path(f))
            except UserError as e:
                print(f"edgeenhance: no host reference for {Path(f).name}: {e}")
                continue
            spec = reference_model(Path(f), entry)
            if spec:
                refs.setdefault(spec, (entry["model"], tuple(entry.get("input_size", (256, 256)))))
        for spec, (label, size) in refs.items():
            host.append(measure_isolated("torch", spec, size, threads[0], 3, 1, label=label))
    save(rows + [dict(h, role="host float reference") for h in host])
    print(format_phone_table(rows, host))
    return 1 if any("error" in r for r in rows) else 0
