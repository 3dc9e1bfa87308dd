"""Audio in and out of spectrograms: the one audio reader, Griffin-Lim, and the gain on the noisy STFT."""
