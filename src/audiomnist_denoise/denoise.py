"""Denoising users' own recordings with a trained model: any length, any sample rate, any number of channels.

The study's model was trained on whole short clips (one spoken digit) whose mel spectrograms
were resized to H x W. A longer recording's mel spectrogram is therefore cut into
overlapping windows of W frames (a native-track model reads any width, and windows only
bound its memory), each estimated as a clip of its own, and the estimates
are cross-faded into one clean mel estimate of the whole recording, which is then turned
into audio once: as a gain on the noisy STFT (`mask`) or by Griffin-Lim (`griffinlim`).

Windowing in the mel domain and inverting once keeps the phase consistent across windows:
there are no separately reconstructed pieces of audio whose phases could disagree where
they overlap (which overlap-adding per-window audio would smear into comb filtering).
"""

from pathlib import Path

import librosa
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .audio.io import check_audio_file, read_channels, resample
from .audio.reconstruct import mask_denoise
from .errors import PipelineError
from .evaluation.methods import estimate_clean_mel, griffin_lim_audio
from .features.spectrogram import mel_power, power_db
from .fsutil import atomic_file, write_wav
from .model.spectral import SpectralDenoiser
from .params import FeatureParams

METHODS = ("mask", "griffinlim")
NATIVE_WINDOW_FRAMES = 256  # a native-track model reads any width; windows only bound the memory
WINDOWS_PER_BATCH = 32  # windows estimated at once: bounds memory for long recordings
MIN_WINDOWS_FOR_PROGRESS = 20  # shorter channels finish before a progress bar would help


