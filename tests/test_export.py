import copy
import json
import sys

import numpy as np
import pytest
import torch

from edgeenhance.errors import UserError
from edgeenhance.export import Exporter
from edgeenhance.export.verify import THRESHOLDS
from edgeenhance.fileio import sha256
from edgeenhance.models.bilateral import BilateralEnhancer
from edgeenhance.models.student import StudentGenerator
from edgeenhance.runtime.engines import dequantize, open_engine, quantize

pytestmark = pytest.mark.filterwarnings("ignore")


def tiny_bilateral():
    torch.manual_seed(0)
    m = BilateralEnhancer(lowres=32, grid_size=8, bins=4, width=4).eval()
    with torch.no_grad():
        m.gridnet.out.weight.normal_(0, 0.02)
    m.name = "tinybil"
    return m


def tiny_student():
    torch.manual_seed(0)
    m = StudentGenerator(width=4, blocks=1).eval()
    m.name = "tinystu"
    return m


@pytest.fixture(scope="module")
def grid_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    ex = Exporter(tiny_bilateral(), form="grid", size=(40, 56), calib_images=8, verify_images=2, progress=False,
                  log=lambda *_: None)
    return ex, ex.export(["tflite", "onnx", "coreml"], ["fp32", "int8", "w8a8"], out), out


def test_every_target_exported_and_verified(grid_export):
    _, manifest, out = grid_export
    got = {(e["target"], e["precision"]) for e in manifest["files"]}
    assert got == {(t, p) for t in ("tflite", "onnx", "coreml") for p in ("fp32", "int8")} | {("coreml", "w8a8")}
    for e in manifest["files"]:
        v = e["verification"]
        assert v["passed"] and v["psnr_vs_float"] >= v["threshold_db"]
        assert "psnr_vs_target" in v and v["images"] == 3  # 2 badly exposed + 1 well exposed
        if e["target"] == "coreml":
            assert "not executed" in e["runtime"]  # Linux: replay, labelled as such
        assert e["sha256"] == sha256(out / e["file"])


def test_manifest_contents(grid_export):
    _, manifest, out = grid_export
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["model"] == "tinybil" and on_disk["form"] == "grid"
    assert {"torch", "onnxruntime", "ai-edge-litert"} <= set(on_disk["tool_versions"])
    guide = on_disk["extras"]["guide"]
    assert len(guide["grid_scale"]) == 12 * 4 and guide["bins"] == 4
    tfl = next(e for e in on_disk["files"] if e["target"] == "tflite" and e["precision"] == "int8")
    # TFLite files are channel-last by default; ONNX keeps PyTorch's NCHW
    assert tfl["input"]["shape"] == [1, 32, 32, 3] and tfl["input"]["layout"] == "NHWC"
    assert tfl["input"]["range"] == [0.0, 1.0]
    assert tfl["output"]["shape"] == [1, 8, 8, 48] and tfl["output"]["layout"] == "NHWC"
    onx = next(e for e in on_disk["files"] if e["target"] == "onnx" and e["precision"] == "fp32")
    assert onx["input"]["shape"] == [1, 3, 32, 32] and onx["input"]["layout"] == "NCHW"


def test_coreml_w8a8_quantizes_activations(grid_export):
    import collections

    import coremltools as ct

    _, manifest, out = grid_export

    def op_counts(name):
        spec = ct.models.MLModel(str(out / name), skip_model_load=True).get_spec()
        return collections.Counter(op.type for f in spec.mlProgram.functions.values()
                                   for b in f.block_specializations.values() for op in b.operations)

    w8a8, int8 = op_counts("tinybil_grid_w8a8.mlpackage"), op_counts("tinybil_grid_int8.mlpackage")
    assert w8a8["quantize"] >= 4 and w8a8["dequantize"] >= 4  # int8 activations between layers
    assert int8["quantize"] == 0 and int8["constexpr_affine_dequantize"] > 0  # int8 weights only
    assert w8a8["constexpr_affine_dequantize"] >= int8["constexpr_affine_dequantize"]  # every weight int8
    entry = next(e for e in manifest["files"] if e["precision"] == "w8a8")
    assert "replay" in entry["runtime"] and "not executed" in entry["runtime"]


def test_int8_files_are_smaller(grid_export):
    _, manifest, out = grid_export
    size = {(e["target"], e["precision"]): e["size_bytes"] for e in manifest["files"]}
    # tiny test model: headers weigh more than weights here; shipped models are measured in benchmarks/
    assert size[("tflite", "int8")] < 0.85 * size[("tflite", "fp32")]


def _tflite_ops(path):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(str(path))
    it.allocate_tensors()
    dtype = {t["index"]: t["dtype"] for t in it.get_tensor_details()}
    return [(op["op_name"], [dtype[i] for i in op["outputs"]]) for op in it._get_ops_details()]


