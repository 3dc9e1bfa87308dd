"""Reading audio: one decoder for the corpus, the noise, the features, the evaluation and `denoise`."""

import struct
from collections.abc import Iterator
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
    check_finite(audio, path, rate)
    return audio, rate


def check_finite(audio: np.ndarray, path: Path, rate: int, offset: int = 0) -> None:
    """An error naming `path` and the first NaN or infinite sample of `audio` (samples, channels), which
    starts `offset` samples into the file: a float file can hold them, and every step after would spread them."""
    bad = ~np.isfinite(audio)
    if not bad.any():
        return
    sample, channel = np.argwhere(bad)[0]
    position = offset + int(sample)
    raise BadFileError(
        path,
        f"non-finite sample ({audio[sample, channel]}) at sample {position} ({position / rate:.3f} s)"
        f" of channel {channel + 1}",
    )


def read_blocks(path: Path, block: int) -> Iterator[np.ndarray]:
    """A file's samples as float32 blocks of `block` samples (the last may be shorter), shaped (samples, channels),
    each checked as `read_channels` checks a whole file; memory does not grow with the file's length."""
    try:
        with sf.SoundFile(path) as audio_file:
            rate, offset = audio_file.samplerate, 0
            for samples in audio_file.blocks(block, dtype="float32", always_2d=True):
                check_finite(samples, path, rate, offset)
                offset += len(samples)
                yield samples
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise _undecodable(path, exc) from None
    if offset == 0:
        raise BadFileError(path, "empty audio (0 samples)")


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


class FloatWavWriter:
    """A 32-bit float wav written block by block, as `fsutil.write_wav` writes a whole array; the header's sizes
    are filled in on close. Written by hand: libsndfile stamps float wavs with the time of writing (the PEAK
    chunk), so the same samples would give different bytes on every run, and scipy writes only whole arrays."""

    # scipy's layout, so the bytes equal `fsutil.write_wav`'s: fmt with an empty extension, fact, then data.
    _HEADER = struct.Struct("<4sI4s4sIHHIIHHH4sII4sI")
    _IEEE_FLOAT = 3
    _MAX_DATA_BYTES = 2**32 - 1 - (_HEADER.size - 8)  # the RIFF size field is 32 bits

    def __init__(self, path: Path, rate: int, channels: int):
        self.path, self.rate, self.channels, self.frames = Path(path), rate, channels, 0
        self._file = open(path, "wb")
        self._write_header()

    def _write_header(self) -> None:
        data_bytes = self.frames * self.channels * 4
        block = self.channels * 4
        self._file.write(
            self._HEADER.pack(
                b"RIFF",
                data_bytes + self._HEADER.size - 8,
                b"WAVE",
                b"fmt ",
                18,
                self._IEEE_FLOAT,
                self.channels,
                self.rate,
                self.rate * block,
                block,
                32,
                0,
                b"fact",
                4,
                self.frames,
                b"data",
                data_bytes,
            )  # fmt: skip
        )

    def write(self, samples: np.ndarray) -> None:
        """Append (samples, channels) samples, as float32."""
        if samples.ndim != 2 or samples.shape[1] != self.channels:
            raise ValueError(f"expected (samples, {self.channels}) samples, got {samples.shape}")
        if (self.frames + len(samples)) * self.channels * 4 > self._MAX_DATA_BYTES:
            raise BadFileError(self.path, "the output would exceed a wav file's 4 GiB")
        self._file.write(np.ascontiguousarray(samples, "<f4").tobytes())
        self.frames += len(samples)

    def close(self) -> None:
        self._file.seek(0)
        self._write_header()
        self._file.close()

    def __enter__(self) -> "FloatWavWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
