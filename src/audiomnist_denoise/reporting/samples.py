"""Audio samples: which test clips to listen to, and the figure that shows each one."""

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..audio.reconstruct import SOURCES
from ..errors import PipelineError


def choose_samples(test_index: pd.DataFrame, count: int, seed: int) -> pd.DataFrame:
    """`count` rows of `test_index` (columns clip_id, digit, speaker) over as many digits and speakers as possible.

    Greedy: each pick is a clip whose digit and speaker have been picked least often
    so far, ties going to the first clip in a seeded shuffle. The shuffle starts from
    the clips sorted by id, so the same clips and seed give the same rows whatever
    their order. Rows come back in the order picked, with their index labels.
    """
    if len(test_index) < count:
        raise PipelineError(f"samples.count: {count} samples asked for, but the test split has {len(test_index)} clips")
    rng = np.random.default_rng(seed)
    candidates = test_index.sort_values("clip_id").iloc[rng.permutation(len(test_index))]
    digits, speakers = candidates["digit"].to_numpy(), candidates["speaker"].to_numpy()
    uses = np.zeros(len(candidates))  # times each candidate's digit plus its speaker were picked
    picked = np.zeros(len(candidates), bool)
    order = []
    for _ in range(count):
        pick = int(np.argmin(np.where(picked, np.inf, uses)))  # argmin takes the first of equals
        picked[pick] = True
        uses += digits == digits[pick]
        uses += speakers == speakers[pick]
        order.append(pick)
    return candidates.iloc[order]


def sample_figure(
    clean_audio: np.ndarray,
    noisy_audio: np.ndarray,
    denoised_audio: np.ndarray,
    clean_db: np.ndarray,
    noisy_db: np.ndarray,
    denoised_db: np.ndarray,
    sample_rate: int,
    hop_length: int,
    title: str,
    path: Path,
) -> None:
    """A PNG of the clean, noisy and denoised clip side by side: waveforms above, mel dB below.

    Waveforms share one amplitude axis and spectrograms one colour scale, so the
    columns compare directly. The figure is a plain matplotlib Figure, not a pyplot
    one: it renders with Agg, and nothing keeps it alive after saving.
    """
    figure = Figure(figsize=(13, 6), layout="constrained")
    figure.suptitle(title)
    axes = figure.subplots(2, 3, sharex=True, sharey="row")
    spectrograms = (clean_db, noisy_db, denoised_db)
    low = min(float(db.min()) for db in spectrograms)
    high = max(float(db.max()) for db in spectrograms)
    for column, (name, audio, db) in enumerate(
        zip(SOURCES, (clean_audio, noisy_audio, denoised_audio), spectrograms, strict=True)
    ):
        wave_axes, mel_axes = axes[:, column]
        wave_axes.plot(np.arange(len(audio)) / sample_rate, audio, linewidth=0.5)
        wave_axes.set_title(name)
        seconds = db.shape[1] * hop_length / sample_rate
        image = mel_axes.imshow(
            db, origin="lower", aspect="auto", extent=(0, seconds, 0, db.shape[0]), vmin=low, vmax=high, cmap="magma"
        )
        mel_axes.set_xlabel("time (s)")
    axes[0, 0].set_ylabel("amplitude")
    axes[1, 0].set_ylabel("mel bin")
    figure.colorbar(image, ax=axes[1, :], label="dB")
    figure.savefig(path, dpi=100)
