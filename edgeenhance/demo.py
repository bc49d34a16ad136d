"""`make demo`: shipped weights -> every target with int8 -> verification -> benchmark -> report."""

from __future__ import annotations

import time
from pathlib import Path


def run_demo(out: Path, size=(1080, 1920), runs: int = 10, threads: int = 2, targets=("tflite", "onnx", "coreml"),
             calib_images: int = 16) -> dict:
    from edgeenhance.export import Exporter
    from edgeenhance.fileio import write_json
    from edgeenhance.runtime.bench import bench, format_table
    from edgeenhance.runtime.report import write_report

    out = Path(out)
    t0 = time.time()
    jobs = [("bilateral", "grid", None, "bilateral_grid"), ("student-small", "full", size, "student_full")]
    files = []
    for model, form, exp_size, folder in jobs:
        print(f"[demo] exporting {model} ({form} form) to {', '.join(targets)} as fp32 and int8 ...")
        ex = Exporter(model, form=form, size=exp_size if form == "full" else size, calib_images=calib_images,
                      verify_images=3, threads=threads)
        manifest = ex.export(list(targets), ["fp32", "int8"], out / folder)
        files += [out / folder / e["file"] for e in manifest["files"] if e["target"] != "coreml"]
    print(f"[demo] benchmarking {len(files)} files at {size[0]}x{size[1]}, {threads} threads "
          "(CoreML files were verified by replay; they execute only on macOS) ...")
    result = bench(files, size, threads, runs, warmup=2)
    write_json(out / "bench.json", result)
    report = write_report([out / "bench.json"], out / "report.html")
    print(format_table(result))
    print(f"[demo] done in {time.time() - t0:.0f} s. Report: {report.resolve()}")
    return result
