"""One epoch of the study's configuration through the `train` stage's Trainer, timed: the cost per epoch
quoted in docs/performance.md.

Usage: python bench/study_epoch.py [--device auto|cpu|cuda] [--clips 22000] [--precision auto] [--compile]
Generated pairs sized like the study's (112 x 112, 22,000 training clips, a fifth as many
validation clips, batch 128, validation every 25 steps); the time does not depend on the values.
A first step before the clock starts takes the one-off costs (CUDA context, kernel choice, compilation).
"""

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from audiomnist_denoise.devices import resolve_device  # noqa: E402
from audiomnist_denoise.model.unet import UNet, initialise  # noqa: E402
from audiomnist_denoise.params import TrainParams  # noqa: E402
from audiomnist_denoise.training.loop import Trainer  # noqa: E402
from audiomnist_denoise.training.tasks import Pairs  # noqa: E402


def study_unet() -> UNet:
    """The study's U-Net, freshly initialised as the train stage does it (the same weights every time)."""
    torch.manual_seed(0)
    model = UNet([32, 64, 128], "sigmoid")
    initialise(model, "kaiming")
    return model


def pairs(count: int, seed: int) -> Pairs:
    generator = torch.Generator().manual_seed(seed)
    clean = functional.avg_pool2d(torch.rand(count, 1, 112, 112, generator=generator), 5, 1, 2)
    noisy = (clean + 0.3 * torch.rand(count, 1, 112, 112, generator=generator)).clamp(0, 1)
    return Pairs(noisy=noisy, clean=clean)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--clips", type=int, default=22000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    device = resolve_device(args.device, "--device")
    params = TrainParams(
        lr=3e-3,
        schedule="cosine",
        warmup_steps=20,
        batch_size=args.batch,
        epochs=1,
        val_every=25,
        seed=0,
        device=args.device,
        precision=args.precision,
        compile=args.compile,
        checkpoint_every=0,
        nproc=1,
    )
    train, val = pairs(args.clips, 0), pairs(args.clips // 5, 1)
    warm_up = Trainer(study_unet(), train, val, params, device)
    warm_up.total_steps = 1
    warm_up.run(lambda step, values: None)
    trainer = Trainer(study_unet(), train, val, params, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    _, result = trainer.run(lambda step, values: None)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    passes = sum(1 for step in range(1, result.steps + 1) if step % params.val_every == 0 or step == result.steps)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"{name} | torch {torch.__version__} | {result.precision}{', compiled' if args.compile else ''} | "
        f"one epoch of {args.clips} clips at batch {args.batch} ({result.steps} steps, "
        f"{passes} validation passes over {len(val)} clips): {seconds:.1f} s, "
        f"{args.clips / seconds:.0f} training clips/s; final train loss {result.final_train_loss:.4f}"
    )


if __name__ == "__main__":
    main()
