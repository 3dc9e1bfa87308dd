"""The device and precision policy: what `auto` picks, and errors that name the caller's own setting."""

import pytest
import torch

from audiomnist_denoise.devices import cpu_has_fast_bf16, memory_format, resolve_device, resolve_precision
from audiomnist_denoise.errors import PipelineError

CPU = torch.device("cpu")


def test_auto_device_is_the_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto", "train.device") == CPU
    assert resolve_device("cpu", "train.device") == CPU


def test_auto_device_is_cuda_where_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto", "evaluate.device") == torch.device("cuda")


@pytest.mark.parametrize("param", ["train.device", "evaluate.device", "--device"])
def test_cuda_without_a_gpu_names_the_callers_param(monkeypatch, param):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(PipelineError, match=rf"^{param}: cuda asked for, but PyTorch sees no CUDA device$"):
        resolve_device("cuda", param)


def test_an_unknown_device_names_the_param_and_the_options():
    with pytest.raises(PipelineError, match=r"^evaluate.device: 'tpu' is not one of auto, cpu, cuda$"):
        resolve_device("tpu", "evaluate.device")


def test_explicit_precisions_are_kept_and_an_unknown_one_names_the_param():
    assert resolve_precision("fp32", CPU, "train.precision") == "fp32"
    assert resolve_precision("bf16", CPU, "train.precision") == "bf16"
    with pytest.raises(PipelineError, match=r"^evaluate.precision: 'int8' is not one of auto, fp32, bf16, fp16$"):
        resolve_precision("int8", CPU, "evaluate.precision")


def test_auto_precision_on_this_cpu_follows_its_bf16_speed():
    assert resolve_precision("auto", CPU, "train.precision") == ("bf16" if cpu_has_fast_bf16() else "fp32")


@pytest.mark.parametrize(("amx", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_precision_on_cpu_wants_amx_not_just_avx512_bf16(monkeypatch, amx, expected):
    """AVX-512 BF16 alone trains this U-Net slower in bf16 than in fp32; only AMX makes bf16 pay."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    assert resolve_precision("auto", CPU, "train.precision") == expected


@pytest.mark.parametrize(("bf16", "expected"), [(True, "bf16"), (False, "fp16")])
def test_auto_precision_on_cuda_is_bf16_where_the_gpu_has_it_else_fp16(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *_, **__: bf16)
    assert resolve_precision("auto", torch.device("cuda"), "train.precision") == expected


def test_layout_is_channels_last_except_fp32_on_cuda():
    assert memory_format("fp32", CPU) == memory_format("bf16", CPU) == torch.channels_last
    cuda = torch.device("cuda")
    assert memory_format("bf16", cuda) == memory_format("fp16", cuda) == torch.channels_last
    assert memory_format("fp32", cuda) == torch.contiguous_format
