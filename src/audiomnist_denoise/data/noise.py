"""Noise and SNR mixing: every clean clip plus noise at a chosen SNR, seeded per clip.

SNR is the power of the whole clean clip over the power of the added noise. Noisy
clips are written as 32-bit float wavs, so a loud mix is never clipped.
"""

from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import scipy.fft

from ..audio.io import read_audio, resample
from ..errors import PipelineError
from ..fsutil import atomic_directory, write_wav
from ..parallel import map_progress
from .corpus import Clip, find_clips

NOISE_FILE_SUFFIXES = (".wav", ".flac", ".ogg")
# Exponent of the power spectrum, power ~ 1 / f**exponent.
_COLOUR_EXPONENT = {"pink": 1.0, "brown": 2.0}


def colored_noise(length: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise whose power spectrum falls as 1 / f**exponent, without DC.

    Shaping a white spectrum is three lines of numpy; no maintained library does
    only this. It is made at a length of small prime factors and cut: a clip's own
    length may be a large prime, and then its FFT is many times slower.
    """
    made = scipy.fft.next_fast_len(length, real=True)
    spectrum = rng.standard_normal(made // 2 + 1) + 1j * rng.standard_normal(made // 2 + 1)
    frequencies = np.fft.rfftfreq(made)
    frequencies[0] = np.inf  # no DC
    noise = scipy.fft.irfft(spectrum * frequencies ** (-exponent / 2), made)[:length]
    return noise - noise.mean()  # the cut leaves a little DC


def power(signal: np.ndarray) -> float:
    return float(np.mean(np.square(signal, dtype=np.float64)))


def snr_db(clean: np.ndarray, noise: np.ndarray) -> float:
    return 10 * np.log10(power(clean) / power(noise))


def scale_to_snr(clean: np.ndarray, noise: np.ndarray, target_db: float) -> np.ndarray:
    """`noise` scaled so that clean power over noise power is `target_db`."""
    clean_power, noise_power = power(clean), power(noise)
    if clean_power == 0:
        raise PipelineError("clean signal is silent: SNR undefined")
    if noise_power == 0:
        raise PipelineError("noise is silent: SNR undefined")
    return noise * np.sqrt(clean_power / (noise_power * 10 ** (target_db / 10)))


def _tile_crop(signal: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A `length`-sample window of `signal` repeated end to end, from a random start."""
    start = int(rng.integers(len(signal)))
    return np.resize(np.roll(signal, -start), length)


@lru_cache(maxsize=64)
def _load_mono(path: Path, sample_rate: int) -> np.ndarray:
    audio, rate = read_audio(path, downmix=True)
    return resample(audio, rate, sample_rate)


def find_noise_files(folder: Path, needed_by: str = "noise.kind") -> tuple[Path, ...]:
    files = tuple(sorted(path for path in folder.rglob("*") if path.suffix.lower() in NOISE_FILE_SUFFIXES))
    if not files:
        raise PipelineError(
            f"noise.dir: no recordings ({', '.join(NOISE_FILE_SUFFIXES)}) in {folder}; {needed_by} files needs some"
        )
    return files


@dataclass(frozen=True)
class NoiseMaker:
    """Makes the noise for one clip. Picklable, so worker processes get their own."""

    kind: str
    talkers: int = 6
    corpus: Path | None = None  # babble: the clean corpus, talkers are its clips
    others: tuple[Clip, ...] = ()  # babble: every clip of the corpus
    files: tuple[Path, ...] = ()  # files: recordings to crop

    def __call__(self, clip: Clip, length: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        if self.kind == "white":
            return rng.standard_normal(length)
        if self.kind in _COLOUR_EXPONENT:
            return colored_noise(length, _COLOUR_EXPONENT[self.kind], rng)
        if self.kind == "babble":
            return self._babble(clip, length, sample_rate, rng)
        if self.kind == "files":
            source = self.files[int(rng.integers(len(self.files)))]
            crop = _tile_crop(_load_mono(source, sample_rate), length, rng)
            if power(crop) == 0:
                raise PipelineError(f"noise.dir: {source} is silent where clip {clip.id} took its noise")
            return crop
        raise PipelineError(f"noise.kind: {self.kind!r} is not one of white, pink, brown, babble, files")

    def _babble(self, clip: Clip, length: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """Other speakers' clips, each at equal power, overlapping at random offsets."""
        candidates = [other for other in self.others if other.speaker != clip.speaker]
        if not candidates:
            raise PipelineError("noise.kind babble needs clips of more than one speaker")
        picks = rng.choice(len(candidates), size=self.talkers, replace=len(candidates) < self.talkers)
        babble = np.zeros(length)
        for index in picks:
            talker = _load_mono(self.corpus / candidates[index].path, sample_rate)
            babble += _tile_crop(talker, length, rng) / np.sqrt(max(power(talker), 1e-20))
        return babble


def noise_maker(
    kind: str,
    corpus: Path,
    talkers: int,
    noise_dir: Path,
    talker_clips: tuple[Clip, ...] | None = None,
    needed_by: str = "noise.kind",
) -> NoiseMaker:
    """The maker of `kind`: babble's talkers are `talker_clips` of `corpus` (`None`: all its clips), and `needed_by`
    is the param an empty `noise_dir` is reported against."""
    if kind == "babble":
        others = tuple(find_clips(corpus)) if talker_clips is None else talker_clips
        return NoiseMaker(kind, talkers, corpus=corpus, others=others)
    if kind == "files":
        return NoiseMaker(kind, files=find_noise_files(noise_dir, needed_by))
    return NoiseMaker(kind)


def mix_clip(clean: np.ndarray, sample_rate: int, clip: Clip, maker: NoiseMaker, target_db: float, seed: int):
    """The noisy clip (float32) and the noise in it, from the clip's own seed."""
    rng = np.random.default_rng(clip.seed(seed, "noise"))
    noise = scale_to_snr(clean, maker(clip, len(clean), sample_rate, rng), target_db)
    return (clean + noise).astype(np.float32), noise


def mix_corpus_clip(
    raw: Path, clip: Clip, maker: NoiseMaker, target_db: float, seed: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """The clean clip of corpus `raw`, its noisy copy exactly as the mix stage writes it, and their sample rate."""
    clean, rate = read_audio(raw / clip.path)
    if power(clean) == 0:
        raise PipelineError(f"{raw / clip.path}: silent clip, SNR undefined")
    return clean, mix_clip(clean, rate, clip, maker, target_db, seed)[0], rate


def _mix_file(clip: Clip, raw: Path, target: Path, maker: NoiseMaker, target_db: float, seed: int) -> float:
    clean, noisy, rate = mix_corpus_clip(raw, clip, maker, target_db, seed)
    write_wav(target / clip.path, noisy, rate)
    return snr_db(clean, noisy.astype(np.float64) - clean)


def mix_corpus(raw: Path, target: Path, maker: NoiseMaker, target_db: float, seed: int, workers: int) -> np.ndarray:
    """Write a noisy copy of every clip of `raw` into `target`, same paths; the measured SNRs."""
    clips = find_clips(raw)
    with atomic_directory(target) as partial_dir:
        work = partial(_mix_file, raw=raw, target=partial_dir, maker=maker, target_db=target_db, seed=seed)
        return np.array(list(map_progress(work, clips, workers, desc=f"mix ({maker.kind}, {target_db:g} dB)")))
