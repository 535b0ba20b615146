"""Run independent jobs in worker processes: reading files, writing workbooks.

Where the platform can fork (Linux), the workers inherit the jobs, which hold the whole
consolidation, instead of receiving a pickled copy. Elsewhere (Windows, and macOS whose
default is spawn) each worker starts a fresh interpreter and receives the jobs once, pickled:
so every job must be picklable (top-level functions, `functools.partial` of them, small
dataclasses; no lambda, no closure). The environment variable TDKT_START_METHOD
(settings.START_METHOD_ENV) forces a start method, as the tests do for spawn.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import os
import pickle
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any, Generic, TypeVar

from pipeline import settings

T = TypeVar("T")
V = TypeVar("V")

_JOBS: Sequence[Callable[[], object]] = ()


def worker_count(items: int) -> int:
    """Processes for `items` independent pieces of work: one per core (at most
    settings.MAX_WORKERS) from settings.PARALLEL_MIN_FILES pieces on, else 1."""
    if items < settings.PARALLEL_MIN_FILES:
        return 1
    return max(1, min(settings.MAX_WORKERS, os.cpu_count() or 1))


def start_method() -> str:
    """How worker processes start: the method named by TDKT_START_METHOD when this platform
    has it, else fork where there is fork, else spawn."""
    methods = multiprocessing.get_all_start_methods()
    forced = os.environ.get(settings.START_METHOD_ENV, "").strip().lower()
    if forced in methods:
        return forced
    return "fork" if "fork" in methods else "spawn"


def worker_context() -> BaseContext:
    """The multiprocessing context every worker process of tdkt is started from."""
    return multiprocessing.get_context(start_method())


def can_fork() -> bool:
    """Whether worker processes inherit this process's memory (they are forked)."""
    return start_method() == "fork"


# The work this process does while its workers run the jobs (see `alongside`): the task and
# the process that set it (a forked worker inherits this and must never run it).
_ALONGSIDE: list[tuple[int, Callable[[], object]]] = []


@contextlib.contextmanager
def alongside(task: Callable[[], object] | None) -> Iterator[None]:
    """Run `task` in this process while the workers of the first `run_jobs` inside the block
    run their jobs (this process would only wait for them meanwhile); when no `run_jobs` inside
    ran it, at the end of the block. Not run when the block raises first; the task's own
    exception is raised from the `run_jobs` that ran it (once its workers have stopped) or at
    the end of the block."""
    global _ALONGSIDE
    outer = _ALONGSIDE
    _ALONGSIDE = [(os.getpid(), task)] if task is not None else []
    try:
        yield
        _run_alongside()
    finally:
        _ALONGSIDE = outer


def _run_alongside() -> None:
    """The pending `alongside` task of this process, run once."""
    if _ALONGSIDE and _ALONGSIDE[0][0] == os.getpid():
        _, task = _ALONGSIDE.pop()
        task()


class LaterFailed(RuntimeError):
    """The process computing a `Later` value failed (it raises its own error)."""


_UNSET: Any = object()


_LATER_PREFIX, _LATER_SUFFIX = "tdkt-", ".later"
# A value's file this old was left by a run that was killed (a run removes its own at once):
# the first Later a process makes removes those from the temporary folder.
STALE_LATER_SECONDS = 24 * 3600
# A job waiting for a value looks for it after LATER_FIRST_PAUSE seconds, then twice as long
# each time up to LATER_LONGEST_PAUSE: a value comes to it at most that late.
LATER_FIRST_PAUSE, LATER_LONGEST_PAUSE = 0.0005, 0.01
_swept = False


def _sweep_stale_laters() -> None:
    """Remove the stale value files (once per process; a folder or file it may not touch is
    left as it is)."""
    global _swept
    if _swept:
        return
    _swept = True
    now = time.time()
    with contextlib.suppress(OSError):
        for path in Path(tempfile.gettempdir()).glob(f"{_LATER_PREFIX}*{_LATER_SUFFIX}"):
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > STALE_LATER_SECONDS:
                    path.unlink()


