"""Models: the bilateral-grid enhancer, CycleGAN teacher, phone student, LIME baseline, and the zoo."""
