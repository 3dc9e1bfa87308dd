"""The model track that reads spectrograms at their native time resolution: a U-Net that sees each
clip's log-mel power with every frame (no resize) and gives a gain per mel band and frame.

`SpectralDenoiser` is one module from noisy mel power to a power gain in [0, 1] (`gain`), so
that training, evaluation and `denoise` share every step between them:

- input: log-mel dB, floored `top_db` below each clip's peak, then normalised either per
  clip (min-max to [0, 1], the study's) or with one mean and spread fixed for the whole
  training set (`dataset`), which keeps the level difference between noisy and clean input;
- output: a `mask` (sigmoid magnitude gain on the noisy mel) or a `mapping` (the clean
  log-mel in the input's normalisation, turned into a gain capped at 1: noise only adds power);
- frames are padded to what the U-Net's pooling divides and the padding cut off again.

The STFT, mel filterbank and dB floor are the spectral core's torch side (`audio.spectral.SpectralFrontend`),
so a batch of audio becomes spectrograms on the device during training.
"""

import math

import torch
from torch import nn
from torch.nn import functional

from ..audio.spectral import AMIN, DB_PER_LOG, SpectralFrontend, band_count
from ..errors import PipelineError
from ..params import FeatureParams, ModelParams
from .recurrent import RecurrentMask
from .refined import RefinedMask
from .unet import UNet, initialise


