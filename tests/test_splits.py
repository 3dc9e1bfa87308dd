"""Speaker-grouped splits: test speakers unseen in training, a balanced validation set, clear errors."""

import json
import random

import pandas as pd
import pytest

from audiomnist_denoise.data import tts
from audiomnist_denoise.data.corpus import META_FILE, Clip, clean_metadata, speaker_voices
from audiomnist_denoise.data.splits import (
    assign_splits,
    choose_test_speakers,
    lowest_reps,
    split_corpus,
    split_summary,
    voice_groups,
    voice_sharing,
)
from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.params import SplitParams


def speaker_ids(count: int) -> list[str]:
    return [f"{n:02d}" for n in range(1, count + 1)]


def clips(speakers: int = 12, reps: int = 10) -> list[Clip]:
    """Every (speaker, digit, rep) clip of a small synthetic corpus, sorted like find_clips."""
    return sorted(Clip(s, d, r) for s in speaker_ids(speakers) for d in range(10) for r in range(reps))


def split_of(table, name: str):
    return table[table.split == name]


# --- test speakers are held out entirely ------------------------------------------------------


@pytest.mark.parametrize("val_by", ["clip", "speaker"])
def test_test_speakers_only_in_test_and_every_clip_once_in_input_order(val_by):
    corpus = clips()
    random.Random(1).shuffle(corpus)  # a non-sorted input, so the row-order check means something
    test_speakers = ["03", "07", "11"]
    table = assign_splits(corpus, test_speakers, 0.25, val_by, seed=0)

    assert list(table.columns) == ["clip_id", "speaker", "digit", "rep", "split"]
    # Rows follow the input clips one for one, so each clip appears exactly once.
    assert table.clip_id.tolist() == [clip.id for clip in corpus]
    assert table.speaker.tolist() == [clip.speaker for clip in corpus]
    assert table.digit.tolist() == [clip.digit for clip in corpus]
    assert table.rep.tolist() == [clip.rep for clip in corpus]
    assert table.clip_id.is_unique
    assert set(table.split) == {"train", "val", "test"}

    seen_in_training = set(split_of(table, "train").speaker) | set(split_of(table, "val").speaker)
    assert seen_in_training.isdisjoint(test_speakers)
    expected_test = sorted(clip.id for clip in corpus if clip.speaker in test_speakers)
    assert sorted(split_of(table, "test").clip_id) == expected_test


# --- val_by clip: stratified by speaker and digit ---------------------------------------------


@pytest.mark.parametrize("reps", [10, 7])
@pytest.mark.parametrize("fraction", [0.2, 0.25, 0.5])
def test_clip_validation_is_balanced_per_speaker_and_digit(fraction, reps):
    table = assign_splits(clips(reps=reps), ["05"], fraction, "clip", seed=3)
    rest = table[table.split != "test"]
    counts = rest.assign(is_val=rest.split == "val").groupby(["speaker", "digit"]).is_val.agg(["sum", "size"])
    assert len(counts) == 11 * 10  # every non-test (speaker, digit) group is present
    # Each group gives within one clip of its share to validation.
    assert ((counts["sum"] - fraction * counts["size"]).abs() <= 1).all(), counts
    # Summed per digit, no digit is starved: at most one extra clip per speaker.
    per_digit = split_of(table, "val").digit.value_counts().reindex(range(10), fill_value=0)
    assert per_digit.max() - per_digit.min() <= rest.speaker.nunique()
    assert per_digit.min() > 0


# --- val_by speaker: whole speakers held out --------------------------------------------------


@pytest.mark.parametrize("fraction", [0.2, 0.3, 0.5])
def test_speaker_validation_holds_out_whole_speakers(fraction):
    table = assign_splits(clips(), ["01", "02"], fraction, "speaker", seed=4)
    train, val = set(split_of(table, "train").speaker), set(split_of(table, "val").speaker)
    assert train.isdisjoint(val)
    assert train | val == set(speaker_ids(12)) - {"01", "02"}
    assert len(val) == round(10 * fraction)
    # A validation speaker has all of its clips (10 digits x 10 reps) in val.
    assert (split_of(table, "val").speaker.value_counts() == 100).all()


# --- choose_test_speakers ---------------------------------------------------------------------


def test_explicit_test_speakers_are_sorted_and_deduplicated():
    speakers = speaker_ids(12)
    # Count and seed do not matter when the list is explicit.
    assert choose_test_speakers(speakers, ["09", "02", "09"], count=5, seed=0) == ["02", "09"]


