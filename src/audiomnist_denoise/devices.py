"""Where the network runs and at what precision: the one policy that training, evaluation and the
command line share. Bad settings are PipelineErrors that name the parameter the caller passes in
(`train.device`, `evaluate.device`, `--device`, ...), so each caller's message points at its own setting.

Mixed precision and channels-last pay where they were measured to (docs/performance.md): bf16 autocast
on GPUs and on CPUs with AMX, fp16 with loss scaling on older GPUs; channels-last on CPU at any
precision and on CUDA under mixed precision. The weights stay fp32 either way.
"""

import torch

from .errors import PipelineError
from .params import Device, Precision, options

_AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(requested: str, param: str) -> torch.device:
    """`auto`: CUDA when present, else CPU; `cuda` without a GPU is an error naming `param`."""
    if requested not in options(Device):
        raise PipelineError(f"{param}: {requested!r} is not one of {', '.join(options(Device))}")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise PipelineError(f"{param}: cuda asked for, but PyTorch sees no CUDA device")
    return torch.device(requested)


def cpu_has_fast_bf16() -> bool:
    """Whether bf16 autocast trains faster than fp32 on this CPU: only with AMX tiles. With AVX-512 BF16
    alone, oneDNN's bf16 convolutions of this U-Net were measured slower than its fp32 ones (forward and
    backward, torch 2.13), and without either PyTorch emulates bf16."""
    check = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)  # private, so looked up with care
    return bool(check())


def resolve_precision(requested: str, device: torch.device, param: str) -> str:
    """fp32, bf16 or fp16 on `device`. `auto`: bf16 on a GPU that has it or a CPU with AMX, fp16 on GPUs
    without bf16, else fp32; a value that is none of these is an error naming `param`."""
    if requested not in options(Precision):
        raise PipelineError(f"{param}: {requested!r} is not one of {', '.join(options(Precision))}")
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def autocast(precision: str, device: torch.device):
    """The autocast context of a resolved precision (a no-op for fp32)."""
    dtype = _AUTOCAST_DTYPES[precision]
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def memory_format(precision: str, device: torch.device) -> torch.memory_format:
    """Channels-last, where oneDNN's and cuDNN's fastest convolutions want it: on CPU at any precision,
    on CUDA under mixed precision (docs/performance.md has the measurements)."""
    cuda_fp32 = device.type == "cuda" and precision == "fp32"
    return torch.contiguous_format if cuda_fp32 else torch.channels_last


def to_device(images: torch.Tensor, device: torch.device, precision: str = "fp32") -> torch.Tensor:
    """A batch of images on `device` in the layout for `precision` (see `memory_format`)."""
    return images.to(device, non_blocking=True).contiguous(memory_format=memory_format(precision, device))