class SpectralDenoiser(nn.Module):
    """A network on noisy mel power (batch, mels, frames), or STFT power where `settings.n_mels` is None: the
    U-Net (`architecture` unet, with a `context` GRU or not), the recurrent mask network (gru), or the U-Net on
    `bands` mel bands refined per STFT bin (refined); `power_gain` turns its output into a gain."""

    def __init__(
        self,
        settings: FeatureParams,
        channels: list[int],
        target: str,
        normalisation: str,
        output: str = "sigmoid",
        architecture: str = "unet",
        context: str = "none",
        bands: int = 64,
        refine_channels: int = 8,
    ):
        super().__init__()
        self.frontend = SpectralFrontend(settings)
        if architecture == "unet":
            self.unet = UNet(channels, output, context)
            self.multiple = 2 ** (len(channels) - 1)
        elif architecture == "refined":
            if settings.n_mels is not None:
                raise PipelineError("model.architecture refined needs features.n_mels null: it makes its own bands")
            self.refined = RefinedMask(settings, bands, channels, refine_channels, context)
        else:
            self.gru = RecurrentMask(band_count(settings), channels, output)
        self.architecture = architecture
        self.target, self.normalisation, self.top_db = target, normalisation, settings.top_db
        # The dataset normalisation's dB mean and spread, set once from training inputs (`fit_normalisation`).
        self.register_buffer("db_mean", torch.tensor(0.0))
        self.register_buffer("db_scale", torch.tensor(1.0))

    @torch.no_grad()
    def fit_normalisation(self, mel_powers: list[torch.Tensor]) -> None:
        """The dataset normalisation from training inputs: the mean and standard deviation of their dB."""
        db = torch.cat([self.frontend.power_db(power).flatten() for power in mel_powers]).double()
        self.db_mean.fill_(db.mean().item())
        self.db_scale.fill_(db.std().clamp_min(1e-6).item())

    def normalise(self, db: torch.Tensor, range_from: torch.Tensor, inside: torch.Tensor | None = None) -> torch.Tensor:
        """dB in the model's scale; per clip, the min-max range is `range_from`'s over the frames where
        `inside` (batch, 1, frames) is True (all when None), so a clip padded in a batch is scaled as it is alone."""
        if self.normalisation == "dataset":
            return (db - self.db_mean) / self.db_scale
        if inside is None:
            low, high = range_from.amin(dim=(1, 2), keepdim=True), range_from.amax(dim=(1, 2), keepdim=True)
        else:
            low = range_from.masked_fill(~inside, math.inf).amin(dim=(1, 2), keepdim=True)
            high = range_from.masked_fill(~inside, -math.inf).amax(dim=(1, 2), keepdim=True)
        return (db - low) / (high - low).clamp_min(1e-6)

    def image(self, db: torch.Tensor) -> torch.Tensor:
        """The network's output for normalised dB (batch, mels, frames), at that shape."""
        if self.architecture == "gru":
            return self.gru(db)
        frames = db.shape[-1]
        padded = functional.pad(db, (0, -frames % self.multiple), value=float(db.min()))
        return self.unet(padded.unsqueeze(1))[:, 0, :, :frames]

    def forward(self, mel_power: torch.Tensor, inside: torch.Tensor | None = None) -> torch.Tensor:
        """The network's output for noisy mel power: a magnitude gain (`mask`) or normalised clean dB (`mapping`).
        `inside` (batch, 1, frames): True on each clip's own frames, False on a batch's padding."""
        noisy_db = self.frontend.power_db(mel_power)
        normalised = self.normalise(noisy_db, noisy_db, inside)
        if self.architecture == "refined":
            band_db = self.frontend.power_db(self.refined.band_power(mel_power))
            return self.refined(normalised, self.normalise(band_db, band_db, inside))
        return self.image(normalised)

    def power_gain(self, output: torch.Tensor, mel_power: torch.Tensor) -> torch.Tensor:
        """The network's `output` for noisy `mel_power` as a power gain in [0, 1]. A mapping's clean-dB
        estimate is capped at the noisy power (noise only adds power); per clip, its range is the
        `top_db` below the noisy peak (`features.prediction_db_range`)."""
        if self.target == "mask":
            return output.square()
        noisy_db = self.frontend.power_db(mel_power)
        if self.normalisation == "dataset":
            clean_db = output * self.db_scale + self.db_mean
        else:
            peak = noisy_db.amax(dim=(1, 2), keepdim=True)
            clean_db = output * self.top_db + peak - self.top_db
        return torch.exp((clean_db - noisy_db).clamp(max=0) / DB_PER_LOG)

    def ideal_output(
        self, clean_mel: torch.Tensor, noisy_mel: torch.Tensor, inside: torch.Tensor | None = None
    ) -> torch.Tensor:
        """What the network should give: the ideal ratio mask (magnitude), or the clean dB normalised as the
        input is (per clip, by the clean clip's own range over its own frames, as the study's cache)."""
        if self.target == "mask":
            return (clean_mel / noisy_mel.clamp_min(AMIN)).clamp(0, 1).sqrt()
        clean_db = self.frontend.power_db(clean_mel)
        return self.normalise(clean_db, clean_db, inside)

    @torch.no_grad()
    def gain(self, mel_power: torch.Tensor) -> torch.Tensor:
        """The power gain for noisy `mel_power` (batch, mels, frames), in evaluation mode."""
        self.eval()
        return self.power_gain(self(mel_power).float(), mel_power)


def build_network(model: dict, features: FeatureParams | None) -> nn.Module:
    """The untrained network a model section describes: the study's U-Net on resized images, or the
    native track's `SpectralDenoiser` (a checkpoint from before the native track has no `input`, and one from
    before the recurrent network no `architecture`, and one from before the context and the refined network none
    of theirs)."""
    if model.get("input", "resized") == "resized":
        return UNet(model["channels"], model["output"])
    channels, target, normalisation, output = (model[key] for key in ("channels", "target", "normalisation", "output"))
    return SpectralDenoiser(
        features,
        channels,
        target,
        normalisation,
        output,
        model.get("architecture", "unet"),
        model.get("context", "none"),
        model.get("bands", 64),
        model.get("refine_channels", 8),
    )


def new_network(model: ModelParams, features: FeatureParams, seed: int) -> nn.Module:
    """A freshly initialised network for the model section; the same seed gives the same weights."""
    torch.manual_seed(seed)
    network = build_network(model.model_dump(), features)
    initialise(network, model.init)
    return network