def crossfade_windows(frames: int, width: int) -> list[tuple[int, np.ndarray]]:
    """The (start frame, weight per frame) of each window over `frames` mel frames: windows of
    `width` frames at a hop of width // 2, the last one ending at the last frame. At every frame
    the weights of the windows covering it add to 1. No more than `width` frames: one window."""
    if frames <= width:
        return [(0, np.ones(frames))]
    hop = max(width // 2, 1)
    starts = [*range(0, frames - width, hop), frames - width]
    # Hann without its zero end points, so every frame, the first and last too, has some weight to normalise.
    taper = np.hanning(width + 2)[1:-1]
    total = np.zeros(frames)
    for start in starts:
        total[start : start + width] += taper
    return [(start, taper / total[start : start + width]) for start in starts]


def _is_constant(power: np.ndarray, settings: FeatureParams) -> bool:
    """A spectrogram `features.from_mel_power` cannot normalise (digital silence, say)."""
    db = power_db(power, settings)
    return float(db.max()) == float(db.min())


def _estimate_windows(
    model: nn.Module, windows: list[np.ndarray], settings: FeatureParams, device: torch.device
) -> list[np.ndarray]:
    """The model's clean mel estimate of each window; a constant window (silence) estimates silence."""
    estimates = [np.zeros_like(window) for window in windows]
    audible = [i for i, window in enumerate(windows) if not _is_constant(window, settings)]
    clean = estimate_clean_mel(model, [windows[i] for i in audible], settings, device)
    for i, estimate in zip(audible, clean, strict=True):
        estimates[i] = estimate
    return estimates


def estimate_windowed(
    model: nn.Module,
    noisy_mel: np.ndarray,
    settings: FeatureParams,
    device: torch.device,
    progress: str | None = None,
) -> np.ndarray:
    """The clean mel power estimate of a whole recording's noisy mel power (n_mels, frames),
    at its shape: windows of settings.size[1] frames (NATIVE_WINDOW_FRAMES for the native track),
    cross-faded (`crossfade_windows`).
    `progress`, if given, labels a progress bar over the windows of a long recording."""
    width = NATIVE_WINDOW_FRAMES if isinstance(model, SpectralDenoiser) else settings.size[1]
    layout = crossfade_windows(noisy_mel.shape[1], width)
    estimate = np.zeros(noisy_mel.shape)
    quiet = progress is None or len(layout) < MIN_WINDOWS_FOR_PROGRESS
    with tqdm(total=len(layout), desc=progress, unit="window", disable=quiet, mininterval=0.5) as bar:
        for first in range(0, len(layout), WINDOWS_PER_BATCH):
            batch = layout[first : first + WINDOWS_PER_BATCH]
            windows = [noisy_mel[:, start : start + len(weights)] for start, weights in batch]
            for (start, weights), clean in zip(batch, _estimate_windows(model, windows, settings, device), strict=True):
                estimate[:, start : start + len(weights)] += weights * clean
            bar.update(len(batch))
    return estimate


def _denoise_channel(
    channel: np.ndarray,
    rate: int,
    model: nn.Module,
    settings: FeatureParams,
    method: str,
    device: torch.device,
    griffin_lim_iters: int,
    progress: str | None,
) -> np.ndarray:
    """One channel at `rate`: to the model's rate, denoised, back to `rate` at its own number of samples."""
    audio = resample(np.asarray(channel, np.float32), rate, settings.sample_rate)
    estimate = estimate_windowed(model, mel_power(audio, settings), settings, device, progress)
    if method == "mask":
        denoised = mask_denoise(audio, estimate, settings)
    else:
        denoised = griffin_lim_audio([estimate], [audio], settings, griffin_lim_iters, "noisy", 0, device)[0]
    return librosa.util.fix_length(resample(denoised, settings.sample_rate, rate), size=len(channel))


def denoise_audio(
    audio: np.ndarray,
    rate: int,
    model: nn.Module,
    settings: FeatureParams,
    method: str,
    device: torch.device,
    griffin_lim_iters: int = 32,
    progress: str | None = None,
) -> np.ndarray:
    """Denoised `audio` (samples,) or (samples, channels) at `rate`: float32 of the same shape, each
    channel on its own. `method`: mask or griffinlim. `progress` labels the bars of long channels."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if audio.ndim not in (1, 2) or len(audio) == 0:
        raise ValueError(f"audio must be (samples,) or (samples, channels) with samples, not {audio.shape}")
    channels = audio.reshape(len(audio), -1)
    denoised = [
        _denoise_channel(
            channels[:, c],
            rate,
            model,
            settings,
            method,
            device,
            griffin_lim_iters,
            None if progress is None else f"{progress} [{c + 1}/{channels.shape[1]}]",
        )
        for c in range(channels.shape[1])
    ]
    return np.stack(denoised, axis=1).reshape(audio.shape).astype(np.float32)


def output_path(path: Path, out_dir: Path) -> Path:
    """Where `path`'s denoised audio goes: OUT_DIR/<its stem>.wav."""
    return Path(out_dir) / f"{Path(path).stem}.wav"


def check_input(path: Path) -> None:
    """An error naming `path` unless it is a file of decodable, non-empty audio (reads only its header)."""
    if not Path(path).is_file():
        raise PipelineError(f"{path}: no such input file")
    check_audio_file(path)


def plan_outputs(paths: list[Path], out_dir: Path) -> list[Path]:
    """Each input's output path; an error if two inputs share a stem (their outputs would collide)
    or an output would overwrite an input."""
    outputs = [output_path(path, out_dir) for path in paths]
    seen: dict[Path, Path] = {}
    for path, output in zip(paths, outputs, strict=True):
        if output in seen:
            raise PipelineError(f"{path}: same name as {seen[output]}; both would be written to {output}")
        seen[output] = path
    inputs = {Path(path).resolve() for path in paths}
    for path, output in zip(paths, outputs, strict=True):
        if output.resolve() in inputs:
            raise PipelineError(f"{path}: its output {output} would overwrite an input; choose another output folder")
    return outputs


def denoise_file(
    path: Path,
    out_dir: Path,
    model: nn.Module,
    settings: FeatureParams,
    method: str,
    device: torch.device,
    griffin_lim_iters: int = 32,
) -> Path:
    """Denoise the recording at `path` into OUT_DIR/<stem>.wav (32-bit float, the input's rate and channels)."""
    output = plan_outputs([Path(path)], Path(out_dir))[0]
    check_input(path)
    audio, rate = read_channels(path)
    denoised = denoise_audio(audio, rate, model, settings, method, device, griffin_lim_iters, Path(path).name)
    with atomic_file(output) as partial:  # an interrupted run leaves no partial output
        write_wav(partial, denoised.astype(np.float32), rate)
    return output
