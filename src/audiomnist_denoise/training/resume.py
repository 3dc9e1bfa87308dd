"""A training run's resume point: everything needed to continue an interrupted run exactly.

The file holds the weights, the optimiser, scheduler and loss-scaler states, the best
weights so far, the logged history and the random states of Python, NumPy and PyTorch,
plus a fingerprint of what the run depends on (params, initial weights, data, precision,
device, PyTorch version). A rerun resumes only when the fingerprint matches, so a
checkpoint of another run is never continued by mistake. Writes are atomic (a temporary
file, then a rename), so a run killed mid-write leaves the previous resume point whole.
"""

import hashlib
import json
import random
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from ..fsutil import atomic_file

KIND = "audiomnist-denoise-resume-point"


def fingerprint(settings: dict, tensors: Iterable[torch.Tensor]) -> str:
    """SHA-256 of `settings` (JSON-serialisable) and the bytes of `tensors`, in order."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for tensor in tensors:
        digest.update(str((tensor.dtype, tuple(tensor.shape))).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def random_states() -> dict:
    """The global random states of Python, NumPy and PyTorch (CUDA too, where present), as plain data
    that `torch.load(weights_only=True)` accepts."""
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"] = {**numpy_state["state"], "key": numpy_state["state"]["key"].tolist()}  # no arrays
    states = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_random_states(states: dict) -> None:
    """Restore what `random_states` returned."""
    random.setstate(states["python"])
    numpy_state = states["numpy"]
    key = np.asarray(numpy_state["state"]["key"], dtype=np.uint32)
    np.random.set_state({**numpy_state, "state": {"key": key, "pos": numpy_state["state"]["pos"]}})
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class ResumePoint:
    """The resume file of one run at `path`."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self, expected_fingerprint: str) -> tuple[dict | None, str]:
        """The saved state if it belongs to this run, else None; and a one-line reason either way."""
        if not self.path.exists():
            return None, f"starting fresh: no resume point at {self.path}"
        try:
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many kinds for a damaged file
            return None, f"starting fresh: {self.path} is not readable ({type(exc).__name__})"
        if not isinstance(saved, dict) or saved.get("kind") != KIND:
            return None, f"starting fresh: {self.path} is not a resume point"
        if saved.get("fingerprint") != expected_fingerprint:
            return None, (
                f"starting fresh: {self.path} is from a run with other params, data, initial weights, "
                "precision, device or PyTorch version"
            )
        return saved["state"], f"resuming from step {saved['state']['step']} ({self.path})"

    def save(self, state: dict, run_fingerprint: str) -> None:
        with atomic_file(self.path) as partial:
            torch.save({"kind": KIND, "fingerprint": run_fingerprint, "state": state}, partial)

    def remove(self) -> None:
        """After a finished run: a later forced rerun (`dvc repro -f`) trains from the start, as asked."""
        self.path.unlink(missing_ok=True)
