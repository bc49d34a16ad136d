import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
pytestmark = pytest.mark.filterwarnings("ignore")


def test_copy_models_and_fields_the_app_reads(tmp_path, monkeypatch):
    from test_export import tiny_bilateral

    from edgeenhance.export import Exporter

    Exporter(tiny_bilateral(), form="grid", size=(32, 32), calib_images=4, verify_images=1, progress=False,
             log=lambda *_: None).export(["tflite", "onnx"], ["fp32"], tmp_path / "exp")
    sys.path.insert(0, str(ROOT / "android_demo"))
    import copy_models

    monkeypatch.setattr(copy_models, "ASSETS", tmp_path / "assets")
    assert copy_models.main([str(tmp_path / "exp")]) == 0
    m = json.loads((tmp_path / "assets" / "models" / "manifest.json").read_text())
    assert [e["target"] for e in m["files"]] == ["tflite"]  # only what the app can run
    assert (tmp_path / "assets" / "models" / m["files"][0]["file"]).exists()
    g = m["extras"]["guide"]
    # ModelManifest.kt / GuideParams.fromJson read exactly these keys
    for key in ("w1", "b1", "w2", "b2", "bins", "min_illumination", "grid_scale", "grid_offset"):
        assert key in g
    assert len(g["w2"][0]) == len(g["b1"]) == len(g["w1"])
    e = m["files"][0]
    assert len(e["input"]["shape"]) == 4 and len(e["output"]["shape"]) == 4
    channels = 3 if e["output"]["layout"] == "NHWC" else 1  # Enhancer.kt picks the axis by layout
    assert e["input"]["layout"] == e["output"]["layout"] == "NHWC"  # the export default
    assert e["output"]["shape"][channels] == 12 * g["bins"] == len(g["grid_scale"])


def test_copy_models_refuses_a_non_grid_export(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"model": "x", "form": "full", "files": [
        {"file": "a.tflite", "target": "tflite"}]}))
    r = subprocess.run([sys.executable, str(ROOT / "android_demo" / "copy_models.py"), str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "grid form" in r.stderr
