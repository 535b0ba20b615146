"""Reading and writing in worker processes gives exactly what one process gives."""

from __future__ import annotations

import functools
import gc
import json
import os
import pickle
import tempfile
import threading
import time
from pathlib import Path

import pytest

from pipeline import parallel, settings
from pipeline.config import load_config
from pipeline.engine import consolidate

from .conftest import SAMPLES, workbook_cells


def _manifest(out):
    data = json.loads((out / settings.MANIFEST_FILE).read_text(encoding="utf-8"))
    data.pop("generated_at")
    return data


@pytest.mark.skipif(not parallel.can_fork(), reason="workbooks are written in forked workers")
@pytest.mark.parametrize("inbox, round_", [
    # Both in `make test-slow` (CI runs it); the golden test checks the workers' outputs.
    pytest.param("hop-thu", "dang-ky", marks=pytest.mark.slow),
    pytest.param("hop-thu-ket-qua", "ket-qua", marks=pytest.mark.slow)])
def test_parallel_run_equals_serial_run(request, tmp_path, monkeypatch, inbox, round_):
    config = load_config(SAMPLES / "tdkt.toml")
    # The serial run: the session's consolidation of the same inbox (fewer files than
    # PARALLEL_MIN_FILES, so read and written in one process).
    first = request.getfixturevalue({"dang-ky": "sample_run", "ket-qua": "results_run"}[round_])[0]
    assert len(list((SAMPLES / inbox).iterdir())) < settings.PARALLEL_MIN_FILES
    monkeypatch.setattr(settings, "PARALLEL_MIN_FILES", 2)
    monkeypatch.setattr(settings, "MAX_WORKERS", 2)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    again = consolidate(SAMPLES / inbox, tmp_path / "parallel", config, round=round_,
                        registration_inbox=SAMPLES / "hop-thu", run_date=first.run_date)
    assert_same_run(first, again)


def assert_same_run(first, again) -> None:
    """Two consolidations of one inbox found and wrote exactly the same (cell by cell, and
    the manifests but for their times)."""
    assert [f.to_dict() for f in first.findings] == [f.to_dict() for f in again.findings]
    written = sorted(p.relative_to(first.out_dir) for p in first.out_dir.rglob("*.xlsx"))
    assert written == sorted(p.relative_to(again.out_dir) for p in again.out_dir.rglob("*.xlsx"))
    assert len(written) > 30
    for relative in written:
        assert workbook_cells(first.out_dir / relative) == \
            workbook_cells(again.out_dir / relative), relative
    assert _manifest(first.out_dir) == _manifest(again.out_dir)


def test_parallel_jobs_keep_their_order_and_chunks_cover_everything(monkeypatch):
    monkeypatch.setattr(settings, "PARALLEL_MIN_FILES", 2)
    jobs = [functools.partial(pow, i, 2) for i in range(25)]  # picklable: spawn runs them too
    assert parallel.run_jobs(jobs, 2) == [i * i for i in range(25)]
    pieces = parallel.chunks(list(range(25)), 4)
    assert [x for piece in pieces for x in piece] == list(range(25))
    assert all(pieces) and len(pieces) <= 4
    assert parallel.worker_count(1) == 1


def _handshake(folder, index: int) -> bool:
    """A job that says it runs, then waits for this process's `alongside` task to answer:
    True when the answer came while the job was running."""
    (folder / f"worker-{index}").touch()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if (folder / "parent").exists():
            return True
        time.sleep(0.01)
    return False


