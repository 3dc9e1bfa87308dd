"""Rewrite the README's results section from the pipeline's metrics, so its numbers are never typed by hand.

Run from the repository root after `dvc repro`: python scripts/update_readme.py
The section lies between the markers below; everything else in README.md is left alone.
"""

import json
import re
import sys
from pathlib import Path

import pandas as pd

README, EVAL, TRAINING, GROUPS = (
    Path("README.md"),
    Path("metrics/eval.json"),
    Path("dvclive/metrics.json"),
    Path("plots/eval"),
)
START, END = "<!-- results:start -->", "<!-- results:end -->"


def overall_table(metrics: dict, training: dict) -> str:
    rows = ["| split | clips | U-Net MSE | identity MSE | U-Net / identity |", "|---|---|---|---|---|"]
    for split in ("val", "test"):
        rows.append(
            f"| {split} | {metrics[f'{split}.clips']} | {metrics[f'{split}.mse']:.4f} | "
            f"{metrics[f'{split}.identity_mse']:.4f} | {metrics[f'{split}.mse_ratio']:.3f} |"
        )
    rows.append(f"\nTraining: {training['step']} steps, final training loss {training['train']['loss']:.4f}.")
    return "\n".join(rows)


METHODS = {
    "noisy": "noisy input (identity)",
    "spectral_gating": "spectral gating (noisereduce)",
    "unet_griffinlim": "U-Net + Griffin-Lim",
    "unet_mask": "U-Net as a mel gain on the noisy STFT",
    "oracle_griffinlim": "ceiling: clean mel + Griffin-Lim",
    "oracle_mask": "ceiling: ideal mel gain on the noisy STFT",
}


def methods_table(metrics: dict) -> str:
    """One row per denoising method: its mean speech-quality scores on the test speakers."""
    rows = ["| method | SI-SDR (dB) | PESQ | STOI | ESTOI |", "|---|---|---|---|---|"]
    for method, label in METHODS.items():
        si_sdr, pesq, stoi, estoi = (
            metrics[f"test.{method}.{metric}"] for metric in ("si_sdr", "pesq", "stoi", "estoi")
        )
        rows.append(f"| `{method}`: {label} | {si_sdr:.2f} | {pesq:.3f} | {stoi:.3f} | {estoi:.3f} |")
    return "\n".join(rows)


def quality_by_group_table(path: Path, column: str, metric: str) -> str:
    """`metric` of every method per group of test clips."""
    table = pd.read_csv(path, dtype={column: str})
    header = f"| {column.replace('_', ' ')} | " + " | ".join(f"`{method}`" for method in METHODS) + " |"
    rows = [header, "|---" * (len(METHODS) + 1) + "|"]
    for _, row in table.iterrows():
        rows.append(f"| {row[column]} | " + " | ".join(f"{row[f'{method}_{metric}']:.3f}" for method in METHODS) + " |")
    return "\n".join(rows)


def group_table(path: Path, column: str) -> str:
    table = pd.read_csv(path, dtype={column: str})
    header = f"| {column.replace('_', ' ')} | clips | U-Net MSE | identity MSE |\n|---|---|---|---|"
    rows = [f"| {row[column]} | {row.clips} | {row.mse:.4f} | {row.identity_mse:.4f} |" for _, row in table.iterrows()]
    return "\n".join([header, *rows])


def results_section() -> str:
    metrics, training = json.loads(EVAL.read_text()), json.loads(TRAINING.read_text())
    groups = [("digit", "by_digit"), ("speaker", "by_speaker"), ("gender", "by_gender"), ("accent", "by_accent")]
    parts = [overall_table(metrics, training)]
    parts += [f"Test clips by {column}:\n\n{group_table(GROUPS / f'{name}.csv', column)}" for column, name in groups]
    parts.append(f"By age band:\n\n{group_table(GROUPS / 'by_age.csv', 'age_band')}")
    parts.append(f"Speech quality of each method on the test clips:\n\n{methods_table(metrics)}")
    for metric, label in (("stoi", "STOI"), ("pesq", "PESQ")):
        for column, name in (("speaker", "by_speaker"), ("gender", "by_gender")):
            table = quality_by_group_table(GROUPS / f"{name}.csv", column, metric)
            parts.append(f"{label} by test {column}:\n\n{table}")
    return "\n\n".join(parts)


def main() -> None:
    text = README.read_text()
    pattern = re.compile(f"{re.escape(START)}.*?{re.escape(END)}", re.DOTALL)
    if not pattern.search(text):
        sys.exit(f"error: {README} has no {START} ... {END} section")
    README.write_text(pattern.sub(lambda _: f"{START}\n{results_section()}\n{END}", text))
    print(f"updated the results in {README} from {EVAL}, {TRAINING} and {GROUPS}/")


if __name__ == "__main__":
    main()
