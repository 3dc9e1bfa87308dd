"""scripts/update_docs.py rewrites only its marked sections and docs/params.md, from the committed files."""

import importlib.util
import json
import shutil
import subprocess
import sys

import pytest
from conftest import REPO

from audiomnist_denoise.names import METHODS

SCRIPT = REPO / "scripts" / "update_docs.py"
METRICS = ("si_sdr", "pesq", "stoi", "estoi")


def write_inputs(root):
    (root / "metrics").mkdir()
    (root / "plots" / "eval").mkdir(parents=True)
    (root / "plots" / "sweep").mkdir()
    (root / "dvclive").mkdir()
    (root / "docs").mkdir()
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(REPO / name, root / name)
    metrics = {
        f"{split}.{key}": value
        for split in ("val", "test")
        for key, value in (("clips", 10), ("mse", 0.0123), ("identity_mse", 0.2), ("mse_ratio", 0.07))
    }
    metrics |= {f"test.{method}.{metric}": 1.5 for method in METHODS for metric in METRICS}
    metrics["test.unet_mask.pesq"] = 1.375
    (root / "metrics" / "eval.json").write_text(json.dumps(metrics))
    quality = ",".join(f"{method}_{metric}" for method in METHODS for metric in ("si_sdr", "pesq", "stoi"))
    values = ",".join("0.75" for _ in METHODS for _ in range(3))
    (root / "dvclive" / "metrics.json").write_text(json.dumps({"step": 7, "train": {"loss": 0.02}}))
    groups = [
        ("by_digit", "digit", "3"),
        ("by_speaker", "speaker", "07"),
        ("by_gender", "gender", "female"),
        ("by_accent", "accent", "german"),
        ("by_age", "age_band", "25-29"),
    ]
    for name, column, value in groups:
        (root / "plots" / "eval" / f"{name}.csv").write_text(
            f"{column},mse,identity_mse,clips,{quality}\n{value},0.5,0.25,4,{values}\n"
        )
    for metric in METRICS:
        (root / "plots" / "sweep" / f"{metric}.csv").write_text(
            f"snr_db,{','.join(METHODS)}\n-5.0,{','.join('0.5' for _ in METHODS)}\n"
        )


