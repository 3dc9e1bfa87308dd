"""Denoising without the model: mel gains on the noisy STFT, their oracle, the Griffin-Lim ceiling, spectral gating."""

import numpy as np
import pytest
from conftest import REPO

from audiomnist_denoise import tts
from audiomnist_denoise.audio_metrics import si_sdr
from audiomnist_denoise.corpus import Clip
from audiomnist_denoise.features import mel_power
from audiomnist_denoise.noise import NoiseMaker, mix_clip
from audiomnist_denoise.params import load_params
from audiomnist_denoise.reconstruct import mask_denoise, oracle_griffinlim, oracle_mask, spectral_gating

SETTINGS = load_params(REPO / "params.yaml").features.model_copy(update={"sample_rate": 16000, "n_mels": 64})
CLEAN = tts.synthesize_clip("04", 5, 0, 16000, 0) / 32768.0
NOISY, _ = mix_clip(CLEAN, 16000, Clip("04", 5, 0), NoiseMaker("white"), -8.0, 0)


def test_the_clean_mel_as_prediction_is_the_oracle():
    np.testing.assert_array_equal(
        mask_denoise(NOISY, mel_power(CLEAN, SETTINGS), SETTINGS), oracle_mask(CLEAN, NOISY, SETTINGS)
    )


def test_the_oracle_gain_removes_most_of_the_noise():
    denoised = oracle_mask(CLEAN, NOISY, SETTINGS)
    assert len(denoised) == len(NOISY) and denoised.dtype == np.float32
    assert si_sdr(CLEAN, NOISY) == pytest.approx(-8.0, abs=0.5)
    assert si_sdr(CLEAN, denoised) > 3.0


def test_gains_never_amplify():
    """Gains are clipped to [0, 1]: an estimate louder than the noisy clip passes it through unchanged."""
    louder = 10 * mel_power(NOISY, SETTINGS)
    np.testing.assert_allclose(mask_denoise(NOISY, louder, SETTINGS), NOISY, atol=1e-4)
    silent = np.zeros_like(louder)
    assert np.max(np.abs(mask_denoise(NOISY, silent, SETTINGS))) < 1e-4


def test_an_estimate_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="does not match the noisy clip"):
        mask_denoise(NOISY, np.ones((SETTINGS.n_mels, 3)), SETTINGS)


def test_spectral_gating_baseline_reduces_stationary_noise():
    denoised = spectral_gating(NOISY, 16000)
    assert len(denoised) == len(NOISY) and denoised.dtype == np.float32
    assert si_sdr(CLEAN, denoised) > si_sdr(CLEAN, NOISY) + 3.0


def test_oracle_griffinlim_keeps_the_clean_spectrum_but_not_its_phase():
    """Phase is lost, so SI-SDR says little; the magnitude is close to the clean one."""
    rebuilt = oracle_griffinlim(CLEAN, SETTINGS, 32, 0)
    assert len(rebuilt) == len(CLEAN)
    clean_db, rebuilt_db = (10 * np.log10(mel_power(x, SETTINGS) + 1e-10) for x in (CLEAN, rebuilt))
    loud = clean_db > clean_db.max() - 40
    assert np.mean(np.abs(clean_db[loud] - rebuilt_db[loud])) < 3.0
