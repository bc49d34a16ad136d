import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import save
from edgeenhance.cli import main, parse_size


def run(*args):
    return subprocess.run([sys.executable, "-m", "edgeenhance", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_help_is_light():
    code = ("import sys; from edgeenhance.cli import build_parser; build_parser().format_help(); "
            "print(sorted(m for m in ('torch', 'tensorflow', 'coremltools', 'nncf', 'litert_torch', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_size_parsing():
    assert parse_size("1080x1920") == (1080, 1920)
    assert parse_size("256") == (256, 256)
    with pytest.raises(Exception):
        parse_size("big")


def test_enhance_files_and_folder(tmp_path):
    img = np.random.default_rng(0).random((21, 34, 3)).astype(np.float32) * 0.2
    save(tmp_path / "in" / "a.png", img)
    save(tmp_path / "in" / "b.jpg", img)
    r = run("enhance", tmp_path / "in", "-o", tmp_path / "out", "--quiet")
    assert r.returncode == 0, r.stderr
    from edgeenhance.data.imageio import read_image

    out = read_image(tmp_path / "out" / "a.png")
    assert out.shape == (21, 34, 3) and out.mean() > img.mean()
    assert (tmp_path / "out" / "b.jpg").exists()


def test_enhance_unreadable_file_is_reported_without_traceback(tmp_path):
    save(tmp_path / "good.png", np.full((8, 8, 3), 0.1, np.float32))
    (tmp_path / "bad.png").write_bytes(b"garbage")
    r = run("enhance", tmp_path / "good.png", tmp_path / "bad.png", "-o", tmp_path / "out", "--quiet")
    assert r.returncode == 1
    assert "bad.png" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]


@pytest.mark.parametrize("args,msg", [
    (["enhance", "nope.png", "-o", "x"], "no such file"),
    (["enhance", "x.png", "-o", "x", "--model", "nosuchmodel"], "neither a model name"),
    (["eval", "--model", "bilateral", "--data", "/nonexistent"], "no such dataset folder"),
    (["info", "/tmp/not_a_checkpoint.safetensors"], "neither a model name"),
    (["train", "cyclegan", "-o", "x"], "say where the images are"),
])
def test_user_errors_are_clean(tmp_path, args, msg, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.png").write_bytes(b"")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_corrupt_checkpoint_is_clean(tmp_path, capsys):
    (tmp_path / "c.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{bad json}xxxxx")
    assert main(["info", str(tmp_path / "c.safetensors")]) == 2
    assert "not a readable safetensors checkpoint" in capsys.readouterr().err


def test_info_json(capsys):
    assert main(["info", "bilateral", "--json", "--size", "1080x1920"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["params"] > 50_000 and info["macs"]["1080x1920"] > info["macs"]["256x256"]
    assert set(info["forms"]) == {"full", "grid"}
    assert info["forms"]["grid"]["input"]["shape"] == [1, 3, 128, 128]
    assert "int8_weights" not in info  # the bilateral model ships no int8-tuned weights
    assert main(["info", "student-small", "--json"]) == 0
    tuned = json.loads(capsys.readouterr().out)["int8_weights"]  # read from that checkpoint's metadata
    assert tuned.startswith("student_small_int8.safetensors") and "every layer int8, one scale per weight tensor" in tuned


def test_data_synth_and_eval_json(tmp_path, capsys):
    assert main(["data", "synth", "--kind", "paired", "--n", "2", "--size", "32", "--workers", "1", "--quiet",
                 "-o", str(tmp_path / "d")]) == 0
    assert main(["eval", "--model", "bilateral", "--data", str(tmp_path / "d"), "--json", str(tmp_path / "r.json"),
                 "--quiet"]) == 0
    res = json.loads((tmp_path / "r.json").read_text())["results"]
    assert set(res) == {"input", "bilateral"} and res["bilateral"]["n"] == 2
    assert "PSNR" in capsys.readouterr().out
