import json

import numpy as np
import pytest
import torch

from edgeenhance.cli import main
from edgeenhance.runtime.bench import bench, format_table
from edgeenhance.runtime.fused_slice import fused_slice, resize_bilinear
from edgeenhance.runtime.report import write_report

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from test_export import tiny_bilateral

    from edgeenhance.export import Exporter

    out = tmp_path_factory.mktemp("b")
    Exporter(tiny_bilateral(), form="grid", size=(40, 56), calib_images=4, verify_images=1, progress=False,
             log=lambda *_: None).export(["tflite", "onnx"], ["fp32", "int8"], out)
    return out


def test_bench_json_fields(exported, tmp_path, monkeypatch):
    # The exported files' model is a module, not a zoo name: benchmark without the float reference.
    res = bench(sorted(exported.glob("*.tflite")), (48, 64), threads=1, runs=3, warmup=1, reference=False,
                progress=False)
    rows = res["results"]
    assert len(rows) == 2 and res["host"]["threads"] == 1
    for r in rows:
        assert {"p50", "p90", "mean", "std", "min"} <= set(r["latency_ms"])
        assert r["latency_ms"]["p90"] >= r["latency_ms"]["p50"] > 0
        assert r["peak_rss_mb"] > 10 and r["file_size_bytes"] > 1000
        assert set(r["parts_ms"]) == {"resize", "network", "slicing"}
    assert "p50 ms" in format_table(res)
    (tmp_path / "r.json").write_text(json.dumps(res))
    html = write_report([tmp_path / "r.json"], tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64") >= 1 and "tinybil_grid_int8.tflite" in html


def test_bench_cli_with_zoo_reference(tmp_path):
    from edgeenhance.export import Exporter

    Exporter("student-small", size=(64, 64), calib_images=4, verify_images=1, progress=False,
             log=lambda *_: None).export(["onnx"], ["fp32"], tmp_path)
    assert main(["bench", str(tmp_path / "student-small_full_fp32.onnx"), "--size", "64x64", "--runs", "2",
                 "--warmup", "1", "--quiet", "--json", str(tmp_path / "b.json"), "--csv", str(tmp_path / "b.csv")]) == 0
    rows = json.loads((tmp_path / "b.json").read_text())["results"]
    assert rows[0]["format"] == "torch" and rows[1]["psnr_vs_float"] > 60
    assert rows[1]["speedup_vs_torch_float"] > 0
    assert (tmp_path / "b.csv").read_text().startswith("file,")
    assert main(["bench", str(tmp_path / "student-small_full_fp32.onnx"), "--size", "60x64", "--quiet"]) == 2


def test_report_rejects_non_results(tmp_path, capsys):
    (tmp_path / "x.json").write_text("[1, 2]")
    assert main(["report", str(tmp_path / "x.json"), "-o", str(tmp_path / "r.html")]) == 2
    assert "not a results JSON" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_fused_slice_and_resize_match_torch():
    from test_bilateral import random_model

    m = random_model()
    x = torch.rand(1, 3, 45, 77)
    with torch.no_grad():
        full = m(x)[0].permute(1, 2, 0).numpy()
        low = m.low_res(x)
        grid = m.gridnet(low)[0].numpy()
    img = np.ascontiguousarray(x[0].permute(1, 2, 0).numpy())
    assert np.abs(resize_bilinear(img, (m.lowres, m.lowres)) - low[0].permute(1, 2, 0).numpy()).max() < 1e-5
    assert np.abs(fused_slice(img, grid, m.guide_params()) - full).max() < 1e-5


def test_report_escapes_every_field_and_takes_partial_rows(tmp_path, capsys):
    evil = "<img src=x onerror=alert(1)>"
    rows = [{"file": f"a{evil}.tflite", "precision": evil, "runtime": evil, "size": evil, "threads": evil,
             "latency_ms": {"p50": 1.0, "p90": 2.0}, "psnr_vs_float": "<b>40</b>", "peak_rss_mb": evil},
            {"file": "no-precision.onnx", "latency_ms": {"p50": 1.5, "p90": 1.6}},  # a row without precision
            {"file": "$x$ and $y.tflite", "latency_ms": {"p50": 1.0, "p90": 1.0}},  # not mathematics for charts
            {"file": evil, "error": evil}]
    (tmp_path / "r.json").write_text(json.dumps({"host": {"machine": evil}, "results": rows, "model_dirs": [evil]}))
    assert main(["report", str(tmp_path / "r.json"), "-o", str(tmp_path / "r.html")]) == 0, capsys.readouterr().err
    page = (tmp_path / "r.html").read_text()
    assert "<img src=x" not in page and "<b>40" not in page
    assert page.count("&lt;img src=x onerror=alert(1)&gt;") >= 6 and "no-precision.onnx" in page
