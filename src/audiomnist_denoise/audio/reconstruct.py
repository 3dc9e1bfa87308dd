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


def oracle_bin_masks(clean: np.ndarray, noisy: np.ndarray, settings: FeatureParams) -> dict[str, np.ndarray]:
    """The ceilings of a real gain per STFT bin on the noisy STFT, from the clean and noise spectra:
    `oracle_irm`, the ideal ratio mask sqrt(|S|^2 / (|S|^2 + |N|^2)), and `oracle_psm`, the phase-sensitive
    mask |S| / |Y| cos(angle S - angle Y) clipped to [0, 1] (the real gain closest to the clean STFT)."""
    clean_spectrum, spectrum = stft(clean, settings), stft(noisy, settings)
    clean_power, noise_power = np.abs(clean_spectrum) ** 2, np.abs(spectrum - clean_spectrum) ** 2
    masks = {
        "oracle_irm": np.sqrt(clean_power / np.maximum(clean_power + noise_power, 1e-20)),
        # Re(S conj(Y)) / |Y|^2 is |S| / |Y| cos(angle S - angle Y)
        "oracle_psm": np.clip((clean_spectrum * spectrum.conj()).real / np.maximum(np.abs(spectrum) ** 2, 1e-20), 0, 1),
    }
    return {name: istft(mask * spectrum, settings, len(noisy)).astype(np.float32) for name, mask in masks.items()}
