"""The training loop, resume points and data-parallel training."""
