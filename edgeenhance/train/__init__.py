"""Trainers (bilateral enhancer, CycleGAN teacher, student distillation), their options (configs.py)
and the one loop they all run their steps through (loop.py)."""
