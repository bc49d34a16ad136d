"""manifest.json: what an app or the harness needs to run exported files correctly."""

from __future__ import annotations

import json
import os
import platform
import re
from datetime import datetime, timezone
from pathlib import Path

from edgeenhance import __version__
from edgeenhance.errors import UserError
from edgeenhance.fileio import _json_default, sha256, write_json

MANIFEST_VERSION = 2


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


# What runs one file correctly. Each entry carries its own copy (written by this version on), so a
# file keeps the grid normalization and guide it was exported with when the folder is exported again
# with other settings; the top level repeats the latest export's for older readers (the Android demo).
FILE_PARAMS = ("model", "family", "config", "form", "extras", "input_size", "checkpoint")
MAX_SIDE = 16384  # input sizes: larger is no phone photo
_HEX64 = re.compile(r"[0-9a-f]{64}")


def read_manifest(out_dir: Path) -> dict | None:
    """OUT/manifest.json, its structure checked (None if there is none)."""
    p = Path(out_dir) / "manifest.json"
    if not p.exists():
        return None
    try:
        m = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{p}: not a readable manifest ({e})") from None
    if not isinstance(m, dict) or not isinstance(m.get("files"), list) or not all(
            isinstance(e, dict) and _plain_name(e.get("file")) for e in m["files"]):
        raise UserError(f"{p}: not a manifest written by `edgeenhance export` (needs a list of files, each "
                        "with a plain file name)")
    return m


def _plain_name(name) -> bool:
    """A file name inside the manifest's folder: no folders, no way out of it."""
    return isinstance(name, str) and 0 < len(name) <= 255 and name not in (".", "..") and "/" not in name \
        and "\\" not in name and "\0" not in name


def _number(v, lo, hi) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def check_entry(e: dict, where: str) -> None:
    """Every field a reader uses, checked against bounds before use: a crafted manifest gets a clear
    error, never an out-of-bounds read in the compiled slicing pass."""
    def bad(key, why):
        raise UserError(f"{where}: '{key}' {why}; re-export the file to get a valid manifest.json")

    if not (isinstance(e.get("sha256"), str) and _HEX64.fullmatch(e["sha256"])):
        bad("sha256", "is not a sha256 hex digest")
    for key in ("model", "family", "target", "precision", "runtime"):
        if key in e and not (isinstance(e[key], str) and len(e[key]) <= 1000):
            bad(key, "is not a short text")
    if not (isinstance(e.get("form", "full"), str) and re.fullmatch(r"[a-z0-9_-]{1,32}", e.get("form", "full"))):
        bad("form", "is not a form name (full, grid, ...)")
    if "size_bytes" in e and not _number(e["size_bytes"], 0, 1 << 40):
        bad("size_bytes", "is not a file size")
    if "input_size" in e and not (isinstance(e["input_size"], list) and len(e["input_size"]) == 2
                                  and all(_number(v, 1, MAX_SIDE) for v in e["input_size"])):
        bad("input_size", f"is not [height, width] within 1..{MAX_SIDE}")
    for key in ("extras", "config"):
        if key in e and not isinstance(e[key], dict):
            bad(key, "is not an object")
    ck = e.get("checkpoint")
    if ck is not None and not (isinstance(ck, dict) and _plain_name(ck.get("file"))
                               and isinstance(ck.get("sha256"), str) and _HEX64.fullmatch(ck["sha256"])
                               and isinstance(ck.get("path", ""), str)):
        bad("checkpoint", "is not {file, sha256, path}")
    if e.get("form") == "grid":
        from edgeenhance.runtime.pipeline import check_guide

        check_guide((e.get("extras") or {}).get("guide"), where)


