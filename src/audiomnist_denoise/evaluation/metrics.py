"""Speech-quality metrics on waveforms: SI-SDR, wide-band PESQ and (extended) STOI.

PESQ and STOI come from the `pesq` and `pystoi` packages. Two limits of theirs shape
how they are called here:
- PESQ refuses signals under a quarter of a second; shorter clips are padded with
  silence at the end to that length (silence does not change PESQ's speech frames).
- STOI needs about a second of speech after it drops silent frames; a single spoken
  digit has less, and pystoi then warns and returns 1e-5. STOI is therefore computed
  over several clips concatenated (one speaker's test clips, say).
"""

import numpy as np
from pesq import NoUtterancesError, pesq
from pystoi import stoi
from pystoi.utils import resample_oct

from ..audio.io import resample

PESQ_RATE = 16000  # wide-band PESQ works at 16 kHz
STOI_RATE = 10000  # STOI works at 10 kHz; pystoi resamples anything else on every call
PESQ_MIN_SECONDS = 0.25


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., 2019), on zero-mean signals."""
    reference = np.asarray(reference, np.float64) - np.mean(reference)
    estimate = np.asarray(estimate, np.float64) - np.mean(estimate)
    if len(reference) != len(estimate):
        raise ValueError(f"si_sdr needs equal lengths, got {len(reference)} and {len(estimate)}")
    scale = np.dot(estimate, reference) / np.dot(reference, reference)
    target = scale * reference
    residual = estimate - target
    return float(10 * np.log10(np.dot(target, target) / max(np.dot(residual, residual), 1e-300)))


def _at_pesq_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    audio = np.asarray(audio, np.float32)
    audio = resample(audio, sample_rate, PESQ_RATE)
    minimum = int(np.ceil(PESQ_MIN_SECONDS * PESQ_RATE))
    return np.pad(audio, (0, max(0, minimum - len(audio))))


def pesq_wideband(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """Wide-band PESQ (MOS-LQO, about 1 to 4.6) at 16 kHz; NaN when PESQ finds no speech in the reference."""
    if not np.any(reference):
        return float("nan")
    try:
        return float(pesq(PESQ_RATE, _at_pesq_rate(reference, sample_rate), _at_pesq_rate(estimate, sample_rate), "wb"))
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
    return float(stoi(np.concatenate(references), np.concatenate(estimates), sample_rate, extended=extended))
