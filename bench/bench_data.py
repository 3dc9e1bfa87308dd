"""Throughput of the data stages: `corpus` (eSpeak NG synthesis) and `mix`, all cores against one.

The reference for each is the same stage function with one worker, in the same run.
Each figure is the best of a few runs, outputs deleted in between: the stages write
thousands of small files, and the disk's write-back makes single runs noisy.
"""

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from audiomnist_denoise.data.noise import mix_corpus, noise_maker
from audiomnist_denoise.data.sources import write_tts_corpus
from audiomnist_denoise.parallel import resolve_workers

SPEAKERS, REPS, RATE = 12, 10, 48000  # 1200 clips at AudioMNIST's rate
REPEATS = 3


def best_time(run: Callable[[Path], object], output: Path) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        run(output)
        times.append(time.perf_counter() - started)
        shutil.rmtree(output)
    return min(times)


def report(name: str, clips: int, run: Callable[[Path, int], object], scratch: Path) -> None:
    workers = resolve_workers(0)
    one = best_time(lambda output: run(output, 1), scratch / f"{name}-1")
    many = best_time(lambda output: run(output, workers), scratch / f"{name}-{workers}")
    print(
        f"{name:<7} {clips} clips | 1 worker {clips / one:7.1f} clips/s | "
        f"{workers} workers {clips / many:7.1f} clips/s | ratio {one / many:.2f}x"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        raw = scratch / "raw"
        clips = len(write_tts_corpus(raw, SPEAKERS, REPS, RATE, 0, None, None, 0))
        white = noise_maker("white", raw, 6, raw)
        report(
            "corpus", clips, lambda output, w: write_tts_corpus(output, SPEAKERS, REPS, RATE, 0, None, None, w), scratch
        )
        report("mix", clips, lambda output, w: mix_corpus(raw, output, white, -8.0, 0, w), scratch)


if __name__ == "__main__":
    main()
