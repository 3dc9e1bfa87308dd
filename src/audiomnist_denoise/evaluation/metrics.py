"""Speech-quality metrics on waveforms: wide-band PESQ and (extended) STOI (SI-SDR is the spectral core's,
`audio.spectral.si_sdr`).

PESQ and STOI come from the `pesq` and `pystoi` packages. Two limits of theirs shape
how they are called here:
- PESQ refuses signals under a quarter of a second; shorter clips are padded with
  silence at the end to that length (silence does not change PESQ's speech frames).
- STOI needs about a second of speech after it drops silent frames; a single spoken
  digit has less, and pystoi then warns and returns 1e-5. STOI is therefore computed
  over several clips concatenated (one speaker's test clips, say).
"""

import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from pesq import NoUtterancesError, pesq
from pystoi import stoi as pystoi_stoi
from pystoi.utils import _overlap_and_add, resample_oct

from ..audio.io import resample

PESQ_RATE = 16000  # wide-band PESQ works at 16 kHz
STOI_RATE = 10000  # STOI works at 10 kHz; pystoi resamples anything else on every call
PESQ_MIN_SECONDS = 0.25


def _at_pesq_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    audio = np.asarray(audio, np.float32)
    audio = resample(audio, sample_rate, PESQ_RATE)
    minimum = int(np.ceil(PESQ_MIN_SECONDS * PESQ_RATE))
    return np.pad(audio, (0, max(0, minimum - len(audio))))


