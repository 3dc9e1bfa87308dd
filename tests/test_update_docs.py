"""scripts/update_docs.py rewrites only its marked sections and docs/params.md, from the committed files."""

import importlib.util
import json
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

from audiomnist_denoise.names import METHODS

SCRIPT = REPO / "scripts" / "update_docs.py"
METRICS = ("si_sdr", "pesq", "stoi", "estoi")
KINDS = ("white", "pink", "brown", "babble")
SWEEP_KINDS = tuple(yaml.safe_load((REPO / "params.yaml").read_text())["evaluate"]["sweep_kinds"])
# Every marked section of docs/results.md, empty.
RESULTS_MARKERS = "".join(
    f"<!-- {name}:start -->\n<!-- {name}:end -->\n" for name in ("results", "conditions", "sweep")
)

README_MARKERS = "<!-- results:start -->\n<!-- results:end -->\n<!-- conditions:start -->\n<!-- conditions:end -->\n"
OLD_README = "<!-- results:start -->\nold\n<!-- results:end -->\n<!-- conditions:start -->\n<!-- conditions:end -->\n"


def kind_metrics(offset: float) -> dict:
    """conditions.json's metrics of one set of clips: unet_mask best, the ceiling above it, noisy lowest."""
    values = {method: 1.5 for method in METHODS} | {"unet_mask": 2.0, "oracle_mask": 3.0, "noisy": 1.0}
    return {
        kind: {method: {metric: value + offset for metric in METRICS} for method, value in values.items()}
        for kind in (*KINDS, "mean")
    }


def write_inputs(root):
    (root / "metrics").mkdir()
    (root / "plots" / "eval").mkdir(parents=True)
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
    metrics["harm"] = []
    (root / "metrics" / "eval.json").write_text(json.dumps(metrics))
    conditions = {"snr_db": -8.0, "test": kind_metrics(0.0), "natural": kind_metrics(0.25), "harm": []}
    (root / "metrics" / "conditions.json").write_text(json.dumps(conditions))
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
    for kind in SWEEP_KINDS:
        (root / "plots" / "sweep" / kind).mkdir(parents=True)
        for metric in METRICS:
            (root / "plots" / "sweep" / kind / f"{metric}.csv").write_text(
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
        "<!-- conditions:start -->\nold\n<!-- conditions:end -->\n"
    )
    (tmp_path / "docs" / "results.md").write_text(
        "intro\n<!-- results:start -->\nold\n<!-- results:end -->\n"
        "kinds\n<!-- conditions:start -->\nold\n<!-- conditions:end -->\n"
        "middle\n<!-- sweep:start -->\nold\n<!-- sweep:end -->\n"
    )
    assert run(tmp_path).returncode == 0
    readme = (tmp_path / "README.md").read_text()
    assert readme.startswith("# Title\n\nkept\n<!-- results:start -->\n")
    assert "<!-- results:end -->\n\nalso kept\n<!-- conditions:start -->\n" in readme and "old" not in readme
    assert "The default model trains on the clips of the training speakers" in readme  # and how it holds up:
    assert "| test speakers | white, -8 dB |" in readme and readme.endswith(
        "every condition, to the 3 decimals shown.\n<!-- conditions:end -->\n"
    )
    assert "| `unet_mask`: U-Net as a mel gain on the noisy STFT | 1.50 | 1.375 | 1.500 | 1.500 |" in readme
    assert "Spectrogram MSE on the 10 test clips: U-Net 0.0123, identity baseline 0.2000 (ratio 0.070)." in readme
    assert "| 07 | 4 |" not in readme, "the per-group tables belong in docs/results.md"

    results = (tmp_path / "docs" / "results.md").read_text()
    assert results.startswith("intro\n<!-- results:start -->\n") and "\nmiddle\n<!-- sweep:start -->\n" in results
    assert "\nkinds\n<!-- conditions:start -->\n" in results
    assert "old" not in results
    assert "| test | 10 | 0.0123 | 0.2000 | 0.070 |" in results and "Training: 7 steps" in results
    assert "| 07 | 4 | 0.5000 | 0.2500 |" in results and "| 25-29 | 4 |" in results
    assert "| female | " + " | ".join(["0.750"] * len(METHODS)) + " |" in results
    sweep = results[results.index("<!-- sweep:start -->") :]
    assert [line for line in sweep.splitlines() if line.startswith("### ")] == [
        f"### {kind.capitalize()} noise" for kind in SWEEP_KINDS
    ]
    assert sweep.count("| -5 | " + " | ".join(["0.50"] * len(METHODS)) + " |") == len(SWEEP_KINDS)  # SI-SDR
    assert sweep.count("| -5 | " + " | ".join(["0.500"] * len(METHODS)) + " |") == 3 * len(SWEEP_KINDS)
    assert sweep.count("`unet_mask`'s STOI is at or above the noisy input's at every SNR") == len(SWEEP_KINDS)

    params = (tmp_path / "docs" / "params.md").read_text()
    assert "| `snr_db` | float from -40 to 40 | `-8.0` | `mix`, `references`, `evaluate`, `conditions` |" in params
    assert "| `workers` | int >= 0 | `0` | `references`, `evaluate`, `conditions`, `samples` (unlisted) |" in params
    assert run(tmp_path, "--check").returncode == 0


