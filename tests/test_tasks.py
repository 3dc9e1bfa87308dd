"""The `Task` protocol: both training tasks follow it, and the Trainer needs nothing beyond it."""

import inspect

import pytest
import torch
from conftest import blob_pairs, new_unet, small_features, tone_clips, train_params

from audiomnist_denoise.model.spectral import SpectralDenoiser
from audiomnist_denoise.training.audio_task import AudioTask
from audiomnist_denoise.training.loop import Trainer
from audiomnist_denoise.training.tasks import Task

CPU = torch.device("cpu")
MEMBERS = {name for name in vars(Task) if not name.startswith("_")} | {"__len__"}


def audio_task() -> AudioTask:
    features = small_features()
    denoiser = SpectralDenoiser(features, [4, 8], "mask", "per_clip")
    return AudioTask(tone_clips(3), denoiser, train_params(loss="compressed"), features.sample_rate)


def test_the_protocol_is_what_the_trainer_uses():
    assert MEMBERS == {"__len__", "tensors", "share", "extent", "batch", "loss", "error", "identity_loss"}


@pytest.mark.parametrize("task", [blob_pairs(4), audio_task()], ids=["Pairs", "AudioTask"])
def test_both_tasks_follow_the_protocol_with_its_signatures(task):
    assert isinstance(task, Task)
    for name in MEMBERS - {"tensors"}:
        expected = list(inspect.signature(getattr(Task, name)).parameters)
        assert list(inspect.signature(getattr(type(task), name)).parameters) == expected, name
    assert isinstance(inspect.getattr_static(type(task), "tensors"), property)
    assert isinstance(task.share(0, 2), Task)


class OnlyTheProtocol:
    """`task` seen through the protocol alone: any other attribute the trainer asked for would fail."""

    def __init__(self, task: Task):
        self._task = task

    def __len__(self) -> int:
        return len(self._task)

    def __getattr__(self, name: str):
        if name not in MEMBERS:
            raise AttributeError(f"the Trainer used {name!r}, which Task does not declare")
        value = getattr(self._task, name)
        return (lambda rank, size: OnlyTheProtocol(value(rank, size))) if name == "share" else value


def test_a_run_on_nothing_but_the_protocol_trains_the_same_weights():
    def trained(wrap) -> dict[str, torch.Tensor]:
        train, val = wrap(blob_pairs(16)), wrap(blob_pairs(8, seed=1))
        trainer = Trainer(new_unet([4, 8], "kaiming", "sigmoid", 0), train, val, train_params(epochs=2), CPU)
        model, result = trainer.run(lambda step, values: None)
        assert result.identity_val_loss > 0
        return model.state_dict()

    plain, through_the_protocol = trained(lambda pairs: pairs), trained(OnlyTheProtocol)
    assert isinstance(OnlyTheProtocol(blob_pairs(2)), Task) and not isinstance(blob_pairs(2).noisy, Task)
    for name, tensor in plain.items():
        assert torch.equal(tensor, through_the_protocol[name]), name
