"""Fresh training noise's options: a mixture of kinds, each at the drawn SNR; babble of the training speakers only;
recording conditions (band limit, level, tilt, room) drawn per (seed, step, row); and, with every option off,
exactly the draws the fresh noise has always made."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from conftest import REPO, small_features, train_params

from audiomnist_denoise.data.corpus import Clip, find_clips
from audiomnist_denoise.data.noise import noise_maker, scale_to_snr, snr_db
from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.model.spectral import SpectralDenoiser
from audiomnist_denoise.params import parse_params
from audiomnist_denoise.training.audio_task import AudioClips, AudioTask

CPU = torch.device("cpu")
FEATURES = small_features()
RATE = FEATURES.sample_rate
KINDS = ("white", "pink", "brown", "babble", "files")
# Each speaker of the tone corpus speaks one pure tone, a whole number of periods per clip.
TONES = {"01": 400.0, "02": 1000.0, "03": 2500.0, "04": 4000.0}
TRAINING_SPEAKERS = ("01", "02", "03")  # 04 stands for the val and test speakers
EVERY_CONDITION = dict(
    band_limit_probability=0.5,
    band_limit_rates=[8000, 11025],
    gain_db=[-6.0, 6.0],
    tilt_db_per_octave=[-3.0, 3.0],
    reverb_probability=0.5,
    reverb_rt60=[0.1, 0.4],
)


def sine(frequency: float, seconds: float = 0.25) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * frequency * np.arange(round(seconds * RATE)) / RATE)).astype(np.float32)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "tones"
    for speaker, frequency in TONES.items():
        (root / speaker).mkdir(parents=True)
        for digit in range(3):
            sf.write(root / speaker / f"{digit}_{speaker}_0.wav", sine(frequency), RATE, subtype="FLOAT")
    (tmp_path / "noise").mkdir()
    sf.write(tmp_path / "noise" / "hum.wav", sine(50.0, 0.1) + sine(3000.0, 0.1), RATE)
    return root


def training_clips(corpus: Path) -> AudioClips:
    clips = tuple(clip for clip in find_clips(corpus) if clip.speaker in TRAINING_SPEAKERS)
    audio = [sf.read(corpus / clip.path, dtype="float32")[0] for clip in clips]
    return AudioClips.in_memory(audio, audio, clips)


def makers(corpus: Path, clips: AudioClips, kinds=KINDS) -> tuple:
    """As build_tasks makes them: babble of the training clips alone."""
    return tuple(
        noise_maker(kind, corpus, 3, corpus.parent / "noise", clips.clips, "train.noise_kinds") for kind in kinds
    )


def broadband(count: int, seconds: float = 0.5) -> AudioClips:
    """Gaussian clean clips: energy at every frequency."""
    rng = np.random.default_rng(0)
    audio = [0.1 * rng.standard_normal(round(seconds * RATE)).astype(np.float32) for _ in range(count)]
    clips = tuple(Clip(f"{i % 3 + 1:02d}", i % 10, i // 10) for i in range(count))
    return AudioClips.in_memory(audio, audio, clips)


def task(clips: AudioClips, noise: tuple, **changes) -> AudioTask:
    params = train_params(**({"noise": "fresh", "loss": "compressed", "snr_db": [-10.0, 5.0]} | changes))
    torch.manual_seed(0)
    return AudioTask(clips, SpectralDenoiser(FEATURES, [4, 8], "mask", "dataset", "sigmoid"), params, RATE, noise)


def white(count: int = 1) -> tuple:
    return makers(Path("unused"), broadband(1), ("white",)) * count


def band_power(audio: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    frequencies = np.fft.rfftfreq(len(audio), 1 / RATE)
    return float(spectrum[(frequencies >= low) & (frequencies < high)].sum())


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_mixes_at_the_drawn_snr(kind, corpus):
    clips = training_clips(corpus)
    rows = torch.arange(len(clips))
    clean, noisy, snrs = task(clips, makers(corpus, clips, [kind]), noise_kinds=[kind]).fresh_noisy(rows, step=3)
    for i, length in enumerate(clips.lengths.tolist()):
        target = clean[i, :length].double().numpy()
        assert abs(snr_db(target, noisy[i, :length].double().numpy() - target) - snrs[i]) < 0.1


def test_a_mixture_draws_a_kind_per_clip_after_the_snr_and_hits_the_snr(corpus):
    clips = training_clips(corpus)
    rows = torch.arange(len(clips))
    every = makers(corpus, clips)
    _, noisy, snrs = task(clips, every, noise_kinds=list(KINDS)).fresh_noisy(rows, step=3)
    drawn = set()
    for i, row in enumerate(rows.tolist()):
        rng = np.random.default_rng([0, 4, row])  # (train.seed, step + 1, row)
        length = int(clips.lengths[row])
        clean = clips.clean.clip(row).astype(np.float64)
        assert rng.uniform(-10.0, 5.0) == snrs[i]
        kind = int(rng.integers(len(KINDS)))
        drawn.add(kind)
        expected = clean + scale_to_snr(clean, every[kind](clips.clips[row], length, RATE, rng), snrs[i])
        assert torch.equal(noisy[i, :length], torch.from_numpy(expected).float())
        assert abs(snr_db(clean, noisy[i, :length].double().numpy() - clean) - snrs[i]) < 0.1
    assert len(drawn) > 2


def test_noise_weights_set_each_kinds_share_of_the_draws(corpus):
    clips = training_clips(corpus)
    rows = torch.arange(len(clips))  # 9 clips at 20 steps: 180 draws
    mixed = makers(corpus, clips, ["white", "babble"])

    def babble_share(weights):  # babble kept whole in the target: exactly the clips whose target is their input
        run = task(clips, mixed, noise_kinds=["white", "babble"], noise_weights=weights, babble_kept_db=0.0)
        drawn = [run.fresh_noisy(rows, step) for step in range(20)]
        return np.mean([bool(torch.equal(c[i], n[i])) for c, n, _ in drawn for i in range(len(rows))])

    assert babble_share([1.0, 0.0]) == 0.0 and babble_share([0.0, 2.0]) == 1.0
    assert 0.1 < babble_share([3.0, 1.0]) < 0.4  # a quarter of the draws


def test_training_babble_is_made_of_the_training_speakers_only(corpus):
    clips = training_clips(corpus)
    rows = torch.arange(len(clips))
    clean, noisy, _ = task(clips, makers(corpus, clips, ["babble"]), noise_kinds=["babble"]).fresh_noisy(rows, 0)
    for i, clip in enumerate(clips.clips):
        noise = (noisy[i] - clean[i]).double().numpy()
        total = band_power(noise, 0, RATE / 2)
        assert band_power(noise, TONES["04"] - 25, TONES["04"] + 25) < 1e-6 * total  # never a held-out speaker
        assert band_power(noise, TONES[clip.speaker] - 25, TONES[clip.speaker] + 25) < 1e-6 * total  # nor its own
        others = [TONES[s] for s in TRAINING_SPEAKERS if s != clip.speaker]
        assert sum(band_power(noise, f - 25, f + 25) for f in others) > 0.999 * total


def test_files_without_recordings_name_the_param(tmp_path):
    with pytest.raises(PipelineError, match=r"noise.dir: no recordings .*; train.noise_kinds files needs some"):
        noise_maker("files", tmp_path, 3, tmp_path, (), "train.noise_kinds")


@pytest.mark.parametrize("kind", ["white", "pink", "babble", "files"])
def test_with_the_options_off_the_draws_are_the_single_kinds_as_before(kind, corpus):
    """What fresh noise was before the options: the SNR, then the kind's noise, from (seed, step + 1, row); the
    clean clip itself the target. A listed single kind is the same."""
    clips = training_clips(corpus)
    rows = torch.tensor([5, 0, 3])
    maker = makers(corpus, clips, [kind])
    default = task(clips, maker).batch(rows, 7, CPU, "fp32")
    assert torch.equal(default[0], clips.clean.padded(rows))
    for i, row in enumerate(rows.tolist()):
        rng = np.random.default_rng([0, 8, row])
        length = int(clips.lengths[row])
        clean = clips.clean.clip(row).astype(np.float64)
        snr = rng.uniform(-10.0, 5.0)
        expected = clean + scale_to_snr(clean, maker[0](clips.clips[row], length, RATE, rng), snr)
        assert torch.equal(default[1][i, :length], torch.from_numpy(expected).float())
    listed = task(clips, maker, noise_kinds=[kind]).batch(rows, 7, CPU, "fp32")
    assert all(torch.equal(a, b) for a, b in zip(default, listed, strict=True))


def test_the_same_seed_step_and_row_give_the_same_batch_in_any_task(corpus):
    """As in data-parallel training, where each rank draws its share of a global batch from the whole set."""
    clips = training_clips(corpus)
    changes = dict(noise_kinds=list(KINDS), **EVERY_CONDITION)
    rows = torch.tensor([7, 2, 5, 0, 8, 3])
    whole = task(clips, makers(corpus, clips), **changes).batch(rows, 4, CPU, "fp32")
    extent = int(clips.lengths[rows].max())
    for rank in range(2):
        share = task(clips, makers(corpus, clips), **changes).batch(rows[rank::2], 4, CPU, "fp32", extent)
        for a, b in zip(whole, share, strict=True):
            assert torch.equal(a[rank::2], b)
    again = task(clips, makers(corpus, clips), **changes).batch(rows, 5, CPU, "fp32")
    assert not torch.equal(again[0], whole[0]) and not torch.equal(again[1], whole[1])


def test_band_limiting_removes_what_lies_above_the_drawn_rates_nyquist():
    clips = broadband(8)
    rows = torch.arange(8)
    clean = task(clips, white(), band_limit_probability=1.0, band_limit_rates=[8000]).fresh_noisy(rows, 0)[0]
    for original, limited in zip(clips.clean.padded(rows).double().numpy(), clean.double().numpy(), strict=True):
        assert band_power(limited, 4100, RATE / 2) < 1e-4 * band_power(original, 4100, RATE / 2)
        assert band_power(limited, 0, 3500) == pytest.approx(band_power(original, 0, 3500), rel=0.02)
    # A rate at or above the clips' own leaves them, and so does a probability that is not drawn.
    same = task(clips, white(), band_limit_probability=1.0, band_limit_rates=[16000, 44100]).fresh_noisy(rows, 0)[0]
    assert torch.equal(same, clips.clean.padded(rows))
    some = task(clips, white(), band_limit_probability=0.5, band_limit_rates=[8000]).fresh_noisy(rows, 0)[0]
    changed = [not torch.equal(a, b) for a, b in zip(some, clips.clean.padded(rows), strict=True)]
    assert any(changed) and not all(changed)


def test_level_and_tilt_change_the_target_as_drawn():
    clips = broadband(2, seconds=1.0)
    rows = torch.arange(2)
    louder, noisy, snrs = task(clips, white(), gain_db=[6.0, 6.0]).fresh_noisy(rows, 0)
    torch.testing.assert_close(louder, clips.clean.padded(rows) * 10 ** (6 / 20))
    for i in range(2):
        assert abs(snr_db(louder[i].double().numpy(), (noisy[i] - louder[i]).double().numpy()) - snrs[i]) < 0.1
    tilted = task(clips, white(), tilt_db_per_octave=[6.0, 6.0]).fresh_noisy(rows, 0)[0]
    for original, audio in zip(clips.clean.padded(rows).double().numpy(), tilted.double().numpy(), strict=True):
        # two octaves above the pivot: +12 dB; one below: -6 dB
        for centre, gain_db in ((4000, 12.0), (500, -6.0)):
            ratio = band_power(audio, centre * 0.9, centre * 1.1) / band_power(original, centre * 0.9, centre * 1.1)
            assert 10 * np.log10(ratio) == pytest.approx(gain_db, abs=1.0)


def decay_time(audio: np.ndarray) -> float:
    """RT60 from the Schroeder integral's fall from -5 to -25 dB (T20), in seconds."""
    energy = np.cumsum(audio[::-1] ** 2)[::-1]
    curve = 10 * np.log10(energy / energy[0] + 1e-30)  # past the last sample the energy left is none
    return 3 * (np.argmax(curve < -25) - np.argmax(curve < -5)) / RATE