def generate_results(root) -> str:
    (root / "README.md").write_text(README_MARKERS)
    (root / "docs" / "results.md").write_text(RESULTS_MARKERS)
    done = run(root)
    assert done.returncode == 0, done.stderr
    results = (root / "docs" / "results.md").read_text()
    return results[results.index("<!-- conditions:start -->") : results.index("<!-- conditions:end -->")]


def test_each_set_has_a_table_per_metric_of_every_method_under_each_noise_kind(tmp_path):
    write_inputs(tmp_path)
    section = generate_results(tmp_path)
    captions = [line for line in section.splitlines() if line.endswith(" dB:")]
    assert captions == [
        f"{label}, {clips}, at -8 dB:"
        for clips in ("test speakers", "natural voices")
        for label in ("SI-SDR (dB)", "PESQ", "STOI", "ESTOI")
    ]
    assert section.count("| method | white | pink | brown | babble | mean of the kinds |") == 8
    tables = section.split(" dB:\n\n")[1:]
    # the best method per column in bold; the ceiling above it is not, and is named as one
    assert "| `unet_mask` | " + " | ".join(["**2.00**"] * 5) + " |" in tables[0]
    assert "| `oracle_mask` (ceiling) | " + " | ".join(["3.00"] * 5) + " |" in tables[0]
    assert "| `noisy` | " + " | ".join(["1.000"] * 5) + " |" in tables[2]  # STOI, test speakers
    assert "| `unet_mask` | " + " | ".join(["**2.250**"] * 5) + " |" in tables[6]  # STOI, natural voices
    assert all(table.count("\n| `") == len(METHODS) for table in tables)
    assert section.strip().endswith(
        "The default method (`unet_mask`) is at or above the noisy input's STOI and PESQ in every condition, "
        "to the 3 decimals shown."
    )


def test_the_harm_list_and_a_set_not_scored_are_said_in_words(tmp_path):
    write_inputs(tmp_path)
    conditions = json.loads((tmp_path / "metrics" / "conditions.json").read_text())
    del conditions["natural"]  # as from a run before the natural voices
    (tmp_path / "metrics" / "conditions.json").write_text(json.dumps(conditions))
    metrics = json.loads((tmp_path / "metrics" / "eval.json").read_text())
    harm = ["test speakers, babble -8 dB: unet_mask STOI 0.515 < noisy 0.524", "test speakers, pink -8 dB: x"]
    (tmp_path / "metrics" / "eval.json").write_text(json.dumps(metrics | {"harm": harm}))
    section = generate_results(tmp_path)
    assert "No natural voices in metrics/conditions.json: it is from a run before they were scored.\n" in section
    assert section.count(" dB:\n\n| method |") == 4  # the test speakers' alone
    assert section.strip().endswith(
        "The default method (`unet_mask`) is below the noisy input's STOI or PESQ in:\n\n"
        "- test speakers, babble -8 dB: unet_mask STOI 0.515 < noisy 0.524\n- test speakers, pink -8 dB: x"
    )
    del metrics["harm"]
    (tmp_path / "metrics" / "eval.json").write_text(json.dumps(metrics))
    assert (
        generate_results(tmp_path)
        .strip()
        .endswith("metrics/eval.json has no no-harm list: it is from a run before the `conditions` stage.")
    )


