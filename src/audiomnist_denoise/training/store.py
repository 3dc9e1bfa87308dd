"""Training clips end to end in one float32 file, with each clip's start and length: a batch reads its own clips
and pads them to its own longest, so training holds a batch in memory and not the corpus.

The file is read with plain reads, not memory-mapped: a mapping's touched pages count in the process's resident
memory and would grow with the corpus over an epoch, where read pages stay in the kernel's page cache alone.
"""

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

_SAMPLE = np.dtype(np.float32)


class ClipStore:
    """Clips of one sample rate, each read on demand from `source`: a file of float32 samples, or an array."""

    def __init__(self, source: Path | np.ndarray, starts: np.ndarray, lengths: np.ndarray):
        self.source, self.starts, self.lengths = source, starts, lengths

    @classmethod
    def in_memory(cls, clips: Sequence[np.ndarray]) -> "ClipStore":
        lengths = np.array([len(audio) for audio in clips], np.int64)
        samples = np.concatenate([np.asarray(audio, _SAMPLE) for audio in clips]) if clips else np.zeros(0, _SAMPLE)
        return cls(samples, np.cumsum(lengths) - lengths, lengths)

    def __len__(self) -> int:
        return len(self.lengths)

    def clip(self, row: int) -> np.ndarray:
        """The samples of clip `row` (float32), unpadded."""
        start, length = int(self.starts[row]), int(self.lengths[row])
        if isinstance(self.source, np.ndarray):
            return self.source[start : start + length].copy()
        audio = np.fromfile(self.source, _SAMPLE, count=length, offset=start * _SAMPLE.itemsize)
        if len(audio) != length:
            raise OSError(f"{self.source}: ends inside clip {row} (the store was changed while it was read)")
        return audio

    def padded(self, rows: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """(len(rows), the longest of them) float32: the clips at `rows`, each followed by zeros."""
        rows = [int(row) for row in rows]
        batch = np.zeros((len(rows), max((int(self.lengths[row]) for row in rows), default=0)), _SAMPLE)
        for i, row in enumerate(rows):
            batch[i, : self.lengths[row]] = self.clip(row)
        return torch.from_numpy(batch)

    def subset(self, rows: slice | Sequence[int] | np.ndarray) -> "ClipStore":
        return ClipStore(self.source, self.starts[rows], self.lengths[rows])

    def digest(self) -> torch.Tensor:
        """SHA-256 of the clips' samples and lengths in row order, as uint8: what a resume point checks."""
        sha = hashlib.sha256(self.lengths.tobytes())
        for row in range(len(self)):
            sha.update(self.clip(row).tobytes())
        return torch.frombuffer(bytearray(sha.digest()), dtype=torch.uint8)


class ClipStoreWriter:
    """Appends clips to a new store file one at a time; `finish` closes it and opens the store."""

    def __init__(self, path: Path):
        self.path, self.lengths = path, []
        self._file = open(path, "wb")  # noqa: SIM115 - closed by finish

    def append(self, audio: np.ndarray) -> None:
        self._file.write(np.ascontiguousarray(audio, _SAMPLE).tobytes())
        self.lengths.append(len(audio))

    def finish(self) -> ClipStore:
        self._file.close()
        lengths = np.array(self.lengths, np.int64)
        return ClipStore(self.path, np.cumsum(lengths) - lengths, lengths)
