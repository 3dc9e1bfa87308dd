"""Speaker-grouped splits: test speakers never seen in training, and a validation set
balanced across speakers and digits (or made of whole speakers)."""

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import PipelineError
from .corpus import (
    META_FILE,
    Clip,
    check_speakers_have_metadata,
    clean_metadata,
    find_clips,
    read_raw_metadata,
    speaker_voices,
)

if TYPE_CHECKING:
    from ..params import SplitParams

SPLITS = ("train", "val", "test")


def read_split(path: Path) -> pd.DataFrame:
    """data/split.csv as written by the split stage: clip_id, speaker (text), digit, rep, split."""
    try:
        table = pd.read_csv(path, dtype={"clip_id": str, "speaker": str})
    except FileNotFoundError:
        raise PipelineError(f"{path}: missing (run the split stage)") from None
    unknown = sorted(set(table.split) - set(SPLITS))
    if unknown:
        raise PipelineError(f"{path}: unknown split name(s) {', '.join(unknown)}")
    return table


def lowest_reps(split: pd.DataFrame, name: str, reps: int | None = None) -> list[Clip]:
    """The `reps` lowest-numbered repetitions (`None`: all) of every digit of every speaker in split `name`, sorted."""
    chosen = split[split.split == name].sort_values(["speaker", "digit", "rep"])
    if reps is not None:
        chosen = chosen[chosen.groupby(["speaker", "digit"]).cumcount() < reps]
    return [Clip(row.speaker, int(row.digit), int(row.rep)) for row in chosen.itertuples()]


Voices = dict[str, tuple[str, str]]  # speaker -> (eSpeak NG base voice, variant)
DISJOINT = "split.disjoint_voices"


def voice_groups(voices: Voices) -> list[list[str]]:
    """The speakers linked by a shared base voice or a shared variant, directly or through others: a test set
    that shares neither with train and val is a union of whole groups. Each group sorted; groups by first id."""
    parent = {speaker: speaker for speaker in voices}

    def root(speaker: str) -> str:
        while parent[speaker] != speaker:
            parent[speaker] = parent[parent[speaker]]
            speaker = parent[speaker]
        return speaker

    for part in (0, 1):
        first: dict[str, str] = {}
        for speaker in sorted(voices):
            name = voices[speaker][part]
            if name in first:
                parent[root(speaker)] = root(first[name])
            else:
                first[name] = speaker
    groups: dict[str, list[str]] = {}
    for speaker in sorted(voices):
        groups.setdefault(root(speaker), []).append(speaker)
    return sorted(groups.values())


def voice_sharing(test: list[str], voices: Voices) -> dict[str, dict]:
    """For each test speaker: its base voice and variant, and the other (train or val) speakers sharing each."""
    rest = sorted(set(voices) - set(test))
    return {
        speaker: {
            "espeak_voice": voices[speaker][0],
            "espeak_variant": voices[speaker][1],
            "voice_shared_with": [other for other in rest if voices[other][0] == voices[speaker][0]],
            "variant_shared_with": [other for other in rest if voices[other][1] == voices[speaker][1]],
        }
        for speaker in sorted(test)
    }


def _voices_of(speakers: list[str], voices: Voices) -> Voices:
    lacking = sorted(set(speakers) - set(voices))
    if lacking:
        raise PipelineError(f"{DISJOINT}: no eSpeak NG voice in the metadata for speaker(s) {', '.join(lacking)}")
    return {speaker: voices[speaker] for speaker in speakers}


def _check_disjoint(chosen: list[str], voices: Voices) -> None:
    shared = [
        f"{speaker} ({entry['espeak_voice']}+{entry['espeak_variant']}: "
        + "; ".join(
            f"{what} with {', '.join(others)}"
            for what, others in (("voice", entry["voice_shared_with"]), ("variant", entry["variant_shared_with"]))
            if others
        )
        + ")"
        for speaker, entry in voice_sharing(chosen, voices).items()
        if entry["voice_shared_with"] or entry["variant_shared_with"]
    ]
    if shared:
        raise PipelineError(
            f"split.test_speakers: with {DISJOINT}, test speaker(s) share with train/val: {'; '.join(shared)}"
        )