def test_a_missing_metrics_file_is_one_line(tmp_path):
    write_inputs(tmp_path)
    (tmp_path / "metrics" / "conditions.json").unlink()
    (tmp_path / "README.md").write_text(README_MARKERS)
    (tmp_path / "docs" / "results.md").write_text(RESULTS_MARKERS)
    result = run(tmp_path)
    assert result.returncode == 1
    assert result.stderr == "error: metrics/conditions.json not found: run `dvc repro` first\n"


def test_check_names_what_is_out_of_date_and_writes_nothing(tmp_path):
    write_inputs(tmp_path)
    (tmp_path / "README.md").write_text(OLD_README)
    (tmp_path / "docs" / "results.md").write_text(RESULTS_MARKERS)
    result = run(tmp_path, "--check")
    assert result.returncode == 1
    assert "out of date: README.md, docs/results.md, docs/params.md" in result.stderr
    assert (tmp_path / "README.md").read_text() == OLD_README
    assert not (tmp_path / "docs" / "params.md").exists()


def test_a_file_without_markers_is_refused(tmp_path):
    write_inputs(tmp_path)
    (tmp_path / "README.md").write_text("# no markers\n")
    (tmp_path / "docs" / "results.md").write_text("<!-- results:start -->\n<!-- results:end -->\n")
    result = run(tmp_path)
    assert result.returncode == 1 and "README.md has no <!-- results:start -->" in result.stderr
    assert (tmp_path / "README.md").read_text() == "# no markers\n"
    (tmp_path / "README.md").write_text(README_MARKERS)
    result = run(tmp_path)
    assert result.returncode == 1 and "docs/results.md has no <!-- conditions:start -->" in result.stderr
    assert not (tmp_path / "docs" / "params.md").exists()


def git(root, *args):
    identity = ["-c", "user.name=Docs Test", "-c", "user.email=docs-test@example.invalid"]
    subprocess.run(["git", *identity, *args], cwd=root, check=True, capture_output=True)


def test_a_revision_is_read_as_committed_and_check_names_what_changed_since(tmp_path):
    """As after `make repro` on another CPU: the workspace's metrics differ from the committed ones."""
    write_inputs(tmp_path)
    (tmp_path / "README.md").write_text(README_MARKERS)
    (tmp_path / "docs" / "results.md").write_text(RESULTS_MARKERS)
    assert run(tmp_path).returncode == 0
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "docs from these metrics")
    metrics = json.loads((tmp_path / "metrics" / "eval.json").read_text())
    (tmp_path / "metrics" / "eval.json").write_text(json.dumps(metrics | {"test.mse": 0.0124}))
    conditions = json.loads((tmp_path / "metrics" / "conditions.json").read_text())
    conditions["natural"]["pink"]["unet_mask"]["stoi"] = 2.875
    (tmp_path / "metrics" / "conditions.json").write_text(json.dumps(conditions))
    sweep = tmp_path / "plots" / "sweep" / SWEEP_KINDS[-1] / "pesq.csv"
    sweep.write_text(sweep.read_text().replace("0.5\n", "0.625\n"))

    generator = load_generator()
    committed = generator.generated(tmp_path, "HEAD")
    assert committed[generator.README] == (tmp_path / "README.md").read_text()  # the committed metrics' table
    assert committed[generator.RESULTS] == (tmp_path / "docs" / "results.md").read_text()
    assert "U-Net 0.0124" in generator.generated(tmp_path)[generator.README]  # the workspace's
    workspace = generator.generated(tmp_path)[generator.RESULTS]
    assert "| **2.875** |" in workspace and "| 0.625 |\n" in workspace
    result = run(tmp_path, "--check")
    assert result.returncode == 1
    assert "out of date: README.md, docs/results.md\n" in result.stderr
    changed = f"metrics/eval.json, metrics/conditions.json, plots/sweep/{SWEEP_KINDS[-1]}/pesq.csv"
    assert f"changed since HEAD (as after `dvc repro` on another CPU): {changed}\n" in result.stderr
    assert "`make docs`" in result.stderr and "U-Net 0.0123" in (tmp_path / "README.md").read_text()


def test_a_file_missing_at_the_revision_is_not_committed(tmp_path):
    write_inputs(tmp_path)
    generator = load_generator()
    with pytest.raises(generator.NotCommitted):
        generator.generated(tmp_path, "HEAD")  # no git repository at all
