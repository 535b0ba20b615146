"""Run the reader of untrusted bytes in a child process, so that no file can end the run.

A spreadsheet library can abort the whole process on a hostile file (a Rust panic that aborts,
an allocation of hundreds of gigabytes, SIGABRT, SIGSEGV). The functions that judge and read a
file's bytes therefore run in a child process, one file at a time: when the child dies the
caller gets ReaderDied for the file it held, and the next file gets a fresh child. On Linux the
child's address space is capped (settings.READER_MEMORY_BYTES above what it inherited), so a
runaway allocation fails in the child instead of exhausting the machine.

Inside `reader()` (a batch) one child serves every call and is restarted only after a death;
outside, each call starts and ends its own child. Where the platform can fork, the child
inherits this process (it starts in milliseconds and sees the functions as they are now);
elsewhere it is spawned and imports them.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import importlib
import multiprocessing
import os
import signal
import sys
import threading
import traceback
import weakref
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pipeline import parallel, settings


class ReaderDied(Exception):
    """The child reading a file ended without an answer: killed by a signal (`signum`), exited
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
    """The function run in the child raised (our mistake, not the file's): its traceback."""


def call(target: str, *args: Any) -> Any:
    """The function `target` ("module:name") applied to `args` in a reader process: this
    batch's, or one started for this call.

    The child looks the function up by name when it is called (a forked child sees it as this
    process had it when the child started). Raises ReaderDied when the child dies or overruns
    settings.READER_TIMEOUT_SECONDS, and ReaderError when the function raised."""
    if _BATCH is not None and _BATCH.owner == os.getpid():
        return _BATCH.call(target, args)
    child = _Reader()
    try:
        return child.call(target, args)
    finally:
        child.close()


@contextlib.contextmanager
def reader() -> Iterator[None]:
    """Every call inside goes to one reader process of this process (restarted after a death);
    nested uses share the outer one."""
    global _BATCH
    if _BATCH is not None and _BATCH.owner == os.getpid():
        yield
        return
    outer, _BATCH = _BATCH, _Reader()
    try:
        yield
    finally:
        _BATCH.close()
        _BATCH = outer


def start_reader() -> None:
    """Open a reader for the rest of this process's life (a pool worker: it ends with it)."""
    global _BATCH
    if _BATCH is None or _BATCH.owner != os.getpid():
        _close_inherited()
        _BATCH = _Reader()


_BATCH: _Reader | None = None
# The parent ends of the pipes to this process's readers. A process forked from this one holds
# copies: it closes them, or a reader would never see its pipe close when this process dies.
_PIPES: weakref.WeakSet[Connection] = weakref.WeakSet()


def _close_inherited() -> None:
    for connection in list(_PIPES):
        connection.close()
    _PIPES.clear()


class _Reader:
    """One child process at a time, started when needed, answering calls in order."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        self._process: Any = None
        self._connection: Connection | None = None
        self._busy = False  # a call is under way (the child is reading a file)
        self._lock = threading.Lock()  # threads take turns: one file at a time

    def call(self, target: str, args: tuple) -> Any:
        with self._lock:
            return self._call(target, args)

    def _call(self, target: str, args: tuple) -> Any:
        if self._process is None:
            self._start()
        assert self._connection is not None
        timeout = settings.READER_TIMEOUT_SECONDS
        self._busy = True
        try:
            self._connection.send((target, args))
            if not self._connection.poll(timeout):
                self._end(kill=True)
                raise ReaderDied(timeout=timeout)
            status, value = self._connection.recv()
        except (EOFError, OSError) as exc:
            raise self._death() from exc
        self._busy = False
        if status == "memory":
            self._end(kill=True)  # a child that ran out of memory may be left half broken
            raise ReaderDied(memory=True)
        if status == "error":
            raise ReaderError(value)
        return value

    def close(self) -> None:
        self._end(kill=self._busy)  # busy: the call was interrupted (Ctrl-C), nobody waits

    def _start(self) -> None:
        context = parallel.worker_context()  # fork where possible, spawn on Windows
        ours, theirs = context.Pipe()
        # Only a child of the main thread may die with its parent: Linux ties that signal to
        # the thread that started the child.
        main = threading.current_thread() is threading.main_thread()
        process = context.Process(
            target=_serve, args=(theirs, ours, settings.READER_MEMORY_BYTES, os.getpid(), main),
            daemon=not multiprocessing.current_process().daemon)
        with parallel.interrupt_held():
            process.start()
        theirs.close()
        _PIPES.add(ours)
        self._process, self._connection = process, ours

    def _death(self) -> ReaderDied:
        process = self._process
        self._end(kill=True)
        code = process.exitcode if process is not None else None
        if code is not None and code < 0:
            return ReaderDied(signum=-code)
        return ReaderDied(exitcode=code)

    def _end(self, *, kill: bool) -> None:
        process, connection = self._process, self._connection
        self._process = self._connection = None
        self._busy = False
        if connection is not None:
            connection.close()  # the child reads end-of-file and leaves
        if process is None:
            return
        if kill:
            process.kill()
        process.join(5)
        if process.exitcode is None:
            process.kill()
            process.join()


def _serve(connection: Connection, parent_end: Connection, memory: int, parent: int,
           with_parent: bool) -> None:
    """The child: answer calls until the parent closes the pipe (or dies)."""
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
    while True:
        try:
            target, args = connection.recv()
        except (EOFError, OSError):
            return
        try:
            module, name = target.split(":")
            answer: tuple[str, Any] = ("ok", getattr(importlib.import_module(module), name)(*args))
        except MemoryError:
            answer = ("memory", None)
        except BaseException:  # the parent decides; the traceback goes to it
            answer = ("error", traceback.format_exc())
        try:
            connection.send(answer)
        except MemoryError:
            connection.send(("memory", None))


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
