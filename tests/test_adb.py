import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from edgeenhance.errors import UserError
from edgeenhance.runtime.adb import (REMOTE_BASE, AdbBench, AdbError, parse_benchmark_output, parse_devices,
                                     pick_device, run_phone_bench, subprocess_runner)

FIX = Path(__file__).parent / "fixtures" / "adb"


def fx(name):
    return (FIX / name).read_text()


class FakePhone:
    """Plays the adb side: answers like the adb client does, from the fixtures."""

    def __init__(self, devices="devices_one.txt", bench="benchmark_cpu.txt", gone_after=None, crash_on=None,
                 hang_on=None):
        self.calls, self.devices, self.bench_out = [], devices, bench
        self.gone_after, self.crash_on, self.hang_on = gone_after, crash_on, hang_on
        self.benches = 0

    def __call__(self, args, timeout):
        self.calls.append(args)
        if args[:2] == ["devices", "-l"]:
            return 0, fx(self.devices), ""
        cmd = args[2:]
        if cmd[0] == "shell" and cmd[1].endswith("benchmark_model"):
            self.benches += 1
            if self.gone_after is not None and self.benches > self.gone_after:
                return 1, "", "error: device 'R58M123ABC' not found\n"
            if self.crash_on and any(self.crash_on in a for a in cmd):
                return 139, fx("benchmark_crash.txt"), ""
            if self.hang_on and any(self.hang_on in a for a in cmd):
                raise AdbError("adb -s R58M123ABC shell timed out after 300 s")
            return 0, fx(self.bench_out), ""
        return 0, "", ""


@pytest.fixture
def files(tmp_path):
    m = tmp_path / "m_int8.tflite"
    m.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 32)
    b = tmp_path / "benchmark_model"
    b.write_bytes(b"\x7fELF")
    return m, b


def test_parse_devices_and_pick():
    assert parse_devices(fx("devices_none.txt")) == []
    one = parse_devices(fx("devices_one.txt"))
    assert [(d.serial, d.state) for d in one] == [("R58M123ABC", "device")]
    with pytest.raises(UserError, match="no device connected"):
        pick_device([], None)
    with pytest.raises(UserError, match="unauthorized"):
        pick_device(parse_devices(fx("devices_unauthorized.txt")), None)
    two = parse_devices(fx("devices_two.txt"))
    with pytest.raises(UserError, match="several devices.*R58M123ABC, emulator-5554"):
        pick_device(two, None)
    assert pick_device(two, "emulator-5554").serial == "emulator-5554"
    with pytest.raises(UserError, match="'XYZ' not found"):
        pick_device(two, "XYZ")


def test_parse_benchmark_output():
    cpu = parse_benchmark_output(fx("benchmark_cpu.txt"))
    assert cpu["init_ms"] == pytest.approx(17.187)
    assert cpu["first_ms"] == pytest.approx(3512.391)
    assert cpu["warmup_avg_ms"] == pytest.approx(3512.39)  # scientific notation
    assert cpu["avg_ms"] == pytest.approx(2950.34)
    assert cpu["runs"] == 50 and cpu["std_ms"] == pytest.approx(11.093)
    assert cpu["peak_memory_mb"] == pytest.approx(46.832)
    gpu = parse_benchmark_output(fx("benchmark_gpu.txt"))  # INFO: prefixes
    assert gpu["avg_ms"] == pytest.approx(1.80122) and gpu["delegated_nodes"] == 27 and gpu["total_nodes"] == 29
    with pytest.raises(AdbError, match="no timings"):
        parse_benchmark_output(fx("benchmark_crash.txt"))


def test_commands_cleanup_and_results(files, tmp_path):
    model, binary = files
    phone = FakePhone()
    saved = []
    rows = run_phone_bench([model], phone, None, binary, [1, 4], ["cpu", "xnnpack"], runs=50, warmup=5,
                           on_result=lambda r: saved.append(list(r)))
    assert [(r["threads"], r["delegate"]) for r in rows] == [(1, "cpu"), (1, "xnnpack"), (4, "cpu"), (4, "xnnpack")]
    assert all(r["avg_ms"] == pytest.approx(2950.34) for r in rows)
    flat = [" ".join(c) for c in phone.calls]
    remote = flat[1].split()[-1]  # mkdir -p: this run's own folder
    assert flat[1].startswith(f"-s R58M123ABC shell mkdir -p {REMOTE_BASE}/run-") and len(remote) > len(REMOTE_BASE) + 8
    assert f"-s R58M123ABC push {binary} {remote}/benchmark_model" in flat
    assert f"-s R58M123ABC push {model} {remote}/model_0.tflite" in flat  # a generated name on the phone
    bench_calls = [c for c in flat if "benchmark_model --graph" in c]
    assert "--num_threads=4" in bench_calls[2] and "--use_xnnpack=false" in bench_calls[2]
    assert "--use_xnnpack=true" in bench_calls[1] and "--num_runs=50" in bench_calls[0]
    assert flat[-1] == f"-s R58M123ABC shell rm -rf {remote}"  # always cleaned up, this run's folder only
    assert len(saved) == 4


def test_device_gone_mid_run_keeps_partial_results(files):
    model, binary = files
    phone = FakePhone(gone_after=1)
    rows = run_phone_bench([model], phone, None, binary, [1, 2, 4], ["cpu"])
    assert "avg_ms" in rows[0] and "disconnected" in rows[1]["error"] and len(rows) == 2
    assert "rm -rf" in " ".join(phone.calls[-1])


