"""Resumable training: a run stopped at any step and resumed ends exactly where an uninterrupted one does."""

import os
import random
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import REPO, blob_pairs, new_unet, train_params

from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.training.loop import Trainer, learning_rate_factor
from audiomnist_denoise.training.resume import ResumePoint

CPU = torch.device("cpu")
# 2 epochs of 3 steps (20 clips, batch 8: the last batch is short), validation every 4 steps.
RUN = dict(epochs=2, batch_size=8, val_every=4, schedule="cosine", warmup_steps=2)


def new_trainer(**changes) -> Trainer:
    model = new_unet([4, 8], "kaiming", "sigmoid", 0)
    return Trainer(model, blob_pairs(20), blob_pairs(8, seed=1), train_params(**(RUN | changes)), CPU)


def uninterrupted(**changes):
    logged = []
    trainer = new_trainer(**changes)
    model, result = trainer.run(lambda step, values: logged.append((step, values)))
    return model, result, logged


class Stopped(Exception):
    """Stands for an interruption right after a resume point was written."""


def assert_same_weights(first, second):
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), f"{name} differs"


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_run_resumed_at_every_step_ends_bit_identical_with_the_same_log(tmp_path, precision):
    expected_model, expected, expected_log = uninterrupted(precision=precision)
    for stop in range(1, expected.steps):
        saved = ResumePoint(tmp_path / f"stop{stop}.pt")
        first = new_trainer(precision=precision)

        def save_and_stop(state, fingerprint, stop=stop, saved=saved):
            saved.save(state, fingerprint)
            raise Stopped

        with pytest.raises(Stopped):
            first.run(lambda *_: None, save=save_and_stop, save_every=stop)

        second = new_trainer(precision=precision)
        state, why = saved.load(second.fingerprint)
        assert why == f"resuming from step {stop} ({saved.path})"
        second.load_state_dict(state)
        logged = list(second.history)
        model, result = second.run(lambda step, values, logged=logged: logged.append((step, values)))
        assert_same_weights(model, expected_model)
        assert logged == expected_log  # every step once, in order, with the same values
        assert result.resumed_from_step == stop and result.best_step == expected.best_step


def test_a_resume_point_of_another_run_is_not_used(tmp_path):
    saved = ResumePoint(tmp_path / "train.pt")
    assert saved.load("anything") == (None, f"starting fresh: no resume point at {saved.path}")
    trainer = new_trainer()
    saved.save(trainer.state_dict(), trainer.fingerprint)
    assert saved.load(new_trainer().fingerprint)[0] is not None
    assert new_trainer(checkpoint_every=7).fingerprint == trainer.fingerprint  # does not change the output
    for changes in ({"lr": 1e-3}, {"epochs": 3}, {"precision": "bf16"}, {"seed": 1}):
        state, why = saved.load(new_trainer(**changes).fingerprint)
        assert state is None and why.startswith(f"starting fresh: {saved.path} is from a run with other params")
    other_data = Trainer(
        new_unet([4, 8], "kaiming", "sigmoid", 0),
        blob_pairs(20, seed=5),
        blob_pairs(8, seed=1),
        train_params(**RUN),
        CPU,
    )
    assert saved.load(other_data.fingerprint)[0] is None
    saved.path.write_bytes(b"half a file")
    state, why = saved.load(trainer.fingerprint)
    assert state is None and why.startswith(f"starting fresh: {saved.path} is not readable")
    saved.remove()
    assert not saved.path.exists()


def test_warm_up_then_cosine_decay():
    factors = [learning_rate_factor(step, 10, 2, "cosine") for step in range(10)]
    assert factors[:3] == [0.5, 1.0, 1.0]
    assert all(later < earlier for earlier, later in zip(factors[2:], factors[3:], strict=False))
    assert 0 < factors[-1] < 0.05
    assert [learning_rate_factor(step, 10, 0, "constant") for step in range(10)] == [1.0] * 10


def test_out_of_memory_is_one_line_with_the_batch_size(monkeypatch):
    def out_of_memory(*_):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr("audiomnist_denoise.training.loop.train_step", out_of_memory)
    with pytest.raises(PipelineError, match=r"out of memory on cpu at train.batch_size 8: try a smaller"):
        new_trainer().run(lambda *_: None)


# A training process that SIGKILLs itself after a chosen step: no cleanup, no exception handler runs.
KILLABLE = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    sys.path.insert(0, {tests!r})
    from conftest import blob_pairs, new_unet, train_params
    from audiomnist_denoise.training.resume import ResumePoint
    from audiomnist_denoise.training.loop import Trainer

    kill_at, resume_file, weights_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    trainer = Trainer(new_unet([4, 8], "kaiming", "sigmoid", 0), blob_pairs(40), blob_pairs(8, seed=1),
                      train_params(epochs=3, batch_size=8, val_every=4, schedule="cosine", warmup_steps=2,
                                   checkpoint_every=3), torch.device("cpu"))
    point = ResumePoint(resume_file)
    state, why = point.load(trainer.fingerprint)
    if state is not None:
        trainer.load_state_dict(state)
    print(why, flush=True)

    def log(step, values):
        print("logged", step, flush=True)
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    model, result = trainer.run(log, save=point.save, save_every=3)
    torch.save(model.state_dict(), weights_file)
    """
)


def test_sigkill_at_a_random_step_then_rerun_gives_the_uninterrupted_weights(tmp_path):
    script = tmp_path / "killable.py"
    script.write_text(KILLABLE.format(tests=str(REPO / "tests")))
    kill_at = random.Random().randint(1, 14)  # of 15 steps; resume points after steps 3, 6, 9, 12

    def run(kill: int, weights: str) -> subprocess.CompletedProcess:
        command = [sys.executable, str(script), str(kill), str(tmp_path / "resume.pt"), str(tmp_path / weights)]
        return subprocess.run(command, capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"})

    killed = run(kill_at, "never.pt")
    assert killed.returncode == -signal.SIGKILL, f"kill at step {kill_at}: {killed.stderr}"
    resumed = run(0, "resumed.pt")
    assert resumed.returncode == 0, resumed.stderr
    last_saved = (kill_at - 1) // 3 * 3  # killed while logging step kill_at, before that step's resume point
    if last_saved:
        assert resumed.stdout.startswith(f"resuming from step {last_saved}")
    else:
        assert resumed.stdout.startswith("starting fresh: no resume point")
    assert [int(line.split()[1]) for line in resumed.stdout.splitlines()[1:]] == list(range(last_saved + 1, 16))
    (tmp_path / "resume.pt").unlink()
    clean = run(0, "clean.pt")
    assert clean.returncode == 0, clean.stderr
    resumed_weights = torch.load(tmp_path / "resumed.pt", weights_only=True)
    clean_weights = torch.load(tmp_path / "clean.pt", weights_only=True)
    for name, tensor in clean_weights.items():
        assert torch.equal(resumed_weights[name], tensor), f"{name} differs after a kill at step {kill_at}"
