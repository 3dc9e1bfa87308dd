"""Stage `evaluate`: the model's val and test loss against the identity baseline, the speech quality of every
denoising method on the test clips, and both per group of test clips (`evaluation.held_out`). The model-free
methods' speech quality is the `references` stage's (data/references/evaluate/). It lists every condition where the
default method is below the noisy input on STOI or PESQ: on these test clips and under the `conditions` stage's.

Writes metrics/eval.json, plots/eval/by_{digit,speaker,gender,accent,age}.csv and two figures.
"""

import json

from _stage import run

from audiomnist_denoise import layout
from audiomnist_denoise.devices import resolve_device
from audiomnist_denoise.evaluation.clip_sets import Condition
from audiomnist_denoise.evaluation.conditions import SET_NAMES, harm
from audiomnist_denoise.evaluation.held_out import evaluate_held_out
from audiomnist_denoise.fsutil import write_text_atomic
from audiomnist_denoise.layout import CONDITION_METRICS, EVAL_METRICS, EVAL_PLOTS, GROUP_TABLES, MODEL
from audiomnist_denoise.model.checkpoint import load_model
from audiomnist_denoise.params import load_params
from audiomnist_denoise.reporting.plots import loss_bars

FIGURES = {"digit": "loss_by_digit.png", "speaker": "loss_by_speaker.png"}


def main() -> str:
    params = load_params()
    settings = params.evaluate
    device = resolve_device(settings.device, "evaluate.device")
    model, features = load_model(MODEL, device)
    inputs = dict(cache=layout.FEATURES, split=layout.SPLIT, raw=layout.RAW, noisy=layout.NOISY)
    result = evaluate_held_out(model, features, settings, device, **inputs, references=layout.EVALUATE_REFERENCES)
    headline = Condition(params.noise.kind, params.noise.snr_db).name
    held_out_harm = harm(result.overall, f"{SET_NAMES['test']}, {headline}, every test clip")
    metrics = result.metrics | {"harm": held_out_harm + json.loads(CONDITION_METRICS.read_text())["harm"]}
    write_text_atomic(EVAL_METRICS, json.dumps(metrics, indent=2) + "\n")
    for by, name in GROUP_TABLES.items():
        write_text_atomic(EVAL_PLOTS / name, result.tables[by].to_csv(index=False, float_format="%.6g"))
    for by, figure in FIGURES.items():
        loss_bars(result.means[by], by, EVAL_PLOTS / figure, f"Mean test loss per {by}")
    harm_list = "; ".join(metrics["harm"]) or "none"
    return (
        f"test MSE {metrics['test.mse']} vs identity {metrics['test.identity_mse']} (ratio "
        f"{metrics['test.mse_ratio']}) on {metrics['test.clips']} clips, {device}; PESQ {metrics['test.noisy.pesq']} "
        f"noisy, {metrics['test.unet_mask.pesq']} unet_mask; below the noisy input: {harm_list}; "
        f"{EVAL_METRICS}, {EVAL_PLOTS}"
    )


if __name__ == "__main__":
    run(main)
