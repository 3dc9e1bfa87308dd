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
    CONDITION_METRICS,
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
    conditions=CONDITION_METRICS,
    sweep={},  # main fills it in: sweep_files(sweep_kinds())
    metrics={
        "Evaluation": EVAL_METRICS,
        "Conditions": CONDITION_METRICS,
        "Training": TRAINING_METRICS,
        "Split": SPLIT_METRICS,
    },
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


def sweep_kinds() -> list[str]:
    """evaluate.sweep_kinds in params.yaml, so that a kind not swept yet is noted; where params.yaml does not
    load, the kinds SWEEP_PLOTS holds (params_loss says why, if there is a page to write)."""
    try:
        return load_params(PARAMS).evaluate.sweep_kinds
    except PipelineError:
        return sorted(path.name for path in SWEEP_PLOTS.glob("*") if path.is_dir())


def sweep_files(kinds: list[str]) -> dict[str, dict[str, Path]]:
    return {kind: {metric: SWEEP_PLOTS / kind / f"{metric}.csv" for metric in QUALITY} for kind in kinds}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        # Only for a page to write: where nothing was built, the one line is write_report's error.
        inputs = replace(INPUTS, sweep=sweep_files(sweep_kinds()))
        loss = (training_loss(MODEL) or params_loss()) if inputs.any_present() else None
        write_report(replace(inputs, loss=loss), OUTPUT)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size / 1e6:.1f} MB), self-contained: open it in a browser, offline")


if __name__ == "__main__":
    main()
