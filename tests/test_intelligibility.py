"""The loss's intelligibility term: STOI's measure on the model's STFT, 1 for the clean clip, ordered as pystoi's
STOI over SNRs, blind to padding, in the loss in proportion to its weight, and a gradient that raises real STOI."""

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, small_features, tone, train_params
from pystoi import stoi

from audiomnist_denoise.audio.spectral import SpectralFrontend
from audiomnist_denoise.data.corpus import Clip
from audiomnist_denoise.data.noise import NoiseMaker
from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.model.spectral import SpectralDenoiser
from audiomnist_denoise.params import parse_params
from audiomnist_denoise.training.audio_task import AudioClips, AudioTask
from audiomnist_denoise.training.intelligibility import ShortTimeIntelligibility

FEATURES = small_features()
RATE = FEATURES.sample_rate
FRONTEND = SpectralFrontend(FEATURES)
TERM = ShortTimeIntelligibility(RATE, FEATURES.n_fft, FEATURES.hop_length)


def syllables(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like clean audio: harmonic tones switched on and off four times a second at changing pitch, so the
    band envelopes move as a voice's do."""
    rng = np.random.default_rng(seed)
    syllable = round(RATE / 4)
    pieces = [tone(0.25, RATE, rng.uniform(120, 260), seed + k) * np.hanning(syllable) for k in range(int(seconds * 4))]
    return np.concatenate(pieces).astype(np.float32)


def white(clean: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(clean))
    return (clean + noise * np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr_db / 10))).astype(np.float32)


def magnitude(audio: np.ndarray) -> torch.Tensor:
    return FRONTEND.stft(torch.from_numpy(audio)[None]).abs()


def everywhere(spectrum: torch.Tensor) -> torch.Tensor:
    return torch.ones(spectrum.shape[0], 1, spectrum.shape[-1], dtype=torch.bool)


def test_the_measure_is_1_for_the_clean_clip_and_falls_with_the_snr_as_stoi_does():
    clean = syllables(2.0)
    reference = magnitude(clean)
    assert TERM(reference, reference, everywhere(reference)).item() == pytest.approx(1.0, abs=1e-5)
    ours, theirs = [], []
    for snr in (10, 0, -5, -10):
        noisy = white(clean, snr)
        ours.append(TERM(magnitude(noisy), reference, everywhere(reference)).item())
        theirs.append(stoi(clean, noisy, RATE))
    assert ours == sorted(ours, reverse=True) and theirs == sorted(theirs, reverse=True)
    assert ours[0] - ours[-1] > 0.15  # it measures the noise, not only that something changed
    np.testing.assert_allclose(ours, theirs, atol=0.05)  # a proxy of STOI: no VAD, another STFT and rate


def test_padding_changes_nothing_and_a_clip_shorter_than_a_segment_scores_0_without_a_gradient():
    clean = syllables(1.0)
    noisy = white(clean, 0)
    reference, denoised = magnitude(clean), magnitude(noisy)
    alone = TERM(denoised, reference, everywhere(reference))
    padding = 40  # frames of silence after the clip, outside it
    padded = [torch.nn.functional.pad(m, (0, padding)) for m in (denoised, reference)]
    inside = torch.nn.functional.pad(everywhere(reference), (0, padding))
    torch.testing.assert_close(TERM(*padded, inside), alone)
    short = denoised[..., : TERM.frames - 1].clone().requires_grad_()
    measure = TERM(short, reference[..., : TERM.frames - 1], everywhere(short))
    assert measure.item() == 0.0 and not measure.requires_grad
    # in a batch of a long clip and a short one, the short one scores 0 and the long one as alone
    both = torch.cat([denoised, torch.nn.functional.pad(short.detach(), (0, denoised.shape[-1] - TERM.frames + 1))])
    inside = torch.cat([everywhere(denoised), torch.arange(denoised.shape[-1])[None, None] < TERM.frames - 1])
    scores = TERM(both, torch.cat([reference, reference]), inside)
    torch.testing.assert_close(scores, torch.stack([alone[0], torch.tensor(0.0)]))


def test_its_gradient_on_a_gain_raises_stoi():
    clean = syllables(2.0)
    noisy = white(clean, -5)
    spectrum = FRONTEND.stft(torch.from_numpy(noisy)[None])
    reference = magnitude(clean)
    logits = torch.zeros(spectrum.shape, requires_grad=True)
    optimiser = torch.optim.Adam([logits], lr=0.1)
    for _ in range(60):
        optimiser.zero_grad()
        (-TERM(torch.sigmoid(logits) * spectrum.abs(), reference, everywhere(reference))).sum().backward()
        optimiser.step()
    gain = torch.sigmoid(logits).detach()
    denoised = FRONTEND.istft(gain * spectrum, len(noisy))[0].numpy()
    assert stoi(clean, denoised, RATE) > stoi(clean, noisy, RATE) + 0.05


def long_clips(count: int) -> AudioClips:
    clean = [syllables(1.0, seed=i) for i in range(count)]
    return AudioClips.in_memory(
        clean, [white(audio, 0) for audio in clean], tuple(Clip("01", i, 0) for i in range(count))
    )


def task(**changes) -> AudioTask:
    params = train_params(**({"noise": "fresh", "loss": "compressed", "snr_db": [-10.0, 5.0]} | changes))
    torch.manual_seed(0)
    denoiser = SpectralDenoiser(FEATURES, [4, 8], "mask", "dataset", "sigmoid")
    return AudioTask(long_clips(3), denoiser, params, RATE, (NoiseMaker("white"),))


@pytest.mark.parametrize("loss", ["compressed", "compressed_si_sdr"])
def test_the_loss_subtracts_the_measure_in_proportion_to_its_weight(loss):
    plain = task(loss=loss)
    batch = plain.batch(torch.arange(3), 0, torch.device("cpu"), "fp32")
    network = plain.denoiser
    base = plain.loss(network, batch, "fp32").item()
    drops = {
        weight: base - task(loss=loss, stoi_weight=weight).loss(network, batch, "fp32").item() for weight in (0.1, 0.4)
    }
    assert 0.3 < drops[0.1] / 0.1 < 1  # the mean measure of an untrained network on noisy clips
    assert drops[0.4] / 0.4 == pytest.approx(drops[0.1] / 0.1, rel=1e-4)
    # validation leaves the term out: it compares one quantity across losses
    device = torch.device("cpu")
    assert task(loss=loss, stoi_weight=0.4).error(network, 3, device, "fp32") == plain.error(network, 3, device, "fp32")


def test_the_weight_with_the_mse_loss_is_refused_in_one_line():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["train"] |= {"loss": "mse", "stoi_weight": 0.2}
    with pytest.raises(PipelineError, match=r"train.stoi_weight 0.2 needs train.loss compressed"):
        parse_params(raw)
