"""Every method's speech quality under each condition of a `ConditionSet` (the `conditions` stage): the means per
condition, the sweep's tables, the noise kinds' metrics, and the conditions where the default method is below the
noisy input (the "no harm" list)."""

import pandas as pd

from ..names import DEFAULT_METHOD, METHODS, QUALITY, QUALITY_METRICS
from .clip_sets import CONDITION_GROUPING, Condition, ConditionSet, group_label
from .spectrogram_mse import rounded
from .speech import Quality, method_means

HARM_METRICS = ("stoi", "pesq")  # where the default method must not fall below the noisy input
# What counts as below: more than half a unit of the digit the tables print (0.0005 at 3 decimals). A model that
# passes a condition through unchanged scores the noisy input's value up to the float rounding of its STFT round
# trip, a millionth either way, which no table shows and no listener hears.
HARM_RESOLUTION = {metric: 0.5 * 10.0 ** -int(QUALITY[metric][1][1:-1]) for metric in HARM_METRICS}
MEAN_KIND = "mean"  # the key of the mean over the noise kinds
SET_NAMES = {"test": "test speakers", "natural": "natural voices"}  # the sets of clips, as the harm list names them


def condition_means(quality: Quality, conditions: ConditionSet) -> pd.DataFrame:
    """One row per condition and method of `quality` (scored on `conditions.mixes`; index `kind`, `snr_db`,
    `method`), a column per metric of QUALITY_METRICS: the mean SI-SDR and PESQ over the condition's clips, the
    mean STOI and ESTOI over its speakers."""
    rows = []
    for condition in dict.fromkeys(conditions.conditions):
        at = conditions.of(condition)
        speakers = sorted({clip.speaker for clip, here in zip(conditions.clips, at, strict=True) if here})
        groups = [group_label(condition, speaker) for speaker in speakers]
        stoi, estoi = quality.stoi[CONDITION_GROUPING].loc[groups], quality.estoi.loc[groups]
        rows.append(method_means(quality.scores[at], stoi, estoi).assign(kind=condition.kind, snr=condition.snr_db))
    return pd.concat(rows).reset_index().rename(columns={"snr": "snr_db"}).set_index(["kind", "snr_db", "method"])


def sweep_tables(means: pd.DataFrame, kind: str, snrs: list[float]) -> dict[str, pd.DataFrame]:
    """Per metric, one row per SNR of `snrs` (index `snr_db`), one column per method in METHODS' order, for `kind`."""
    of_kind = means.xs(kind, level="kind").reset_index()
    of_kind = of_kind[of_kind.snr_db.isin(snrs)]
    return {
        metric: of_kind.pivot(index="snr_db", columns="method", values=metric)[list(METHODS)]
        for metric in QUALITY_METRICS
    }


def kind_metrics(means: pd.DataFrame, conditions: tuple[Condition, ...]) -> dict:
    """`{kind: {method: {metric: value}}}` for each of `conditions`, and under `mean` each method's mean over them."""
    rows = pd.concat([means.xs((c.kind, c.snr_db), level=("kind", "snr_db")).assign(kind=c.kind) for c in conditions])
    tables = {kind: table.drop(columns="kind") for kind, table in rows.groupby("kind", sort=False)}
    tables[MEAN_KIND] = rows.drop(columns="kind").groupby(level="method", sort=False).mean()
    return {
        kind: {
            method: {metric: rounded(table.loc[method, metric]) for metric in QUALITY_METRICS} for method in table.index
        }
        for kind, table in tables.items()
    }


def harm(table: pd.DataFrame, where: str) -> list[str]:
    """Where DEFAULT_METHOD's STOI or PESQ is below the noisy input's by more than HARM_RESOLUTION in `table` (one
    row per method, a column per metric), in words: `where`, the metric and both values."""
    found = []
    for metric in HARM_METRICS:
        name, form = QUALITY[metric]
        ours, noisy = table.loc[DEFAULT_METHOD, metric], table.loc["noisy", metric]
        if ours < noisy - HARM_RESOLUTION[metric]:
            found.append(f"{where}: {DEFAULT_METHOD} {name} {ours:{form}} < noisy {noisy:{form}}")
    return found


def harmed(means: pd.DataFrame, clips: str) -> list[str]:
    """`harm` in each condition of `means` (`condition_means`), named by the set of `clips` and the condition."""
    return [
        found
        for (kind, snr_db), table in means.groupby(level=["kind", "snr_db"], sort=False)
        for found in harm(table.droplevel(["kind", "snr_db"]), f"{clips}, {Condition(kind, snr_db).name}")
    ]


def condition_metrics(means: dict[str, pd.DataFrame], kinds: tuple[Condition, ...], snr_db: float) -> dict:
    """The `conditions` stage's metrics: the SNR of the noise kinds, per set of clips (a key of SET_NAMES) its
    `kind_metrics`, and the no-harm list of every condition of every set."""
    metrics = {"snr_db": snr_db} | {name: kind_metrics(table, kinds) for name, table in means.items()}
    return metrics | {"harm": [found for name, table in means.items() for found in harmed(table, SET_NAMES[name])]}
