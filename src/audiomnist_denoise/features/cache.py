"""The feature cache: clean and noisy spectrograms of every clip, as two arrays and an index.

`clean.npy` and `noisy.npy` hold (N, H, W) arrays in [0, 1]; `index.csv` gives row i's
clip and what the exact inverse needs (original mel frames, dB ranges). The arrays are
written block by block through short-lived memory maps, so memory stays flat however
many clips there are.
"""

from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from ..audio.io import load_resampled
from ..audio.spectral import band_count
from ..data.corpus import Clip, find_clips
from ..errors import PipelineError
from ..fsutil import atomic_directory, check_free_space
from ..parallel import map_progress
from ..params import FeatureParams
from .spectrogram import Spectrogram, forward

INDEX_FILE, CLEAN_FILE, NOISY_FILE = "index.csv", "clean.npy", "noisy.npy"
_BLOCK = 256  # rows held in memory before they go to disk
_NPY_HEADER_BYTES = 128  # numpy's header for these arrays
_INDEX_ROW_BYTES = 256  # a generous bound on one line of index.csv


@dataclass(frozen=True)
class IndexRow:
    clip_id: str
    speaker: str
    digit: int
    rep: int
    source_rate: int
    duration: float  # seconds
    n_mels: int  # bands: mel bands, or STFT bins where features.n_mels is null
    frames: int
    clean_db_min: float
    clean_db_max: float
    noisy_db_min: float
    noisy_db_max: float


def _featurize_clip(
    clip: Clip, raw: Path, noisy: Path, settings: FeatureParams
) -> tuple[IndexRow, Spectrogram, Spectrogram]:
    clean_audio, rate = load_resampled(raw / clip.path, settings.sample_rate)
    noisy_audio, noisy_rate = load_resampled(noisy / clip.path, settings.sample_rate)
    if noisy_rate != rate or len(noisy_audio) != len(clean_audio):
        raise PipelineError(f"{noisy / clip.path}: does not match its clean clip (length or sample rate differ)")
    clean = forward(clean_audio, settings, str(raw / clip.path))
    mixed = forward(noisy_audio, settings, str(noisy / clip.path))
    row = IndexRow(
        clip_id=clip.id,
        speaker=clip.speaker,
        digit=clip.digit,
        rep=clip.rep,
        source_rate=rate,
        duration=len(clean_audio) / settings.sample_rate,
        n_mels=band_count(settings),
        frames=clean.frames,
        clean_db_min=clean.db_min,
        clean_db_max=clean.db_max,
        noisy_db_min=mixed.db_min,
        noisy_db_max=mixed.db_max,
    )
    return row, clean, mixed


class _BlockWriter:
    """Fills a preallocated .npy file a block of rows at a time through a fresh memory map."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: str):
        self.path, self.rows, self.start = path, [], 0
        np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape).flush()

    def add(self, image: np.ndarray) -> None:
        self.rows.append(image)
        if len(self.rows) == _BLOCK:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        array = np.lib.format.open_memmap(self.path, mode="r+")
        array[self.start : self.start + len(self.rows)] = np.stack(self.rows)
        array.flush()
        del array  # unmap: written pages leave this process
        self.start += len(self.rows)
        self.rows = []


def _cache_bytes(shape: tuple[int, ...], dtype: str) -> int:
    """Disk space the cache takes: the clean and the noisy array, and the index."""
    array_bytes = int(np.prod(shape)) * np.dtype(dtype).itemsize + _NPY_HEADER_BYTES
    return 2 * array_bytes + shape[0] * _INDEX_ROW_BYTES


def build_feature_cache(raw: Path, noisy: Path, target: Path, settings: FeatureParams) -> pd.DataFrame:
    """Featurize every clip of `raw` and its noisy copy into `target`; the index."""
    clips = find_clips(raw)
    missing = [clip.path for clip in clips if not (noisy / clip.path).is_file()]
    if missing:
        raise PipelineError(f"{noisy}: no noisy copy of {len(missing)} clip(s), e.g. {missing[0]}; rerun mix")
    shape = (len(clips), *settings.size)
    with atomic_directory(target) as partial_dir:
        # The arrays are sparse memory maps: a disk that fills up while they are written would
        # kill the stage with SIGBUS, not with an error.
        check_free_space(target.parent, _cache_bytes(shape, settings.dtype), f"{target} ({len(clips)} clips)")
        writers = [_BlockWriter(partial_dir / name, shape, settings.dtype) for name in (CLEAN_FILE, NOISY_FILE)]
        work = partial(_featurize_clip, raw=raw, noisy=noisy, settings=settings)
        rows = []
        for row, clean, mixed in map_progress(work, clips, settings.workers, desc="featurize"):
            rows.append(asdict(row))
            writers[0].add(clean.image)
            writers[1].add(mixed.image)
        for writer in writers:
            writer.flush()
        index = pd.DataFrame(rows)
        index.to_csv(partial_dir / INDEX_FILE, index_label="row", float_format="%.6f")
    return index


def read_index(folder: Path) -> pd.DataFrame:
    """The index of a feature cache, speaker ids kept as text ("01", not 1)."""
    return pd.read_csv(folder / INDEX_FILE, index_col="row", dtype={"speaker": str, "clip_id": str})


def open_features(folder: Path) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Clean and noisy arrays (read-only memory maps) and the index of a feature cache."""
    clean = np.load(folder / CLEAN_FILE, mmap_mode="r")
    noisy = np.load(folder / NOISY_FILE, mmap_mode="r")
    return clean, noisy, read_index(folder)
