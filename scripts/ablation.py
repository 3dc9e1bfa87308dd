"""The ablation of docs/results.md: from the study's recipe to the default, one change at a time, each a DVC experiment.

    python scripts/ablation.py          # runs every step (`dvc exp run`), then writes the table
    python scripts/ablation.py --table  # only writes the table, from the experiments already run
    python scripts/ablation.py --only seed-1 seed-2  # runs these, then writes the table

Each step is `dvc exp run --temp -n ablation-<k>-<name> evaluate` with the `-S` overrides that
keep the changes of the later steps undone: the first step is the study's recipe, the last the
default (params.yaml, no overrides). All share the seed, the data and the test clips. Only
`train`, `conditions` and `evaluate` run: `evaluate` reads the no-harm list of `conditions`, whose
numbers (and the samples) are not part of the comparison. The
table is `dvc exp show --md` of those experiments, with the default's committed run as the
baseline row, the default again with other training seeds (`seed-<n>`), with more than the
CPU budget allows (`beyond-`) and on the full-resolution tracks (`track-`), written into docs/results.md between
its ablation markers. Run it from the
repository root, with the project's environment on PATH (as `make` puts it), after `dvc repro`
has been committed.
"""

import argparse
import io
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
from update_docs import with_section

from audiomnist_denoise.names import QUALITY

RESULTS, REPRODUCIBILITY = Path("docs/results.md"), Path("docs/reproducibility.md")
# Each step's change from the step before; undoing all of them gives the study's recipe.
STEPS = (
    ("study", "the study's recipe", {}),
    (
        "small",
        "the default's size: 64 mels up to 8 kHz at hop 512, channels 16-32-64, 10 epochs",
        {
            "features.n_mels": "256",
            "features.hop_length": "256",
            "features.fmax": "null",
            "model.channels": "[32,64,128]",
            "train.epochs": "4",
            "train.val_every": "25",
        },
    ),
    ("native", "every mel frame from the audio, no resize", {"model.input": "resized"}),
    ("mask", "a gain on the noisy mel instead of the clean spectrogram", {"model.target": "mapping"}),
    ("dataset", "one dataset-wide normalisation instead of min-max per clip", {"model.normalisation": "per_clip"}),
    ("compressed", "the loss on the power-law compressed STFT magnitude", {"train.loss": "mse"}),
    ("fresh", "fresh noise at -12 to 6 dB every batch", {"train.noise": "fixed"}),
    ("si_sdr", "less a little of the SI-SDR in the loss", {"train.loss": "compressed"}),
    (
        "conditions",
        "white, pink and brown noise, band limits, levels and tilts, 5 epochs",
        {
            "train.noise_kinds": "null",
            "train.band_limit_probability": "0",
            "train.gain_db": "[0,0]",
            "train.tilt_db_per_octave": "[0,0]",
            "train.epochs": "10",
            "train.val_every": "48",
        },
    ),
    (
        "babble",
        "babble in 1 of 13 draws, left whole in the target: the model learns to pass other voices through",
        {"train.noise_kinds": "[white,pink,brown]", "train.noise_weights": "null", "train.babble_kept_db": "null"},
    ),
    ("complex", "0.3 of the compressed error on the complex spectra", {"train.complex_weight": "0"}),
    ("context", "a GRU over the frames at the U-Net's deepest level", {"model.context": "none"}),
    (
        "stoi",
        "a STOI-like intelligibility term in the loss, with twice the SI-SDR term: the default",
        {"train.stoi_weight": "0", "train.si_sdr_weight": "0.003"},
    ),
)
SEEDS = (1, 2)  # the default again with these training seeds: the spread of seed 0's numbers
# Beyond the CPU budget: the default with more of what the oracles say could still be gained.
BEYOND = (
    ("beyond-epochs-20", "twice the training: 20 epochs (over the CPU budget)", {"train.epochs": "20"}),
    ("beyond-mels-128", "128 mel bands (a higher ideal-mask ceiling, see What limits it)", {"features.n_mels": "128"}),
)
# The full-resolution tracks beside the default (docs/results.md, The full-resolution track).
TRACKS = (
    (
        "track-refined",
        "the refined network: the default's U-Net on 64 mel bands, corrected per STFT bin",
        {"features.n_mels": "null", "model.architecture": "refined"},
    ),
    (
        "track-refined-no-context",
        "the refined network without the context GRU",
        {"features.n_mels": "null", "model.architecture": "refined", "model.context": "none"},
    ),
)
COLUMNS = r"^Experiment$|^Created$|test\.unet_mask\.(si_sdr|pesq|stoi|estoi)$|^train_seconds$"
# The metrics whose spread over seeds sets `make check`'s tolerances (scripts/check_reproduction.py).
SPREAD = (
    "test.mse",
    "val.mse",
    *(f"test.{method}.{metric}" for method in ("unet_mask", "unet_griffinlim") for metric in QUALITY),
    "test.noisy.stoi",
    "test.oracle_mask.stoi",
    # metrics/conditions.json: the mean of the noise kinds, on the test speakers and on the natural voices
    *(f"{clips}.mean.unet_mask.{metric}" for clips in ("test", "natural") for metric in QUALITY),
)