def load_generator():
    spec = importlib.util.spec_from_file_location("update_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(root, *args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=root, capture_output=True, text=True)


def test_marked_sections_are_rewritten_and_the_rest_kept(tmp_path):
    write_inputs(tmp_path)
    (tmp_path / "README.md").write_text(
        "# Title\n\nkept\n<!-- results:start -->\nold\n<!-- results:end -->\n\nalso kept\n"
    )
    (tmp_path / "docs" / "results.md").write_text(
        "intro\n<!-- results:start -->\nold\n<!-- results:end -->\n"
        "middle\n<!-- sweep:start -->\nold\n<!-- sweep:end -->\n"
    )
    assert run(tmp_path).returncode == 0
    readme = (tmp_path / "README.md").read_text()
    assert readme.startswith("# Title\n\nkept\n<!-- results:start -->\n")
    assert readme.endswith("<!-- results:end -->\n\nalso kept\n") and "old" not in readme
    assert "| `unet_mask`: U-Net as a mel gain on the noisy STFT | 1.50 | 1.375 | 1.500 | 1.500 |" in readme
    assert "Spectrogram MSE on the 10 test clips: U-Net 0.0123, identity baseline 0.2000 (ratio 0.070)." in readme
    assert "| 07 | 4 |" not in readme, "the per-group tables belong in docs/results.md"

    results = (tmp_path / "docs" / "results.md").read_text()
    assert results.startswith("intro\n<!-- results:start -->\n") and "\nmiddle\n<!-- sweep:start -->\n" in results
    assert "old" not in results
    assert "| test | 10 | 0.0123 | 0.2000 | 0.070 |" in results and "Training: 7 steps" in results
    assert "| 07 | 4 | 0.5000 | 0.2500 |" in results and "| 25-29 | 4 |" in results
    assert "| female | " + " | ".join(["0.750"] * len(METHODS)) + " |" in results
    assert "| -5 | " + " | ".join(["0.50"] * len(METHODS)) + " |" in results  # SI-SDR against SNR
    assert "| -5 | " + " | ".join(["0.500"] * len(METHODS)) + " |" in results

    params = (tmp_path / "docs" / "params.md").read_text()
    assert "| `snr_db` | float from -40 to 40 | `-8.0` | `mix` |" in params
    assert "| `workers` | int >= 0 | `0` | `references`, `evaluate`, `sweep`, `samples` (unlisted) |" in params
    assert run(tmp_path, "--check").returncode == 0


def test_check_names_what_is_out_of_date_and_writes_nothing(tmp_path):
    write_inputs(tmp_path)
    (tmp_path / "README.md").write_text("<!-- results:start -->\nold\n<!-- results:end -->\n")
    (tmp_path / "docs" / "results.md").write_text(
        "<!-- results:start -->\n<!-- results:end -->\n<!-- sweep:start -->\n<!-- sweep:end -->\n"
    )
    result = run(tmp_path, "--check")
    assert result.returncode == 1
    assert "out of date: README.md, docs/results.md, docs/params.md" in result.stderr
    assert (tmp_path / "README.md").read_text() == "<!-- results:start -->\nold\n<!-- results:end -->\n"
    assert not (tmp_path / "docs" / "params.md").exists()


def test_a_file_without_markers_is_refused(tmp_path):
    write_inputs(tmp_path)
    (tmp_path / "README.md").write_text("# no markers\n")
    (tmp_path / "docs" / "results.md").write_text("<!-- results:start -->\n<!-- results:end -->\n")
    result = run(tmp_path)
    assert result.returncode == 1 and "README.md has no <!-- results:start -->" in result.stderr
    assert (tmp_path / "README.md").read_text() == "# no markers\n"
    (tmp_path / "README.md").write_text("<!-- results:start -->\n<!-- results:end -->\n")
    result = run(tmp_path)
    assert result.returncode == 1 and "docs/results.md has no <!-- sweep:start -->" in result.stderr
    assert not (tmp_path / "docs" / "params.md").exists()


def git(root, *args):
    identity = ["-c", "user.name=Docs Test", "-c", "user.email=docs-test@example.invalid"]
    subprocess.run(["git", *identity, *args], cwd=root, check=True, capture_output=True)


def test_a_revision_is_read_as_committed_and_check_names_what_changed_since(tmp_path):
    """As after `make repro` on another CPU: the workspace's metrics differ from the committed ones."""
    write_inputs(tmp_path)
    (tmp_path / "README.md").write_text("<!-- results:start -->\n<!-- results:end -->\n")
    (tmp_path / "docs" / "results.md").write_text(
        "<!-- results:start -->\n<!-- results:end -->\n<!-- sweep:start -->\n<!-- sweep:end -->\n"
    )
    assert run(tmp_path).returncode == 0
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "docs from these metrics")
    metrics = json.loads((tmp_path / "metrics" / "eval.json").read_text())
    (tmp_path / "metrics" / "eval.json").write_text(json.dumps(metrics | {"test.mse": 0.0124}))

    generator = load_generator()
    committed = generator.generated(tmp_path, "HEAD")
    assert committed[generator.README] == (tmp_path / "README.md").read_text()  # the committed metrics' table
    assert "U-Net 0.0124" in generator.generated(tmp_path)[generator.README]  # the workspace's
    result = run(tmp_path, "--check")
    assert result.returncode == 1
    assert "out of date: README.md, docs/results.md\n" in result.stderr
    assert "changed since HEAD (as after `dvc repro` on another CPU): metrics/eval.json\n" in result.stderr
    assert "`make docs`" in result.stderr and "U-Net 0.0123" in (tmp_path / "README.md").read_text()


def test_a_file_missing_at_the_revision_is_not_committed(tmp_path):
    write_inputs(tmp_path)
    generator = load_generator()
    with pytest.raises(generator.NotCommitted):
        generator.generated(tmp_path, "HEAD")  # no git repository at all
