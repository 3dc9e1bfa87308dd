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

Full scale (the performance issue's criterion): build_feature_cache with all cores on
30,000 pairs, AudioMNIST's size, once, in a fresh child as above. The pairs cost no disk
for audio: every clip of the 3,000-clip corpus is hard-linked under more repetition numbers
(rep r links to rep r % 10), clean and noisy, so the names follow the AudioMNIST pattern
and each file is featurized as if it were new (its reads come from the page cache: 3,000
distinct files). The cache written (2 x 30,000 x 112 x 112 float16, about 1.5 GB) is
deleted right after. Reported: wall time and clips/s; the peak RSS of the parent and of
its largest worker; their total, bounded by parent + workers x largest worker (an upper
bound: the peaks need not coincide, and pages shared since the fork count in every
process); and the cores used, the CPU time of parent and workers (getrusage SELF +
CHILDREN) over the wall time. The naive loop is not run on 30,000 pairs (a quarter of an
hour or more on one core): its clips/s comes from the 1,200-pair throughput run above,
and the time it would take is extrapolated from it. A clip here is one clean/noisy pair.
Set BENCH_FEATURIZE_FULL to another multiple of 300 for a quicker check (3000), 0 to skip.
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

from audiomnist_denoise.data.corpus import META_FILE, Clip, find_clips
from audiomnist_denoise.data.noise import mix_corpus, noise_maker
from audiomnist_denoise.data.sources import write_tts_corpus
from audiomnist_denoise.features.cache import CLEAN_FILE, build_feature_cache
from audiomnist_denoise.parallel import resolve_workers
from audiomnist_denoise.params import DataParams, FeatureParams, load_params

REPO = Path(__file__).resolve().parents[1]
SPEAKERS, REPS = 30, 10  # 3000 clips (100 per speaker) at params.yaml's rate (AudioMNIST's)
THROUGHPUT_SPEAKERS = 12  # 1200 pairs
MEMORY_SPEAKERS = (15, 30)  # N = 1500 and 2N = 3000 pairs
REPEATS = 3
CHILD_FLAG = "--peak-memory"
FULL_ENV, FULL_PAIRS = "BENCH_FEATURIZE_FULL", 30000  # AudioMNIST: 60 speakers x 10 digits x 50 reps
MEMORY_TARGET_MIB = 2048


def corpus_params() -> DataParams:
    data = load_params(REPO / "params.yaml").data
    return data.model_copy(update={"tts": data.tts.model_copy(update={"speakers": SPEAKERS, "reps": REPS})})


def make_corpus(scratch: Path) -> tuple[Path, Path]:
    """A synthetic clean corpus and its white-noise copy at -8 dB."""
    raw, noisy = scratch / "raw", scratch / "noisy"
    write_tts_corpus(raw, corpus_params())
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
        y=audio,
        sr=settings.sample_rate,
        n_fft=settings.n_fft,
        hop_length=settings.hop_length,
        n_mels=settings.n_mels,
        fmin=settings.fmin,
        fmax=settings.fmax,
    )
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


def report_throughput(raw: Path, noisy: Path, settings: FeatureParams, scratch: Path) -> float:
    """Prints the three rates; returns the naive loop's clips/s, the reference of the full-scale run."""
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
    return clips / naive


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


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def child_peak_memory(raw: str, noisy: str, target: str, settings: str) -> None:
    features = FeatureParams.model_validate_json(settings)
    before = cpu_seconds(resource.RUSAGE_SELF)  # imports are not the work measured
    started = time.perf_counter()
    index = build_feature_cache(Path(raw), Path(noisy), Path(target), features)
    wall = time.perf_counter() - started
    # RUSAGE_CHILDREN covers the pool's workers: the pool has ended and reaped them by now.
    parent_cpu, workers_cpu = cpu_seconds(resource.RUSAGE_SELF) - before, cpu_seconds(resource.RUSAGE_CHILDREN)
    cpu = {"cpu_parent": parent_cpu, "cpu_workers": workers_cpu}
    peaks = {"parent": own_peak_rss(), "worker": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}
    workers = min(resolve_workers(features.workers), len(index))  # as map_progress decides; 1: no pool
    run = {"pairs": len(index), "wall": wall, "cores": resolve_workers(0), "workers": workers}
    print(json.dumps(peaks | cpu | run))


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


