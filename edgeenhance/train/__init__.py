"""Training loops: bilateral enhancer, CycleGAN teacher and student distillation."""
