"""The sets of clips the speech-quality metrics score every method on, each a `ClipSet`: `evaluate`'s test clips
(the mix stage's noisy copies), and the `conditions` stage's (the test speakers' lowest repetitions and the
natural-voice set, each remixed under every evaluated noise kind and SNR)."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..audio.io import load_resampled, resample
from ..data.corpus import META_FILE, Clip, find_clips, load_metadata, parse_clip_path
from ..data.noise import mix_corpus_clip, noise_maker
from ..data.splits import lowest_reps, read_split
from ..errors import PipelineError
from ..features.cache import INDEX_FILE
from ..layout import GROUP_TABLES
from ..params import EvaluateParams, NoiseParams
from .spectrogram_mse import clip_table

CONDITION_GROUPING = "condition and speaker"  # STOI per speaker in each condition
HELD_OUT_EXTENDED = "speaker"  # the test clips' extended STOI: per speaker


@dataclass(frozen=True)
class ClipSet:
    """Clean and noisy clips at one sample rate, with what their scores need: a name per clip (the rows of the
    saved scores), the groupings STOI is taken over (a label per clip each), the one extended STOI is taken
    over, and each clip's place among the clips PESQ-every-n counts (None: its place in the set)."""

    clean: list[np.ndarray]
    noisy: list[np.ndarray]
    keys: list[str]
    groupings: dict[str, pd.Series]
    extended_by: str
    positions: list[int] | None = None


def evaluated_clips(
    index: pd.DataFrame, features: Path, split: Path, raw: Path, age_bands: list[int], test_reps: int | None
) -> pd.DataFrame:
    """`spectrogram_mse.clip_table` of the feature cache's `index` (from `features`), the split and the metadata,
    its test clips each test speaker's `test_reps` lowest repetitions of every digit (`None`: all): a test set
    that stays the same size however many repetitions the corpus holds."""
    clips = read_split(split)
    table = clip_table(
        index,
        clips,
        load_metadata(raw),
        age_bands,
        index_source=str(features / INDEX_FILE),
        split_source=str(split),
        metadata_source=str(raw / META_FILE),
    )
    if test_reps is None:
        return table
    kept = {clip.id for clip in lowest_reps(clips, "test", test_reps)}
    return table[(table.split != "test") | table.clip_id.isin(kept)].reset_index(drop=True)


def held_out_set(test: pd.DataFrame, raw: Path, noisy: Path, rate: int) -> ClipSet:
    """The test clips of `evaluated_clips`' table (its test rows, in order) at `rate`, the mix stage's noisy copies,
    grouped as `evaluate` reports STOI: by digit, speaker, gender, accent and age band."""
    clips = [parse_clip_path(Path(row.speaker) / f"{row.clip_id}.wav") for row in test.itertuples()]
    clean, mixed = ([load_resampled(root / clip.path, rate)[0] for clip in clips] for root in (raw, noisy))
    groupings = {by: test[by] for by in GROUP_TABLES}
    return ClipSet(clean, mixed, test.clip_id.tolist(), groupings, HELD_OUT_EXTENDED)


@dataclass(frozen=True, order=True)
class Condition:
    """How every clip of one part of a `ConditionSet` is mixed: a noise kind at an SNR."""

    kind: str
    snr_db: float

    @property
    def name(self) -> str:
        return f"{self.kind} {self.snr_db:g} dB"


def evaluated_conditions(noise: NoiseParams, settings: EvaluateParams) -> tuple[tuple[Condition, ...], ...]:
    """The conditions of each noise kind of `settings.noise_kinds` at the mix stage's SNR, and those of the SNR
    sweep: each of `settings.sweep_kinds` at every SNR of `settings.snr_sweep`."""
    kinds = tuple(Condition(kind, noise.snr_db) for kind in settings.noise_kinds)
    sweep = tuple(Condition(kind, snr) for kind in settings.sweep_kinds for snr in settings.snr_sweep)
    return kinds, sweep


