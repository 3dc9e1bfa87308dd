"""The conditions evaluation: which mixes each condition gets, babble of the test speakers alone, the per-condition
means, the noise kinds' metrics and the no-harm list."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import REPO, make_corpus

from audiomnist_denoise.data import noise as noise_module
from audiomnist_denoise.data.corpus import find_clips
from audiomnist_denoise.data.noise import mix_corpus_clip, noise_maker
from audiomnist_denoise.evaluation.clip_sets import (
    CONDITION_GROUPING,
    Condition,
    evaluated_conditions,
    group_label,
    held_out_conditions,
    natural_conditions,
)
from audiomnist_denoise.evaluation.conditions import (
    condition_means,
    condition_metrics,
    harm,
    harmed,
    kind_metrics,
    sweep_tables,
)
from audiomnist_denoise.evaluation.speech import Quality
from audiomnist_denoise.names import METHODS, QUALITY_METRICS
from audiomnist_denoise.params import load_params

RATE = 16000
PARAMS = load_params(REPO / "params.yaml")


def settings(**changes):
    return PARAMS.evaluate.model_copy(update=dict(noise_kinds=["white", "babble"], sweep_kinds=["white"]) | changes)


def noise(**changes):
    return PARAMS.noise.model_copy(update=dict(snr_db=-8.0, seed=3, babble_talkers=2) | changes)


@pytest.fixture
def project(tmp_path):
    """Speakers 01-04: 01 and 02 test, 03 and 04 train; a split file; a natural set of speaker 61."""
    raw = make_corpus(tmp_path / "raw", speakers=("01", "02", "03", "04"), digits=(0, 1), reps=2, rate=RATE)
    rows = [
        dict(clip_id=clip.id, speaker=clip.speaker, digit=clip.digit, rep=clip.rep)
        | dict(split="test" if clip.speaker in ("01", "02") else "train")
        for clip in find_clips(raw)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "split.csv", index=False)
    natural = make_corpus(tmp_path / "natural", speakers=("61",), digits=(0, 1, 2), reps=1, rate=RATE)
    return raw, tmp_path / "split.csv", natural


def test_the_evaluated_conditions_are_each_kind_at_the_mix_snr_then_the_sweep():
    kinds, sweep = evaluated_conditions(noise(), settings(snr_sweep=[0, 5]))
    assert kinds == (Condition("white", -8.0), Condition("babble", -8.0))
    assert sweep == (Condition("white", 0), Condition("white", 5))
    assert Condition("babble", -8.0).name == "babble -8 dB"


def test_test_conditions_mix_every_chosen_clip_once_under_each_condition(project):
    raw, split, _ = project
    chosen = held_out_conditions(raw, split, noise(), settings(snr_sweep=[-8, 5], sweep_reps=1), RATE)
    # white -8 dB is both a kind and a sweep SNR: mixed once
    conditions = [Condition("white", -8.0), Condition("babble", -8.0), Condition("white", 5)]
    test_clips = [clip for clip in find_clips(raw) if clip.speaker in ("01", "02") and clip.rep == 0]
    assert list(chosen.conditions) == [c for c in conditions for _ in test_clips]
    assert list(chosen.clips) == test_clips * 3
    assert chosen.mixes.keys[len(test_clips)] == f"babble -8 dB {test_clips[0].id}"
    assert chosen.mixes.groupings[CONDITION_GROUPING][0] == group_label(conditions[0], "01")
    assert chosen.mixes.positions == list(range(len(test_clips))) * 3  # PESQ on the same clips in each
    assert chosen.of(conditions[2]).sum() == len(test_clips)
    white = noise_maker("white", raw, 2, raw)
    for clip, mixed in zip(test_clips, chosen.mixes.noisy, strict=False):  # the mix stage's very mixes
        np.testing.assert_array_equal(mixed, mix_corpus_clip(raw, clip, white, -8.0, 3)[1])


def test_babble_is_of_the_test_speakers_clips_alone(project):
    """A test clip's babble never holds a training speaker's voice: changing those clips changes no mix."""
    raw, split, natural = project
    before = held_out_conditions(raw, split, noise(), settings(), RATE).mixes.noisy
    natural_before = natural_conditions(natural, raw, split, noise(), settings(), RATE).mixes.noisy
    for path in (raw / "03").glob("*.wav"):
        sf.write(path, np.random.default_rng(0).standard_normal(RATE // 2) * 0.5, RATE, subtype="PCM_16")
    noise_module._load_mono.cache_clear()  # the talkers' audio is cached by path
    after = held_out_conditions(raw, split, noise(), settings(), RATE).mixes.noisy
    natural_after = natural_conditions(natural, raw, split, noise(), settings(), RATE).mixes.noisy
    for a, b in zip(before + natural_before, after + natural_after, strict=True):
        np.testing.assert_array_equal(a, b)
    for path in (raw / "02").glob("*.wav"):  # a test speaker's clips are another's babble
        sf.write(path, np.random.default_rng(1).standard_normal(RATE // 2) * 0.5, RATE, subtype="PCM_16")
    noise_module._load_mono.cache_clear()
    babble_of_01 = held_out_conditions(raw, split, noise(), settings(), RATE).mixes.noisy[4]
    assert not np.array_equal(babble_of_01, after[4])


def test_the_natural_set_is_every_natural_clip_under_each_kind(project):
    raw, split, natural = project
    chosen = natural_conditions(natural, raw, split, noise(), settings(sweep_kinds=["pink"]), RATE)
    assert list(chosen.conditions) == [Condition("white", -8.0)] * 3 + [Condition("babble", -8.0)] * 3
    assert [clip.speaker for clip in chosen.clips] == ["61"] * 6


def quality(values: dict[str, dict[tuple[Condition, str], float]], speakers=("01", "02")) -> tuple[Quality, object]:
    """A Quality of two clips per condition (one per speaker) where each method scores `values[metric][(condition,
    method)]` on every clip and group (default 1.0), and the ConditionSet it belongs to."""
    from audiomnist_denoise.data.corpus import Clip
    from audiomnist_denoise.evaluation.clip_sets import ClipSet, ConditionSet

    conditions = (Condition("white", -8.0), Condition("babble", -8.0), Condition("babble", 5.0))
    pairs = [(c, Clip(speaker, 0, 0)) for c in conditions for speaker in speakers]
    value = lambda metric, c, method: values.get(metric, {}).get((c, method), 1.0)  # noqa: E731
    scores = pd.DataFrame(
        {f"{m}.{metric}": [value(metric, c, m) for c, _ in pairs] for m in METHODS for metric in ("si_sdr", "pesq")}
    )
    groups = [group_label(c, clip.speaker) for c, clip in pairs]
    stoi = pd.DataFrame({m: [value("stoi", c, m) for c, _ in pairs] for m in METHODS}, index=groups)
    estoi = stoi * 0.5
    labels = pd.Series(groups, name=CONDITION_GROUPING)
    mixes = ClipSet([], [], [f"{c.name} {clip.id}" for c, clip in pairs], {CONDITION_GROUPING: labels}, "")
    chosen = ConditionSet(tuple(c for c, _ in pairs), tuple(clip for _, clip in pairs), mixes)
    return Quality(scores, {CONDITION_GROUPING: stoi}, estoi, CONDITION_GROUPING), chosen


def test_condition_means_take_each_conditions_own_clips_and_speakers():
    white, babble = Condition("white", -8.0), Condition("babble", -8.0)
    scored, chosen = quality({"si_sdr": {(white, "unet_mask"): 9.0}, "stoi": {(babble, "noisy"): 0.4}})
    means = condition_means(scored, chosen)
    assert list(means.index.names) == ["kind", "snr_db", "method"] and list(means.columns) == list(QUALITY_METRICS)
    assert means.loc[("white", -8.0, "unet_mask"), "si_sdr"] == 9.0
    assert means.loc[("babble", -8.0, "unet_mask"), "si_sdr"] == 1.0
    assert means.loc[("babble", -8.0, "noisy"), "stoi"] == 0.4 and means.loc[("babble", 5.0, "noisy"), "stoi"] == 1
    assert means.loc[("babble", -8.0, "noisy"), "estoi"] == 0.2
    table = sweep_tables(means, "babble", [-8.0, 5.0])["stoi"]
    assert list(table.index) == [-8.0, 5.0] and list(table.columns) == list(METHODS)
    assert list(sweep_tables(means, "babble", [5.0])["pesq"].index) == [5.0]  # the sweep's SNRs alone


def test_kind_metrics_hold_each_kind_and_the_mean_over_kinds():
    white, babble = Condition("white", -8.0), Condition("babble", -8.0)
    scored, chosen = quality({"pesq": {(white, "unet_mask"): 2.0, (babble, "unet_mask"): 1.5}})
    metrics = kind_metrics(condition_means(scored, chosen), (white, babble))
    assert list(metrics) == ["white", "babble", "mean"] and list(metrics["mean"]) == list(METHODS)
    assert metrics["white"]["unet_mask"]["pesq"] == 2.0 and metrics["mean"]["unet_mask"]["pesq"] == 1.75
    assert metrics["mean"]["noisy"] == {"si_sdr": 1.0, "pesq": 1.0, "stoi": 1.0, "estoi": 0.5}


def test_the_no_harm_list_names_each_condition_where_the_default_is_below_the_noisy_input():
    white, loud_babble = Condition("white", -8.0), Condition("babble", 5.0)
    scored, chosen = quality(
        {
            "stoi": {(loud_babble, "unet_mask"): 0.81, (loud_babble, "noisy"): 0.83},
            "pesq": {(white, "unet_mask"): 0.99},
            "si_sdr": {(white, "unet_mask"): -20.0},  # SI-SDR is not a harm criterion
        }
    )
    means = condition_means(scored, chosen)
    assert harmed(means, "test speakers") == [
        "test speakers, white -8 dB: unet_mask PESQ 0.990 < noisy 1.000",
        "test speakers, babble 5 dB: unet_mask STOI 0.810 < noisy 0.830",
    ]
    metrics = condition_metrics({"test": means, "natural": means}, (white,), -8.0)
    assert metrics["snr_db"] == -8.0 and list(metrics["test"]) == ["white", "mean"]
    assert len(metrics["harm"]) == 4 and metrics["harm"][2].startswith("natural voices, white -8 dB")
    even = pd.DataFrame({"stoi": [0.5, 0.5], "pesq": [1.2, 1.2]}, index=["noisy", "unet_mask"])
    assert harm(even, "anywhere") == []  # at the noisy input's is no harm


def test_the_no_harm_list_ignores_what_the_tables_cannot_show_and_names_what_they_can():
    passed_through = pd.DataFrame({"stoi": [0.480645, 0.4806447], "pesq": [1.03495, 1.0349], "si_sdr": [-8.0, -8.0]})
    assert harm(passed_through.set_axis(["noisy", "unet_mask"]), "babble") == []  # a pass-through's float rounding
    below = pd.DataFrame({"stoi": [0.4810, 0.4804], "pesq": [1.0350, 1.0340]}, index=["noisy", "unet_mask"])
    assert harm(below, "babble") == [
        "babble: unet_mask STOI 0.480 < noisy 0.481",
        "babble: unet_mask PESQ 1.034 < noisy 1.035",
    ]
