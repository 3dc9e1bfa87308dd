"""Figures, audio samples and the offline report."""
