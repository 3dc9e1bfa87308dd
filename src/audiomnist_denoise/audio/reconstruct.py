"""From a mel estimate back to sound as a gain on the noisy STFT, noisy phase kept (Griffin-Lim is in
`griffinlim`), and the classical baseline."""

import librosa
import numpy as np

from ..features.spectrogram import mel_basis, mel_power, stft
from ..params import FeatureParams


def _mel_gain_to_linear(mel_gain: np.ndarray, settings: FeatureParams) -> np.ndarray:
    """A gain per mel band spread over the STFT bins: each bin takes its bands' gains, weighted
    by the filterbank. Bins no band covers (above fmax) keep the lowest gain of the frame."""
    basis = mel_basis(settings)
    weight = basis.sum(axis=0)[:, None]
    covered = weight[:, 0] > 0
    linear = np.empty((basis.shape[1], mel_gain.shape[1]))
    linear[covered] = (basis.T @ mel_gain)[covered] / weight[covered]
    linear[~covered] = mel_gain.min(axis=0)
    return linear


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
    magnitude_gain = np.sqrt(_mel_gain_to_linear(gain, settings))
    audio = librosa.istft(
        magnitude_gain * spectrum, hop_length=settings.hop_length, n_fft=settings.n_fft, length=len(noisy)
    )
    return audio.astype(np.float32)


def oracle_mask(clean: np.ndarray, noisy: np.ndarray, settings: FeatureParams) -> np.ndarray:
    """The ceiling of any mel-gain method: the clean clip's own mel power as the estimate."""
    return mask_denoise(noisy, mel_power(clean, settings), settings)


def spectral_gating(noisy: np.ndarray, sample_rate: int) -> np.ndarray:
    """The classical baseline users reach for first: noisereduce's stationary spectral gating."""
    import noisereduce  # here: it imports torch, which `denoise` and the featurizing stages do not need

    return noisereduce.reduce_noise(y=np.asarray(noisy, np.float32), sr=sample_rate, stationary=True).astype(np.float32)
