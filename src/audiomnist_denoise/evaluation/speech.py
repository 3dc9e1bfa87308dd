"""Speech quality of every denoising method on the same clips: SI-SDR and PESQ per clip, STOI per group.

STOI is computed over each group's clips joined end to end (a single digit is too short
for it, see `metrics`). A method's overall STOI and extended STOI are the means
over the test speakers of each speaker's value.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..audio.spectral import si_sdr
from ..errors import PipelineError
from ..parallel import map_progress
from .metrics import STOI_RATE, PesqReference, StoiReference, at_stoi_rate

CLIP_METRICS = ("si_sdr", "pesq")


def _clip_scores(item: tuple[np.ndarray, dict[str, np.ndarray], int, bool]) -> dict[str, float]:
    clean, outputs, rate, with_pesq = item
    reference = PesqReference(clean, rate) if with_pesq else None
    scores = {}
    for method, output in outputs.items():
        scores[f"{method}.si_sdr"] = si_sdr(clean, output)
        scores[f"{method}.pesq"] = reference.score(output) if reference is not None else float("nan")
    return scores


def score_audio(
    clean: list[np.ndarray],
    outputs: dict[str, list[np.ndarray]],
    rate: int,
    workers: int,
    pesq_every: int = 1,
    positions: list[int] | None = None,
) -> pd.DataFrame:
    """One row per clip, with `{method}.si_sdr` and `{method}.pesq` columns. PESQ, the costly one, is taken on
    every `pesq_every`-th clip from the first, the same clips for every method; NaN on the others and where it
    finds no speech (means skip NaN). `positions`: each clip's place in its own set of clips, where the list
    joins several (default: its place in this one)."""
    positions = range(len(clean)) if positions is None else positions
    items = [
        (reference, {method: audio[i] for method, audio in outputs.items()}, rate, position % pesq_every == 0)
        for i, (reference, position) in enumerate(zip(clean, positions, strict=True))
    ]
    return pd.DataFrame(list(map_progress(_clip_scores, items, workers, desc="SI-SDR and PESQ")))


def _at_stoi_rate(item: tuple[np.ndarray, int]) -> np.ndarray:
    return at_stoi_rate(*item)


def at_stoi_rate_all(
    clean: list[np.ndarray], outputs: dict[str, list[np.ndarray]], rate: int, workers: int
) -> tuple[list[np.ndarray], dict[str, list[np.ndarray]], int]:
    """Every clip at STOI's own rate, and that rate: STOI by several groupings then resamples nothing."""
    names = ["clean", *outputs]
    clips = [clean, *outputs.values()]
    items = [(clip, rate) for group in clips for clip in group]
    resampled = list(map_progress(_at_stoi_rate, items, workers, desc="to 10 kHz for STOI"))
    per_name = {name: resampled[i * len(clean) : (i + 1) * len(clean)] for i, name in enumerate(names)}
    return per_name.pop("clean"), per_name, STOI_RATE


def _group_stoi(item: tuple[list[np.ndarray], dict[str, list[np.ndarray]], int, bool]) -> dict[str, float]:
    """Every method's STOI (or extended STOI) on one group's clips joined end to end, against one reference."""
    references, estimates, rate, extended = item
    joined = lambda clips: at_stoi_rate(np.concatenate(clips), rate)  # noqa: E731
    reference = StoiReference(joined(references))
    return {method: reference.score(joined(clips), extended) for method, clips in estimates.items()}


def stoi_by_group(
    clean: list[np.ndarray],
    outputs: dict[str, list[np.ndarray]],
    groups: pd.Series,
    rate: int,
    workers: int,
    extended: bool = False,
) -> pd.DataFrame:
    """STOI (or extended STOI) of each group's clips joined end to end: one row per group, one column per method.

    `groups` labels each clip (same order as `clean`); groups come out sorted. (`rate` STOI_RATE, as
    `at_stoi_rate_all` leaves the clips, resamples nothing.)
    """
    labels = groups.to_numpy()
    members = {label: np.flatnonzero(labels == label) for label in sorted(pd.unique(labels))}
    items = [
        (
            [clean[i] for i in indices],
            {method: [clips[i] for i in indices] for method, clips in outputs.items()},
            rate,
            extended,
        )
        for indices in members.values()
    ]
    name = "ESTOI" if extended else "STOI"
    values = list(map_progress(_group_stoi, items, workers, desc=f"{name} by {groups.name}", unit="group"))
    table = pd.DataFrame(values, index=pd.Index(list(members), name=groups.name))
    return table[list(outputs)]


def method_means(scores: pd.DataFrame, speaker_stoi: pd.DataFrame, speaker_estoi: pd.DataFrame) -> pd.DataFrame:
    """One row per method, a column per metric: mean SI-SDR and PESQ over clips, mean STOI and ESTOI over speakers."""
    methods = list(speaker_stoi.columns)
    return pd.DataFrame(
        {
            "si_sdr": [scores[f"{method}.si_sdr"].mean() for method in methods],
            "pesq": [scores[f"{method}.pesq"].mean() for method in methods],
            "stoi": speaker_stoi.mean().to_numpy(),
            "estoi": speaker_estoi.mean().to_numpy(),
        },
        index=pd.Index(methods, name="method"),
    )


