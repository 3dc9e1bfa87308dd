"""Stage `corpus`: fill data/raw from `data.source` (the embedded eSpeak NG corpus or AudioMNIST)."""

import logging
from pathlib import Path

from _stage import run

from audiomnist_denoise.download import fetch_audiomnist
from audiomnist_denoise.params import load_params
from audiomnist_denoise.sources import import_audiomnist, write_tts_corpus

RAW = Path("data/raw")
DOWNLOADS = Path("data/downloads")  # outside every output: a download survives reruns
log = logging.getLogger("corpus")


def main() -> str:
    data = load_params().data
    if data.source == "tts":
        tts = data.tts
        clips = write_tts_corpus(
            RAW, tts.speakers, tts.reps, tts.sample_rate, tts.seed, data.speakers, data.max_reps, data.workers
        )
        return f"{len(clips)} synthetic clips of {len({c.speaker for c in clips})} speakers in {RAW}"
    source = Path(data.audiomnist_dir) if data.audiomnist_dir else fetch_audiomnist(DOWNLOADS, data.audiomnist_sha256)
    clips, cleaning = import_audiomnist(source, RAW, data.speakers, data.max_reps, data.downmix, data.workers)
    for line in cleaning:
        log.info("metadata cleaned: %s", line)
    return f"{len(clips)} AudioMNIST clips of {len({c.speaker for c in clips})} speakers from {source} in {RAW}"


if __name__ == "__main__":
    run(main)