def test_int8_float_modules_compute_in_float(grid_export):
    _, manifest, out = grid_export
    assert "global_fc" in manifest["int8_float_modules"]["modules"]
    ops = _tflite_ops(out / "tinybil_grid_int8.tflite")
    mean = [o for name, o in ops if name == "MEAN"]
    assert mean and mean[0] == [np.float32]  # the global path runs in float ...
    convs = [o[0] for name, o in ops if name == "CONV_2D"]
    assert convs[0] == np.int8 and np.float32 in convs  # ... the splat convs in int8 ...
    assert convs[-1] == np.float32  # ... and the op writing the grid in float: no int8 range to clip at
    assert manifest["int8_float_modules"]["tflite_output_op"].startswith("float")
    assert any(name == "DEQUANTIZE" for name, _ in ops)  # float layers read int8-stored weights ...
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(str(out / "tinybil_grid_int8.tflite"))
    details = it._get_ops_details()
    dequantized = {i for op in details if op["op_name"] == "DEQUANTIZE" for i in op["outputs"]}
    float_out = {t["index"] for t in it.get_tensor_details() if t["dtype"] == np.float32}
    float_convs = [op["inputs"][1] for op in details if op["op_name"] == "CONV_2D" and op["outputs"][0] in float_out]
    assert len(float_convs) == 3 and all(w in dequantized for w in float_convs[:-1])  # global_fc's two convs
    # ... but the op writing the grid keeps float weights: their rounding went straight into S (a weight
    # average trained for 4,000 steps fell to 35.6 dB on a real dark frame with them int8, 45.4 without)
    assert float_convs[-1] not in dequantized
    import onnx

    g = onnx.load(str(out / "tinybil_grid_int8.onnx")).graph
    producers = {o: n.op_type for n in g.node for o in n.output}
    conv = {k: next(n for n in g.node if n.name.startswith(f"/{k}/") and n.op_type == "Conv")
            for k in ("splat", "global_fc", "out")}
    assert producers[conv["splat"].input[0]] == "DequantizeLinear"
    assert producers[conv["out"].input[0]] != "DequantizeLinear"  # the node writing the grid reads float ...
    assert producers.get(conv["out"].input[1]) != "DequantizeLinear"  # ... with float weights, as in TFLite
    assert producers.get(conv["global_fc"].input[0]) != "DequantizeLinear"


@pytest.mark.slow
def test_shipped_bilateral_int8_holds_on_a_dark_photo(tmp_path):
    """Regression: with an all-int8 graph this dark image fell to 24 dB (global path rounded). The model
    trained on real photos lifts dark frames up to 20x, which amplifies int8 weight rounding: the bar here
    is the exporter's own int8 threshold (35 dB). Plain post-training int8 of the shipped weights (the op
    writing the grid in float): 47.6 dB on this image; int8-tuned (QAT) weights made from them: 33.3."""
    from edgeenhance.evaluate import enhance_array
    from edgeenhance.metrics import psnr
    from edgeenhance.runtime.bench import test_image
    from edgeenhance.runtime.pipeline import make_pipeline

    ex = Exporter("bilateral", form="grid", size=(256, 256), calib_images=16, verify_images=1, progress=False,
                  log=lambda *_: None)
    ex.export(["tflite"], ["int8"], tmp_path)
    img = test_image((256, 256))
    assert img.mean() < 0.25
    pipe = make_pipeline(open_engine(tmp_path / "bilateral_grid_int8.tflite", 2), {"extras": ex.extras})
    assert psnr(pipe(img), enhance_array(ex.model, img)) >= THRESHOLDS["int8"]


@pytest.mark.slow
def test_shipped_student_int8_holds_on_a_clipped_photo(tmp_path):
    """Regression: the first student with an all-int8 graph fell to 28.7 dB on this mostly clipped photo."""
    from edgeenhance.evaluate import enhance_array
    from edgeenhance.metrics import psnr
    from edgeenhance.runtime.bench import test_image

    ex = Exporter("student-small", size=(256, 256), calib_images=16, verify_images=1, progress=False,
                  log=lambda *_: None)
    ex.export(["tflite"], ["int8"], tmp_path)
    img = test_image((256, 256), exposure="over")
    assert (img.max(-1) > 0.98).mean() > 0.5
    out = open_engine(tmp_path / "student-small_full_int8.tflite", 2).run(img.transpose(2, 0, 1)[None].copy())
    assert psnr(out[0].transpose(1, 2, 0), enhance_array(ex.model, img)) >= 32.0


def test_verification_catches_a_broken_model(grid_export):
    ex, manifest, out = grid_export
    path = out / next(e["file"] for e in manifest["files"] if e["target"] == "tflite" and e["precision"] == "fp32")
    assert ex.verify(path, "tflite", "fp32")["passed"]
    broken = tiny_bilateral()
    with torch.no_grad():
        broken.gridnet.out.bias.add_(0.3)  # weights perturbed after export
    res = ex.verify(path, "tflite", "fp32", model=broken)
    assert not res["passed"] and res["psnr_vs_float"] < 40


