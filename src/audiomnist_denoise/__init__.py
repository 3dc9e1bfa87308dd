"""Denoising spoken digits with a U-Net, as a reproducible DVC pipeline."""
