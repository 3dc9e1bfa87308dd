"""Check a fresh run against the committed results: every metric side by side, within a tolerance.

Run from the repository root after `dvc repro` (or `make check`, which does both):

    python scripts/check_reproduction.py [--against REV]

The data stages give the same bytes on every machine, so their counts must match exactly. The
model does not: oneDNN's convolution kernels differ between CPUs, training amplifies their
rounding, and another machine trains another model. Its metrics must agree within tolerances
measured as the spread over training seeds (docs/reproducibility.md), a change in the model no
smaller than a change of seed.
"""

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from audiomnist_denoise.layout import CORPUS_METRICS, EVAL_METRICS, SPLIT_METRICS, TRAINING_METRICS
from audiomnist_denoise.names import MODEL_FREE
from audiomnist_denoise.reporting.report import flatten_metrics

METRICS_FILES = tuple(path.as_posix() for path in (CORPUS_METRICS, SPLIT_METRICS, EVAL_METRICS, TRAINING_METRICS))
DATA_METRICS = ("corpus", "split")  # the data stages' files: every entry must match exactly
# (pattern on the flattened metric name, kind, tolerance), the first match wins. A model metric may move as far as
# another training seed moved it: the largest deviation of seeds 1 and 2 from seed 0, rounded up
# (docs/reproducibility.md). Metrics that do not depend on the model (the noisy input, spectral gating, the
# pretrained baselines, the oracles) only round differently.
TOLERANCES = (
    (r"(^|\.)(clips|step)$", "exact", 0.0),
    (r"^train_seconds$", "machine", 0.0),  # how fast this machine is: shown, never compared
    (rf"(^|\.)({'|'.join(MODEL_FREE)})\.", "absolute", 1e-3),
    (r"identity_(mse|loss)$", "relative", 1e-3),
    (r"\.si_sdr$", "absolute", 0.5),
    (r"\.pesq$", "absolute", 0.03),
    (r"\.stoi$", "absolute", 0.01),
    (r"\.estoi$", "absolute", 0.01),
    (r"^train\.loss$", "absolute", 0.01),  # one batch's loss, less an SI-SDR share: near 0, so not relative
    (r"(mse|mse_ratio|loss)$|\.digit\.[0-9]$", "relative", 0.8),
)


@dataclass(frozen=True)
class Comparison:
    name: str
    committed: object
    fresh: object
    kind: str
    tolerance: float

    @property
    def ok(self) -> bool:
        if self.kind == "machine":
            return True
        if self.kind == "exact" or not all(isinstance(v, int | float) for v in (self.committed, self.fresh)):
            return self.committed == self.fresh
        difference = abs(self.fresh - self.committed)
        if self.kind == "relative":
            return difference <= self.tolerance * abs(self.committed)
        return difference <= self.tolerance

    def row(self) -> str:
        named = {"exact": "exact", "machine": "not judged"}
        bound = named.get(self.kind) or f"{self.tolerance:g}" + (" rel" if self.kind == "relative" else "")
        verdict = "ok" if self.ok else "OUT"
        return f"{self.name:<40} {_show(self.committed):>12} {_show(self.fresh):>12} {bound:>10}  {verdict}"


def _show(value: object) -> str:
    if value is None:
        return "missing"
    return f"{value:.6g}" if isinstance(value, float) else json.dumps(value)


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
    print(f"{'metric':<40} {'committed':>12} {'fresh':>12} {'tolerance':>10}")
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
