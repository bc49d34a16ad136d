"""Quantization: int8 post-training (TFLite, ONNX), CoreML weights, and quantization-aware fine-tuning."""
