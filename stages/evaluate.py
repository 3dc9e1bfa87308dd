"""Stage `evaluate`: the model's val and test loss against the identity baseline, and the test loss per group of clips.

Writes metrics/eval.json, plots/eval/by_{digit,speaker,gender,accent,age}.csv and two figures.
"""

import json
from pathlib import Path

from _stage import run

from audiomnist_denoise.corpus import META_FILE, load_metadata
from audiomnist_denoise.evaluation import clip_table, flat_metrics, group_means, score_clips
from audiomnist_denoise.feature_cache import INDEX_FILE, open_features
from audiomnist_denoise.fsutil import write_text_atomic
from audiomnist_denoise.model import load_checkpoint, resolve_device
from audiomnist_denoise.params import load_params
from audiomnist_denoise.plots import loss_bars
from audiomnist_denoise.splits import read_split

MODEL, FEATURES, SPLIT, RAW = Path("models/unet.pt"), Path("data/features"), Path("data/split.csv"), Path("data/raw")
METRICS, PLOTS = Path("metrics/eval.json"), Path("plots/eval")
GROUP_TABLES = {
    "digit": "by_digit.csv",
    "speaker": "by_speaker.csv",
    "gender": "by_gender.csv",
    "accent": "by_accent.csv",
    "age_band": "by_age.csv",
}
FIGURES = {
    "digit": ("loss_by_digit.png", "Mean test loss per digit"),
    "speaker": ("loss_by_speaker.png", "Mean test loss per speaker"),
}
TABLE_COLUMNS = ["mse", "identity_mse", "clips"]  # after the group column; `dvc plots` draws x = group, y = mse


def main() -> str:
    settings = load_params().evaluate
    clean, noisy, index = open_features(FEATURES)
    table = clip_table(
        index, read_split(SPLIT), load_metadata(RAW), settings.age_bands,
        index_source=str(FEATURES / INDEX_FILE), split_source=str(SPLIT), metadata_source=str(RAW / META_FILE),
    )  # fmt: skip
    device = resolve_device("auto")
    model, _ = load_checkpoint(MODEL, device)
    table["mse"], table["identity_mse"] = score_clips(
        model, clean, noisy, table.row.to_numpy(), settings.batch_size, device
    )
    metrics = flat_metrics(table)
    write_text_atomic(METRICS, json.dumps(metrics, indent=2) + "\n")
    test = table[table.split == "test"]
    for by, name in GROUP_TABLES.items():
        means = group_means(test, by)
        write_text_atomic(PLOTS / name, means[[by, *TABLE_COLUMNS]].to_csv(index=False, float_format="%.6g"))
        if by in FIGURES:
            figure, title = FIGURES[by]
            loss_bars(means, by, PLOTS / figure, title)
    return (
        f"test MSE {metrics['test.mse']} vs identity {metrics['test.identity_mse']} "
        f"(ratio {metrics['test.mse_ratio']}) on {metrics['test.clips']} clips, {device}; {METRICS}, {PLOTS}"
    )


if __name__ == "__main__":
    run(main)
