"""`make check`: a fresh run's metrics against the committed ones, within tolerances."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, committed

sys.path.insert(0, str(REPO / "scripts"))
from check_reproduction import METRICS_FILES, Comparison, compare, tolerance_for  # noqa: E402

from audiomnist_denoise.reporting.report import flatten_metrics

EVAL = {"test.mse": 0.02, "test.clips": 500, "test.unet_mask.stoi": 0.75, "test.noisy.stoi": 0.74}


def test_nested_metrics_are_flattened_with_dots():
    assert flatten_metrics({"clips": {"train": 3, "val": 1}, "bad_files": []}) == {
        "clips.train": 3,
        "clips.val": 1,
        "bad_files": [],
    }


def beyond(value, kind: str, tolerance: float):
    """`value` moved just past what `kind` and `tolerance` allow."""
    if not isinstance(value, int | float):
        return [*value, "another"] if isinstance(value, list) else f"{value}!"
    step = tolerance * abs(value) if kind == "relative" else tolerance
    return value + 1.5 * step + 1e-9


def test_every_committed_metric_has_a_tolerance():
    """Each metric of the committed files is judged: it passes against itself and fails just past its
    tolerance; only the training time is shown and not judged."""
    judged = {Path(path).stem: 0 for path in METRICS_FILES}
    for path in METRICS_FILES:
        source = Path(path).stem
        for name, value in flatten_metrics(json.loads(committed(path))).items():
            kind, tolerance = tolerance_for(name, source)
            assert kind in ("exact", "absolute", "relative", "machine") and tolerance >= 0, (name, kind, tolerance)
            if kind == "machine":
                assert name == "train_seconds", f"{source}:{name} is not judged"
                continue
            same = Comparison(name, value, value, kind, tolerance)
            moved = Comparison(name, value, beyond(value, kind, tolerance), kind, tolerance)
            assert same.ok and not moved.ok, f"{source}:{name} ({kind} {tolerance:g}): {same.row()} / {moved.row()}"
            judged[source] += 1
    assert all(judged.values()), judged


def test_a_model_metric_passes_within_its_tolerance_and_fails_beyond_it():
    kind, stoi = tolerance_for("test.unet_mask.stoi")
    near = compare(EVAL, EVAL | {"test.unet_mask.stoi": 0.75 + stoi / 2}, "eval")
    far = compare(EVAL, EVAL | {"test.unet_mask.stoi": 0.75 + stoi * 2}, "eval")
    assert kind == "absolute" and all(c.ok for c in near)
    assert [c.name for c in far if not c.ok] == ["eval:test.unet_mask.stoi"]


def test_counts_and_model_free_metrics_must_match_more_closely():
    assert [c.ok for c in compare(EVAL, EVAL | {"test.clips": 499}, "eval")] == [True, False, True, True]
    assert not compare(EVAL, EVAL | {"test.noisy.stoi": 0.745}, "eval")[3].ok


def test_the_training_time_is_shown_but_not_judged_and_the_loss_still_is():
    committed = {"train_seconds": 276.3, "train": {"loss": 0.05}}
    slower = compare(committed, {"train_seconds": 901.0, "train": {"loss": 0.05}}, "train")
    assert [c.ok for c in slower] == [True, True] and "not judged" in slower[0].row()
    assert not compare(committed, {"train_seconds": 276.3, "train": {"loss": 0.5}}, "train")[1].ok


def test_a_metric_missing_from_either_side_fails():
    fresh = {k: v for k, v in EVAL.items() if k != "test.mse"} | {"test.extra_mse": 1.0}
    assert sorted(c.name for c in compare(EVAL, fresh, "eval") if not c.ok) == ["eval:test.extra_mse", "eval:test.mse"]


def git(project: Path, *args: str) -> None:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", *identity, *args], cwd=project, check=True, capture_output=True)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A repository whose committed metrics are this repository's (as committed: the workspace's may be
    another CPU's)."""
    for path in METRICS_FILES:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(committed(path))
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "results")
    return tmp_path


def check(project: Path) -> subprocess.CompletedProcess:
    script = REPO / "scripts" / "check_reproduction.py"
    return subprocess.run([sys.executable, script], cwd=project, capture_output=True, text=True, check=False)


def test_the_committed_results_check_against_themselves(project):
    done = check(project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test.unet_mask.stoi" in done.stdout and "within their tolerance" in done.stdout


def test_an_edited_metric_beyond_its_tolerance_fails_the_check(project):
    path = project / "metrics" / "eval.json"
    metrics = json.loads(path.read_text())
    metrics["test.unet_mask.stoi"] += 2 * tolerance_for("test.unet_mask.stoi")[1]
    path.write_text(json.dumps(metrics))
    done = check(project)
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1].startswith("1 of ") and "eval:test.unet_mask.stoi" in done.stdout


def test_a_missing_fresh_file_is_one_line(project):
    (project / "dvclive" / "metrics.json").unlink()
    done = check(project)
    assert done.returncode == 1 and done.stderr.strip() == (
        "error: dvclive/metrics.json: cannot read (No such file or directory); run `dvc repro` first"
    )