def _disjoint_draw(
    speakers: list[str], count: int, seed: int, genders: dict[str, str] | None, voices: Voices
) -> list[str]:
    """`count` speakers made of whole voice groups, drawn with `seed`.

    When every group small enough is a single speaker (the usual case), the draw is the ordinary one among
    those speakers, stratified by gender where it can be; otherwise groups are tried in a seeded order and the
    first combination that adds up to `count` is taken.
    """
    groups = voice_groups(voices)
    small = [group for group in groups if len(group) <= count]
    if sum(map(len, small)) < count or not _subset_sum(small, count, list(range(len(small)))):
        raise PipelineError(
            f"{DISJOINT}: no {count} test speakers share neither a base voice nor a variant with the others: "
            f"the {len(speakers)} speakers form voice groups of {', '.join(str(len(g)) for g in groups)} "
            f"(those of at most {count}: {', '.join('+'.join(g) for g in small) or 'none'}); add speakers with "
            "voices of their own (data.tts.speakers beyond 30) or change split.n_test_speakers"
        )
    if all(len(group) == 1 for group in small):
        candidates = [group[0] for group in small]
        if len(candidates) == count:
            return candidates
        return _draw(candidates, count, seed, genders)
    order = list(np.random.default_rng(seed).permutation(len(small)))
    return sorted(speaker for index in _subset_sum(small, count, order) for speaker in small[index])


def _subset_sum(groups: list[list[str]], count: int, order: list[int]) -> list[int] | None:
    """The first indices of `groups`, searched depth-first in `order`, whose sizes add up to `count`."""

    def search(start: int, left: int) -> list[int] | None:
        if left == 0:
            return []
        for position in range(start, len(order)):
            size = len(groups[order[position]])
            if size <= left:
                rest = search(position + 1, left - size)
                if rest is not None:
                    return [order[position], *rest]
        return None

    return search(0, count)


def _draw(speakers: list[str], count: int, seed: int, genders: dict[str, str] | None) -> list[str]:
    strata = [genders[speaker] for speaker in speakers] if genders else None
    if strata and not _can_stratify(strata, count):
        strata = None
    from sklearn.model_selection import train_test_split  # here: most importers only read a split

    _, chosen = train_test_split(speakers, test_size=count, stratify=strata, random_state=seed)
    return sorted(chosen)


def choose_test_speakers(
    speakers: list[str],
    explicit: list[str] | None,
    count: int,
    seed: int,
    genders: dict[str, str] | None = None,
    voices: Voices | None = None,
    disjoint_voices: bool = False,
) -> list[str]:
    """The explicit list if given, else `count` speakers drawn with `seed`; sorted.

    With `genders` (speaker -> gender) the draw is stratified by gender where it can
    be (every gender with two or more speakers, and room for each in the count), so the
    test set has women and men in the corpus's proportion and per-gender results exist.

    With `disjoint_voices`, no test speaker shares an eSpeak NG base voice or variant (from
    `voices`) with any other speaker: the explicit list is checked, the draw takes whole voice
    groups (`voice_groups`). Without `voices` (real recordings, whose speakers are all different people) it holds
    whatever the draw, which is then the plain one.
    """
    speakers = sorted(set(speakers))
    disjoint_voices = disjoint_voices and voices is not None
    if disjoint_voices:
        voices = _voices_of(speakers, voices)
    if explicit is not None:
        unknown = sorted(set(explicit) - set(speakers))
        if unknown:
            raise PipelineError(
                f"split.test_speakers: unknown speaker(s) {', '.join(unknown)} (the corpus has {', '.join(speakers)})"
            )
        chosen = sorted(set(explicit))
        if len(chosen) >= len(speakers):
            raise PipelineError(
                f"split.test_speakers: all {len(speakers)} speakers are test speakers; none left to train on"
            )
        if disjoint_voices:
            _check_disjoint(chosen, voices)
        return chosen
    if count >= len(speakers):
        raise PipelineError(
            f"split.n_test_speakers: {count} test speakers leave none to train on (the corpus has {len(speakers)})"
        )
    if disjoint_voices:
        return _disjoint_draw(speakers, count, seed, genders, voices)
    return _draw(speakers, count, seed, genders)


def _can_stratify(strata: list[str], count: int) -> bool:
    sizes = Counter(strata).values()
    return min(sizes) >= 2 and len(sizes) <= count < len(strata) - len(sizes) + 1


