"""The refined network (a U-Net on mel bands corrected per STFT bin) and the temporal context a U-Net can take."""

import numpy as np
import pytest
import torch
from conftest import REPO, loss_after_training, small_features

from audiomnist_denoise.audio.spectral import mel_basis
from audiomnist_denoise.denoise import denoise_audio
from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.model.checkpoint import load_checkpoint, save_checkpoint
from audiomnist_denoise.model.refined import RefinedMask
from audiomnist_denoise.model.spectral import SpectralDenoiser, new_network
from audiomnist_denoise.model.unet import UNet
from audiomnist_denoise.params import load_params, parse_params

CPU = torch.device("cpu")
BINS = small_features().model_copy(update={"n_mels": None, "fmax": 6000.0})  # 257 bins, the top ones uncovered
RATE = BINS.sample_rate
MODEL = load_params(REPO / "params.yaml").model.model_copy(
    update={"architecture": "refined", "context": "none", "channels": [8, 16], "bands": 32, "refine_channels": 4}
)


def refined(seed: int = 0, **changes) -> SpectralDenoiser:
    return new_network(MODEL.model_copy(update=changes), BINS, seed)


def perturbed(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """`model` with every weight nudged, so layers that start at zero take part."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
    return model


def test_an_untrained_refinement_is_the_unets_band_gain_spread_over_the_bins():
    model = refined().eval()
    network: RefinedMask = model.refined
    power = torch.rand(2, 257, 20) + 1e-3  # frames the U-Net divides: no padding
    band_db = model.frontend.power_db(network.band_power(power))
    band_logit = network.unet(model.normalise(band_db, band_db).unsqueeze(1))[:, 0]
    gain = model(power)
    covered = slice(network.first, network.last)
    torch.testing.assert_close(gain[:, covered], torch.sigmoid(network.spread @ band_logit))
    # Above fmax no band reaches: those bins take the frame's lowest band gain, as spread_mel_gain gives them.
    assert network.last < 257
    torch.testing.assert_close(
        gain[:, network.last :], torch.sigmoid(band_logit.amin(1, keepdim=True)).expand(-1, 257 - network.last, -1)
    )


def test_the_bands_power_is_the_mean_of_their_bins():
    """So white noise has the same dB in every band as in every bin, and one normalisation serves both."""
    network = refined().refined
    power = torch.full((1, 257, 5), 0.01)
    torch.testing.assert_close(network.band_power(power), torch.full((1, 32, 5), 0.01))
    covered = np.flatnonzero(mel_basis(BINS.model_copy(update={"n_mels": 32})).sum(0) > 0)
    assert (network.first, network.last) == (covered[0], covered[-1] + 1)


def test_a_trained_refinement_corrects_the_covered_bins_alone():
    """Once its last layer has weights, each covered bin's gain departs from the spread band gain; the bins above
    fmax keep the frame's lowest band gain."""
    model = perturbed(refined()).eval()
    network: RefinedMask = model.refined
    power = torch.rand(1, 257, 16) + 1e-3
    band_db = model.frontend.power_db(network.band_power(power))
    band_logit = network.unet(model.normalise(band_db, band_db).unsqueeze(1))[:, 0]
    with torch.no_grad():
        gain, spread = model(power), torch.sigmoid(network.spread @ band_logit)
    assert (gain[:, network.first : network.last] - spread).abs().mean() > 1e-2
    torch.testing.assert_close(
        gain[:, network.last :], torch.sigmoid(band_logit.amin(1, keepdim=True)).expand_as(gain[:, network.last :])
    )


@pytest.mark.parametrize("frames", [1, 7, 40])
def test_the_refined_network_gives_a_gain_in_0_1_per_bin_at_any_length(frames):
    model = perturbed(refined(context="gru")).eval()
    power = torch.rand(2, 257, frames) + 1e-3
    gain = model.gain(power)
    assert gain.shape == power.shape and torch.all((gain >= 0) & (gain <= 1))


def test_an_untrained_context_passes_the_unet_through_and_a_trained_one_sees_the_whole_clip():
    torch.manual_seed(0)
    plain = UNet([4, 8], "sigmoid")
    torch.manual_seed(0)
    with_context = UNet([4, 8], "sigmoid", "gru")
    with_context.load_state_dict(plain.state_dict(), strict=False)
    image = torch.rand(1, 1, 16, 64)
    plain.eval(), with_context.eval()
    torch.testing.assert_close(with_context(image), plain(image))
    perturbed(with_context)
    changed = image.clone()
    changed[..., 48:] += 1.0
    # The U-Net alone sees a few frames either side: frame 0 does not move; the context reaches it.
    assert torch.equal(plain(changed)[..., 0], plain(image)[..., 0])
    assert (with_context(changed)[..., 0] - with_context(image)[..., 0]).abs().max() > 1e-6


def test_the_refined_model_survives_its_checkpoint_and_denoises_a_recording(tmp_path):
    model = perturbed(refined(context="gru")).eval()
    save_checkpoint(
        tmp_path / "model.pt", model, {"model": MODEL.model_dump() | {"context": "gru"}, "features": BINS.model_dump()}
    )
    loaded, _ = load_checkpoint(tmp_path / "model.pt")
    assert isinstance(loaded, SpectralDenoiser) and loaded.architecture == "refined"
    power = torch.rand(1, 257, 12) + 1e-3
    torch.testing.assert_close(loaded.gain(power), model.gain(power), rtol=0, atol=0)
    noisy = np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 0.1
    denoised = denoise_audio(noisy, RATE, loaded, BINS, "mask", CPU)
    assert denoised.shape == noisy.shape and np.all(np.isfinite(denoised))
    assert np.sum(denoised.astype(np.float64) ** 2) < np.sum(noisy.astype(np.float64) ** 2)


def test_the_refined_network_learns_to_denoise():
    """A few steps of the compressed loss on fresh white noise lower the loss below the noisy input's."""
    error, identity = loss_after_training(refined(), 30)
    assert error < 0.8 * identity


@pytest.mark.parametrize(
    "features, model, message",
    [
        ({}, {"architecture": "refined"}, "model.architecture refined needs features.n_mels null"),
        ({"n_mels": None}, {"architecture": "refined", "bands": 66}, "model.bands 66 must be a multiple of 4"),
        (
            {"n_mels": None},
            {"architecture": "refined", "target": "mapping", "output": "linear"},
            "needs model.target mask",
        ),
    ],
)
def test_a_bad_refined_setting_is_refused_naming_the_parameter(features, model, message):
    raw = load_params(REPO / "params.yaml").model_dump()
    raw["features"] |= features
    raw["model"] |= model
    with pytest.raises(PipelineError, match=message):
        parse_params(raw)
