"""Throughput and peak memory of the featurize stage (`build_feature_cache`).

Throughput, on 1,200 clean/noisy pairs at 48 kHz with the repository's features params:
the reference is a naive loop written here (per file one plain librosa call chain, load,
melspectrogram, power_to_db, min-max, cv2.resize; images kept in a list, np.stack at
the end), against build_feature_cache with one worker and with all cores, in the same
run. Each figure is the best of a few runs, outputs deleted in between.

Memory: build_feature_cache (all cores) on N and 2N pairs, each in a fresh child process
so that nothing allocated before counts: its peak RSS and its largest worker's. The cache
goes to disk block by block, so the peak should stay flat when the clip count doubles;
the naive list-then-stack would hold every image in memory.

The child's own peak is read from /proc (VmHWM), not ru_maxrss: Linux carries the peak of
the process that called exec into the new program's ru_maxrss, so every child would read
this benchmark's own peak. Its workers are forked, not exec'd: their ru_maxrss is their own.
"""

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import librosa
import numpy as np

from audiomnist_denoise.corpus import find_clips
from audiomnist_denoise.feature_cache import CLEAN_FILE, build_feature_cache
from audiomnist_denoise.noise import mix_corpus, noise_maker
from audiomnist_denoise.parallel import resolve_workers
from audiomnist_denoise.params import FeatureParams, load_params
from audiomnist_denoise.sources import write_tts_corpus

REPO = Path(__file__).resolve().parents[1]
SPEAKERS, REPS, RATE = 30, 10, 48000  # 3000 clips (100 per speaker) at AudioMNIST's rate
THROUGHPUT_SPEAKERS = 12  # 1200 pairs
MEMORY_SPEAKERS = (15, 30)  # N = 1500 and 2N = 3000 pairs
REPEATS = 3
CHILD_FLAG = "--peak-memory"


def make_corpus(scratch: Path) -> tuple[Path, Path]:
    """A synthetic clean corpus and its white-noise copy at -8 dB."""
    raw, noisy = scratch / "raw", scratch / "noisy"
    write_tts_corpus(raw, SPEAKERS, REPS, RATE, 0, None, None, 0)
    mix_corpus(raw, noisy, noise_maker("white", raw, 6, raw), -8.0, 0, 0)
    return raw, noisy


def subset(raw: Path, noisy: Path, speakers: int, scratch: Path) -> tuple[Path, Path]:
    """The first `speakers` speakers' folders, hard-linked (no copying) into a new pair of corpora."""
    chosen = sorted(path.name for path in raw.iterdir() if path.is_dir())[:speakers]
    folder = scratch / f"speakers-{speakers}"
    for root in (raw, noisy):
        for speaker in chosen:
            shutil.copytree(root / speaker, folder / root.name / speaker, copy_function=os.link)
    return folder / raw.name, folder / noisy.name


def naive_image(path: Path, settings: FeatureParams) -> np.ndarray:
    """One file through plain librosa, as a first script would: the mel filterbank is rebuilt every call."""
    audio, _ = librosa.load(path, sr=settings.sample_rate)
    power = librosa.feature.melspectrogram(
        y=audio, sr=settings.sample_rate, n_fft=settings.n_fft, hop_length=settings.hop_length,
        n_mels=settings.n_mels, fmin=settings.fmin, fmax=settings.fmax,
    )  # fmt: skip
    db = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=settings.top_db)
    normalised = (db - db.min()) / (db.max() - db.min())
    height, width = settings.size
    interpolation = getattr(cv2, f"INTER_{settings.interpolation.upper()}")
    return cv2.resize(normalised.astype(np.float32), (width, height), interpolation=interpolation)


def naive_features(raw: Path, noisy: Path, settings: FeatureParams) -> tuple[np.ndarray, np.ndarray]:
    clean_images, noisy_images = [], []
    for clip in find_clips(raw):
        clean_images.append(naive_image(raw / clip.path, settings))
        noisy_images.append(naive_image(noisy / clip.path, settings))
    return np.stack(clean_images), np.stack(noisy_images)


def best_time(run: Callable[[Path], object], output: Path) -> float:
    """Best of REPEATS; the previous output is deleted before each run, the last one is kept."""
    times = []
    for _ in range(REPEATS):
        shutil.rmtree(output, ignore_errors=True)
        started = time.perf_counter()
        run(output)
        times.append(time.perf_counter() - started)
    return min(times)


