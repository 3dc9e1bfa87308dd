"""The full-resolution track: every STFT bin a band (`features.n_mels` null), the recurrent mask network, and
the per-bin ceilings (the ideal ratio and phase-sensitive masks)."""

import numpy as np
import pytest
import torch
from conftest import REPO, loss_after_training, small_features, tone

from audiomnist_denoise.audio.reconstruct import mask_denoise, oracle_bin_masks, oracle_mask
from audiomnist_denoise.audio.spectral import SpectralFrontend, band_count, mel_power, si_sdr, spread_mel_gain, stft
from audiomnist_denoise.data.corpus import Clip
from audiomnist_denoise.data.noise import NoiseMaker, mix_clip
from audiomnist_denoise.denoise import denoise_audio
from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.evaluation.methods import estimate_clean_mel
from audiomnist_denoise.model.checkpoint import load_checkpoint, save_checkpoint
from audiomnist_denoise.model.recurrent import RecurrentMask
from audiomnist_denoise.model.spectral import SpectralDenoiser
from audiomnist_denoise.params import load_params, parse_params

CPU = torch.device("cpu")
BINS = small_features().model_copy(update={"n_mels": None})  # 512-point FFT: 257 bins
RATE = BINS.sample_rate
TONE = tone(0.5, RATE, 150).astype(np.float64)
NOISY, _ = mix_clip(TONE, RATE, Clip("01", 1, 0), NoiseMaker("white"), -5.0, 0)


def gru_denoiser(seed: int = 0) -> SpectralDenoiser:
    torch.manual_seed(seed)
    return SpectralDenoiser(BINS, [16, 8, 8], "mask", "dataset", "sigmoid", "gru")


def test_without_a_filterbank_the_bands_are_the_stft_bins():
    assert band_count(BINS) == 257 and band_count(small_features()) == small_features().n_mels
    power = np.abs(stft(NOISY, BINS)) ** 2
    np.testing.assert_array_equal(mel_power(NOISY, BINS), power)
    gain = np.random.default_rng(0).uniform(0, 1, power.shape)
    np.testing.assert_array_equal(spread_mel_gain(gain, BINS), gain)
    frontend = SpectralFrontend(BINS)
    torch_power = torch.from_numpy(power).float()[None]
    assert torch.equal(frontend.mel(torch_power), torch_power)
    torch_gain = torch.from_numpy(gain).float()[None]
    torch.testing.assert_close(frontend.magnitude_gain(torch_gain), torch_gain.clamp_min(1e-12).sqrt())


def test_a_per_bin_gain_of_one_gives_the_noisy_clip_back_and_of_zero_silence():
    power = mel_power(NOISY, BINS)
    np.testing.assert_allclose(mask_denoise(NOISY, power, BINS), NOISY, atol=1e-6)
    assert np.max(np.abs(mask_denoise(NOISY, np.zeros_like(power), BINS))) == 0


def test_the_bin_ceilings_rank_as_they_should_and_without_noise_give_the_clean_clip():
    ceilings = oracle_bin_masks(TONE, NOISY, BINS)
    assert set(ceilings) == {"oracle_irm", "oracle_psm"}
    assert all(len(audio) == len(NOISY) and audio.dtype == np.float32 for audio in ceilings.values())
    mel_ceiling = si_sdr(TONE, oracle_mask(TONE, NOISY, small_features()))
    irm, psm = (si_sdr(TONE, ceilings[name]) for name in ("oracle_irm", "oracle_psm"))
    # A gain per bin resolves the tone's harmonics, which 32 mel bands smear; knowing the phase does more.
    assert si_sdr(TONE, NOISY) + 10 < mel_ceiling < irm < psm
    for audio in oracle_bin_masks(TONE, TONE, BINS).values():
        np.testing.assert_allclose(audio, TONE, atol=1e-6)


@pytest.mark.parametrize("frames", [1, 9, 40])
def test_the_recurrent_network_gives_a_gain_in_0_1_per_bin_at_any_length(frames):
    model = gru_denoiser().eval()
    power = torch.rand(2, 257, frames) + 1e-3
    gain = model.gain(power)
    assert gain.shape == power.shape and torch.all((gain >= 0) & (gain <= 1))


def test_the_recurrent_network_sees_the_whole_clip():
    """A change in the last frame moves the gain of the first: the context is the clip, not a receptive field."""
    model = gru_denoiser().eval()
    power = torch.rand(1, 257, 30) + 1e-3
    changed = power.clone()
    changed[..., 20:] *= 100
    assert (model.gain(power)[..., 0] - model.gain(changed)[..., 0]).abs().max() > 1e-6  # a receptive field: 0


@pytest.mark.parametrize(
    "widths, output, message",
    [([16], "sigmoid", "needs a projection width"), ([16, 8], "tanh", "model.output")],
)
def test_a_bad_recurrent_network_is_refused_naming_the_parameter(widths, output, message):
    with pytest.raises(PipelineError, match=message):
        RecurrentMask(257, widths, output)


def test_the_recurrent_model_survives_its_checkpoint_and_denoises_a_recording(tmp_path):
    model = gru_denoiser().eval()
    model.db_mean.fill_(-30.0)
    config = {
        "model": {
            "input": "native",
            "target": "mask",
            "normalisation": "dataset",
            "architecture": "gru",
            "channels": [16, 8, 8],
            "output": "sigmoid",
        },
        "features": BINS.model_dump(),
    }
    save_checkpoint(tmp_path / "model.pt", model, config)
    loaded, _ = load_checkpoint(tmp_path / "model.pt")
    assert isinstance(loaded, SpectralDenoiser) and loaded.architecture == "gru"
    noisy = mel_power(NOISY, BINS)
    (estimate,) = estimate_clean_mel(loaded, [noisy], BINS, CPU)
    (expected,) = estimate_clean_mel(model, [noisy], BINS, CPU)
    np.testing.assert_array_equal(estimate, expected)
    assert estimate.shape == noisy.shape and np.all(estimate <= noisy)
    denoised = denoise_audio(NOISY.astype(np.float32), RATE, loaded, BINS, "mask", CPU)
    assert denoised.shape == NOISY.shape and np.all(np.isfinite(denoised))


def test_the_recurrent_network_learns_to_denoise():
    """A few steps of the compressed loss on fresh white noise lower the loss below the noisy input's."""
    error, identity = loss_after_training(gru_denoiser(), 40)
    assert error < 0.8 * identity


@pytest.mark.parametrize("change", [{"architecture": "gru"}, {"context": "gru"}], ids=["recurrent", "context"])
def test_the_recurrent_parts_need_native_input(change):
    raw = load_params(REPO / "params.yaml").model_dump()
    raw["model"] |= {"input": "resized", "target": "mapping", "normalisation": "per_clip", "context": "none"} | change
    raw["train"] |= {"loss": "mse", "noise": "fixed", "noise_kinds": None, "band_limit_probability": 0.0}
    raw["train"] |= {"gain_db": [0.0, 0.0], "tilt_db_per_octave": [0.0, 0.0]}
    key, value = next(iter(change.items()))
    with pytest.raises(PipelineError, match=f"model.{key} {value} needs model.input native"):
        parse_params(raw)