def test_crash_and_timeout_become_rows(files):
    model, binary = files
    rows = run_phone_bench([model], FakePhone(crash_on="--use_nnapi"), None, binary, [2], ["nnapi", "cpu"])
    assert "crashed" in rows[0]["error"] and rows[1]["avg_ms"] > 0
    rows = run_phone_bench([model], FakePhone(hang_on="--use_gpu"), None, binary, [2], ["gpu", "cpu"])
    assert "timed out" in rows[0]["error"] and rows[1]["avg_ms"] > 0


def test_user_errors(files, tmp_path):
    model, binary = files
    with pytest.raises(UserError, match="benchmark_model for Android"):
        run_phone_bench([model], FakePhone(), None, None, [1], ["cpu"])
    with pytest.raises(UserError, match="unknown 'tpu'"):
        run_phone_bench([model], FakePhone(), None, binary, [1], ["tpu"])
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    with pytest.raises(UserError, match="phones run .tflite"):
        run_phone_bench([onnx], FakePhone(), None, binary, [1], ["cpu"])
    with pytest.raises(UserError, match="unauthorized"):
        run_phone_bench([model], FakePhone(devices="devices_unauthorized.txt"), None, binary, [1], ["cpu"])


@pytest.mark.skipif(shutil.which("adb") is None, reason="Debian's adb client is not installed (.ci/run installs it)")
def test_real_adb_client_with_no_phone():
    runner = subprocess_runner(shutil.which("adb"))
    try:
        code, out, _ = runner(["devices", "-l"], 60)
        assert code == 0 and out.startswith("List of devices attached")
        with pytest.raises(UserError, match="no device connected"):
            AdbBench(runner)
    finally:
        subprocess.run(["adb", "kill-server"], capture_output=True, timeout=30)


def test_cli_bench_adb_json_partial(files, tmp_path, monkeypatch, capsys):
    from edgeenhance.cli import main
    from edgeenhance.runtime import adb

    model, binary = files
    phone = FakePhone(gone_after=1)
    monkeypatch.setattr(adb, "subprocess_runner", lambda path: phone)
    monkeypatch.setattr(adb.shutil, "which", lambda name: "/usr/bin/adb")
    code = main(["bench", "--device", "adb:R58M123ABC", str(model), "--threads", "1,2", "--benchmark-binary",
                 str(binary), "--no-reference", "--json", str(tmp_path / "p.json")])
    assert code == 1
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["results"][0]["avg_ms"] > 0 and "error" in data["results"][1]
    assert "failed: device R58M123ABC disconnected" in capsys.readouterr().out


class ShellPhone:
    """A phone that behaves like adbd: `push` copies the file, `shell ARGS` joins ARGS with spaces and runs
    the line with `sh -c` (in a sandbox folder). benchmark_model is the pushed binary: a script printing the
    fixture's output once the --graph file exists."""

    def __init__(self, cwd):
        self.cwd, self.lines = cwd, []

    def __call__(self, args, timeout):
        if args[:2] == ["devices", "-l"]:
            return 0, fx("devices_one.txt"), ""
        cmd = args[2:]
        if cmd[0] == "push":
            Path(cmd[2]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cmd[1], cmd[2])
            return 0, "", ""
        line = " ".join(cmd[1:])
        self.lines.append(line)
        p = subprocess.run(["sh", "-c", line], cwd=self.cwd, capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr


@pytest.mark.parametrize("name", ["a;touch${IFS}PWNED;.tflite", "b$(touch PWNED).tflite",
                                  "with space `touch PWNED`.tflite"])
def test_file_names_never_reach_the_phone_shell(tmp_path, monkeypatch, name):
    from edgeenhance.runtime import adb

    phone_root, sandbox = tmp_path / "phone", tmp_path / "cwd"
    sandbox.mkdir()
    monkeypatch.setattr(adb, "REMOTE_BASE", str(phone_root / "edgeenhance"))
    model = tmp_path / name
    model.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 32)
    binary = tmp_path / "benchmark_model"
    binary.write_text("#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in --graph=*) test -f \"${a#--graph=}\" || "
                      "{ echo \"no graph $a\"; exit 3; };; esac; done\n"
                      f"cat {shlex.quote(str(FIX / 'benchmark_cpu.txt'))}\n")
    phone = ShellPhone(sandbox)
    rows = run_phone_bench([model], phone, None, binary, [2], ["cpu"])
    assert not list(sandbox.iterdir()) and not list(tmp_path.glob("PWNED"))  # no command ran on the phone
    assert rows[0]["file"] == name and rows[0]["avg_ms"] == pytest.approx(2950.34), rows
    assert not any(p.is_file() for p in phone_root.rglob("*"))  # and its folder was removed


def test_two_runs_on_one_phone_keep_their_own_folders(tmp_path, monkeypatch, files):
    from edgeenhance.runtime import adb

    model, binary = files
    monkeypatch.setattr(adb, "REMOTE_BASE", str(tmp_path / "phone"))
    first, second = AdbBench(FakePhone()), AdbBench(FakePhone())
    assert first.remote_dir != second.remote_dir and first.remote_dir.startswith(str(tmp_path / "phone") + "/run-")
    calls = FakePhone()
    second.run_adb = calls
    second.cleanup()
    assert calls.calls == [["-s", "R58M123ABC", "shell", "rm", "-rf", second.remote_dir]]