def cache_builder(raw: Path, noisy: Path, settings: FeatureParams, workers: int) -> Callable[[Path], object]:
    settings = settings.model_copy(update={"workers": workers})
    return lambda output: build_feature_cache(raw, noisy, output, settings)


def report_throughput(raw: Path, noisy: Path, settings: FeatureParams, scratch: Path) -> None:
    clips, workers = len(find_clips(raw)), resolve_workers(0)
    naive = best_time(lambda _: naive_features(raw, noisy, settings), scratch / "naive")
    one = best_time(cache_builder(raw, noisy, settings, 1), scratch / "one")
    many = best_time(cache_builder(raw, noisy, settings, 0), scratch / "all")
    print(
        f"featurize {clips} pairs | naive loop {clips / naive:6.1f} clips/s | "
        f"1 worker {clips / one:6.1f} clips/s | {workers} workers {clips / many:6.1f} clips/s"
    )
    print(f"featurize ours({workers} workers)/naive {naive / many:.2f}x | all/one {one / many:.2f}x (target >= 1.6x)")
    check_agreement(raw, scratch / "all", settings)


def check_agreement(raw: Path, cache: Path, settings: FeatureParams, clips: int = 8) -> None:
    """Both paths compute the same images: otherwise the speed comparison would mean nothing."""
    first = find_clips(raw)[:clips]
    naive = np.stack([naive_image(raw / clip.path, settings) for clip in first])
    ours = np.load(cache / CLEAN_FILE, mmap_mode="r")[:clips].astype(np.float32)
    difference = np.abs(naive - ours).max()
    print(f"featurize first {clips} clean images, largest |naive - ours| {difference:.1e} ({settings.dtype} cache)")


def peak_memory(raw: Path, noisy: Path, target: Path, settings: FeatureParams) -> dict[str, int]:
    """Peak RSS (KiB) of build_feature_cache run in a fresh interpreter, and of its largest worker."""
    command = [sys.executable, __file__, CHILD_FLAG, str(raw), str(noisy), str(target), settings.model_dump_json()]
    done = subprocess.run(command, capture_output=True, text=True)  # stderr: progress bars, unless it fails
    if done.returncode:
        raise RuntimeError(f"memory child failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def own_peak_rss() -> int:
    """This program's peak RSS in KiB, since its exec (see the module docstring)."""
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])


def child_peak_memory(raw: str, noisy: str, target: str, settings: str) -> None:
    build_feature_cache(Path(raw), Path(noisy), Path(target), FeatureParams.model_validate_json(settings))
    # RUSAGE_CHILDREN covers the pool's workers: the pool has ended and reaped them by now.
    print(json.dumps({"parent": own_peak_rss(), "worker": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))


def report_memory(corpora: list[tuple[Path, Path]], settings: FeatureParams, scratch: Path) -> None:
    parents = []
    for raw, noisy in corpora:
        clips = len(find_clips(raw))
        peaks = peak_memory(raw, noisy, scratch / f"memory-{clips}", settings)
        parents.append(peaks["parent"])
        print(
            f"memory    {clips} pairs | parent peak RSS {peaks['parent'] / 1024:6.1f} MiB | "
            f"largest worker {peaks['worker'] / 1024:6.1f} MiB"
        )
    height, width = settings.size
    naive_mib = 2 * clips * height * width * 4 / 2**20  # clean and noisy float32 images of the largest corpus
    print(f"memory    parent peak 2N/N {parents[-1] / parents[0]:.2f}x (flat: <= 1.2)")
    print(
        f"memory    naive list-then-stack for {clips} pairs holds 2 x {clips} x {height} x {width} x 4 B = "
        f"{naive_mib:.0f} MiB (up to twice that while np.stack copies)"
    )


def main() -> None:
    settings = load_params(REPO / "params.yaml").features
    (REPO / "data").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=REPO / "data") as folder:
        scratch = Path(folder)
        raw, noisy = make_corpus(scratch)
        report_throughput(*subset(raw, noisy, THROUGHPUT_SPEAKERS, scratch), settings, scratch)
        report_memory([subset(raw, noisy, count, scratch) for count in MEMORY_SPEAKERS], settings, scratch)


if __name__ == "__main__":
    if sys.argv[1:2] == [CHILD_FLAG]:
        child_peak_memory(*sys.argv[2:])
    else:
        main()
