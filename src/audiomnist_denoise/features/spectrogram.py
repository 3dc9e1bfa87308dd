"""Mel spectrograms as the model sees them, and the exact way back.

Forward, per clip: audio at one sample rate -> mel power spectrogram -> dB (ref 1.0,
so the level is kept; `top_db` below the peak is the floor) -> min-max to [0, 1] ->
resized to H x W with OpenCV. The index keeps the original mel shape and the dB range,
so every step can be undone: resize back, scale back to dB, back to power, to audio.

The whole chain runs in float64 and is rounded to the cache's dtype once, when stored. The
FFT, BLAS and OpenCV kernels each library picks for the CPU round float32 differently in the
last bits, which float16 storage would sometimes keep; float64's last bits never reach it, so
the cache is the same bytes on every CPU (tests/test_simd_paths.py).
"""

from dataclasses import dataclass

import cv2
import librosa
import numpy as np

from ..audio.spectral import band_count, mel_power, power_db
from ..errors import PipelineError
from ..params import FeatureParams

_INTERPOLATION = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}


@dataclass(frozen=True)
class Spectrogram:
    """A normalised, resized spectrogram and what its exact inverse needs."""

    image: np.ndarray  # (H, W) float64 in [0, 1]
    frames: int  # original width: mel frames
    db_min: float
    db_max: float


def resize(image: np.ndarray, height: int, width: int, interpolation: str) -> np.ndarray:
    """OpenCV resize to (height, width), in float64; cv2 takes the size as (width, height)."""
    return cv2.resize(image.astype(np.float64), (width, height), interpolation=_INTERPOLATION[interpolation])


def forward(audio: np.ndarray, settings: FeatureParams, name: str) -> Spectrogram:
    """The model's view of one clip. `name` goes into the error for a constant spectrogram."""
    return from_mel_power(mel_power(audio, settings), settings, name)


def from_mel_power(power: np.ndarray, settings: FeatureParams, name: str) -> Spectrogram:
    """The model's view of a mel power spectrogram (n_mels, frames): a whole clip's, or a window of a longer one."""
    db = power_db(power, settings.top_db)
    db_min, db_max = float(db.min()), float(db.max())
    if db_max == db_min:
        raise PipelineError(f"{name}: constant spectrogram ({db_max:.1f} dB everywhere); cannot normalise")
    return Spectrogram(image_of_db(db, db_min, db_max, settings), db.shape[1], db_min, db_max)


def image_of_db(db: np.ndarray, db_min: float, db_max: float, settings: FeatureParams) -> np.ndarray:
    """dB (n_mels, frames) as the model's H x W image: [db_min, db_max] to [0, 1], resized."""
    normalised = (db - db_min) / (db_max - db_min)
    return np.clip(resize(normalised, *settings.size, settings.interpolation), 0.0, 1.0)


def estimate_image(estimate: np.ndarray, noisy_db_max: float, settings: FeatureParams) -> np.ndarray:
    """A clean mel power estimate as the image a mapping's prediction is read as (`prediction_db_range`),
    so that any model's estimate compares with the cached clean image."""
    db = power_db(estimate, top_db=None)
    return image_of_db(db, *prediction_db_range(noisy_db_max, settings), settings)


def inverse_db(image: np.ndarray, frames: int, db_min: float, db_max: float, settings: FeatureParams) -> np.ndarray:
    """Normalised H x W back to the original (n_mels, frames) in dB."""
    stretched = resize(image, band_count(settings), frames, "linear")
    return np.clip(stretched, 0.0, 1.0) * (db_max - db_min) + db_min


def inverse_power(image: np.ndarray, frames: int, db_min: float, db_max: float, settings: FeatureParams) -> np.ndarray:
    return librosa.db_to_power(inverse_db(image, frames, db_min, db_max, settings))


def prediction_db_range(noisy_db_max: float, settings: FeatureParams) -> tuple[float, float]:
    """The dB range to denormalise a denoised prediction, whose clean range is unknown.

    A clean clip's range is almost always [peak - top_db, peak]: speech has more than
    top_db of dynamic range, so the floor clips. Only the peak is unknown, and speech
    dominates the loudest mel bin even at low SNR, so the noisy clip's peak stands in.
    """
    return noisy_db_max - settings.top_db, noisy_db_max