def overrides(step: int) -> dict[str, str]:
    """The -S values of step `step`: every later step's change undone (a key's earliest undoing wins)."""
    values: dict[str, str] = {}
    for _, _, undo in reversed(STEPS[step + 1 :]):
        values |= undo
    return values


def experiment_name(step: int) -> str:
    return f"ablation-{step}-{STEPS[step][0]}"


def run_experiment(name: str, values: dict[str, str]) -> None:
    command = ["dvc", "exp", "run", "--temp", "-n", name]
    for key, value in values.items():
        command += ["-S", f"{key}={value}"]
    print(" ".join(command + ["evaluate"]), flush=True)
    subprocess.run(command + ["evaluate"], check=True)


def _show(*options: str) -> str:
    command = ["dvc", "exp", "show", "--no-pager", "--hide-workspace", "--drop", ".*", *options]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def seed_spread() -> str:
    """Each metric of SPREAD for the committed run (seed 0) and the seed experiments, and the largest deviation."""
    keep = "^Experiment$|" + "|".join(f"^{re.escape(name)}$" for name in SPREAD)
    # every commit's experiments: a docs-only commit after `dvc exp run` leaves them on the commit before it (the
    # first baseline row is HEAD's, the first row of a name its newest run)
    shown = pd.read_csv(io.StringIO(_show("--csv", "--all-commits", "--keep", keep)), dtype={"Experiment": str})
    committed = shown[shown.Experiment.isna()].iloc[0]
    seeds = {seed: shown[shown.Experiment == f"seed-{seed}"] for seed in SEEDS}
    missing = [f"seed-{seed}" for seed, rows in seeds.items() if rows.empty]
    if missing:
        sys.exit(f"error: no experiment {', '.join(missing)}; run scripts/ablation.py --only {' '.join(missing)}")
    header = ["metric", "seed 0 (committed)", *(f"seed {seed}" for seed in SEEDS), "largest deviation from seed 0"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for name in SPREAD:
        base, values = float(committed[name]), [float(rows.iloc[0][name]) for rows in seeds.values()]
        deviation = max(abs(value - base) for value in values)
        relative = f" ({deviation / abs(base):.0%})" if name.endswith(("mse", "loss")) else ""
        cells = [f"{value:.4g}" for value in (base, *values)]
        lines.append(f"| `{name}` | " + " | ".join(cells) + f" | {deviation:.3g}{relative} |")
    return "\n".join(lines)


def table() -> str:
    """`dvc exp show --md` of the ablation's experiments, with each step's change beside its name."""
    shown = _show("--md", "--keep", COLUMNS).splitlines()
    changes = {experiment_name(step): change for step, (_, change, _) in enumerate(STEPS)}
    changes |= {f"seed-{seed}": f"the default with train.seed {seed}" for seed in SEEDS}
    changes |= {name: change for name, change, _ in BEYOND + TRACKS}
    rows = []
    for line in shown:
        names = [name for name in changes if re.search(rf"\b{re.escape(name)}\b", line)]
        if line.startswith("| Experiment") or set(line) <= set("|-: "):
            rows.append(line)
        elif names:
            rows.append(line.rstrip().removesuffix("|") + f"| {changes[names[0]]} |")
        elif not rows[2:]:  # the baseline commit's own row: the committed default run
            rows.append(line.rstrip().removesuffix("|") + "| the committed default run |")
    rows[0] = rows[0].rstrip() + " change |"
    rows[1] = rows[1].rstrip() + "---|"
    return "\n".join(rows).rstrip()


def write_section(path: Path, name: str, content: str) -> None:
    """`content` between `<!-- name:start -->` and `<!-- name:end -->` in `path`."""
    path.write_text(with_section(path.read_text(), name, content, path))


def experiments() -> dict[str, dict[str, str]]:
    """Every experiment's name and -S values, in the order they run."""
    runs = {experiment_name(step): overrides(step) for step in range(len(STEPS) - 1)}  # the last: the default
    runs |= {f"seed-{seed}": {"train.seed": str(seed)} for seed in SEEDS}
    return runs | {name: values for name, _, values in BEYOND + TRACKS}


def main() -> None:
    runs = experiments()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="store_true", help="only write the table from the experiments run")
    parser.add_argument("--only", nargs="+", choices=list(runs), help="run only these experiments")
    args = parser.parse_args()
    if not args.table:
        for name in args.only or runs:
            run_experiment(name, runs[name])
    write_section(RESULTS, "ablation", table())
    write_section(REPRODUCIBILITY, "seeds", seed_spread())
    print(f"wrote the ablation table into {RESULTS} and the seed spread into {REPRODUCIBILITY}")


if __name__ == "__main__":
    main()
