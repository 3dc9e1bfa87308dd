"""From the model's images back to sound: mel power and dB at a clip's original shape, then
audio as a gain on the noisy STFT (Griffin-Lim is in `griffinlim`), and the classical baseline.

A cached clean or noisy image is undone with the dB range recorded for it in the
feature index; a prediction has no range of its own and takes the window below the
noisy peak (`features.prediction_db_range`).
"""

import librosa
import noisereduce
import numpy as np
import pandas as pd

from ..features.spectrogram import inverse_db, inverse_power, mel_basis, mel_power, prediction_db_range, stft
from ..params import FeatureParams

SOURCES = ("clean", "noisy", "denoised")


def db_range(row: pd.Series, source: str, settings: FeatureParams) -> tuple[float, float]:
    """The (low, high) dB window that maps `source`'s image of the clip in index `row` back to dB."""
    if source == "denoised":
        return prediction_db_range(float(row["noisy_db_max"]), settings)
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
    return float(row[f"{source}_db_min"]), float(row[f"{source}_db_max"])


def image_db(image: np.ndarray, row: pd.Series, source: str, settings: FeatureParams) -> np.ndarray:
    """`source`'s (H, W) image of the clip in index `row` as dB at its original (n_mels, frames)."""
    return inverse_db(image, int(row["frames"]), *db_range(row, source, settings), settings)


def denoised_power(prediction_image: np.ndarray, row: pd.Series, settings: FeatureParams) -> np.ndarray:
    """A prediction for the clip in index `row` as mel power at its original (n_mels, frames)."""
    return inverse_power(prediction_image, int(row["frames"]), *db_range(row, "denoised", settings), settings)


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
    return noisereduce.reduce_noise(y=np.asarray(noisy, np.float32), sr=sample_rate, stationary=True).astype(np.float32)
