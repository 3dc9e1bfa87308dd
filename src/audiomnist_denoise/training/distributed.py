"""Data-parallel training across processes: torch DistributedDataParallel, launched by `torchrun`.

Each process (rank) holds the whole model and the whole data set, and trains on its
share of every global batch: DistributedSampler's share, so the union of the shares is
exactly the single-process run's batch. DDP averages the gradients, and BatchNorm
normalises with the statistics of the global batch (SyncBatchNorm), so N processes
follow the single-process run up to the order of floating-point sums. Only rank 0
writes anything (log, dvclive, resume points, the model).
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler

from ..errors import PipelineError


@dataclass(frozen=True)
class World:
    """This process's place among the training processes; one process alone by default."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "World":
        """The world torchrun describes in this process's environment (RANK, WORLD_SIZE, LOCAL_RANK)."""
        return cls(*(int(os.environ.get(name, default)) for name, default in _ENV))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


_ENV = (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0))
ALONE = World()  # one process, no process group


def per_rank_batch(batch_size: int, world: World) -> int:
    """Each rank's share of the global `train.batch_size`, which must divide evenly."""
    if batch_size % world.size:
        raise PipelineError(
            f"train.batch_size {batch_size} does not divide among {world.size} processes: "
            f"use a multiple of {world.size} so the global batch stays {batch_size}"
        )
    return batch_size // world.size


def rank_batches(size: int, batch_size: int, seed: int, epoch: int, world: World) -> list[torch.Tensor]:
    """This rank's share of each global batch of one epoch, as indices into the training set.

    DistributedSampler shuffles by `seed + epoch` (one process gets that permutation whole, so
    a resumed run finds its epoch's order again) and deals every world.size-th index to a rank;
    consecutive runs of `batch_size / world.size` of them make up the global batches in order.
    Where world.size does not divide the set, it repeats a few clips to even the shares.
    """
    sampler = DistributedSampler(range(size), num_replicas=world.size, rank=world.rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return list(torch.tensor(list(sampler), dtype=torch.long).split(per_rank_batch(batch_size, world)))


@contextmanager
def process_group(world: World, device: torch.device) -> Iterator[torch.device]:
    """Join the other ranks (gloo on CPU, nccl on CUDA) for the duration; yields this rank's device."""
    if not world.distributed:
        yield device
        return
    if device.type == "cuda":
        if world.local_rank >= torch.cuda.device_count():
            raise PipelineError(
                f"{world.size} training processes need a GPU each, and this machine has {torch.cuda.device_count()}: "
                "lower train.nproc (or torchrun's --nproc-per-node), or set train.device cpu"
            )
        torch.cuda.set_device(world.local_rank)
        device = torch.device("cuda", world.local_rank)
    # On CUDA the losses and lengths that ranks share are CPU numbers: gloo carries those, nccl the gradients.
    backend = "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, rank=world.rank, world_size=world.size)
    try:
        yield device
    finally:
        dist.destroy_process_group()


def sum_across(*values: float, world: World) -> list[float]:
    """Each value summed over the ranks (itself for one process)."""
    if not world.distributed:
        return list(values)
    total = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(total)
    return total.tolist()


def max_across(value: int, world: World) -> int:
    """The largest of the ranks' values (itself for one process)."""
    if not world.distributed:
        return value
    largest = torch.tensor(value, dtype=torch.int64)
    dist.all_reduce(largest, op=dist.ReduceOp.MAX)
    return int(largest)


def broadcast(value, world: World):
    """Rank 0's `value` (any picklable object), on every rank."""
    if not world.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap(model: nn.Module, device: torch.device, world: World) -> nn.Module:
    """`model` for a data-parallel step: BatchNorm over the global batch, gradients averaged by DDP.

    The BatchNorm layers are replaced in place (same parameters and buffers, so the state dict
    and the saved model are unchanged); the returned wrapper is what the steps call.
    """
    if not world.distributed:
        return model
    if device.type == "cuda":
        nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index])
    _use_cpu_sync_batchnorm(model)
    return nn.parallel.DistributedDataParallel(model)


class CpuSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch across the ranks.

    Written by hand because torch's SyncBatchNorm refuses CPU tensors. Each rank's count,
    mean and sum of squared deviations are gathered (with autograd, so gradients flow
    through the statistics as in single-process BatchNorm) and combined exactly
    (Chan et al.'s pairwise formula). Evaluation uses the running statistics, as BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        values = x.float()
        count = torch.tensor([values.numel() / values.shape[1]], dtype=torch.float32)
        mean = values.mean(dim=(0, 2, 3))
        squares = ((values - mean[None, :, None, None]) ** 2).sum(dim=(0, 2, 3))
        gathered = _GatherAcrossRanks.apply(torch.cat([count, mean, squares]))  # (ranks, 1 + 2 * channels)
        counts, means, squared = gathered[:, 0], gathered[:, 1 : 1 + len(mean)], gathered[:, 1 + len(mean) :]
        total = counts.sum()
        global_mean = (counts[:, None] * means).sum(0) / total
        global_squares = (squared + counts[:, None] * (means - global_mean) ** 2).sum(0)
        variance = global_squares / total
        with torch.no_grad():
            self.num_batches_tracked += 1
            weight = self.momentum if self.momentum is not None else 1 / self.num_batches_tracked.item()
            unbiased = variance * (total / max(total.item() - 1, 1))
            self.running_mean.lerp_(global_mean, weight)
            self.running_var.lerp_(unbiased, weight)
        normalised = (values - global_mean[None, :, None, None]) * torch.rsqrt(variance + self.eps)[None, :, None, None]
        return (normalised * self.weight[None, :, None, None] + self.bias[None, :, None, None]).to(x.dtype)


class _GatherAcrossRanks(torch.autograd.Function):
    """Every rank's row, stacked in rank order; the gradient of each row goes back to its rank, summed
    over the ranks' losses. (torch.distributed.nn's all_gather does this but is deprecated.)"""

    @staticmethod
    def forward(ctx, row: torch.Tensor) -> torch.Tensor:
        rows = [torch.empty_like(row) for _ in range(dist.get_world_size())]
        dist.all_gather(rows, row.contiguous())
        return torch.stack(rows)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[dist.get_rank()]


def _use_cpu_sync_batchnorm(model: nn.Module) -> None:
    for module in model.modules():
        if type(module) is nn.BatchNorm2d and module.track_running_stats and module.affine:
            module.__class__ = CpuSyncBatchNorm  # same parameters and buffers; only forward changes


def launched_by_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or "WORLD_SIZE" in os.environ


def relaunch_under_torchrun(nproc: int) -> None:
    """Run this script again as `nproc` processes on this machine under torchrun, and wait for them.

    The cores are shared out among them (torchrun would give each one thread); OMP_NUM_THREADS, if set, wins.
    """
    threads = str(max(1, len(os.sched_getaffinity(0)) // nproc))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *sys.argv]
    completed = subprocess.run(command, env={"OMP_NUM_THREADS": threads} | os.environ)
    if completed.returncode:
        raise PipelineError(f"train.nproc {nproc}: torchrun exited with {completed.returncode} (see above)")
