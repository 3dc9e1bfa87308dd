"""The embedded corpus: eSpeak NG synthesis is deterministic and its speakers are distinct."""

import hashlib
import json
import subprocess
import sys

import librosa
import numpy as np
import pytest
import soundfile as sf
from conftest import data_params

from audiomnist_denoise.data import tts
from audiomnist_denoise.data.corpus import META_FILE, VARIANT_KEY, VOICE_KEY, clean_metadata, find_clips
from audiomnist_denoise.data.sources import write_tts_corpus
from audiomnist_denoise.errors import PipelineError

RATE = 16000


def test_a_clip_is_the_same_in_another_process():
    """The library's clock-seeded state must not leak into the output."""
    here = hashlib.sha256(tts.synthesize_clip("02", 7, 3, RATE, 0).tobytes()).hexdigest()
    code = (
        "import hashlib; from audiomnist_denoise.data import tts; "
        f"print(hashlib.sha256(tts.synthesize_clip('02', 7, 3, {RATE}, 0).tobytes()).hexdigest())"
    )
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert here == there


def test_repetitions_and_seeds_differ():
    clips = [tts.synthesize_clip("01", 4, rep, RATE, 0) for rep in range(4)] + [
        tts.synthesize_clip("01", 4, 0, RATE, 1)
    ]
    assert len({clip.tobytes() for clip in clips}) == len(clips)


def test_clip_format():
    clip = tts.synthesize_clip("03", 0, 0, 48000, 0)
    assert clip.dtype == np.int16
    assert 0.3 < len(clip) / 48000 < 2.0
    assert 0.25 < np.max(np.abs(clip)) / 32767 < 0.95


def _profile(speaker: str, rep: int) -> np.ndarray:
    """Timbre over five digits: mean MFCCs without c0, so loudness does not count."""
    clips = [tts.synthesize_clip(speaker, digit, rep, RATE, 0) / 32768.0 for digit in range(0, 10, 2)]
    return np.mean([librosa.feature.mfcc(y=clip, sr=RATE, n_mfcc=20)[1:].mean(axis=1) for clip in clips], axis=0)


def test_speakers_are_told_apart_by_their_voices():
    """Every speaker's repetitions sound more like their own other repetitions than like anyone else."""
    speakers = tts.speaker_ids(24)
    first = {speaker: _profile(speaker, 0) for speaker in speakers}
    second = {speaker: _profile(speaker, 1) for speaker in speakers}
    for speaker in speakers:
        nearest = min(speakers, key=lambda other: np.linalg.norm(second[speaker] - first[other]))
        assert nearest == speaker


def _median_pitch(speaker: str) -> float:
    clip = tts.synthesize_clip(speaker, 1, 0, RATE, 0) / 32768.0
    f0, voiced, _ = librosa.pyin(clip, fmin=50, fmax=500, sr=RATE)
    return float(np.nanmedian(f0[voiced]))


def test_female_voices_are_higher_than_male_voices():
    males = [s for s in tts.speaker_ids(8) if tts.speaker_profile(s).gender == "male"]
    females = [s for s in tts.speaker_ids(8) if tts.speaker_profile(s).gender == "female"]
    assert min(_median_pitch(s) for s in females) > 1.3 * max(_median_pitch(s) for s in males)


def test_speaker_table_covers_genders_accents_and_voices():
    profiles = tts.SPEAKERS[:24]
    assert len(tts.SPEAKERS) >= 24
    assert {p.gender for p in profiles} == {"male", "female"}
    assert len({p.accent for p in profiles}) >= 8 and len({p.voice for p in profiles}) >= 12
    assert len({(p.voice, p.variant) for p in tts.SPEAKERS}) == len(tts.SPEAKERS)
    assert all(len(words) == 10 for words in tts.DIGIT_WORDS.values())


@pytest.mark.parametrize(
    "voice, message", [("en-us+f9", "ignored the variant"), ("en-gb", "has no voice"), ("xx-nowhere", "has no voice")]
)
def test_bad_voices_are_refused_not_silently_replaced(voice, message):
    with pytest.raises(PipelineError, match=message):
        tts.espeak("one", voice, rate=170, pitch=50, pitch_range=50, seed=1)


def test_unknown_speaker_is_refused():
    pool = len(tts.SPEAKERS)
    with pytest.raises(PipelineError, match=f"ids run from 01 to {pool}"):
        tts.speaker_profile(f"{pool + 1:02d}")


