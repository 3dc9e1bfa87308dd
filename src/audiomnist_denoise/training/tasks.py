"""What the `Trainer` trains on: the `Task` protocol, and the study's task on cached images (`Pairs`).

A task owns its data and its loss; the trainer owns the order of batches, the optimiser, validation,
resume points and the processes. The native track's task on audio is `audio_task.AudioTask`.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from ..data.splits import read_split
from ..devices import autocast, to_device
from ..errors import PipelineError
from ..features.cache import open_features

Batch = tuple[torch.Tensor, ...]  # a task's own tensors for one batch, on the device


@runtime_checkable
class Task(Protocol):
    """A training or validation set and its loss, as the `Trainer` uses it: every method below, and no other.

    Rows are indices into the task's clips. A task used for training must give the same batch for the
    same rows and step in any process, so that data-parallel and resumed runs follow a single one.
    """

    def __len__(self) -> int:
        """The clips."""
        ...

    @property
    def tensors(self) -> list[torch.Tensor]:
        """What the run depends on, for a resume point's fingerprint."""
        ...

    def share(self, rank: int, size: int) -> "Task":
        """Every `size`-th clip from `rank`: one process's part of validation."""
        ...

    def extent(self, rows: torch.Tensor) -> int | None:
        """How long a batch of `rows` must be (the trainer gives every rank the global batch's largest),
        or None where every clip has one size."""
        ...

    def batch(
        self, rows: torch.Tensor, step: int, device: torch.device, precision: str, extent: int | None = None
    ) -> Batch:
        """The tensors of `rows` at training `step`, on `device`, cut to `extent`."""
        ...

    def loss(self, model: nn.Module, batch: Batch, precision: str) -> torch.Tensor:
        """The scalar loss of `model` on `batch`, with the forward pass at `precision`; the loss in fp32."""
        ...

    def error(self, model: nn.Module, batch_size: int, device: torch.device, precision: str) -> tuple[float, int]:
        """The validation error summed over the whole task and what it is a sum over (pixels, clips), in
        evaluation mode: ranks add both up, so the validation loss is the ratio of the totals."""
        ...

    def identity_loss(self) -> float:
        """The validation error of taking the noisy input as the output: the baseline a model must beat."""
        ...


@dataclass(frozen=True)
class Pairs:
    """The study's `Task`: noisy inputs and clean targets, (N, 1, H, W) float32 images from the feature
    cache; the loss is the MSE between the model's image and the clean one."""

    noisy: torch.Tensor
    clean: torch.Tensor

    def __len__(self) -> int:
        return len(self.noisy)

    @property
    def tensors(self) -> list[torch.Tensor]:
        """What a resume point's fingerprint covers."""
        return [self.noisy, self.clean]

    def share(self, rank: int, size: int) -> "Pairs":
        """Every `size`-th clip from `rank`: one process's part of validation."""
        return Pairs(noisy=self.noisy[rank::size], clean=self.clean[rank::size])

    def extent(self, rows: torch.Tensor) -> None:
        """Images all have one size: nothing to cut to a batch."""
        return None

    def batch(
        self, rows: torch.Tensor, step: int, device: torch.device, precision: str, extent: int | None = None
    ) -> tuple[torch.Tensor, ...]:
        """(noisy, clean) of `rows` on `device`; `extent` is always None (see `extent`)."""
        return tuple(to_device(images[rows], device, precision) for images in (self.noisy, self.clean))

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, ...], precision: str) -> torch.Tensor:
        noisy, clean = batch
        with autocast(precision, noisy.device):
            output = model(noisy)
        return functional.mse_loss(output.float(), clean)

    def error(self, model: nn.Module, batch_size: int, device: torch.device, precision: str) -> tuple[float, int]:
        return squared_error(model, self, batch_size, device, precision)

    def identity_loss(self) -> float:
        return identity_loss(self)


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
def squared_error(
    model: nn.Module, pairs: Pairs, batch_size: int, device: torch.device, precision: str = "fp32"
) -> tuple[float, int]:
    """The sum of squared errors over all pixels of `pairs` and their count, in evaluation mode (in fp32)."""
    model.eval()
    total = 0.0
    for start in range(0, len(pairs), batch_size):
        noisy = to_device(pairs.noisy[start : start + batch_size], device, precision)
        clean = to_device(pairs.clean[start : start + batch_size], device, precision)
        with autocast(precision, device):
            output = model(noisy)
        total += functional.mse_loss(output.float(), clean, reduction="sum").item()
    return total, pairs.clean.numel()


def identity_loss(pairs: Pairs) -> float:
    """The baseline: the noisy spectrogram taken as the denoised one."""
    return functional.mse_loss(pairs.noisy, pairs.clean).item()
