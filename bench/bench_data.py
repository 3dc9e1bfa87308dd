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
from audiomnist_denoise.params import load_params

REPO = Path(__file__).resolve().parents[1]

SPEAKERS, REPS = 12, 10  # 1200 clips at params.yaml's rate (AudioMNIST's)
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
        defaults = load_params(REPO / "params.yaml").data
        data = defaults.model_copy(update={"tts": defaults.tts.model_copy(update={"speakers": SPEAKERS, "reps": REPS})})
        clips = len(write_tts_corpus(raw, data))
        white = noise_maker("white", raw, 6, raw)

        def corpus(output: Path, workers: int) -> object:
            return write_tts_corpus(output, data.model_copy(update={"workers": workers}))

        report("corpus", clips, corpus, scratch)
        report("mix", clips, lambda output, w: mix_corpus(raw, output, white, -8.0, 0, w), scratch)


if __name__ == "__main__":
    main()
