"""Stage `mix`: data/noisy holds every clip of data/raw with noise at `noise.snr_db`."""

from pathlib import Path

from _stage import run

from audiomnist_denoise.data.noise import mix_corpus, noise_maker
from audiomnist_denoise.layout import NOISY, RAW
from audiomnist_denoise.params import load_params


def main() -> str:
    noise = load_params().noise
    maker = noise_maker(noise.kind, RAW, noise.babble_talkers, Path(noise.dir))
    snrs = mix_corpus(RAW, NOISY, maker, noise.snr_db, noise.seed, noise.workers)
    return (
        f"{len(snrs)} clips mixed with {noise.kind} noise in {NOISY}: "
        f"measured SNR {snrs.min():.3f} to {snrs.max():.3f} dB (target {noise.snr_db:g})"
    )


if __name__ == "__main__":
    run(main)
