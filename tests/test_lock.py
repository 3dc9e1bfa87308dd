"""requirements.lock agrees with pyproject.toml: every direct pin is locked at its version, with hashes, CPU-only."""

import re
import tomllib
from pathlib import Path

from conftest import REPO
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

# dvclive requires this pure-Python NVML binding on every platform; it carries no CUDA library.
ALLOWED_NVIDIA = {"nvidia-ml-py"}


def direct_requirements(pyproject: Path) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text())["project"]
    return [Requirement(line) for line in project["dependencies"] + project["optional-dependencies"]["test"]]


def locked_entries(lock: Path) -> list[str]:
    """One string per requirement in the lock, its backslash-continued hash lines joined on."""
    lines = (line.strip() for line in lock.read_text().replace("\\\n", " ").splitlines())
    return [line for line in lines if line and not line.startswith(("#", "-"))]


def lock_problems(pyproject: Path, lock: Path) -> list[str]:
    """Each way the lock falls short of pyproject.toml, one message per problem, naming the package."""
    problems = []
    locked: dict[str, Version] = {}
    for entry in locked_entries(lock):
        requirement = Requirement(entry.split(" --hash=", 1)[0])
        name = canonicalize_name(requirement.name)
        pins = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        if len(pins) != 1:
            problems.append(f"{name}: locked as {requirement.specifier or 'unpinned'}, not one == version")
            continue
        locked[name] = Version(pins[0])
        if not re.search(r"--hash=sha256:[0-9a-f]{64}", entry):
            problems.append(f"{name}: locked without a --hash=sha256")
        if name.startswith("nvidia-") and name not in ALLOWED_NVIDIA:
            problems.append(f"{name}: a CUDA package in the lock")
    for requirement in direct_requirements(pyproject):
        name = canonicalize_name(requirement.name)
        if name not in locked:
            problems.append(f"{name}: in pyproject.toml ({requirement.specifier}) but not in the lock")
        elif not requirement.specifier.contains(locked[name], prereleases=True):
            # PEP 440 lets ==2.13.0 admit 2.13.0+cpu, so the local CPU build matches its public pin.
            problems.append(f"{name}: pyproject.toml asks {requirement.specifier}, the lock has =={locked[name]}")
    if "torch" in locked and locked["torch"].local != "cpu":
        problems.append(f"torch: locked as =={locked['torch']}, not the CPU build")
    return problems


def test_lock_matches_pyproject():
    assert lock_problems(REPO / "pyproject.toml", REPO / "requirements.lock") == []


def test_a_changed_pin_is_reported_by_name(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    original = (REPO / "pyproject.toml").read_text()
    # The spelling of a name does not matter (PEP 503): only pyyaml's version is wrong.
    doctored = original.replace('"pyyaml==6.0.4"', '"pyyaml==6.0.3"').replace('"scikit-learn==', '"Scikit_Learn==')
    assert doctored != original
    pyproject.write_text(doctored)
    assert lock_problems(pyproject, REPO / "requirements.lock") == [
        "pyyaml: pyproject.toml asks ==6.0.3, the lock has ==6.0.4"
    ]


def test_a_doctored_lock_is_reported_by_name(tmp_path):
    lock = tmp_path / "requirements.lock"
    original = (REPO / "requirements.lock").read_text()
    # torch loses its hashes and its CPU label, tqdm its pin, and a CUDA library creeps in.
    doctored = re.sub(
        r"^torch==2\.13\.0\+cpu \\\n(    --hash=\S+ \\\n)*    --hash=\S+\n", "torch==2.13.0\n", original, flags=re.M
    )
    doctored = doctored.replace("tqdm==", "tqdm>=")
    doctored += "nvidia-cublas-cu12==12.8.4.1 \\\n    --hash=sha256:" + "0" * 64 + "\n"
    lock.write_text(doctored)
    assert lock_problems(REPO / "pyproject.toml", lock) == [
        "torch: locked without a --hash=sha256",
        "tqdm: locked as >=4.70.1, not one == version",
        "nvidia-cublas-cu12: a CUDA package in the lock",
        "tqdm: in pyproject.toml (==4.70.1) but not in the lock",
        "torch: locked as ==2.13.0, not the CPU build",
    ]


# pip's options that name where packages come from; in the lock they would name the locking machine's folders.
SOURCE_OPTIONS = ("--index-url", "-i", "--extra-index-url", "--find-links", "-f")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def source_lines(lock_text: str) -> list[str]:
    """The lines of a requirements file that set an index or a find-links location."""
    lines = (line.strip() for line in lock_text.splitlines())
    return [line for line in lines if line.split("=", 1)[0].split(" ", 1)[0] in SOURCE_OPTIONS]


def test_the_lock_names_no_index_or_package_folder():
    assert source_lines((REPO / "requirements.lock").read_text()) == []
    # The check can fail: each spelling pip accepts is caught.
    header = "--extra-index-url file:///opt/pypi/simple\n-f /opt/wheels\n--find-links=/opt/w\n-i https://x\n"
    assert len(source_lines(header + (REPO / "requirements.lock").read_text())) == 4


def test_make_lock_emits_no_sources_and_setup_passes_the_torch_cpu_index():
    makefile = (REPO / "Makefile").read_text()
    assert "--no-emit-index-url" in makefile and "--no-emit-find-links" in makefile
    assert f"TORCH_INDEX ?= {TORCH_CPU_INDEX}" in makefile
    assert "--extra-index-url $(TORCH_INDEX)" in makefile
    # Both the install (setup) and pip-compile (lock) ask for it where the machine's pip config lacks torch+cpu.
    assert "$(call torch_index,$(BIN)/python) -r $(LOCK)" in makefile
    assert "$(call torch_index,$(LOCK_VENV)/bin/python)" in makefile
