"""SI-SDR, PESQ and STOI wrappers on known cases."""

import warnings

import numpy as np
import pystoi
import pytest
from pesq import BufferTooShortError, pesq

from audiomnist_denoise.audio.spectral import si_sdr
from audiomnist_denoise.data import tts
from audiomnist_denoise.evaluation.metrics import (
    STOI_RATE,
    StoiReference,
    at_stoi_rate,
    pesq_wideband,
    stoi_concatenated,
)

RATE = 16000
RNG = np.random.default_rng(0)
DIGITS = [tts.synthesize_clip("01", digit, 0, RATE, 0) / 32768.0 for digit in range(6)]
DIGITS_10K = [at_stoi_rate(digit, RATE) for digit in DIGITS]


def noisy(clean: np.ndarray, snr_db: float) -> np.ndarray:
    noise = RNG.standard_normal(len(clean))
    noise *= np.sqrt(np.mean(clean**2) / (np.mean(noise**2) * 10 ** (snr_db / 10)))
    return clean + noise


def test_si_sdr_ignores_scale_and_sees_noise():
    clean = DIGITS[0]
    assert si_sdr(clean, 0.3 * clean) > 100
    assert si_sdr(clean, noisy(clean, 5.0)) == pytest.approx(5.0, abs=0.3)
    assert si_sdr(clean, RNG.standard_normal(len(clean))) < -20
    with pytest.raises(ValueError, match="equal lengths"):
        si_sdr(clean, clean[:-1])


def test_pesq_ranks_clean_above_noisy_and_resamples():
    clean = DIGITS[1]
    assert pesq_wideband(clean, clean, RATE) > 4.0
    assert pesq_wideband(clean, noisy(clean, 0.0), RATE) < 2.0
    at_48k = tts.synthesize_clip("01", 1, 0, 48000, 0) / 32768.0
    assert pesq_wideband(at_48k, at_48k, 48000) > 4.0


def test_pesq_pads_clips_shorter_than_its_minimum():
    """PESQ itself refuses under 0.25 s; the wrapper pads with silence instead."""
    short = DIGITS[2][np.argmax(np.abs(DIGITS[2]) > 0.05) :][: int(0.2 * RATE)]
    with pytest.raises(BufferTooShortError):
        pesq(RATE, short, short, "wb")
    assert pesq_wideband(short, short, RATE) > 3.5


def test_pesq_without_speech_is_nan_not_an_error():
    assert np.isnan(pesq_wideband(np.zeros(RATE), np.zeros(RATE), RATE))


def test_stoi_over_concatenated_clips_is_defined_and_ranks():
    """A single digit is too short for STOI (pystoi returns 1e-5); six joined are not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert stoi_concatenated(DIGITS, DIGITS, RATE) > 0.99
        degraded = [noisy(clip, -5.0) for clip in DIGITS]
        assert 0.2 < stoi_concatenated(DIGITS, degraded, RATE) < 0.9
        assert stoi_concatenated(DIGITS, degraded, RATE, extended=True) < stoi_concatenated(DIGITS, DIGITS, RATE)
    with pytest.raises(ValueError, match="as many estimates"):
        stoi_concatenated(DIGITS, DIGITS[:2], RATE)


def test_clips_resampled_for_stoi_once_score_as_pystoi_scores_them():
    """Resampling up front is what pystoi does inside, so one signal scores the same either way."""
    clean = np.concatenate(DIGITS)
    degraded = noisy(clean, 0.0)
    direct = stoi_concatenated([clean], [degraded], RATE)
    assert stoi_concatenated([at_stoi_rate(clean, RATE)], [at_stoi_rate(degraded, RATE)], STOI_RATE) == direct
    assert len(at_stoi_rate(clean, RATE)) == int(np.ceil(len(clean) * STOI_RATE / RATE))


@pytest.mark.parametrize("extended", [False, True])
def test_one_reference_scores_every_estimate_as_pystoi_does(extended):
    clean = np.concatenate(DIGITS_10K)
    rng = np.random.default_rng(5)
    estimates = [clean + level * rng.standard_normal(len(clean)) for level in (0.001, 0.02, 0.1)]
    estimates += [0.5 * clean, np.roll(clean, 300)]
    reference = StoiReference(clean)
    for estimate in estimates:  # (extended STOI's dither is pystoi's own draw, a 1e-16 effect)
        expected = pystoi.stoi(clean, estimate, STOI_RATE, extended=extended)
        assert reference.score(estimate, extended) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_extended_stoi_is_the_same_whatever_numpys_global_generator_holds():
    """Scores are saved to all their digits (the `references` stage): the worker that computes one must not
    change it, as pystoi's dither from NumPy's global generator would."""
    clean = np.concatenate(DIGITS_10K)
    estimate = clean + 0.02 * np.random.default_rng(5).standard_normal(len(clean))
    scores = []
    for seed in (1, 2):
        np.random.seed(seed)
        scores.append(StoiReference(clean).score(estimate, extended=True))
    assert scores[0] == scores[1]


def test_one_reference_too_short_for_stoi_warns_and_gives_pystois_floor():
    short = np.asarray(DIGITS_10K[0][:2000], np.float64)
    with pytest.warns(RuntimeWarning, match="Not enough STFT frames"):
        assert StoiReference(short).score(short) == 1e-5
    with pytest.raises(ValueError, match="reference's length 2000"):
        StoiReference(short).score(short[:-1])
