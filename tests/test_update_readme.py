"""scripts/update_readme.py rewrites only the results section, from the metrics files."""

import json
import subprocess
import sys

from conftest import REPO

from audiomnist_denoise.evaluation.methods import METHODS


def write_inputs(root):
    (root / "metrics").mkdir()
    (root / "plots" / "eval").mkdir(parents=True)
    (root / "dvclive").mkdir()
    metrics = {f"{split}.{key}": value for split in ("val", "test") for key, value in
               (("clips", 10), ("mse", 0.0123), ("identity_mse", 0.2), ("mse_ratio", 0.07))}  # fmt: skip
    metrics |= {f"test.{method}.{metric}": 1.5 for method in METHODS for metric in ("si_sdr", "pesq", "stoi", "estoi")}
    metrics["test.unet_mask.pesq"] = 1.375
    (root / "metrics" / "eval.json").write_text(json.dumps(metrics))
    quality = ",".join(f"{method}_{metric}" for method in METHODS for metric in ("si_sdr", "pesq", "stoi"))
    values = ",".join("0.75" for _ in METHODS for _ in range(3))
    (root / "dvclive" / "metrics.json").write_text(json.dumps({"step": 7, "train": {"loss": 0.02}}))
    for name, column, value in [("by_digit", "digit", "3"), ("by_speaker", "speaker", "07"),
                                ("by_gender", "gender", "female"), ("by_accent", "accent", "german"),
                                ("by_age", "age_band", "25-29")]:  # fmt: skip
        (root / "plots" / "eval" / f"{name}.csv").write_text(
            f"{column},mse,identity_mse,clips,{quality}\n{value},0.5,0.25,4,{values}\n"
        )


def test_results_section_is_rewritten_and_the_rest_kept(tmp_path):
    write_inputs(tmp_path)
    readme = "# Title\n\nkept\n<!-- results:start -->\nold numbers\n<!-- results:end -->\n\nalso kept\n"
    (tmp_path / "README.md").write_text(readme)
    script = REPO / "scripts" / "update_readme.py"
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, check=True, capture_output=True)
    text = (tmp_path / "README.md").read_text()
    assert text.startswith("# Title\n\nkept\n<!-- results:start -->\n") and text.endswith(
        "<!-- results:end -->\n\nalso kept\n"
    )
    assert "old numbers" not in text
    assert "| test | 10 | 0.0123 | 0.2000 | 0.070 |" in text
    assert "| 07 | 4 | 0.5000 | 0.2500 |" in text and "| 25-29 | 4 |" in text
    assert "Training: 7 steps" in text
    assert "| `unet_mask`: U-Net as a mel gain on the noisy STFT | 1.50 | 1.375 | 1.500 | 1.500 |" in text
    assert "| female | " + " | ".join(["0.750"] * len(METHODS)) + " |" in text


def test_a_readme_without_markers_is_refused(tmp_path):
    write_inputs(tmp_path)
    (tmp_path / "README.md").write_text("# no markers\n")
    script = REPO / "scripts" / "update_readme.py"
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1 and "has no <!-- results:start -->" in result.stderr
    assert (tmp_path / "README.md").read_text() == "# no markers\n"