def test_drawn_test_speakers_depend_only_on_seed():
    speakers = speaker_ids(12)
    chosen = choose_test_speakers(speakers, None, count=3, seed=0)
    assert len(chosen) == 3 and chosen == sorted(chosen) and set(chosen) <= set(speakers)
    assert choose_test_speakers(speakers, None, count=3, seed=0) == chosen
    # Seeds do change the draw (one pair could collide by chance, not five).
    assert any(choose_test_speakers(speakers, None, count=3, seed=s) != chosen for s in range(1, 6))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_drawn_test_speakers_ignore_input_order_and_repeats(seed):
    speakers = speaker_ids(12)
    # The stage passes one speaker per clip: repeated and in whatever order the clips come.
    shuffled = [clip.speaker for clip in clips(reps=2)]
    random.Random(seed).shuffle(shuffled)
    expected = choose_test_speakers(speakers, None, count=4, seed=seed)
    assert choose_test_speakers(shuffled, None, count=4, seed=seed) == expected
    assert choose_test_speakers(speakers[::-1], None, count=4, seed=seed) == expected


# --- determinism ------------------------------------------------------------------------------


@pytest.mark.parametrize("val_by", ["clip", "speaker"])
def test_same_seed_same_table_other_seed_other_validation(val_by):
    def table(seed):
        return assign_splits(clips(), ["04", "08"], 0.2, val_by, seed)

    first = table(0)
    assert first.equals(table(0))
    assert set(split_of(first, "val").clip_id) != set(split_of(table(1), "val").clip_id)


# --- errors name the parameter to fix ---------------------------------------------------------


@pytest.mark.parametrize(
    "call, words",
    [
        pytest.param(
            lambda: choose_test_speakers(speaker_ids(12), None, 12, 0), ["split.n_test_speakers"], id="count-all"
        ),
        pytest.param(
            lambda: choose_test_speakers(speaker_ids(12), None, 13, 0), ["split.n_test_speakers"], id="count-more"
        ),
        pytest.param(
            lambda: choose_test_speakers(speaker_ids(12), ["02", "99"], 1, 0),
            ["split.test_speakers", "99"],
            id="unknown",
        ),
        pytest.param(
            lambda: choose_test_speakers(speaker_ids(3), ["01", "02", "03", "03"], 1, 0),
            ["split.test_speakers"],
            id="explicit-all",
        ),
        # 11 training speakers: 0.04 rounds to 0 validation speakers, 0.96 to all 11.
        pytest.param(
            lambda: assign_splits(clips(), ["01"], 0.04, "speaker", 0), ["split.val_fraction"], id="speaker-none"
        ),
        pytest.param(
            lambda: assign_splits(clips(), ["01"], 0.96, "speaker", 0), ["split.val_fraction"], id="speaker-all"
        ),
        # One clip per (speaker, digit) group cannot be stratified; the message points to val_by speaker.
        pytest.param(
            lambda: assign_splits(clips(reps=1), ["01"], 0.2, "clip", 0),
            ["split.val_fraction", "val_by: speaker"],
            id="clip-single-rep",
        ),
        # Fewer validation clips than (speaker, digit) groups cannot cover every group.
        pytest.param(
            lambda: assign_splits(clips(), ["01"], 0.05, "clip", 0), ["split.val_fraction"], id="clip-too-few"
        ),
        # An explicit empty list passes choose_test_speakers but leaves the test set empty.
        pytest.param(
            lambda: assign_splits(clips(), choose_test_speakers(speaker_ids(12), [], 1, 0), 0.2, "clip", 0),
            ["split:", "test set would be empty"],
            id="empty-test",
        ),
    ],
)
def test_bad_split_parameters_raise_naming_the_parameter(call, words):
    with pytest.raises(PipelineError) as caught:
        call()
    for word in words:
        assert word in str(caught.value)


# --- split_summary ----------------------------------------------------------------------------


def test_split_summary_counts_match_a_known_split():
    # 6 speakers x 10 digits x 5 reps, speaker 03 for test, val 0.2: exactly one val clip per group.
    table = assign_splits(clips(speakers=6, reps=5), ["03"], 0.2, "clip", seed=0)
    summary = split_summary(table)
    digits = [str(d) for d in range(10)]
    assert summary == {
        "clips": {"train": 200, "val": 50, "test": 50},
        "speakers": {"train": 5, "val": 5, "test": 1},
        "clips_per_digit": {
            "train": dict.fromkeys(digits, 20),
            "val": dict.fromkeys(digits, 5),
            "test": dict.fromkeys(digits, 5),
        },
        "test_speakers": ["03"],
        "test_voices": None,
    }
    # And it agrees with the table it summarises, in plain JSON types (it is written to metrics/split.json).
    assert summary["clips"] == table.split.value_counts().to_dict()
    assert json.loads(json.dumps(summary)) == summary


