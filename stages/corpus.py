"""Stage `corpus`: fill data/raw from `data.source` (the embedded eSpeak NG corpus or AudioMNIST).

metrics/corpus.json counts the clips kept and lists every bad file with its reason; it is
written even when bad files stop the stage, so the full list is at hand.
"""

import json
import logging
from dataclasses import asdict
from pathlib import Path

from _stage import run

from audiomnist_denoise.data.download import fetch_audiomnist
from audiomnist_denoise.data.sources import import_audiomnist, write_tts_corpus
from audiomnist_denoise.errors import BadFile, BadFilesError, PipelineError
from audiomnist_denoise.fsutil import write_text_atomic
from audiomnist_denoise.layout import CORPUS_METRICS, DOWNLOADS, RAW
from audiomnist_denoise.params import load_params

log = logging.getLogger("corpus")


def write_metrics(kept: int, bad_files: list[BadFile]) -> None:
    metrics = {"clips": {"kept": kept, "bad": len(bad_files)}, "bad_files": [asdict(bad) for bad in bad_files]}
    write_text_atomic(CORPUS_METRICS, json.dumps(metrics, indent=2) + "\n")


def main() -> str:
    data = load_params().data
    if data.source == "tts":
        clips = write_tts_corpus(RAW, data)
        write_metrics(len(clips), [])
        return f"{len(clips)} synthetic clips of {len({c.speaker for c in clips})} speakers in {RAW}"
    source = Path(data.audiomnist_dir) if data.audiomnist_dir else fetch_audiomnist(DOWNLOADS, data.audiomnist_sha256)
    try:
        imported = import_audiomnist(source, RAW, data)
    except BadFilesError as exc:
        write_metrics(0, exc.bad_files)
        hint = "" if data.on_bad_file == "skip" else "; data.on_bad_file: skip leaves them out"
        raise PipelineError(f"{exc} (all listed in {CORPUS_METRICS}{hint})") from None
    write_metrics(len(imported.clips), imported.bad_files)
    for line in imported.cleaning:
        log.info("metadata cleaned: %s", line)
    clips, bad_files = imported.clips, imported.bad_files
    summary = f"{len(clips)} AudioMNIST clips of {len({c.speaker for c in clips})} speakers from {source} in {RAW}"
    return summary + (f"; {len(bad_files)} bad file(s) left out, listed in {CORPUS_METRICS}" if bad_files else "")


if __name__ == "__main__":
    run(main)