def test_failed_threshold_removes_file_and_advises(tmp_path):
    ex = Exporter(tiny_student(), size=(32, 32), calib_images=4, verify_images=1, min_psnr=300, progress=False,
                  log=lambda *_: None)
    with pytest.raises(UserError, match=r"below the 300 dB threshold.*--qat"):
        ex.export(["onnx"], ["fp32", "int8"], tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert "tinystu_full_int8.onnx" not in names and "tinystu_full_fp32.onnx" in names
    assert [e["precision"] for e in json.loads((tmp_path / "manifest.json").read_text())["files"]] == ["fp32"]


def test_quantized_io_round_trip(tmp_path):
    ex = Exporter("student-small", size=(32, 32), calib_images=4, verify_images=1, io_dtype="int8", progress=False,
                  log=lambda *_: None)
    manifest = ex.export(["tflite"], ["int8"], tmp_path)
    e = next(f for f in manifest["files"] if f["precision"] == "int8")
    assert e["input"]["dtype"] == "int8" and "quantization" in e["input"]
    eng = open_engine(tmp_path / e["file"])
    from edgeenhance.data.synth import render_single

    x = render_single(5, "over", (32, 32)).transpose(2, 0, 1)[None].copy()
    y = eng.run(x)
    assert y.dtype == np.float32 and y.shape == x.shape and 0 <= y.min() and y.max() <= 1.0001
    from edgeenhance.models.registry import load_model

    with torch.no_grad():
        ref = load_model("student-small")(torch.from_numpy(x)).numpy()
    assert np.abs(y - ref).mean() < 0.03
    d = eng.inp
    assert np.abs(dequantize(quantize(x, d), d) - x).max() <= d["quantization"][0] / 2 + 1e-6


def test_onnx_dynamic_takes_other_sizes(tmp_path):
    ex = Exporter(tiny_student(), size=(32, 32), dynamic=True, verify_images=1, progress=False, log=lambda *_: None)
    ex.export(["onnx"], ["fp32"], tmp_path)
    eng = open_engine(tmp_path / "tinystu_full_fp32.onnx")
    assert eng.run(np.zeros((1, 3, 48, 20), np.float32)).shape == (1, 3, 48, 20)
    with pytest.raises(UserError, match="ONNX only"):
        ex.convert("tflite", tmp_path, "fp32")


def test_size_the_model_cannot_take(tmp_path, grid_export):
    with pytest.raises(UserError, match="multiples of 4"):
        Exporter(tiny_student(), size=(30, 32))
    _, manifest, out = grid_export
    eng = open_engine(out / "tinybil_grid_fp32.tflite")
    with pytest.raises(UserError, match="exported for 32x32"):
        eng.run(np.zeros((1, 3, 64, 64), np.float32))


def test_wrong_type_corrupt_and_missing_runtime(tmp_path, monkeypatch):
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(UserError, match="unknown model file type"):
        open_engine(tmp_path / "m.txt")
    (tmp_path / "bad.tflite").write_bytes(b"\x00" * 64)
    with pytest.raises(UserError, match="not a TFLite flatbuffer"):
        open_engine(tmp_path / "bad.tflite")
    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    with pytest.raises(UserError, match="not a loadable ONNX model"):
        open_engine(tmp_path / "bad.onnx")
    with pytest.raises(UserError, match="no such model file"):
        open_engine(tmp_path / "none.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(UserError, match="pip install"):
        open_engine(tmp_path / "bad.onnx")


def test_gpu_delegate_report(grid_export):
    from edgeenhance.export.gpu_report import gpu_delegate_report

    _, _, out = grid_export
    rep = gpu_delegate_report(out / "tinybil_grid_fp32.tflite")
    assert rep["total_ops"] == sum(rep["ops"].values()) > 5
    assert "CONV_2D" in rep["ops"]
    assert rep["gpu_ops"] + sum(rep["cpu_fallback_ops"].values()) == rep["total_ops"]


def test_qat_finetune_lowers_loss_and_changes_weights():
    from edgeenhance.quantize.qat import qat_finetune

    m = tiny_student()
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(3)  # exaggerate ranges so fake quantization bites
    imgs = [np.random.default_rng(i).random((32, 32, 3)).astype(np.float32) for i in range(4)]
    tuned, hist = qat_finetune(m, imgs, steps=40, lr=1e-3, batch=4, crop=32, progress=False)
    assert np.mean(hist[-8:]) < np.mean(hist[:8])
    assert any(not torch.equal(a, b) for a, b in zip(m.parameters(), tuned.parameters()))


def test_qat_keeps_float_modules_float_and_tunes_the_rest():
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    from edgeenhance.quantize.qat import _qconfig_mapping, qat_finetune

    m = tiny_bilateral()
    prepared = prepare_qat_fx(m.gridnet.train(), _qconfig_mapping(m.gridnet), (torch.rand(1, 3, 32, 32),))
    fq = [n for n, mod in prepared.named_modules() if type(mod).__name__ == "FakeQuantize"]
    assert any("splat" in n or "activation_post_process" in n for n in fq)
    qat_names = {n for n, mod in prepared.named_modules() if hasattr(mod, "weight_fake_quant")}
    assert any(n.startswith("splat") for n in qat_names) and any(n.startswith("out") for n in qat_names)
    assert not any(n.startswith("global_") for n in qat_names)  # float layers: no fake quant
    imgs = [np.random.default_rng(i).random((48, 48, 3)).astype(np.float32) for i in range(4)]
    m = tiny_bilateral()
    tuned, hist = qat_finetune(m, imgs, steps=30, lr=1e-3, batch=2, crop=32, progress=False)
    assert np.mean(hist[-6:]) < np.mean(hist[:6])
    assert not torch.equal(m.gridnet.splat[0][0].weight, tuned.gridnet.splat[0][0].weight)


def test_quantize_qat_cli_writes_checkpoint_and_files(tmp_path):
    from edgeenhance.cli import main
    from edgeenhance.models.registry import load_model

    assert main(["quantize", "--qat", "--model", "student-small", "--steps", "4", "--images", "2", "--crop", "32",
                 "--target", "tflite", "--size", "32x32", "--calib-images", "4", "--verify-images", "1",
                 "--weight-scales", "tensor", "--min-psnr", "20", "--quiet", "-o", str(tmp_path)]) == 0
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["model"] == "student-small" and (tmp_path / "student-small-qat.safetensors").exists()
    assert m["int8_weights"]["from"] == "student-small-qat"  # int8 from the tuned weights, fp32 from the float ones
    assert {e["precision"] for e in m["files"]} == {"fp32", "int8"}
    assert m["int8_weight_scales"]["files"] == ["student-small_full_int8.tflite"]
    assert set(_weight_scale_counts(tmp_path / "student-small_full_int8.tflite")) == {1}
    assert load_model(str(tmp_path / "student-small-qat.safetensors")).int8_weight_scales == "tensor"


def test_int8_files_come_from_the_int8_model_and_are_held_to_the_float_model(tmp_path):
    """fp32 files convert the float model; int8 files are quantized from ``int8_model`` (QAT weights) and
    verified against the float model, so a tuned model that drifted fails verification."""
    from edgeenhance.evaluate import enhance_array
    from edgeenhance.metrics import psnr

    original = tiny_student()
    tuned = copy.deepcopy(original)
    with torch.no_grad():
        tuned.head[0].bias.add_(0.05)  # a tuned model that drifted from the original
    ex = Exporter(original, size=(32, 32), calib_images=4, verify_images=2, min_psnr=0, progress=False,
                  log=lambda *_: None, int8_model=tuned)
    manifest = ex.export(["tflite", "onnx"], ["fp32", "int8"], tmp_path)
    files = {(e["target"], e["precision"]): e for e in manifest["files"]}
    for target in ("tflite", "onnx"):
        assert files[target, "fp32"]["verification"]["psnr_vs_float"] >= 50  # the original, converted
        assert files[target, "int8"]["verification"]["psnr_vs_float"] < 32  # held to the original: the drift shows
    assert manifest["int8_weights"]["files"] == ["tinystu_full_int8.tflite", "tinystu_full_int8.onnx"]
    x = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    out = open_engine(tmp_path / files["tflite", "int8"]["file"]).run(x.transpose(2, 0, 1)[None].copy())[0].transpose(1, 2, 0)
    assert psnr(out, enhance_array(tuned, x)) > psnr(out, enhance_array(original, x)) + 6  # made from the tuned weights


def test_shipped_int8_weights_are_used_unless_float_weights_are_asked(tmp_path):
    from edgeenhance.models.registry import load_int8_model

    tuned = load_int8_model("student-small")
    assert tuned is not None and tuned.int8_float_modules == () and load_int8_model("lime") is None
    assert load_int8_model("bilateral") is None  # ships none: plain int8 of its float weights held closer
    from edgeenhance.models.registry import load_model, save_checkpoint

    save_checkpoint(tmp_path / "bil-qat.safetensors", load_model("bilateral"), meta={"all_int8": False})
    bil = load_model(str(tmp_path / "bil-qat.safetensors"))  # tuned with its global path float, as its float model keeps it
    assert bil.gridnet.int8_float_modules == ("global_conv", "global_pool", "global_fc", "global_mix")
    float_model = Exporter("student-small", size=(32, 32), progress=False).model
    assert float_model.int8_float_modules and not torch.equal(float_model.head[0].weight, tuned.head[0].weight)
    shipped = Exporter("student-small", size=(32, 32), progress=False)
    plain = Exporter("student-small", size=(32, 32), progress=False, int8_model=None)
    assert shipped.float_modules() == () and plain.float_modules() == tuple(sorted(StudentGenerator.int8_float_modules))
    assert shipped.uses_int8_weights("tflite", "int8") and not shipped.uses_int8_weights("coreml", "int8")
    assert not plain.uses_int8_weights("tflite", "int8")
    # the shipped int8 weights were tuned with one scale per weight tensor (smaller TFLite file)
    assert shipped.weight_scales_for("tflite", "int8") == "tensor" and plain.weight_scales_for("tflite", "int8") == "channel"
    with pytest.raises(UserError, match="int8_model"):
        Exporter("student-small", size=(32, 32), progress=False, int8_model="qat")


def _weight_scale_counts(path):
    """Number of int8 scales of every constant int8 weight tensor (rank > 1) in a .tflite file."""
    from ai_edge_litert import schema_py_generated as schema

    buf = path.read_bytes()
    model = schema.Model.GetRootAs(buf, 0)
    sg = model.Subgraphs(0)
    counts = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        q = t.Quantization()
        if t.Type() == schema.TensorType.INT8 and t.ShapeLength() > 1 and model.Buffers(t.Buffer()).DataLength():
            counts.append(q.ScaleLength())
    return counts


def test_tflite_int8_weights_with_one_scale_per_tensor(tmp_path):
    """weight_scales='tensor' stores one scale per weight tensor (smaller file, still verified against
    float); the default is one per output channel; the manifest says which files use one per tensor."""
    kw = dict(size=(32, 32), calib_images=4, verify_images=2, min_psnr=20, progress=False, log=lambda *_: None)
    chan = Exporter(tiny_student(), **kw).export(["tflite"], ["int8"], tmp_path / "chan")
    tens = Exporter(tiny_student(), weight_scales="tensor", **kw).export(["tflite"], ["int8"], tmp_path / "tens")
    c, t = (tmp_path / d / "tinystu_full_int8.tflite" for d in ("chan", "tens"))
    assert _weight_scale_counts(t) and set(_weight_scale_counts(t)) == {1}
    assert max(_weight_scale_counts(c)) > 1
    assert t.stat().st_size < c.stat().st_size
    assert tens["int8_weight_scales"]["files"] == ["tinystu_full_int8.tflite"] and "int8_weight_scales" not in chan
    assert tens["files"][0]["verification"]["passed"]
    with pytest.raises(UserError, match="weight scales"):
        Exporter(tiny_student(), weight_scales="row", **kw)


def test_weights_tuned_per_tensor_are_exported_per_tensor(tmp_path):
    """A checkpoint QAT-tuned with one scale per weight tensor says so in its metadata: its TFLite int8
    file uses per-tensor scales and it is not range-equalized (QAT fitted its rows to one scale)."""
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    from edgeenhance.models.registry import load_model, save_checkpoint
    from edgeenhance.quantize.qat import _qconfig_mapping

    m = tiny_student()
    prepared = prepare_qat_fx(copy.deepcopy(m).train(), _qconfig_mapping(m, all_int8=True, per_tensor=True),
                              (torch.rand(1, 3, 32, 32),))
    schemes = {mod.weight_fake_quant.qscheme for mod in prepared.modules() if hasattr(mod, "weight_fake_quant")}
    assert schemes == {torch.per_tensor_symmetric}
    save_checkpoint(tmp_path / "pt.safetensors", m, name="pt", meta={"all_int8": True, "weight_granularity": "tensor"})
    tuned = load_model(str(tmp_path / "pt.safetensors"))
    assert tuned.int8_weight_scales == "tensor" and tuned.int8_equalize == () and tuned.int8_float_modules == ()
    ex = Exporter(tiny_student(), size=(32, 32), calib_images=4, verify_images=1, min_psnr=0, progress=False,
                  log=lambda *_: None, int8_model=tuned)
    assert ex.weight_scales_for("tflite", "int8") == ex.weight_scales_for("onnx", "int8") == "tensor"
    assert ex.weight_scales_for("coreml", "w8a8") == "channel" and ex.weight_scales_for("tflite", "fp16") == "channel"
    manifest = ex.export(["onnx"], ["int8"], tmp_path / "onnx")
    assert manifest["int8_weight_scales"]["files"] == ["tinystu_full_int8.onnx"]
    import onnx
    from onnx import numpy_helper

    g = onnx.load(str(tmp_path / "onnx" / "tinystu_full_int8.onnx")).graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    weight_scales = [inits[n.input[1]] for n in g.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
                     and inits[n.input[0]].ndim == 4]
    assert weight_scales and all(sc.size == 1 for sc in weight_scales)
    assert Exporter(tiny_student(), size=(32, 32), progress=False, int8_model=tuned,
                    weight_scales="channel").weight_scales_for("tflite", "int8") == "channel"
    assert Exporter(tiny_student(), size=(32, 32), progress=False).weight_scales_for("tflite", "int8") == "channel"


def test_tflite_files_are_stripped_of_scope_names_only(grid_export):
    """Exported .tflite files keep signatures and I/O names, drop the converter's scope names,
    and keep every weight buffer 16-byte aligned."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    _, manifest, out = grid_export
    for e in manifest["files"]:
        if e["target"] != "tflite":
            continue
        it = Interpreter(str(out / e["file"]))
        assert it.get_signature_list() == {"serving_default": {"inputs": ["args_0"], "outputs": ["output_0"]}}
        io = {d["index"] for d in it.get_input_details() + it.get_output_details()}
        names = {d["index"]: d["name"] for d in it.get_tensor_details()}
        assert all(names[i] for i in io) and not any(n for i, n in names.items() if i not in io)
        buf = (out / e["file"]).read_bytes()
        model = schema.Model.GetRootAs(buf, 0)
        data = [model.Buffers(i) for i in range(model.BuffersLength()) if model.Buffers(i).DataLength()]
        assert data and all(b._tab.Vector(4) % 16 == 0 for b in data)


def test_tflite_layouts_give_the_same_results(tmp_path):
    """--layout nhwc (default) and nchw: same numbers through the engine, the manifest says which,
    and the channel-last graph has no TRANSPOSE ops at its ends (why it is the default)."""
    torch.manual_seed(0)
    model = tiny_student()
    outs = {}
    for layout in ("nhwc", "nchw"):
        ex = Exporter(model, size=(32, 32), calib_images=4, verify_images=1, layout=layout, progress=False,
                      log=lambda *_: None)
        m = ex.export(["tflite"], ["fp32", "int8"], tmp_path / layout)
        for e in m["files"]:
            assert e["input"]["layout"] == e["output"]["layout"] == layout.upper()
            assert e["input"]["shape"] == ([1, 32, 32, 3] if layout == "nhwc" else [1, 3, 32, 32])
        ops = [name for name, _ in _tflite_ops(tmp_path / layout / "tinystu_full_fp32.tflite")]
        assert ("TRANSPOSE" in ops) == (layout == "nchw")
        x = np.random.default_rng(1).random((1, 3, 32, 32), dtype=np.float32)
        eng = open_engine(tmp_path / layout / "tinystu_full_fp32.tflite")
        assert eng.input_shape == (1, 3, 32, 32) and eng.output_kind == "image"
        outs[layout] = eng.run(x)
        assert np.allclose(eng.run_hwc(x[0].transpose(1, 2, 0)), outs[layout][0].transpose(1, 2, 0))
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert np.abs(outs["nhwc"] - ref).max() < 1e-4 and np.abs(outs["nchw"] - ref).max() < 1e-4
    with pytest.raises(UserError, match="layout"):
        Exporter(model, size=(32, 32), layout="chw")


def test_strip_names_shares_equal_vectors(tmp_path):
    """Per-channel zero points (all zeros, one int64 per channel per tensor) are written once per
    length, not once per tensor; the model still loads and runs."""
    from ai_edge_litert import schema_py_generated as schema

    ex = Exporter(tiny_student(), size=(32, 32), calib_images=4, verify_images=1, progress=False,
                  log=lambda *_: None)
    ex.export(["tflite"], ["int8"], tmp_path)
    buf = (tmp_path / "tinystu_full_int8.tflite").read_bytes()
    sg = schema.Model.GetRootAs(buf, 0).Subgraphs(0)
    where = {}  # zero-point vector length -> positions of those vectors in the file
    for i in range(sg.TensorsLength()):
        q = sg.Tensors(i).Quantization()
        if q is not None and q.ZeroPointLength() > 1:
            where.setdefault(q.ZeroPointLength(), set()).add(q._tab.Vector(q._tab.Offset(10)))
    per_channel = sum(1 for i in range(sg.TensorsLength()) if sg.Tensors(i).Quantization() is not None
                      and sg.Tensors(i).Quantization().ZeroPointLength() > 1)
    assert per_channel > len(where) and all(len(p) == 1 for p in where.values())
    x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    assert np.isfinite(open_engine(tmp_path / "tinystu_full_int8.tflite").run(x)).all()


def test_strip_names_keeps_outputs_bit_identical(tmp_path):
    import shutil

    import litert_torch

    from edgeenhance.export.strip import strip_names

    src, dst = tmp_path / "a.tflite", tmp_path / "b.tflite"
    litert_torch.convert(tiny_student(), (torch.rand(1, 3, 32, 32),)).export(str(src))
    shutil.copy(src, dst)
    saved = strip_names(dst)
    assert saved > 0 and dst.stat().st_size == src.stat().st_size - saved
    x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    a, b = open_engine(src).run(x), open_engine(dst).run(x)
    assert np.array_equal(a, b)


def test_all_int8_export_has_no_float_layers(tmp_path):
    """--all-int8: every conv computes in int8 (what NPUs need), even the layers the model keeps in
    float by default; the manifest says so."""
    from edgeenhance.cli import main

    common = ["export", "--model", "student-small", "--target", "tflite", "--int8", "--size", "32x32",
              "--calib-images", "4", "--verify-images", "1", "--min-psnr", "20", "--quiet"]
    assert main(common + ["--float-weights", "-o", str(tmp_path / "mixed")]) == 0
    assert main(common + ["--all-int8", "-o", str(tmp_path / "all")]) == 0
    mixed = [o[0] for name, o in _tflite_ops(tmp_path / "mixed" / "student-small_full_int8.tflite") if name == "CONV_2D"]
    every = [o[0] for name, o in _tflite_ops(tmp_path / "all" / "student-small_full_int8.tflite") if name == "CONV_2D"]
    assert np.float32 in mixed and set(every) == {np.int8}
    m = json.loads((tmp_path / "all" / "manifest.json").read_text())
    assert m["int8_float_modules"]["modules"] == []


def test_qat_all_int8_fake_quantizes_the_float_layers_too():
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    from edgeenhance.quantize.qat import _qconfig_mapping

    net = tiny_bilateral().gridnet.train()
    prepared = prepare_qat_fx(net, _qconfig_mapping(net, all_int8=True), (torch.rand(1, 3, 32, 32),))
    qat_names = {n for n, mod in prepared.named_modules() if hasattr(mod, "weight_fake_quant")}
    assert any(n.startswith("global_") for n in qat_names) and any(n.startswith("out") for n in qat_names)


def test_qat_fake_quantizes_activations_where_tflite_rounds_them():
    """Regression: with qint8 activations FX inserted no activation fake quantization (only weights were
    simulated, and QAT could not learn what int8 activations cost)."""
    from torch.ao.quantization import FakeQuantize, disable_fake_quant, disable_observer
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    from edgeenhance.quantize.qat import _qconfig_mapping

    m = tiny_student()
    prepared = prepare_qat_fx(copy.deepcopy(m).train(), _qconfig_mapping(m, all_int8=True), (torch.rand(1, 3, 32, 32),))
    acts = {n: mod for n, mod in prepared.named_modules()
            if isinstance(mod, FakeQuantize) and "weight" not in n}
    convs = [n for n, mod in m.named_modules() if isinstance(mod, torch.nn.Conv2d)]
    assert len(acts) >= len(convs)  # every conv output (and the adds, the input) is rounded
    x = torch.rand(4, 3, 32, 32)
    prepared(x)  # observe
    clipped = [mod for mod in acts.values() if type(mod.activation_post_process).__name__ == "ClippedMinMaxObserver"]
    assert clipped and all(float(o.activation_post_process.min_val) >= 0.0 and
                           float(o.activation_post_process.max_val) <= 6.0 for o in clipped)
    prepared.apply(disable_observer).eval()
    with torch.no_grad():
        ref = m(x)
        err_all = float((prepared(x) - ref).abs().mean())
        for mod in acts.values():
            mod.apply(disable_fake_quant)
        err_weights_only = float((prepared(x) - ref).abs().mean())
    assert err_all > 1.5 * err_weights_only > 0


def test_range_equalization_keeps_the_function_and_evens_channel_ranges():
    from edgeenhance.quantize.equalize import channel_max, equalize

    m = tiny_student()
    with torch.no_grad():  # uneven channel ranges, as trained nets have
        for conv in (m.stem[0], m.up2[0]):  # the two producers of the skip sum
            k = torch.tensor([0.02, 0.2, 1.0, 2.0]).repeat(2)  # 8 channels: twice the width
            conv.weight.mul_(k.view(-1, 1, 1, 1))
            conv.bias.mul_(k)
    batches = [np.random.default_rng(i).random((1, 3, 32, 32), dtype=np.float32) for i in range(4)]
    eq = equalize(m, StudentGenerator.int8_equalize, batches)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(m(x), eq(x), atol=1e-5)

    def spread(model):
        seen = channel_max(model, batches, ["stem.1", "up2.1"])
        mx = torch.maximum(seen["stem.1"], seen["up2.1"])
        mx = mx[mx > 1e-6]
        return float(mx.max() / mx.min())

    before, after = spread(m), spread(eq)
    assert before > 100 and after <= before / 16 * 1.01  # scaled up to the widest channel, at most 16x


def test_range_equalization_leaves_saturated_and_dead_channels_alone():
    from edgeenhance.quantize.equalize import equalization_scales

    s = equalization_scales(torch.tensor([6.0, 1.0, 0.5, 0.0, 0.01]), max_scale=16.0)
    assert s.tolist() == [1.0, 1.0, 2.0, 1.0, 16.0]  # ReLU6 ceiling reached: 1; dead: 1; capped at 16
    s = equalization_scales(torch.tensor([4.0, 1.0, 0.5]))  # widest channel above 6 / HEADROOM = 2
    assert s.tolist() == [0.5, 2.0, 4.0]  # all brought to 2: 3x under the ceiling


@pytest.mark.slow
def test_shipped_student_all_int8_holds_on_a_clipped_photo(tmp_path):
    """Regression: the first student, all-int8 without range equalization, fell to 30.1 dB on this photo."""
    from edgeenhance.evaluate import enhance_array
    from edgeenhance.metrics import psnr
    from edgeenhance.runtime.bench import test_image

    ex = Exporter("student-small", size=(256, 256), calib_images=32, verify_images=1, all_int8=True, progress=False,
                  log=lambda *_: None)
    manifest = ex.export(["tflite"], ["int8"], tmp_path)
    assert manifest["extras"]["int8_equalization"]["groups"][0]["consumers"] == ["down2.0", "fuse1.0"]
    img = test_image((256, 256), exposure="over")
    out = open_engine(tmp_path / "student-small_full_int8.tflite", 2).run(img.transpose(2, 0, 1)[None].copy())
    assert psnr(out[0].transpose(1, 2, 0), enhance_array(ex.model, img)) >= 32.0


def test_onnx_int8_export_opens_no_network_connection(tmp_path):
    """NNCF's usage telemetry is off: an NNCF (default) ONNX int8 export looks up no host and connects
    nowhere, in this process or the ones it starts (NNCF sends from a forked child). In a fresh
    interpreter: NNCF mutes itself whenever pytest is imported, which would hide the telemetry."""
    import os
    import subprocess
    import textwrap

    log = tmp_path / "network.log"
    code = textwrap.dedent(f"""
        import socket, sys

        def refuse(*args, **kwargs):  # forked children inherit this too
            with open({str(log)!r}, "a") as f:
                f.write(repr(args[:2]) + "\\n")
            raise OSError("network use in an export")

        socket.getaddrinfo = socket.create_connection = socket.socket.connect = refuse
        import torch
        from edgeenhance.export import Exporter
        from edgeenhance.models.student import StudentGenerator

        torch.manual_seed(0)
        m = StudentGenerator(width=4, blocks=1).eval()
        m.name = "tinystu"
        Exporter(m, size=(16, 16), calib_images=2, verify_images=1, min_psnr=0, progress=False,
                 log=lambda *_: None).export(["onnx"], ["fp32", "int8"], {str(tmp_path / "out")!r})
        assert "pytest" not in sys.modules
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("NNCF_CI", "NNCF_DEV", "CI")}
    env["HOME"] = str(tmp_path / "home")  # no earlier telemetry opt-out in a consent file
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "out" / "tinystu_full_int8.onnx").exists()
    assert not log.exists(), log.read_text()


