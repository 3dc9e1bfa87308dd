"""What a mel gain on the noisy STFT can reach at other mel settings: the table of docs/results.md's ceilings.

    python scripts/ceilings.py   # after `dvc repro`, from the repository root with the project's environment

`oracle_mask` gives each mel band the clean power over the noisy power (as a power gain, the
square root of it as a magnitude gain). A trained model may give any gain in [0, 1], and its
SI-SDR is not capped by that one: the same ratio squared (the clean over the noisy power as
the magnitude gain itself, a Wiener-like gain that takes out more noise) is a second column. Both
come for every 5th test clip (by clip id) at -8 dB, at the default's settings and with more mel
bands or the whole band, so that a reader sees how much of the distance to the ceiling a
setting can close before any model is trained.
"""

from pathlib import Path

import numpy as np
from update_docs import with_section

from audiomnist_denoise.audio.io import load_resampled
from audiomnist_denoise.audio.reconstruct import mask_denoise
from audiomnist_denoise.audio.spectral import mel_power, si_sdr
from audiomnist_denoise.data.splits import read_split
from audiomnist_denoise.evaluation.metrics import pesq_wideband
from audiomnist_denoise.params import load_params

RESULTS = Path("docs/results.md")
EVERY = 5  # every 5th test clip: 100 of the default's 500
SETTINGS = (  # (n_mels, fmax): the default's first
    (64, 8000.0),
    (96, 8000.0),
    (128, 8000.0),
    (64, None),
    (128, None),
)
GAINS = {"clean / noisy power (`oracle_mask`)": 1.0, "its square (Wiener-like)": 2.0}


def main() -> None:
    params = load_params(Path("params.yaml"))
    rate = params.features.sample_rate
    split = read_split(Path("data/split.csv"))
    test = split[split.split == "test"].sort_values("clip_id").iloc[::EVERY]
    paths = [Path(row.speaker) / f"{row.clip_id}.wav" for row in test.itertuples()]
    clean = [load_resampled(Path("data/raw") / path, rate)[0] for path in paths]
    noisy = [load_resampled(Path("data/noisy") / path, rate)[0] for path in paths]
    header = ["mel bands", "up to (Hz)", *(f"{metric}, {gain}" for gain in GAINS for metric in ("SI-SDR (dB)", "PESQ"))]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for n_mels, fmax in SETTINGS:
        settings = params.features.model_copy(update={"n_mels": n_mels, "fmax": fmax})
        cells = [str(n_mels), f"{fmax or rate / 2:.0f}"]
        for power in GAINS.values():
            denoised = []
            for reference, mixture in zip(clean, noisy, strict=True):
                noisy_mel = mel_power(mixture, settings)
                ratio = np.clip(mel_power(reference, settings) / np.maximum(noisy_mel, 1e-12), 0, 1)
                denoised.append(mask_denoise(mixture, ratio**power * noisy_mel, settings))
            cells.append(f"{np.mean([si_sdr(r, d) for r, d in zip(clean, denoised, strict=True)]):.2f}")
            cells.append(f"{np.mean([pesq_wideband(r, d, rate) for r, d in zip(clean, denoised, strict=True)]):.3f}")
        lines.append("| " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    table = f"On {len(paths)} test clips (every {EVERY}th):\n\n" + "\n".join(lines)
    RESULTS.write_text(with_section(RESULTS.read_text(), "ceilings", table, RESULTS))
    print(f"wrote the ceilings into {RESULTS}")


if __name__ == "__main__":
    main()
