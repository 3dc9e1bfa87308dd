"""The train stage's run in-process (`training.run`): the tasks of each track from a tiny generated corpus,
a resume point taken up only by its own run, every value logged once, and the checkpoint's config."""

from pathlib import Path

import pytest
import torch
from conftest import REPO, make_corpus, small_features

from audiomnist_denoise.data.corpus import find_clips
from audiomnist_denoise.data.noise import mix_corpus, noise_maker
from audiomnist_denoise.data.splits import assign_splits
from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.features.cache import build_feature_cache
from audiomnist_denoise.model.spectral import new_network
from audiomnist_denoise.params import Params, load_params
from audiomnist_denoise.training.audio_task import AudioTask
from audiomnist_denoise.training.distributed import ALONE
from audiomnist_denoise.training.resume import ResumePoint
from audiomnist_denoise.training.run import (
    NORMALISATION,
    TrainingData,
    build_tasks,
    checkpoint_config,
    resumed_trainer,
    run_summary,
    train_logged,
)
from audiomnist_denoise.training.tasks import Pairs

CPU = torch.device("cpu")
NO_RESUME_POINT = ResumePoint(Path("/nonexistent/resume.pt"))
RESIZED = dict(input="resized", target="mapping", normalisation="per_clip")
STUDY_TRAINING = dict(loss="mse", noise="fixed")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> TrainingData:
    """3 speakers x 4 digits x 2 repetitions, mixed with white noise, split (speaker 03 for test) and featurized."""
    root = tmp_path_factory.mktemp("training")
    raw = make_corpus(root / "raw", speakers=("01", "02", "03"), digits=(0, 1, 2, 3), reps=2)
    mix_corpus(raw, root / "noisy", noise_maker("white", raw, 1, raw), -8.0, 0, 1)
    assign_splits(find_clips(raw), ["03"], 0.5, "clip", 0).to_csv(root / "split.csv", index=False)
    build_feature_cache(raw, root / "noisy", root / "features", small_features().model_copy(update={"workers": 1}))
    (root / "store").mkdir()
    return TrainingData(raw, root / "noisy", root / "features", root / "split.csv", root / "store")


def params(model: dict | None = None, **train) -> Params:
    """params.yaml with small features, a tiny U-Net and a short fp32 run on the CPU; `model` and `train` changes."""
    base = load_params(REPO / "params.yaml")
    run = dict(batch_size=4, epochs=1, val_every=2, device="cpu", precision="fp32", checkpoint_every=0) | train
    return base.model_copy(
        update={
            "features": small_features(),
            "model": base.model.model_copy(update={"channels": [4, 8]} | (model or {})),
            "train": base.train.model_copy(update=run),
        }
    )


def test_the_resized_track_trains_on_the_feature_caches_train_and_val_images(data):
    trainer, _ = resumed_trainer(params(RESIZED, **STUDY_TRAINING), data, ALONE, CPU, NO_RESUME_POINT)
    train, val = trainer.train_task, trainer.val_task
    assert isinstance(train, Pairs) and isinstance(val, Pairs)
    assert (len(train), len(val)) == (8, 8)  # speakers 01 and 02 halved into train and val, 03 is the test set
    assert train.noisy.shape == (8, 1, 16, 16) and not torch.equal(train.noisy, train.clean)


def test_the_native_track_trains_on_audio_with_fresh_noise_and_fits_the_normalisation(data):
    model = params().model  # params.yaml's: native, mask, dataset normalisation; train.noise fresh
    assert (model.input, model.normalisation) == ("native", "dataset")
    trainer, _ = resumed_trainer(params(), data, ALONE, CPU, NO_RESUME_POINT)
    train, val = trainer.train_task, trainer.val_task
    assert isinstance(train, AudioTask) and isinstance(val, AudioTask)
    assert (len(train), len(val)) == (8, 8)
    assert train.noise and not val.noise  # validation keeps the mix stage's copies
    assert train.denoiser is trainer.model and trainer.model.db_mean.item() != 0.0  # fitted to the training inputs


