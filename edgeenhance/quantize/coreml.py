"""CoreML quantization: int8 weights on a converted mlprogram, or W8A8 with the activation ranges
calibrated in PyTorch before conversion (calibrating a converted model needs macOS)."""

from __future__ import annotations


def int8_weights(mlmodel):
    from coremltools.optimize.coreml import OpLinearQuantizerConfig, OptimizationConfig, linear_quantize_weights

    cfg = OptimizationConfig(global_config=OpLinearQuantizerConfig(mode="linear_symmetric", granularity="per_channel",
                                                                   weight_threshold=0))
    return linear_quantize_weights(mlmodel, cfg)


def w8a8_module(module, calib_batches, float_modules=()):
    """A copy of ``module`` with int8 fake quantization on weights (per channel) and activations,
    activation ranges observed on ``calib_batches`` (NCHW arrays). coremltools' LinearQuantizer
    places the quantizers where the CoreML converter turns them into quantize/dequantize ops.
    ``float_modules`` stay float here; ``int8_weights`` quantizes their weights after conversion."""
    import copy

    import torch
    from coremltools.optimize.torch.quantization import LinearQuantizer, LinearQuantizerConfig

    model = copy.deepcopy(module).eval()
    cfg = LinearQuantizerConfig.from_dict({
        # min_max: ranges span every calibration image (the default moving average is ruled by the first ones)
        "global_config": {"quantization_scheme": "symmetric", "milestones": [0, 0, 1, 0],
                          "activation_observer": "min_max"},
        "module_name_configs": {name: None for name in float_modules},  # int8 weights come after conversion
    })
    quantizer = LinearQuantizer(model, cfg)
    prepared = quantizer.prepare(example_inputs=(torch.as_tensor(calib_batches[0]),))
    quantizer.step()  # milestone 0: observers and fake quantization on
    with torch.no_grad():
        for batch in calib_batches:  # observers on, weights untouched (no optimizer step)
            prepared(torch.as_tensor(batch))
    quantizer.step()  # milestone 1: observers frozen with the calibrated ranges
    return quantizer.finalize(prepared).eval()