def full_pairs() -> int:
    """The full-scale clip count: BENCH_FEATURIZE_FULL, 30,000 by default; 0 skips the run."""
    pairs = int(os.environ.get(FULL_ENV) or FULL_PAIRS)
    if pairs % (SPEAKERS * 10):
        raise ValueError(f"{FULL_ENV}={pairs}: must be a multiple of {SPEAKERS * 10} ({SPEAKERS} speakers x 10 digits)")
    return pairs


def enlarge(raw: Path, noisy: Path, pairs: int, scratch: Path) -> tuple[Path, Path]:
    """A pair of corpora of `pairs` clips whose rep r is a hard link to rep r % REPS of `raw` and `noisy`."""
    reps = pairs // (SPEAKERS * 10)
    folder = scratch / f"pairs-{pairs}"
    for root in (raw, noisy):
        for speaker in {clip.speaker for clip in find_clips(root)}:
            (folder / root.name / speaker).mkdir(parents=True)
        for clip in find_clips(root):
            for rep in range(clip.rep, reps, REPS):
                os.link(root / clip.path, folder / root.name / Clip(clip.speaker, clip.digit, rep).path)
        if (root / META_FILE).is_file():  # the clean corpus's metadata, so the folder is a whole corpus
            os.link(root / META_FILE, folder / root.name / META_FILE)
    return folder / raw.name, folder / noisy.name


def report_full(raw: Path, noisy: Path, pairs: int, naive_rate: float, settings: FeatureParams, scratch: Path) -> None:
    if not pairs:
        return
    big_raw, big_noisy = enlarge(raw, noisy, pairs, scratch)
    target = scratch / f"full-{pairs}"
    try:
        run = peak_memory(big_raw, big_noisy, target, settings.model_copy(update={"workers": 0}))
    finally:
        shutil.rmtree(target, ignore_errors=True)  # ~1.5 GB at 30,000 pairs: gone before anything else runs
    print_full(run, naive_rate)


def print_full(run: dict, naive_rate: float) -> None:
    pairs, cores, workers = run["pairs"], run["cores"], run["workers"]
    total_mib = (run["parent"] + workers * run["worker"]) / 1024
    cpu = run["cpu_parent"] + run["cpu_workers"]
    used, rate = cpu / run["wall"], pairs / run["wall"]
    naive_pairs = THROUGHPUT_SPEAKERS * 10 * REPS
    print(
        f"full      {pairs} pairs | {run['wall']:.1f} s | {rate:6.1f} clips/s | "
        f"parent peak RSS {run['parent'] / 1024:6.1f} MiB | largest of {workers} workers "
        f"{run['worker'] / 1024:6.1f} MiB | total <= parent + {workers} x largest = {total_mib:.0f} MiB"
    )
    print(
        f"full      CPU time {cpu:.1f} s (parent {run['cpu_parent']:.1f} + workers {run['cpu_workers']:.1f}) over "
        f"{run['wall']:.1f} s wall = {used:.2f} cores of {cores} ({100 * used / cores:.0f}%; less if others load them)"
    )
    verdict = "met" if total_mib < MEMORY_TARGET_MIB else "MISSED"
    print(
        f"featurize {pairs} pairs | peak total <= {total_mib:.0f} MiB (target < {MEMORY_TARGET_MIB}: {verdict}) | "
        f"cores used {used:.2f} of {cores} | ours {rate:.1f} clips/s vs naive {naive_rate:.1f} clips/s = "
        f"{rate / naive_rate:.1f}x (naive measured on {naive_pairs} pairs; on {pairs} it would take "
        f"~{pairs / naive_rate / 60:.0f} min)"
    )


def main() -> None:
    settings = load_params(REPO / "params.yaml").features
    pairs = full_pairs()  # a bad value fails now, not after minutes of the other runs
    (REPO / "data").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=REPO / "data") as folder:
        scratch = Path(folder)
        raw, noisy = make_corpus(scratch)
        naive_rate = report_throughput(*subset(raw, noisy, THROUGHPUT_SPEAKERS, scratch), settings, scratch)
        report_memory([subset(raw, noisy, count, scratch) for count in MEMORY_SPEAKERS], settings, scratch)
        report_full(raw, noisy, pairs, naive_rate, settings, scratch)


if __name__ == "__main__":
    if sys.argv[1:2] == [CHILD_FLAG]:
        child_peak_memory(*sys.argv[2:])
    else:
        main()
