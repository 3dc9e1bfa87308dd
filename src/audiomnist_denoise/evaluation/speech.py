"""Speech quality of every denoising method on the same clips: SI-SDR and PESQ per clip, STOI per group.

STOI is computed over each group's clips joined end to end (a single digit is too short
for it, see `metrics`). A method's overall STOI and extended STOI are the means
over the test speakers of each speaker's value.
"""

import numpy as np
import pandas as pd

from ..parallel import map_progress
from .metrics import STOI_RATE, PesqReference, StoiReference, at_stoi_rate, si_sdr

CLIP_METRICS = ("si_sdr", "pesq")
METRICS = ("si_sdr", "pesq", "stoi", "estoi")


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
