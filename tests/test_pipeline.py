"""The DVC pipeline in a temporary git repository: what runs, what reruns, what stays identical."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml
from conftest import REPO, SMALL_FEATURES, make_corpus, set_params
from filelock import FileLock

from audiomnist_denoise.names import METHODS, SAMPLE_SOURCES
from audiomnist_denoise.names import QUALITY_METRICS as METRICS

PROJECT_FILES = ["dvc.yaml", "params.yaml", "stages", "src", "noise", ".dvcignore", ".gitignore"]
# The project's own environment first on PATH, so stages find `python` and the package.
ENV = os.environ | {
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    "DVC_NO_ANALYTICS": "1",
    "GIT_AUTHOR_NAME": "Pipeline Test",
    "GIT_AUTHOR_EMAIL": "pipeline-test@example.invalid",
    "GIT_COMMITTER_NAME": "Pipeline Test",
    "GIT_COMMITTER_EMAIL": "pipeline-test@example.invalid",
}


def run(project: Path, *command: str, check: bool = True, env: dict = ENV) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def new_project(project: Path) -> Path:
    """A copy of the pipeline in a fresh git + DVC repository at `project`, on a tiny corpus."""
    project.mkdir(parents=True)
    for name in PROJECT_FILES:
        source = REPO / name
        copy = shutil.copytree if source.is_dir() else shutil.copy
        copy(source, project / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if source.is_dir() else {}))
    run(project, "git", "init", "-q")
    run(project, "dvc", "init", "-q")
    shutil.copy(REPO / ".dvc" / "config", project / ".dvc" / "config")
    set_params(
        project,
        data__tts__speakers=3,
        data__tts__reps=2,
        natural__reps=1,
        data__workers=1,
        noise__workers=1,
        features__workers=1,
        split__n_test_speakers=1,
        split__val_fraction=0.5,
        split__disjoint_voices=False,  # speakers 01-03 share voices: the voice pool's own come from 31 on
        **SMALL_FEATURES,
        model__channels=[4, 8],
        train__epochs=1,
        train__batch_size=16,
        train__val_every=2,
        samples__count=2,
        samples__griffin_lim_iters=4,
        evaluate__griffin_lim_iters=4,
        evaluate__test_reps=1,  # 10 test clips are scored, not the speaker's 20
        evaluate__snr_sweep=[0, 5],
        evaluate__noise_kinds=["white", "pink"],  # babble of the test speakers needs two of them
        evaluate__sweep_kinds=["white"],
        evaluate__workers=1,
    )
    run(project, "git", "add", "-A")
    run(project, "git", "commit", "-qm", "pipeline")
    return project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The tiny pipeline, nothing run yet."""
    return new_project(tmp_path / "project")


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory, worker_id) -> tuple[Path, str]:
    """The tiny pipeline after its first `dvc repro`, and what that printed: built once per test session, also
    across pytest-xdist's workers (the first to get here builds it, the others wait), and never changed after."""
    # This session's folder: the workers' have it as parent, a run without xdist has it as its own.
    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    with FileLock(shared / "reproduced.lock"):
        project, printed = shared / "reproduced" / "project", shared / "reproduced" / "stdout.txt"
        if not printed.is_file():
            shutil.rmtree(project.parent, ignore_errors=True)
            output = run(new_project(project), "dvc", "repro").stdout
            printed.write_text(output)
    return project, printed.read_text()


@pytest.fixture
def built(reproduced, tmp_path: Path) -> Path:
    """A test's own copy of the reproduced tiny pipeline, to change as it likes."""
    copy = tmp_path / "project"
    shutil.copytree(reproduced[0], copy, symlinks=True)
    return copy


def lock_outs(project: Path) -> dict[str, str]:
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage["outs"]}


TIMED = "dvclive/metrics.json"  # holds train_seconds, the one number that is the machine's and not the model's


def training_metrics(project: Path) -> dict:
    """dvclive/metrics.json less its wall-clock time."""
    values = json.loads((project / TIMED).read_text())
    assert values.pop("train_seconds") > 0
    return values


STAGES = ("corpus", "natural", "mix", "split", "featurize", "references", "train", "conditions", "evaluate", "samples")
MODEL_STAGES = {"train", "conditions", "evaluate", "samples"}


