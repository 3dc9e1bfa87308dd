"""The refined mask network: a gain per STFT bin, from a U-Net's gain per mel band corrected bin by bin.

A mel gain gives the noise between a voice's harmonics the harmonics' gain (docs/results.md, "What limits it"); a
network over every bin costs sixteen times the U-Net's work. This one keeps the U-Net on `bands` mel bands (made
inside the model from the STFT power it is given, so evaluation and `denoise` treat it as any per-bin model),
spreads its logits over the STFT bins the bands cover as `spread_mel_gain` spreads gains, and adds a correction
from three small convolutions over bins and frames that see each bin's own dB beside the spread logit. The
correction's last layer starts at zero: an untrained refinement is the U-Net's gain spread, and training only adds
what the bins resolve. Bins no band covers (above `fmax`) take the frame's lowest band gain, as `spread_mel_gain`.
"""

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from ..audio.spectral import mel_basis
from ..devices import memory_format
from ..errors import PipelineError
from ..params import FeatureParams
from .unet import UNet


def starts_at_zero(layer: nn.Module) -> nn.Module:
    """`layer` with zero weights and bias, kept so by `unet.initialise`."""
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    layer.starts_at_zero = True
    return layer


class RefinedMask(nn.Module):
    """(batch, bins, frames) normalised dB of every STFT bin, and (batch, bands, frames) of the mel bands ->
    (batch, bins, frames) a sigmoid magnitude gain per bin."""

    def __init__(self, settings: FeatureParams, bands: int, channels: list[int], refine_channels: int, context: str):
        super().__init__()
        multiple = 2 ** (len(channels) - 1)
        if bands % multiple:
            raise PipelineError(f"model.bands: {bands} is not a multiple of {multiple}, which the U-Net's levels halve")
        basis = mel_basis(settings.model_copy(update={"n_mels": bands}))
        weight = basis.sum(axis=0)
        covered = np.flatnonzero(weight > 0)
        self.first, self.last = int(covered[0]), int(covered[-1]) + 1  # the bins the bands cover
        # Each band the weighted mean of its bins' power, so the bands' dB is on the bins' scale and one dataset
        # normalisation serves both.
        self.register_buffer("basis", torch.from_numpy(basis / basis.sum(axis=1, keepdims=True)).float(), False)
        spread = basis.T[self.first : self.last] / weight[self.first : self.last, None]
        self.register_buffer("spread", torch.from_numpy(spread).float(), False)
        self.unet = UNet(channels, "linear", context)
        self.multiple = multiple
        width = refine_channels
        self.refine = nn.Sequential(
            nn.Conv2d(2, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=(2, 1), dilation=(2, 1)),  # wider over bins: harmonics lie apart
            nn.ReLU(inplace=True),
            starts_at_zero(nn.Conv2d(width, 1, 3, padding=1)),
        )

    def band_power(self, power: torch.Tensor) -> torch.Tensor:
        """STFT power (batch, bins, frames) to the bands' (batch, bands, frames)."""
        return self.basis @ power

    def forward(self, bin_db: torch.Tensor, band_db: torch.Tensor) -> torch.Tensor:
        frames = band_db.shape[-1]
        padded = functional.pad(band_db, (0, -frames % self.multiple), value=float(band_db.min()))
        band_logit = self.unet(padded.unsqueeze(1))[:, 0, :, :frames]
        with torch.autocast(bin_db.device.type, enabled=False):  # the logits in fp32, as the U-Net's head
            spread = self.spread @ band_logit.float()
        inputs = torch.stack([bin_db[:, self.first : self.last], spread], dim=1)
        # A few channels over many bins: oneDNN's channels-last convolutions are several times faster there
        mixed = torch.is_autocast_enabled(bin_db.device.type)
        layout = memory_format("bf16" if mixed else "fp32", bin_db.device)
        correction = self.refine(inputs.contiguous(memory_format=layout))[:, 0]
        with torch.autocast(bin_db.device.type, enabled=False):
            logit = spread + correction.float()
            lowest = band_logit.float().amin(dim=1, keepdim=True)
            below = lowest.expand(-1, self.first, -1)
            above = lowest.expand(-1, bin_db.shape[1] - self.last, -1)
            return torch.sigmoid(torch.cat([below, logit, above], dim=1))
