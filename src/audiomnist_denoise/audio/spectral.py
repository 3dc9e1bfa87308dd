"""The spectral core: every STFT, mel filterbank, dB floor, mel-gain spread and SI-SDR of the project.

One set of conventions everywhere: a periodic Hann window of `n_fft` samples, frames `hop_length`
apart, centred (the signal padded with n_fft / 2 zeros each side), so a clip of n samples has
1 + n // hop frames; power in dB relative to 1.0 (the level is kept), floored `top_db` below the
peak. NumPy versions (librosa's STFT) serve featurizing, evaluation and `denoise`; the torch
versions (`SpectralFrontend`, `si_sdr_batch`) serve training and the model's front end. They sit
side by side here and tests/test_spectral.py holds them equal.
"""

import math
from functools import lru_cache

import librosa
import numpy as np
import torch
from torch import nn

from ..params import FeatureParams

AMIN = 1e-10  # power floor before the log: -100 dB
DB_PER_LOG = 10 / math.log(10)
_GAIN_FLOOR = 1e-12  # -120 dB: keeps sqrt's gradient finite where a gain underflows


def mel_key(settings: FeatureParams) -> tuple:
    """What a mel filterbank depends on, hashable: the key of every cache built from one."""
    return settings.sample_rate, settings.n_fft, settings.n_mels, settings.fmin, settings.fmax


@lru_cache(maxsize=8)
def mel_basis_of(key: tuple, dtype: type = np.float64) -> np.ndarray:
    """The mel filterbank (n_mels, 1 + n_fft // 2) of a `mel_key`, built once (building it dominated
    featurizing); read-only, as every caller shares it. With `n_mels` None, the identity: every STFT bin is
    its own band (the full-resolution track), so each band-wise step is the bin-wise one."""
    sample_rate, n_fft, n_mels, fmin, fmax = key
    if n_mels is None:
        basis = np.eye(1 + n_fft // 2, dtype=dtype)
    else:
        basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, dtype=dtype)
    basis.flags.writeable = False
    return basis


def band_count(settings: FeatureParams) -> int:
    """The bands of the spectrograms `settings` describe: the mel bands, or every STFT bin."""
    return 1 + settings.n_fft // 2 if settings.n_mels is None else settings.n_mels


def mel_basis(settings: FeatureParams, dtype: type = np.float64) -> np.ndarray:
    """The mel filterbank of `settings`, (n_mels, 1 + n_fft // 2)."""
    return mel_basis_of(mel_key(settings), dtype)


def stft(audio: np.ndarray, settings: FeatureParams, centered: bool = True) -> np.ndarray:
    """The complex STFT (1 + n_fft // 2, frames) in float64. `centered=False` frames `audio` as it is, for a
    piece of a longer recording already padded as the whole recording's centring would pad it."""
    audio = np.asarray(audio, np.float64)
    return librosa.stft(audio, n_fft=settings.n_fft, hop_length=settings.hop_length, center=centered)


def istft(spectrum: np.ndarray, settings: FeatureParams, length: int) -> np.ndarray:
    """The inverse of `stft`: `length` samples."""
    return librosa.istft(spectrum, hop_length=settings.hop_length, n_fft=settings.n_fft, length=length)


def mel_power(audio: np.ndarray, settings: FeatureParams) -> np.ndarray:
    """Mel power spectrogram, (n_mels, frames): librosa.feature.melspectrogram with a cached filterbank
    (the STFT power itself, every bin, with `n_mels` None)."""
    power = np.abs(stft(audio, settings)) ** 2
    return power if settings.n_mels is None else mel_basis(settings) @ power


def power_db(power: np.ndarray, top_db: float | None) -> np.ndarray:
    """Power in dB (ref 1.0, so the level is kept), floored `top_db` below its peak (None: no floor)."""
    return librosa.power_to_db(power, ref=1.0, amin=AMIN, top_db=top_db)


