"""`make demo`: shipped weights -> every target with int8 -> verification -> benchmark -> report."""

from __future__ import annotations

import time
from pathlib import Path


def run_demo(out: Path, size=(1080, 1920), runs: int = 10, threads: int = 2, targets=None,
             calib_images: int = 16, student_size=(512, 512)) -> dict:
    """Bilateral (grid form) is benchmarked at ``size``; the student, a fixed-size graph, at
    ``student_size`` (a 1080p student export with int8 calibration alone takes minutes on 2 cores)."""
    from edgeenhance.export import Exporter, ExportOptions
    from edgeenhance.export.targets import TARGETS
    from edgeenhance.fileio import write_json
    from edgeenhance.runtime.bench import bench, format_table
    from edgeenhance.runtime.report import write_report

    out, targets = Path(out), list(targets or TARGETS)
    t0 = time.time()
    jobs = [("bilateral", "grid", size, "bilateral_grid"), ("student-small", "full", student_size, "student_full")]
    files = {}
    for model, form, exp_size, folder in jobs:
        print(f"[demo] exporting {model} ({form} form) to {', '.join(targets)} as fp32 and int8 "
              "(and CoreML w8a8) ...")
        options = ExportOptions(form=form, size=exp_size, calib_images=calib_images, verify_images=3, threads=threads)
        manifest = Exporter(model, options).export(targets, ["fp32", "int8", "w8a8"], out / folder)
        files[exp_size] = files.get(exp_size, []) + [out / folder / e["file"] for e in manifest["files"]
                                                     if TARGETS[e["target"]].runs_here()]
    result = None
    for bsize, fl in files.items():
        print(f"[demo] benchmarking {len(fl)} files at {bsize[0]}x{bsize[1]}, {threads} threads "
              "(files whose runtime does not exist here, e.g. CoreML off macOS, were verified by replay) ...")
        r = bench(fl, bsize, threads, runs, warmup=2)
        if result is None:
            result = r
        else:
            result["results"] += r["results"]
            result["model_dirs"] += r["model_dirs"]
            result["size"] += f", {bsize[0]}x{bsize[1]}"
    write_json(out / "bench.json", result)
    report = write_report([out / "bench.json"], out / "report.html")
    print(format_table(result))
    print(f"[demo] done in {time.time() - t0:.0f} s. Report: {report.resolve()}")
    return result
