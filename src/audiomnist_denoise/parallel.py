"""Run one function over many items on all cores, in order, with a progress bar."""

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

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

    With one worker everything runs in this process. Otherwise worker processes come
    from a forkserver: forking a parent that runs threads (tqdm has one) can deadlock.
    """
    workers = min(resolve_workers(workers), max(len(items), 1))
    bar = tqdm(total=len(items), desc=desc, unit=unit, dynamic_ncols=True, mininterval=0.5)
    with bar:
        if workers == 1:
            for item in items:
                yield function(item)
                bar.update()
            return
        context = multiprocessing.get_context("forkserver")
        chunksize = max(1, min(64, len(items) // (workers * 8)))
        with context.Pool(workers) as pool:
            for result in pool.imap(function, items, chunksize=chunksize):
                yield result
                bar.update()


def consume(results: Iterable) -> int:
    """Drain an iterator of results; the count."""
    return sum(1 for _ in results)
