"""Stage `sweep`: every denoising method on the test speakers' clips remixed at each SNR of evaluate.snr_sweep.

The noise is made exactly as the mix stage makes it (same kind, seed and per-clip
draws), only at other SNRs; the model is the one trained at noise.snr_db. Writes
plots/sweep/{si_sdr,pesq,stoi,estoi}.csv: one row per SNR, one column per method.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from _stage import run

from audiomnist_denoise.audio.io import resample
from audiomnist_denoise.data.noise import mix_corpus_clip, noise_maker
from audiomnist_denoise.data.splits import lowest_reps, read_split
from audiomnist_denoise.evaluation.methods import METHODS, apply_methods
from audiomnist_denoise.evaluation.speech import METRICS, at_stoi_rate_all, method_means, score_audio, stoi_by_group
from audiomnist_denoise.fsutil import atomic_directory
from audiomnist_denoise.layout import MODEL, RAW, SPLIT, SWEEP_PLOTS
from audiomnist_denoise.model.checkpoint import checkpoint_features, load_checkpoint
from audiomnist_denoise.model.unet import resolve_device
from audiomnist_denoise.params import load_params


def main() -> str:
    params = load_params()
    settings = params.evaluate
    device = resolve_device("auto")
    model, config = load_checkpoint(MODEL, device)
    features = checkpoint_features(config, MODEL)
    clips = lowest_reps(read_split(SPLIT), "test", settings.sweep_reps)
    speakers = sorted({clip.speaker for clip in clips})
    maker = noise_maker(params.noise.kind, RAW, params.noise.babble_talkers, Path(params.noise.dir))
    # Every SNR's mixes go through the methods and the scores together: one pass, one set of worker pools.
    pairs = [(snr, clip) for snr in settings.snr_sweep for clip in clips]
    mixed = [mix_corpus_clip(RAW, clip, maker, snr, params.noise.seed) for snr, clip in pairs]
    clean, noisy = ([resample(mix[i], mix[2], features.sample_rate) for mix in mixed] for i in (0, 1))
    outputs = apply_methods(model, clean, noisy, features, settings, device).outputs
    positions = [i % len(clips) for i in range(len(pairs))]  # PESQ on the same clips at every SNR
    scores = score_audio(clean, outputs, features.sample_rate, settings.workers, settings.pesq_every, positions)
    clean, outputs, rate = at_stoi_rate_all(clean, outputs, features.sample_rate, settings.workers)
    group = lambda snr, speaker: f"{snr:g} dB, speaker {speaker}"  # noqa: E731 - STOI per speaker at each SNR
    groups = pd.Series([group(snr, clip.speaker) for snr, clip in pairs], name="SNR and speaker")
    stoi, estoi = (
        stoi_by_group(clean, outputs, groups, rate, settings.workers, extended) for extended in (False, True)
    )
    snrs = np.array([snr for snr, _ in pairs])
    rows = []
    for snr in settings.snr_sweep:
        at = [group(snr, speaker) for speaker in speakers]
        scored = scores[snrs == snr]
        rows.append(method_means(scored, stoi.loc[at], estoi.loc[at]).assign(snr_db=snr))
    table = pd.concat(rows).reset_index()
    with atomic_directory(SWEEP_PLOTS) as folder:
        for metric in METRICS:
            wide = table.pivot(index="snr_db", columns="method", values=metric)[list(METHODS)]
            wide.to_csv(folder / f"{metric}.csv", float_format="%.6g")
    best = table[table.snr_db == max(settings.snr_sweep)].set_index("method")
    return (
        f"{len(clips)} test clips at {len(settings.snr_sweep)} SNRs, {device}; at {max(settings.snr_sweep):g} dB "
        f"PESQ {best.loc['noisy', 'pesq']:.3f} noisy, {best.loc['unet_mask', 'pesq']:.3f} unet_mask; {SWEEP_PLOTS}/"
    )


if __name__ == "__main__":
    run(main)
