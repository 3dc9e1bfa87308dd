"""How users reach the project from outside: the console script and the model as a DVC artifact."""

import subprocess
import sys
from pathlib import Path

import yaml
from conftest import REPO


def test_the_console_script_runs_the_command_line():
    script = Path(sys.executable).parent / "audiomnist-denoise"
    done = subprocess.run([script, "denoise", "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: audiomnist-denoise denoise")


def test_python_dash_m_still_runs_it():
    done = subprocess.run(
        [sys.executable, "-m", "audiomnist_denoise", "nonsense"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2 and "invalid choice: 'nonsense'" in done.stderr


def test_the_model_is_a_dvc_artifact_of_the_train_stage():
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())
    model = pipeline["artifacts"]["unet"]
    assert model["type"] == "model" and model["desc"]
    assert model["path"] in pipeline["stages"]["train"]["outs"]
