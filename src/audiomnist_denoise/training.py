"""Training the U-Net on noisy -> clean spectrograms: MSE, Adam, validation every few steps.

The whole training set sits in memory as one tensor, so a step is a slice of it and
no Python runs per sample.
"""

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional

from .errors import PipelineError
from .feature_cache import open_features
from .model import UNet
from .params import TrainParams
from .splits import read_split


@dataclass(frozen=True)
class Pairs:
    """Noisy inputs and clean targets, (N, 1, H, W) float32."""

    noisy: torch.Tensor
    clean: torch.Tensor

    def __len__(self) -> int:
        return len(self.noisy)


@dataclass(frozen=True)
class TrainResult:
    steps: int
    final_train_loss: float
    final_val_loss: float
    best_val_loss: float
    best_step: int
    identity_val_loss: float  # the noisy input taken as the output
    seconds: float


def load_pairs(features: Path, split_file: Path, splits: tuple[str, ...]) -> dict[str, Pairs]:
    """The clips of each named split from the feature cache, in memory."""
    clean, noisy, index = open_features(features)
    split = read_split(split_file).set_index("clip_id").split
    missing = sorted(set(index.clip_id) ^ set(split.index))
    if missing:
        raise PipelineError(f"{features} and {split_file} disagree on {len(missing)} clip(s), e.g. {missing[0]}; rerun")
    membership = index.clip_id.map(split).to_numpy()
    pairs = {}
    for name in splits:
        rows = np.flatnonzero(membership == name)
        if len(rows) == 0:
            raise PipelineError(f"{split_file}: no {name} clips")
        pairs[name] = Pairs(noisy=_as_tensor(noisy, rows), clean=_as_tensor(clean, rows))
    return pairs


def _as_tensor(images: np.ndarray, rows: np.ndarray) -> torch.Tensor:
    """Rows of an (N, H, W) array, e.g. a float16 memory map, as (n, 1, H, W) float32."""
    return torch.from_numpy(np.asarray(images[rows], dtype=np.float32)).unsqueeze(1)


@torch.no_grad()
def mean_loss(model: UNet, pairs: Pairs, batch_size: int, device: torch.device) -> float:
    """Mean squared error over all pixels of `pairs`, in evaluation mode."""
    model.eval()
    total = 0.0
    for start in range(0, len(pairs), batch_size):
        noisy = pairs.noisy[start : start + batch_size].to(device)
        clean = pairs.clean[start : start + batch_size].to(device)
        total += functional.mse_loss(model(noisy), clean, reduction="sum").item()
    return total / pairs.clean.numel()


def identity_loss(pairs: Pairs) -> float:
    """The baseline: the noisy spectrogram taken as the denoised one."""
    return functional.mse_loss(pairs.noisy, pairs.clean).item()


Logger = Callable[[int, dict[str, float]], None]  # (step, {name: value}) for each logged step


def train(
    model: UNet, train: Pairs, val: Pairs, params: TrainParams, device: torch.device, log: Logger, progress=None
) -> tuple[UNet, TrainResult]:
    """Train `model` in place; returns the weights with the best validation loss and a summary.

    Every step logs `train/loss`; every `val_every` steps and after the last one, `val/loss`.
    `progress`, if given, is updated once per step (a tqdm bar, say).
    """
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(params.seed)
    torch.manual_seed(params.seed)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=params.lr)
    steps_per_epoch = math.ceil(len(train) / params.batch_size)
    total_steps = steps_per_epoch * params.epochs
    best_val, best_step, best_state, val_loss, loss = math.inf, 0, None, math.nan, math.nan
    step = 0
    for epoch in range(params.epochs):
        order = torch.randperm(len(train), generator=generator)
        for batch in order.split(params.batch_size):
            model.train()
            noisy, clean = train.noisy[batch].to(device), train.clean[batch].to(device)
            optimizer.zero_grad(set_to_none=True)
            loss_tensor = functional.mse_loss(model(noisy), clean)
            loss_tensor.backward()
            optimizer.step()
            step += 1
            loss = loss_tensor.item()
            logged = {"train/loss": loss}
            if step % params.val_every == 0 or step == total_steps:
                val_loss = mean_loss(model, val, params.batch_size, device)
                logged["val/loss"] = val_loss
                if val_loss < best_val:
                    best_val, best_step = val_loss, step
                    best_state = copy.deepcopy(model.state_dict())
            log(step, logged)
            if progress is not None:
                progress.set_postfix(epoch=f"{epoch + 1}/{params.epochs}", loss=f"{loss:.4f}", val=f"{val_loss:.4f}")
                progress.update()
    model.load_state_dict(best_state)
    result = TrainResult(
        steps=step,
        final_train_loss=loss,
        final_val_loss=val_loss,
        best_val_loss=best_val,
        best_step=best_step,
        identity_val_loss=identity_loss(val),
        seconds=time.perf_counter() - started,
    )
    return model, result
