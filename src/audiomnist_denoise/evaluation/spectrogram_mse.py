"""Evaluation: each clip's loss under the model and under the identity baseline, and means per group of clips.

The identity baseline takes the noisy input as the output. A model helps only where its
loss is below that baseline, and the ratio of the two compares across noise levels and
corpora where the raw MSE does not.
"""

import math
from collections.abc import Callable
from itertools import pairwise

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from ..errors import PipelineError
from ..model.unet import predict

EVALUATED_SPLITS = ("test", "val")  # train clips are not evaluated: the model has seen them
GROUPS = ("digit", "speaker", "gender", "accent", "age_band")
UNKNOWN_AGE = "unknown"
CLIP_COLUMNS = ["row", "clip_id", "speaker", "digit", "split", "gender", "accent", "age", "age_band"]
_SIGNIFICANT_DIGITS = 6


def age_band_labels(edges: list[int]) -> list[str]:
    """The bands that edges in whole years cut ages into: [25, 30, 40] gives <25, 25-29, 30-39, 40+."""
    if not edges or any(high <= low for low, high in pairwise(edges)):
        raise PipelineError(f"evaluate.age_bands: {list(edges)} must be one or more ages in strictly increasing order")
    inner = [f"{low}-{high - 1}" if high - low > 1 else f"{low}" for low, high in pairwise(edges)]
    return [f"<{edges[0]}", *inner, f"{edges[-1]}+"]


def age_bands(ages: pd.Series, edges: list[int]) -> pd.Series:
    """Each age's band as an ordered category, so groups sort by age; a missing age is `unknown`, last."""
    bands = pd.cut(ages, bins=[-math.inf, *edges, math.inf], right=False, labels=age_band_labels(edges))
    return bands.cat.add_categories(UNKNOWN_AGE).fillna(UNKNOWN_AGE)


def _check_same_clips(index: pd.DataFrame, split: pd.DataFrame, index_source: str, split_source: str) -> None:
    for table, source in ((index, index_source), (split, split_source)):
        repeated = table.clip_id[table.clip_id.duplicated()]
        if not repeated.empty:
            raise PipelineError(f"{source}: clip {repeated.iloc[0]} appears more than once")
    only_index = sorted(set(index.clip_id) - set(split.clip_id))
    only_split = sorted(set(split.clip_id) - set(index.clip_id))
    if only_index or only_split:
        example = (only_index or only_split)[0]
        raise PipelineError(
            f"{index_source} and {split_source} disagree on clip ids: {len(only_index)} only in the features, "
            f"{len(only_split)} only in the split (e.g. {example}); rerun featurize and split"
        )


def _check_speakers_described(speakers: pd.Series, metadata: pd.DataFrame, source: str) -> None:
    missing = sorted(set(speakers) - set(metadata.speaker))
    if missing:
        raise PipelineError(f"{source}: no entry for evaluated speaker(s) {', '.join(missing)}")


def clip_table(
    index: pd.DataFrame,
    split: pd.DataFrame,
    metadata: pd.DataFrame,
    age_edges: list[int],
    *,
    index_source: str = "feature index",
    split_source: str = "split",
    metadata_source: str = "metadata",
) -> pd.DataFrame:
    """One row per val or test clip, in feature-cache order, with the columns of CLIP_COLUMNS.

    `row` is the clip's row in the feature arrays (the index's rows align with them);
    gender, accent, age and age_band describe its speaker. Every clip of the split must be
    in the index and the other way round, there must be test clips, and every evaluated
    speaker needs metadata: anything else is a PipelineError naming the source.
    """
    age_band_labels(age_edges)  # a bad param fails before any data is looked at
    _check_same_clips(index, split, index_source, split_source)
    clips = index[["clip_id", "speaker", "digit"]].assign(row=np.arange(len(index)))
    clips = clips.merge(split[["clip_id", "split"]], on="clip_id", validate="one_to_one")
    clips = clips[clips.split.isin(EVALUATED_SPLITS)]
    if not (clips.split == "test").any():
        raise PipelineError(f"{split_source}: no test clips to evaluate")
    _check_speakers_described(clips.speaker, metadata, metadata_source)
    speakers = metadata[["speaker", "gender", "accent", "age"]]
    described = clips.merge(speakers, on="speaker", how="left", validate="many_to_one")
    described["age_band"] = age_bands(described.age, age_edges)
    return described[CLIP_COLUMNS].reset_index(drop=True)


def clip_mse(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The mean squared error of each (H, W) pair: differences in float32 like the training loss, means in float64."""
    difference = np.asarray(outputs, dtype=np.float32) - np.asarray(targets, dtype=np.float32)
    return np.mean(np.square(difference), axis=(1, 2), dtype=np.float64)


def score_spectrograms(
    model: nn.Module | Callable[[np.ndarray], np.ndarray],
    clean: np.ndarray,
    noisy: np.ndarray,
    rows: np.ndarray,
    batch_size: int,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray]:
    """Per clip of `rows`: the MSE of the model's output and of the noisy input (identity), against the clean target.

    `model` is the study's U-Net on the cached images, or a function from cache rows to the images
    of a model that does not read the cache (the native track: `spectrogram.estimate_image`).
    One batch of rows at a time, so memory stays flat however many clips are evaluated.
    """
    model_mse, identity_mse = [np.zeros(0)], [np.zeros(0)]
    for start in tqdm(range(0, len(rows), batch_size), desc=f"evaluate ({device})", unit="batch", mininterval=0.5):
        batch = rows[start : start + batch_size]
        inputs, targets = noisy[batch], clean[batch]
        outputs = predict(model, inputs, batch_size, device) if isinstance(model, nn.Module) else model(batch)
        model_mse.append(clip_mse(outputs, targets))
        identity_mse.append(clip_mse(inputs, targets))
    return np.concatenate(model_mse), np.concatenate(identity_mse)


def group_means(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """Per group of `by`, sorted: mean model MSE, mean identity MSE, their ratio, and the clip count.

    Columns: `by`, mse, identity_mse, mse_ratio (NaN where the identity MSE is 0), clips.
    """
    means = (
        table.groupby(by, observed=True, sort=True)
        .agg(mse=("mse", "mean"), identity_mse=("identity_mse", "mean"), clips=("mse", "size"))
        .reset_index()
    )
    means.insert(3, "mse_ratio", means.mse / means.identity_mse.where(means.identity_mse > 0))
    return means


def rounded(value: float) -> float | None:
    """A JSON-safe number rounded to a readable precision; None where undefined."""
    return float(f"{value:.{_SIGNIFICANT_DIGITS}g}") if math.isfinite(value) else None


def flat_metrics(table: pd.DataFrame) -> dict[str, float | int | None]:
    """Flat, readable keys for `dvc metrics show/diff`: per evaluated split `{split}.mse`, `.identity_mse`,
    `.mse_ratio` (model over identity) and `.clips`, then the test MSE per digit as `test.digit.{d}`."""
    metrics = {}
    by_split = group_means(table, "split").set_index("split")
    for split in (name for name in EVALUATED_SPLITS if name in by_split.index):
        means = by_split.loc[split]
        metrics |= {
            f"{split}.mse": rounded(means.mse),
            f"{split}.identity_mse": rounded(means.identity_mse),
            f"{split}.mse_ratio": rounded(means.mse_ratio),
            f"{split}.clips": int(means.clips),
        }
    for row in group_means(table[table.split == "test"], "digit").itertuples():
        metrics[f"test.digit.{row.digit}"] = rounded(row.mse)
    return metrics
