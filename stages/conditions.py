"""Stage `conditions`: every denoising method on the test speakers and on the natural-voice set, each remixed under
every noise kind of evaluate.noise_kinds at noise.snr_db, and the test speakers under each of evaluate.sweep_kinds
at every SNR of evaluate.snr_sweep. The model-free methods' scores are the `references` stage's.

Writes metrics/conditions.json (per set of clips, each kind's and the mean over kinds' metrics per method; the
conditions where the default method is below the noisy input on STOI or PESQ) and plots/sweep/{kind}/{metric}.csv.
"""

import json

from _stage import run

from audiomnist_denoise.devices import resolve_device
from audiomnist_denoise.evaluation.clip_sets import evaluated_conditions, held_out_conditions, natural_conditions
from audiomnist_denoise.evaluation.conditions import condition_means, condition_metrics, sweep_tables
from audiomnist_denoise.evaluation.scoring import model_quality
from audiomnist_denoise.fsutil import atomic_directory, write_text_atomic
from audiomnist_denoise.layout import CONDITION_METRICS, CONDITION_REFERENCES, MODEL, NATURAL, RAW, SPLIT, SWEEP_PLOTS
from audiomnist_denoise.model.checkpoint import load_model
from audiomnist_denoise.params import load_params


def main() -> str:
    params = load_params()
    settings, noise = params.evaluate, params.noise
    device = resolve_device(settings.device, "evaluate.device")
    model, features = load_model(MODEL, device)
    rate = features.sample_rate
    sets = {
        "test": held_out_conditions(RAW, SPLIT, noise, settings, rate),
        "natural": natural_conditions(NATURAL, RAW, SPLIT, noise, settings, rate),
    }
    means = {
        name: condition_means(
            model_quality(model, clips.mixes, CONDITION_REFERENCES[name], features, settings, device)[0], clips
        )
        for name, clips in sets.items()
    }
    metrics = condition_metrics(means, evaluated_conditions(noise, settings)[0], noise.snr_db)
    write_text_atomic(CONDITION_METRICS, json.dumps(metrics, indent=2) + "\n")
    with atomic_directory(SWEEP_PLOTS) as folder:
        for kind in settings.sweep_kinds:
            (folder / kind).mkdir()
            for metric, table in sweep_tables(means["test"], kind, settings.snr_sweep).items():
                table.to_csv(folder / kind / f"{metric}.csv", float_format="%.6g")
    mixes = ", ".join(f"{len(clips.conditions)} mixes of the {name} clips" for name, clips in sets.items())
    harm = "; ".join(metrics["harm"]) or "none"
    return f"{mixes}, {device}; below the noisy input: {harm}; {CONDITION_METRICS}, {SWEEP_PLOTS}/"


if __name__ == "__main__":
    run(main)