class Later(Generic[V]):
    """A value this process computes while its workers run (in its `alongside` task), for the
    jobs that need it only part-way: a job's `get` waits until this process has `set` it, or
    raises LaterFailed once it has `fail`ed (a job never waits for a process that is gone).

    The value travels through a file (any size, any number of jobs), made whole at once (a
    rename): a job sees the value's file empty until then. Nothing is shared but the file: a
    job killed while it waits (a reader stopped by Ctrl-C or its time limit) can never hold
    up this process (a multiprocessing Event's `set` waits for every waiter, the dead too).
    `close` removes the file. Made before the workers start: forked ones inherit it, spawned
    ones receive it with their jobs."""

    def __init__(self) -> None:
        _sweep_stale_laters()
        handle, name = tempfile.mkstemp(prefix=_LATER_PREFIX, suffix=_LATER_SUFFIX)
        os.close(handle)
        self._path = name
        self._owner = os.getpid()
        self._value: Any = _UNSET

    def set(self, value: V) -> None:
        """Give the value to every job waiting for it (or asking later)."""
        self._value = value
        self._publish(pickle.dumps((True, value), pickle.HIGHEST_PROTOCOL))

    def fail(self) -> None:
        """Release the jobs waiting: they raise LaterFailed (no value will come)."""
        if not self.ready():
            self._publish(pickle.dumps((False, None)))

    def _publish(self, data: bytes) -> None:
        Path(self._part).write_bytes(data)
        os.replace(self._part, self._path)

    @property
    def _part(self) -> str:
        """Where the value's file is written before it is renamed whole into place."""
        return self._path.removesuffix(_LATER_SUFFIX) + "-part" + _LATER_SUFFIX

    def ready(self) -> bool:
        """Whether the value was set, or failed, or its file is gone (never waits)."""
        if self._value is not _UNSET:
            return True
        try:
            return os.stat(self._path).st_size > 0
        except OSError:  # removed: the process computing it has closed it, nothing will come
            return True

    def get(self) -> V:
        """The value, once set (waiting for it in a worker)."""
        if self._value is _UNSET:
            if os.getpid() == self._owner and not self.ready():
                raise LaterFailed("asked for before it was computed")  # never wait for oneself
            self._wait()
            try:
                ok, value = pickle.loads(Path(self._path).read_bytes())  # our own file
            except OSError as exc:
                raise LaterFailed("the process computing the value closed it") from exc
            if not ok:
                raise LaterFailed("the process computing the value failed")
            self._value = value
        return self._value

    def _wait(self) -> None:
        """Until the value's file is whole: looked at every few milliseconds, and whether
        the process computing it is still there about every second."""
        pause, checked = LATER_FIRST_PAUSE, time.monotonic()
        while not self.ready():
            time.sleep(pause)
            pause = min(pause * 2, LATER_LONGEST_PAUSE)
            if time.monotonic() - checked >= 1.0:
                if os.getppid() != self._owner:
                    raise LaterFailed("the process computing the value is gone")
                checked = time.monotonic()

    def close(self) -> None:
        """Release the jobs still waiting and remove the value's file (in the process that
        made it; never raises: it runs as a run ends, failed or not)."""
        if os.getpid() == self._owner:
            with contextlib.suppress(OSError):
                self.fail()
            for path in (self._path, self._part):
                with contextlib.suppress(OSError):
                    os.remove(path)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_value"}  # read from the file

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _value=_UNSET)


def resolved(value: Later[V] | V) -> V:
    """The value itself, or a Later's value (waiting for it)."""
    return value.get() if isinstance(value, Later) else value


def _background_from() -> int | None:
    """The first job that runs at a lower priority: while this process runs an `alongside`
    task, every job but the first (the longest: the task and it are the run's long poles,
    the other jobs fill the cores around them); None when there is no task."""
    return 1 if _ALONGSIDE and _ALONGSIDE[0][0] == os.getpid() else None


def _mapped(pool: ProcessPoolExecutor, count: int) -> list:
    """The pool's results of jobs 0 … count-1, this process's `alongside` task run while the
    workers run them."""
    results = pool.map(_run, range(count))  # every job handed out: the workers have started
    try:
        _run_alongside()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    return list(results)


