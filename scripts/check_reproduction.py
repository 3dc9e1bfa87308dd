"""Check a fresh run against the committed results: every metric side by side, within a tolerance.

Run from the repository root after `dvc repro` (or `make check`, which does both):

    python scripts/check_reproduction.py [--against REV]

The data stages give the same bytes on every machine, so their counts must match exactly. The
model does not: oneDNN's convolution kernels differ between CPUs, training amplifies their
rounding, and another machine trains another model. Its metrics must agree within tolerances
measured as the spread over training seeds (docs/reproducibility.md), a change in the model no
smaller than a change of seed. The no-harm lists (`harm`) are printed item by item and not judged:
they follow from metrics that are.
"""

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from audiomnist_denoise.evaluation.conditions import SET_NAMES
from audiomnist_denoise.layout import CONDITION_METRICS, CORPUS_METRICS, EVAL_METRICS, SPLIT_METRICS, TRAINING_METRICS
from audiomnist_denoise.names import MODEL_FREE
from audiomnist_denoise.reporting.report import flatten_metrics

METRICS_FILES = tuple(
    path.as_posix() for path in (CORPUS_METRICS, SPLIT_METRICS, EVAL_METRICS, CONDITION_METRICS, TRAINING_METRICS)
)
DATA_METRICS = ("corpus", "split")  # the data stages' files: every entry must match exactly
CONDITION_SETS = "|".join(SET_NAMES)  # the sets of clips of conditions.json, its names' first part
# (pattern on the flattened metric name, kind, tolerance), the first match wins. A model metric may move as far as
# another training seed moved it: the largest deviation of seeds 1 and 2 from seed 0, rounded up
# (docs/reproducibility.md). Metrics that do not depend on the model (the noisy input, spectral gating, the
# pretrained baselines, the oracles) only round differently. conditions.json's names are {set}.{kind}.{method}.{metric}.
TOLERANCES = (
    (r"(^|\.)(clips|step)$", "exact", 0.0),
    (r"^snr_db$", "exact", 0.0),  # conditions.json: the params' SNR
    (r"^train_seconds$", "machine", 0.0),  # how fast this machine is: shown, never compared
    # The no-harm lists follow from metrics judged on their own; a condition within a hair of the noisy input
    # may flip on another CPU with every metric inside its tolerance. Shown, never compared.
    (r"^harm$", "derived", 0.0),
    (rf"(^|\.)({'|'.join(MODEL_FREE)})\.", "absolute", 1e-3),
    (r"identity_(mse|loss)$", "relative", 1e-3),
    # conditions.json's model methods: 50 clips a condition, so a seed moves them further than the 500 test clips
    (rf"^({CONDITION_SETS})\.\w+\.unet_\w+\.si_sdr$", "absolute", 2.0),
    (rf"^({CONDITION_SETS})\.\w+\.unet_\w+\.pesq$", "absolute", 0.21),
    (rf"^({CONDITION_SETS})\.\w+\.unet_\w+\.stoi$", "absolute", 0.048),
    (rf"^({CONDITION_SETS})\.\w+\.unet_\w+\.estoi$", "absolute", 0.037),
    (r"\.si_sdr$", "absolute", 1.7),
    (r"\.pesq$", "absolute", 0.12),
    (r"\.stoi$", "absolute", 0.047),
    (r"\.estoi$", "absolute", 0.032),
    (r"^train\.loss$", "absolute", 0.12),  # one batch's loss, less an SI-SDR share: near 0, so not relative
    (r"(mse|mse_ratio|loss)$|\.digit\.[0-9]$", "relative", 0.8),
)


NOT_JUDGED = ("machine", "derived")
NAME_WIDTH = 50  # conditions.json's longest names, e.g. conditions:natural.mean.oracle_griffinlim.si_sdr


@dataclass(frozen=True)
class Comparison:
    name: str
    committed: object
    fresh: object
    kind: str
    tolerance: float

    @property
    def ok(self) -> bool:
        if self.kind in NOT_JUDGED:
            return True
        if self.kind == "exact" or not all(isinstance(v, int | float) for v in (self.committed, self.fresh)):
            return self.committed == self.fresh
        difference = abs(self.fresh - self.committed)
        if self.kind == "relative":
            return difference <= self.tolerance * abs(self.committed)
        return difference <= self.tolerance

    def row(self) -> str:
        named = {"exact": "exact"} | dict.fromkeys(NOT_JUDGED, "not judged")
        bound = named.get(self.kind) or f"{self.tolerance:g}" + (" rel" if self.kind == "relative" else "")
        verdict = "ok" if self.ok else "OUT"
        line = f"{self.name:<{NAME_WIDTH}} {_show(self.committed):>12} {_show(self.fresh):>12} {bound:>10}  {verdict}"
        return line + "".join(f"\n    {item}" for item in _items(self.committed, self.fresh))


def _show(value: object) -> str:
    if value is None:
        return "missing"
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return f"{len(value)} item" + ("s" if len(value) > 1 else "")  # each on a line of its own (`_items`)
    return f"{value:.6g}" if isinstance(value, float) else json.dumps(value)


def _items(committed: object, fresh: object) -> list[str]:
    """Each item of two lists of text: in both (=), committed alone (-), fresh alone (+)."""
    old, new = (value if isinstance(value, list) else [] for value in (committed, fresh))
    if not all(isinstance(item, str) for item in old + new):
        return []
    kept = [f"= {item}" for item in old if item in new]
    return kept + [f"- {item}" for item in old if item not in new] + [f"+ {item}" for item in new if item not in old]


def tolerance_for(name: str, source: str = "eval") -> tuple[str, float]:
    if source in DATA_METRICS:
        return "exact", 0.0
    for pattern, kind, tolerance in TOLERANCES:
        if re.search(pattern, name):
            return kind, tolerance
    raise ValueError(f"no tolerance for metric {name!r}: add one to TOLERANCES")


def compare(committed: dict, fresh: dict, source: str) -> list[Comparison]:
    """Every metric of either side of one metrics file; a metric missing on one side fails."""
    committed, fresh = flatten_metrics(committed), flatten_metrics(fresh)
    names = list(committed) + [name for name in fresh if name not in committed]
    return [
        Comparison(f"{source}:{name}", committed.get(name), fresh.get(name), *tolerance_for(name, source))
        for name in names
    ]


def committed_json(path: str, revision: str) -> dict:
    shown = subprocess.run(["git", "show", f"{revision}:{path}"], capture_output=True, text=True, check=False)
    if shown.returncode != 0:
        raise SystemExit(f"error: {path}: not committed at {revision} ({shown.stderr.strip()})")
    return json.loads(shown.stdout)


def fresh_json(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise SystemExit(f"error: {path}: cannot read ({exc.strerror}); run `dvc repro` first") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="HEAD", metavar="REV", help="the committed results (default: HEAD)")
    args = parser.parse_args(argv)
    comparisons = []
    for path in METRICS_FILES:
        comparisons += compare(committed_json(path, args.against), fresh_json(path), Path(path).stem)
    print(f"{'metric':<{NAME_WIDTH}} {'committed':>12} {'fresh':>12} {'tolerance':>10}")
    for comparison in comparisons:
        print(comparison.row())
    failed = [comparison.name for comparison in comparisons if not comparison.ok]
    if failed:
        print(f"{len(failed)} of {len(comparisons)} metrics outside their tolerance: {', '.join(failed)}")
        return 1
    print(f"all {len(comparisons)} metrics within their tolerance of {args.against}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
