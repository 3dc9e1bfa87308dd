"""From the model's images back to sound: mel power and dB at a clip's original shape, then
audio through Griffin-Lim.

A cached clean or noisy image is undone with the dB range recorded for it in the
feature index; a prediction has no range of its own and takes the window below the
noisy peak (`features.prediction_db_range`).
"""

import librosa
import numpy as np
import pandas as pd

from .features import inverse_db, inverse_power, prediction_db_range
from .params import FeatureParams

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


def griffin_lim(mel_power: np.ndarray, length: int, settings: FeatureParams, n_iter: int, seed: int) -> np.ndarray:
    """Audio (float32, exactly `length` samples) whose mel power spectrogram approximates `mel_power`.

    These are the two steps of `librosa.feature.inverse.mel_to_audio`, taken separately
    because librosa 0.11's mel_to_audio cannot pass `random_state` to Griffin-Lim (its
    extra arguments go to the mel filterbank), and without it every call starts from a
    fresh random phase: the same spectrogram would give different audio on every run.
    """
    magnitude = librosa.feature.inverse.mel_to_stft(
        mel_power, sr=settings.sample_rate, n_fft=settings.n_fft, power=2.0, fmin=settings.fmin, fmax=settings.fmax
    )
    # Griffin-Lim re-analyses its own output, so it accepts only a length that gives back as
    # many frames (a clip's original length always does); any other is padded or trimmed after.
    frames = magnitude.shape[1]
    own_length = length if 1 + length // settings.hop_length == frames else None
    audio = librosa.griffinlim(
        magnitude,
        n_iter=n_iter,
        hop_length=settings.hop_length,
        n_fft=settings.n_fft,
        length=own_length,
        random_state=seed,
    )
    return librosa.util.fix_length(audio, size=length).astype(np.float32)
