"""Denoising methods compared side by side, each turning noisy clips into audio.

- noisy: the input itself (identity);
- spectral_gating: noisereduce's stationary spectral gating, the classical baseline;
- deepfilternet3, rnnoise, nsnet2: pretrained speech denoisers (`baselines`);
- unet_griffinlim: the model's mel estimate through Griffin-Lim (the study's path);
- unet_mask: the model's mel estimate as a gain on the noisy STFT, noisy phase kept;
- oracle_griffinlim: the clean mel through Griffin-Lim, the ceiling of any mel-plus-Griffin-Lim method;
- oracle_mask: the ideal mel gain on the noisy STFT, the ceiling of any mel-gain method;
- oracle_irm, oracle_psm: the ideal ratio and phase-sensitive masks per STFT bin, the ceilings of a real gain per bin.

Both Griffin-Lim methods start from the same phase (`griffin_lim_start`), so the oracle
is the ceiling of exactly the method it is compared with.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..audio.griffinlim import griffin_lim_batch
from ..audio.reconstruct import mask_denoise, oracle_bin_masks, oracle_mask
from ..audio.spectral import mel_power
from ..features.spectrogram import estimate_image, from_mel_power, inverse_power, prediction_db_range
from ..model.spectral import SpectralDenoiser
from ..model.unet import predict
from ..names import BASELINES, METHODS, MODEL_METHODS
from ..parallel import map_progress
from ..params import EvaluateParams, FeatureParams, GriffinLimStart, options
from .baselines import denoise_item, spectral_gating

BIN_CEILINGS = ("oracle_irm", "oracle_psm")  # `reconstruct.oracle_bin_masks`
MODEL_FREE_FEATURES = ("sample_rate", "n_mels", "n_fft", "hop_length", "fmin", "fmax")  # what those read


def model_free_context(features: FeatureParams, settings: EvaluateParams) -> dict:
    """The settings the model-free methods' scores depend on beyond the clips (`speech.Quality.save`)."""
    read = ("griffin_lim_iters", "griffin_lim_start", "seed", "pesq_every")  # the oracle's Griffin-Lim; PESQ's clips
    return {
        "features": {name: getattr(features, name) for name in MODEL_FREE_FEATURES},
        "evaluate": {name: getattr(settings, name) for name in read},
    }


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


def _per_clip_work(item: tuple[np.ndarray, np.ndarray, FeatureParams, tuple[str, ...]]) -> dict[str, np.ndarray]:
    """One clip's per-clip work before the model, for `methods`: the noisy mel power (for the model's methods),
    the clean one (for the oracles), spectral gating and the oracle mask."""
    clean, noisy, settings, methods = item
    work = {}
    if any(method in MODEL_METHODS for method in methods):
        work["noisy_mel"] = mel_power(noisy, settings)
    if "oracle_griffinlim" in methods:
        work["clean_mel"] = mel_power(clean, settings)
    if "oracle_mask" in methods:
        work["oracle_mask"] = oracle_mask(clean, noisy, settings)
    if any(method in BIN_CEILINGS for method in methods):
        work |= {name: audio for name, audio in oracle_bin_masks(clean, noisy, settings).items() if name in methods}
    if "spectral_gating" in methods:
        work["spectral_gating"] = spectral_gating(noisy, settings.sample_rate)
    return work


def _mask_denoise(item: tuple[np.ndarray, np.ndarray, FeatureParams]) -> np.ndarray:
    return mask_denoise(*item)


@dataclass(frozen=True)
class MethodRun:
    """Each method's output for each clip, and the model's clean mel power estimate of each (`apply_methods`;
    empty when no method of the model was asked for)."""

    outputs: dict[str, list[np.ndarray]]
    estimates: list[np.ndarray]


def apply_methods(
    model: nn.Module | None,
    clean: list[np.ndarray],
    noisy: list[np.ndarray],
    features: FeatureParams,
    settings: EvaluateParams,
    device: torch.device,
    methods: tuple[str, ...] = METHODS,
) -> MethodRun:
    """The output (float32, the clip's length) of each of `methods` for each clean/noisy pair of clips, all at
    features.sample_rate, in the order of METHODS; and the model's estimates its methods came from. `model`
    may be None when `methods` has none of MODEL_METHODS.

    The per-clip NumPy work runs on `settings.workers` processes (0: all cores); the model and
    Griffin-Lim run batched in this process, where PyTorch uses every core itself.
    """
    unknown = [method for method in methods if method not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; the methods are {', '.join(METHODS)}")
    workers = settings.workers
    rate = features.sample_rate
    # The pretrained baselines first, while this process holds least: DeepFilterNet3 forks once per clip
    # (`baselines`), and a fork's cost grows with the memory it copies the page tables of.
    outputs = {
        name: list(map_progress(denoise_item, [(name, audio, rate) for audio in noisy], workers, name))
        for name in BASELINES
        if name in methods
    }
    items = [(reference, audio, features, methods) for reference, audio in zip(clean, noisy, strict=True)]
    per_clip = list(map_progress(_per_clip_work, items, workers, "per-clip spectra, gating and oracle"))
    collected = lambda key: [work[key] for work in per_clip]  # noqa: E731

    def gl(mels: list[np.ndarray]) -> list[np.ndarray]:
        start, iters = settings.griffin_lim_start, settings.griffin_lim_iters
        return griffin_lim_audio(mels, noisy, features, iters, start, settings.seed, device)

    estimates = []
    if any(method in MODEL_METHODS for method in methods):
        estimates = estimate_clean_mel(model, collected("noisy_mel"), features, device, settings.batch_size)
    if "noisy" in methods:
        outputs["noisy"] = [np.asarray(audio, np.float32) for audio in noisy]
    if "spectral_gating" in methods:
        outputs["spectral_gating"] = collected("spectral_gating")
    if "unet_griffinlim" in methods:
        outputs["unet_griffinlim"] = gl(estimates)
    if "unet_mask" in methods:
        pairs = [(audio, estimate, features) for audio, estimate in zip(noisy, estimates, strict=True)]
        outputs["unet_mask"] = list(map_progress(_mask_denoise, pairs, workers, "mask"))
    if "oracle_griffinlim" in methods:
        outputs["oracle_griffinlim"] = gl(collected("clean_mel"))
    for ceiling in ("oracle_mask", *BIN_CEILINGS):
        if ceiling in methods:
            outputs[ceiling] = collected(ceiling)
    return MethodRun({method: outputs[method] for method in METHODS if method in methods}, estimates)
