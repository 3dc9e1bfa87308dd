"""Faults injected into the data stages: a SIGKILL part-way through, and corpora with bad files.

Each test runs the real stage script (`python stages/NAME.py`) in a temporary project
folder holding params.yaml and the inputs the stage reads.
"""

import json
import os
import runpy
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, SMALL_FEATURES, make_corpus, set_params, tone

from audiomnist_denoise.data.corpus import META_FILE
from audiomnist_denoise.data.noise import mix_corpus, noise_maker
from audiomnist_denoise.features.cache import NOISY_FILE
from audiomnist_denoise.fsutil import atomic_directory

# Two workers, so that a kill has a process pool to take down as well; small spectrograms.
SMALL = dict(
    data__workers=2,
    noise__workers=2,
    features__workers=2,
    **SMALL_FEATURES,
)
KILL_DEADLINE_S = 60


def stage_project(folder: Path, **params) -> Path:
    """A folder to run stage scripts in: the repository's params.yaml with SMALL and `params` set."""
    folder.mkdir(parents=True)
    shutil.copy(REPO / "params.yaml", folder / "params.yaml")
    set_params(folder, **(SMALL | params))
    return folder


def stage_command(stage: str) -> list[str]:
    return [sys.executable, str(REPO / "stages" / f"{stage}.py")]


def run_stage(project: Path, stage: str) -> subprocess.CompletedProcess:
    return subprocess.run(stage_command(stage), cwd=project, capture_output=True, text=True)


def partial_folders(output: Path) -> list[Path]:
    return list(output.parent.glob(f".{output.name}.partial-*"))


def read_outputs(project: Path, outputs: list[Path]) -> dict[str, bytes]:
    """Every file of `outputs` (folders or files) by its path in the project."""
    files = [path for output in outputs for path in ([output] if output.is_file() else sorted(output.rglob("*")))]
    return {path.relative_to(project).as_posix(): path.read_bytes() for path in files if path.is_file()}


def run_stage_here(project: Path, stage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stage script's main() in this process: a clean run without a second Python start-up."""
    monkeypatch.chdir(project)
    monkeypatch.syspath_prepend(str(REPO / "stages"))
    runpy.run_path(str(REPO / "stages" / f"{stage}.py"))["main"]()


def kill_part_way(project: Path, stage: str, write: str, calls: int) -> None:
    """Run `stage` held part-way: after `calls` calls of its write function `write` ("module:function") it
    blocks (tests/gated_stage.py). SIGKILL it with its workers there: the kill lands mid-stage, every time."""
    marker = project / f"{stage}.held"
    command = [sys.executable, str(REPO / "tests" / "gated_stage.py"), str(REPO / "stages" / f"{stage}.py")]
    with open(project / f"{stage}.log", "w") as log:
        process = subprocess.Popen(
            [*command, write, str(calls), str(marker)], cwd=project, stdout=log, stderr=log, start_new_session=True
        )
    deadline = time.monotonic() + KILL_DEADLINE_S
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(
                f"stage {stage} ended ({process.returncode}) before {write} was called {calls} time(s):\n"
                + (project / f"{stage}.log").read_text()
            )
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"stage {stage} did not call {write} {calls} time(s) in {KILL_DEADLINE_S} s")
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)  # the group: the stage and its pool of workers
    assert process.wait() == -signal.SIGKILL, (project / f"{stage}.log").read_text()


