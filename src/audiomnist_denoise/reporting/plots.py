"""Figures: the mean test loss per group of clips, the model beside the identity baseline.

Figures are built on matplotlib's object API, never pyplot: no display is needed, no
global figure list grows, and nothing has to be closed.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..fsutil import atomic_file

_BAR_WIDTH = 0.4
_SERIES = (  # (column, side, colour, label): the baseline left of the model in each group
    ("identity_mse", -1, "tab:gray", "noisy input (identity)"),
    ("mse", 1, "tab:blue", "U-Net output"),
)


def loss_bars(means: pd.DataFrame, by: str, path: Path, title: str) -> None:
    """A PNG at `path` of `means` (as evaluation.group_means gives it): per group of `by`, the
    identity baseline's mean MSE beside the model's. Written through a temporary file, so a
    reader sees the old figure or the new one whole."""
    positions = np.arange(len(means))
    figure = Figure(figsize=(max(6.0, 2.0 + 0.45 * len(means)), 4.0), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    for column, side, colour, label in _SERIES:
        axes.bar(positions + side * _BAR_WIDTH / 2, means[column], _BAR_WIDTH, color=colour, label=label)
    axes.set_xticks(positions, means[by].astype(str))
    axes.set(xlabel=by.replace("_", " "), ylabel="mean MSE (normalised mel spectrogram)")
    figure.suptitle(title)
    figure.legend(loc="outside lower center", ncols=len(_SERIES))  # below the axes: never over a bar
    # No "Software" entry: the file holds the image alone, no version stamp to differ between equal figures.
    with atomic_file(path) as partial:
        figure.savefig(partial, format="png", metadata={"Software": None})
