"""Training a network on a `tasks.Task`: Adam with a warm-up and a constant or cosine schedule,
validation every few steps, and state that can be saved at any step and restored to continue exactly
(see `Trainer`, `resume`).

The task defines the loss (`train.loss`): by default (`compressed_si_sdr`) the error between the
denoised and the clean STFT magnitude, each compressed to the power 0.3, less a little of the denoised
audio's SI-SDR (`audio_task.AudioTask`); `compressed` leaves out the SI-SDR; `mse` is the error
between the network's output and its ideal: the clean image of the study's track (`tasks.Pairs`) or
the native track's ideal mask or mapping.

The training set sits in memory: the study's images as one tensor, so a batch is a slice of it, and the
native track's clips as padded audio, from which a batch is cut (and mixed with fresh noise clip by clip).
Under torchrun, several processes share each global batch (see `distributed`). Mixed precision where it
pays, and channels-last images for the study's track (`devices`), make each step faster than plain fp32;
the weights and the optimiser stay fp32.
"""

import copy
import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from ..devices import memory_format, resolve_precision
from ..errors import PipelineError
from ..params import TrainParams
from . import resume
from .distributed import ALONE, World, max_across, per_rank_batch, rank_batches, sum_across, wrap
from .tasks import Task


@dataclass(frozen=True)
class TrainResult:
    precision: str  # the one used: fp32, bf16 or fp16
    processes: int  # the ranks that shared each batch
    steps: int
    resumed_from_step: int  # 0 for a run from the start
    final_train_loss: float
    final_val_loss: float
    best_val_loss: float
    best_step: int
    identity_val_loss: float  # the noisy input taken as the output
    seconds: float


def train_step(
    optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, loss_of_batch: Callable[[], torch.Tensor]
) -> torch.Tensor:
    """One optimisation step: the batch's loss (forward at the task's precision, the loss in fp32),
    backward (scaled for fp16), update. Returns the loss tensor (no host sync)."""
    optimizer.zero_grad(set_to_none=True)
    loss = loss_of_batch()
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss


def new_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling for fp16, whose small gradients would underflow; a pass-through otherwise."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def learning_rate_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """The multiple of `train.lr` for the 0-based `step`: a linear warm-up over `warmup_steps`, then
    constant or a cosine decay towards zero at `total_steps`. The decay lets a short run settle instead of
    ending wherever its last noisy updates left it (docs/performance.md)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * progress))