def check_kill_and_rerun(
    project: Path,
    stage: str,
    outputs: list[Path],
    write: tuple[str, int],
    started_writing: Callable[[Path], bool],
    monkeypatch: pytest.MonkeyPatch,
    keep_old: bool,
) -> None:
    """A clean run, a run killed part-way (after `write`: its write function and how many calls), and a rerun
    that gives the clean run's bytes and no leftovers.

    DVC deletes a stage's outputs before running it (`keep_old=False`); a stage run by hand
    finds its old outputs in place (`keep_old=True`), and a kill must leave them whole.
    """
    run_stage_here(project, stage, monkeypatch)
    clean_run = read_outputs(project, outputs)
    if not keep_old:
        for output in outputs:
            if output.is_dir():
                shutil.rmtree(output)
            else:
                output.unlink()
    kill_part_way(project, stage, *write)
    left = read_outputs(project, outputs)
    assert left == (clean_run if keep_old else {}), (
        f"a kill part-way left {len(left)} output file(s) ({sorted(left)[:3]}...), "
        + ("not the old outputs whole" if keep_old else "where there should be none")
    )
    assert any(started_writing(partial) for partial in partial_folders(outputs[0])), (
        "killed while writing, yet no partial folder holds what was written"
    )
    rerun = run_stage(project, stage)
    assert rerun.returncode == 0, rerun.stderr
    assert read_outputs(project, outputs) == clean_run
    assert not partial_folders(outputs[0])


def wrote_a_wav(partial: Path) -> bool:
    return any(partial.rglob("*.wav"))


def created_the_arrays(partial: Path) -> bool:
    """The arrays exist from the start (filled as clips come), the index only at the end."""
    return (partial / NOISY_FILE).exists()


@pytest.fixture(scope="module")
def audiomnist_copy(tmp_path_factory) -> Path:
    """400 clips (4 speakers x 10 digits x 10 repetitions): enough for two workers to share."""
    return make_corpus(tmp_path_factory.mktemp("audiomnist") / "data", speakers=("01", "02", "03", "04"), reps=10)


def test_corpus_killed_part_way_reruns_to_the_clean_runs_bytes(audiomnist_copy, tmp_path, monkeypatch):
    project = stage_project(tmp_path / "project", data__source="audiomnist", data__audiomnist_dir=str(audiomnist_copy))
    outputs = [project / "data" / "raw", project / "metrics" / "corpus.json"]
    check_kill_and_rerun(project, "corpus", outputs, ("shutil:copyfile", 1), wrote_a_wav, monkeypatch, keep_old=False)


def test_mix_killed_part_way_reruns_to_the_clean_runs_bytes(audiomnist_copy, tmp_path, monkeypatch):
    project = stage_project(tmp_path / "project")
    shutil.copytree(audiomnist_copy, project / "data" / "raw")
    write = ("scipy.io.wavfile:write", 1)
    check_kill_and_rerun(project, "mix", [project / "data" / "noisy"], write, wrote_a_wav, monkeypatch, keep_old=False)


def test_featurize_killed_part_way_keeps_the_old_cache_and_reruns_to_its_bytes(audiomnist_copy, tmp_path, monkeypatch):
    project = stage_project(tmp_path / "project")
    raw = shutil.copytree(audiomnist_copy, project / "data" / "raw")
    mix_corpus(raw, project / "data" / "noisy", noise_maker("white", raw, 1, raw), -8.0, 0, 1)
    outputs = [project / "data" / "features"]
    write = ("numpy.lib.format:open_memmap", 2)  # the clean and the noisy array created
    check_kill_and_rerun(project, "featurize", outputs, write, created_the_arrays, monkeypatch, keep_old=True)