def group_quality(scores: pd.DataFrame, labels: pd.Series, group_stoi: pd.DataFrame) -> pd.DataFrame:
    """Per group of `labels`: each method's mean SI-SDR and PESQ and its STOI, as `{method}_{metric}` columns."""
    means = scores.groupby(labels.to_numpy(), sort=True).mean()
    columns = {}
    for method in group_stoi.columns:
        for metric in CLIP_METRICS:
            columns[f"{method}_{metric}"] = means[f"{method}.{metric}"]
        columns[f"{method}_stoi"] = group_stoi[method]
    return pd.DataFrame(columns).rename_axis(labels.name)


_SCORES_FILE, _STOI_FILE, _CONTEXT_FILE = "scores.csv", "stoi.csv", "context.json"
_EXTENDED = "extended STOI by "  # the grouping column's prefix for extended STOI rows in stoi.csv


@dataclass(frozen=True)
class Quality:
    """Some methods' speech quality on one set of clips: SI-SDR and PESQ per clip (`score_audio`), STOI per
    group of each grouping and extended STOI per group of one of them (`stoi_by_group`)."""

    scores: pd.DataFrame  # one row per clip: {method}.si_sdr, {method}.pesq
    stoi: dict[str, pd.DataFrame]  # per grouping: one row per group, one column per method
    estoi: pd.DataFrame  # one row per group of the extended grouping, one column per method
    extended_by: str

    def join(self, other: "Quality", order: tuple[str, ...]) -> "Quality":
        """Both sets of methods (scored on the same clips) as one, the methods in `order`."""
        methods = [method for method in order if method in self.estoi.columns or method in other.estoi.columns]
        tables = lambda a, b: pd.concat([a, b], axis=1)[methods]  # noqa: E731
        columns = [f"{method}.{metric}" for method in methods for metric in CLIP_METRICS]
        return Quality(
            pd.concat([self.scores, other.scores], axis=1)[columns],
            {name: tables(table, other.stoi[name]) for name, table in self.stoi.items()},
            tables(self.estoi, other.estoi),
            self.extended_by,
        )

    def save(self, folder: Path, clips: list[str], context: dict) -> None:
        """Into `folder` (which exists), every value exactly (17 digits); `clips` names the rows of `scores`, and
        `context` (JSON) is what the scores depend on beyond the clips, which `load` checks."""
        (folder / _CONTEXT_FILE).write_text(json.dumps(context, indent=2, sort_keys=True) + "\n")
        self.scores.assign(clip=clips)[["clip", *self.scores.columns]].to_csv(
            folder / _SCORES_FILE, index=False, float_format="%.17g"
        )
        rows = [
            table.rename_axis("group").reset_index().assign(grouping=name)
            for name, table in [*self.stoi.items(), (_EXTENDED + self.extended_by, self.estoi)]
        ]
        stoi = pd.concat(rows)
        stoi[["grouping", "group", *self.estoi.columns]].to_csv(folder / _STOI_FILE, index=False, float_format="%.17g")

    @classmethod
    def load(
        cls, folder: Path, clips: list[str], groupings: dict[str, pd.Series], extended_by: str, context: dict
    ) -> "Quality":
        """What `save` wrote, for exactly these `clips`, the groups of `groupings` (each clip's label, as given
        to `stoi_by_group`) and `context`; anything else is a PipelineError naming the file."""
        read = lambda name: pd.read_csv(folder / name, dtype={"clip": str, "group": str})  # noqa: E731
        try:
            scores, stoi = read(_SCORES_FILE), read(_STOI_FILE)
            saved = json.loads((folder / _CONTEXT_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise PipelineError(f"{folder}: cannot read the scores of the model-free methods ({exc})") from None
        if saved != json.loads(json.dumps(context, sort_keys=True)):
            raise PipelineError(
                f"{folder / _CONTEXT_FILE}: made with other settings ({saved}, not {context}); rerun its stage"
            )
        if scores["clip"].tolist() != list(clips):
            raise PipelineError(f"{folder / _SCORES_FILE}: scored other clips than these; rerun its stage")

        def groups_of(grouping: str, labels: pd.Series) -> pd.DataFrame:
            table = stoi[stoi.grouping == grouping].drop(columns="grouping").set_index("group")
            expected = sorted(pd.unique(labels.to_numpy()))
            if table.index.tolist() != [str(label) for label in expected]:
                raise PipelineError(f"{folder / _STOI_FILE}: other groups of {grouping} than these; rerun its stage")
            return table.set_axis(pd.Index(expected, name=labels.name))

        return cls(
            scores.drop(columns="clip"),
            {name: groups_of(name, labels) for name, labels in groupings.items()},
            groups_of(_EXTENDED + extended_by, groupings[extended_by]),
            extended_by,
        )


def score_methods(
    clean: list[np.ndarray],
    outputs: dict[str, list[np.ndarray]],
    rate: int,
    workers: int,
    pesq_every: int,
    groupings: dict[str, pd.Series],
    extended_by: str,
    positions: list[int] | None = None,
) -> Quality:
    """The `Quality` of each method's outputs: per clip (`score_audio`), STOI per group of each of `groupings`
    (each a label per clip) and extended STOI per group of `groupings[extended_by]`."""
    scores = score_audio(clean, outputs, rate, workers, pesq_every, positions)
    clean, outputs, stoi_rate = at_stoi_rate_all(clean, outputs, rate, workers)
    stoi = {name: stoi_by_group(clean, outputs, labels, stoi_rate, workers) for name, labels in groupings.items()}
    estoi = stoi_by_group(clean, outputs, groupings[extended_by], stoi_rate, workers, extended=True)
    return Quality(scores, stoi, estoi, extended_by)
