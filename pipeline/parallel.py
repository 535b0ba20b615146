"""Run independent jobs in worker processes: reading files, writing workbooks.

Writing jobs are closures over the consolidation, which is large; where the platform can fork,
the workers inherit it instead of receiving a pickled copy. Elsewhere (Windows, macOS' spawn)
the jobs run one after another in this process.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from pipeline import settings

T = TypeVar("T")

_JOBS: Sequence[Callable[[], object]] = ()


def worker_count(items: int) -> int:
    """Processes for `items` independent pieces of work: one per core (at most
    settings.MAX_WORKERS) from settings.PARALLEL_MIN_FILES pieces on, else 1."""
    if items < settings.PARALLEL_MIN_FILES:
        return 1
    return max(1, min(settings.MAX_WORKERS, os.cpu_count() or 1))


def can_fork() -> bool:
    """Whether worker processes can inherit this process's memory."""
    return "fork" in multiprocessing.get_all_start_methods()


def run_jobs(jobs: Sequence[Callable[[], T]], workers: int) -> list[T]:
    """Each job's result, in order; jobs run in `workers` forked processes when possible.

    Put the longest jobs first: they are handed out in order.
    """
    global _JOBS
    if workers <= 1 or len(jobs) <= 1 or not can_fork():
        return [job() for job in jobs]
    _JOBS = jobs
    # Objects that exist now are never collected in the workers: a collection there would
    # touch every object's header and so copy every page the workers share with this process.
    gc.collect()
    _trim_heap()
    gc.freeze()
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
            return list(pool.map(_run, range(len(jobs))))
    finally:
        gc.unfreeze()
        _JOBS = ()


def _trim_heap() -> None:
    """Give the memory freed so far back to the system (glibc only) before the workers fork:
    what is still mapped here would be counted once more in each worker that touches it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _run(index: int) -> object:
    return _JOBS[index]()


def chunks(items: Sequence[T], count: int) -> list[Sequence[T]]:
    """`items` cut into about `count` consecutive slices (none empty)."""
    size = max(1, -(-len(items) // max(1, count)))
    return [items[i:i + size] for i in range(0, len(items), size)]