def ran(output: str) -> set[str]:
    return {stage for stage in STAGES if f"Running stage '{stage}'" in output}


def test_repro_builds_every_stage_and_what_each_writes(reproduced, built):
    assert ran(reproduced[1]) == set(STAGES)
    project = built
    raw, noisy = project / "data" / "raw", project / "data" / "noisy"
    assert len(list(raw.rglob("*.wav"))) == len(list(noisy.rglob("*.wav"))) == 60
    assert (raw / "audioMNIST_meta.txt").is_file()
    corpus_metrics = json.loads((project / "metrics" / "corpus.json").read_text())
    assert corpus_metrics == {"clips": {"kept": 60, "bad": 0}, "bad_files": []}
    assert sf.info(noisy / "02" / "7_02_1.wav").subtype == "FLOAT"
    assert (project / "data" / "features" / "clean.npy").is_file() and (project / "data" / "split.csv").is_file()
    metrics = run(project, "dvc", "metrics", "show").stdout
    assert "clips.kept" in metrics and "clips.test" in metrics and "test.mse" in metrics and "val.best_loss" in metrics
    assert all(f"test.{method}.{metric}" in metrics for method in METHODS for metric in METRICS)
    assert sorted(path.name.split("_", 3)[-1] for path in (project / "samples").glob("*.wav")) == sorted(
        f"{source}.wav" for source in SAMPLE_SOURCES for _ in range(2)
    )  # two clips, each as the clean clip and every method's output
    sweep = pd.read_csv(project / "plots" / "sweep" / "white" / "pesq.csv")
    assert list(sweep.columns) == ["snr_db", *METHODS] and list(sweep.snr_db) == [0, 5]
    assert [path.name for path in (project / "plots" / "sweep").iterdir()] == ["white"]
    conditions = json.loads((project / "metrics" / "conditions.json").read_text())
    kinds = ["white", "pink", "mean"]
    assert list(conditions["test"]) == list(conditions["natural"]) == kinds and isinstance(conditions["harm"], list)
    assert set(conditions["natural"]["mean"]) == set(METHODS)
    assert set(conditions["test"]["pink"]["noisy"]) == set(METRICS)
    harm = json.loads((project / "metrics" / "eval.json").read_text())["harm"]
    assert harm[len(harm) - len(conditions["harm"]) :] == conditions["harm"]  # the held-out clips' own first
    run(project, "dvc", "plots", "show", "-o", "html")
    assert "PESQ against SNR, white noise" in (project / "html" / "index.html").read_text()


def test_bad_params_stop_the_stage_with_one_line(project):
    set_params(project, noise__kind="purple")
    result = run(project, "dvc", "repro", check=False)
    assert result.returncode != 0
    errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: params.yaml: noise.kind: Input should be 'white', 'pink', 'brown', 'babble' or 'files' (got 'purple')"
    ]


def test_repro_with_a_local_audiomnist_copy(project, tmp_path):
    """Any folder in the AudioMNIST layout works, at its own sample rate, through the stages that read it (the
    later ones read only their outputs, as on the synthetic corpus)."""
    copy = make_corpus(tmp_path / "AudioMNIST" / "data", speakers=("01", "05", "06"), reps=5, rate=22050)
    set_params(project, data__source="audiomnist", data__audiomnist_dir=str(copy.parent))
    result = run(project, "dvc", "repro", "mix", "split", "featurize")
    assert "150 AudioMNIST clips of 3 speakers" in result.stdout + result.stderr
    raw = project / "data" / "raw"
    for clean in copy.rglob("*.wav"):
        assert (raw / clean.relative_to(copy)).read_bytes() == clean.read_bytes()
    assert sf.info(project / "data" / "noisy" / "05" / "3_05_0.wav").samplerate == 22050


def test_repro_again_runs_nothing_and_forced_gives_the_same_bytes(built):
    project = built
    hashes, training = lock_outs(project), training_metrics(project)
    assert ran(run(project, "dvc", "repro").stdout) == set()
    run(project, "dvc", "repro", "-f")
    assert {path: md5 for path, md5 in lock_outs(project).items() if path != TIMED} == {
        path: md5 for path, md5 in hashes.items() if path != TIMED
    }
    assert training_metrics(project) == training  # every training metric the same, to the last bit


