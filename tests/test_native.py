"""The native track: spectrograms made in PyTorch as in NumPy, a mask in [0, 1] at every frame, fresh
noise at its drawn SNR and the same for the same step, and training that resumes bit for bit."""

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, small_features, tone, tone_clips, train_params

from audiomnist_denoise.audio.spectral import mel_power
from audiomnist_denoise.data.noise import NoiseMaker, snr_db
from audiomnist_denoise.denoise import NATIVE_WINDOW_FRAMES, denoise_audio
from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.evaluation.methods import estimate_clean_mel
from audiomnist_denoise.model.checkpoint import load_checkpoint, save_checkpoint
from audiomnist_denoise.model.spectral import SpectralDenoiser
from audiomnist_denoise.params import parse_params
from audiomnist_denoise.training.audio_task import AudioTask, _Identity, compress
from audiomnist_denoise.training.loop import Trainer
from audiomnist_denoise.training.resume import ResumePoint

CPU = torch.device("cpu")
FEATURES = small_features()
RATE = FEATURES.sample_rate


def denoiser(target="mask", normalisation="dataset", output="sigmoid", seed=0) -> SpectralDenoiser:
    torch.manual_seed(seed)
    return SpectralDenoiser(FEATURES, [4, 8], target, normalisation, output)


@pytest.mark.parametrize(
    "target, normalisation, output",
    [
        ("mask", "dataset", "sigmoid"),
        ("mask", "per_clip", "sigmoid"),
        ("mapping", "per_clip", "sigmoid"),
        ("mapping", "dataset", "linear"),
    ],
)
def test_the_gain_lies_in_0_1_at_every_frame_of_any_length(target, normalisation, output):
    model = denoiser(target, normalisation, output).eval()
    for frames in (1, 7, 33):
        mel = torch.rand(2, FEATURES.n_mels, frames) + 1e-3
        gain = model.gain(mel)
        assert gain.shape == mel.shape
        assert torch.all((gain >= 0) & (gain <= 1))


def test_the_estimate_is_the_gain_on_the_noisy_mel_and_survives_the_checkpoint(tmp_path):
    model = denoiser().eval()
    noisy = mel_power(tone(0.4, RATE, 300) + 0.05 * np.random.default_rng(1).standard_normal(6400), FEATURES)
    (estimate,) = estimate_clean_mel(model, [noisy], FEATURES, CPU)
    assert estimate.shape == noisy.shape and np.all(estimate <= noisy) and np.all(estimate >= 0)
    config = {
        "model": {
            "input": "native",
            "target": "mask",
            "normalisation": "dataset",
            "channels": [4, 8],
            "output": "sigmoid",
        },
        "features": FEATURES.model_dump(),
    }
    model.db_mean.fill_(-20.0)  # the fitted normalisation is part of the saved model
    save_checkpoint(tmp_path / "model.pt", model, config)
    loaded, _ = load_checkpoint(tmp_path / "model.pt")
    assert isinstance(loaded, SpectralDenoiser) and loaded.db_mean.item() == -20.0
    mel = torch.from_numpy(noisy).float()[None]
    assert torch.equal(loaded.gain(mel), model.gain(mel))


def fresh_task(clips, **changes) -> AudioTask:
    params = train_params(**({"noise": "fresh", "loss": "compressed", "snr_db": [-10.0, 5.0]} | changes))
    return AudioTask(clips, denoiser(), params, RATE, (NoiseMaker("white"),))


def test_fresh_noise_hits_its_drawn_snr_and_repeats_for_the_same_seed_and_step():
    clips = tone_clips(6)
    task = fresh_task(clips)
    rows = torch.tensor([4, 1, 3])
    clean_rows, noisy, snrs = task.fresh_noisy(rows, step=5)
    assert torch.equal(clean_rows, clips.clean.padded(rows))  # no recording conditions: the clips are the targets
    assert np.all((snrs >= -10) & (snrs <= 5)) and len(set(snrs)) == 3
    for i, row in enumerate(rows.tolist()):
        length = int(clips.lengths[row])
        clean = clips.clean.clip(row).astype(np.float64)
        assert abs(snr_db(clean, noisy[i, :length].double().numpy() - clean) - snrs[i]) < 0.05
        assert torch.all(noisy[i, length:] == 0)  # the padding stays silent
    _, again, again_snrs = fresh_task(clips).fresh_noisy(rows, step=5)
    assert torch.equal(again, noisy) and np.array_equal(again_snrs, snrs)
    _, alone, _ = task.fresh_noisy(torch.tensor([3]), step=5)  # the same whichever batch or process draws it
    assert torch.equal(alone[0], noisy[2, : alone.shape[-1]]) and torch.all(noisy[2, alone.shape[-1] :] == 0)
    assert not torch.equal(task.fresh_noisy(rows, step=6)[1], noisy)
    assert not torch.equal(fresh_task(clips, seed=1).fresh_noisy(rows, step=5)[1], noisy)


