"""Mel spectrograms as the model sees them, their exact inverse, and the feature cache."""
