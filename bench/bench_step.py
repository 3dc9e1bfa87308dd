"""The train stage's step at this checkout against earlier commits', side by side on this machine's training data.

Each row runs a commit's own `stages/train.py` with its own sources and its own default params, cut to one epoch
(`train.epochs: 1`, one validation pass at the end, no resume points), on this checkout's `data/raw`, `data/noisy`
and `data/split.csv`. Steps per second is the run's steps over its `train_seconds` (the whole loop: fresh noise,
the step, validation), the best of `--rounds` rounds taken in turn, so every row feels the same machine. The rows:
REFERENCE, the commit the model-track issue measured (its U-Net and its one noise kind), any `--also` commits, and
this checkout (its working tree) for each track of TRACKS. Then where this checkout's default step goes, part by
part, on batches of its own training clips (`--breakdown-steps` of them, after a warm-up).

Usage: python bench/bench_step.py [--reference COMMIT] [--also COMMIT ...] [--rounds N]; needs `dvc repro split`.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from audiomnist_denoise.layout import FEATURES, NOISY, RAW, SPLIT
from audiomnist_denoise.model.spectral import new_network
from audiomnist_denoise.params import load_params
from audiomnist_denoise.training.run import TrainingData, build_tasks

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = "041b425"
ONE_EPOCH = {"epochs": 1, "val_every": 100_000, "checkpoint_every": 0}
TRACKS = {
    "U-Net + context, 64 mel bands (the default)": {},
    "U-Net + context without the intelligibility term": {"train": {"stoi_weight": 0.0, "si_sdr_weight": 0.003}},
    "U-Net without the context": {"model": {"context": "none"}},
    "GRU [256, 128], every bin": {
        "model": {"architecture": "gru", "channels": [256, 128]},
        "features": {"n_mels": None},
    },
    "refined + context, every bin": {"model": {"architecture": "refined"}, "features": {"n_mels": None}},
}
DATA = ("data/raw", "data/noisy", "data/split.csv")


def _export(commit: str, folder: Path) -> Path:
    """`commit`'s sources, stages and params.yaml, unpacked into `folder`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "src", "stages", "params.yaml"], check=True, capture_output=True
    ).stdout
    folder.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def _steps_per_second(tree: Path, changes: dict, folder: Path) -> float:
    """Steps per second of one epoch of `tree`'s train stage with its params under `changes`, run in `folder`."""
    folder.mkdir(parents=True)
    for name in ("data", "noise"):
        if (ROOT / name).exists():
            (folder / name).symlink_to(ROOT / name)
    params = yaml.safe_load((tree / "params.yaml").read_text())
    params["train"].update(ONE_EPOCH)
    for section, values in changes.items():
        params[section].update(values)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = os.environ | {"PYTHONPATH": str(tree / "src")}
    log = folder / "train.log"
    with log.open("w") as out:
        done = subprocess.run(
            [sys.executable, str(tree / "stages" / "train.py")], cwd=folder, env=env, stdout=out, stderr=out
        )
    if done.returncode:
        raise SystemExit(f"{tree}: train failed ({log}):\n{log.read_text(errors='replace')[-1500:]}")
    metrics = json.loads((folder / "dvclive" / "metrics.json").read_text())
    return metrics["step"] / metrics["train_seconds"]


def step_breakdown(steps: int) -> dict[str, float]:
    """Seconds per step of this checkout's default train step, by part: the batch (fresh noise and the recording
    conditions), the loss's forward pass (the network's included), the backward pass and Adam; and the network's
    forward and backward passes alone on the same batch's mel input."""
    os.chdir(ROOT)
    params = load_params()
    model = new_network(params.model, params.features, params.train.seed)
    with tempfile.TemporaryDirectory(prefix="bench-step-store-") as store:
        task, _ = build_tasks(params, model, TrainingData(RAW, NOISY, FEATURES, SPLIT, Path(store)))
        return _timed_parts(task, model, params, steps)


def _timed_parts(task, model, params, steps: int) -> dict[str, float]:
    optimizer, cpu = torch.optim.Adam(model.parameters(), params.train.lr), torch.device("cpu")
    parts = dict.fromkeys(("batch", "loss forward", "backward", "adam", "network forward + backward alone"), 0.0)
    generator = torch.Generator().manual_seed(0)
    for step in range(steps + 2):  # the first two warm up
        rows = torch.randperm(len(task), generator=generator)[: params.train.batch_size]
        timings = [time.perf_counter()]
        batch = task.batch(rows, step, cpu, "fp32")
        timings.append(time.perf_counter())
        optimizer.zero_grad()
        loss = task.loss(model, batch, "fp32")
        timings.append(time.perf_counter())
        loss.backward()
        timings.append(time.perf_counter())
        optimizer.step()
        timings.append(time.perf_counter())
        mel = task.frontend.mel(task.frontend.stft(batch[1]).abs().square())
        started = time.perf_counter()
        model(mel).sum().backward()
        network = time.perf_counter() - started
        if step >= 2:
            for part, begun, ended in zip(parts, timings, timings[1:], strict=False):
                parts[part] += (ended - begun) / steps
            parts["network forward + backward alone"] += network / steps
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default=REFERENCE)
    parser.add_argument("--also", nargs="*", default=[], help="more commits, each with its own default")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--breakdown-steps", type=int, default=20)
    args, _ = parser.parse_known_args(sys.argv[1:] if __name__ == "__main__" else [])
    missing = [path for path in DATA if not (ROOT / path).exists()]
    if missing:
        raise SystemExit(f"bench_step: {', '.join(missing)} missing; run `dvc repro split` first")
    with tempfile.TemporaryDirectory(prefix="bench-step-") as scratch:
        scratch = Path(scratch)
        rows = {
            f"{commit}, its default": (_export(commit, scratch / commit), {}) for commit in [args.reference, *args.also]
        }
        rows |= {f"this checkout: {name}": (ROOT, changes) for name, changes in TRACKS.items()}
        best = dict.fromkeys(rows, 0.0)
        for round_ in range(args.rounds):
            for index, (name, (tree, changes)) in enumerate(rows.items()):
                rate = _steps_per_second(tree, changes, scratch / f"run-{round_}-{index}")
                best[name] = max(best[name], rate)
    reference = best[f"{args.reference}, its default"]
    print(f"one epoch of the train stage on this checkout's data, best of {args.rounds}; CPU threads as the stage sets")
    for name, rate in best.items():
        print(f"{name:48} {rate:5.2f} steps/s  x{rate / reference:.2f} of {args.reference}")
    parts = step_breakdown(args.breakdown_steps)
    total = sum(seconds for part, seconds in parts.items() if not part.startswith("network"))
    print(f"this checkout's default step, fp32, mean of {args.breakdown_steps}: {1000 * total:.0f} ms")
    for part, seconds in parts.items():
        print(f"  {part:34} {1000 * seconds:6.1f} ms  {seconds / total:4.0%} of the step")


if __name__ == "__main__":
    main()