@dataclass(frozen=True)
class ConditionSet:
    """Clean clips, each mixed under every one of some conditions, condition by condition, at one sample rate."""

    conditions: tuple[Condition, ...]  # each mix's
    clips: tuple[Clip, ...]  # each mix's
    mixes: ClipSet  # named by condition and clip, STOI (and extended STOI) per speaker in each condition

    def of(self, condition: Condition) -> np.ndarray:
        """Which mixes are of `condition`."""
        return np.array([mixed == condition for mixed in self.conditions])


def group_label(condition: Condition, speaker: str) -> str:
    return f"{condition.name}, speaker {speaker}"


def condition_set(
    corpus: Path,
    clips: list[Clip],
    conditions: tuple[Condition, ...],
    noise: NoiseParams,
    rate: int,
    talkers: tuple[Path, tuple[Clip, ...]],
) -> ConditionSet:
    """`clips` of `corpus` mixed under each of `conditions` (each once, in order), with noise made as the mix stage
    makes it (the `noise` section's seed and per-clip draws, its talkers and files) and babble of the clips
    `talkers` names (a corpus and clips of it), at `rate`. A clip's draws are the same in every condition: at the
    mix stage's kind and SNR a mix is the mix stage's very file, where its babble's talkers are the same."""
    conditions = tuple(dict.fromkeys(conditions))
    makers = {
        kind: noise_maker(kind, talkers[0], noise.babble_talkers, Path(noise.dir), talkers[1], "evaluate.noise_kinds")
        for kind in dict.fromkeys(condition.kind for condition in conditions)
    }
    pairs = [(condition, clip) for condition in conditions for clip in clips]
    mixed = [mix_corpus_clip(corpus, clip, makers[c.kind], c.snr_db, noise.seed) for c, clip in pairs]
    clean, noisy = ([resample(mix[i], mix[2], rate) for mix in mixed] for i in (0, 1))
    keys = [f"{condition.name} {clip.id}" for condition, clip in pairs]
    labels = pd.Series([group_label(condition, clip.speaker) for condition, clip in pairs], name=CONDITION_GROUPING)
    positions = [i % len(clips) for i in range(len(pairs))]  # PESQ on every n-th clip: the same in every condition
    mixes = ClipSet(clean, noisy, keys, {CONDITION_GROUPING: labels}, CONDITION_GROUPING, positions)
    return ConditionSet(tuple(c for c, _ in pairs), tuple(clip for _, clip in pairs), mixes)


def _check_babble_talkers(talkers: tuple[Clip, ...], settings: EvaluateParams) -> None:
    """Babble of the test speakers' clips needs two of them: a clip's babble is never its own speaker's."""
    speakers = {clip.speaker for clip in talkers}
    if "babble" in settings.noise_kinds + settings.sweep_kinds and len(speakers) < 2:
        raise PipelineError(
            f"evaluate.noise_kinds, evaluate.sweep_kinds: babble of the test speakers' clips needs 2 or more test "
            f"speakers, and split.n_test_speakers gives {len(speakers)}"
        )


def held_out_conditions(
    raw: Path, split: Path, noise: NoiseParams, settings: EvaluateParams, rate: int
) -> ConditionSet:
    """The test speakers' `settings.sweep_reps` lowest repetitions under every condition of `evaluated_conditions`,
    their babble of the test speakers' clips alone: voices no model trained on, as the speech is."""
    table = read_split(split)
    clips = lowest_reps(table, "test", settings.sweep_reps)
    talkers = tuple(lowest_reps(table, "test"))
    _check_babble_talkers(talkers, settings)
    return condition_set(raw, clips, sum(evaluated_conditions(noise, settings), ()), noise, rate, (raw, talkers))


def natural_conditions(
    natural: Path, raw: Path, split: Path, noise: NoiseParams, settings: EvaluateParams, rate: int
) -> ConditionSet:
    """Every clip of the natural-voice set `natural` under each noise kind of `settings.noise_kinds` at the mix
    stage's SNR, its babble of the test speakers' clips of `raw`, as the test speakers' is."""
    kinds, _ = evaluated_conditions(noise, settings)
    talkers = tuple(lowest_reps(read_split(split), "test"))
    _check_babble_talkers(talkers, settings)
    return condition_set(natural, find_clips(natural), kinds, noise, rate, (raw, talkers))
