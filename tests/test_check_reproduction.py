"""`make check`: a fresh run's metrics against the committed ones, within tolerances."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, committed

sys.path.insert(0, str(REPO / "scripts"))
from check_reproduction import METRICS_FILES, Comparison, compare, tolerance_for  # noqa: E402

from audiomnist_denoise.names import METHODS, MODEL_FREE, QUALITY
from audiomnist_denoise.reporting.report import flatten_metrics

EVAL = {"test.mse": 0.02, "test.clips": 500, "test.unet_mask.stoi": 0.75, "test.noisy.stoi": 0.74}
NOT_JUDGED = {"train_seconds", "harm"}  # the machine's speed; the no-harm lists, which follow from judged metrics
HARM = ["test speakers, babble -8 dB: unet_mask STOI 0.515 < noisy 0.524"]


def conditions_metrics() -> dict:
    """metrics/conditions.json as the conditions stage writes it, for every method, kind and set."""
    kinds = [*yaml.safe_load((REPO / "params.yaml").read_text())["evaluate"]["noise_kinds"], "mean"]
    scores = {method: dict.fromkeys(QUALITY, 0.5) for method in METHODS}
    return {"snr_db": -8.0} | {name: dict.fromkeys(kinds, scores) for name in ("test", "natural")} | {"harm": HARM}


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
    tolerance; only the training time and the no-harm lists are shown and not judged."""
    judged = {Path(path).stem: 0 for path in METRICS_FILES}
    for path in METRICS_FILES:
        source = Path(path).stem
        for name, value in flatten_metrics(json.loads(committed(path))).items():
            kind, tolerance = tolerance_for(name, source)
            assert kind in ("exact", "absolute", "relative", "machine", "derived") and tolerance >= 0, (name, kind)
            if kind in ("machine", "derived"):
                assert name in NOT_JUDGED, f"{source}:{name} is not judged"
                continue
            same = Comparison(name, value, value, kind, tolerance)
            moved = Comparison(name, value, beyond(value, kind, tolerance), kind, tolerance)
            assert same.ok and not moved.ok, f"{source}:{name} ({kind} {tolerance:g}): {same.row()} / {moved.row()}"
            judged[source] += 1
    assert all(judged.values()), judged


def test_the_conditions_take_tolerances_of_their_own_for_the_model_and_rounding_for_the_rest():
    """A condition scores 50 clips, not 500: a seed moves the model's scores there further, never the others'."""
    names = flatten_metrics(conditions_metrics())
    for name in names:
        kind, tolerance = tolerance_for(name, "conditions")
        if name in ("snr_db", "harm"):
            assert (kind, tolerance) == (("exact", 0.0) if name == "snr_db" else ("derived", 0.0)), name
            continue
        _, _, method, metric = name.split(".")
        held_out = tolerance_for(f"test.{method}.{metric}")
        assert kind == held_out[0] == "absolute", name
        if method in MODEL_FREE:
            assert tolerance == held_out[1] == 1e-3, name
        else:
            assert tolerance > held_out[1], name
    assert len(names) == 2 + 2 * 5 * len(METHODS) * len(QUALITY)


def test_the_no_harm_list_is_shown_item_by_item_and_not_judged():
    committed = conditions_metrics()
    fresh = committed | {"harm": [*HARM, "natural voices, pink -8 dB: unet_mask PESQ 1.030 < noisy 1.041"]}
    (harm,) = [c for c in compare(committed, fresh, "conditions") if c.name == "conditions:harm"]
    assert harm.ok and harm.row().splitlines() == [
        f"{'conditions:harm':<50} {'1 item':>12} {'2 items':>12} {'not judged':>10}  ok",
        f"    = {HARM[0]}",
        "    + natural voices, pink -8 dB: unet_mask PESQ 1.030 < noisy 1.041",
    ]
    (emptied,) = [c for c in compare({"harm": HARM}, {"harm": []}, "eval")]
    assert emptied.ok and emptied.row().splitlines()[1:] == [f"    - {HARM[0]}"]
    moved = compare(committed, fresh | {"snr_db": -5.0}, "conditions")
    assert [c.name for c in moved if not c.ok] == ["conditions:snr_db"]


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
