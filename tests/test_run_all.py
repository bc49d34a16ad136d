"""benchmarks/run_all.py takes the files it measures from each export's manifest.json (no run here)."""
import json

import pytest

from conftest import load_script


def load():
    return load_script("benchmarks/run_all.py")


def entry(name, target, precision, **kw):
    return {"file": name, "target": target, "precision": precision, "sha256": "0" * 64, **kw}


@pytest.fixture
def out(tmp_path):
    """An export folder whose manifest names files unlike the old '{model}_{form}_{precision}' pattern."""
    d = tmp_path / "bilateral_grid"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({
        "model": "bilateral", "form": "grid",
        "files": [entry("net-b.tflite", "tflite", "int8"), entry("net-a.tflite", "tflite", "fp32"),
                  entry("net.onnx", "onnx", "fp32"), entry("net_q.onnx", "onnx", "int8"),
                  entry("other.tflite", "tflite", "fp16", form="full", model="student-small")]}))
    return d


def test_files_come_from_the_manifest(out):
    ra = load()
    assert ra.exported(out, "tflite", "int8") == out / "net-b.tflite"
    assert ra.exported(out, "onnx", "int8") == out / "net_q.onnx"
    assert ra.exported(out, "tflite", "fp32", form="grid", model="bilateral") == out / "net-a.tflite"
    assert ra.listed(out, "tflite") == [out / "net-a.tflite", out / "net-b.tflite", out / "other.tflite"]
    assert ra.listed(out, precision="int8") == [out / "net-b.tflite", out / "net_q.onnx"]
    assert ra.listed(out, form="grid") == [out / n for n in ("net-a.tflite", "net-b.tflite", "net.onnx", "net_q.onnx")]
    assert ra.listed(out, model="student-small") == [out / "other.tflite"]
    assert ra.rel(out / "net-b.tflite") == "bilateral_grid/net-b.tflite"


def test_missing_or_ambiguous_lookups_fail_clearly(out, tmp_path):
    ra = load()
    with pytest.raises(LookupError, match="lists 0 coreml int8"):
        ra.exported(out, "coreml", "int8")
    with pytest.raises(LookupError, match="lists 3 tflite"):
        ra.exported(out, "tflite", None)
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        ra.listed(tmp_path / "empty")


def test_summary_uses_the_names_it_is_given():
    ra = load()
    fp32, int8 = "d/custom_fp32.tflite", "d/custom_int8.tflite"
    rows = [{"model": "bilateral", "size_name": "256", "file": fp32, "file_size_bytes": 1000, "latency_ms": {"p50": 4.0}},
            {"model": "bilateral", "size_name": "256", "file": int8, "file_size_bytes": 250, "latency_ms": {"p50": 2.0}}]
    ms = {"fp32": 0.3, "int8": 0.1, "rounds": {"fp32": [0.3] * 5, "int8": [0.1] * 5}}
    acc = {("bilateral", "256"): {int8: {"mean": 45.0, "min": 40.0, "n": 8}}}
    s = ra.summarize(rows, acc, {"bilateral": {"fp32/int8": ms}}, {("bilateral", "256"): {"fp32": fp32, "int8": int8}})
    e = s["bilateral@256"]
    assert e["files"] == {"fp32": fp32, "int8": int8}
    assert e["end_to_end_int8_speedup"] == 2.0 and e["tflite_int8_file_ratio"] == 0.25
    assert e["targets_met"] == {"int8_2x_faster_model": True, "int8_file_at_most_30pct": True,
                                "psnr_worst_at_least_38dB": True}
    assert list(s) == ["bilateral@256"]
    ra.print_tables(rows, s)  # the printed summary finds the int8 file by the summary's name
