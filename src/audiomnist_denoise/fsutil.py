"""Writing outputs so that an interrupted stage never leaves one that looks complete."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from scipy.io import wavfile

from .errors import PipelineError


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """A fresh temporary folder beside `target` that replaces `target` only on success.

    `target` is at every moment absent or complete (the old or the new one): the swap is
    two renames. A run killed part-way (SIGKILL skips every cleanup) leaves only
    `.NAME.partial-*` folders, which the next run for the same target removes.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in target.parent.glob(f".{target.name}.partial-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    retired = partial.with_name(f"{partial.name}-old")  # still a leftover's name if a kill strands it
    try:
        yield partial
        partial.chmod(0o755)  # mkdtemp makes it private
        if target.exists():
            target.rename(retired)
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)


def check_free_space(folder: Path, needed: int, what: str) -> None:
    """An error naming `folder` if it has fewer than `needed` bytes free for `what`."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise PipelineError(f"{folder}: not enough disk space for {what}: {needed:,} bytes needed, {free:,} free")


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """A wav of the array's own type: int16 as 16-bit PCM, float32 as 32-bit float.

    scipy, not libsndfile: libsndfile stamps float wavs with the time of writing (the
    PEAK chunk), so the same samples would give different bytes on every run.
    """
    if audio.dtype not in (np.int16, np.float32):
        raise TypeError(f"write_wav takes int16 or float32 samples, not {audio.dtype}")
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, sample_rate, audio)


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to, which replaces `path` only when the block succeeds,
    so readers see the old or the new file whole, never a part of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        yield partial
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_file(path) as partial:
        partial.write_text(text)