def _answer(folder, seen: list) -> None:
    """The task run alongside: waits for a job to run, answers, and notes its process."""
    deadline = time.monotonic() + 20
    while not list(folder.glob("worker-*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    (folder / "parent").touch()
    seen.append(os.getpid())


def test_parallel_alongside_task_runs_once_here_while_the_workers_run(tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "PARALLEL_MIN_FILES", 2)
    seen: list[int] = []
    jobs = [functools.partial(_handshake, tmp_path, i) for i in range(2)]
    with parallel.alongside(functools.partial(_answer, tmp_path, seen)):
        answered = parallel.run_jobs(jobs, 2)
    assert answered == [True, True]  # the task ran while the jobs waited for it
    assert seen == [os.getpid()]  # in this process, once


def test_parallel_alongside_without_workers_runs_before_the_jobs_or_at_the_end(monkeypatch):
    order: list[str] = []
    with parallel.alongside(lambda: order.append("task")):
        parallel.run_jobs([lambda: order.append("job")] * 2, 1)
    assert order == ["task", "job", "job"]
    with parallel.alongside(lambda: order.append("late")):
        order.append("block")
    assert order[-2:] == ["block", "late"]
    with pytest.raises(KeyError), parallel.alongside(lambda: order.append("never")):
        raise KeyError("the block failed first")
    assert "never" not in order


def _fail() -> None:
    raise RuntimeError("the task failed")


def test_parallel_alongside_task_failure_is_raised_once_the_workers_stop(monkeypatch):
    monkeypatch.setattr(settings, "PARALLEL_MIN_FILES", 2)
    jobs = [functools.partial(pow, i, 2) for i in range(4)]
    with pytest.raises(RuntimeError, match="the task failed"), parallel.alongside(_fail):
        parallel.run_jobs(jobs, 2)
    assert parallel.run_jobs(jobs, 2) == [0, 1, 4, 9]  # nothing left pending


class _Cycle:
    """An object in a reference cycle that says when it is freed."""

    def __init__(self, freed: list) -> None:
        self.me, self.freed = self, freed

    def __del__(self) -> None:
        self.freed.append(True)


def test_parallel_worker_frees_a_jobs_garbage_before_the_next(monkeypatch):
    freed: list[bool] = []
    monkeypatch.setattr(parallel, "_JOBS", [lambda: _Cycle(freed) and "done"])
    was = gc.isenabled()
    gc.disable()  # only the worker's own collection can free the cycle
    try:
        assert parallel._run(0) == "done"
        assert freed == [True]
    finally:
        if was:
            gc.enable()


def _niceness(_: int) -> tuple[int, int | None]:
    policy = os.sched_getscheduler(0) if hasattr(os, "sched_getscheduler") else None
    return os.nice(0), policy


@pytest.mark.skipif(not hasattr(os, "nice"), reason="POSIX niceness")
def test_parallel_jobs_after_the_first_yield_to_the_alongside_task(monkeypatch):
    """While this process runs its task (the history store's rows), the longest job (first)
    keeps the priority this process has; the others run nicer, filling the cores around."""
    here = _niceness(0)
    idle = (min(19, here[0] + settings.BACKGROUND_NICENESS),
            os.SCHED_IDLE if hasattr(os, "SCHED_IDLE") else here[1])
    jobs = [functools.partial(_niceness, i) for i in range(6)]
    with parallel.alongside(lambda: None):
        during = parallel.run_jobs(jobs, 2)
    assert during[0] == here
    assert during[1:] == [idle] * 5
    assert parallel.run_jobs(jobs, 2) == [here] * 6  # no task: every job as this process
    assert _niceness(0) == here


def _later_value(later, _: int):
    try:
        return later.get()
    except parallel.LaterFailed as exc:
        return f"failed: {exc}"


def _set_after_the_jobs_start(later, folder, value) -> None:
    deadline = time.monotonic() + 20
    while not list(folder.glob("worker-*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    if value is None:
        later.fail()
        raise RuntimeError("the task failed")
    later.set(value)


def _waiting_job(later, folder, index: int):
    (folder / f"worker-{index}").touch()  # the job runs: the task may answer
    return _later_value(later, index)


def test_parallel_later_value_reaches_the_jobs_waiting_for_it(tmp_path):
    """Jobs already running wait for the value this process computes alongside them; a value
    set before they ask is there at once; in this process it is the value itself."""
    later = parallel.Later()
    try:
        jobs = [functools.partial(_waiting_job, later, tmp_path, i) for i in range(3)]
        with parallel.alongside(functools.partial(_set_after_the_jobs_start, later, tmp_path,
                                                  {"khớp": [1, 2]})):
            got = parallel.run_jobs(jobs, 2)
        assert got == [{"khớp": [1, 2]}] * 3
        assert parallel.resolved(later) == {"khớp": [1, 2]} and parallel.resolved(7) == 7
    finally:
        later.close()


def test_parallel_later_failed_releases_the_jobs_and_the_task_error_is_raised(tmp_path):
    later = parallel.Later()
    try:
        jobs = [functools.partial(_waiting_job, later, tmp_path, i) for i in range(3)]
        with pytest.raises(RuntimeError, match="the task failed"), parallel.alongside(
                functools.partial(_set_after_the_jobs_start, later, tmp_path, None)):
            parallel.run_jobs(jobs, 2)  # returns: no job waits for ever
        assert _later_value(later, 0).startswith("failed")
    finally:
        later.close()
    unset = parallel.Later()
    try:
        with pytest.raises(parallel.LaterFailed):
            unset.get()  # asked for here before it is set: never a wait for oneself
    finally:
        unset.close()


def test_parallel_validation_in_batches_finds_what_one_run_finds(sample_run, monkeypatch):
    """The inbox's sheets are validated a few files at a time while the next are read: the
    same findings, in the same order, as validating them all at once (every check is within
    one file)."""
    import contextlib

    from pipeline.engine import consolidation
    from pipeline.store.database import open_store

    first = sample_run[0]
    validation = [f for s in first.submissions for found in s.validation.values() for f in found]
    assert len(validation) >= 3  # the samples hold files with values Pandera refuses
    from pipeline import engine

    monkeypatch.setattr(settings, "VALIDATION_BATCH", 8)
    monkeypatch.setattr(settings, "VALIDATION_TAIL", 1)
    sizes: list[int] = []
    validated = engine.validated_submissions

    def spy(batch, vocabs):
        sizes.append(len(batch))
        return validated(batch, vocabs)

    monkeypatch.setattr(engine, "validated_submissions", spy)
    with contextlib.closing(open_store(first.out_dir.parent.parent / "tdkt-lich-su.sqlite")) \
            as store:
        again = consolidation(SAMPLES / "hop-thu", load_config(SAMPLES / "tdkt.toml"),
                              run_date=first.run_date, store=store)
    assert [f.to_dict() for f in again.findings] == [f.to_dict() for f in first.findings]
    assert again.units.equals(first.units)
    # Batches of 8, then halving near the end: the last file is validated alone.
    assert sum(sizes) == len(again.submissions) > 16 and sizes[0] == 8
    tail = sizes[sizes.index(next(n for n in sizes if n < 8)):]
    assert tail == sorted(tail, reverse=True) and len(tail) >= 3 and sizes[-2:] == [1, 0]


def _set_now(later, value) -> None:
    later.set(value)


def test_parallel_later_value_reaches_spawned_workers(monkeypatch):
    """Spawned workers (Windows) receive the Later with their jobs, unset: they read the
    value this process sets meanwhile."""
    monkeypatch.setenv(settings.START_METHOD_ENV, "spawn")
    later = parallel.Later()
    try:
        jobs = [functools.partial(_later_value, later, i) for i in range(3)]
        with parallel.alongside(functools.partial(_set_now, later, ["Nguyễn Văn A"])):
            assert parallel.run_jobs(jobs, 2) == [["Nguyễn Văn A"]] * 3
    finally:
        later.close()


def test_parallel_collections_paused_can_set_the_survivors_aside_until_unfrozen():
    """collections_paused(freeze_survivors=True): no collection inside; on leaving, what is
    alive is out of the collector's reach (frozen) and collections resume; gc.unfreeze()
    hands it back."""
    from pipeline.heap import collections_paused

    gc.unfreeze()
    was = gc.isenabled()
    with collections_paused(freeze_survivors=True):
        assert not gc.isenabled()
        made = [[n] for n in range(5000)]
    assert gc.isenabled() == was
    assert gc.get_freeze_count() >= len(made)
    gc.unfreeze()
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("fails", [False, True])
def test_parallel_consolidate_leaves_no_object_set_aside(fails, tmp_path, monkeypatch):
    """A consolidation sets the round's objects aside from the collector while the workbooks
    are written, and hands them all back when it ends, written or failed: nothing stays
    frozen in a process that goes on (the scheduler, the tests)."""
    from pipeline.rounds import registration

    gc.unfreeze()
    if fails:
        def broken(*args, **kwargs):
            raise OSError("disk full")

        monkeypatch.setattr(registration, "write_reports", broken)
    config = load_config(SAMPLES / "tdkt.toml")
    if fails:
        with pytest.raises(OSError):
            consolidate(SAMPLES / "hop-thu", tmp_path / "out", config)
    else:
        consolidate(SAMPLES / "hop-thu", tmp_path / "out", config)
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()


def test_parallel_later_files_left_by_killed_runs_are_removed(tmp_path, monkeypatch):
    """A run killed before it could remove its value's file leaves it in the temporary folder:
    the next process to make a Later removes those older than a day, and nothing else."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(parallel, "_swept", False)
    day = parallel.STALE_LATER_SECONDS
    stale, recent = tmp_path / "tdkt-abc.later", tmp_path / "tdkt-def.later"
    other = tmp_path / "tdkt-ghi.txt"
    for path in (stale, recent, other):
        path.write_bytes(b"x")
    old = time.time() - day - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    later = parallel.Later()
    try:
        assert not stale.exists() and recent.exists() and other.exists()
        assert Path(later._path).parent == tmp_path and Path(later._path).exists()
    finally:
        later.close()
    assert not Path(later._path).exists()
    stale.write_bytes(b"x")
    os.utime(stale, (old, old))
    parallel.Later().close()  # once per process: a run makes several
    assert stale.exists()


def _wait_for_later(later, started: Path) -> None:
    started.touch()
    later.get()


@pytest.mark.parametrize("answer", ["set", "close"])
def test_parallel_a_job_killed_while_it_waits_never_holds_up_the_value(tmp_path, answer):
    """A reader waiting for the registry is killed (Ctrl-C stops the busy readers, a time
    limit too): this process then sets the value, or closes it as the run ends, at once.
    A multiprocessing Event would wait for ever there for the dead waiter to wake."""
    later = parallel.Later()
    started = tmp_path / "started"
    worker = parallel.worker_context().Process(target=_wait_for_later, args=(later, started))
    worker.start()
    answered = None
    try:
        deadline = time.monotonic() + 20
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # inside get, waiting
        assert worker.is_alive()
        worker.kill()
        worker.join(10)
        answered = threading.Thread(target=later.set if answer == "set" else later.close,
                                    args=(["Nguyễn Văn A"],) if answer == "set" else (),
                                    daemon=True)
        answered.start()
        answered.join(10)
        assert not answered.is_alive(), f"{answer} waited for the killed job"
    finally:
        worker.kill()
        if answered is None or not answered.is_alive():  # else close would wait as well
            later.close()
    assert not Path(later._path).exists() and not Path(later._part).exists()


def test_parallel_later_seen_from_a_job_once_whole(tmp_path):
    """A job sees no value until it is whole (written aside, then renamed into place); once
    its file is removed (the run is over), it stops waiting and is told so."""
    later = parallel.Later()
    copy = pickle.loads(pickle.dumps(later))  # as a spawned job receives it
    copy._owner = -1  # a job: not the process computing it
    try:
        assert not copy.ready() and not later.ready()
        Path(later._part).write_bytes(b"\x80\x05 half written")  # a set under way
        assert not copy.ready()
        later.set({"khớp": 1})
        assert not Path(later._part).exists()
        assert copy.ready() and copy.get() == {"khớp": 1}
    finally:
        later.close()
    gone = pickle.loads(pickle.dumps(later))
    gone._owner = -1
    assert gone.ready()
    with pytest.raises(parallel.LaterFailed, match="closed"):
        gone.get()
