"""Spectrogram features: range, shapes, resampling, the exact inverse, and the feature cache."""

import hashlib
import re
import shutil
from types import SimpleNamespace

import librosa
import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, make_corpus, mel_db

from audiomnist_denoise.data import tts
from audiomnist_denoise.data.corpus import Clip
from audiomnist_denoise.data.noise import NoiseMaker, mix_clip, mix_corpus, noise_maker
from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.features.cache import CLEAN_FILE, INDEX_FILE, NOISY_FILE, build_feature_cache, open_features
from audiomnist_denoise.features.spectrogram import forward, inverse_db, inverse_power, prediction_db_range
from audiomnist_denoise.params import load_params

SETTINGS = load_params(REPO / "params.yaml").features  # the defaults: 48 kHz, 256 mels, 112 x 112
SPEECH = tts.synthesize_clip("03", 7, 0, SETTINGS.sample_rate, 0) / 32768.0


def settings(**changes):
    return SETTINGS.model_copy(update=changes)


def test_forward_gives_the_model_view():
    spectrogram = forward(SPEECH, SETTINGS, "clip")
    assert spectrogram.image.shape == (112, 112) and spectrogram.image.dtype == np.float64
    assert spectrogram.image.min() >= 0 and spectrogram.image.max() <= 1
    assert spectrogram.frames == 1 + len(SPEECH) // SETTINGS.hop_length
    assert spectrogram.db_max - spectrogram.db_min == pytest.approx(SETTINGS.top_db)


def test_mel_db_is_librosa_melspectrogram_in_db():
    expected = librosa.power_to_db(
        librosa.feature.melspectrogram(
            y=SPEECH,
            sr=48000,
            n_fft=SETTINGS.n_fft,
            hop_length=SETTINGS.hop_length,
            n_mels=SETTINGS.n_mels,
            fmax=SETTINGS.fmax,
        ),
        ref=1.0,
        amin=1e-10,
        top_db=SETTINGS.top_db,
    )
    np.testing.assert_allclose(mel_db(SPEECH, SETTINGS), expected, atol=1e-3)


def test_inverse_is_exact_without_resizing():
    """With the original size and float32 the way back only undoes arithmetic."""
    db = mel_db(SPEECH, SETTINGS)
    exact = settings(size=list(db.shape))
    spectrogram = forward(SPEECH, exact, "clip")
    back = inverse_db(spectrogram.image, spectrogram.frames, spectrogram.db_min, spectrogram.db_max, exact)
    np.testing.assert_allclose(back, db, atol=1e-3)
    power = inverse_power(spectrogram.image, spectrogram.frames, spectrogram.db_min, spectrogram.db_max, exact)
    np.testing.assert_allclose(librosa.power_to_db(power, ref=1.0, amin=1e-10), db, atol=1e-3)


ROUND_TRIP_BOUND_DB = 1.5  # mean absolute error of normalise -> 112 x 112 -> float16 -> inverse


def test_round_trip_through_the_model_size_stays_within_the_stated_bound():
    db = mel_db(SPEECH, SETTINGS)
    spectrogram = forward(SPEECH, SETTINGS, "clip")
    stored = spectrogram.image.astype(np.float16).astype(np.float32)  # as cached
    back = inverse_db(stored, spectrogram.frames, spectrogram.db_min, spectrogram.db_max, SETTINGS)
    assert back.shape == db.shape
    assert np.mean(np.abs(back - db)) < ROUND_TRIP_BOUND_DB


def test_prediction_range_from_the_noisy_peak_is_close_to_the_clean_range():
    """At -8 dB the noisy clip's peak stands in for the unknown clean peak."""
    clean = forward(SPEECH, SETTINGS, "clean")
    noisy_audio, _ = mix_clip(SPEECH, SETTINGS.sample_rate, Clip("03", 7, 0), NoiseMaker("white"), -8.0, 0)
    noisy = forward(noisy_audio, SETTINGS, "noisy")
    low, high = prediction_db_range(noisy.db_max, SETTINGS)
    assert abs(high - clean.db_max) < 2.0 and abs(low - clean.db_min) < 2.0


def test_constant_audio_is_refused_by_name():
    with pytest.raises(PipelineError, match="silent.wav: constant spectrogram"):
        forward(np.zeros(48000, np.float32), SETTINGS, "silent.wav")


