"""Exported files are trusted only as exported: each manifest entry carries the parameters of its own
file, re-exports and interrupted exports leave no stale entry, a changed file or a crafted manifest is
refused, and checkpoints are referenced portably."""

import json
import shutil

import numpy as np
import pytest

from edgeenhance.cli import main
from edgeenhance.errors import UserError
from edgeenhance.export import Exporter
from edgeenhance.export.manifest import find_entry
from edgeenhance.models.registry import save_checkpoint
from edgeenhance.runtime.bench import bench
from test_export import tiny_bilateral, tiny_student

pytestmark = pytest.mark.filterwarnings("ignore")
QUIET = dict(verify_images=1, progress=False, log=lambda *_: None)


def checkpoint(tmp_path, model=None, name=None):
    path = tmp_path / "runs" / "deep" / "best.safetensors"
    save_checkpoint(path, model or tiny_bilateral(), name=name)
    return path


def grid_exporter(ckpt, calib_images, size=(40, 56)):
    return Exporter(str(ckpt), form="grid", size=size, calib_images=calib_images, **QUIET)


def one(folder, pattern):
    """The exported file matching ``pattern`` (these tests do not depend on how files are named)."""
    (path,) = folder.glob(pattern)
    return path


def extras_of(out, name):
    m = json.loads((out / "manifest.json").read_text())
    return next(e.get("extras", m["extras"]) for e in m["files"] if e["file"] == name)


def test_reexport_with_other_settings_never_lends_its_parameters_to_older_files(tmp_path):
    ckpt, out = checkpoint(tmp_path), tmp_path / "out"
    grid_exporter(ckpt, 2).export(["onnx"], ["fp32"], out)
    onnx = one(out, "*_grid_fp32.onnx")
    first = extras_of(out, onnx.name)
    grid_exporter(ckpt, 4, size=(64, 48)).export(["tflite"], ["fp32"], out)  # another grid normalization
    tflite = one(out, "*_grid_fp32.tflite")
    m = json.loads((out / "manifest.json").read_text())
    assert m["extras"]["guide"]["grid_scale"] != first["guide"]["grid_scale"]
    for e in m["files"]:  # whatever is listed carries the parameters its file was exported with
        assert e["file"] != onnx.name or e.get("extras", m["extras"]) == first
    res = bench([onnx, tflite], (48, 64), threads=1, runs=1, warmup=1, progress=False)
    rows = {r["file"].split("/")[-1]: r for r in res["results"]}
    assert rows[tflite.name]["psnr_vs_float"] > 60  # fp32: the float model's own numbers
    assert "manifest.json" in rows[onnx.name].get("error", "")  # not 9-44 dB from borrowed parameters


def test_the_same_settings_again_keep_earlier_files(tmp_path):
    ckpt, out = checkpoint(tmp_path), tmp_path / "out"
    grid_exporter(ckpt, 2).export(["onnx"], ["fp32"], out)
    m = grid_exporter(ckpt, 2).export(["tflite"], ["fp32"], out)
    assert {e["file"] for e in m["files"]} == {"best_grid_fp32.onnx", "best_grid_fp32.tflite"}
    assert m["files"][0]["extras"] == m["files"][1]["extras"] == m["extras"]


def test_an_interrupted_export_leaves_no_entry_for_the_file_it_replaced(tmp_path, monkeypatch):
    ckpt, out = checkpoint(tmp_path), tmp_path / "out"
    grid_exporter(ckpt, 2).export(["onnx"], ["fp32"], out)
    onnx = one(out, "*_grid_fp32.onnx")
    old_sha = json.loads((out / "manifest.json").read_text())["files"][0]["sha256"]

    def ctrl_c(*_, **__):
        raise KeyboardInterrupt

    monkeypatch.setattr(Exporter, "verify", ctrl_c)  # the new file is written, then the user stops
    with pytest.raises(KeyboardInterrupt):
        grid_exporter(ckpt, 4, size=(64, 48)).export(["onnx"], ["fp32"], out)
    from edgeenhance.fileio import sha256

    assert sha256(onnx) != old_sha  # the file was replaced ...
    assert json.loads((out / "manifest.json").read_text())["files"] == []  # ... and its old entry is gone
    assert find_entry(onnx) is None