def test_the_identity_scores_no_gain_and_the_loss_ignores_padding():
    clips = tone_clips(4)
    task = fresh_task(clips)
    batch = task.batch(torch.arange(4), 0, CPU, "fp32")
    loss = task.loss(denoiser(), batch, "fp32")
    assert torch.isfinite(loss) and loss > 0
    fixed = AudioTask(clips, denoiser(), train_params(loss="compressed"), RATE)
    assert fixed.identity_loss() > 0
    model = denoiser().eval()
    task = AudioTask(clips.subset(torch.tensor([0])), model, train_params(loss="compressed"), RATE)
    alone = task.batch(torch.tensor([0]), 0, CPU, "fp32")
    extent = int(clips.lengths[0]) + 999
    padded = task.batch(torch.tensor([0]), 0, CPU, "fp32", extent=extent)
    assert alone[0].shape[-1] == int(clips.lengths[0]) and padded[0].shape[-1] == extent
    with torch.no_grad():
        first, second = task.loss(model, alone, "fp32"), task.loss(model, padded, "fp32")
    assert second.item() == pytest.approx(first.item(), rel=0.05)  # padding frames add no error of their own


def test_a_batch_is_cut_to_its_longest_clip():
    clips = tone_clips(5)
    task = fresh_task(clips)
    rows = torch.tensor([0, 2])
    clean, noisy, lengths = task.batch(rows, 3, CPU, "fp32")
    assert clean.shape == noisy.shape == (2, int(clips.lengths[rows].max()))
    assert torch.equal(lengths, clips.lengths[rows])
    assert torch.equal(clean, clips.clean.padded(rows))
    longer, _, _ = task.batch(rows, 3, CPU, "fp32", extent=int(clips.lengths.max()))
    assert torch.equal(longer[:, : clean.shape[-1]], clean) and torch.all(longer[:, clean.shape[-1] :] == 0)


@pytest.mark.parametrize("target", ["mask", "mapping"])
def test_per_clip_normalisation_scales_a_padded_clip_as_it_scales_the_clip_alone(target):
    """The min-max range comes from the clip's own frames: a batch's padding (silence at the floor)
    would otherwise stretch it, and training would see other inputs and targets than evaluation."""
    clips = tone_clips(3)
    model = denoiser(target=target, normalisation="per_clip").eval()
    task = AudioTask(clips, model, train_params(loss="mse"), RATE)
    long_batch = task.batch(torch.arange(3), 0, CPU, "fp32", extent=int(clips.lengths.max()) + 4000)
    noisy_mel = task._mel(long_batch[1])
    inside = task._frames_in_clip(long_batch[2], noisy_mel.shape[-1])
    assert not inside.all()  # the batch holds padding
    for row in range(3):
        own = task._mel(torch.from_numpy(clips.noisy.clip(row))[None])
        frames = own.shape[-1]
        db, own_db = model.frontend.power_db(noisy_mel), model.frontend.power_db(own)
        padded_input = model.normalise(db, db, inside)[row, :, :frames]
        assert torch.allclose(padded_input, model.normalise(own_db, own_db)[0], atol=1e-5)
        stretched = model.normalise(db, db)[row, :, :frames]  # what the padding did before
        assert not torch.allclose(stretched, padded_input, atol=1e-3)
        clean = task._mel(torch.from_numpy(clips.clean.clip(row))[None])
        ideal = model.ideal_output(task._mel(long_batch[0]), noisy_mel, inside)[row, :, :frames]
        assert torch.allclose(ideal, model.ideal_output(clean, own)[0], atol=1e-5)


RUN = dict(epochs=2, batch_size=4, val_every=2, schedule="cosine", warmup_steps=1, noise="fresh", loss="compressed")


# Every recording condition on, and a mixture of kinds
CONDITIONS = dict(
    noise_kinds=["white", "pink", "brown"],
    band_limit_probability=0.5,
    band_limit_rates=[8000],
    gain_db=[-6.0, 6.0],
    tilt_db_per_octave=[-3.0, 3.0],
    reverb_probability=0.5,
    reverb_rt60=[0.05, 0.2],
)