def run_jobs(jobs: Sequence[Callable[[], T]], workers: int) -> list[T]:
    """Each job's result, in order; jobs run in `workers` processes when there are several
    (and this process runs its `alongside` task meanwhile).

    Forked workers inherit the jobs; spawned ones receive them once each, pickled. Put the
    longest jobs first: they are handed out in order. While this process runs its `alongside`
    task, the jobs after the first run at a lower priority (settings.BACKGROUND_NICENESS).
    """
    if workers <= 1 or len(jobs) <= 1:
        _run_alongside()
        return [job() for job in jobs]
    workers = min(workers, len(jobs))
    background = _background_from()
    if not can_fork():
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=worker_context(),
                                   initializer=_install, initargs=(tuple(jobs), background))
        with pool:
            return _mapped(pool, len(jobs))
    global _JOBS, _BACKGROUND
    _JOBS, _BACKGROUND = jobs, background
    # Objects that exist now are never collected in the workers: a collection there would
    # touch every object's header and so copy every page the workers share with this process.
    gc.collect()
    _trim_heap()
    gc.freeze()
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=worker_context(),
                                 initializer=ignore_interrupt) as pool:
            return _mapped(pool, len(jobs))
    finally:
        gc.unfreeze()
        _JOBS, _BACKGROUND = (), None


def _install(jobs: Sequence[Callable[[], object]], background: int | None) -> None:
    """A spawned worker's start: keep the jobs it was sent."""
    global _JOBS, _BACKGROUND
    ignore_interrupt()
    _JOBS, _BACKGROUND = jobs, background


def ignore_interrupt() -> None:
    """A worker's start: Ctrl-C reaches every process of the console; the parent stops the
    run and says so, a worker must not print its own traceback. (Then a Ctrl-C held back
    while the worker was being forked, see `interrupt_held`, is let through: ignored.)"""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(AttributeError, ValueError, OSError):  # Windows: no sigmask
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextlib.contextmanager
def interrupt_held() -> Iterator[None]:
    """Hold Ctrl-C back while a child is forked: in the child, Python's own code runs before
    the child can ignore it, and would print a KeyboardInterrupt traceback. The parent gets a
    Ctrl-C sent meanwhile as soon as the child has started (POSIX; elsewhere nothing held)."""
    try:
        before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    except (AttributeError, ValueError, OSError):  # Windows, or not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _trim_heap() -> None:
    """Give the memory freed so far back to the system (glibc only) before the workers fork:
    what is still mapped here would be counted once more in each worker that touches it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _run(index: int) -> object:
    """A worker's job (at a lower priority from job _BACKGROUND on), then its garbage freed
    and given back to the system: a workbook's writer leaves reference cycles behind
    (XlsxWriter's objects), and the worker's next job would otherwise start on top of them (a
    province's office workbook: ~100 MB)."""
    if _BACKGROUND is not None and index >= _BACKGROUND:
        _lower_priority()
    try:
        return _JOBS[index]()
    finally:
        gc.collect()
        _trim_heap()


def _lower_priority() -> None:
    """Lower this worker's priority once: POSIX niceness, and on Linux the idle scheduling
    class (it runs only on a core nothing else wants: the rows of 3,000 schools took 2.5 s
    instead of 2.6 s beside it, the whole run no longer); elsewhere it stays as it is."""
    global _LOWERED
    if not _LOWERED:
        _LOWERED = True
        with contextlib.suppress(AttributeError, OSError):
            os.nice(settings.BACKGROUND_NICENESS)
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


# The jobs of the worker pool running now, and the first of them run at a lower priority (see
# `_background_from`); whether this worker has lowered its priority.
_BACKGROUND: int | None = None
_LOWERED = False


def chunks(items: Sequence[T], count: int) -> list[Sequence[T]]:
    """`items` cut into about `count` consecutive slices (none empty)."""
    size = max(1, -(-len(items) // max(1, count)))
    return [items[i:i + size] for i in range(0, len(items), size)]
