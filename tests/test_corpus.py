"""The AudioMNIST layout: names, metadata cleaning, audio checks and importing a copy."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import data_params, make_corpus, speaker_entry, tone

from audiomnist_denoise.audio.io import check_audio_file, read_audio
from audiomnist_denoise.data.corpus import (
    META_FILE,
    VARIANT_KEY,
    VOICE_KEY,
    Clip,
    clean_metadata,
    find_clips,
    parse_clip_path,
    select_clips,
    speaker_voices,
)
from audiomnist_denoise.data.sources import import_audiomnist
from audiomnist_denoise.errors import BadFile, BadFilesError, PipelineError


def test_parse_clip_path_reads_digit_speaker_rep():
    clip = parse_clip_path("07/3_07_42.wav")
    assert clip == Clip("07", 3, 42)
    assert (clip.id, clip.path) == ("3_07_42", "07/3_07_42.wav")


@pytest.mark.parametrize(
    "name, reason",
    [
        ("01/0_1_0.wav", "not an AudioMNIST clip name"),
        ("01/10_01_0.wav", "not an AudioMNIST clip name"),
        ("01/0_01_07.wav", "not an AudioMNIST clip name"),
        ("01/0_01_0.flac", "not an AudioMNIST clip name"),
        ("02/0_01_0.wav", "is not in folder 01/"),
        ("0_01_0.wav", "is not in folder 01/"),
    ],
)
def test_parse_clip_path_refuses_wrong_names(name, reason):
    with pytest.raises(PipelineError, match=reason) as error:
        parse_clip_path(name)
    assert name in str(error.value)


def test_clip_seed_depends_on_clip_base_and_purpose_only():
    clip = Clip("01", 2, 3)
    assert clip.seed(0, "noise") == Clip("01", 2, 3).seed(0, "noise")
    assert (
        len({clip.seed(0, "noise"), clip.seed(1, "noise"), clip.seed(0, "tts"), Clip("01", 2, 4).seed(0, "noise")}) == 4
    )


def test_find_clips_lists_every_bad_name_at_once(corpus):
    (corpus / "01" / "zero.wav").write_bytes(b"")
    (corpus / "01" / "0_02_0.wav").write_bytes(b"")
    with pytest.raises(PipelineError, match="2 badly named") as error:
        find_clips(corpus)
    assert "zero.wav" in str(error.value) and "0_02_0.wav" in str(error.value)


def test_select_clips_by_speaker_and_repetition(corpus):
    clips = select_clips(find_clips(corpus), ["02"], 1)
    assert {clip.speaker for clip in clips} == {"02"} and {clip.rep for clip in clips} == {0}
    assert len(clips) == 10
    with pytest.raises(PipelineError, match="data.speakers: no clips for speaker"):
        select_clips(find_clips(corpus), ["09"], None)


# The real metadata file's quirks: ages as numbers and as text, an impossible age,
# accents and rooms in mixed case, a misspelt room, a stray question mark.
REAL_QUIRKS = {
    "01": speaker_entry(accent="german", age=30) | {"recordingroom": "Kino"},
    "02": speaker_entry(accent="German", age="25") | {"recordingroom": "VR-Room"},
    "07": speaker_entry(accent="German/Spanish", age="27") | {"recordingroom": "vr-room"},
    "32": speaker_entry(accent="Egyptian_American?", age="23") | {"recordingroom": "VR-room"},
    "45": speaker_entry(accent="German", age="1234") | {"recordingroom": "vr-room"},
    "52": speaker_entry(gender="female", accent="French", age="34")
    | {"recordingroom": "vr-romm", "native speaker": "yes"},
}


def test_clean_metadata_fixes_the_real_files_quirks():
    table, notes = clean_metadata(REAL_QUIRKS)
    table = table.set_index("speaker")
    assert list(table.columns) == [
        "gender",
        "accent",
        "age",
        "native_speaker",
        "origin",
        "room",
        "espeak_voice",
        "espeak_variant",
    ]
    assert table.espeak_voice.isna().all() and table.espeak_variant.isna().all()  # real speakers have none
    assert speaker_voices(table.reset_index()) is None
    assert table.loc["01", "age"] == 30 and table.loc["02", "age"] == 25
    assert pd.isna(table.loc["45", "age"])
    assert table.accent.to_dict() == {
        "01": "german",
        "02": "german",
        "07": "german/spanish",
        "32": "egyptian_american",
        "45": "german",
        "52": "french",
    }
    assert set(table.room) == {"kino", "vr-room"}
    assert table.native_speaker.to_dict() == {
        "01": False,
        "02": False,
        "07": False,
        "32": False,
        "45": False,
        "52": True,
    }
    assert table.loc["52", "gender"] == "female"
    text = "\n".join(notes)
    assert "age '1234' is impossible" in text
    assert "room 'vr-romm' -> 'vr-room'" in text
    assert "accent 'German' -> 'german' (speaker 02, 45)" in text
    assert not any("'german' -> 'german'" in note for note in notes)


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"accent": "german", "age": 30}, "speaker 01 lacks gender"),
        (speaker_entry(gender="robot"), "gender is 'robot', expected male or female"),
        (speaker_entry() | {"native speaker": "maybe"}, "native speaker is 'maybe', expected yes or no"),
        (speaker_entry() | {VOICE_KEY: "de"}, "speaker 01 has 'espeak voice' but lacks 'espeak variant'"),
        (speaker_entry() | {VARIANT_KEY: "m1"}, "speaker 01 has 'espeak variant' but lacks 'espeak voice'"),
        (speaker_entry() | {VOICE_KEY: "", VARIANT_KEY: "m1"}, "espeak voice is '', expected an eSpeak NG name"),
    ],
)
def test_clean_metadata_refuses_unusable_entries(entry, message):
    with pytest.raises(PipelineError, match=message):
        clean_metadata({"01": entry})


def test_read_audio_returns_mono_float32(corpus):
    audio, rate = read_audio(corpus / "01" / "0_01_0.wav")
    assert audio.dtype == np.float32 and audio.ndim == 1 and rate == 16000


@pytest.mark.parametrize(
    "content, message",
    [(b"RIFF\x00\x00\x00\x00garbage that is no wav", "cannot decode audio"), (b"", "empty file \\(0 bytes\\)")],
)
@pytest.mark.parametrize("reader", [read_audio, check_audio_file])
def test_reading_and_checking_refuse_corrupt_files_alike(tmp_path, content, message, reader):
    path = tmp_path / "0_01_0.wav"
    path.write_bytes(content)
    with pytest.raises(PipelineError, match=message) as error:
        reader(path)
    assert str(error.value).startswith(f"{path}: ") and "\n" not in str(error.value)


def test_read_audio_refuses_empty_and_stereo_unless_downmixed(tmp_path):
    empty, stereo = tmp_path / "empty.wav", tmp_path / "stereo.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    left, right = tone(0.2, 16000, 200), tone(0.2, 16000, 300)
    sf.write(stereo, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    with pytest.raises(PipelineError, match="empty audio"):
        read_audio(empty)
    with pytest.raises(PipelineError, match=r"2 channels, expected mono \(set data.downmix: true"):
        read_audio(stereo)
    mono, _ = read_audio(stereo, downmix=True)
    np.testing.assert_allclose(mono, (left + right) / 2, atol=1e-7)


def _import(corpus, tmp_path, **options):
    return import_audiomnist(corpus, tmp_path / "raw", data_params(**({"workers": 1} | options)))


def test_import_copies_clips_and_metadata_byte_for_byte(corpus, tmp_path):
    clips = _import(corpus, tmp_path).clips
    raw = tmp_path / "raw"
    assert len(clips) == 40
    for clip in clips:
        assert (raw / clip.path).read_bytes() == (corpus / clip.path).read_bytes()
    assert (raw / META_FILE).read_bytes() == (corpus / META_FILE).read_bytes()


def test_import_accepts_a_clone_and_selects(tmp_path):
    clone = tmp_path / "AudioMNIST"
    make_corpus(clone / "data", speakers=("01", "02", "03"))
    clips = _import(clone, tmp_path, speakers=["01", "03"], max_reps=1).clips
    assert sorted(path.name for path in (tmp_path / "raw").iterdir()) == ["01", "03", META_FILE]
    assert len(clips) == 20


def _break_files(corpus: Path) -> dict[str, str]:
    """One bad file of each kind in a `make_corpus` folder; their paths with the reason each should get."""
    (corpus / "01" / "0_01_0.wav").write_bytes(b"not audio")
    (corpus / "01" / "1_01_0.wav").write_bytes(b"")
    sf.write(corpus / "02" / "0_02_0.wav", np.zeros(0, np.float32), 16000)
    sf.write(corpus / "02" / "0_02_1.wav", np.zeros((100, 2), np.float32), 16000)
    with_nan = tone(0.3, 16000, 250)
    with_nan[1234] = np.nan
    sf.write(corpus / "02" / "1_02_0.wav", with_nan, 16000, subtype="FLOAT")
    shutil.copy(corpus / "02" / "5_02_0.wav", corpus / "02" / "5_01_0.wav")
    (corpus / "61").mkdir()
    sf.write(corpus / "61" / "4_61_0.wav", tone(0.3, 16000, 300), 16000)
    return {
        "01/0_01_0.wav": "cannot decode audio",
        "01/1_01_0.wav": "empty file (0 bytes)",
        "02/0_02_0.wav": "empty audio (0 samples)",
        "02/0_02_1.wav": "2 channels, expected mono",
        "02/1_02_0.wav": "non-finite sample (nan) at sample 1234 (0.077 s) of channel 1",
        "02/5_01_0.wav": "clip of speaker 01 is not in folder 01/",
        "61/4_61_0.wav": f"speaker 61 has no entry in {META_FILE}",
    }


def test_import_reports_every_bad_file_at_once_and_writes_nothing(corpus, tmp_path):
    expected = _break_files(corpus)
    with pytest.raises(BadFilesError, match="7 bad file") as error:
        _import(corpus, tmp_path)
    assert [bad.path for bad in error.value.bad_files] == sorted(expected)
    for bad in error.value.bad_files:
        assert bad.reason.startswith(expected[bad.path])
        assert str(bad) in str(error.value)
    assert not (tmp_path / "raw").exists() and not list(tmp_path.glob(".raw.partial-*"))


def test_import_can_skip_bad_files(corpus, tmp_path):
    expected = _break_files(corpus)
    imported = _import(corpus, tmp_path, on_bad_file="skip")
    assert sorted(bad.path for bad in imported.bad_files) == sorted(expected)
    written = sorted(path.relative_to(tmp_path / "raw").as_posix() for path in (tmp_path / "raw").rglob("*.wav"))
    assert written == [clip.path for clip in imported.clips] and len(written) == 40 - 5
    assert not set(written) & set(expected)


def test_import_refuses_a_corpus_of_bad_files_only_even_when_skipping(corpus, tmp_path):
    for path in corpus.rglob("*.wav"):
        path.write_bytes(b"")
    with pytest.raises(BadFilesError, match="all 40 file.s. are bad, none left"):
        _import(corpus, tmp_path, on_bad_file="skip")


def test_bad_files_error_lists_twenty_and_counts_the_rest():
    bad_files = [BadFile(f"01/0_01_{rep}.wav", "empty file (0 bytes)") for rep in range(25)]
    message = str(BadFilesError("corpus: 25 bad file(s)", bad_files))
    assert message.startswith("corpus: 25 bad file(s): 01/0_01_0.wav: empty file (0 bytes); ")
    assert message.count("empty file") == 20 and message.endswith("; and 5 more")


def test_import_downmixes_stereo_when_asked(corpus, tmp_path):
    stereo = np.stack([tone(0.3, 16000, 200), tone(0.3, 16000, 250)], axis=1)
    sf.write(corpus / "01" / "5_01_0.wav", stereo, 16000, subtype="PCM_16")
    _import(corpus, tmp_path, downmix=True)
    audio, rate = sf.read(tmp_path / "raw" / "01" / "5_01_0.wav")
    expected = sf.read(corpus / "01" / "5_01_0.wav")[0].mean(axis=1)
    assert rate == 16000 and audio.ndim == 1
    np.testing.assert_allclose(audio, expected, atol=1e-7)


def test_import_needs_a_metadata_file(corpus, tmp_path):
    (corpus / META_FILE).unlink()
    with pytest.raises(PipelineError, match=f"has no {META_FILE}"):
        _import(corpus, tmp_path)
    with pytest.raises(PipelineError, match="is not a folder"):
        _import(Path(tmp_path / "nowhere"), tmp_path)


def test_import_refuses_a_folder_without_clips(corpus, tmp_path):
    for speaker in ("01", "02"):
        shutil.rmtree(corpus / speaker)
    with pytest.raises(PipelineError, match="no AudioMNIST clips"):
        _import(corpus, tmp_path)
