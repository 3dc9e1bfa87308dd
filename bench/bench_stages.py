"""The pipeline's stage times at this commit against earlier ones, from fresh clones side by side in one run.

- the whole default run (`dvc repro`) against REPRO_REFERENCE, the commit before the native model track: each
  clone builds everything from nothing, one stage of each in turn, and both runs' model metrics are printed;
- the evaluation (`evaluate` + `sweep`, and ours `references` + `conditions`) against EVALUATION_REFERENCE, the
  commit before the evaluation's speed-ups: both run on this commit's upstream outputs, which must be the bytes the
  reference's own dvc.lock records (where it was recorded on another CPU, the bytes its own upstream stages
  make here). Ours is summed twice: from nothing, and after a change to the model alone, which DVC answers
  without `references`.

Every stage runs as `dvc repro --single-item --force` in its clone, with the clone's own sources on PYTHONPATH
and this environment's packages. Takes about 45 minutes on 2 cores.

Usage: python bench/bench_stages.py [--reference COMMIT] [--evaluation-reference COMMIT] [--keep]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
REPRO_REFERENCE = "f10498c"
EVALUATION_REFERENCE = "f1d4635"
# ours: `references` holds the model-free methods' part; `conditions` took over from `sweep` (and scores every noise
# kind and the natural voices too, so since then the evaluation is not like for like). Each clone runs those it has.
EVALUATION_STAGES = ("references", "evaluate", "sweep", "conditions")
AFTER_A_MODEL_CHANGE = ("evaluate", "sweep", "conditions")  # what an experiment that changes only training reruns
QUALITY = ("si_sdr", "pesq", "stoi", "estoi")
MODEL_METHOD = "unet_mask"
RESULTS = ("metrics/eval.json", "plots/eval", "plots/sweep")  # what evaluate and sweep (conditions) write


class Clone:
    """A fresh clone of this repository at one commit, whose stages run with its own sources."""

    def __init__(self, commit: str, folder: Path):
        self.commit = _git("rev-parse", "--short", commit)
        self.folder = folder
        subprocess.run(["git", "clone", "--quiet", "--shared", str(ROOT), str(folder)], check=True)
        subprocess.run(["git", "-C", str(folder), "checkout", "--quiet", self.commit], check=True)
        self.stages = list(yaml.safe_load((folder / "dvc.yaml").read_text())["stages"])
        bin_dir = str(Path(sys.executable).parent)
        self.env = os.environ | {"PYTHONPATH": str(folder / "src"), "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def run(self, stage: str) -> float:
        """Seconds `stage` takes, run whatever DVC thinks of it; its output goes to a log beside the clone."""
        log = self.folder.parent / f"{self.folder.name}-{stage}.log"
        started = time.perf_counter()
        with log.open("w") as out:
            done = subprocess.run(
                ["dvc", "repro", "--single-item", "--force", stage],
                cwd=self.folder,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        seconds = time.perf_counter() - started
        if done.returncode:
            tail = log.read_text(errors="replace")[-2000:]
            raise SystemExit(f"{self.commit}: stage {stage} failed ({log}):\n{tail}")
        return seconds

    def quality(self) -> dict[str, float]:
        metrics = json.loads((self.folder / "metrics" / "eval.json").read_text())
        return {name: metrics.get(f"test.{MODEL_METHOD}.{name}", float("nan")) for name in QUALITY}

    def data_outputs(self, stages: list[str]) -> dict[str, str]:
        """{path: md5} that dvc.lock records for the data `stages` write (their `outs`, not metrics or plots)."""
        stage_specs = yaml.safe_load((self.folder / "dvc.yaml").read_text())["stages"]
        lock = yaml.safe_load((self.folder / "dvc.lock").read_text())["stages"]
        hashes = {out["path"]: out["md5"] for stage in stages for out in lock[stage].get("outs", [])}
        paths = [
            next(iter(out)) if isinstance(out, dict) else out for s in stages for out in stage_specs[s].get("outs", [])
        ]
        return {path: hashes[path] for path in paths}


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout.strip()


def side_by_side(reference: Clone, ours: Clone, stages: list[str]) -> dict[str, tuple[float | None, float | None]]:
    """Each stage run in the reference clone and then in ours, in pipeline order: both feel the same machine."""
    times = {}
    for stage in stages:
        before = reference.run(stage) if stage in reference.stages else None
        after = ours.run(stage) if stage in ours.stages else None
        times[stage] = (before, after)
        print(f"  {stage:<10} {_seconds(before)} {_seconds(after)}  {_ratio(before, after)}", flush=True)
    return times


def _seconds(value: float | None) -> str:
    return f"{value:9.1f} s" if value is not None else f"{'-':>11}"


def _ratio(reference: float | None, ours: float | None) -> str:
    if not reference or not ours:
        return ""
    return f"ours / reference {ours / reference:4.2f} ({reference / ours:4.2f}x faster)"


def _total(times: dict, side: int) -> float:
    return sum(pair[side] for pair in times.values() if pair[side] is not None)


def compare_repro(workdir: Path, commit: str) -> Clone:
    reference, ours = Clone(commit, workdir / "repro-reference"), Clone("HEAD", workdir / "ours")
    stages = list(dict.fromkeys(ours.stages + reference.stages))  # ours in its order: `references` before `evaluate`
    print(f"dvc repro from fresh clones: reference {reference.commit}, ours {ours.commit}")
    print(f"  {'stage':<10} {'reference':>11} {'ours':>11}")
    times = side_by_side(reference, ours, stages)
    before, after = _total(times, 0), _total(times, 1)
    print(f"  {'total':<10} {_seconds(before)} {_seconds(after)}  {_ratio(before, after)}  (target <= 0.5)")
    for clone in (reference, ours):
        values = " ".join(f"{name} {value:.4g}" for name, value in clone.quality().items())
        print(f"  {clone.commit} test {MODEL_METHOD}: {values}")
    return ours


def compare_evaluation(workdir: Path, commit: str, ours: Clone) -> None:
    """Both commits' evaluation stages on the outputs of our run's upstream stages: in a run from nothing (our
    `references` included) and after a change to the model alone (ours without it, as DVC skips it)."""
    reference = Clone(commit, workdir / "evaluation-reference")
    last = max(ours.stages.index(stage) for stage in EVALUATION_STAGES if stage in ours.stages)
    upstream = [stage for stage in ours.stages[:last] if stage not in EVALUATION_STAGES and stage in reference.stages]
    ours_outputs, reference_outputs = ours.data_outputs(upstream), reference.data_outputs(upstream)
    differing = [path for path in reference_outputs if ours_outputs.get(path) != reference_outputs[path]]
    if differing:
        # Recorded on another CPU (training's precision follows it, see `resolve_precision`): the reference's own
        # stages, run here, must give our bytes for the comparison to be like for like.
        print(f"{reference.commit}'s dvc.lock records other bytes for {', '.join(differing)}: building them here")
        for stage in upstream:
            reference.run(stage)
        unlike = [path for path in differing if _files(reference.folder / path) != _files(ours.folder / path)]
        if unlike:
            raise SystemExit(f"{reference.commit} makes other upstream outputs ({', '.join(unlike)}): not alike")
    else:
        for path in ours_outputs:
            source, target = ours.folder / path, reference.folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
    print(f"the evaluation on the same upstream outputs: reference {reference.commit}, ours {ours.commit}")
    print(f"  {'stage':<10} {'reference':>11} {'ours':>11}")
    times = side_by_side(reference, ours, list(EVALUATION_STAGES))
    before = _total(times, 0)
    for label, stages in (("from nothing", EVALUATION_STAGES), ("model only", AFTER_A_MODEL_CHANGE)):
        after = sum(times[stage][1] or 0 for stage in stages)
        print(f"  {label:<12} {_seconds(before)} {_seconds(after)}  {_ratio(before, after)}  (target <= 1/3)")
    for name in RESULTS:
        same = _files(reference.folder / name) == _files(ours.folder / name)
        print(f"  {name}: {'the same bytes' if same else 'differs (--keep leaves both clones to compare)'}")


def _files(path: Path) -> dict[str, bytes]:
    paths = sorted(path.rglob("*")) if path.is_dir() else [path]
    return {str(p.relative_to(path)): p.read_bytes() for p in paths if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", default=REPRO_REFERENCE, help="the commit the whole run is compared with")
    parser.add_argument("--evaluation-reference", default=EVALUATION_REFERENCE)
    parser.add_argument(
        "--evaluation-only", action="store_true", help="skip the whole-run comparison (our upstream stages untimed)"
    )
    parser.add_argument("--keep", action="store_true", help="leave the clones (and their logs) in place")
    args, _ = parser.parse_known_args(sys.argv[1:] if __name__ == "__main__" else [])
    if _git("status", "--porcelain", "--untracked-files=no"):
        print("(uncommitted changes are not measured: the clones are of HEAD)")
    workdir = Path(tempfile.mkdtemp(prefix="bench-stages-"))
    try:
        if args.evaluation_only:
            ours = Clone("HEAD", workdir / "ours")
            for stage in ours.stages[: ours.stages.index("train") + 1]:
                if stage not in EVALUATION_STAGES:  # timed below
                    ours.run(stage)
        else:
            ours = compare_repro(workdir, args.reference)
        compare_evaluation(workdir, args.evaluation_reference, ours)
    finally:
        if args.keep:
            print(f"clones and logs: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
