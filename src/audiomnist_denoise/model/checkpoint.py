"""The trained model on disk: weights plus everything inference needs, as a plain dict of tensors and
primitives, so it loads with `torch.load(path, weights_only=True)`."""

from pathlib import Path

import torch
from pydantic import ValidationError
from torch import nn

from ..errors import PipelineError
from ..fsutil import atomic_file
from ..params import FeatureParams
from .spectral import build_network

CHECKPOINT_KIND = "audiomnist-denoise-unet"


def save_checkpoint(path: Path, model: nn.Module, config: dict) -> None:
    """Weights plus everything inference needs (`config`: model, features, normalisation), atomically."""
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    with atomic_file(path) as partial:
        torch.save({"kind": CHECKPOINT_KIND, "state_dict": state, "config": config}, partial)


def _read(path: Path, device: str | torch.device) -> dict:
    """The checkpoint's dict; an error naming the file if it is not one of ours."""
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise PipelineError(f"{path}: no such model file (run the train stage)") from None
    except Exception as exc:  # torch raises many kinds for a file that is not a checkpoint
        raise PipelineError(f"{path}: not a readable model checkpoint ({type(exc).__name__})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("kind") != CHECKPOINT_KIND:
        raise PipelineError(f"{path}: not an audiomnist-denoise U-Net checkpoint")
    return checkpoint


def read_config(path: Path) -> dict:
    """The config a checkpoint was saved with, without building its model."""
    return _read(path, "cpu")["config"]


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """The model (in eval mode, on `device`) and its config; an error naming the file if it is not one of ours."""
    checkpoint = _read(path, device)
    config = checkpoint["config"]
    native = config["model"].get("input") == "native"  # the study's U-Net needs no feature settings to load
    model = build_network(config["model"], checkpoint_features(config, path) if native else None)
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval(), config


def checkpoint_features(config: dict, source: Path) -> FeatureParams:
    """The feature settings the model in `source` was trained with, as its checkpoint records them."""
    try:
        return FeatureParams.model_validate(config["features"])
    except (KeyError, ValidationError) as exc:
        raise PipelineError(f"{source}: no valid feature settings in the checkpoint ({type(exc).__name__})") from None


def load_model(path: Path, device: str | torch.device = "cpu") -> tuple[nn.Module, FeatureParams]:
    """The model in `path` (in eval mode, on `device`) and the feature settings it was trained with."""
    model, config = load_checkpoint(path, device)
    return model, checkpoint_features(config, path)
