"""Every method's speech quality on a `ClipSet`: the model-free methods' once (the `references` stage saves
it), the model's methods' after each model change, joined with the saved scores.

The model-free methods give the same audio whatever the model, so an experiment that changes only training
scores just the model's two methods; the saved scores are checked to be of the same clips, groups and settings.
"""

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..names import METHODS, MODEL_FREE, MODEL_METHODS
from ..params import EvaluateParams, FeatureParams
from .clip_sets import ClipSet
from .methods import apply_methods, model_free_context
from .speech import Quality, score_methods


def _scored(outputs: dict[str, list[np.ndarray]], clips: ClipSet, rate: int, settings: EvaluateParams) -> Quality:
    return score_methods(
        clips.clean,
        outputs,
        rate,
        settings.workers,
        settings.pesq_every,
        clips.groupings,
        clips.extended_by,
        clips.positions,
    )


def save_model_free_quality(
    clips: ClipSet, folder: Path, features: FeatureParams, settings: EvaluateParams, device: torch.device
) -> None:
    """Score the model-free methods on `clips` into `folder` (which exists), for `model_quality` to join."""
    outputs = apply_methods(None, clips.clean, clips.noisy, features, settings, device, MODEL_FREE).outputs
    quality = _scored(outputs, clips, features.sample_rate, settings)
    quality.save(folder, clips.keys, model_free_context(features, settings))


def model_quality(
    model: nn.Module,
    clips: ClipSet,
    references: Path,
    features: FeatureParams,
    settings: EvaluateParams,
    device: torch.device,
) -> tuple[Quality, list[np.ndarray]]:
    """Every method's `Quality` on `clips`: the model's methods scored here, the others from `references` (saved by
    `save_model_free_quality` for the same clips); and the model's clean mel estimate of each clip."""
    run = apply_methods(model, clips.clean, clips.noisy, features, settings, device, MODEL_METHODS)
    ours = _scored(run.outputs, clips, features.sample_rate, settings)
    context = model_free_context(features, settings)
    saved = Quality.load(references, clips.keys, clips.groupings, clips.extended_by, context)
    return saved.join(ours, METHODS), run.estimates
