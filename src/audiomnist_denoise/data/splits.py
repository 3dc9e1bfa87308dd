"""Speaker-grouped splits: test speakers never seen in training, and a validation set
balanced across speakers and digits (or made of whole speakers)."""

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import PipelineError
from .corpus import Clip

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


def lowest_reps(split: pd.DataFrame, name: str, reps: int) -> list[Clip]:
    """The `reps` lowest-numbered repetitions of every digit of every speaker in split `name`, sorted."""
    chosen = split[split.split == name].sort_values(["speaker", "digit", "rep"])
    chosen = chosen[chosen.groupby(["speaker", "digit"]).cumcount() < reps]
    return [Clip(row.speaker, int(row.digit), int(row.rep)) for row in chosen.itertuples()]


def choose_test_speakers(
    speakers: list[str], explicit: list[str] | None, count: int, seed: int, genders: dict[str, str] | None = None
) -> list[str]:
    """The explicit list if given, else `count` speakers drawn with `seed`; sorted.

    With `genders` (speaker -> gender) the draw is stratified by gender where it can
    be (every gender with two or more speakers, and room for each in the count), so the
    test set has women and men in the corpus's proportion and per-gender results exist.
    """
    speakers = sorted(set(speakers))
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
        return chosen
    if count >= len(speakers):
        raise PipelineError(
            f"split.n_test_speakers: {count} test speakers leave none to train on (the corpus has {len(speakers)})"
        )
    strata = [genders[speaker] for speaker in speakers] if genders else None
    if strata and not _can_stratify(strata, count):
        strata = None
    from sklearn.model_selection import train_test_split  # here: most importers only read a split

    _, chosen = train_test_split(speakers, test_size=count, stratify=strata, random_state=seed)
    return sorted(chosen)


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


def split_summary(table: pd.DataFrame) -> dict:
    """Counts per split and per digit, and the test speakers: for metrics/split.json."""
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
        "test_speakers": sorted(table[table.split == "test"].speaker.unique().tolist()),
    }
