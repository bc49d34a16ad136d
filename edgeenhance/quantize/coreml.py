"""CoreML int8 weights (linear symmetric, per channel), applied to a converted mlprogram."""


def int8_weights(mlmodel):
    from coremltools.optimize.coreml import OpLinearQuantizerConfig, OptimizationConfig, linear_quantize_weights

    cfg = OptimizationConfig(global_config=OpLinearQuantizerConfig(mode="linear_symmetric", granularity="per_channel",
                                                                   weight_threshold=0))
    return linear_quantize_weights(mlmodel, cfg)
