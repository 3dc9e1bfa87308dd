"""Stage `sweep`: every denoising method on the test speakers' clips remixed at each SNR of evaluate.snr_sweep.

The noise is made exactly as the mix stage makes it (same kind, seed and per-clip draws), only at other SNRs;
the model is the one trained at noise.snr_db. The model-free methods' scores are the `references` stage's.
Writes plots/sweep/{si_sdr,pesq,stoi,estoi}.csv: one row per SNR, one column per method.
"""

from _stage import run

from audiomnist_denoise.devices import resolve_device
from audiomnist_denoise.evaluation.clip_sets import sweep_set
from audiomnist_denoise.evaluation.sweep import sweep_tables
from audiomnist_denoise.fsutil import atomic_directory
from audiomnist_denoise.layout import MODEL, RAW, SPLIT, SWEEP_PLOTS, SWEEP_REFERENCES
from audiomnist_denoise.model.checkpoint import load_model
from audiomnist_denoise.params import load_params


def main() -> str:
    params = load_params()
    settings = params.evaluate
    device = resolve_device(settings.device, "evaluate.device")
    model, features = load_model(MODEL, device)
    sweep = sweep_set(RAW, SPLIT, params.noise, settings, features.sample_rate)
    tables = sweep_tables(model, sweep, SWEEP_REFERENCES, features, settings, device)
    with atomic_directory(SWEEP_PLOTS) as folder:
        for metric, table in tables.items():
            table.to_csv(folder / f"{metric}.csv", float_format="%.6g")
    top, pesq = max(settings.snr_sweep), tables["pesq"]
    return (
        f"{sweep.per_snr} test clips at {len(settings.snr_sweep)} SNRs, {device}; at {top:g} dB "
        f"PESQ {pesq.loc[top, 'noisy']:.3f} noisy, {pesq.loc[top, 'unet_mask']:.3f} unet_mask; {SWEEP_PLOTS}/"
    )


if __name__ == "__main__":
    run(main)