def new_lr_scheduler(optimizer: torch.optim.Optimizer, params: TrainParams, total_steps: int):
    """`learning_rate_factor` as a PyTorch scheduler, stepped once per optimisation step."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, total_steps, params.warmup_steps, params.schedule)
    )


Logger = Callable[[int, dict[str, float]], None]  # (step, {name: value}) for each logged step
Saver = Callable[[dict, str], None]  # (trainer state, run fingerprint), e.g. ResumePoint.save


class Trainer:
    """One training run as state that can be saved after any step and restored to continue exactly.

    Every step logs `train/loss`; every `val_every` steps and after the last one, `val/loss`.
    `train` and `val` are `Task`s: `tasks.Pairs` (the study's cached images) or `audio_task.AudioTask`
    (audio made into spectrograms on the fly, with fixed or fresh noise).
    The forward pass runs at `params.precision` (see `resolve_precision`). Each epoch's order
    comes from `seed + epoch` alone, so on CPU a run saved at any step and resumed ends with
    the same weights, bit for bit, as one never stopped.

    In a `world` of several processes each rank trains on its share of every global batch
    of `params.batch_size` clips and validates on its share of the validation clips; the
    losses logged are those of the whole batch and of all validation clips.
    """

    def __init__(
        self, model: nn.Module, train: Task, val: Task, params: TrainParams, device: torch.device, world: World = ALONE
    ):
        self.train_task, self.val_task, self.params, self.device, self.world = train, val, params, device, world
        self.precision = resolve_precision(params.precision, device, "train.precision")
        self.val_share = val.share(world.rank, world.size)
        per_rank_batch(params.batch_size, world)  # a batch that does not divide fails before any work
        # What a resume point must share with this run; taken before any step changes the weights.
        settings = {
            "train": params.model_dump(exclude={"checkpoint_every"}),
            "precision": self.precision,
            "device": device.type,
            "processes": world.size,
            "torch": torch.__version__,
            "model": repr(model),
        }
        tensors = [*model.state_dict().values(), *train.tensors, *val.tensors]
        self.fingerprint = resume.fingerprint(settings, tensors)
        self.model = model.to(device, memory_format=memory_format(self.precision, device))
        self.step_model = wrap(model, device, world)
        if params.compile:
            self.step_model = torch.compile(self.step_model)
        # DDP wants every rank in each of its forward passes; validation shares need not be equal, and
        # every rank holds the same weights and BatchNorm statistics, so validation runs on the model itself.
        self.eval_model = self.model if world.distributed else self.step_model
        self.optimizer = torch.optim.Adam(model.parameters(), lr=params.lr)
        self.scaler = new_scaler(self.precision, device)
        self.steps_per_epoch = math.ceil(len(train) / params.batch_size)
        self.total_steps = self.steps_per_epoch * params.epochs
        self.scheduler = new_lr_scheduler(self.optimizer, params, self.total_steps)
        self.step = 0
        self.train_loss = self.val_loss = math.nan
        self.best_val, self.best_step, self.best_weights = math.inf, 0, None
        self.history: list[tuple[int, dict[str, float]]] = []  # everything logged, for a resumed run's log
        torch.manual_seed(params.seed)

    def state_dict(self) -> dict:
        """Everything a resumed run needs, as plain data for `torch.save` and `torch.load(weights_only=True)`."""
        return {
            "step": self.step,
            "epoch": self.step // self.steps_per_epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "best": {"val_loss": self.best_val, "step": self.best_step, "weights": self.best_weights},
            "history": self.history,
            "random": resume.random_states(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.step = state["step"]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.train_loss, self.val_loss = state["train_loss"], state["val_loss"]
        best = state["best"]
        self.best_val, self.best_step, self.best_weights = best["val_loss"], best["step"], best["weights"]
        self.history = [(step, dict(values)) for step, values in state["history"]]
        resume.set_random_states(state["random"])

    def run(
        self, log: Logger, progress=None, save: Saver | None = None, save_every: int = 0
    ) -> tuple[nn.Module, TrainResult]:
        """Train from the current step to the last; returns the weights with the best validation loss.

        `log` gets each step's values (after a resume, the earlier steps are not logged again:
        `history` holds them). `progress`, if given, is updated once per step (a tqdm bar, say).
        `save`, if given, gets the state every `save_every` steps (not after the last one).
        """
        started, resumed_from = time.perf_counter(), self.step
        params = self.params
        while self.step < self.total_steps:
            epoch, first = divmod(self.step, self.steps_per_epoch)
            batches = rank_batches(len(self.train_task), params.batch_size, params.seed, epoch, self.world)
            for batch in batches[first:]:
                self._train_on(batch)
                values = {"train/loss": self.train_loss}
                if self.step % params.val_every == 0 or self.step == self.total_steps:
                    values["val/loss"] = self._validate()
                self.history.append((self.step, values))
                log(self.step, values)
                if progress is not None:
                    progress.set_postfix(
                        epoch=f"{epoch + 1}/{params.epochs}", loss=f"{self.train_loss:.4f}", val=f"{self.val_loss:.4f}"
                    )
                    progress.update()
                if save is not None and save_every and self.step % save_every == 0 and self.step < self.total_steps:
                    save(self.state_dict(), self.fingerprint)
        self.model.load_state_dict(self.best_weights)
        self.model.to(memory_format=torch.contiguous_format)
        result = TrainResult(
            precision=self.precision,
            processes=self.world.size,
            steps=self.step,
            resumed_from_step=resumed_from,
            final_train_loss=self.train_loss,
            final_val_loss=self.val_loss,
            best_val_loss=self.best_val,
            best_step=self.best_step,
            identity_val_loss=self.val_task.identity_loss(),
            seconds=time.perf_counter() - started,
        )
        return self.model, result

    def _train_on(self, batch: torch.Tensor) -> None:
        self.model.train()
        task, model = self.train_task, self.step_model
        extent = task.extent(batch)
        if extent is not None:  # every rank cuts its share to the global batch's extent, as one process would
            extent = max_across(extent, world=self.world)
        data = task.batch(batch, self.step, self.device, self.precision, extent)
        with out_of_memory_explained(self.params.batch_size, self.device):
            loss = train_step(self.optimizer, self.scaler, partial(task.loss, model, data, self.precision))
        self.scheduler.step()
        (total,) = sum_across(loss.item(), world=self.world)  # the shares are equal: the mean of means
        self.train_loss = total / self.world.size
        self.step += 1

    def _validate(self) -> float:
        with out_of_memory_explained(self.params.batch_size, self.device):
            share = self.val_share.error(self.eval_model, self.params.batch_size, self.device, self.precision)
            total, count = sum_across(*share, world=self.world)
            self.val_loss = total / count
        if self.val_loss < self.best_val:
            self.best_val, self.best_step = self.val_loss, self.step
            self.best_weights = copy.deepcopy(self.model.state_dict())
        return self.val_loss


@contextmanager
def out_of_memory_explained(batch_size: int, device: torch.device):
    """A device out-of-memory error as one line with the batch size and what to try, not a traceback."""
    try:
        yield
    except torch.OutOfMemoryError:
        raise PipelineError(
            f"out of memory on {device} at train.batch_size {batch_size}: try a smaller train.batch_size "
            f"(e.g. {max(1, batch_size // 2)}) or train.precision bf16 or fp16, which halve the activations"
        ) from None
