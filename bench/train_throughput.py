"""Training throughput of the study's U-Net (samples per second), for the cost estimates in docs/performance.md.

Usage: python bench/train_throughput.py [--device cpu|cuda] [--batch 128] [--steps 20]
Random 112 x 112 inputs (the throughput does not depend on the values); fp32, and bf16
autocast where the device supports it. Needs only torch and numpy.
"""

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from audiomnist_denoise.model.unet import UNet, initialise  # noqa: E402


def samples_per_second(device: torch.device, batch: int, steps: int, bf16: bool) -> float:
    torch.manual_seed(0)  # the study's U-Net with the same weights every time
    model = UNet([32, 64, 128], "sigmoid")
    initialise(model, "kaiming")
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    noisy, clean = torch.rand(2, batch, 1, 112, 112, device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = functional.mse_loss(model(noisy), clean)
        loss.backward()
        optimizer.step()

    for _ in range(3):  # warm-up: kernel selection, allocator
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    for bf16 in (False, True):
        rate = samples_per_second(device, args.batch, args.steps, bf16)
        print(f"{name} | batch {args.batch} | {'bf16 autocast' if bf16 else 'fp32'} | {rate:8.1f} samples/s")


if __name__ == "__main__":
    main()
