"""The recurrent mask network: a gain per band and frame from a whole clip's context over time.

Each frame's normalised dB over all bands is projected to a narrower vector (a learned band
compression: with every STFT bin a band, the 1025 bins of a 2048-point FFT), bidirectional GRUs carry
context across the clip's frames (what the noise floor is, where the word starts and ends), and a
linear layer gives a logit per band, to which each band's own input adds through a learned per-band
weight (a local SNR term the recurrent path need not relearn for every bin). A U-Net sees a few
frames either side; this sees the whole clip, or the whole window in `denoise`.
"""

import torch
from torch import nn

from ..errors import PipelineError
from ..params import Output, options


class RecurrentMask(nn.Module):
    """(batch, bands, frames) normalised dB -> (batch, bands, frames): a sigmoid gain, or a linear output.

    `widths`: the projection's width, then each bidirectional GRU layer's hidden size.
    """

    def __init__(self, bands: int, widths: list[int], output: str = "sigmoid"):
        super().__init__()
        if len(widths) < 2:
            raise PipelineError(f"model.channels: {widths} needs a projection width and at least one GRU width")
        if output not in options(Output):
            raise PipelineError(f"model.output: {output!r} is not one of {', '.join(options(Output))}")
        self.project = nn.Sequential(nn.Linear(bands, widths[0]), nn.LayerNorm(widths[0]), nn.ReLU())
        inputs = [widths[0], *(2 * width for width in widths[1:-1])]
        self.recurrent = nn.ModuleList(
            nn.GRU(size, width, batch_first=True, bidirectional=True)
            for size, width in zip(inputs, widths[1:], strict=True)
        )
        self.head = nn.Linear(2 * widths[-1], bands)
        self.local = nn.Parameter(torch.zeros(bands))  # each band's own input in its logit
        self.output = output

    def forward(self, db: torch.Tensor) -> torch.Tensor:
        x = self.project(db.transpose(1, 2))  # (batch, frames, width)
        for layer in self.recurrent:
            x = layer(x)[0]
        with torch.autocast(x.device.type, enabled=False):  # the output layer in fp32, as the U-Net's
            logit = self.head(x.float()).transpose(1, 2) + self.local[:, None] * db.float()
        return torch.sigmoid(logit) if self.output == "sigmoid" else logit


class TemporalContext(nn.Module):
    """(batch, channels, rows, frames) -> the same shape: a bidirectional GRU over the frames of each row (a band
    of a U-Net's deepest level), its weights shared by all rows, projected back and added to the input. Grouping
    by row keeps it small (GTCRN and DPRNN group the same way); the projection starts at zero, so an untrained
    context passes its input through and the U-Net starts as it would without it."""

    def __init__(self, channels: int):
        super().__init__()
        hidden = max(1, channels // 2)
        self.recurrent = nn.GRU(channels, hidden, batch_first=True, bidirectional=True)
        self.project = nn.Linear(2 * hidden, channels)
        nn.init.zeros_(self.project.weight)
        nn.init.zeros_(self.project.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, rows, frames = x.shape
        sequences = x.permute(0, 2, 3, 1).reshape(batch * rows, frames, channels)
        context = self.project(self.recurrent(sequences)[0])
        return x + context.reshape(batch, rows, frames, channels).permute(0, 3, 1, 2)
