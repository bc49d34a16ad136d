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
    assert r.returncode == 2  # a user error like any other (was 1)
    assert "bad.png" in r.stderr and "Traceback" not in r.stderr
    assert "enhanced 1 of 2 image(s)" in r.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]


@pytest.mark.parametrize("args,msg", [
    (["enhance", "nope.png", "-o", "x"], "no such file"),
    (["enhance", "x.png", "-o", "x", "--model", "nosuchmodel"], "neither a model name"),
    (["eval", "--model", "bilateral", "--data", "/nonexistent"], "no such dataset folder"),
    (["info", "/tmp/not_a_checkpoint.safetensors"], "neither a model name"),
    (["train", "cyclegan", "-o", "x"], "say where the images are"),
    (["train", "bilateral", "-o", "x", "--ema", "1.5"], "--ema must be in (0, 1)"),
    (["train", "bilateral", "-o", "x", "--brackets", ".", "--bracket-mix", "1.5"], "--bracket-mix must be in (0, 1)"),
    (["train", "bilateral", "-o", "x", "--brackets", "."], "--brackets needs --data"),
    (["train", "bilateral", "-o", "x", "--brackets", "nosuch"], "--brackets nosuch: no such folder"),
    (["train", "bilateral", "-o", "x", "--zero-ref-below", "0"], "--zero-ref-below must be in (0, 1]"),
    (["train", "bilateral", "-o", "x", "--zero-ref-highlights", "1.5"], "--zero-ref-highlights must be in (0, 1]"),
    (["train", "bilateral", "-o", "x", "--zero-ref-shadows", "nan"], "--zero-ref-shadows must be in [0, 1)"),
    (["train", "bilateral", "-o", "x", "--clip-weight", "-1"], "--clip-weight must be 0 or more"),
    (["train", "bilateral", "-o", "x", "--max-gain", "0.5"], "--max-gain must be 1 or more"),
    (["train", "bilateral", "-o", "x", "--ev-range", "-1", "2"], "--ev-range must be two numbers LO <= HI"),
    (["train", "bilateral", "-o", "x", "--ev-range", "-1", "-5"], "--ev-range must be two numbers LO <= HI"),
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
    assert "int8_weights" not in info  # its int8 files come from the float weights (post-training)
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


def _clean_error(capsys, code, msg):
    err = capsys.readouterr().err
    assert code == 2 and msg in err, err
    assert err.startswith("edgeenhance: error:") and err.count("\n") == 1 and "Traceback" not in err, err


def _unwritable_folder(tmp_path):
    import os
    from pathlib import Path

    if os.geteuid() != 0:
        d = tmp_path / "read-only"
        d.mkdir()
        d.chmod(0o500)
        return d
    if Path("/sys/kernel").is_dir():  # root writes anywhere but in sysfs
        return Path("/sys/kernel")
    pytest.skip("no folder this root process cannot write to")


@pytest.mark.parametrize("args", [
    ["export", "--model", "student-small", "--target", "onnx", "--size", "16", "--quiet"],
    ["train", "bilateral", "--steps", "1", "--quiet"],
    ["data", "synth", "--kind", "paired", "--n", "1", "--quiet"],
    ["report", "r.json"],
])
@pytest.mark.parametrize("where", ["unwritable", "under a file"])
def test_outputs_that_cannot_be_written_are_clean_errors(tmp_path, capsys, monkeypatch, args, where):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    out = _unwritable_folder(tmp_path) / "edgeenhance-out" if where == "unwritable" else tmp_path / "afile" / "out"
    _clean_error(capsys, main([*args, "-o", str(out)]), "afile is a file" if where == "under a file" else "cannot write")
    assert not out.exists()


def test_unwritable_json_beside_a_folder_output(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    _clean_error(capsys, main(["bench", str(tmp_path / "m.onnx"), "--json", str(tmp_path / "afile" / "b.json")]),
                 "is a file, not a folder")


@pytest.mark.parametrize("config,msg", [
    ('{"width": 12, "colour": 3}', "unknown bilateral setting 'colour'"),
    ('{"width": 12', "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"grid_size": -4}', "grid_size=-4 is out of bounds"),
    ('{"grid_size": 0}', "do not make a model"),
    ('{"width": 4000}', "GiB of weights"),  # refused before anything is allocated
])
def test_checkpoint_metadata_is_checked_before_building(tmp_path, capsys, config, msg):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "c.safetensors"
    save_file({"model.x": torch.zeros(1)}, str(path), metadata={"family": "bilateral", "config": config,
                                                                "name": "c", "meta": "{}"})
    _clean_error(capsys, main(["info", str(path)]), msg)


def test_enhance_on_cuda_without_cuda(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    save(tmp_path / "a.png", np.full((8, 8, 3), 0.1, np.float32))
    _clean_error(capsys, main(["enhance", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--device", "cuda",
                               "--quiet"]), "no CUDA device")
    _clean_error(capsys, main(["enhance", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--device", "gpu0",
                               "--quiet"]), "'gpu0' is not a device")


@pytest.mark.parametrize("args", [
    ["train", "cyclegan", "--over", "synthetic", "--normal", "synthetic", "--n-images", "2", "--epochs", "1"],
    ["distill", "--teacher", "t.safetensors", "--n-images", "2", "--steps", "1"],
    ["quantize", "--qat", "--model", "student-small", "--steps", "2"],
])
@pytest.mark.parametrize("lr", ["nan", "-1", "inf"])
def test_learning_rate_must_be_positive(tmp_path, capsys, monkeypatch, args, lr):
    monkeypatch.chdir(tmp_path)
    _clean_error(capsys, main([*args, "--lr", lr, "-o", str(tmp_path / "run"), "--quiet"]), "--lr must be a positive")


def test_oversized_cyclegan_is_refused_before_allocating(tmp_path, capsys):
    _clean_error(capsys, main(["train", "cyclegan", "--over", "synthetic", "--normal", "synthetic", "--ngf", "5000",
                               "-o", str(tmp_path / "run"), "--quiet"]), "GiB of weights")


@pytest.mark.parametrize("trainer", [["train", "bilateral"], ["train", "cyclegan", "--over", "synthetic", "--normal",
                                                              "synthetic"], ["distill", "--teacher", "t.safetensors"]])
@pytest.mark.parametrize("state", [b"garbage", b"\x10\x00\x00\x00\x00\x00\x00\x00{bad json}xxxxx", "no step"])
def test_resume_from_a_corrupt_state_is_a_clean_error(tmp_path, capsys, trainer, state):
    import torch
    from safetensors.torch import save_file

    run = tmp_path / "run"
    run.mkdir()
    if state == "no step":
        save_file({"model.x": torch.zeros(1)}, str(run / "last.safetensors"), metadata={"extra": "{}"})
    else:
        (run / "last.safetensors").write_bytes(state)
    _clean_error(capsys, main([*trainer, "--resume", "-o", str(run), "--quiet"]), "not a readable training state")


def _photo(path, value=0.1, size=(8, 8)):
    return save(path, np.full((*size, 3), value, np.float32))


def test_enhance_never_replaces_an_input_without_overwrite(tmp_path, capsys):
    _photo(tmp_path / "in" / "a.png")
    before = (tmp_path / "in" / "a.png").read_bytes()
    assert main(["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "in"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "would replace input photos" in err and "a.png" in err and "--overwrite" in err
    assert (tmp_path / "in" / "a.png").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["a.png"]
    (tmp_path / "link").symlink_to(tmp_path / "in")  # the same folder under another name
    assert main(["enhance", str(tmp_path / "in" / "a.png"), "-o", str(tmp_path / "link"), "--quiet"]) == 2
    assert (tmp_path / "in" / "a.png").read_bytes() == before
    assert main(["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "in"), "--quiet", "--overwrite"]) == 0
    assert (tmp_path / "in" / "a.png").read_bytes() != before


def test_enhance_refuses_outputs_two_inputs_would_share(tmp_path, capsys):
    from PIL import Image

    for p in ("a/x.png", "b/x.png", "c/y.png"):
        _photo(tmp_path / p)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "c" / "y.gif")  # written as y.png
    args = [str(tmp_path / p) for p in ("a", "b", "c/y.png", "c/y.gif")]
    assert main(["enhance", *args, "-o", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "2 output name(s) would be written by more than one input" in err
    assert f"{tmp_path / 'a' / 'x.png'}, {tmp_path / 'b' / 'x.png'}" in err and "y.gif" in err
    assert not (tmp_path / "out").exists()  # refused before anything was written
    # one file named twice (as itself and inside its folder) is one input, counted once
    assert main(["enhance", str(tmp_path / "a"), str(tmp_path / "a" / "x.png"), "-o", str(tmp_path / "out"),
                 "--quiet"]) == 0
    assert "enhanced 1 of 1 image(s)" in capsys.readouterr().out


def test_enhance_max_pixels_fails_one_file_not_the_batch(tmp_path, capsys):
    _photo(tmp_path / "big.png", size=(40, 40))
    _photo(tmp_path / "small.png")
    assert main(["enhance", str(tmp_path / "big.png"), str(tmp_path / "small.png"), "-o", str(tmp_path / "out"),
                 "--quiet", "--max-pixels", "1000"]) == 2
    out, err = capsys.readouterr()
    assert "big.png: 40x40 = 1,600 pixels, over the limit of 1,000" in err and "Traceback" not in err
    assert "enhanced 1 of 2 image(s)" in out and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["small.png"]
    assert main(["enhance", str(tmp_path / "big.png"), "-o", str(tmp_path / "out2"), "--quiet",
                 "--max-pixels", "0.002M"]) == 0


def test_tiled_student_equals_untiled():
    """Big photos run in tiles (memory bounded); the output must not change, tile borders included."""
    from edgeenhance.evaluate import enhance_array
    from edgeenhance.models.registry import load_model

    model = load_model("student-small")
    img = np.random.default_rng(0).random((70, 93, 3)).astype(np.float32)  # not a multiple of the stride
    whole = enhance_array(model, img, tile=0)
    for tile in (16, 40):  # tiles smaller and larger than the overlap
        assert np.abs(enhance_array(model, img, tile=tile) - whole).max() < 1e-5
    inplace = img.copy()
    assert np.abs(enhance_array(model, inplace, tile=16, inplace=True) - whole).max() < 1e-5


def test_tiling_is_declared_by_local_models_only():
    import torch

    from edgeenhance.models.bilateral import BilateralEnhancer
    from edgeenhance.models.cyclegan import ResnetGenerator
    from edgeenhance.models.registry import load_model

    # the bilateral grid and InstanceNorm see the whole frame: no tiles
    assert not hasattr(BilateralEnhancer, "receptive_radius") and not hasattr(ResnetGenerator, "receptive_radius")
    model = load_model("student-small")
    r, x = model.receptive_radius, torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base = model(x)
        for p in (60, 61, 62, 63):  # every phase of the stride-4 grid
            y = x.clone()
            y[0, :, p, p] += 0.5
            changed = torch.nonzero((model(y) - base).abs().amax(dim=(0, 1)) > 0)
            assert (changed - p).abs().max() <= r  # nothing outside the declared radius moves


def _no_data(monkeypatch):
    import edgeenhance.train.data as data

    def fail(*a, **kw):
        raise AssertionError("training data was loaded or rendered before the inputs were checked")

    for name in ("unpaired_data", "heldout_over_pairs", "trainab", "paired_data"):
        monkeypatch.setattr(data, name, fail)


@pytest.mark.parametrize("case, msg", [
    ("broken teacher", "--teacher: "), ("student as teacher", "--teacher must be a CycleGAN generator"),
    ("student as discriminator", "--discriminator must be a CycleGAN discriminator"),
    ("tiny init for small", "--init: a student with"), ("missing init", "--init: "),
])
def test_distill_checks_its_checkpoints_before_any_data_work(tmp_path, capsys, monkeypatch, case, msg):
    from edgeenhance.models.cyclegan import ResnetGenerator
    from edgeenhance.models.registry import save_checkpoint
    from edgeenhance.models.student import student

    _no_data(monkeypatch)
    (tmp_path / "broken.pt").write_bytes(b"\x80\x02 a torch pickle, not safetensors")
    save_checkpoint(tmp_path / "teacher.safetensors", ResnetGenerator(ngf=4, n_blocks=1))
    save_checkpoint(tmp_path / "tiny.safetensors", student("tiny"))
    teacher, extra = {
        "broken teacher": ("broken.pt", []), "student as teacher": ("tiny.safetensors", []),
        "student as discriminator": ("teacher.safetensors", ["--discriminator", "tiny.safetensors", "--adv", "0.1"]),
        "tiny init for small": ("teacher.safetensors", ["--init", "tiny.safetensors"]),
        "missing init": ("teacher.safetensors", ["--init", "nothing.safetensors"]),
    }[case]
    monkeypatch.chdir(tmp_path)
    _clean_error(capsys, main(["distill", "--teacher", teacher, *extra, "-o", "run", "--quiet"]), msg)


@pytest.mark.parametrize("trainer", [["train", "cyclegan", "--over", "synthetic", "--normal", "synthetic"],
                                     ["distill", "--teacher", "t.safetensors"], ["train", "bilateral"]])
def test_resume_without_a_state_is_refused_before_any_data_work(tmp_path, capsys, monkeypatch, trainer):
    _no_data(monkeypatch)
    _clean_error(capsys, main([*trainer, "--resume", "-o", str(tmp_path / "run"), "--quiet"]), "no training state at")


def _parsers():
    """(name, parser) of `train bilateral`, `train cyclegan` and `distill`."""
    import argparse

    from edgeenhance.cli import build_parser

    def sub(p):
        return next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices

    top = sub(build_parser())
    train = sub(top["train"])
    return [("train bilateral", train["bilateral"]), ("train cyclegan", train["cyclegan"]), ("distill", top["distill"])]


@pytest.mark.parametrize("name, parser", _parsers())
def test_every_training_option_has_a_help_that_states_its_default(name, parser):
    import re

    for a in parser._actions:
        if "-h" in a.option_strings:
            continue
        flag = a.option_strings[-1]
        assert a.help and a.help.strip(), f"{name} {flag}: no help"
        if a.default is None or a.nargs == 0 or a.default == []:  # flags: off unless given; lists: empty
            continue
        if isinstance(a.default, (int, float)):
            numbers = [float(n) for n in re.findall(r"\d+(?:\.\d+)?(?:e-?\d+)?", a.help)]
            assert float(a.default) in numbers, f"{name} {flag}: help does not state the default {a.default}"
        else:
            assert str(a.default) in a.help, f"{name} {flag}: help does not state the default {a.default}"


def test_a_signal_stops_training_with_the_state_saved(tmp_path, capsys):
    import signal

    import edgeenhance.train.bilateral as bil
    from conftest import signal_on_call

    run = tmp_path / "run"
    args = ["train", "bilateral", "--steps", "4", "--crop", "32", "--batch", "1", "--n-images", "2", "--val-images", "1",
            "-o", str(run), "--quiet"]
    with signal_on_call(bil, "supervised_loss", 2, signal.SIGINT):
        code = main(args)
    out = capsys.readouterr().out
    assert code == 130 and "SIGINT: stopped after step 2" in out and "--resume" in out
    assert (run / "last.safetensors").is_file() and not (run / "final.safetensors").exists()
    assert main([*args, "--resume"]) == 0 and (run / "final.safetensors").is_file()


def test_zero_reference_training_on_a_plain_folder_of_dark_photos(tmp_path, capsys):
    for i in range(5):
        _photo(tmp_path / "dark" / f"img_{i}.png", 0.05 + 0.02 * i, (40, 48))
    code = main(["train", "bilateral", "--data", str(tmp_path / "dark"), "--zero-reference", "--steps", "2",
                 "--crop", "32", "--batch", "2", "--workers", "0", "-o", str(tmp_path / "run"), "--quiet",
                 "--max-gain", "40"])
    out = capsys.readouterr().out
    assert code == 0 and "best validation no-reference score" in out and "PSNR" not in out
    from edgeenhance.models.registry import load_model

    assert load_model(str(tmp_path / "run" / "final.safetensors")).guide_params()["min_illumination"] == 0.025