def test_a_changed_param_reruns_its_stage_and_every_one_after_it(built):
    project = built
    hashes = lock_outs(project)
    set_params(project, noise__snr_db=0.0)
    reran = ran(run(project, "dvc", "repro").stdout)
    after = lock_outs(project)
    assert after["data/raw"] == hashes["data/raw"] and after["data/noisy"] != hashes["data/noisy"]
    # conditions remixes at the new SNR; the natural voices and the split do not depend on the noise
    assert reran == {"mix", "featurize", "references", "train", "conditions", "evaluate", "samples"}


@pytest.mark.parametrize(
    ("change", "stages"),
    [
        ("split.n_test_speakers=2", {"split", "references"} | MODEL_STAGES),
        ("features.n_mels=48", {"featurize", "references"} | MODEL_STAGES),
        ("train.epochs=2", MODEL_STAGES),  # a new model: the model-free methods' scores stand
        ("evaluate.snr_sweep=[0]", {"references", "conditions"}),
    ],
)
def test_an_experiment_reruns_only_what_its_param_reaches(built, change, stages):
    before = (built / "metrics" / "conditions.json").read_bytes()
    reran = ran(run(built, "dvc", "exp", "run", "-S", change).stdout)
    # evaluate copies the conditions' no-harm list: it reruns after them exactly where that file changed
    listed = "conditions" in stages and (built / "metrics" / "conditions.json").read_bytes() != before
    assert reran == stages | ({"evaluate"} if listed else set())


def test_ctrl_c_in_training_then_repro_resumes_to_the_same_model(built):
    """As a user would: Ctrl-C (SIGINT to dvc and the stage) once training has saved a resume point."""
    project = built
    set_params(project, train__epochs=20, train__batch_size=4, train__checkpoint_every=5)
    resume_point = project / "checkpoints" / "train.pt"
    # One thread in every run: bit-identical results need the same thread count (a reduction split
    # differently rounds differently), and tiny steps on oversubscribed cores otherwise crawl.
    one_thread = ENV | {"OMP_NUM_THREADS": "1"}
    # A job started in the background by a shell inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: dvc (and through it the stage) gets SIGINT's default back, as in a terminal.
    repro = subprocess.Popen(
        ["dvc", "repro", "train"],
        cwd=project,
        env=one_thread,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    while not resume_point.exists():
        assert repro.poll() is None, "training ended before its first resume point"
        time.sleep(0.02)
    os.killpg(repro.pid, signal.SIGINT)
    interrupted = repro.communicate(timeout=300)[0]
    assert repro.returncode != 0 and "train: interrupted" in interrupted, interrupted

    resumed = run(project, "dvc", "repro", "train", env=one_thread)
    output = resumed.stdout + resumed.stderr
    assert ran(resumed.stdout) == {"train"}
    match = re.search(r"train: resuming from step (\d+) \(checkpoints/train.pt\)", output)
    assert match and int(match.group(1)) % 5 == 0, output
    assert not resume_point.exists()  # a finished run leaves none behind
    losses = pd.read_csv(project / "dvclive" / "plots" / "metrics" / "train" / "loss.tsv", sep="\t")
    assert list(losses.step) == list(range(1, len(losses) + 1))  # no gap, no step twice
    model = lock_outs(project)["models/unet.pt"]

    run(project, "dvc", "repro", "-f", "train", env=one_thread)
    assert lock_outs(project)["models/unet.pt"] == model  # the same bytes as a run never interrupted


def test_push_to_a_local_remote_then_a_fresh_clone_pulls_and_is_up_to_date(built, tmp_path):
    """What one machine pushes to a remote, a fresh clone pulls: nothing missing, nothing to rerun."""
    project = built
    assert ran(run(project, "dvc", "repro").stdout) == set()
    run(project, "git", "add", "-A")
    run(project, "git", "commit", "-qm", "results")
    remote = tmp_path / "remote"
    run(project, "dvc", "remote", "add", "-d", "storage", str(remote))
    run(project, "git", "commit", "-qm", "remote", ".dvc/config")
    run(project, "dvc", "push")
    assert any(path.is_file() for path in remote.rglob("*"))

    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(project), str(clone))
    up_to_date = "Data and pipelines are up to date."
    before = run(clone, "dvc", "status").stdout
    assert up_to_date not in before and "not in cache" in before, before
    run(clone, "dvc", "pull")
    assert up_to_date in run(clone, "dvc", "status").stdout
    assert ran(run(clone, "dvc", "repro").stdout) == set()
    for output in ("models/unet.pt", "data/features/clean.npy"):
        assert (clone / output).read_bytes() == (project / output).read_bytes()


