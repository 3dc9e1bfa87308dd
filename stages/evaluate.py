"""Stage `evaluate`: the model's val and test loss against the identity baseline, the speech quality of
every denoising method on the test clips, and both per group of test clips. The model-free methods' speech
quality is the `references` stage's (data/references/evaluate/); the model's methods are scored here.

Writes metrics/eval.json, plots/eval/by_{digit,speaker,gender,accent,age}.csv and two figures.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from _stage import run

from audiomnist_denoise.audio.io import load_resampled
from audiomnist_denoise.data.corpus import parse_clip_path
from audiomnist_denoise.devices import resolve_device
from audiomnist_denoise.evaluation.methods import (
    METHODS,
    MODEL_METHODS,
    apply_methods,
    estimate_images,
    model_free_context,
)
from audiomnist_denoise.evaluation.spectrogram_mse import flat_metrics, group_means, rounded, score_spectrograms
from audiomnist_denoise.evaluation.speech import METRICS as QUALITY_METRICS
from audiomnist_denoise.evaluation.speech import Quality, group_quality, method_means, score_methods
from audiomnist_denoise.evaluation.test_sets import evaluated_clips, load_test_audio, test_groupings
from audiomnist_denoise.features.cache import open_features
from audiomnist_denoise.features.spectrogram import estimate_image
from audiomnist_denoise.fsutil import write_text_atomic
from audiomnist_denoise.layout import (
    EVAL_METRICS,
    EVAL_PLOTS,
    EVALUATE_REFERENCES,
    FEATURES,
    GROUP_TABLES,
    MODEL,
    NOISY,
    RAW,
    SPLIT,
)
from audiomnist_denoise.model.checkpoint import checkpoint_features, load_checkpoint
from audiomnist_denoise.model.spectral import SpectralDenoiser
from audiomnist_denoise.params import load_params
from audiomnist_denoise.reporting.plots import loss_bars

FIGURES = {
    "digit": ("loss_by_digit.png", "Mean test loss per digit"),
    "speaker": ("loss_by_speaker.png", "Mean test loss per speaker"),
}
TABLE_COLUMNS = ["mse", "identity_mse", "clips"]  # after the group column; `dvc plots` draws x = group, y = mse


def native_images(model: SpectralDenoiser, index: pd.DataFrame, features, device, known: dict[int, np.ndarray]):
    """For cache rows, the images of a native-track model's estimates from the noisy audio; `known` has those
    of some rows already (the test clips', from their speech-quality run), the others are estimated here."""
    peaks = index.noisy_db_max.to_numpy()

    def images(rows: np.ndarray) -> np.ndarray:
        missing = [row for row in rows if row not in known]
        clips = [parse_clip_path(Path(index.speaker[row]) / f"{index.clip_id[row]}.wav") for row in missing]
        noisy = [load_resampled(NOISY / clip.path, features.sample_rate)[0] for clip in clips]
        if missing:
            known.update(zip(missing, estimate_images(model, noisy, peaks[missing], features, device), strict=True))
        return np.stack([known[row] for row in rows])

    return images


def speech_quality(test: pd.DataFrame, model, features, settings, device) -> tuple[dict, dict, list[np.ndarray]]:
    """Each method's mean SI-SDR, PESQ, STOI and ESTOI on the test clips as metrics, and per group of clips;
    and the model's clean mel estimate of each test clip. The model-free methods' scores are the
    `references` stage's; the model's methods are scored here."""
    clean, noisy = load_test_audio(test, RAW, NOISY, features.sample_rate)
    run = apply_methods(model, clean, noisy, features, settings, device, MODEL_METHODS)
    groupings = test_groupings(test)
    ours = score_methods(
        clean, run.outputs, features.sample_rate, settings.workers, settings.pesq_every, groupings, "speaker"
    )
    context = model_free_context(features, settings)
    references = Quality.load(EVALUATE_REFERENCES, test.clip_id.tolist(), groupings, "speaker", context)
    quality = references.join(ours, METHODS)
    means = method_means(quality.scores, quality.stoi["speaker"], quality.estoi)
    metrics = {
        f"test.{method}.{metric}": rounded(means.loc[method, metric])
        for method in means.index
        for metric in QUALITY_METRICS
    }
    groups = {
        by: group_quality(quality.scores, test[by].reset_index(drop=True), quality.stoi[by]) for by in GROUP_TABLES
    }
    return metrics, groups, run.estimates


def main() -> str:
    settings = load_params().evaluate
    clean, noisy, index = open_features(FEATURES)
    table = evaluated_clips(index, FEATURES, SPLIT, RAW, settings.age_bands)
    device = resolve_device("auto", "evaluate.device")
    model, config = load_checkpoint(MODEL, device)
    features = checkpoint_features(config, MODEL)
    test = table[table.split == "test"].reset_index(drop=True)
    quality, quality_by_group, estimates = speech_quality(test, model, features, settings, device)
    if isinstance(model, SpectralDenoiser):  # the test clips' images from the estimates just made, not again
        peaks = index.noisy_db_max.to_numpy()[test.row]
        known = {row: estimate_image(e, p, features) for row, e, p in zip(test.row, estimates, peaks, strict=True)}
        scored = native_images(model, index, features, device, known)
    else:
        scored = model
    table["mse"], table["identity_mse"] = score_spectrograms(
        scored, clean, noisy, table.row.to_numpy(), settings.batch_size, device
    )
    test = table[table.split == "test"].reset_index(drop=True)
    metrics = flat_metrics(table) | quality
    write_text_atomic(EVAL_METRICS, json.dumps(metrics, indent=2) + "\n")
    for by, name in GROUP_TABLES.items():
        means = group_means(test, by)
        table_of_group = means[[by, *TABLE_COLUMNS]].merge(
            quality_by_group[by].reset_index(), on=by, validate="one_to_one"
        )
        write_text_atomic(EVAL_PLOTS / name, table_of_group.to_csv(index=False, float_format="%.6g"))
        if by in FIGURES:
            figure, title = FIGURES[by]
            loss_bars(means, by, EVAL_PLOTS / figure, title)
    return (
        f"test MSE {metrics['test.mse']} vs identity {metrics['test.identity_mse']} "
        f"(ratio {metrics['test.mse_ratio']}) on {metrics['test.clips']} clips, {device}; "
        f"PESQ {metrics['test.noisy.pesq']} noisy, {metrics['test.unet_mask.pesq']} unet_mask; "
        f"{EVAL_METRICS}, {EVAL_PLOTS}"
    )


if __name__ == "__main__":
    run(main)
