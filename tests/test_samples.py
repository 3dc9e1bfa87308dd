"""Audio samples: which test clips are chosen, Griffin-Lim, and the stage that writes every method's output."""

import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from conftest import DIGITS, REPO, griffin_lim, make_corpus, mel_db, new_unet, tone

from audiomnist_denoise.audio.io import load_resampled
from audiomnist_denoise.data import tts
from audiomnist_denoise.data.corpus import parse_clip_path
from audiomnist_denoise.data.noise import mix_corpus, noise_maker
from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.features.cache import build_feature_cache, read_index
from audiomnist_denoise.model.checkpoint import save_checkpoint
from audiomnist_denoise.names import SAMPLE_SOURCES
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
        new_unet(model_config["channels"], model_config["init"], model_config["output"], 0),
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
    assert f"2 test clips, each as {len(SAMPLE_SOURCES)} wavs" in result.stderr
    samples, figures = stage_project / "samples", stage_project / "plots" / "samples"
    clip_ids = sorted(path.stem for path in figures.glob("*.png"))
    assert len(clip_ids) == 2 and all(clip_id.split("_")[1] == TEST_SPEAKER for clip_id in clip_ids)
    assert len({clip_id.split("_")[0] for clip_id in clip_ids}) == 2  # two digits
    suffixes = [f"_{source}.wav" for source in SAMPLE_SOURCES]  # the clean clip and every method's output
    assert sorted(path.name for path in samples.iterdir()) == sorted(f"{c}{s}" for c in clip_ids for s in suffixes)
    assert sorted(path.name for path in figures.iterdir()) == [f"{c}.png" for c in clip_ids]
    durations = read_index(stage_project / "data/features").set_index("clip_id")["duration"]
    for clip_id in clip_ids:
        assert (figures / f"{clip_id}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        for source in SAMPLE_SOURCES:
            path = samples / f"{clip_id}_{source}.wav"
            info = sf.info(path)
            assert info.samplerate == STAGE_SETTINGS.sample_rate and info.channels == 1 and info.subtype == "FLOAT"
            assert abs(info.frames - round(durations[clip_id] * STAGE_SETTINGS.sample_rate)) <= 2
            assert np.all(np.isfinite(sf.read(path)[0]))
        clip = parse_clip_path(Path(clip_id.split("_")[1]) / f"{clip_id}.wav")
        for source, root in (("clean", "data/raw"), ("noisy", "data/noisy")):  # the inputs, as they are
            expected = load_resampled(stage_project / root / clip.path, STAGE_SETTINGS.sample_rate)[0]
            np.testing.assert_allclose(sf.read(samples / f"{clip_id}_{source}.wav")[0], expected, atol=1e-7)
        outputs = [sf.read(samples / f"{clip_id}_{source}.wav")[0] for source in SAMPLE_SOURCES]
        assert len({output.tobytes() for output in outputs}) == len(SAMPLE_SOURCES)  # each method its own


def test_stage_refuses_more_samples_than_test_clips(stage_project):
    result = run_stage(stage_project, count=11)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: samples.count: 11 samples asked for, but the test split has 10 clips"
    )