def test_exp_run_with_two_training_processes_matches_one_process(built):
    """train.nproc=2 makes the stage launch torchrun (gloo, 2 ranks); the model comes out as one process's."""
    project = built
    single = json.loads((project / "dvclive" / "metrics.json").read_text())
    result = run(project, "dvc", "exp", "run", "-S", "train.nproc=2")
    assert ran(result.stdout) == MODEL_STAGES
    assert "2 processes" in result.stdout + result.stderr
    assert not (project / "checkpoints" / "train.pt").exists()
    two = json.loads((project / "dvclive" / "metrics.json").read_text())
    assert two["step"] == single["step"]
    for name in ("loss", "best_loss"):
        assert two["val"][name] == pytest.approx(single["val"][name], rel=1e-4)


def study_recipe_command() -> list[str]:
    """The command docs/results.md gives for the study's recipe (the line after its marker)."""
    text = (REPO / "docs" / "results.md").read_text()
    line = re.search(r"<!-- study-recipe -->\s*```\w*\s*(dvc exp run [^\n]+)", text).group(1)
    return line.split()


def test_the_study_recipe_runs_by_its_documented_command(built):
    """The documented flags, less the feature settings the tiny pipeline keeps small, train the study's U-Net
    on the resized cache images."""
    project = built
    command = study_recipe_command()
    assert command[:3] == ["dvc", "exp", "run"]
    options = list(zip(command[3::2], command[4::2], strict=True))
    kept = [arg for flag, value in options if not value.startswith("features.") for arg in (flag, value)]
    result = run(project, *command[:3], *kept)
    assert ran(result.stdout) >= MODEL_STAGES
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["model"]["input"] == "resized" and params["train"]["noise"] == "fixed"
    checkpoint = torch.load(project / "models" / "unet.pt", weights_only=True)
    assert checkpoint["config"]["model"]["input"] == "resized"
    metrics = json.loads((project / "metrics" / "eval.json").read_text())
    assert all(f"test.{method}.stoi" in metrics for method in METHODS)


def test_the_docs_test_holds_after_repro_on_another_cpu_and_docs_check_names_the_difference(built):
    """The README's order, `make repro` then `make test`, on a CPU other than the one that committed the metrics:
    the repro rewrites the metrics files with other floats, the committed docs still match the committed metrics,
    and only the explicit check (`make docs-check`) reports the workspace's difference."""
    from test_docs import committed_results_problems

    project = built
    (project / "docs").mkdir()
    for name in ("README.md", "docs/results.md"):
        shutil.copy(REPO / name, project / name)
    update_docs = [sys.executable, str(REPO / "scripts" / "update_docs.py")]
    run(project, *update_docs)
    run(project, "git", "add", "-A")
    run(project, "git", "commit", "-qm", "results and the docs made from them")
    assert committed_results_problems(project) == []

    # Another CPU's `dvc repro`: every float of the model's metrics a little off.
    path = project / "metrics" / "eval.json"
    metrics = json.loads(path.read_text())
    path.write_text(json.dumps({k: v * 1.001 if isinstance(v, float) else v for k, v in metrics.items()}, indent=4))
    assert committed_results_problems(project) == []
    check = run(project, *update_docs, "--check", check=False)
    assert check.returncode == 1
    assert "out of date: README.md, docs/results.md\n" in check.stderr and "metrics/eval.json" in check.stderr

    # Committed without the docs, the other floats do fail the docs test.
    run(project, "git", "commit", "-qam", "other floats")
    assert committed_results_problems(project) == [
        f"{name} is out of date with the metrics files committed at HEAD: run `make docs` and commit both"
        for name in ("README.md", "docs/results.md")
    ]