def test_split_summary_for_speaker_validation():
    table = assign_splits(clips(speakers=6, reps=5), ["02", "05"], 0.25, "speaker", seed=0)
    summary = split_summary(table)
    assert summary["clips"] == {"train": 150, "val": 50, "test": 100}
    assert summary["speakers"] == {"train": 3, "val": 1, "test": 2}
    assert summary["test_speakers"] == ["02", "05"]
    assert list(summary["clips_per_digit"]["val"]) == [str(d) for d in range(10)]


def test_drawn_test_speakers_are_stratified_by_gender():
    """3 women and 7 men, 5 test speakers: every seed draws both genders, in proportion (1 or 2 women)."""
    speakers = [f"{n:02d}" for n in range(1, 11)]
    genders = {speaker: "female" if int(speaker) <= 3 else "male" for speaker in speakers}
    for seed in range(20):
        chosen = choose_test_speakers(speakers, None, 5, seed, genders)
        women = sum(genders[speaker] == "female" for speaker in chosen)
        assert len(chosen) == 5 and women in (1, 2)


def test_gender_stratification_steps_aside_when_it_cannot_hold():
    """One woman cannot be split between test and training: the draw is then plain, not an error."""
    speakers = [f"{n:02d}" for n in range(1, 7)]
    genders = {speaker: "female" if speaker == "01" else "male" for speaker in speakers}
    assert len(choose_test_speakers(speakers, None, 2, 0, genders)) == 2
    assert len(choose_test_speakers(speakers[:4], None, 1, 0, dict.fromkeys(speakers[:4], "male"))) == 1


def test_lowest_reps_takes_the_first_repetitions_of_each_digit_and_speaker():
    split = pd.DataFrame(
        [
            (f"{d}_{s}_{r}", s, d, r, "test" if s != "03" else "train")
            for s in ("01", "02", "03")
            for d in (0, 1)
            for r in (4, 2, 7)
        ],
        columns=["clip_id", "speaker", "digit", "rep", "split"],
    )
    chosen = lowest_reps(split, "test", 2)
    assert [clip.id for clip in chosen] == [
        "0_01_2",
        "0_01_4",
        "1_01_2",
        "1_01_4",
        "0_02_2",
        "0_02_4",
        "1_02_2",
        "1_02_4",
    ]
    assert len(lowest_reps(split, "test", 5)) == 12 and lowest_reps(split, "val", 1) == []


# --- test speakers sharing no eSpeak NG voice or variant with train and val ----------------------


def tts_voices(count: int) -> dict[str, tuple[str, str]]:
    return speaker_voices(clean_metadata(tts.metadata(speaker_ids(count)))[0])


def tts_genders(count: int) -> dict[str, str]:
    return {s: tts.speaker_profile(s).gender for s in speaker_ids(count)}


def disjoint(count: int, n_test: int = 5, seed: int = 0, explicit=None, speakers=None):
    return choose_test_speakers(
        speakers or speaker_ids(count), explicit, n_test, seed, tts_genders(count), tts_voices(count), True
    )


def shares_nothing(test: list[str], voices: dict[str, tuple[str, str]]) -> bool:
    rest = [voices[s] for s in voices if s not in test]
    return all(voices[t][0] not in {v for v, _ in rest} and voices[t][1] not in {w for _, w in rest} for t in test)


def test_the_first_thirty_speakers_cannot_give_five_voice_disjoint_test_speakers():
    """The numbers behind split.disjoint_voices's doc: the default 24 form voice groups of 1, 1, 2, 6, 6 and 8
    speakers (at most 4 eligible, never exactly 5), the first 30 a single group."""
    assert sorted(map(len, voice_groups(tts_voices(24)))) == [1, 1, 2, 6, 6, 8]
    assert [g for g in voice_groups(tts_voices(24)) if len(g) <= 5] == [["05", "18"], ["08"], ["16"]]
    assert list(map(len, voice_groups(tts_voices(30)))) == [30]
    for count in (24, 30, 34):
        with pytest.raises(PipelineError, match="split.disjoint_voices: no 5 test speakers share neither"):
            disjoint(count)


@pytest.mark.parametrize("count", [35, 40])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_voice_disjoint_test_speakers_share_no_voice_or_variant(count, seed):
    voices = tts_voices(count)
    test = disjoint(count, seed=seed)
    assert len(test) == 5 and test == sorted(test) and shares_nothing(test, voices)
    sharing = voice_sharing(test, voices).values()
    assert all(not e["voice_shared_with"] and not e["variant_shared_with"] for e in sharing)
    assert {tts.speaker_profile(s).gender for s in test} == {"male", "female"}


