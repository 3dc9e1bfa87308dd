"""The ablation of docs/results.md: from the study's recipe to the default, one change at a time, each a DVC experiment.

    python scripts/ablation.py          # runs every step (`dvc exp run`), then writes the table
    python scripts/ablation.py --table  # only writes the table, from the experiments already run

Each step is `dvc exp run --temp -n ablation-<k>-<name> evaluate` with the `-S` overrides that
keep the changes of the later steps undone: the first step is the study's recipe, the last the
default (params.yaml, no overrides). All share the seed, the data and the test clips. Only
`train` and `evaluate` run (the sweep and the samples are not part of the comparison). The
table is `dvc exp show --md` of those experiments, with the default's committed run as the
baseline row, and the default again with other training seeds (`seed-<n>`), written into
docs/results.md between its ablation markers. Run it from the
repository root, with the project's environment on PATH (as `make` puts it), after `dvc repro`
has been committed.
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

RESULTS = Path("docs/results.md")
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
    ("si_sdr", "less a little of the SI-SDR in the loss: the default", {"train.loss": "compressed"}),
)
SEEDS = (1, 2)  # the default again with these training seeds: the spread of seed 0's numbers
COLUMNS = r"^Experiment$|^Created$|test\.unet_mask\.(si_sdr|pesq|stoi|estoi)$|^train_seconds$"


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


def table() -> str:
    """`dvc exp show --md` of the ablation's experiments, with each step's change beside its name."""
    shown = subprocess.run(
        ["dvc", "exp", "show", "--md", "--no-pager", "--hide-workspace", "--drop", ".*", "--keep", COLUMNS],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    changes = {experiment_name(step): change for step, (_, change, _) in enumerate(STEPS)}
    changes |= {f"seed-{seed}": f"the default with train.seed {seed}" for seed in SEEDS}
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
    return "\n".join(rows)


def write_table(content: str) -> None:
    start, end = "<!-- ablation:start -->", "<!-- ablation:end -->"
    text = RESULTS.read_text()
    pattern = re.compile(f"{re.escape(start)}.*?{re.escape(end)}", re.DOTALL)
    if not pattern.search(text):
        sys.exit(f"error: {RESULTS} has no {start} ... {end} section")
    RESULTS.write_text(pattern.sub(lambda _: f"{start}\n{content}\n{end}", text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="store_true", help="only write the table from the experiments run")
    if not parser.parse_args().table:
        for step in range(len(STEPS) - 1):  # the last step is the default: the committed run itself
            run_experiment(experiment_name(step), overrides(step))
        for seed in SEEDS:
            run_experiment(f"seed-{seed}", {"train.seed": str(seed)})
    write_table(table())
    print(f"wrote the ablation table into {RESULTS}")


if __name__ == "__main__":
    main()
