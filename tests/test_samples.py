"""Audio samples: which test clips are chosen, Griffin-Lim, the way back from images, and the stage."""

import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from conftest import DIGITS, REPO, griffin_lim, make_corpus, mel_db, tone

from audiomnist_denoise.audio.reconstruct import db_range, denoised_power, image_db
from audiomnist_denoise.data import tts
from audiomnist_denoise.data.noise import mix_corpus, noise_maker
from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.features.cache import build_feature_cache, read_index
from audiomnist_denoise.features.spectrogram import forward
from audiomnist_denoise.model.checkpoint import save_checkpoint
from audiomnist_denoise.model.unet import build_model
from audiomnist_denoise.params import load_params
from audiomnist_denoise.reporting.samples import choose_samples

DEFAULTS = load_params(REPO / "params.yaml")
# Small enough to be fast; 128 mels over 257 STFT bins keep the mel projection's loss moderate.
SETTINGS = DEFAULTS.features.model_copy(update={"sample_rate": 16000, "n_mels": 128, "n_fft": 512, "hop_length": 128})
SPEECH = (tts.synthesize_clip("01", 3, 0, SETTINGS.sample_rate, 0) / 32768.0).astype(np.float32)


def grid_index(speakers=("01", "02", "03", "04", "05"), digits=DIGITS, reps=3) -> pd.DataFrame:
    rows = [
        {"clip_id": f"{digit}_{speaker}_{rep}", "speaker": speaker, "digit": digit, "rep": rep}
        for speaker in speakers
        for digit in digits
        for rep in range(reps)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("count, digits, speakers", [(1, 1, 1), (5, 5, 5), (6, 6, 5), (10, 10, 5), (20, 10, 5)])
def test_samples_spread_over_as_many_digits_and_speakers_as_possible(count, digits, speakers):
    chosen = choose_samples(grid_index(), count, seed=0)
    assert len(chosen) == count and chosen["clip_id"].is_unique
    assert chosen["digit"].nunique() == digits and chosen["speaker"].nunique() == speakers
    for column in ("digit", "speaker"):  # beyond one round, evenly: none twice before all once
        uses = chosen[column].value_counts()
        assert uses.max() - uses.min() <= 1


def test_samples_spread_when_speakers_lack_digits():
    """Speaker 02 said only a 0: picking it must not cost a digit, nor its digit a speaker."""
    index = pd.concat([grid_index(speakers=("01",), reps=1), grid_index(speakers=("02",), digits=[0], reps=1)])
    for seed in range(10):
        chosen = choose_samples(index, 2, seed)
        assert chosen["speaker"].nunique() == 2 and chosen["digit"].nunique() == 2


def test_sample_choice_depends_only_on_the_clips_and_the_seed():
    index = grid_index()
    first = choose_samples(index, 6, seed=3)
    shuffled = index.sample(frac=1, random_state=1)
    assert first["clip_id"].tolist() == choose_samples(shuffled, 6, seed=3)["clip_id"].tolist()
    assert first["clip_id"].tolist() != choose_samples(index, 6, seed=4)["clip_id"].tolist()


def test_sample_choice_keeps_the_index_labels():
    index = grid_index().set_axis(range(100, 250))
    chosen = choose_samples(index, 4, seed=0)
    pd.testing.assert_frame_equal(chosen, index.loc[chosen.index])


def test_more_samples_than_test_clips_is_refused():
    with pytest.raises(PipelineError, match=r"samples.count: 31 samples asked for, but the test split has 30 clips"):
        choose_samples(grid_index(reps=1, speakers=("01", "02", "03")), 31, seed=0)


# The clip's own length (the shortest with its 51 frames) and the longest with as many frames; lengths
# of other frame counts are refused (tests/test_griffinlim.py), no longer trimmed or padded.
@pytest.mark.parametrize("length_change", [0, SETTINGS.hop_length - 1])
def test_griffin_lim_gives_the_requested_length_deterministically(length_change):
    audio = tone(0.4, SETTINGS.sample_rate, 220)
    power = librosa.db_to_power(mel_db(audio, SETTINGS))
    length = len(audio) + length_change
    first = griffin_lim(power, length, SETTINGS, n_iter=4, seed=0)
    assert first.shape == (length,) and first.dtype == np.float32 and np.all(np.isfinite(first))
    np.testing.assert_array_equal(first, griffin_lim(power, length, SETTINGS, n_iter=4, seed=0))
    assert not np.array_equal(first, griffin_lim(power, length, SETTINGS, n_iter=4, seed=1))


def spectral_convergence(reference: np.ndarray, estimate: np.ndarray) -> float:
    """|| |STFT(estimate)| - |STFT(reference)| ||_F / || |STFT(reference)| ||_F: 0 is perfect, silence gives 1."""
    magnitudes = [
        np.abs(librosa.stft(x, n_fft=SETTINGS.n_fft, hop_length=SETTINGS.hop_length)) for x in (reference, estimate)
    ]
    return float(np.linalg.norm(magnitudes[1] - magnitudes[0]) / np.linalg.norm(magnitudes[0]))


# Measured with 32 iterations at these settings (16 kHz, 128 mels, n_fft 512), torch Griffin-Lim: 0.198 on
# this clip (0.184 to 0.198 over seeds 0 to 4; librosa's mel_to_audio 0.19 to 0.20), 0.10 to 0.16 on three
# other eSpeak clips (librosa 0.12 to 0.17). With librosa, 0.09 to 0.24 (median 0.15) over 30 eSpeak clips
# of 6 speakers, and 0.15 to 0.17 at the defaults (48 kHz, 256 mels, n_fft 2048). Most of it is the mel
# projection, not the lost phase: the magnitude recovered from the mel is already 0.16 away (librosa's
# mel_to_stft 0.17), while Griffin-Lim from the true STFT magnitude reaches 0.08. Silence scores 1.0 and a
# wrong sample rate or mel range 0.83 to 1.24, so 0.3 leaves room for other clips and library versions and
# still catches a broken inversion.
SPECTRAL_CONVERGENCE_BOUND = 0.3


def test_griffin_lim_reconstructs_clean_speech_within_the_stated_bound():
    power = librosa.db_to_power(mel_db(SPEECH, SETTINGS))
    reconstruction = griffin_lim(power, len(SPEECH), SETTINGS, n_iter=32, seed=0)
    assert spectral_convergence(SPEECH, reconstruction) < SPECTRAL_CONVERGENCE_BOUND
    assert spectral_convergence(SPEECH, np.zeros_like(SPEECH)) == pytest.approx(1.0)


def index_row(spectrogram, noisy_db_max: float) -> pd.Series:
    return pd.Series(
        {
            "frames": spectrogram.frames,
            "clean_db_min": spectrogram.db_min,
            "clean_db_max": spectrogram.db_max,
            "noisy_db_min": noisy_db_max - 30.0,
            "noisy_db_max": noisy_db_max,
        }
    )


def test_a_perfect_prediction_comes_back_as_the_clean_mel_power():
    """A clean clip's range is [peak - top_db, peak], so with the noisy peak equal to the clean one
    the prediction window is the clean range and the clean image returns the clean mel power."""
    clean = forward(SPEECH, SETTINGS, "speech")
    row = index_row(clean, noisy_db_max=clean.db_max)
    assert db_range(row, "denoised", SETTINGS) == pytest.approx(db_range(row, "clean", SETTINGS))
    cached = clean.image.astype(np.float16).astype(np.float32)
    power = denoised_power(cached, row, SETTINGS)
    expected_db = mel_db(SPEECH, SETTINGS)
    assert power.shape == expected_db.shape
    back_db = librosa.power_to_db(power, ref=1.0, amin=1e-10)
    assert np.mean(np.abs(back_db - expected_db)) < 1.5  # docs/method.md's bound for the 112 x 112 round trip
    np.testing.assert_allclose(back_db, image_db(cached, row, "clean", SETTINGS), atol=1e-3)


def test_each_image_is_undone_with_its_own_range():
    row = index_row(forward(SPEECH, SETTINGS, "speech"), noisy_db_max=10.0)
    assert db_range(row, "noisy", SETTINGS) == (-20.0, 10.0)
    assert db_range(row, "denoised", SETTINGS) == (10.0 - SETTINGS.top_db, 10.0)
    with pytest.raises(ValueError, match="source must be one of clean, noisy, denoised"):
        db_range(row, "enhanced", SETTINGS)


STAGE_SETTINGS = DEFAULTS.features.model_copy(
    update={
        "sample_rate": 8000,
        "n_mels": 32,
        "n_fft": 512,
        "hop_length": 128,
        "fmax": None,
        "size": [16, 16],
        "workers": 1,
    }
)  # 8 kHz features from a 16 kHz corpus: the wavs must come out resampled
TEST_SPEAKER = "03"


@pytest.fixture(scope="module")
def stage_project(tmp_path_factory) -> Path:
    """What the samples stage reads: a 3-speaker corpus, its noisy copy, features, a split and a tiny model."""
    project = tmp_path_factory.mktemp("samples_stage")
    raw, noisy = project / "data/raw", project / "data/noisy"
    make_corpus(raw, speakers=("01", "02", TEST_SPEAKER), reps=1, rate=16000, seconds=0.3)
    mix_corpus(raw, noisy, noise_maker("white", raw, 1, raw), -8.0, 0, workers=1)
    index = build_feature_cache(raw, noisy, project / "data/features", STAGE_SETTINGS)
    split = index[["clip_id", "speaker", "digit", "rep"]].assign(split="train")
    split.loc[split["speaker"] == TEST_SPEAKER, "split"] = "test"
    split.to_csv(project / "data/split.csv", index=False)
    model_config = {"channels": [4, 8], "init": "kaiming", "output": "sigmoid"}
    save_checkpoint(
        project / "models/unet.pt",
        build_model(model_config["channels"], model_config["init"], model_config["output"], 0),
        {"model": model_config, "features": STAGE_SETTINGS.model_dump()},
    )
    return project


def run_stage(project: Path, count: int) -> subprocess.CompletedProcess:
    params = DEFAULTS.model_dump()
    params["samples"]["count"] = count
    params["features"] = STAGE_SETTINGS.model_dump()
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    command = [sys.executable, str(REPO / "stages" / "samples.py")]
    return subprocess.run(command, cwd=project, capture_output=True, text=True)


def test_stage_writes_wavs_and_figures_of_test_clips(stage_project):
    result = run_stage(stage_project, count=2)
    assert result.returncode == 0, result.stderr
    assert "2 test clips" in result.stderr
    samples, figures = stage_project / "samples", stage_project / "plots" / "samples"
    clip_ids = sorted(path.stem for path in figures.glob("*.png"))
    assert len(clip_ids) == 2 and all(clip_id.split("_")[1] == TEST_SPEAKER for clip_id in clip_ids)
    assert len({clip_id.split("_")[0] for clip_id in clip_ids}) == 2  # two digits
    suffixes = ("_clean.wav", "_noisy.wav", "_denoised.wav")
    assert sorted(path.name for path in samples.iterdir()) == sorted(f"{c}{s}" for c in clip_ids for s in suffixes)
    assert sorted(path.name for path in figures.iterdir()) == [f"{c}.png" for c in clip_ids]
    durations = read_index(stage_project / "data/features").set_index("clip_id")["duration"]
    for clip_id in clip_ids:
        assert (figures / f"{clip_id}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        for source in ("clean", "noisy", "denoised"):
            path = samples / f"{clip_id}_{source}.wav"
            info = sf.info(path)
            assert info.samplerate == STAGE_SETTINGS.sample_rate and info.channels == 1 and info.subtype == "FLOAT"
            assert abs(info.frames - round(durations[clip_id] * STAGE_SETTINGS.sample_rate)) <= 2
            assert np.all(np.isfinite(sf.read(path)[0]))


def test_stage_refuses_more_samples_than_test_clips(stage_project):
    result = run_stage(stage_project, count=11)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: samples.count: 11 samples asked for, but the test split has 10 clips"
    )
