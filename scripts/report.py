"""`make report`: the pipeline's outputs as one self-contained HTML page, report/index.html, that works offline.

Not a DVC stage: it only reads what the stages wrote, so it can run at any time, even while
`dvc repro` is still going (what is not there yet is noted on the page). Run it from the
repository root, as the stages are.
"""

import logging
import sys
from pathlib import Path

from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.reporting.report import ReportInputs, write_report

OUTPUT = Path("report/index.html")
EVAL, LOSS_CURVES = Path("plots/eval"), Path("dvclive/plots/metrics")
INPUTS = ReportInputs(
    metrics={
        "Evaluation": Path("metrics/eval.json"),
        "Training": Path("dvclive/metrics.json"),
        "Split": Path("metrics/split.json"),
    },
    loss_curves={"train": LOSS_CURVES / "train/loss.tsv", "val": LOSS_CURVES / "val/loss.tsv"},
    group_tables={
        "digit": EVAL / "by_digit.csv",
        "speaker": EVAL / "by_speaker.csv",
        "gender": EVAL / "by_gender.csv",
        "accent": EVAL / "by_accent.csv",
        "age_band": EVAL / "by_age.csv",
    },
    sample_figures=Path("plots/samples"),
    sample_audio=Path("samples"),
)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        write_report(INPUTS, OUTPUT)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size / 1e6:.1f} MB), self-contained: open it in a browser, offline")


if __name__ == "__main__":
    main()