def test_reverberation_lengthens_the_decay_to_the_drawn_rt60():
    click = np.zeros(RATE, np.float32)
    click[100] = 1.0
    clips = AudioClips.in_memory([click] * 4, [click] * 4, broadband(4).clips)
    rows = torch.arange(4)
    assert decay_time(click) < 0.01
    room = task(clips, white(), reverb_probability=1.0, reverb_rt60=[0.5, 0.5]).fresh_noisy(rows, 0)[0]
    for audio in room.double().numpy():
        assert decay_time(audio) == pytest.approx(0.5, rel=0.15)


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"noise": "fixed", "noise_kinds": ["pink"], "noise_weights": None},
            r"train.noise_kinds \['pink'\] needs train.noise fresh",
        ),
        (
            {"noise": "fixed", "noise_kinds": None, "noise_weights": None, "band_limit_probability": 0.0}
            | {"gain_db": [0.0, 0.0]}
            | {"tilt_db_per_octave": [0.0, 0.0], "reverb_probability": 0.5},
            "train.reverb_probability 0.5 needs train.noise fresh",
        ),
        ({"gain_db": [3.0, -3.0]}, r"train.gain_db \[3.0, -3.0\] must be \[low, high\]"),
        ({"noise_kinds": ["hum"], "noise_weights": None}, "train.noise_kinds.0: Input should be 'white'"),
        (
            {"noise_kinds": ["white", "pink"], "noise_weights": [1.0]},
            r"train.noise_weights \[1.0\] needs one weight per kind of train.noise_kinds \(2\), not all zero",
        ),
        ({"noise_kinds": ["white"], "noise_weights": [0.0]}, r"train.noise_weights \[0.0\] needs one weight"),
        ({"noise_kinds": None, "noise_weights": [1.0]}, r"needs one weight per kind of train.noise_kinds \(0\)"),
        ({"noise_kinds": ["white"], "noise_weights": [-1.0]}, "train.noise_weights.0: Input should be greater"),
    ],
)
def test_params_refuse_options_that_cannot_apply(changes, message):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["train"] |= changes
    with pytest.raises(PipelineError, match=message):
        parse_params(raw)
