"""Reading audio: one decoder for the corpus, the noise, the features, the evaluation and `denoise`."""

from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from ..errors import BadFileError


def _undecodable(path: Path, exc: Exception) -> BadFileError:
    # A 0-byte file (an interrupted copy, typically) says more by its size than by libsndfile's error.
    empty = Path(path).is_file() and Path(path).stat().st_size == 0
    reason = " ".join(str(exc).split())  # libsndfile's messages may span lines: keep the error to one
    return BadFileError(path, "empty file (0 bytes)" if empty else f"cannot decode audio ({reason})")


def check_audio_file(path: Path) -> None:
    """An error naming `path` unless its header decodes and announces samples; reads only the header."""
    try:
        frames = sf.info(path).frames
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise _undecodable(path, exc) from None
    if frames == 0:
        raise BadFileError(path, "empty audio (0 samples)")


def read_channels(path: Path) -> tuple[np.ndarray, int]:
    """A file's samples as float32 in [-1, 1], shaped (samples, channels), and its rate; an error
    naming the file if it cannot be decoded or holds no samples."""
    try:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise _undecodable(path, exc) from None
    if audio.shape[0] == 0:
        raise BadFileError(path, "empty audio (0 samples)")
    return audio, rate


def read_audio(path: Path, downmix: bool = False) -> tuple[np.ndarray, int]:
    """A mono clip's samples (float32 in [-1, 1]) and its rate; several channels are an error unless `downmix`."""
    audio, rate = read_channels(path)
    if audio.shape[1] > 1:
        if not downmix:
            raise BadFileError(
                path, f"{audio.shape[1]} channels, expected mono (set data.downmix: true to average them)"
            )
        return audio.mean(axis=1), rate
    return audio[:, 0], rate


def resample(audio: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """`audio` at `rate` brought to `target_rate` with soxr's high quality (itself when the rates agree)."""
    if rate == target_rate:
        return audio
    return librosa.resample(audio, orig_sr=rate, target_sr=target_rate, res_type="soxr_hq")


def load_resampled(path: Path, sample_rate: int) -> tuple[np.ndarray, int]:
    """A mono clip's samples at `sample_rate` and the file's own rate."""
    audio, rate = read_audio(path)
    return resample(audio, rate, sample_rate), rate
