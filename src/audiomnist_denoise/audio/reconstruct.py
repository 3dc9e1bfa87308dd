"""From a mel estimate back to sound as a gain on the noisy STFT, noisy phase kept (Griffin-Lim is in
`griffinlim`)."""

import numpy as np

from ..params import FeatureParams
from .spectral import istft, mel_basis, mel_power, spread_mel_gain, stft


def mask_denoise(noisy: np.ndarray, estimate: np.ndarray, settings: FeatureParams) -> np.ndarray:
    """Denoise `noisy` (at settings.sample_rate) with a mel estimate of the clean power as a gain on
    its STFT, keeping the noisy phase: no phase to guess, unlike Griffin-Lim.

    The power gain estimate / noisy per mel band and frame, clipped to [0, 1], becomes a
    magnitude gain (its square root) on every STFT bin.
    """
    spectrum = stft(noisy, settings)
    noisy_mel = mel_basis(settings) @ np.abs(spectrum) ** 2
    if estimate.shape != noisy_mel.shape:
        raise ValueError(f"mel estimate of shape {estimate.shape} does not match the noisy clip's {noisy_mel.shape}")
    gain = np.clip(estimate / np.maximum(noisy_mel, 1e-12), 0.0, 1.0)
    magnitude_gain = np.sqrt(spread_mel_gain(gain, settings))
    return istft(magnitude_gain * spectrum, settings, len(noisy)).astype(np.float32)


def oracle_mask(clean: np.ndarray, noisy: np.ndarray, settings: FeatureParams) -> np.ndarray:
    """The ceiling of any mel-gain method: the clean clip's own mel power as the estimate."""
    return mask_denoise(noisy, mel_power(clean, settings), settings)
