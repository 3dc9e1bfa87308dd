"""Stage `corpus`: fill data/raw from `data.source` (the embedded eSpeak NG corpus or AudioMNIST).

metrics/corpus.json counts the clips kept and lists every bad file with its reason; it is
written even when bad files stop the stage, so the full list is at hand.
"""

import json
import logging

from _stage import run

from audiomnist_denoise.data.sources import corpus_metrics, fill_corpus
from audiomnist_denoise.errors import BadFilesError, PipelineError
from audiomnist_denoise.fsutil import write_text_atomic
from audiomnist_denoise.layout import CORPUS_METRICS, DOWNLOADS, RAW
from audiomnist_denoise.params import load_params


def write_metrics(kept: int, bad_files: list) -> None:
    write_text_atomic(CORPUS_METRICS, json.dumps(corpus_metrics(kept, bad_files), indent=2) + "\n")


def main() -> str:
    data = load_params().data
    try:
        corpus = fill_corpus(data, RAW, DOWNLOADS)
    except BadFilesError as exc:
        write_metrics(0, exc.bad_files)
        hint = "" if data.on_bad_file == "skip" else "; data.on_bad_file: skip leaves them out"
        raise PipelineError(f"{exc} (all listed in {CORPUS_METRICS}{hint})") from None
    write_metrics(len(corpus.clips), corpus.bad_files)
    for line in corpus.cleaning:
        logging.getLogger("corpus").info("metadata cleaned: %s", line)
    left_out = f"; {len(corpus.bad_files)} bad file(s) left out, listed in {CORPUS_METRICS}" if corpus.bad_files else ""
    return corpus.summary(RAW) + left_out


if __name__ == "__main__":
    run(main)
