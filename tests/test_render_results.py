"""benchmarks/render_results.py: docs/results.md from benchmarks/results/*.json."""
import json
from pathlib import Path

from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


def load():
    return load_script("benchmarks/render_results.py")


def row(text: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is ``first``."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first:
            return cells
    raise AssertionError(f"no table row starting with {first!r}")


RUN_ALL = {
    "date": "2026-12-01T10:00:00+00:00", "threads": 2,
    "machine": {"machine": "x86_64", "cpu": "Test CPU 9000", "int8_features": ["avx2", "avx512_vnni"]},
    "numpy_1080p_pass_ms": 1.5,
    "rows": [
        {"model": "toy", "size_name": "256", "file": "toy_grid/toy_fp32.tflite", "file_size_bytes": 4096,
         "latency_ms": {"p50": 3.21}},
        {"model": "toy", "size_name": "256", "file": "toy_grid/toy_int8.tflite", "file_size_bytes": 1024,
         "latency_ms": {"p50": 1.07}},
        {"model": "toy", "size_name": "512", "file": "toy_grid/toy_int8.tflite", "error": "boom"},
    ],
    "summary": {
        "toy@256": {
            "files": {"fp32": "toy_grid/toy_fp32.tflite", "int8": "toy_grid/toy_int8.tflite"},
            "model_int8_speedup": 2.345, "model_int8_speedup_by_round": {"rounds_min": 2.1, "rounds_max": 2.6},
            "model_all_int8_speedup": 2.9, "end_to_end_ms": {"fp32": 3.21, "int8": 1.07},
            "end_to_end_int8_speedup": 3.0, "tflite_int8_file_ratio": 0.25,
            "int8_psnr_vs_float_over_bench_photos": {
                "toy_grid/toy_int8.onnx": {"mean": 30.0, "min": 20.0, "n": 8},
                "toy_grid/toy_int8.tflite": {"mean": 44.44, "min": 39.99, "n": 8}},
            "targets_met": {"int8_2x_faster_model": True, "psnr_worst_at_least_38dB": False}},
        "bilateral_1080p_end_to_end": {"file": "toy_int8.tflite", "ms": 24.5, "numpy_pass_ms": 2.45,
                                       "ratio_to_numpy_pass": 10.0, "parts_ms": {"slicing": 23.0}},
    },
}
PREVIEW = {"size": [1080, 1920], "threads": 2, "budget_ms": 33.0,
           "host": {"machine": "x86_64", "cpu": "Preview CPU", "int8_features": []},
           "results": {"toy": {"form": "grid", "fp32_ms": 30.94, "int8_ms": 31.36, "speedup": 0.99,
                               "int8_parts_ms": {"network": 1.5, "slicing": 29.0}, "size_ratio": 0.2835,
                               "meets_budget": True}}}


def fixture(tmp_path: Path) -> tuple[Path, Path]:
    results, docs = tmp_path / "results", tmp_path / "docs"
    results.mkdir()
    docs.mkdir()
    (results / "run.json").write_text(json.dumps(RUN_ALL))
    (results / "preview.json").write_text(json.dumps(PREVIEW))
    (results / "other.json").write_text(json.dumps({"speed": {"toy": 12.5}, "tags": ["a", "b"]}))
    (results / "broken.json").write_text("{not json")
    (docs / "results_preview.md").write_text("# Preview page\n")
    return results, docs


def test_numbers_land_in_the_right_rows(tmp_path):
    rr = load()
    results, docs = fixture(tmp_path)
    text = rr.render(results, docs)
    # run_all: summary, accuracy per file, latency per file and size
    cells = row(text, "toy@256")
    assert cells[1] == "2.35x (2.10-2.60)" and cells[2] == "2.90x"
    assert cells[3:7] == ["3.21", "1.07", "3.00x", "0.250"]
    assert cells[7] == "44.4 / 40.0"  # the default int8 file the summary names, not the ONNX one
    assert cells[8] == "missed: psnr_worst_at_least_38dB"
    lat = [c for c in text.splitlines() if "toy_grid/toy_int8.tflite | 1.1" in c]
    assert lat == ["| toy | toy_grid/toy_int8.tflite | 1.1 | failed | 1 |"]
    assert "| toy@256 | toy_grid/toy_int8.onnx | 30.00 | 20.00 | 8 |" in text
    assert "24.50 ms = 10.0x a numpy 1080p read+write pass" in text
    # provenance: file, date, host
    run_section = text.split("## run")[1]
    assert "benchmarks/results/run.json" in run_section and "2026-12-01T10:00:00+00:00" in run_section
    assert "Test CPU 9000" in run_section and "avx512_vnni" in run_section
    # preview_speed
    cells = row(text, "toy")  # first "toy" row: other.json renders by key path, so this is preview's
    assert cells[:4] == ["toy", "grid", "30.9", "31.4"] and cells[-1] == "yes"
    assert "Photo 1920x1080" in text and "Preview CPU" in text
    assert "[results_preview.md](results_preview.md)" in text and "- [Preview page](results_preview.md)" in text
    # unknown structure and unreadable JSON degrade to a generic rendering / a message
    assert row(text, "`speed.toy`") == ["`speed.toy`", "12.5"] and row(text, "`tags`") == ["`tags`", "a, b"]
    assert "`benchmarks/results/broken.json` is not readable JSON" in text
    # sections in file-name order
    assert text.index("## broken") < text.index("## other") < text.index("## preview") < text.index("## run")


def test_deterministic_and_atomic(tmp_path):
    rr = load()
    results, docs = fixture(tmp_path)
    out = docs / "results.md"
    assert rr.main(["--results", str(results), "--out", str(out)]) == 0
    first = out.read_bytes()
    assert rr.render(results, docs).encode() == first
    assert rr.main(["--results", str(results), "--out", str(out)]) == 0
    assert out.read_bytes() == first
    assert rr.main(["--results", str(results), "--out", str(out), "--check"]) == 0
    assert sorted(p.name for p in docs.iterdir()) == ["results.md", "results_preview.md"]  # no temp file left
    (results / "run.json").write_text(json.dumps({**RUN_ALL, "threads": 4}))
    assert rr.main(["--results", str(results), "--out", str(out), "--check"]) == 1


def test_shipped_results_page_is_current():
    """docs/results.md is what the generator makes of benchmarks/results/*.json."""
    rr = load()
    text = rr.render(ROOT / "benchmarks" / "results", ROOT / "docs")
    assert (ROOT / "docs" / "results.md").read_text() == text, \
        "docs/results.md is out of date: run python benchmarks/render_results.py"


def test_train_throughput_section(tmp_path):
    rr = load()
    (tmp_path / "docs").mkdir()
    (tmp_path / "results").mkdir()
    rows = [{"processes": 1, "device": "cpu", "backend": "none (one process)", "threads_per_process": 2,
             "global_batch": 8, "samples_per_s": 40.0},
            {"processes": 2, "device": "cpu", "backend": "gloo", "threads_per_process": 1, "global_batch": 16,
             "samples_per_s": 60.0}]
    (tmp_path / "results" / "train_throughput.json").write_text(json.dumps(
        {"benchmark": "train_throughput", "model": "bilateral", "data": "synthetic", "crop": 128, "rows": rows,
         "scaling_2proc_cpu": 1.5}))
    text = rr.render(tmp_path / "results", tmp_path / "docs")
    assert row(text, "2")[1:] == ["cpu", "gloo", "1", "16", "60.0"]
    assert "2 processes / 1 process on CPU: **1.50x**; no GPU" in text


def test_real_photos_section_shows_the_optional_paired_sets_only_where_measured(tmp_path):
    rr = load()
    (tmp_path / "docs").mkdir()
    (tmp_path / "results").mkdir()
    dark = {"niqe": 11.5, "loe": 800.0, "mean_lum": 0.4, "dark_lift": 0.18, "clipped_after": 0.01,
            "new_clipped": 0.005, "sec_per_image": 0.02}
    res = {"input": {"dark": {**dark, "dark_lift": 0.0}, "pairs": {"psnr": 11.0, "ssim": 0.4},
                     "mild": {"psnr": 18.61, "ssim": 0.8}, "brackets": {"psnr": 12.5, "ssim": 0.5},
                     "well_exposed": {"psnr_vs_input": None}},
           "net": {"dark": dark, "pairs": {"psnr": 20.0, "ssim": 0.7}, "mild": {"psnr": 21.25, "ssim": 0.85},
                   "well_exposed": {"psnr_vs_input": 25.0, "worst": 19.0}}}  # no brackets measured: '-'
    sets = {"dark": {"n": 3, "what": "frames"}, "pairs": {"n": 2, "what": "pairs"}, "mild": {"n": 2, "what": "mild"},
            "brackets": {"n": 2, "what": "real brackets"}}

    def rendered():
        (tmp_path / "results" / "real_photos.json").write_text(json.dumps({"sets": sets, "results": res}))
        return rr.render(tmp_path / "results", tmp_path / "docs")

    text = rendered()
    assert row(text, "net")[7:10] == ["20.00 / 0.700", "21.25 / 0.850", "- / -"]
    assert row(text, "input")[8:10] == ["18.61 / 0.800", "12.50 / 0.500"]
    del sets["mild"]
    text = rendered()
    assert "mild pairs" not in text and row(text, "input")[8] == "12.50 / 0.500"
    del sets["brackets"]
    text = rendered()
    assert "real brackets" not in text and row(text, "net")[8] == "25.00 (worst 19.00)"


def test_pairs_brightness_section(tmp_path):
    rr = load()
    (tmp_path / "docs").mkdir()
    (tmp_path / "results").mkdir()
    r = {"as_is": {"pairs_psnr": 20.8, "lift": 0.1504, "new_clipped": 0.0058},
         "best_single_gain": {"gain": 1.0, "pairs_psnr": 20.8},
         "best_gain_per_pair": {"pairs_psnr": 23.26, "gains": [0.9, 1.1]},
         "best_rule": {"pairs_psnr": 21.55, "lift": 0.119, "new_clipped": 0.012, "gain_at": {"0.02": 0.5, "0.30": 1.15}},
         "best_rule_with_targets": {"pairs_psnr": 20.86, "lift": 0.15, "new_clipped": 0.0099, "gain_at": {"0.02": 0.83}}}
    (tmp_path / "results" / "pairs_brightness.json").write_text(json.dumps(
        {"benchmark": "pairs_brightness", "sets": {"pairs": "52 pairs", "dark": "151 frames"}, "rule": "k(m)",
         "targets": {"lift": 0.15, "new_clipped": 0.01}, "results": {"net": r}}))
    text = rr.render(tmp_path / "results", tmp_path / "docs")
    lines = [line for line in text.splitlines() if line.startswith("| net |")]
    assert [c.strip() for c in lines[2].split("|")[2:4]] == ["best gain per pair (oracle)", "23.26"]
    assert [c.strip() for c in lines[4].split("|")[3:7]] == ["20.86", "+0.150", "0.99%", "0.02: 0.83"]
    assert "lift >= 0.15, newly clipped <= 1%" in lines[4] and "0.30: 1.15" in lines[3]