def native_trainer(**changes) -> Trainer:
    model = denoiser()
    run = train_params(**(RUN | changes))
    kinds = run.noise_kinds or ["white"]
    train = AudioTask(tone_clips(10), model, run, RATE, tuple(NoiseMaker(kind) for kind in kinds))
    model.fit_normalisation(train.training_inputs())
    val = AudioTask(tone_clips(4, seed=7), model, run, RATE)
    return Trainer(model, train, val, run, CPU)


class Stopped(Exception):
    pass


@pytest.mark.parametrize("changes", [{}, CONDITIONS], ids=["one-kind", "conditions"])
def test_training_on_fresh_noise_resumes_bit_identical(changes, tmp_path):
    expected, result = native_trainer(**changes).run(lambda *_: None)
    assert result.steps == 6 and result.best_val_loss < result.identity_val_loss
    for stop in (1, 3, 5):
        saved = ResumePoint(tmp_path / f"stop{stop}.pt")

        def save_and_stop(state, fingerprint, saved=saved):
            saved.save(state, fingerprint)
            raise Stopped

        with pytest.raises(Stopped):
            native_trainer(**changes).run(lambda *_: None, save=save_and_stop, save_every=stop)
        second = native_trainer(**changes)
        state, _ = saved.load(second.fingerprint)
        second.load_state_dict(state)
        model, _ = second.run(lambda *_: None)
        for (name, a), b in zip(expected.state_dict().items(), model.state_dict().values(), strict=True):
            assert torch.equal(a, b), f"{name} differs after a resume at step {stop}"


def defaults() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.mark.parametrize(
    "model, train, message",
    [
        ({"input": "resized", "target": "mask"}, {}, "model.target mask needs model.input native"),
        ({"input": "resized"}, {"noise": "fresh"}, "train.noise fresh needs model.input native"),
        ({"input": "resized"}, {"loss": "compressed"}, "train.loss compressed needs model.input native"),
        ({"input": "native", "target": "mask", "output": "linear"}, {}, "needs model.output sigmoid"),
        (
            {"input": "native", "target": "mapping", "normalisation": "dataset", "output": "sigmoid"},
            {},
            "needs model.output linear",
        ),
        ({"input": "native"}, {"snr_db": [6.0, -12.0]}, r"train.snr_db \[6.0, -12.0\] must be \[low, high\]"),
    ],
)
def test_params_refuse_a_mix_of_the_two_tracks(model, train, message):
    raw = defaults()
    raw["model"] |= {"input": "resized", "target": "mapping", "normalisation": "per_clip"} | model
    raw["train"] |= {"loss": "mse", "noise": "fixed", "stoi_weight": 0.0} | train
    parse_params(defaults())  # the defaults themselves are valid
    with pytest.raises(PipelineError, match=message):
        parse_params(raw)


def test_denoise_reads_a_recording_longer_than_its_windows_with_a_native_model():
    seconds = 2.5 * NATIVE_WINDOW_FRAMES * FEATURES.hop_length / RATE  # several cross-faded windows
    rng = np.random.default_rng(0)
    clean = np.concatenate([tone(0.5, RATE, 200 + 50 * k, k) for k in range(int(seconds / 0.5) + 1)])
    noisy = np.stack([clean, clean[::-1]], axis=1) + 0.02 * rng.standard_normal((len(clean), 2)).astype(np.float32)
    denoised = denoise_audio(noisy, 22050, denoiser().eval(), FEATURES, "mask", CPU)
    assert denoised.shape == noisy.shape and denoised.dtype == np.float32 and np.all(np.isfinite(denoised))


def test_the_si_sdr_term_is_subtracted_in_proportion_to_its_weight():
    batch = fresh_task(tone_clips(4)).batch(torch.arange(4), 0, CPU, "fp32")
    network = denoiser()
    plain = fresh_task(tone_clips(4)).loss(network, batch, "fp32").item()
    losses = {
        weight: fresh_task(tone_clips(4), loss="compressed_si_sdr", si_sdr_weight=weight).loss(network, batch, "fp32")
        for weight in (0.0, 0.01, 0.03)
    }
    assert losses[0.0].item() == pytest.approx(plain)
    # the SI-SDR term is subtracted in proportion to its weight: both weights see the same mean SI-SDR
    mean_si_sdr = (plain - losses[0.01].item()) / 0.01
    assert (plain - losses[0.03].item()) / 0.03 == pytest.approx(mean_si_sdr, rel=1e-3)
    assert mean_si_sdr != pytest.approx(0.0, abs=0.1)


