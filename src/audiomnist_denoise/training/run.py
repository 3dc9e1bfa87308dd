"""The train stage's run as library calls: the tasks and the trainer from params and the data's paths,
a resume point taken up on every rank, the run with its values logged, the checkpoint's config and a summary.
Nothing here reads params.yaml, prints or exits: stages/train.py does that.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from ..data.noise import noise_maker
from ..model.spectral import new_network
from ..params import Params
from .audio_task import AudioTask, store_audio_clips
from .distributed import World, broadcast
from .loop import Saver, Trainer, TrainResult
from .resume import ResumePoint
from .tasks import Task, load_pairs

# How a prediction is denormalised, for inference (see features.prediction_db_range).
NORMALISATION = {
    "resized": "min-max per spectrogram; predictions denormalised to [noisy peak - top_db, noisy peak]",
    "native": "see model.normalisation and model.target (model/spectral.py)",
}


@dataclass(frozen=True)
class TrainingData:
    """Where the train stage's inputs lie (`layout` names the pipeline's)."""

    raw: Path  # the clean clips (and the babble noise's talkers)
    noisy: Path  # the mix stage's noisy copies
    features: Path  # the feature cache: the resized track's images
    split: Path  # which clips are train and val
    store: Path  # an empty scratch folder the native track's clips are stored in as training reads them


def build_tasks(params: Params, model: nn.Module, data: TrainingData) -> tuple[Task, Task]:
    """The train and val tasks of the model's track: cached images, or audio (with fresh noise if asked).
    On the native track with the dataset normalisation, `model`'s normalisation is fitted to the training inputs."""
    if params.model.input == "resized":
        pairs = load_pairs(data.features, data.split, ("train", "val"))
        return pairs["train"], pairs["val"]
    rate = params.features.sample_rate
    clips = store_audio_clips(data.raw, data.noisy, data.split, ("train", "val"), rate, data.store)
    noise, fresh = params.noise, ()
    if params.train.noise == "fresh":
        # babble of the training clips alone: no validation or test clip's speech is ever trained on
        needed_by = "train.noise_kinds" if params.train.noise_kinds else "noise.kind"
        kinds = params.train.noise_kinds or [noise.kind]
        talkers = clips["train"].clips
        fresh = tuple(
            noise_maker(kind, data.raw, noise.babble_talkers, Path(noise.dir), talkers, needed_by) for kind in kinds
        )
    train_task = AudioTask(clips["train"], model, params.train, rate, fresh)
    if params.model.normalisation == "dataset":
        model.fit_normalisation(train_task.training_inputs())
    return train_task, AudioTask(clips["val"], model, params.train, rate)


def resumed_trainer(
    params: Params, data: TrainingData, world: World, device: torch.device, resume_point: ResumePoint
) -> tuple[Trainer, str]:
    """A trainer of a freshly initialised network on the tasks of `params`, at the step of `resume_point` where
    that holds this very run (rank 0 reads it and every rank takes it up); and one line on why it resumed or not."""
    model = new_network(params.model, params.features, params.train.seed)
    train_task, val_task = build_tasks(params, model, data)
    trainer = Trainer(model, train_task, val_task, params.train, device, world)
    state, why = broadcast(resume_point.load(trainer.fingerprint) if world.is_main else None, world)
    if state is not None:
        trainer.load_state_dict(state)
    return trainer, why


class MetricLog(Protocol):
    """Where a run's values go, as dvclive's `Live` takes them: each step's under `step`, and the whole run's."""

    step: int

    def log_metric(self, name: str, value: float, plot: bool = True) -> None: ...


def train_logged(
    trainer: Trainer, metrics: MetricLog, progress=None, save: Saver | None = None, save_every: int = 0
) -> tuple[nn.Module, TrainResult]:
    """`Trainer.run` with its values in `metrics`: first the steps of the run before a resume (the curves have no
    gap), then each new step's, then the whole run's best and identity validation loss and its time."""

    def log_step(step: int, values: dict[str, float]) -> None:
        metrics.step = step
        for name, value in values.items():
            metrics.log_metric(name, value)

    for step, values in trainer.history:
        log_step(step, values)
    model, result = trainer.run(log_step, progress, save, save_every)
    # the machine's speed, not the model's: for `dvc exp show`; `make check` shows it without comparing
    metrics.log_metric("train_seconds", round(result.seconds, 1), plot=False)
    metrics.log_metric("val/best_loss", result.best_val_loss, plot=False)
    metrics.log_metric("val/identity_loss", result.identity_val_loss, plot=False)
    return model, result


def checkpoint_config(params: Params, result: TrainResult) -> dict:
    """What the checkpoint says about its model: how to rebuild it and read its output, and how it was trained
    (without checkpoint_every, which never changes the weights)."""
    return {
        "model": params.model.model_dump(),
        "features": params.features.model_dump(),
        "normalisation": NORMALISATION[params.model.input],
        "train": params.train.model_dump(exclude={"checkpoint_every"}),
        "best_step": result.best_step,
        "precision": result.precision,
    }


def run_summary(result: TrainResult, clips: int, device: torch.device) -> str:
    """One line on the run: steps, where and how, and the best validation loss against the identity's."""
    processes = f", {result.processes} processes" if result.processes > 1 else ""
    resumed = f", resumed from step {result.resumed_from_step}" if result.resumed_from_step else ""
    return (
        f"{result.steps} steps on {clips} clips ({device}, {result.precision}{processes}{resumed}): "
        f"best val loss {result.best_val_loss:.5f} "
        f"at step {result.best_step}, identity {result.identity_val_loss:.5f}, "
        f"ratio {result.best_val_loss / result.identity_val_loss:.3f}"
    )