def pesq_wideband(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """Wide-band PESQ (MOS-LQO, about 1 to 4.6) at 16 kHz; NaN when PESQ finds no speech in the reference."""
    return PesqReference(reference, sample_rate).score(estimate)


class PesqReference:
    """One reference for wide-band PESQ, brought to 16 kHz once for all the estimates scored against it."""

    def __init__(self, reference: np.ndarray, sample_rate: int):
        self.sample_rate, self.silent = sample_rate, not np.any(reference)
        self.reference = _at_pesq_rate(reference, sample_rate)

    def score(self, estimate: np.ndarray) -> float:
        """`pesq_wideband(reference, estimate, sample_rate)`."""
        if self.silent:
            return float("nan")
        try:
            return float(pesq(PESQ_RATE, self.reference, _at_pesq_rate(estimate, self.sample_rate), "wb"))
        except NoUtterancesError:
            return float("nan")


def at_stoi_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """`audio` at STOI's 10 kHz, resampled exactly as pystoi does it (its own `resample_oct`), so that
    clips scored in many groups are resampled once rather than in every STOI call."""
    if sample_rate == STOI_RATE:
        return np.asarray(audio)
    return resample_oct(np.asarray(audio, np.float64), STOI_RATE, sample_rate)


def stoi_concatenated(
    references: list[np.ndarray], estimates: list[np.ndarray], sample_rate: int, extended: bool = False
) -> float:
    """STOI (or extended STOI) of clips joined end to end: defined where single digits are too short."""
    if len(references) != len(estimates) or not references:
        raise ValueError("stoi_concatenated needs as many estimates as references, and at least one")
    return float(pystoi_stoi(np.concatenate(references), np.concatenate(estimates), sample_rate, extended=extended))


# pystoi's constants (pystoi.stoi), for `StoiReference`.
_FRAME, _FFT, _SEGMENT, _BETA, _DYNAMIC_RANGE = 256, 512, 30, -15.0, 40
_OCTAVE_BANDS = pystoi_stoi.__globals__["OBM"]
_EPS = np.finfo("float").eps


class StoiReference:
    """pystoi's STOI and extended STOI at 10 kHz of many estimates against one clean reference, with the
    reference's part (its silent frames, spectrum and normalised segments) computed once, not once per estimate,
    and pystoi's frame-by-frame loops as array operations: equal to `pystoi.stoi` within float rounding
    (tests/test_audio_metrics.py). pystoi has no way to reuse a reference, and every method of an evaluation
    is scored against the same one."""

    def __init__(self, reference: np.ndarray):
        window = np.hanning(_FRAME + 2)[1:-1]
        frames = self._frames(np.asarray(reference, np.float64), window)
        energies = 20 * np.log10(np.linalg.norm(frames, axis=1) + _EPS)
        self.length, self.window = len(reference), window
        self.speech = (np.max(energies) - _DYNAMIC_RANGE - energies) < 0 if len(frames) else np.zeros(0, bool)
        self.segments = self._segments(frames)
        self._normalised = None  # the reference's segments as extended STOI normalises them, once needed

    @staticmethod
    def _frames(audio: np.ndarray, window: np.ndarray) -> np.ndarray:
        """The windowed frames pystoi takes: every half frame, those starting before len - frame."""
        count = len(range(0, len(audio) - _FRAME, _FRAME // 2))
        if count == 0:
            return np.zeros((0, _FRAME))
        return window * sliding_window_view(audio, _FRAME)[:: _FRAME // 2][:count]

    def _segments(self, frames: np.ndarray) -> np.ndarray | None:
        """(segments, bands, 30) of the one-third-octave envelopes after dropping the reference's silent frames;
        None with fewer than 30 spectrum frames."""
        kept = frames[self.speech]
        audio = _overlap_and_add(kept, _FRAME // 2) if len(kept) else np.zeros(0)
        spectrum = np.fft.rfft(self._frames(audio, self.window), n=_FFT, axis=-1).T
        if spectrum.shape[-1] < _SEGMENT:
            return None
        envelopes = np.sqrt(np.matmul(_OCTAVE_BANDS, np.square(np.abs(spectrum))))
        return np.ascontiguousarray(sliding_window_view(envelopes, _SEGMENT, axis=1).transpose(1, 0, 2))

    def score(self, estimate: np.ndarray, extended: bool = False) -> float:
        """pystoi.stoi(reference, estimate, 10000, extended) for an estimate of the reference's length."""
        if len(estimate) != self.length:
            raise ValueError(f"STOI needs the reference's length {self.length}, got {len(estimate)}")
        if self.segments is None:
            warnings.warn(
                "Not enough STFT frames to compute intermediate intelligibility measure after removing silent "
                "frames. Returning 1e-5. Please check you wav files",
                RuntimeWarning,
                stacklevel=2,
            )
            return 1e-5
        x, y = self.segments, self._segments(self._frames(np.asarray(estimate, np.float64), self.window))
        if extended:
            if self._normalised is None:
                self._normalised = _row_col_normalize(x)
            x_n, y_n = self._normalised, _row_col_normalize(y)
            return float(np.sum(x_n * y_n / _SEGMENT) / x_n.shape[0])
        # pystoi's steps, in its order: scale, clip, subtract the means, divide by the norms, correlate.
        scaled = y * (np.linalg.norm(x, axis=2, keepdims=True) / (np.linalg.norm(y, axis=2, keepdims=True) + _EPS))
        clipped = np.minimum(scaled, x * (1 + 10 ** (-_BETA / 20)))
        clipped = clipped - np.mean(clipped, axis=2, keepdims=True)
        x = x - np.mean(x, axis=2, keepdims=True)
        clipped /= np.linalg.norm(clipped, axis=2, keepdims=True) + _EPS
        x /= np.linalg.norm(x, axis=2, keepdims=True) + _EPS
        return float(np.sum(clipped * x) / (x.shape[0] * x.shape[1]))


def _row_col_normalize(segments: np.ndarray) -> np.ndarray:
    """pystoi.utils.row_col_normalize with its diagonal matrix products as the row and column scalings they are,
    and its tiny random dither (which only an all-zero input would notice) drawn from a generator of its own:
    pystoi's comes from NumPy's global one, whose state differs from worker to worker, and a score written
    to all its digits must not depend on which worker took it."""
    dither = np.random.default_rng(0)
    normed = segments + _EPS * dither.standard_normal(segments.shape)
    normed -= np.mean(normed, axis=-1, keepdims=True)
    normed = normed / np.sqrt(np.sum(np.square(normed), axis=-1, keepdims=True))
    normed += _EPS * dither.standard_normal(normed.shape)
    normed -= np.mean(normed, axis=1, keepdims=True)
    return normed / np.sqrt(np.sum(np.square(normed), axis=1, keepdims=True))