def test_voice_disjoint_draw_depends_only_on_seed():
    draws = {seed: disjoint(40, seed=seed) for seed in range(6)}
    assert all(disjoint(40, seed=seed) == draw for seed, draw in draws.items())
    shuffled = speaker_ids(40)
    random.Random(3).shuffle(shuffled)
    assert disjoint(40, seed=4, speakers=shuffled + shuffled[:5]) == draws[4]
    assert len({tuple(draw) for draw in draws.values()}) > 1


def test_voice_disjoint_draw_takes_whole_voice_groups():
    """Groups of several speakers count: 6 test speakers of the default 24 can only be one of its two groups
    of 6 (the small groups add up to 4), and 4 only those small groups."""
    voices = tts_voices(24)
    groups = voice_groups(voices)
    seen = set()
    for seed in range(8):
        test = disjoint(24, n_test=6, seed=seed)
        assert shares_nothing(test, voices) and test in groups
        seen.add(tuple(test))
    assert len(seen) == 2  # both groups of six come up
    test = disjoint(24, n_test=4, seed=0)
    assert test == ["05", "08", "16", "18"] and shares_nothing(test, voices)


def test_explicit_test_speakers_are_checked_for_shared_voices():
    assert disjoint(40, explicit=["33", "31"]) == ["31", "33"]
    with pytest.raises(PipelineError, match=r"13 \(de\+f2: voice with 03, 20; variant with 02, 27\)"):
        disjoint(40, explicit=["13", "31"])
    with pytest.raises(PipelineError, match=r"14 \(en-us-nyc\+m1: variant with 03\)"):
        disjoint(40, explicit=["14"])


def test_voice_disjoint_split_of_real_metadata_is_the_plain_draw():
    """Real speakers are all different people: no voice to share, so the option holds by itself."""
    speakers = speaker_ids(12)
    genders = {s: "male" for s in speakers}
    assert choose_test_speakers(speakers, None, 3, 0, genders, None, True) == choose_test_speakers(
        speakers, None, 3, 0, genders
    )
    with pytest.raises(PipelineError, match="split.disjoint_voices: no eSpeak NG voice in the metadata for speaker"):
        choose_test_speakers(speakers, None, 3, 0, genders, {"01": ("de", "m1")}, True)
    # off, voices are neither needed nor used: the draw is the one it always was
    assert choose_test_speakers(speakers, None, 3, 0, genders) == choose_test_speakers(
        speakers, None, 3, 0, genders, tts_voices(12), False
    )


def write_names(root, speakers, reps=2):
    """A corpus folder of empty wavs (the split reads names only) and the synthetic metadata."""
    for s in speakers:
        (root / s).mkdir(parents=True)
        for d in range(10):
            for r in range(reps):
                (root / s / f"{d}_{s}_{r}.wav").touch()
    (root / META_FILE).write_text(json.dumps(tts.metadata(speakers)))


def split_params(**overrides) -> SplitParams:
    values = dict(test_speakers=None, n_test_speakers=5, val_fraction=0.5, val_by="clip", disjoint_voices=False, seed=0)
    return SplitParams(**(values | overrides))


def test_split_corpus_lists_each_test_speakers_voice_and_what_it_shares(tmp_path):
    write_names(tmp_path, speaker_ids(36))
    table, summary, note = split_corpus(tmp_path, split_params(test_speakers=["13", "14", "31"]))

    def entry(voice, variant, voice_shared, variant_shared):
        return {
            "espeak_voice": voice,
            "espeak_variant": variant,
            "voice_shared_with": voice_shared,
            "variant_shared_with": variant_shared,
        }

    assert summary["test_voices"] == {
        "13": entry("de", "f2", ["03", "20"], ["02", "27"]),
        "14": entry("en-us-nyc", "m1", [], ["03"]),
        "31": entry("es-419", "Alicia", [], []),
    }
    assert note == "2 of 3 test speakers share a base voice or variant with train/val (13, 14)"
    table, summary, note = split_corpus(tmp_path, split_params(disjoint_voices=True))
    assert summary["test_speakers"] == disjoint(36) and set(table[table.split == "test"].speaker) == set(disjoint(36))
    assert note.startswith("0 of 5 test speakers share") and note.endswith("split.disjoint_voices")


def test_split_corpus_of_real_metadata(tmp_path):
    write_names(tmp_path, speaker_ids(8))
    entries = json.loads((tmp_path / META_FILE).read_text())
    for entry in entries.values():
        del entry["espeak voice"], entry["espeak variant"]
    (tmp_path / META_FILE).write_text(json.dumps(entries))
    _, summary, note = split_corpus(tmp_path, split_params(n_test_speakers=2))
    assert summary["test_voices"] is None
    assert note == "no eSpeak NG voices in the metadata (real speakers, each a different person)"
    table, disjoint_summary, _ = split_corpus(tmp_path, split_params(n_test_speakers=2, disjoint_voices=True))
    assert disjoint_summary == summary
