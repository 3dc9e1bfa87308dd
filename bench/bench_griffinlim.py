"""Griffin-Lim: the batched PyTorch implementation against librosa, same spectrograms, same iteration count.

The reference is `librosa.feature.inverse.mel_to_audio` (mel to linear by non-negative
least squares, then Griffin-Lim) called once per clip, as the study does. Ours is
`audio.griffinlim.griffin_lim_batch` on the whole batch, mel-to-linear step included. Both
start from a random phase and run 32 iterations on the clean mel power spectrograms of
64 synthetic digits at 48 kHz with the repository's feature settings. Reported: seconds
per clip (best of a few runs), their ratio, each one's mean spectral convergence
(||M - mel(audio)|| / ||M|| on mel magnitudes, lower is better) and this process's peak
resident memory.
"""

import resource
import time

import librosa
import numpy as np

from audiomnist_denoise.audio.griffinlim import griffin_lim_batch, spectral_convergence
from audiomnist_denoise.audio.spectral import mel_power
from audiomnist_denoise.data import tts
from audiomnist_denoise.data.corpus import Clip
from audiomnist_denoise.params import load_params

CLIPS, ITERATIONS, REPEATS = 64, 32, 2
LIBROSA_CLIPS = 16  # librosa runs clip by clip: a quarter of the batch gives its per-clip time


def clips(rate: int) -> list[np.ndarray]:
    chosen = [Clip(f"{1 + i % 24:02d}", i % 10, i // 10) for i in range(CLIPS)]
    return [tts.synthesize_clip(clip.speaker, clip.digit, clip.rep, rate, 0) / 32768.0 for clip in chosen]


def librosa_audio(mel: np.ndarray, length: int, settings, seed: int) -> np.ndarray:
    np.random.seed(seed)  # mel_to_audio draws its random start from NumPy's global generator
    return librosa.feature.inverse.mel_to_audio(
        mel,
        sr=settings.sample_rate,
        n_fft=settings.n_fft,
        hop_length=settings.hop_length,
        n_iter=ITERATIONS,
        length=length,
        fmin=settings.fmin,
        fmax=settings.fmax,
    )


def best_time(run) -> float:
    best = np.inf
    for _ in range(REPEATS):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    settings = load_params().features
    audio = clips(settings.sample_rate)
    mels, lengths = [mel_power(clip, settings) for clip in audio], [len(clip) for clip in audio]
    ours: list[np.ndarray] = []
    reference: list[np.ndarray] = []

    def run_ours() -> None:
        ours[:] = griffin_lim_batch(mels, lengths, settings, ITERATIONS, seed=0)

    def run_librosa() -> None:
        reference[:] = [librosa_audio(m, n, settings, 0) for m, n in zip(mels[:LIBROSA_CLIPS], lengths, strict=False)]

    ours_per_clip = best_time(run_ours) / CLIPS
    librosa_per_clip = best_time(run_librosa) / LIBROSA_CLIPS
    # Both on the clips librosa ran: spectral convergence varies from clip to clip far more than between methods.
    ours_sc = np.mean([spectral_convergence(m, a, settings) for m, a in zip(mels, ours[:LIBROSA_CLIPS], strict=False)])
    librosa_sc = np.mean([spectral_convergence(m, a, settings) for m, a in zip(mels, reference, strict=False)])
    seconds = np.mean(lengths) / settings.sample_rate
    print(
        f"griffin-lim {CLIPS} clips of {seconds:.2f} s at {settings.sample_rate} Hz, {ITERATIONS} iterations | "
        f"librosa {librosa_per_clip * 1000:.0f} ms/clip | ours (batch {CLIPS}) {ours_per_clip * 1000:.1f} ms/clip | "
        f"ratio {librosa_per_clip / ours_per_clip:.1f}x (target >= 10x)"
    )
    print(
        f"griffin-lim spectral convergence on the same {LIBROSA_CLIPS} clips: librosa {librosa_sc:.4f} | "
        f"ours {ours_sc:.4f} "
        f"({'no worse' if ours_sc <= librosa_sc else 'WORSE'})"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"griffin-lim peak RSS of this process {peak:.0f} MiB")


if __name__ == "__main__":
    main()
