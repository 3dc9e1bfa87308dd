"""Throughput of the data stages: `corpus` (eSpeak NG synthesis) and `mix`, all cores against one.

The reference for each is the same library call with one worker, in the same run.
"""

import tempfile
import time
from pathlib import Path

from audiomnist_denoise.noise import mix_corpus, noise_maker
from audiomnist_denoise.parallel import resolve_workers
from audiomnist_denoise.sources import write_tts_corpus

SPEAKERS, REPS, RATE = 12, 10, 48000  # the default corpus: 2400 clips at AudioMNIST's rate


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def synthesize(target: Path, workers: int) -> int:
    return len(write_tts_corpus(target, SPEAKERS, REPS, RATE, 0, None, None, workers))


def mix(raw: Path, target: Path, workers: int) -> int:
    return len(mix_corpus(raw, target, noise_maker("white", raw, 6, raw), -8.0, 0, workers))


def report(name: str, clips: int, one: float, all_: float, workers: int) -> None:
    print(
        f"{name:<8} {clips} clips: 1 worker {clips / one:7.1f} clips/s | "
        f"{workers} workers {clips / all_:7.1f} clips/s | ratio {one / all_:.2f}x"
    )


def main() -> None:
    workers = resolve_workers(0)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        raw = root / "raw"
        synthesize(raw, workers)  # warm-up: first worker start-up and file cache
        clips = SPEAKERS * 10 * REPS
        report("corpus", clips, timed(lambda: synthesize(root / "c1", 1)), timed(lambda: synthesize(root / "cn", workers)), workers)
        mix(raw, root / "warm", workers)
        report("mix", clips, timed(lambda: mix(raw, root / "m1", 1)), timed(lambda: mix(raw, root / "mn", workers)), workers)


if __name__ == "__main__":
    main()
