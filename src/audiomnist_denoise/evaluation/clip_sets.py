"""The sets of clips the speech-quality metrics score every method on: `evaluate`'s test clips (the mix stage's
noisy copies) and the sweep's (the test speakers' lowest repetitions remixed at each SNR of `evaluate.snr_sweep`),
each a `ClipSet`."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..audio.io import load_resampled, resample
from ..data.corpus import META_FILE, Clip, load_metadata, parse_clip_path
from ..data.noise import mix_corpus_clip, noise_maker
from ..data.splits import lowest_reps, read_split
from ..features.cache import INDEX_FILE
from ..layout import GROUP_TABLES
from ..params import EvaluateParams, NoiseParams
from .spectrogram_mse import clip_table

SWEEP_GROUPING = "SNR and speaker"  # the sweep's STOI: per speaker at each SNR
HELD_OUT_EXTENDED = "speaker"  # the test clips' extended STOI: per speaker


@dataclass(frozen=True)
class ClipSet:
    """Clean and noisy clips at one sample rate, with what their scores need: a name per clip (the rows of the
    saved scores), the groupings STOI is taken over (a label per clip each), the one extended STOI is taken
    over, and each clip's place among the clips PESQ-every-n counts (None: its place in the set)."""

    clean: list[np.ndarray]
    noisy: list[np.ndarray]
    keys: list[str]
    groupings: dict[str, pd.Series]
    extended_by: str
    positions: list[int] | None = None


def evaluated_clips(index: pd.DataFrame, features: Path, split: Path, raw: Path, age_bands: list[int]) -> pd.DataFrame:
    """`spectrogram_mse.clip_table` of the feature cache's `index` (from `features`), the split and the metadata."""
    return clip_table(
        index,
        read_split(split),
        load_metadata(raw),
        age_bands,
        index_source=str(features / INDEX_FILE),
        split_source=str(split),
        metadata_source=str(raw / META_FILE),
    )


def held_out_set(test: pd.DataFrame, raw: Path, noisy: Path, rate: int) -> ClipSet:
    """The test clips of `evaluated_clips`' table (its test rows, in order) at `rate`, the mix stage's noisy copies,
    grouped as `evaluate` reports STOI: by digit, speaker, gender, accent and age band."""
    clips = [parse_clip_path(Path(row.speaker) / f"{row.clip_id}.wav") for row in test.itertuples()]
    clean, mixed = ([load_resampled(root / clip.path, rate)[0] for clip in clips] for root in (raw, noisy))
    groupings = {by: test[by] for by in GROUP_TABLES}
    return ClipSet(clean, mixed, test.clip_id.tolist(), groupings, HELD_OUT_EXTENDED)


@dataclass(frozen=True)
class SweepSet:
    """The sweep's clips: every chosen test clip at every SNR, SNR by SNR, at one sample rate."""

    snrs: np.ndarray  # each mix's SNR (dB)
    clips: list[Clip]  # each mix's clip
    per_snr: int  # the clips at each SNR
    mixes: ClipSet  # named by SNR and clip, STOI (and extended STOI) per speaker at each SNR


def group_label(snr: float, speaker: str) -> str:
    return f"{snr:g} dB, speaker {speaker}"


def sweep_set(raw: Path, split: Path, noise: NoiseParams, settings: EvaluateParams, rate: int) -> SweepSet:
    """The test speakers' `settings.sweep_reps` lowest repetitions mixed at each SNR of `settings.snr_sweep`, with
    noise made exactly as the mix stage makes it (the `noise` section's kind, seed and per-clip draws)."""
    clips = lowest_reps(read_split(split), "test", settings.sweep_reps)
    maker = noise_maker(noise.kind, raw, noise.babble_talkers, Path(noise.dir))
    pairs = [(snr, clip) for snr in settings.snr_sweep for clip in clips]
    mixed = [mix_corpus_clip(raw, clip, maker, snr, noise.seed) for snr, clip in pairs]
    clean, noisy = ([resample(mix[i], mix[2], rate) for mix in mixed] for i in (0, 1))
    keys = [f"{snr:g} dB {clip.id}" for snr, clip in pairs]
    labels = pd.Series([group_label(snr, clip.speaker) for snr, clip in pairs], name=SWEEP_GROUPING)
    positions = [i % len(clips) for i in range(len(pairs))]  # PESQ on every n-th clip: the same clips at every SNR
    mixes = ClipSet(clean, noisy, keys, {SWEEP_GROUPING: labels}, SWEEP_GROUPING, positions)
    return SweepSet(np.array([snr for snr, _ in pairs]), [clip for _, clip in pairs], len(clips), mixes)
