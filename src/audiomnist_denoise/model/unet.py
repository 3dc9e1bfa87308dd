"""The study's U-Net: an encoder of conv blocks with max-pooling, a decoder with transposed
convolutions and skip connections, and a 1x1 convolution to one output channel.
"""

import numpy as np
import torch
from torch import nn

from ..devices import memory_format
from ..errors import PipelineError
from ..params import Init, Output, options
from .recurrent import TemporalContext


def conv_block(inputs: int, outputs: int) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by BatchNorm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
        nn.Conv2d(outputs, outputs, 3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Input and output (batch, 1, H, W); H and W divisible by 2 ** (len(channels) - 1). `context` gru: a
    `TemporalContext` over W (the frames) at the deepest level."""

    def __init__(self, channels: list[int], output: str = "sigmoid", context: str = "none"):
        super().__init__()
        if len(channels) < 2:
            raise PipelineError(f"model.channels: {channels} needs at least two levels")
        if output not in options(Output):
            raise PipelineError(f"model.output: {output!r} is not one of {', '.join(options(Output))}")
        self.encoders = nn.ModuleList(conv_block(a, b) for a, b in zip([1, *channels[:-1]], channels, strict=True))
        self.pool = nn.MaxPool2d(2)
        pairs = list(zip(channels[:0:-1], channels[-2::-1], strict=True))  # (deeper, shallower), deepest first
        self.upsamplers = nn.ModuleList(nn.ConvTranspose2d(deep, shallow, 2, stride=2) for deep, shallow in pairs)
        self.decoders = nn.ModuleList(conv_block(2 * shallow, shallow) for _, shallow in pairs)
        self.head = nn.Conv2d(channels[0], 1, 1)
        self.context = TemporalContext(channels[-1]) if context == "gru" else nn.Identity()
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, encoder in enumerate(self.encoders):
            x = encoder(x if level == 0 else self.pool(x))
            skips.append(x)
        x = self.context(skips.pop())
        for upsample, decoder in zip(self.upsamplers, self.decoders, strict=True):
            x = decoder(torch.cat([upsample(x), skips.pop()], dim=1))
        # The output layer runs in fp32 even under autocast: it costs nothing, and in bf16 its
        # 8-bit mantissa made training unstable (a loss spike the fp32 run did not have).
        with torch.autocast(x.device.type, enabled=False):
            x = self.head(x.float())
        return torch.sigmoid(x) if self.output == "sigmoid" else x


def initialise(model: nn.Module, scheme: str) -> None:
    """Kaiming (He) for ReLU networks, Xavier (Glorot), or PyTorch's own defaults."""
    if scheme not in options(Init):
        raise PipelineError(f"model.init: {scheme!r} is not one of {', '.join(options(Init))}")
    if scheme == "torch":
        return
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d) and not getattr(module, "starts_at_zero", False):
            if scheme == "kaiming":
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


@torch.no_grad()
def predict(model: UNet, images: np.ndarray, batch_size: int, device: str | torch.device) -> np.ndarray:
    """The model's output for (N, H, W) images in [0, 1] (any float dtype, e.g. a float16 memory map): float32."""
    device = torch.device(device)
    layout = memory_format("fp32", device)
    model.eval().to(memory_format=layout)
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(np.asarray(images[start : start + batch_size], dtype=np.float32)).unsqueeze(1)
        outputs.append(model(batch.to(device).contiguous(memory_format=layout)).squeeze(1).float().cpu().numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, *images.shape[1:]), np.float32)
