"""Run the reader of untrusted bytes in another process, so that no file can end the run.

A spreadsheet library can abort the whole process on a hostile file (a Rust panic that aborts,
an allocation of hundreds of gigabytes, SIGABRT, SIGSEGV). Files are therefore read in reader
processes: `imap` hands a batch's files to one or more of them in runs of a few files, and the
whole work on a file (judging its bytes, parsing them, making its tables) runs there. When a
reader dies on a run, that run's files are read again one by one by fresh readers: the file
that fails alone gets `died(file, why)`, and the rest of the batch goes on. On Linux a reader's
address space is capped (settings.READER_MEMORY_BYTES above what it inherited), so a runaway
allocation fails in the reader instead of exhausting the machine; a reader that ran out of
memory answers for its file and is replaced.

`call` runs a function on a file's bytes: inside a reader, in that process; elsewhere, in a
child process started for the call. Where the platform can fork, readers inherit this process
(they start in milliseconds and see the functions as they are now); elsewhere they are spawned
and import them.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import faulthandler
import importlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from pipeline import parallel, settings

T = TypeVar("T")
R = TypeVar("R")


class ReaderDied(Exception):
    """The reader of a file ended without an answer: killed by a signal (`signum`), exited
    (`exitcode`), out of memory, or still busy after the time allowed (`timeout`)."""

    def __init__(self, *, signum: int | None = None, exitcode: int | None = None,
                 timeout: float | None = None, memory: bool = False) -> None:
        super().__init__(f"signal={signum} exitcode={exitcode} timeout={timeout} "
                         f"memory={memory}")
        self.signum = signum
        self.exitcode = exitcode
        self.timeout = timeout
        self.memory = memory


class ReaderError(RuntimeError):
    """The function run in a reader raised (our mistake, not the file's): its traceback."""


def call(target: str, *args: Any) -> Any:
    """The function `target` ("module:name") applied to `args`: in this process when it is a
    reader (see `imap`), else in a reader process started for the call.

    The function is looked up by name when it is called (a forked reader sees it as this
    process had it when the reader started). Raises ReaderDied when the reader dies, overruns
    settings.READER_TIMEOUT_SECONDS or runs out of memory (in a reader: this call's answer,
    then the reader is replaced), and ReaderError when the function raised."""
    if _IN_READER:
        return _call_here(target, args)
    pool = _Pool(_Apply(target), [args], _raise, 1, _Runs(1, 0, [0]))
    try:
        return next(iter(pool.results()))
    finally:
        # Closed here, not when the iterator is collected: a Ctrl-C while the reader is
        # joined would be ignored in a finaliser (and the run would go on).
        pool.close()


@dataclass(frozen=True)
class _Apply:
    """The function named `target`, applied to a tuple of arguments (picklable by name)."""

    target: str

    def __call__(self, args: tuple) -> Any:
        return _function(self.target)(*args)


def _raise(_: object, why: ReaderDied) -> Any:
    raise why


def _function(target: str) -> Any:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def in_reader() -> bool:
    """Whether this process is a reader (`call` runs in it, its answers stay here)."""
    return _IN_READER


def _call_here(target: str, args: tuple) -> Any:
    global _RETIRING
    try:
        return _function(target)(*args)
    except MemoryError:
        _RETIRING = True  # a process that ran out of memory may be left half broken
        raise ReaderDied(memory=True) from None
    except BaseException as exc:  # as a child's answer: the parent decides
        raise ReaderError(traceback.format_exc()) from exc


# In a reader process: `call` runs here; after running out of memory it asks to be replaced.
_IN_READER = False
_RETIRING = False
# The parent ends of the pipes to this process's children. A process forked from this one
# holds copies: it closes them, or a child would never see its pipe close when this process
# dies.
_PIPES: weakref.WeakSet[Connection] = weakref.WeakSet()


def _close_inherited() -> None:
    for connection in list(_PIPES):
        connection.close()
    _PIPES.clear()


def imap(function: Callable[[T], R], items: Sequence[T], workers: int,
         died: Callable[[T, ReaderDied], R],
         weights: Sequence[int] | None = None, *,
         prepare: Callable[[list[T]], None] | None = None,
         on_start: Callable[[], None] | None = None) -> Iterator[R]:
    """`function(item)` for each item, in order, each computed in one of `workers` reader
    processes; `died(item, why)` for an item whose reader died, ran out of memory or overran
    settings.READER_TIMEOUT_SECONDS on it.

    Items go to the readers in runs (one message each way per run; what the answers of a run
    share, such as the definitions they point to, is sent once), each reader a run ahead, so
    it never waits for this process. When a reader dies in a run of several items, those
    items are read again one by one in fresh readers: the one that fails alone is the one
    blamed. A run's `weights` (the files' sizes) stay within settings.READER_RUN_BYTES, so
    that a run of large files is not given up for the time it rightly takes (an item heavier
    than that goes alone). Where readers are spawned, `function` is pickled once per reader (a
    top-level function, or a method of a picklable object). Raises ReaderError when `function`
    raised (our mistake, not a file's); closing the iterator early stops the readers.

    `prepare(items)`, when given, runs in the reader on each run before its items (work it
    may do ahead, such as reading while something `function` needs is still on its way; a
    MemoryError there is dropped: the items are then read as usual). `on_start()`, when
    given, runs here once the readers have their first runs (work this process does
    meanwhile); an error it raises stops the readers and is raised."""
    if not items:
        if on_start is not None:
            on_start()
        return
    workers = max(1, min(workers, len(items)))
    run = max(1, min(_MAX_RUN, len(items) // (workers * 8)))
    pool = _Pool(function, items, died, workers,
                 _Runs(run, settings.READER_RUN_BYTES, weights or [0] * len(items),
                       spread=workers * _AHEAD * 2), prepare)
    try:
        if on_start is not None:
            pool.hand_out()
            on_start()
        yield from pool.results()
    finally:
        pool.close()


# The most items sent to a reader at once, and the runs a reader holds at once (the one it
# reads and the next, already in its pipe).
_MAX_RUN = 32
_AHEAD = 2


@dataclass(frozen=True)
class _Runs:
    """How the items are cut into runs: at most `most` items weighing at most `weight` (an
    item heavier than that alone), a suspect always alone. Near the end a run holds no more
    than 1/`spread` of the items left: the last runs shrink to one item, so that the readers
    end together (one run of `most` left to one reader kept the other idle for half of it)."""

    most: int
    weight: int
    weights: Sequence[int]
    spread: int = 1

    def take(self, waiting: collections.deque[int], suspects: set[int]) -> list[int]:
        """The next run, taken from the front of `waiting`."""
        if waiting[0] in suspects:
            return [waiting.popleft()]
        run: list[int] = []
        total = 0
        most = min(self.most, -(-len(waiting) // self.spread))
        while waiting and len(run) < most and waiting[0] not in suspects:
            weight = self.weights[waiting[0]]
            if run and total + weight > self.weight:
                break
            total += weight
            run.append(waiting.popleft())
        return run


class _Slot:
    """One reader of a pool: its process, its pipe, and the runs it holds, oldest first."""

    def __init__(self, process: Any, connection: Connection) -> None:
        self.process = process
        self.connection = connection
        self.held: collections.deque[list[int]] = collections.deque()
        self.since = time.monotonic()  # when it started on its oldest run

    def end(self, *, kill: bool) -> None:
        self.connection.close()  # the reader reads end-of-file and leaves
        if kill:
            self.process.kill()
        self.process.join(5)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()

    def death(self) -> ReaderDied:
        """Why the reader ended (its pipe closed without an answer)."""
        self.process.join(5)
        code = self.process.exitcode
        return ReaderDied(signum=-code) if code is not None and code < 0 \
            else ReaderDied(exitcode=code)


class _Pool:
    """The readers of one `imap`, the items still to hand out and the answers not yet given.
    Items under suspicion (held by a reader that died on a run of several) go out alone."""

    def __init__(self, function: Callable[[T], R], items: Sequence[T],
                 died: Callable[[T, ReaderDied], R], workers: int, runs: _Runs,
                 prepare: Callable[[list[T]], None] | None = None) -> None:
        self.function, self.items, self.died, self.runs = function, items, died, runs
        self.prepare = prepare
        self.waiting: collections.deque[int] = collections.deque(range(len(items)))
        self.suspects: set[int] = set()
        self.answers: dict[int, R] = {}
        self.slots = [self._start() for _ in range(workers)]

    def results(self) -> Iterator[R]:
        for index in range(len(self.items)):
            while index not in self.answers:
                self._step()
            yield self.answers.pop(index)

    def close(self) -> None:
        slots, self.slots = self.slots, []
        for slot in slots:
            slot.end(kill=bool(slot.held))  # busy: interrupted (Ctrl-C), nobody waits

    def _start(self) -> _Slot:
        context = parallel.worker_context()  # fork where possible, spawn on Windows
        ours, theirs = context.Pipe()
        # Only a child of the main thread may die with its parent: Linux ties that signal to
        # the thread that started the child.
        main = threading.current_thread() is threading.main_thread()
        process = context.Process(
            target=_serve_items,
            args=(theirs, ours, self.function, settings.READER_MEMORY_BYTES, os.getpid(), main,
                  self.prepare),
            daemon=not multiprocessing.current_process().daemon)
        with parallel.interrupt_held():
            process.start()
        theirs.close()
        _PIPES.add(ours)
        return _Slot(process, ours)

    def _step(self) -> None:
        """Hand out runs, then take the answers that came (or the deaths) and give up on a
        reader past its time."""
        self.hand_out()
        self._wait()

    def hand_out(self) -> None:
        """Send each reader runs until it holds _AHEAD of them (or nothing is left)."""
        for slot in self.slots:
            while self.waiting and len(slot.held) < _AHEAD:
                run = self.runs.take(self.waiting, self.suspects)
                if not slot.held:
                    slot.since = time.monotonic()
                slot.held.append(run)
                try:
                    slot.connection.send((run, [self.items[i] for i in run]))
                except OSError:  # it died: seen when its pipe is read
                    break

    def _wait(self) -> None:
        timeout = settings.READER_TIMEOUT_SECONDS
        busy = [s for s in self.slots if s.held]
        left = min(s.since for s in busy) + timeout - time.monotonic()
        ready = multiprocessing.connection.wait([s.connection for s in busy], max(0, left))
        for slot in [s for s in busy if s.connection in ready]:
            self._answer(slot)
        now = time.monotonic()
        for slot in [s for s in self.slots if s.held and now - s.since >= timeout]:
            self._replace(slot, ReaderDied(timeout=timeout))

    def _answer(self, slot: _Slot) -> None:
        try:
            answers, leaving = slot.connection.recv()
        except (EOFError, OSError):
            self._replace(slot, slot.death())
            return
        run = slot.held.popleft()
        slot.since = time.monotonic()
        for index, status, value in answers:
            if status == "error":
                raise ReaderError(value)
            self.answers[index] = (self.died(self.items[index], ReaderDied(memory=True))
                                   if status == "memory" else value)
            self.suspects.discard(index)
        if leaving:  # the rest of its run, unread, goes out again (alone, when suspected)
            rest = [i for i in run if i not in self.answers]
            if leaving == "suspects":
                self.suspects.update(rest)
            slot.held.appendleft(rest)
            self._replace(slot, None)

    def _replace(self, slot: _Slot, why: ReaderDied | None) -> None:
        """End a reader and start another if there is more to read. `why` it failed its
        oldest run (None: it asked to be replaced): an item alone is blamed, the items of a
        longer run become suspects. Everything it held unanswered is handed out again first."""
        held = [run for run in slot.held if run]
        slot.held.clear()
        slot.end(kill=True)
        if why is not None and held:
            first = held.pop(0)
            if len(first) == 1:
                self.answers[first[0]] = self.died(self.items[first[0]], why)
                self.suspects.discard(first[0])
            else:
                self.suspects.update(first)
                held.insert(0, first)
        self.waiting.extendleft(reversed([i for run in held for i in run]))
        if self.waiting:
            self.slots[self.slots.index(slot)] = self._start()
        else:  # nothing left for it to read
            self.slots.remove(slot)


def _serve_items(connection: Connection, parent_end: Connection, function: Callable,
                 memory: int, parent: int, with_parent: bool,
                 prepare: Callable[[list], None] | None = None) -> None:
    """A reader of a pool: answer each run of items with ([(index, status, value), …],
    leaving) until the parent closes the pipe (or dies); `leaving` is None, "leaving", or
    "suspects" (the run's answers could not be sent: it is read again item by item). A reader
    that ran out of memory, or met our own mistake, answers up to that item and leaves."""
    global _IN_READER
    _become_reader(parent_end, memory, parent, with_parent)
    _IN_READER = True
    while True:
        try:
            indexes, items = connection.recv()
        except (EOFError, OSError):
            return
        answers: list[tuple[int, str, Any]] = []
        retiring = False
        if prepare is not None:
            try:
                prepare(items)
            except MemoryError:  # the items are read as usual
                pass
            except BaseException:  # our mistake: the parent raises it
                answers.append((indexes[0], "error", traceback.format_exc()))
                retiring = True
        for index, item in zip(indexes, items, strict=True):
            if retiring:
                break
            try:
                answers.append((index, "ok", function(item)))
            except MemoryError:
                answers.append((index, "memory", None))
                retiring = True
            except BaseException:  # the parent raises it
                answers.append((index, "error", traceback.format_exc()))
                retiring = True
            if retiring or _RETIRING:
                break
        retiring = retiring or _RETIRING
        try:
            connection.send((answers, "leaving" if retiring else None))
        except MemoryError:  # too large to send: one alone is blamed, several read again alone
            connection.send(([(answers[0][0], "memory", None)], "leaving") if len(answers) == 1
                            else ([], "suspects"))
            retiring = True
        if retiring:
            return


def _become_reader(parent_end: Connection, memory: int, parent: int,
                   with_parent: bool) -> None:
    """A reader process's start: no pipe of its parent's other children held, dying with the
    parent, Ctrl-C left to the parent, no output of a dying library, the memory capped."""
    parent_end.close()
    _close_inherited()
    if with_parent:
        _die_with(parent)
    parallel.ignore_interrupt()  # Ctrl-C is for the parent, which ends us
    # What a dying library prints (a Rust backtrace, a fault dump) is not for the user: the
    # parent reports the file, and our own errors come back with their traceback.
    faulthandler.disable()
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    _cap_memory(memory)


def _die_with(parent: int) -> None:
    """Be killed when the parent dies (Linux), even in the middle of a file: a run that is
    killed leaves no reader behind."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the request was made
        os._exit(0)


_PR_SET_PDEATHSIG = 1


def _cap_memory(budget: int) -> None:
    """Cap the address space at what the child has now plus `budget` (Linux; elsewhere, or
    when the cap cannot be set, the child runs uncapped)."""
    try:
        import resource

        pages = int(Path("/proc/self/statm").read_text().split()[0])
        limit = pages * os.sysconf("SC_PAGE_SIZE") + budget
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, ValueError, AttributeError):
        return
