"""manifest.json: what an app or the harness needs to run exported files correctly."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path

from edgeenhance import __version__
from edgeenhance.fileio import sha256, write_json


def tool_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"edgeenhance": __version__, "python": platform.python_version()}
    for pkg in ("torch", "onnx", "onnxruntime", "nncf", "litert-torch", "ai-edge-quantizer", "ai-edge-litert",
                "coremltools", "numba"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def io_spec_tflite(path: Path) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    from edgeenhance.runtime.engines import tflite_layout

    it = Interpreter(str(path))
    layout = tflite_layout(it.get_input_details()[0]["shape"])
    spec = {}
    for key, d in (("input", it.get_input_details()[0]), ("output", it.get_output_details()[0])):
        scale, zp = d["quantization"]
        spec[key] = {"name": d["name"], "shape": [int(s) for s in d["shape"]], "dtype": str(d["dtype"].__name__),
                     "layout": layout}
        if scale:
            spec[key]["quantization"] = {"scale": float(scale), "zero_point": int(zp),
                                         "real_value": "scale * (q - zero_point)"}
    return spec


def file_entry(path: Path, target: str, precision: str, io: dict, verification: dict, runtime: str) -> dict:
    for v in io.values():
        v.setdefault("layout", "NCHW")
        v.setdefault("range", [0.0, 1.0])
    return {"file": path.name, "target": target, "precision": precision, "sha256": sha256(path),
            "size_bytes": sum(p.stat().st_size for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file()),
            **io, "verification": verification, "runtime": runtime}


def read_manifest(out_dir: Path) -> dict | None:
    p = Path(out_dir) / "manifest.json"
    return json.loads(p.read_text()) if p.exists() else None


def find_entry(model_file: Path) -> dict | None:
    """The manifest entry of an exported file (manifest.json in its folder), with model-level keys merged."""
    m = read_manifest(Path(model_file).parent)
    if not m:
        return None
    for e in m["files"]:
        if e["file"] == Path(model_file).name:
            return {**{k: v for k, v in m.items() if k != "files"}, **e}
    return None


def write_manifest(out_dir: Path, header: dict, entries: list[dict]) -> Path:
    """Merge entries into OUT/manifest.json (same model and form) and write it atomically."""
    old = read_manifest(out_dir)
    files = {}
    if old and old.get("model") == header["model"] and old.get("form") == header["form"]:
        files = {e["file"]: e for e in old["files"] if (Path(out_dir) / e["file"]).exists()}
    files.update({e["file"]: e for e in entries})
    data = {**header, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tool_versions": tool_versions(), "files": list(files.values())}
    write_json(Path(out_dir) / "manifest.json", data)
    return Path(out_dir) / "manifest.json"