def _validation_rows(rest: pd.DataFrame, fraction: float, by: str, seed: int) -> np.ndarray:
    """Positions in `rest` of the validation clips."""
    from sklearn.model_selection import GroupShuffleSplit, StratifiedShuffleSplit

    if by == "speaker":
        speakers = rest.speaker.nunique()
        count = round(speakers * fraction)
        if not 0 < count < speakers:
            raise PipelineError(
                f"split.val_fraction: {fraction:g} of {speakers} training speakers is {count} validation speakers; "
                "need at least one for each of train and val"
            )
        splitter = GroupShuffleSplit(n_splits=1, test_size=count, random_state=seed)
        return next(splitter.split(rest, groups=rest.speaker))[1]
    groups = rest.speaker + "_" + rest.digit.astype(str)
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    try:
        return next(splitter.split(rest, groups))[1]
    except ValueError as exc:  # too few clips per (speaker, digit) group to stratify
        raise PipelineError(
            f"split.val_fraction: cannot balance validation across speakers and digits ({exc}); "
            "use more repetitions or split.val_by: speaker"
        ) from None


def assign_splits(
    clips: list[Clip], test_speakers: list[str], val_fraction: float, val_by: str, seed: int
) -> pd.DataFrame:
    """One row per clip (clip_id, speaker, digit, rep, split), in clip order."""
    table = pd.DataFrame(
        {
            "clip_id": [clip.id for clip in clips],
            "speaker": [clip.speaker for clip in clips],
            "digit": [clip.digit for clip in clips],
            "rep": [clip.rep for clip in clips],
        }
    )
    is_test = table.speaker.isin(test_speakers)
    table["split"] = np.where(is_test, "test", "train")
    rest = table[~is_test].reset_index()
    validation = rest.loc[_validation_rows(rest, val_fraction, val_by, seed), "index"]
    table.loc[validation, "split"] = "val"
    empty = [split for split in SPLITS if not (table.split == split).any()]
    if empty:
        raise PipelineError(f"split: the {' and '.join(empty)} set would be empty")
    return table


def split_summary(table: pd.DataFrame, voices: Voices | None = None) -> dict:
    """Counts per split and per digit, and the test speakers: for metrics/split.json. With `voices`, also each
    test speaker's eSpeak NG base voice and variant and the train/val speakers sharing either (else null)."""
    test = sorted(table[table.split == "test"].speaker.unique().tolist())
    return {
        "clips": {split: int((table.split == split).sum()) for split in SPLITS},
        "speakers": {split: int(table[table.split == split].speaker.nunique()) for split in SPLITS},
        "clips_per_digit": {
            split: {
                str(digit): int(count)
                for digit, count in table[table.split == split].digit.value_counts().sort_index().items()
            }
            for split in SPLITS
        },
        "test_speakers": test,
        "test_voices": None if voices is None else voice_sharing(test, {s: voices[s] for s in table.speaker.unique()}),
    }


def split_corpus(raw: Path, split: "SplitParams") -> tuple[pd.DataFrame, dict, str]:
    """The split stage's work on the corpus folder `raw`: the table (data/split.csv), the summary
    (metrics/split.json) and one line on how the test speakers' voices stand."""
    clips = find_clips(raw)
    entries = read_raw_metadata(raw / META_FILE)
    check_speakers_have_metadata(clips, entries, str(raw / META_FILE))
    metadata = clean_metadata(entries, str(raw / META_FILE))[0]
    speakers = sorted({clip.speaker for clip in clips})
    metadata = metadata[metadata.speaker.isin(speakers)]
    genders = metadata.set_index("speaker").gender.to_dict()
    voices = speaker_voices(metadata)
    test = choose_test_speakers(
        speakers, split.test_speakers, split.n_test_speakers, split.seed, genders, voices, split.disjoint_voices
    )
    table = assign_splits(clips, test, split.val_fraction, split.val_by, split.seed)
    summary = split_summary(table, voices)
    if voices is None:
        note = "no eSpeak NG voices in the metadata (real speakers, each a different person)"
    else:
        sharing = [s for s, e in summary["test_voices"].items() if e["voice_shared_with"] or e["variant_shared_with"]]
        note = (
            f"{len(sharing)} of {len(test)} test speakers share a base voice or variant with train/val"
            + (f" ({', '.join(sharing)})" if sharing else "")
            + ("; split.disjoint_voices" if split.disjoint_voices else "")
        )
    return table, summary, note