def test_training_noise_of_several_kinds_takes_its_babble_from_the_training_clips_alone(data, tmp_path):
    run = params(noise_kinds=["white", "babble"], noise_weights=None)
    train, val = build_tasks(run, new_network(run.model, run.features, 0), data)
    assert [maker.kind for maker in train.noise] == ["white", "babble"]
    assert train.noise[1].others == train.clips.clips  # no val or test clip (speaker 03 is the test set)
    assert not set(train.noise[1].others) & set(val.clips.clips)
    files = params(noise_kinds=["white", "files"], noise_weights=None)
    files = files.model_copy(update={"noise": files.noise.model_copy(update={"dir": str(tmp_path)})})  # no recordings
    with pytest.raises(PipelineError, match="train.noise_kinds files needs some"):
        build_tasks(files, new_network(files.model, files.features, 0), data)


def test_the_per_clip_normalisation_is_left_as_it_is(data):
    run = params(model={"normalisation": "per_clip"})
    model = new_network(run.model, run.features, run.train.seed)
    build_tasks(run, model, data)
    assert (model.db_mean.item(), model.db_scale.item()) == (0.0, 1.0)


class Stopped(Exception):
    """Stands for an interruption right after the first resume point."""


class Recorded:
    """What dvclive's Live would get: (step, name, value, plot) in order."""

    def __init__(self):
        self.step, self.values = 0, []

    def log_metric(self, name: str, value: float, plot: bool = True) -> None:
        self.values.append((self.step, name, value, plot))


def test_a_resumed_run_ends_as_an_uninterrupted_one_and_logs_every_step_once(data, tmp_path):
    run = params(epochs=2)  # 2 epochs of 2 steps
    point = ResumePoint(tmp_path / "resume.pt")
    uninterrupted, why = resumed_trainer(run, data, ALONE, CPU, point)
    assert why.startswith("starting fresh: no resume point")
    expected_log = Recorded()
    expected = train_logged(uninterrupted, expected_log)[0].state_dict()

    def save_and_stop(state, fingerprint):
        point.save(state, fingerprint)
        raise Stopped

    with pytest.raises(Stopped):
        train_logged(resumed_trainer(run, data, ALONE, CPU, point)[0], Recorded(), save=save_and_stop, save_every=1)
    other, why = resumed_trainer(params(epochs=2, seed=1), data, ALONE, CPU, point)
    assert other.step == 0 and "from a run with other params" in why
    resumed, why = resumed_trainer(run, data, ALONE, CPU, point)
    assert resumed.step == 1 and why == f"resuming from step 1 ({point.path})"
    log = Recorded()
    model, result = train_logged(resumed, log)
    assert result.resumed_from_step == 1
    for name, tensor in expected.items():
        assert torch.equal(model.state_dict()[name], tensor), name
    curves = [entry for entry in log.values if entry[3]]
    assert curves == [entry for entry in expected_log.values if entry[3]]  # step 1 from the history, then 2 to 4
    assert [step for step, name, _, _ in curves if name == "train/loss"] == [1, 2, 3, 4]
    whole_run = {name: value for _, name, value, plot in log.values if not plot}
    assert whole_run.keys() == {"train_seconds", "val/best_loss", "val/identity_loss"}
    assert whole_run["val/best_loss"] == result.best_val_loss and whole_run["train_seconds"] >= 0
    summary = run_summary(result, len(resumed.train_task), CPU)
    assert summary.startswith("4 steps on 8 clips (cpu, fp32, resumed from step 1): best val loss")


@pytest.mark.parametrize("track", ["resized", "native"])
def test_the_checkpoint_config_rebuilds_the_model_and_leaves_out_what_never_changes_it(data, track):
    run = params(RESIZED, **STUDY_TRAINING) if track == "resized" else params()
    trainer, _ = resumed_trainer(run, data, ALONE, CPU, NO_RESUME_POINT)
    _, result = trainer.run(lambda *_: None)
    config = checkpoint_config(run, result)
    assert list(config) == ["model", "features", "normalisation", "train", "best_step", "precision"]
    assert config["model"] == run.model.model_dump() and config["features"] == run.features.model_dump()
    assert config["normalisation"] == NORMALISATION[track]
    assert "checkpoint_every" not in config["train"] and config["train"]["seed"] == run.train.seed
    assert (config["best_step"], config["precision"]) == (result.best_step, "fp32")