def test_a_changed_file_is_refused_by_bench_emulate_and_the_pipelines(tmp_path):
    ckpt = checkpoint(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    grid_exporter(ckpt, 2).export(["onnx"], ["fp32"], a)
    grid_exporter(ckpt, 4, size=(64, 48)).export(["onnx"], ["fp32"], b)
    onnx = one(a, "*_grid_fp32.onnx")
    shutil.copyfile(one(b, "*_grid_fp32.onnx"), onnx)  # replaced behind the manifest's back
    with pytest.raises(UserError, match="sha256"):
        find_entry(onnx)
    row = bench([onnx], (48, 64), threads=1, runs=1, warmup=1, progress=False)["results"][-1]
    assert "sha256" in row["error"] and row["user_error"]
    from edgeenhance.runtime.emulate import emulate_arm64

    (a / "m.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 32)
    m = json.loads((a / "manifest.json").read_text())
    m["files"].append(dict(m["files"][0], file="m.tflite", target="tflite"))
    (a / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UserError, match="sha256"):  # before any emulation work
        emulate_arm64(a / "m.tflite")


@pytest.mark.parametrize("edit,msg", [
    (lambda e: e["extras"]["guide"].update(bins=100_000_000), "bins"),
    (lambda e: e["extras"]["guide"].update(bins=2), "grid_scale"),  # 24 channels of scale for a 48-channel grid
    (lambda e: e["extras"]["guide"].update(w1=[[1.0, 2.0]] * 8), "w1"),
    (lambda e: e["extras"]["guide"].update(b1=[0.0] * 9999), "b1"),
    (lambda e: e["extras"]["guide"].update(grid_scale=[0.0] * 48), "grid_scale"),
    (lambda e: e["extras"]["guide"].update(w2=[["x"] * 8]), "w2"),
    (lambda e: e["extras"].pop("guide"), "guide"),
    (lambda e: e.update(input_size=[-4, 10]), "input_size"),
    (lambda e: e.update(size_bytes="big"), "size_bytes"),
    (lambda e: e.update(form="<b>"), "form"),
], ids=["huge-bins", "bins-vs-scale", "w1-shape", "b1-shape", "zero-scale", "w2-text", "no-guide", "input-size",
        "size-bytes", "form"])
def test_crafted_manifest_fields_are_refused_before_use(tmp_path, edit, msg):
    ckpt, out = checkpoint(tmp_path), tmp_path / "out"
    grid_exporter(ckpt, 2).export(["onnx"], ["fp32"], out)
    m = json.loads((out / "manifest.json").read_text())
    entry = m["files"][0]
    entry.setdefault("extras", m["extras"])
    edit(entry)
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UserError, match=msg):
        find_entry(one(out, "*_grid_fp32.onnx"))
    # and bench reports it as the file's error (the slicing pass never sees the numbers)
    row = bench([one(out, "*_grid_fp32.onnx")], (48, 64), threads=1, runs=1, warmup=1, reference=False,
                progress=False)["results"][0]
    assert msg in row["error"]


def test_manifest_file_names_stay_in_their_folder(tmp_path):
    (tmp_path / "x.onnx").write_bytes(b"x")
    (tmp_path / "manifest.json").write_text(json.dumps({"files": [{"file": "../x.onnx", "sha256": "0" * 64}]}))
    with pytest.raises(UserError, match="plain file name"):
        find_entry(tmp_path / "x.onnx")
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match="not a readable manifest"):
        find_entry(tmp_path / "x.onnx")


def test_fused_slice_refuses_shapes_that_disagree():
    from edgeenhance.models.slicing import make_test_vectors
    from edgeenhance.runtime.fused_slice import fused_slice

    v = make_test_vectors()
    img, p = np.asarray(v["image_hwc"], np.float32), v["guide"]
    grid = np.asarray(v["network_output_chw"], np.float32) / np.asarray(p["grid_scale"], np.float32)[:, None, None] \
        + np.asarray(p["grid_offset"], np.float32)[:, None, None]
    assert np.abs(fused_slice(img, grid, p) - np.asarray(v["expected_hwc"])).max() < 1e-4
    with pytest.raises(ValueError, match="inconsistent"):
        fused_slice(img, grid, dict(p, bins=100_000_000))
    with pytest.raises(ValueError, match="inconsistent"):
        fused_slice(img, grid, dict(p, b1=p["b1"][:-1]))