def test_first_command_exports_the_deployable_form_and_passes(tmp_path, capsys):
    """`export --model bilateral --target tflite --int8` with no --form: the grid form, verified on
    rendered dark and well-exposed images, with a warning that calibration saw rendered images only."""
    from edgeenhance.cli import main

    assert main(["export", "--model", "bilateral", "--target", "tflite", "--int8", "--size", "96x128",
                 "--calib-images", "4", "--verify-images", "2", "-o", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "grid form" in out and "calibrated on rendered images only" in out and "worst image" in out
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert {e["form"] for e in m["files"]} == {"grid"} and {e["precision"] for e in m["files"]} == {"fp32", "int8"}
    ver = next(e for e in m["files"] if e["precision"] == "int8")["verification"]
    assert ver["images"] == 3 and "well exposed" in ver["data"]  # 2 dark + 1 well exposed
    assert m["calibration"] == {"data": "synthetic", "images": 4}


def test_verify_on_a_folder_of_photos_at_their_own_size(tmp_path):
    from PIL import Image

    from edgeenhance.data.synth import render_pair

    photos = tmp_path / "mine"
    photos.mkdir()
    for i, size in enumerate([(72, 100), (90, 64)]):
        Image.fromarray((render_pair(i, "under", size)[0] * 255).astype(np.uint8)).save(photos / f"p{i}.png")
    ex = Exporter(tiny_bilateral(), size=(40, 56), calib=str(photos), calib_images=2, verify=str(photos),
                  verify_images=5, progress=False, log=lambda *_: None)
    assert ex.form.name == "grid"
    assert [x.shape[:2] for x, _ in ex.verification_pairs()] == [(72, 100), (90, 64)]
    ver = ex.export(["tflite"], ["int8"], tmp_path / "out")["files"][0]["verification"]
    assert ver["images"] == 2 and "2 photos from mine/" in ver["data"]
    assert ver["min_psnr_vs_float"] <= ver["psnr_vs_float"]
    with pytest.raises(UserError, match="--verify"):
        Exporter(tiny_bilateral(), verify=str(tmp_path / "nope"), verify_images=1, progress=False).verification_pairs()


@pytest.mark.slow
def test_shipped_bilateral_over_int8_holds_on_an_over_exposed_photo(tmp_path):
    """The over-exposure model's grid form in int8 against its float model on a mostly clipped photo
    (the issue's bar: 36 dB on the worst real validation photo; benchmarks/real_photos.py --exposure over)."""
    from edgeenhance.evaluate import enhance_array
    from edgeenhance.metrics import psnr
    from edgeenhance.runtime.bench import test_image
    from edgeenhance.runtime.pipeline import make_pipeline

    ex = Exporter("bilateral-over", form="grid", size=(256, 256), calib_images=16, verify_images=1, progress=False,
                  log=lambda *_: None)
    ex.export(["tflite"], ["int8"], tmp_path)
    img = test_image((256, 256), exposure="over")
    assert (img.max(-1) > 0.98).mean() > 0.3
    pipe = make_pipeline(open_engine(tmp_path / "bilateral-over_grid_int8.tflite", 2), {"extras": ex.extras})
    out, ref = pipe(img), enhance_array(ex.model, img)
    assert np.abs(ref - img).mean() > 0.02  # the float model does change the photo
    assert psnr(out, ref) >= 36.0


def _range_case():
    """A small conv net and calibration images: the first one bright, thirty more ten times darker."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.ReLU(), torch.nn.Conv2d(4, 3, 1)).eval()
    rng = np.random.default_rng(0)
    bright = rng.uniform(0.0, 1.0, (1, 3, 8, 8)).astype(np.float32)
    calib = [bright] + [rng.uniform(0.0, 0.1, (1, 3, 8, 8)).astype(np.float32) for _ in range(30)]
    with torch.no_grad():
        want = net(torch.from_numpy(bright)).numpy()
    return net, calib, bright, want


@pytest.mark.parametrize("target", ["tflite", "onnx", "coreml"])
def test_int8_ranges_cover_every_calibration_image(tmp_path, target):
    """A value only one calibration image reaches is inside the int8 range: the quantizers' own moving
    averages or means of per-image extremes clipped it (a bright window in a dark frame)."""
    net, calib, bright, want = _range_case()
    if target == "tflite":
        import litert_torch

        from edgeenhance.quantize.tflite import quantize_tflite

        litert_torch.convert(net, (torch.from_numpy(bright),)).export(str(tmp_path / "net.tflite"))
        got = open_engine(quantize_tflite(tmp_path / "net.tflite", tmp_path / "q.tflite", calib), 1).run(bright)
    elif target == "onnx":
        from edgeenhance.quantize.onnx import quantize_onnx

        torch.onnx.export(net, (torch.from_numpy(bright),), str(tmp_path / "net.onnx"), input_names=["image"],
                          output_names=["output"], opset_version=17, dynamo=False)
        got = open_engine(quantize_onnx(tmp_path / "net.onnx", tmp_path / "q.onnx", calib), 1).run(bright)
    else:  # CoreML's activation ranges are calibrated in PyTorch, before conversion
        from edgeenhance.quantize.coreml import w8a8_module

        with torch.no_grad():
            got = w8a8_module(net, calib)(torch.from_numpy(bright)).numpy()
    assert np.abs(got - want).max() < 0.03 * (want.max() - want.min())
