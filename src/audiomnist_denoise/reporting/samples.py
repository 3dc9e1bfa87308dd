"""Audio samples: which test clips to listen to, and the figure of every method's output for each one."""

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn
from tqdm import tqdm

from ..audio.io import load_resampled
from ..audio.spectral import mel_power, power_db
from ..data.corpus import Clip
from ..data.splits import read_split
from ..errors import PipelineError
from ..evaluation.methods import apply_methods
from ..fsutil import write_wav
from ..names import SAMPLE_SOURCES
from ..params import EvaluateParams, FeatureParams, SamplesParams

FIGURE_COLUMNS = 5


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


def sample_figure(audio: dict[str, np.ndarray], settings: FeatureParams, title: str, path: Path) -> None:
    """A PNG of the mel dB spectrogram of each source of one clip (clean, then each method's output), in a grid.

    All panels share one colour scale, floored `top_db` below the loudest, so they compare
    directly. The figure is a plain matplotlib Figure, not a pyplot one: it renders with
    Agg, and nothing keeps it alive after saving.
    """
    spectrograms = {
        source: power_db(mel_power(samples, settings), settings.top_db) for source, samples in audio.items()
    }
    high = max(float(db.max()) for db in spectrograms.values())
    columns = min(FIGURE_COLUMNS, len(spectrograms))
    rows = -(-len(spectrograms) // columns)
    figure = Figure(figsize=(3 * columns, 2.2 * rows + 0.6), layout="constrained")
    figure.suptitle(title)
    axes = figure.subplots(rows, columns, sharex=True, sharey=True, squeeze=False)
    for panel, (source, db) in zip(axes.flat, spectrograms.items(), strict=False):  # spare panels are blank
        seconds = db.shape[1] * settings.hop_length / settings.sample_rate
        image = panel.imshow(
            db,
            origin="lower",
            aspect="auto",
            extent=(0, seconds, 0, db.shape[0]),
            vmin=high - settings.top_db,
            vmax=high,
            cmap="magma",
        )
        panel.set_title(source, fontsize=10)
    for panel in axes.flat[len(spectrograms) :]:
        panel.set_axis_off()
    for panel in axes[-1]:
        panel.set_xlabel("time (s)")
    for panel in axes[:, 0]:
        panel.set_ylabel("mel band")
    figure.colorbar(image, ax=axes, label="dB", shrink=0.8)
    figure.savefig(path, dpi=80)


def write_samples(
    model: nn.Module,
    features: FeatureParams,
    settings: SamplesParams,
    evaluate: EvaluateParams,
    device: torch.device,
    *,
    split: Path,
    raw: Path,
    noisy: Path,
    folder: Path,
    figures: Path,
) -> int:
    """For `settings.count` test clips of `split` (`choose_samples`), the clean audio and every method's output,
    made exactly as `evaluate` makes them but with the samples' Griffin-Lim settings, as wavs in `folder`
    ({clip}_{source}.wav, SAMPLE_SOURCES) and one `sample_figure` per clip in `figures`; the number of clips."""
    methods = evaluate.model_copy(
        update={
            "griffin_lim_iters": settings.griffin_lim_iters,
            "griffin_lim_start": settings.griffin_lim_start,
            "seed": settings.seed,
            "batch_size": settings.count,
        }
    )
    table = read_split(split)
    chosen = choose_samples(table[table["split"] == "test"], settings.count, settings.seed)
    clips = [Clip(row.speaker, int(row.digit), int(row.rep)) for row in chosen.itertuples()]
    rate = features.sample_rate
    clean, mixed = ([load_resampled(root / clip.path, rate)[0] for clip in clips] for root in (raw, noisy))
    outputs = apply_methods(model, clean, mixed, features, methods, device).outputs
    for position, clip in enumerate(tqdm(clips, desc="samples")):
        audio = {"clean": clean[position]} | {method: outputs[method][position] for method in outputs}
        for source in SAMPLE_SOURCES:
            write_wav(folder / f"{clip.id}_{source}.wav", audio[source].astype(np.float32), rate)
        title = f"{clip.id}: digit {clip.digit}, speaker {clip.speaker} (test)"
        sample_figure({source: audio[source] for source in SAMPLE_SOURCES}, features, title, figures / f"{clip.id}.png")
    return len(clips)