def test_the_first_thirty_speakers_are_as_they_were():
    """New speakers are appended: the first 30 keep their ids, voices and so their clips."""
    digest = hashlib.sha256(repr(tts.SPEAKERS[:30]).encode()).hexdigest()
    assert digest == "6eea1d2fef4b0d86e2fb3bd2edd060b1d359fe807f917d59407f29fd66e7337a"


def test_speakers_after_thirty_have_a_voice_and_a_variant_of_their_own():
    for index, profile in enumerate(tts.SPEAKERS[30:], start=30):
        others = tts.SPEAKERS[:index] + tts.SPEAKERS[index + 1 :]
        assert profile.voice not in {o.voice for o in others} and profile.variant not in {o.variant for o in others}
        assert profile.spelling in tts.DIGIT_WORDS
    assert {p.gender for p in tts.SPEAKERS[30:35]} == {"male", "female"}


@pytest.mark.parametrize("speaker", [f"{n:02d}" for n in range(31, 41)])
def test_the_added_speakers_speak(speaker):
    """Their voice and variant load (espeak refuses an ignored variant) and every digit makes sound."""
    for digit in range(10):
        clip = tts.synthesize_clip(speaker, digit, 0, RATE, 0)
        assert 0.2 < len(clip) / RATE < 2.0 and np.max(np.abs(clip)) > 0.25 * 32767


def test_metadata_names_each_speakers_espeak_voice_and_variant():
    entries = tts.metadata(["13", "31"])
    assert entries["13"][VOICE_KEY] == "de" and entries["13"][VARIANT_KEY] == "f2"
    assert entries["31"][VOICE_KEY] == "es-419" and entries["31"][VARIANT_KEY] == "Alicia"
    assert entries["13"]["tts"] == "espeak-ng de+f2"
    table, notes = clean_metadata(entries)
    assert table.set_index("speaker")[["espeak_voice", "espeak_variant"]].to_dict("index") == {
        "13": {"espeak_voice": "de", "espeak_variant": "f2"},
        "31": {"espeak_voice": "es-419", "espeak_variant": "Alicia"},
    }
    assert notes == []


def _write(target, n_speakers=3, reps=2, **options):
    tts = {"speakers": n_speakers, "reps": reps, "sample_rate": RATE, "seed": 0}
    return write_tts_corpus(target, data_params(tts, **({"workers": 2} | options)))


def _digest(folder) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_corpus_is_byte_identical_across_runs_and_worker_counts(tmp_path):
    _write(tmp_path / "a", workers=2)
    _write(tmp_path / "b", workers=1)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_corpus_layout_and_metadata(tmp_path):
    clips = _write(tmp_path / "raw", speakers=["01", "03"], max_reps=1)
    raw = tmp_path / "raw"
    assert find_clips(raw) == clips and len(clips) == 20
    assert sf.info(raw / clips[0].path).samplerate == RATE and sf.info(raw / clips[0].path).subtype == "PCM_16"
    entries = json.loads((raw / META_FILE).read_text())
    assert sorted(entries) == ["01", "03"]
    table, _ = clean_metadata(entries)
    assert {"gender", "accent", "age", "native_speaker", "room", "espeak_voice", "espeak_variant"} <= set(table.columns)
    assert table.age.notna().all()


def test_more_speakers_than_the_voice_pool_holds_are_refused_by_param(tmp_path):
    pool = len(tts.SPEAKERS)
    with pytest.raises(PipelineError, match=f"data.tts.speakers: {pool + 1} asked for, but the voice pool has {pool} "):
        _write(tmp_path / "raw", n_speakers=pool + 1)
    assert not (tmp_path / "raw").exists()


def test_corpus_refuses_speakers_beyond_the_configured_count(tmp_path):
    with pytest.raises(PipelineError, match=r"data.speakers: 05 not among the 3 synthetic speakers"):
        _write(tmp_path / "raw", speakers=["01", "05"])
    assert not (tmp_path / "raw").exists()


def test_a_different_speaker_count_keeps_the_shared_speakers_identical(tmp_path):
    """Clips are pure functions of (speaker, digit, rep): growing the corpus changes nothing already there."""
    _write(tmp_path / "small", n_speakers=2, reps=1)
    _write(tmp_path / "large", n_speakers=3, reps=2)
    small, large = _digest(tmp_path / "small"), _digest(tmp_path / "large")
    shared = [path for path in small if path != META_FILE]
    assert shared and all(small[path] == large[path] for path in shared)
    assert len(set(large.values())) == len(large)  # no two clips alike
