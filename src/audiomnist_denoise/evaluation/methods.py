"""Denoising methods compared side by side, each turning noisy clips into audio.

- noisy: the input itself (identity);
- spectral_gating: noisereduce's stationary spectral gating, the classical baseline;
- deepfilternet3, rnnoise, nsnet2: pretrained speech denoisers (`baselines`);
- unet_griffinlim: the model's mel estimate through Griffin-Lim (the study's path);
- unet_mask: the model's mel estimate as a gain on the noisy STFT, noisy phase kept;
- oracle_griffinlim: the clean mel through Griffin-Lim, the ceiling of any mel-plus-Griffin-Lim method;
- oracle_mask: the ideal mel gain on the noisy STFT, the ceiling of any mel-gain method.

Both Griffin-Lim methods start from the same phase (`griffin_lim_start`), so the oracle
is the ceiling of exactly the method it is compared with.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..audio.griffinlim import griffin_lim_batch
from ..audio.reconstruct import mask_denoise, spectral_gating
from ..features.spectrogram import estimate_image, from_mel_power, inverse_power, mel_power, prediction_db_range
from ..model.spectral import SpectralDenoiser
from ..model.unet import predict
from ..parallel import map_progress
from ..params import EvaluateParams, FeatureParams, GriffinLimStart, options
from .baselines import BASELINES, denoise_item

METHODS = (
    "noisy",
    "spectral_gating",
    *BASELINES,
    "unet_griffinlim",
    "unet_mask",
    "oracle_griffinlim",
    "oracle_mask",
)
SAMPLE_SOURCES = ("clean", *METHODS)  # what the samples stage writes for each clip, in this order


def estimate_clean_mel(
    model: nn.Module, noisy_mels: list[np.ndarray], settings: FeatureParams, device: torch.device, batch_size: int = 64
) -> list[np.ndarray]:
    """The model's estimate of the clean mel power behind each noisy mel power (n_mels, frames), at that shape.

    Each goes through the same features as training (`features.from_mel_power`), and the
    prediction is denormalised below the noisy peak (`features.prediction_db_range`) and
    capped at the noisy power: noise adds power, so a clean estimate above the noisy mel
    is an error of the model. (The mask path caps its gain at 1, which is the same
    constraint; for Griffin-Lim it lifted the test STOI from below the noisy input's to above it.)
    """
    if isinstance(model, SpectralDenoiser):
        return [_native_estimate(model, mel, device) for mel in noisy_mels]
    spectrograms = [from_mel_power(mel, settings, f"spectrogram {i}") for i, mel in enumerate(noisy_mels)]
    if not spectrograms:
        return []
    images = predict(model, np.stack([spectrogram.image for spectrogram in spectrograms]), batch_size, device)
    return [
        np.minimum(
            inverse_power(image, spectrogram.frames, *prediction_db_range(spectrogram.db_max, settings), settings), mel
        )
        for image, spectrogram, mel in zip(images, spectrograms, noisy_mels, strict=True)
    ]


def _native_estimate(model: SpectralDenoiser, noisy_mel: np.ndarray, device: torch.device) -> np.ndarray:
    """One clip at a time, at its own number of frames: no padding that another clip's length would set."""
    gain = model.gain(torch.from_numpy(noisy_mel).float()[None].to(device))[0]
    return gain.double().cpu().numpy() * noisy_mel


def estimate_images(
    model: SpectralDenoiser, noisy: list[np.ndarray], noisy_db_max: np.ndarray, settings: FeatureParams, device
) -> np.ndarray:
    """A native-track model's estimates for noisy clips as images comparable with the cached clean ones
    (`spectrogram.estimate_image`; `noisy_db_max` from the feature index)."""
    estimates = estimate_clean_mel(model, [mel_power(audio, settings) for audio in noisy], settings, device)
    return np.stack([estimate_image(e, peak, settings) for e, peak in zip(estimates, noisy_db_max, strict=True)])


def griffin_lim_audio(
    mel_powers: list[np.ndarray],
    noisy: list[np.ndarray],
    settings: FeatureParams,
    n_iter: int,
    start: str,
    seed: int,
    device: str | torch.device,
) -> list[np.ndarray]:
    """Griffin-Lim for each clip's mel power, at the noisy clip's length, starting from its phase
    (`start` noisy) or from a random one (`start` random)."""
    if start not in options(GriffinLimStart):
        raise ValueError(f"Griffin-Lim start must be one of {', '.join(options(GriffinLimStart))}, not {start!r}")
    lengths = [len(audio) for audio in noisy]
    phase_from = noisy if start == "noisy" else None
    return griffin_lim_batch(mel_powers, lengths, settings, n_iter, seed, phase_from, device)


def _mels_and_classical(item: tuple[np.ndarray, np.ndarray, FeatureParams]) -> tuple[np.ndarray, ...]:
    """One clip's per-clip work before the model: noisy and clean mel power, spectral gating, the oracle mask."""
    clean, noisy, settings = item
    clean_mel = mel_power(clean, settings)
    oracle = mask_denoise(noisy, clean_mel, settings)  # as `reconstruct.oracle_mask`, reusing the clean mel
    return mel_power(noisy, settings), clean_mel, spectral_gating(noisy, settings.sample_rate), oracle


def _mask_denoise(item: tuple[np.ndarray, np.ndarray, FeatureParams]) -> np.ndarray:
    return mask_denoise(*item)


@dataclass(frozen=True)
class MethodRun:
    """Every method's output for each clip, and the model's clean mel power estimate of each (`apply_methods`)."""

    outputs: dict[str, list[np.ndarray]]
    estimates: list[np.ndarray]


def apply_methods(
    model: nn.Module,
    clean: list[np.ndarray],
    noisy: list[np.ndarray],
    features: FeatureParams,
    settings: EvaluateParams,
    device: torch.device,
) -> MethodRun:
    """Every method's output (float32, the clip's length) for each clean/noisy pair of clips, all at
    features.sample_rate, in the order of METHODS; and the model's estimates its methods came from.

    The per-clip NumPy work runs on `settings.workers` processes (0: all cores); the model and
    Griffin-Lim run batched in this process, where PyTorch uses every core itself.
    """
    workers = settings.workers
    rate = features.sample_rate
    # The pretrained baselines first, while this process holds least: DeepFilterNet3 forks once per clip
    # (`baselines`), and a fork's cost grows with the memory it copies the page tables of.
    baselines = {
        name: list(map_progress(denoise_item, [(name, audio, rate) for audio in noisy], workers, name))
        for name in BASELINES
    }
    items = [(reference, audio, features) for reference, audio in zip(clean, noisy, strict=True)]
    per_clip = list(map_progress(_mels_and_classical, items, workers, "mels, gating and oracle"))
    noisy_mels, clean_mels, gated, oracle = ([outputs[k] for outputs in per_clip] for k in range(4))
    estimates = estimate_clean_mel(model, noisy_mels, features, device, settings.batch_size)

    def gl(mels: list[np.ndarray]) -> list[np.ndarray]:
        start, iters = settings.griffin_lim_start, settings.griffin_lim_iters
        return griffin_lim_audio(mels, noisy, features, iters, start, settings.seed, device)

    pairs = [(audio, estimate, features) for audio, estimate in zip(noisy, estimates, strict=True)]
    masked = list(map_progress(_mask_denoise, pairs, workers, "mask"))
    outputs = {
        "noisy": [np.asarray(audio, np.float32) for audio in noisy],
        "spectral_gating": gated,
        **baselines,
        "unet_griffinlim": gl(estimates),
        "unet_mask": masked,
        "oracle_griffinlim": gl(clean_mels),
        "oracle_mask": oracle,
    }
    return MethodRun(outputs, estimates)
