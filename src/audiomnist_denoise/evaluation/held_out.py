"""The `evaluate` stage's evaluation of a model on the held-out test speakers: the spectrogram MSE of every val
and test clip against the identity baseline, and every method's speech quality on the test clips, overall and
per group of clips (digit, speaker, gender, accent, age band)."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..audio.io import load_resampled
from ..data.corpus import parse_clip_path
from ..features.cache import open_features
from ..features.spectrogram import estimate_image
from ..layout import GROUP_TABLES
from ..model.spectral import SpectralDenoiser
from ..names import QUALITY_METRICS
from ..params import EvaluateParams, FeatureParams
from .clip_sets import evaluated_clips, held_out_set
from .methods import estimate_images
from .scoring import model_quality
from .spectrogram_mse import flat_metrics, group_means, rounded, score_spectrograms
from .speech import group_quality, method_means


@dataclass(frozen=True)
class HeldOut:
    """What `evaluate_held_out` measures: flat metrics for `dvc metrics`, and per grouping of the test clips
    (GROUP_TABLES' keys) its groups' mean MSE (`spectrogram_mse.group_means`) and the table `dvc plots` reads;
    `overall` is each method's speech quality over every test clip."""

    metrics: dict
    overall: pd.DataFrame  # one row per method, a column per metric of QUALITY_METRICS
    means: dict[str, pd.DataFrame]
    tables: dict[str, pd.DataFrame]


def _native_images(
    model: SpectralDenoiser, index: pd.DataFrame, noisy_root: Path, features, device, known: dict[int, np.ndarray]
):
    """For cache rows, the images of a native-track model's estimates from the noisy audio; `known` has those
    of some rows already (the test clips', from their speech-quality run), the others are estimated here."""
    peaks = index.noisy_db_max.to_numpy()

    def images(rows: np.ndarray) -> np.ndarray:
        missing = [row for row in rows if row not in known]
        clips = [parse_clip_path(Path(index.speaker[row]) / f"{index.clip_id[row]}.wav") for row in missing]
        noisy = [load_resampled(noisy_root / clip.path, features.sample_rate)[0] for clip in clips]
        if missing:
            known.update(zip(missing, estimate_images(model, noisy, peaks[missing], features, device), strict=True))
        return np.stack([known[row] for row in rows])

    return images


def evaluate_held_out(
    model: nn.Module,
    features: FeatureParams,
    settings: EvaluateParams,
    device: torch.device,
    *,
    cache: Path,
    split: Path,
    raw: Path,
    noisy: Path,
    references: Path,
) -> HeldOut:
    """`model` (trained on `features`) on the feature `cache`'s val and test clips of `split`, with the clean and
    noisy audio of `raw` and `noisy` and the model-free methods' scores saved in `references`."""
    clean_images, noisy_images, index = open_features(cache)
    table = evaluated_clips(index, cache, split, raw, settings.age_bands, settings.test_reps)
    test = table[table.split == "test"].reset_index(drop=True)
    quality, estimates = model_quality(
        model, held_out_set(test, raw, noisy, features.sample_rate), references, features, settings, device
    )
    if isinstance(model, SpectralDenoiser):  # the test clips' images from the estimates just made, not again
        peaks = index.noisy_db_max.to_numpy()[test.row]
        known = {row: estimate_image(e, p, features) for row, e, p in zip(test.row, estimates, peaks, strict=True)}
        scored = _native_images(model, index, noisy, features, device, known)
    else:
        scored = model
    table["mse"], table["identity_mse"] = score_spectrograms(
        scored, clean_images, noisy_images, table.row.to_numpy(), settings.batch_size, device
    )
    test = table[table.split == "test"].reset_index(drop=True)
    overall = method_means(quality.scores, quality.stoi["speaker"], quality.estoi)
    metrics = flat_metrics(table) | {
        f"test.{method}.{metric}": rounded(overall.loc[method, metric])
        for method in overall.index
        for metric in QUALITY_METRICS
    }
    means, tables = {}, {}
    for by in GROUP_TABLES:
        means[by] = group_means(test, by)
        by_group = group_quality(quality.scores, test[by], quality.stoi[by]).reset_index()
        tables[by] = means[by][[by, "mse", "identity_mse", "clips"]].merge(by_group, on=by, validate="one_to_one")
    return HeldOut(metrics, overall, means, tables)
