"""Each stage's cost against the corpus size: the whole pipeline at several `data.tts.reps`, each stage's seconds
and peak resident memory, and the growth exponent k of time ~ clips^k (a least-squares fit over the sizes).

Each size runs in its own scratch copy of this checkout (its files as they are, without data/), with `data.tts.reps`
changed and `train.epochs` cut to `--train-epochs` so the largest size fits a session: every stage's own command
from dvc.yaml in dependency order, not through DVC (nothing is cached between sizes). Peak memory is the largest
process of the stage's tree (`wait4`'s maxrss), so a stage's worker processes count one at a time.

Usage: python bench/bench_scale.py [--reps 10 20 38] [--train-epochs 1] [--keep DIR [--only STAGE ...]]. With
40 speakers, the default, that is 4,000, 8,000 and 15,200 clips (fewer than 10 repetitions leave too few validation
clips to stratify by speaker and digit). `--only` reruns some stages in the copies an earlier `--keep` run left.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
DIGITS = 10


def stage_order(stages: dict) -> list[str]:
    """dvc.yaml's stages, each after every stage whose outputs it depends on."""

    def paths(entries) -> set[str]:
        return {next(iter(entry)) if isinstance(entry, dict) else entry for entry in entries or []}

    outputs = {
        name: paths(stage.get("outs")) | paths(stage.get("metrics")) | paths(stage.get("plots"))
        for name, stage in stages.items()
    }
    needs = {
        name: {other for other, outs in outputs.items() if other != name and paths(stage.get("deps")) & outs}
        for name, stage in stages.items()
    }
    order: list[str] = []
    while len(order) < len(stages):
        ready = [name for name in stages if name not in order and needs[name] <= set(order)]
        if not ready:
            raise SystemExit(
                f"bench_scale: dvc.yaml's stages depend on each other in a cycle: {set(stages) - set(order)}"
            )
        order.extend(ready)
    return order


def scratch_copy(target: Path) -> None:
    """This checkout's tracked and untracked-but-not-ignored files, as they are on disk."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def set_params(params_file: Path, reps: int, epochs: int, changes: list[str]) -> int:
    """Writes the size's params, with `changes` (dotted key=YAML value) on top; returns its number of clips."""
    params = yaml.safe_load(params_file.read_text())
    params["data"]["tts"]["reps"] = reps
    params["train"]["epochs"] = epochs
    for change in changes:
        key, _, value = change.partition("=")
        *sections, leaf = key.split(".")
        section = params
        for name in sections:
            section = section[name]
        if leaf not in section:
            raise SystemExit(f"bench_scale: --set {change}: params.yaml has no {key}")
        section[leaf] = yaml.safe_load(value)
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    return params["data"]["tts"]["speakers"] * reps * DIGITS


def run_stage(command: str, cwd: Path, log: Path) -> tuple[float, float]:
    """Seconds and peak resident MiB of one stage's command; its output goes to `log`."""
    environment = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(cwd / "src"),  # the copy's own sources, not the checkout the environment installed
    }
    started = time.perf_counter()
    with log.open("w") as output:
        process = subprocess.Popen(
            command, shell=True, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, env=environment
        )
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"bench_scale: `{command}` in {cwd} failed ({process.returncode}); see {log}")
    return seconds, usage.ru_maxrss / 1024


def exponent(clips: list[int], values: list[float]) -> float:
    """k of values ~ clips^k, fitted on log-log."""
    return float(np.polyfit(np.log(clips), np.log(np.maximum(values, 1e-3)), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, nargs="+", default=[10, 20, 38])
    parser.add_argument("--train-epochs", type=int, default=1)
    parser.add_argument("--set", nargs="*", default=[], help="params for every size, e.g. split.val_fraction=0.17")
    parser.add_argument("--keep", type=Path, help="a folder to keep each size's copy and logs in")
    parser.add_argument(
        "--only",
        nargs="+",
        help="these stages alone, in copies kept in --keep by an earlier run (this checkout's files)",
    )
    args, _ = parser.parse_known_args(sys.argv[1:] if __name__ == "__main__" else [])  # bench/run.py passes its own
    if args.only and not args.keep:
        parser.error("--only needs --keep: the earlier run's copies hold the stages' inputs")
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    order = [name for name in stage_order(stages) if not args.only or name in args.only]
    seconds: dict[str, list[float]] = {name: [] for name in order}
    memory: dict[str, list[float]] = {name: [] for name in order}
    sizes: list[int] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        base = args.keep or Path(scratch)
        for reps in args.reps:
            copy = base / f"reps-{reps}"
            if not args.only:
                shutil.rmtree(copy, ignore_errors=True)
            scratch_copy(copy)
            sizes.append(set_params(copy / "params.yaml", reps, args.train_epochs, args.set))
            for name in order:
                taken, peak = run_stage(stages[name]["cmd"], copy, copy / f"{name}.log")
                seconds[name].append(taken)
                memory[name].append(peak)
                print(f"{sizes[-1]} clips: {name} {taken:.1f} s, {peak:.0f} MiB", file=sys.stderr, flush=True)
    header = " | ".join(f"{size:,} clips" for size in sizes)
    changes = "".join(f"; {change}" for change in args.set)
    print(f"train.epochs {args.train_epochs}; data.tts.reps {', '.join(map(str, args.reps))}{changes}\n")
    print(f"| stage | seconds: {header} | k | peak MiB: {header} |")
    print("|---|" + "---|" * (2 * len(sizes) + 1))
    for name in order:
        times = " | ".join(f"{value:.1f}" for value in seconds[name])
        peaks = " | ".join(f"{value:.0f}" for value in memory[name])
        print(f"| {name} | {times} | {exponent(sizes, seconds[name]):.2f} | {peaks} |")
    if len(order) > 1:
        total = [sum(seconds[name][i] for name in order) for i in range(len(sizes))]
        print(f"| all | {' | '.join(f'{value:.1f}' for value in total)} | {exponent(sizes, total):.2f} | |")
    if "train" in order:
        growth = memory["train"][-1] / memory["train"][0]
        print(f"\ntrain's peak memory at {sizes[-1]:,} clips over {sizes[0]:,}: {growth:.2f}x")


if __name__ == "__main__":
    main()