@pytest.fixture
def pairs(tmp_path):
    """A 16 kHz clean corpus and its noisy copy: the features resample to 48 kHz."""
    raw = make_corpus(tmp_path / "raw", speakers=("01", "02"), reps=2, rate=16000)
    mix_corpus(raw, tmp_path / "noisy", noise_maker("white", raw, 1, raw), -8.0, 0, 1)
    return raw, tmp_path / "noisy"


def test_cache_arrays_and_index_agree(pairs, tmp_path):
    raw, noisy = pairs
    index = build_feature_cache(raw, noisy, tmp_path / "features", settings(workers=1))
    clean, mixed, stored_index = open_features(tmp_path / "features")
    assert clean.shape == mixed.shape == (40, 112, 112) and clean.dtype == np.float16
    assert 0 <= clean.min() and clean.max() <= 1 and 0 <= mixed.min() and mixed.max() <= 1
    assert list(stored_index.clip_id) == list(index.clip_id) and stored_index.speaker.iloc[0] == "01"
    for row in (0, 17, 39):
        entry = stored_index.iloc[row]
        recording = sf.read(raw / entry.speaker / f"{entry.clip_id}.wav", dtype="float32")[0]
        audio = librosa.resample(recording, orig_sr=16000, target_sr=48000, res_type="soxr_hq")
        expected = forward(audio, SETTINGS, entry.clip_id)
        np.testing.assert_allclose(clean[row], expected.image, atol=1e-3)  # float16 storage
        assert (entry.frames, entry.source_rate) == (expected.frames, 16000)
        assert entry.clean_db_max == pytest.approx(expected.db_max, abs=1e-4)
        assert entry.duration == pytest.approx(0.3, abs=1e-3)


def test_cache_is_byte_identical_across_runs_and_workers(pairs, tmp_path):
    raw, noisy = pairs
    build_feature_cache(raw, noisy, tmp_path / "one", settings(workers=1))
    build_feature_cache(raw, noisy, tmp_path / "two", settings(workers=2))
    for name in (CLEAN_FILE, NOISY_FILE, INDEX_FILE):
        digests = {hashlib.sha256((tmp_path / run / name).read_bytes()).hexdigest() for run in ("one", "two")}
        assert len(digests) == 1, name


def test_float32_cache_on_request(pairs, tmp_path):
    raw, noisy = pairs
    build_feature_cache(raw, noisy, tmp_path / "features", settings(workers=1, dtype="float32", size=[64, 32]))
    clean, _, _ = open_features(tmp_path / "features")
    assert clean.dtype == np.float32 and clean.shape == (40, 64, 32)


def test_cache_refuses_missing_or_mismatched_noisy_copies(pairs, tmp_path):
    raw, noisy = pairs
    (noisy / "02" / "3_02_1.wav").unlink()
    with pytest.raises(PipelineError, match="no noisy copy of 1 clip"):
        build_feature_cache(raw, noisy, tmp_path / "features", settings(workers=1))
    sf.write(noisy / "02" / "3_02_1.wav", np.zeros(100, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(PipelineError, match="3_02_1.wav: does not match its clean clip"):
        build_feature_cache(raw, noisy, tmp_path / "features", settings(workers=1))
    assert not (tmp_path / "features").exists()


def test_cache_stops_before_writing_when_the_disk_cannot_hold_it(pairs, tmp_path, monkeypatch):
    raw, noisy = pairs
    build_feature_cache(raw, noisy, tmp_path / "fits", settings(workers=1))
    cache_bytes = sum(path.stat().st_size for path in (tmp_path / "fits").iterdir())
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: SimpleNamespace(free=100_000))
    with pytest.raises(PipelineError) as error:
        build_feature_cache(raw, noisy, tmp_path / "features", settings(workers=1))
    message = str(error.value)
    assert message.startswith(f"{tmp_path}: not enough disk space for {tmp_path / 'features'} (40 clips): ")
    needed = int(re.search(r"([0-9,]+) bytes needed, 100,000 free$", message)[1].replace(",", ""))
    assert cache_bytes <= needed < 1.05 * cache_bytes  # never less than the cache takes, and not much more
    assert not (tmp_path / "features").exists() and not list(tmp_path.glob(".features.partial-*"))
