"""Stage `split`: data/split.csv gives each clip train, val or test; metrics/split.json counts them."""

import json

from _stage import run

from audiomnist_denoise.data.splits import split_corpus
from audiomnist_denoise.fsutil import write_text_atomic
from audiomnist_denoise.layout import RAW, SPLIT, SPLIT_METRICS
from audiomnist_denoise.params import load_params


def main() -> str:
    table, summary, voices = split_corpus(RAW, load_params().split)
    write_text_atomic(SPLIT, table.to_csv(index=False))
    write_text_atomic(SPLIT_METRICS, json.dumps(summary, indent=2) + "\n")
    counts = ", ".join(f"{count} {name}" for name, count in summary["clips"].items())
    return f"{counts} clips; test speakers {', '.join(summary['test_speakers'])}; {voices}"


if __name__ == "__main__":
    run(main)
