"""Stage `train`: the U-Net on data/features, logged with dvclive; writes models/unet.pt.

With train.nproc above 1 the stage runs itself again under torchrun as that many
processes on this machine (data-parallel, see `distributed`). Launched by torchrun
directly (`torchrun --nproc-per-node 4 stages/train.py`, or across nodes) it trains with
the processes torchrun started. Only rank 0 logs and writes files.

An interrupted run (Ctrl-C, a killed job) leaves a resume point in checkpoints/, and the
next run of the stage continues from it when params, data and initial weights match.
checkpoints/ is git-ignored and not a DVC output: DVC deletes a stage's outputs before
running it, and a `persist: true` output would switch off DVC's run cache for the stage.
"""

import logging
import sys
import time
from pathlib import Path

import torch
from _stage import run
from tqdm import tqdm

from audiomnist_denoise.data.noise import noise_maker
from audiomnist_denoise.devices import resolve_device
from audiomnist_denoise.layout import FEATURES, LIVE, MODEL, NOISY, RAW, RESUME_POINT, SPLIT
from audiomnist_denoise.model.checkpoint import save_checkpoint
from audiomnist_denoise.model.spectral import new_network
from audiomnist_denoise.params import Params, load_params
from audiomnist_denoise.training.audio_task import AudioTask, load_audio_clips
from audiomnist_denoise.training.distributed import (
    World,
    broadcast,
    launched_by_torchrun,
    process_group,
    relaunch_under_torchrun,
)
from audiomnist_denoise.training.loop import Trainer
from audiomnist_denoise.training.resume import ResumePoint
from audiomnist_denoise.training.tasks import load_pairs
from dvclive import Live

# How a prediction is denormalised, for inference (see features.prediction_db_range).
NORMALISATION = {
    "resized": "min-max per spectrogram; predictions denormalised to [noisy peak - top_db, noisy peak]",
    "native": "see model.normalisation and model.target (model/spectral.py)",
}
log = logging.getLogger("train")


def main() -> str:
    params = load_params()
    if params.train.nproc > 1 and not launched_by_torchrun():
        relaunch_under_torchrun(params.train.nproc)
        return f"trained by {params.train.nproc} processes under torchrun"
    world = World.from_env()
    with process_group(world, resolve_device(params.train.device, "train.device")) as device:
        summary = train(params, world, device)
    if not world.is_main:
        sys.exit(0)  # rank 0 alone reports
    return summary


def tasks(params: Params, model: torch.nn.Module) -> tuple:
    """The train and val tasks of the model's track: cached images, or audio (with fresh noise if asked)."""
    if params.model.input == "resized":
        pairs = load_pairs(FEATURES, SPLIT, ("train", "val"))
        return pairs["train"], pairs["val"]
    rate = params.features.sample_rate
    clips = load_audio_clips(RAW, NOISY, SPLIT, ("train", "val"), rate)
    noise, fresh = params.noise, None
    if params.train.noise == "fresh":
        fresh = noise_maker(noise.kind, RAW, noise.babble_talkers, Path(noise.dir))
    train_task = AudioTask(clips["train"], model, params.train, rate, fresh)
    if params.model.normalisation == "dataset":
        model.fit_normalisation(train_task.training_inputs())
    return train_task, AudioTask(clips["val"], model, params.train, rate)


def train(params: Params, world: World, device: torch.device) -> str:
    model = new_network(params.model, params.features, params.train.seed)
    train_task, val_task = tasks(params, model)
    trainer = Trainer(model, train_task, val_task, params.train, device, world)
    resume_point = ResumePoint(RESUME_POINT)
    state, why = broadcast(resume_point.load(trainer.fingerprint) if world.is_main else None, world)
    if state is not None:
        trainer.load_state_dict(state)
    if not world.is_main:
        trainer.run(lambda step, values: None)
        return ""
    log.info(why)
    # dvclive's defaults would rewrite dvc.yaml and start a DVC experiment: dvc.yaml declares its outputs.
    with (
        Live(dir=str(LIVE), save_dvc_exp=False, dvcyaml=None) as live,
        tqdm(total=trainer.total_steps, initial=trainer.step, desc=f"train ({device})") as bar,
    ):

        def log_values(step: int, values: dict[str, float]) -> None:
            live.step = step
            for name, value in values.items():
                live.log_metric(name, value)

        for step, values in trainer.history:  # the steps before a resume: the curve has no gap
            log_values(step, values)
        started = time.perf_counter()
        model, result = trainer.run(log_values, bar, resume_point.save, params.train.checkpoint_every)
        # the machine's speed, not the model's: for `dvc exp show`; `make check` shows it without comparing
        live.log_metric("train_seconds", round(time.perf_counter() - started, 1), plot=False)
        live.log_metric("val/best_loss", result.best_val_loss, plot=False)
        live.log_metric("val/identity_loss", result.identity_val_loss, plot=False)
    config = {
        "model": params.model.model_dump(),
        "features": params.features.model_dump(),
        "normalisation": NORMALISATION[params.model.input],
        "train": params.train.model_dump(exclude={"checkpoint_every"}),
        "best_step": result.best_step,
        "precision": result.precision,
    }
    save_checkpoint(MODEL, model, config)
    resume_point.remove()
    processes = f", {result.processes} processes" if result.processes > 1 else ""
    resumed = f", resumed from step {result.resumed_from_step}" if result.resumed_from_step else ""
    return (
        f"{result.steps} steps on {len(train_task)} clips ({device}, {result.precision}{processes}{resumed}): "
        f"best val loss {result.best_val_loss:.5f} "
        f"at step {result.best_step}, identity {result.identity_val_loss:.5f}, "
        f"ratio {result.best_val_loss / result.identity_val_loss:.3f}; {MODEL}"
    )


if __name__ == "__main__":
    run(main)
