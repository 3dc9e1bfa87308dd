"""Training speed: the pipeline's training step against a naive fp32 loop, same model, same batch size.

The naive reference is what a first PyTorch loop looks like: a Dataset that returns one
(noisy, clean) pair at a time, a DataLoader that collates each batch from single samples,
fp32 eager, default memory layout. Ours is `training.loop.train_step` as the train stage runs
it: the training set already in memory as one tensor (a batch is one slice), channels-last,
and the precision `train.precision: auto` resolves to here (bf16 autocast on CPUs with
AMX, else fp32). Both train the study's U-Net on 112 x 112 inputs for the same number of
steps after a warm-up, in this process; samples per second is the best of a few repeats.
Also printed: ours at fp32 (in-memory batches and channels-last alone) and the
peak resident memory of this process.
"""

import resource
import time
from functools import partial

import torch
from torch.nn import functional
from torch.utils.data import DataLoader, Dataset

from audiomnist_denoise.devices import memory_format, resolve_precision
from audiomnist_denoise.model.unet import UNet, initialise
from audiomnist_denoise.training.loop import new_scaler, train_step
from audiomnist_denoise.training.tasks import Pairs

SIZE, CLIPS, STEPS, WARMUP, REPEATS = 112, 512, 12, 3, 2
BATCH_SIZES = (32, 128)  # the default pipeline's and the study's
CHANNELS = [32, 64, 128]
CPU = torch.device("cpu")


def study_unet() -> UNet:
    """The study's U-Net, freshly initialised as the train stage does it (the same weights every time)."""
    torch.manual_seed(0)
    model = UNet(CHANNELS, "sigmoid")
    initialise(model, "kaiming")
    return model


class OnePairAtATime(Dataset):
    def __init__(self, pairs: Pairs):
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pairs.noisy[index], self.pairs.clean[index]


def generated_pairs() -> Pairs:
    """Spectrogram-like pairs (values in [0, 1]); the speed does not depend on the values."""
    generator = torch.Generator().manual_seed(0)
    clean = functional.avg_pool2d(torch.rand(CLIPS, 1, SIZE, SIZE, generator=generator), 5, 1, 2)
    return Pairs(noisy=(clean + 0.3 * torch.rand(clean.shape, generator=generator)).clamp(0, 1), clean=clean)


def naive_rate(pairs: Pairs, batch_size: int) -> float:
    model = study_unet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(OnePairAtATime(pairs), batch_size=batch_size, shuffle=True, drop_last=True)

    def run(steps: int) -> None:
        done = 0
        while done < steps:
            for noisy, clean in loader:
                optimizer.zero_grad()
                loss = functional.mse_loss(model(noisy), clean)
                loss.backward()
                optimizer.step()
                loss.item()
                done += 1
                if done == steps:
                    return

    return _best_rate(run, batch_size)


def our_rate(pairs: Pairs, batch_size: int, precision: str) -> float:
    model = study_unet().to(memory_format=memory_format(precision, CPU))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = new_scaler(precision, CPU)
    generator = torch.Generator().manual_seed(0)

    def run(steps: int) -> None:
        done = 0
        while done < steps:
            for batch in torch.randperm(len(pairs), generator=generator).split(batch_size):
                if len(batch) < batch_size:
                    continue
                data = pairs.batch(batch, done, CPU, precision)
                train_step(optimizer, scaler, partial(pairs.loss, model, data, precision)).item()
                done += 1
                if done == steps:
                    return

    return _best_rate(run, batch_size)


def _best_rate(run, batch_size: int) -> float:
    run(WARMUP)  # kernel selection, allocator
    best = 0.0
    for _ in range(REPEATS):
        started = time.perf_counter()
        run(STEPS)
        best = max(best, batch_size * STEPS / (time.perf_counter() - started))
    return best


def main() -> None:
    pairs = generated_pairs()
    precision = resolve_precision("auto", CPU, "train.precision")
    print(f"CPU, {torch.get_num_threads()} threads; train.precision auto -> {precision}")
    for batch_size in BATCH_SIZES:
        naive = naive_rate(pairs, batch_size)
        fp32 = our_rate(pairs, batch_size, "fp32")
        ours = fp32 if precision == "fp32" else our_rate(pairs, batch_size, precision)
        mixed = "" if precision == "fp32" else f" | ours {precision} {ours:6.1f}"
        print(
            f"train batch {batch_size:3d} | naive fp32 DataLoader {naive:6.1f} samples/s | ours fp32 {fp32:6.1f}"
            f"{mixed} | ratio {ours / naive:.2f}x (target >= 3x)"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"train peak RSS of this process {peak:.0f} MiB")


if __name__ == "__main__":
    main()