def spread_mel_gain(mel_gain: np.ndarray, settings: FeatureParams) -> np.ndarray:
    """A gain per mel band and frame spread over the STFT bins: each bin takes its bands' gains, weighted
    by the filterbank. Bins no band covers (above fmax) keep the lowest gain of the frame."""
    if settings.n_mels is None:
        return np.asarray(mel_gain, np.float64)
    basis = mel_basis(settings)
    weight = basis.sum(axis=0)[:, None]
    covered = weight[:, 0] > 0
    linear = np.empty((basis.shape[1], mel_gain.shape[1]))
    linear[covered] = (basis.T @ mel_gain)[covered] / weight[covered]
    linear[~covered] = mel_gain.min(axis=0)
    return linear


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., 2019), on zero-mean signals."""
    reference = np.asarray(reference, np.float64) - np.mean(reference)
    estimate = np.asarray(estimate, np.float64) - np.mean(estimate)
    if len(reference) != len(estimate):
        raise ValueError(f"si_sdr needs equal lengths, got {len(reference)} and {len(estimate)}")
    scale = np.dot(estimate, reference) / np.dot(reference, reference)
    target = scale * reference
    residual = estimate - target
    return float(10 * np.log10(np.dot(target, target) / max(np.dot(residual, residual), 1e-300)))


class SpectralFrontend(nn.Module):
    """The torch side of the core for one feature setting: STFT and its inverse, mel power, the dB floor and
    a mel gain spread onto STFT bins. The filterbank and window are rebuilt from the settings, not stored.
    With `n_mels` None the bands are the STFT bins, and `mel` and `magnitude_gain` skip the identity's products."""

    def __init__(self, settings: FeatureParams):
        super().__init__()
        self.n_fft, self.hop_length, self.top_db = settings.n_fft, settings.hop_length, settings.top_db
        self.every_bin = settings.n_mels is None
        basis = torch.from_numpy(mel_basis(settings).copy()).float()
        weight = basis.sum(dim=0)
        self.register_buffer("basis", basis, persistent=False)
        self.register_buffer("spread", basis.T / weight.clamp_min(1e-12)[:, None], persistent=False)
        self.register_buffer("uncovered", weight <= 0, persistent=False)  # STFT bins above fmax
        self.register_buffer("window", torch.hann_window(settings.n_fft, periodic=True), persistent=False)

    def stft(self, audio: torch.Tensor) -> torch.Tensor:
        """(batch, samples) float audio to its complex STFT (batch, 1 + n_fft // 2, frames)."""
        return torch.stft(
            audio,
            self.n_fft,
            self.hop_length,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )

    def istft(self, spectrum: torch.Tensor, length: int) -> torch.Tensor:
        """The inverse of `stft`, `length` samples."""
        return torch.istft(spectrum, self.n_fft, self.hop_length, window=self.window, center=True, length=length)

    def mel(self, power: torch.Tensor) -> torch.Tensor:
        """STFT power (batch, bins, frames) to mel power (batch, mels, frames)."""
        return power if self.every_bin else self.basis @ power

    def power_db(self, mel_power: torch.Tensor) -> torch.Tensor:
        """dB (ref 1.0), floored `top_db` below each clip's peak (batch, mels, frames), as `power_db`."""
        db = DB_PER_LOG * torch.log(mel_power.clamp_min(AMIN))
        peak = db.amax(dim=(1, 2), keepdim=True)
        return torch.maximum(db, peak - self.top_db)

    def magnitude_gain(self, mel_power_gain: torch.Tensor) -> torch.Tensor:
        """A power gain per mel band spread over the STFT bins as `spread_mel_gain` does it, as a magnitude gain."""
        if self.every_bin:
            return mel_power_gain.clamp(_GAIN_FLOOR, 1).sqrt()
        linear = self.spread @ mel_power_gain
        lowest = mel_power_gain.amin(dim=1, keepdim=True).expand_as(linear)
        linear = torch.where(self.uncovered[:, None], lowest, linear)
        return linear.clamp(_GAIN_FLOOR, 1).sqrt()


def si_sdr_batch(reference: torch.Tensor, estimate: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`si_sdr` of each clip over its own samples: (batch, samples) zero-padded past `lengths` -> (batch,). As a
    training loss it stays finite: the energies are floored at 1e-12, so a perfect estimate gives 120 dB, not inf."""
    inside = torch.arange(reference.shape[-1], device=reference.device) < lengths[:, None]

    def zero_mean(signal: torch.Tensor) -> torch.Tensor:
        return (signal - (signal * inside).sum(-1, keepdim=True) / lengths[:, None]) * inside

    estimate, reference = zero_mean(estimate), zero_mean(reference)
    scale = (estimate * reference).sum(-1, keepdim=True) / reference.square().sum(-1, keepdim=True).clamp_min(1e-12)
    target = scale * reference
    ratio = target.square().sum(-1) / (estimate - target).square().sum(-1).clamp_min(1e-12)
    return 10 * torch.log10(ratio.clamp_min(1e-12))
