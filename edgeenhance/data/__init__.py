"""Data: procedural scenes with a camera model, exposure synthesis, image I/O and dataset layouts."""