def test_checkpoint_exports_are_named_by_stem_and_survive_moves(tmp_path):
    ckpt = checkpoint(tmp_path, name="../../../from-metadata")
    out = tmp_path / "exports" / "v1"
    grid_exporter(ckpt, 2).export(["onnx"], ["fp32"], out)
    assert sorted(p.name for p in out.iterdir()) == ["best_grid_fp32.onnx", "manifest.json"]
    text = (out / "manifest.json").read_text()
    assert str(tmp_path) not in text and "from-metadata" not in text
    assert json.loads(text)["checkpoint"]["path"] == "../../runs/deep/best.safetensors"

    def psnr_after_move():
        rows = bench([moved / "exports" / "v1" / "best_grid_fp32.onnx"], (48, 64), threads=1, runs=1, warmup=1,
                     progress=False)["results"]
        assert "error" not in rows[-1], rows
        return rows[-1].get("psnr_vs_float"), rows

    moved = tmp_path / "elsewhere"
    shutil.move(str(tmp_path / "runs"), str(moved / "runs"))  # checkpoint and exports move together
    shutil.move(str(tmp_path / "exports"), str(moved / "exports"))
    psnr, rows = psnr_after_move()
    assert psnr > 60 and rows[0]["file"] == "best (PyTorch fp32)" and str(tmp_path) not in json.dumps(rows)
    shutil.move(str(moved / "runs"), str(tmp_path / "gone"))  # the checkpoint alone moves away
    psnr, rows = psnr_after_move()
    assert psnr is None and len(rows) == 1  # still benchmarked, without a reference it cannot find
    shutil.copyfile(tmp_path / "gone" / "deep" / "best.safetensors", moved / "exports" / "v1" / "best.safetensors")
    assert psnr_after_move()[0] > 60  # a copy beside the manifest is found (by name and sha256)


def test_qat_checkpoint_name_never_comes_from_metadata(tmp_path):
    ckpt = tmp_path / "ck" / "stu.safetensors"
    from edgeenhance.models.registry import load_model

    save_checkpoint(ckpt, load_model("student-small"), name="../../../escaped")
    out = tmp_path / "a" / "b" / "c" / "out"
    assert main(["quantize", "--qat", "--model", str(ckpt), "--steps", "2", "--images", "2", "--crop", "32",
                 "--target", "onnx", "--size", "32x32", "--calib-images", "2", "--verify-images", "1",
                 "--min-psnr", "0", "--quiet", "-o", str(out)]) == 0
    assert (out / "stu-qat.safetensors").exists()
    assert not list(tmp_path.rglob("escaped*"))


def test_bench_keeps_going_past_a_corrupt_file(tmp_path, capsys):
    Exporter(tiny_student(), size=(32, 32), calib_images=2, **QUIET).export(["onnx"], ["fp32"], tmp_path)
    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    code = main(["bench", str(tmp_path / "tinystu_full_fp32.onnx"), str(tmp_path / "bad.onnx"), "--size", "32x32",
                 "--runs", "1", "--warmup", "1", "--quiet", "--json", str(tmp_path / "b.json")])
    assert code == 1
    rows = json.loads((tmp_path / "b.json").read_text())["results"]
    assert rows[0]["latency_ms"]["p50"] > 0 and "not a loadable ONNX model" in rows[1]["error"]
    assert "failed: not a loadable" in capsys.readouterr().out.replace(str(tmp_path / "bad.onnx") + ": ", "")
    # only bad files: nothing measured, a user error (exit 2)
    assert main(["bench", str(tmp_path / "bad.onnx"), "--quiet"]) == 2


def test_grid_pipeline_checks_the_grid_against_the_guide():
    from edgeenhance.runtime.engines import Engine
    from edgeenhance.runtime.pipeline import GridPipeline

    m = tiny_bilateral()

    class Fixed(Engine):
        name, input_shape, output_kind = "fixed", (1, 3, 32, 32), "grid"

        def run(self, x):
            return np.zeros((1, 36, 8, 8), np.float32)  # 3 bins' worth, the guide says 4

    with pytest.raises(UserError, match="36 grid channels"):
        GridPipeline(Fixed(), m.guide_params(), 32)(np.zeros((16, 16, 3), np.float32))