def find_entry(model_file: Path) -> dict | None:
    """The manifest entry of an exported file (manifest.json in its folder; older manifests: model-level
    keys merged in), checked field by field, and only if the file is still the one exported: a sha256
    other than the recorded one is refused. None if the folder has no manifest or it lists no such file."""
    model_file = Path(model_file)
    m = read_manifest(model_file.parent)
    if not m:
        return None
    for e in m["files"]:
        if e["file"] == model_file.name:
            entry = {**{k: v for k, v in m.items() if k != "files"}, **e}
            where = f"{model_file.parent / 'manifest.json'} ({model_file.name})"
            check_entry(entry, where)
            if not model_file.exists():
                raise UserError(f"{model_file}: no such model file")
            if sha256(model_file) != entry["sha256"]:
                raise UserError(f"{model_file}: this is not the file {where} describes (its sha256 differs: it was "
                                "replaced or changed after export); export it again")
            return entry
    return None


def reference_model(model_file: Path, entry: dict | None) -> str | None:
    """What ``load_model`` needs to rebuild the float model a file was exported from: a zoo name, or the
    checkpoint named by the entry's portable reference, looked up beside the manifest and at the path
    recorded relative to it, with the recorded sha256. None when it cannot be found."""
    if not entry:
        return None
    ck = entry.get("checkpoint")
    if ck:
        folder = Path(model_file).parent
        for cand in (folder / ck.get("path", ""), folder / ck["file"]):
            if cand.is_file() and cand.suffix == ".safetensors" and sha256(cand) == ck["sha256"]:
                return str(cand)
        return None
    from edgeenhance.models.registry import ZOO

    name = entry.get("model")
    if name in ZOO:
        return name
    if isinstance(name, str) and name.endswith(".safetensors") and Path(name).is_file():  # manifests before v2
        return name
    return None


def checkpoint_reference(checkpoint: Path, out_dir: Path) -> dict:
    """A checkpoint as the manifest records it: name, sha256 and path relative to OUT (never absolute)."""
    checkpoint = Path(checkpoint).resolve()
    try:
        rel = os.path.relpath(checkpoint, Path(out_dir).resolve())
    except ValueError:  # another drive (Windows): the name alone
        rel = checkpoint.name
    return {"file": checkpoint.name, "sha256": sha256(checkpoint), "path": rel}


def _normalized(obj):
    return json.loads(json.dumps(obj, sort_keys=True, default=_json_default))


def file_params(entry: dict) -> dict:
    return {k: entry[k] for k in FILE_PARAMS if k in entry}


def begin_export(out_dir: Path, header: dict, writing, log=print) -> list[dict]:
    """Rewrite OUT/manifest.json (atomically) before an export writes anything, keeping only entries it
    can still vouch for: not of a file this export is about to write, the file unchanged since (sha256),
    and exported with the same parameters (model, grid normalization, input size...). An export
    interrupted half-way then leaves no entry describing a file it replaced. Returns the kept entries."""
    out_dir = Path(out_dir)
    try:
        old = read_manifest(out_dir)
    except UserError as e:
        log(f"  replacing an unreadable manifest ({e})")
        old = None
    want = _normalized(file_params(header))
    kept, dropped = [], []
    for e in (old or {}).get("files", []):
        full = {**{k: v for k, v in old.items() if k != "files"}, **e}
        if e["file"] in writing:
            continue
        try:
            check_entry(full, "manifest.json")
            ok = (out_dir / e["file"]).exists() and sha256(out_dir / e["file"]) == full["sha256"] \
                and _normalized(file_params(full)) == want
        except UserError:
            ok = False
        if ok:
            kept.append({**e, **file_params(full)})
        else:
            dropped.append(e["file"])
    if dropped:
        log(f"  manifest.json no longer lists {', '.join(dropped)} (changed, missing or exported with other "
            "settings; re-export to use them)")
    write_manifest(out_dir, header, kept)
    return kept


def write_manifest(out_dir: Path, header: dict, entries: list[dict]) -> Path:
    """OUT/manifest.json: ``header`` (the latest export's settings) and exactly ``entries``, atomically."""
    data = {**header, "manifest_version": MANIFEST_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tool_versions": tool_versions(), "files": list(entries)}
    write_json(Path(out_dir) / "manifest.json", data)
    return Path(out_dir) / "manifest.json"
