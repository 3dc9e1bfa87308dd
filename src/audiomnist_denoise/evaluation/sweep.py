"""The `sweep` stage's tables: every method's speech quality at each SNR of `evaluate.snr_sweep`."""

from pathlib import Path

import pandas as pd
import torch
from torch import nn

from ..names import METHODS, QUALITY_METRICS
from ..params import EvaluateParams, FeatureParams
from .clip_sets import SWEEP_GROUPING, SweepSet, group_label
from .scoring import model_quality
from .speech import method_means


def sweep_tables(
    model: nn.Module,
    sweep: SweepSet,
    references: Path,
    features: FeatureParams,
    settings: EvaluateParams,
    device: torch.device,
) -> dict[str, pd.DataFrame]:
    """Per metric of QUALITY_METRICS, one row per SNR (index `snr_db`) and one column per method, in METHODS'
    order: the mean SI-SDR and PESQ over the clips at that SNR, the mean STOI and ESTOI over its speakers. Every
    SNR's mixes go through the methods and the scores together: one pass, one set of worker pools."""
    quality, _ = model_quality(model, sweep.mixes, references, features, settings, device)
    speakers = sorted({clip.speaker for clip in sweep.clips})
    rows = []
    for snr in settings.snr_sweep:
        at = [group_label(snr, speaker) for speaker in speakers]
        scores = quality.scores[sweep.snrs == snr]
        means = method_means(scores, quality.stoi[SWEEP_GROUPING].loc[at], quality.estoi.loc[at])
        rows.append(means.assign(snr_db=snr))
    table = pd.concat(rows).reset_index()
    return {
        metric: table.pivot(index="snr_db", columns="method", values=metric)[list(METHODS)]
        for metric in QUALITY_METRICS
    }
