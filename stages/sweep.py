"""Stage `sweep`: every denoising method on the test speakers' clips remixed at each SNR of evaluate.snr_sweep.

The noise is made exactly as the mix stage makes it (same kind, seed and per-clip
draws), only at other SNRs; the model is the one trained at noise.snr_db. The model-free
methods' scores are the `references` stage's; the model's methods are scored here. Writes
plots/sweep/{si_sdr,pesq,stoi,estoi}.csv: one row per SNR, one column per method.
"""

import pandas as pd
from _stage import run

from audiomnist_denoise.devices import resolve_device
from audiomnist_denoise.evaluation.methods import METHODS, MODEL_METHODS, apply_methods, model_free_context
from audiomnist_denoise.evaluation.speech import METRICS, Quality, method_means, score_methods
from audiomnist_denoise.evaluation.test_sets import SWEEP_GROUPING, group_label, sweep_set
from audiomnist_denoise.fsutil import atomic_directory
from audiomnist_denoise.layout import MODEL, RAW, SPLIT, SWEEP_PLOTS, SWEEP_REFERENCES
from audiomnist_denoise.model.checkpoint import checkpoint_features, load_checkpoint
from audiomnist_denoise.params import load_params


def main() -> str:
    params = load_params()
    settings = params.evaluate
    device = resolve_device("auto", "sweep.device")
    model, config = load_checkpoint(MODEL, device)
    features = checkpoint_features(config, MODEL)
    rate = features.sample_rate
    # Every SNR's mixes go through the methods and the scores together: one pass, one set of worker pools.
    mixes = sweep_set(RAW, SPLIT, params.noise, settings, rate)
    outputs = apply_methods(model, mixes.clean, mixes.noisy, features, settings, device, MODEL_METHODS).outputs
    groupings = mixes.groupings()
    ours = score_methods(
        mixes.clean, outputs, rate, settings.workers, settings.pesq_every, groupings, SWEEP_GROUPING, mixes.positions
    )
    context = model_free_context(features, settings)
    references = Quality.load(SWEEP_REFERENCES, mixes.keys, groupings, SWEEP_GROUPING, context)
    quality = references.join(ours, METHODS)
    speakers = sorted({clip.speaker for clip in mixes.clips})
    rows = []
    for snr in settings.snr_sweep:
        at = [group_label(snr, speaker) for speaker in speakers]
        scores = quality.scores[mixes.snrs == snr]
        rows.append(
            method_means(scores, quality.stoi[SWEEP_GROUPING].loc[at], quality.estoi.loc[at]).assign(snr_db=snr)
        )
    table = pd.concat(rows).reset_index()
    with atomic_directory(SWEEP_PLOTS) as folder:
        for metric in METRICS:
            wide = table.pivot(index="snr_db", columns="method", values=metric)[list(METHODS)]
            wide.to_csv(folder / f"{metric}.csv", float_format="%.6g")
    best = table[table.snr_db == max(settings.snr_sweep)].set_index("method")
    return (
        f"{mixes.per_snr} test clips at {len(settings.snr_sweep)} SNRs, {device}; at {max(settings.snr_sweep):g} dB "
        f"PESQ {best.loc['noisy', 'pesq']:.3f} noisy, {best.loc['unet_mask', 'pesq']:.3f} unet_mask; {SWEEP_PLOTS}/"
    )


if __name__ == "__main__":
    run(main)
