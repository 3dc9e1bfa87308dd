"""Stage `train`: the U-Net on data/features or on data/raw and data/noisy, logged with dvclive; writes models/unet.pt.

With train.nproc above 1 the stage reruns itself under torchrun as that many processes (`distributed`); only rank 0
logs and writes. An interrupted run leaves a resume point in checkpoints/ (`resume`; git-ignored, not a DVC output).
The native track's clips are stored for the run in a folder of data/stores (`store`), removed when it ends."""

import logging
import sys
import tempfile
from pathlib import Path

from _stage import run
from tqdm import tqdm

from audiomnist_denoise.devices import resolve_device
from audiomnist_denoise.layout import FEATURES, LIVE, MODEL, NOISY, RAW, RESUME_POINT, SPLIT, TRAINING_STORES
from audiomnist_denoise.model.checkpoint import save_checkpoint
from audiomnist_denoise.params import load_params
from audiomnist_denoise.training.distributed import World, launched_by_torchrun, process_group, relaunch_under_torchrun
from audiomnist_denoise.training.resume import ResumePoint
from audiomnist_denoise.training.run import TrainingData, checkpoint_config, resumed_trainer, run_summary, train_logged
from dvclive import Live


def main() -> str:
    params = load_params()
    if params.train.nproc > 1 and not launched_by_torchrun():
        relaunch_under_torchrun(params.train.nproc)
        return f"trained by {params.train.nproc} processes under torchrun"
    world, resume_point = World.from_env(), ResumePoint(RESUME_POINT)
    TRAINING_STORES.mkdir(parents=True, exist_ok=True)
    with (
        process_group(world, resolve_device(params.train.device, "train.device")) as device,
        tempfile.TemporaryDirectory(prefix="train-", dir=TRAINING_STORES) as store,
    ):
        data = TrainingData(RAW, NOISY, FEATURES, SPLIT, Path(store))
        trainer, why = resumed_trainer(params, data, world, device, resume_point)
        if not world.is_main:
            trainer.run(lambda step, values: None)
            sys.exit(0)  # rank 0 alone logs and writes
        logging.getLogger("train").info(why)
        # dvclive's defaults would rewrite dvc.yaml and start a DVC experiment: dvc.yaml declares its outputs.
        with (
            Live(dir=str(LIVE), save_dvc_exp=False, dvcyaml=None) as live,
            tqdm(total=trainer.total_steps, initial=trainer.step, desc=f"train ({device})") as bar,
        ):
            model, result = train_logged(trainer, live, bar, resume_point.save, params.train.checkpoint_every)
        save_checkpoint(MODEL, model, checkpoint_config(params, result))
        resume_point.remove()
    return f"{run_summary(result, len(trainer.train_task), device)}; {MODEL}"


if __name__ == "__main__":
    run(main)
