"""`edgeenhance info`: the zoo, or one model's parameters, MACs and I/O spec."""

from __future__ import annotations

import json

from edgeenhance.cli.args import parse_size


def add(sub):
    i = sub.add_parser("info", help="parameters, MACs and I/O spec of a model (no MODEL: list the zoo)")
    i.add_argument("model", nargs="?", help="zoo name or checkpoint path")
    i.add_argument("--size", type=parse_size, default=(1080, 1920), help="HxW for the MAC count (default 1080x1920)")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=cmd_info)


def model_info(spec: str, size=(1080, 1920)) -> dict:
    from edgeenhance.models.macs import count_macs, count_params
    from edgeenhance.models.registry import ZOO, deploy_forms, is_classical, load_int8_model, load_model

    m = load_model(spec)
    info = {"model": spec, "family": m.family, "config": m.config}
    if is_classical(m):
        info.update(params=0, note="classical algorithm (no network)")
        return info
    h, w = size
    info["params"] = count_params(m)
    info["macs"] = {f"{h}x{w}": count_macs(m, (1, 3, h + (-h) % m.pad_multiple, w + (-w) % m.pad_multiple)),
                    "256x256": count_macs(m, (1, 3, 256, 256))}
    info["forms"] = {}
    for name, f in deploy_forms(m).items():
        fixed = f.fixed_size
        info["forms"][name] = {
            "input": {"shape": [1, 3, *(fixed or ["H", "W"])], "layout": "NCHW", "dtype": "float32", "range": [0, 1]},
            "output": ({"shape": [1, *f.output_shape], "layout": "NCHW", "meaning": f.output_meaning}
                       if f.output_shape else
                       {"shape": [1, 3, *(fixed or ["H", "W"])], "layout": "NCHW", "dtype": "float32", "range": [0, 1]}),
            "size_multiple": m.pad_multiple,
            # the PyTorch model is NCHW; exported TFLite files default to channel-last
            "tflite_layout": "NHWC (export --layout nchw keeps NCHW); ONNX and CoreML files are NCHW",
        }
    info["fixes"] = ZOO[spec].fixes if spec in ZOO else m.fixes
    if m.trainer:
        info["trainer"] = m.trainer
    if spec in ZOO:
        tuned = load_int8_model(spec)
        if tuned is not None:  # how they were tuned, as the checkpoint records it (see mark_int8_tuned)
            floats = sorted({n for mod in tuned.modules() for n in getattr(mod, "int8_float_modules", ())})
            layers = f"float layers: {', '.join(floats)}" if floats else "every layer int8"
            scales = "one scale per weight tensor" if getattr(tuned, "int8_weight_scales", "channel") == "tensor" \
                else "one scale per output channel"
            info["int8_weights"] = (f"{ZOO[spec].int8_weights}: fine-tuned for int8 (QAT, {layers}, {scales}); "
                                    "TFLite/ONNX int8 and CoreML w8a8 exports start from them "
                                    "(--float-weights: from the float weights)")
    return info


def cmd_info(a):
    from edgeenhance.models.macs import human
    from edgeenhance.models.registry import ZOO

    if not a.model:
        for name, e in ZOO.items():
            print(f"{name:<16}{e.fixes}")
        return
    info = model_info(a.model, a.size)
    if a.json:
        print(json.dumps(info, indent=2))
        return
    print(f"{a.model}: {info['family']} {info['config']}")
    print(f"  parameters: {info['params']:,}")
    for k, v in info.get("macs", {}).items():
        print(f"  MACs at {k}: {human(v)}")
    for name, f in info.get("forms", {}).items():
        print(f"  form {name}: in {f['input']['shape']} -> out {f['output']['shape']} (NCHW; TFLite exports: NHWC)")
    if "int8_weights" in info:
        print(f"  int8 weights: {info['int8_weights']}")
