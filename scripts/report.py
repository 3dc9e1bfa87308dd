"""`make report`: the pipeline's outputs as one self-contained HTML page, report/index.html, that works offline.

Not a DVC stage: it only reads what the stages wrote, so it can run at any time, even while
`dvc repro` is still going (what is not there yet is noted on the page). Run it from the
repository root, as the stages are.
"""

import logging
import sys
from dataclasses import replace
from pathlib import Path

from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.layout import (
    EVAL_METRICS,
    EVAL_PLOTS,
    GROUP_TABLES,
    LOSS_CURVES,
    MODEL,
    SAMPLE_FIGURES,
    SAMPLES,
    SPLIT_METRICS,
    SWEEP_PLOTS,
    TRAINING_METRICS,
)
from audiomnist_denoise.names import QUALITY, SAMPLE_SOURCES
from audiomnist_denoise.params import load_params
from audiomnist_denoise.reporting.report import ReportInputs, training_loss, write_report

OUTPUT = Path("report/index.html")
PARAMS = Path("params.yaml")
INPUTS = ReportInputs(
    quality=EVAL_METRICS,
    sweep={metric: SWEEP_PLOTS / f"{metric}.csv" for metric in QUALITY},
    metrics={"Evaluation": EVAL_METRICS, "Training": TRAINING_METRICS, "Split": SPLIT_METRICS},
    loss_curves={"train": LOSS_CURVES / "train/loss.tsv", "val": LOSS_CURVES / "val/loss.tsv"},
    group_tables={group: EVAL_PLOTS / name for group, name in GROUP_TABLES.items()},
    sample_figures=SAMPLE_FIGURES,
    sample_audio=SAMPLES,
    sample_sources=SAMPLE_SOURCES,
)


def params_loss() -> str | None:
    """train.loss in params.yaml: the curves' loss while training runs (DVC has removed the old model)."""
    try:
        return load_params(PARAMS).train.loss
    except PipelineError as exc:
        logging.getLogger("report").warning("the loss curves' loss is not known: %s", exc)
        return None


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        # Only for a page to write: where nothing was built, the one line is write_report's error.
        loss = (training_loss(MODEL) or params_loss()) if INPUTS.any_present() else None
        write_report(replace(INPUTS, loss=loss), OUTPUT)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size / 1e6:.1f} MB), self-contained: open it in a browser, offline")


if __name__ == "__main__":
    main()
