"""Run one function over many items on all cores, in order, with a progress bar."""

import multiprocessing
import os
from collections.abc import Callable, Iterator
from typing import TypeVar

from threadpoolctl import threadpool_limits
from tqdm import tqdm

Item = TypeVar("Item")
Result = TypeVar("Result")


def resolve_workers(workers: int) -> int:
    """`workers` itself, or every core this process may use when it is 0."""
    return workers or len(os.sched_getaffinity(0))


def map_progress(
    function: Callable[[Item], Result], items: list[Item], workers: int, desc: str, unit: str = "clip"
) -> Iterator[Result]:
    """Results of `function` over `items`, in input order.

    Each worker is one process on one core: BLAS and FFT threads are limited to one.
    With one worker everything runs in this process. Otherwise workers are forked
    (fast: nothing is imported again) before the progress bar starts its thread, since
    forking a process that runs threads can deadlock.
    """
    workers = min(resolve_workers(workers), max(len(items), 1))
    if workers == 1:
        with threadpool_limits(1), _bar(len(items), desc, unit) as bar:
            for item in items:
                yield function(item)
                bar.update()
        return
    chunksize = max(1, min(64, len(items) // (workers * 8)))
    with (
        multiprocessing.get_context("fork").Pool(workers, initializer=_one_thread_each) as pool,
        _bar(len(items), desc, unit) as bar,
    ):
        for result in pool.imap(function, items, chunksize=chunksize):
            yield result
            bar.update()


def _one_thread_each() -> None:
    threadpool_limits(1)  # the workers already use every core; more threads would fight them


def _bar(total: int, desc: str, unit: str) -> tqdm:
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, mininterval=0.5)