def test_atomic_directory_removes_a_killed_runs_leftovers(tmp_path):
    leftover = tmp_path / ".features.partial-x8k2m1q0"
    leftover.mkdir()
    (leftover / "clean.npy").write_bytes(b"half")
    with atomic_directory(tmp_path / "features") as partial:
        (partial / "index.csv").write_text("row\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["features"]


BAD_OF_EACH_KIND = 5  # in 500 clips: 1 % each


@pytest.fixture(scope="module")
def corpus_with_bad_files(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """500 tiny clips of 5 speakers and 25 bad files, 5 of each kind; the bad ones' paths with their reasons."""
    speakers = ("01", "02", "03", "04", "05")
    root = make_corpus(tmp_path_factory.mktemp("bad") / "data", speakers=speakers, reps=10, rate=8000, seconds=0.05)
    good_clip = (root / "05" / "0_05_0.wav").read_bytes()
    stereo = np.stack([tone(0.05, 8000, 200), tone(0.05, 8000, 300)], axis=1)
    (root / "61").mkdir()
    reasons = {}
    for digit in range(BAD_OF_EACH_KIND):
        (root / "01" / f"{digit}_01_3.wav").write_bytes(b"RIFF\x00\x00\x00\x00no wav after all")
        reasons[f"01/{digit}_01_3.wav"] = "cannot decode audio"
        (root / "02" / f"{digit}_02_3.wav").write_bytes(b"")
        reasons[f"02/{digit}_02_3.wav"] = "empty file (0 bytes)"
        sf.write(root / "03" / f"{digit}_03_3.wav", stereo, 8000, subtype="PCM_16")
        reasons[f"03/{digit}_03_3.wav"] = "2 channels, expected mono"
        (root / "61" / f"{digit}_61_0.wav").write_bytes(good_clip)
        reasons[f"61/{digit}_61_0.wav"] = f"speaker 61 has no entry in {META_FILE}"
    wrong_names = {
        "04/0_4_0.wav": "not an AudioMNIST clip name",
        "04/1_04_01.wav": "not an AudioMNIST clip name",
        "04/one_04_0.wav": "not an AudioMNIST clip name",
        "04/2_05_0.wav": "clip of speaker 05 is not in folder 05/",
        "3_04_0.wav": "clip of speaker 04 is not in folder 04/",
    }
    for name in wrong_names:
        (root / name).write_bytes(good_clip)
    return root, reasons | wrong_names


def _reasons_listed(metrics: dict) -> dict[str, str]:
    return {bad["path"]: bad["reason"] for bad in metrics["bad_files"]}


def _check_reasons(listed: dict[str, str], expected: dict[str, str]) -> None:
    assert sorted(listed) == sorted(expected)
    assert all(listed[path].startswith(reason) for path, reason in expected.items())


def test_corpus_stops_on_bad_files_naming_every_one(corpus_with_bad_files, tmp_path):
    source, expected = corpus_with_bad_files
    project = stage_project(tmp_path / "project", data__source="audiomnist", data__audiomnist_dir=str(source))
    result = run_stage(project, "corpus")
    assert result.returncode == 1
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert error.startswith(f"error: {source}: 25 bad file(s): ")
    assert all(f"{path}: {expected[path]}" in error for path in sorted(expected)[:20])
    assert "; and 5 more (all listed in metrics/corpus.json; data.on_bad_file: skip leaves them out)" in error
    metrics = json.loads((project / "metrics" / "corpus.json").read_text())
    assert metrics["clips"] == {"kept": 0, "bad": 25}
    _check_reasons(_reasons_listed(metrics), expected)
    assert not (project / "data" / "raw").exists() and not partial_folders(project / "data" / "raw")


def test_corpus_skips_bad_files_keeping_exactly_the_good_ones(corpus_with_bad_files, tmp_path):
    source, expected = corpus_with_bad_files
    project = stage_project(
        tmp_path / "project", data__source="audiomnist", data__audiomnist_dir=str(source), data__on_bad_file="skip"
    )
    result = run_stage(project, "corpus")
    assert result.returncode == 0, result.stderr
    assert "485 AudioMNIST clips of 5 speakers" in result.stderr and "25 bad file(s) left out" in result.stderr
    raw = project / "data" / "raw"
    good = {path.relative_to(source).as_posix() for path in source.rglob("*.wav")} - set(expected)
    kept = {path.relative_to(raw).as_posix() for path in raw.rglob("*.wav")}
    assert kept == good and len(kept) == 500 - 3 * BAD_OF_EACH_KIND
    assert all((raw / path).read_bytes() == (source / path).read_bytes() for path in kept)
    metrics = json.loads((project / "metrics" / "corpus.json").read_text())
    assert metrics["clips"] == {"kept": 485, "bad": 25}
    _check_reasons(_reasons_listed(metrics), expected)
