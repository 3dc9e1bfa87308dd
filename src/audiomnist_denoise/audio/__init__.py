"""From spectrograms back to sound: Griffin-Lim and the gain on the noisy STFT."""
