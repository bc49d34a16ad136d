#!/usr/bin/env python3
"""Copy `edgeenhance export` output (the .tflite files and manifest.json) into the app's assets.

    python android_demo/copy_models.py demo_out/bilateral_grid            # -> assets/models/
    python android_demo/copy_models.py demo_out/student_full --name student  # extra models for the benchmark screen
"""
import argparse
import json
import shutil
import sys
from pathlib import Path

ASSETS = Path(__file__).parent / "app" / "src" / "main" / "assets"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export_dir", type=Path)
    ap.add_argument("--name", default="models", help="asset folder (the live preview reads 'models')")
    a = ap.parse_args(argv)
    manifest_path = a.export_dir / "manifest.json"
    if not manifest_path.exists():
        print(f"error: {manifest_path} not found; run `edgeenhance export ... -o {a.export_dir}` first", file=sys.stderr)
        return 2
    manifest = json.loads(manifest_path.read_text())
    tfl = [e for e in manifest["files"] if e["target"] == "tflite"]
    if not tfl:
        print("error: the manifest lists no .tflite file (export with --target tflite or all)", file=sys.stderr)
        return 2
    if a.name == "models" and manifest.get("form") != "grid":
        print("error: the live preview needs the bilateral grid form (export --form grid)", file=sys.stderr)
        return 2
    dest = ASSETS / a.name
    dest.mkdir(parents=True, exist_ok=True)
    for e in tfl:
        shutil.copy2(a.export_dir / e["file"], dest / e["file"])
    keep = dict(manifest, files=tfl)
    (dest / "manifest.json").write_text(json.dumps(keep, indent=2))
    print(f"copied {len(tfl)} model(s) and manifest.json to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