def test_the_speech_loss_weight_scales_only_the_errors_where_speech_is_taken_away():
    task, weighted = fresh_task(tone_clips(4)), fresh_task(tone_clips(4), speech_loss_weight=5.0)
    batch = task.batch(torch.arange(4), 0, CPU, "fp32")
    clean, noisy, _ = batch
    identity = _Identity(task.denoiser)  # the denoised magnitude is the noisy one
    errors, weighted_errors = (t._errors(identity, batch, "fp32")[0] for t in (task, weighted))
    below = task.frontend.stft(noisy).abs() < task.frontend.stft(clean).abs()  # where noise cancels speech
    assert below.any() and (~below).any()
    torch.testing.assert_close(weighted_errors[below], 5 * errors[below])
    torch.testing.assert_close(weighted_errors[~below], errors[~below])
    silent = _Silent()  # a gain of 0: every error is speech taken away
    torch.testing.assert_close(weighted._errors(silent, batch, "fp32")[0], 5 * task._errors(silent, batch, "fp32")[0])


def test_the_complex_weight_takes_its_share_of_the_error_on_the_phase():
    task = fresh_task(tone_clips(4))
    clean, _, lengths = task.batch(torch.arange(4), 0, CPU, "fp32")
    identity = _Identity(task.denoiser)  # the denoised spectrum is the noisy one
    magnitude = task.frontend.stft(clean).abs()
    audible = magnitude > 1e-3  # where the phase is defined

    def errors(weight: float, noisy: torch.Tensor, **changes) -> torch.Tensor:
        task = fresh_task(tone_clips(4), complex_weight=weight, **changes)
        return task._errors(identity, (clean, noisy, lengths), "fp32")[0][audible]

    # upside down, the magnitudes agree but the compressed complex spectra lie twice the magnitude apart
    torch.testing.assert_close(errors(0.0, -clean), torch.zeros(int(audible.sum())), atol=1e-6, rtol=0)
    torch.testing.assert_close(errors(1.0, -clean), (2 * compress(magnitude[audible])).square())
    torch.testing.assert_close(errors(0.25, -clean), 0.25 * errors(1.0, -clean))
    # the speech weight applies to the magnitude's share alone: all of it on the complex spectra leaves none
    torch.testing.assert_close(errors(1.0, -clean, speech_loss_weight=5.0), errors(1.0, -clean))
    halves = errors(0.5, 0.5 * clean, speech_loss_weight=5.0)  # half the speech taken away, in phase
    torch.testing.assert_close(
        halves, 0.5 * errors(0.0, 0.5 * clean, speech_loss_weight=5.0) + 0.5 * errors(1.0, 0.5 * clean)
    )
    # in phase, the complex error is the magnitude error
    assert errors(0.0, 2 * clean).min() > 0
    torch.testing.assert_close(errors(1.0, 2 * clean), errors(0.0, 2 * clean))


class _Silent(torch.nn.Module):
    def forward(self, mel_power: torch.Tensor, inside: torch.Tensor | None = None) -> torch.Tensor:
        return torch.zeros_like(mel_power)


def test_babble_kept_in_the_target_is_the_mixed_babble_at_its_level():
    clips = tone_clips(4)
    params = train_params(noise="fresh", loss="compressed", snr_db=[-5.0, -5.0], babble_kept_db=-6.0)
    task = AudioTask(clips, denoiser(), params, RATE, (NoiseMaker("white"),))
    targets, noisy, _ = task.fresh_noisy(torch.arange(4), step=3)
    assert torch.equal(targets, clips.clean.padded(range(4)))  # only babble is kept: white noise's target stays clean
    kept = AudioTask(clips, denoiser(), params, RATE, (_Babble(),))
    targets, noisy, _ = kept.fresh_noisy(torch.arange(4), step=3)
    clean = clips.clean.padded(range(4))
    torch.testing.assert_close(targets - clean, (noisy - clean) * 10 ** (-6 / 20), atol=1e-6, rtol=0)


class _Babble:
    """A stand-in babble maker: white noise under babble's name."""

    kind = "babble"

    def __call__(self, clip, length, rate, rng):
        return rng.standard_normal(length)
