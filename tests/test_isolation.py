"""The reader of a school's bytes runs in a child process: when it dies (an abort, a runaway
allocation, a file it never finishes), that file ends as `unreadable-workbook` and the rest of
the batch is consolidated — read in one process or by the parallel reader.

A test-only hook replaces the reader's function (`read._judged`) for one file of a batch of
three; the reader process is forked after the hook is set, so it runs the hook. The good files
are before and after the dying one: the batch's reader must be restarted for the third.
"""

from __future__ import annotations

import os
import sys
import time
import unicodedata

import pytest

from pipeline import parallel, settings
from pipeline.config import load_config
from pipeline.engine import consolidate
from pipeline.ingest import isolated, read

from .conftest import SAMPLES
from .test_hostile import _assert_no_formula, _state
from .test_hostile_limits import _stray, _with_staff_xml

FILES = ("dang-ky_01001.xlsx", "dang-ky_01004.xlsx", "dang-ky_01005.xlsx")
VICTIM = "dang-ky_01004.xlsx"
DIED = ("Không mở được tệp “dang-ky_01004.xlsx”: trình đọc bảng tính dừng đột ngột khi mở tệp "
        "(tệp có cấu trúc bất thường hoặc cần quá nhiều bộ nhớ). Tệp có thể bị hỏng khi chép, "
        "khi gửi hoặc tải về chưa xong.")

pytestmark = pytest.mark.skipif(not parallel.can_fork(),
                                reason="a spawned reader does not see the test's hook")


@pytest.fixture
def batch(office):
    root = office()
    for name in FILES:
        (root / "hop-thu" / name).write_bytes((SAMPLES / "hop-thu" / name).read_bytes())
    return root


def _hook(monkeypatch, death) -> None:
    """Make the reader run `death()` instead of reading the victim file."""
    judged = read._judged

    def dying(data, suffix, name, *rest):
        if name == VICTIM:
            death()
        return judged(data, suffix, name, *rest)

    monkeypatch.setattr(read, "_judged", dying)


def _parallel_reader(monkeypatch) -> None:
    """Read the three files with two worker processes (the path of 64 files and more)."""
    monkeypatch.setattr(settings, "PARALLEL_MIN_FILES", 2)
    monkeypatch.setattr(settings, "MAX_WORKERS", 2)
    monkeypatch.setattr("os.cpu_count", lambda: 2)


def _victim_findings(root):
    """(code, message) of the victim's findings, after checking that the inbox is untouched,
    no written cell is a formula and the two good schools are consolidated."""
    before = _state(root / "hop-thu")
    out = root / "ra"
    result = consolidate(root / "hop-thu", out, load_config(root / "tdkt.toml"))
    assert _state(root / "hop-thu") == before
    _assert_no_formula(out)
    assert result.units.loc["01001", "status"] == "valid"
    assert result.units.loc["01005", "status"] == "valid"
    assert result.units.loc["01004", "status"] != "valid"
    return [(f.code, f.message) for f in result.findings
            if f.file == unicodedata.normalize("NFC", VICTIM)]


@pytest.mark.parametrize("reader", ["serial", "parallel"])
def test_isolation_reader_aborting_ends_as_a_finding_for_its_file(batch, monkeypatch, reader):
    _hook(monkeypatch, os.abort)  # SIGABRT, as a Rust allocation failure ends
    if reader == "parallel":
        _parallel_reader(monkeypatch)
    assert _victim_findings(batch) == [("unreadable-workbook", DIED)]


def test_isolation_real_calamine_abort_ends_as_a_finding(batch, monkeypatch):
    """With the size check switched off, python-calamine itself tries to allocate 512 GB for
    the issue's file and aborts the process it runs in: the reader's, not this one."""
    data = _with_staff_xml(read_bytes := (SAMPLES / "hop-thu" / VICTIM).read_bytes(),
                           _stray("XFD0001048576"))
    assert data != read_bytes
    (batch / "hop-thu" / VICTIM).write_bytes(data)
    monkeypatch.setattr(read, "_too_far", lambda extent, limits: False)
    assert _victim_findings(batch) == [("unreadable-workbook", DIED)]


@pytest.mark.skipif(sys.platform != "linux", reason="the memory cap is set on Linux")
def test_isolation_reader_memory_is_capped(batch, monkeypatch):
    """3 GB more than the reader may hold: the allocation fails in the reader (without the cap
    it would succeed: the pages are never touched)."""
    _hook(monkeypatch, lambda: bytearray(3 << 30))
    (code, message), = _victim_findings(batch)
    assert code == "unreadable-workbook" and "cần quá nhiều bộ nhớ" in message


def test_isolation_reader_that_never_finishes_is_given_up(batch, monkeypatch):
    monkeypatch.setattr(settings, "READER_TIMEOUT_SECONDS", 1)
    _hook(monkeypatch, lambda: time.sleep(60))
    started = time.monotonic()
    (code, message), = _victim_findings(batch)
    assert code == "unreadable-workbook" and "đọc tệp quá 1 giây vẫn chưa xong" in message
    assert time.monotonic() - started < 30


def test_isolation_our_own_mistake_is_raised_not_reported():
    with pytest.raises(isolated.ReaderError, match="ValueError"):
        isolated.call("builtins:int", "không phải số")
    assert isolated.call("builtins:len", "abc") == 3  # a fresh reader after the error


# The pool of readers itself (isolated.imap), on items that are numbers: every item answered
# in order, a death blamed on its item only, the items after it read by a fresh reader.

def _square_unless(item: int) -> int:
    """item², except for the items the test names: those die, run out of memory, hang or
    raise (forked readers see the module's _BAD as the test set it)."""
    action = _BAD.get(item)
    if action == "abort":
        os.abort()
    if action == "memory":
        bytearray(3 << 30)
    if action == "hang":
        time.sleep(60)
    if action == "raise":
        raise ValueError("our own mistake")
    return item * item


_BAD: dict[int, str] = {}


def _died(item, why):
    return ("died", item, why.signum, why.memory, why.timeout)


@pytest.mark.parametrize("workers", [1, 2])
def test_isolation_pool_blames_only_the_item_its_reader_died_on(monkeypatch, workers):
    # 300 items: runs of several per message, so the victim's run mates are read again alone.
    monkeypatch.setattr(sys.modules[__name__], "_BAD", {7: "abort", 150: "abort"})
    got = list(isolated.imap(_square_unless, range(300), workers, _died))
    expected = [i * i for i in range(300)]
    expected[7] = ("died", 7, 6, False, None)
    expected[150] = ("died", 150, 6, False, None)
    assert got == expected


@pytest.mark.skipif(sys.platform != "linux", reason="the memory cap is set on Linux")
def test_isolation_pool_reader_out_of_memory_answers_and_is_replaced(monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "_BAD", {3: "memory"})
    got = list(isolated.imap(_square_unless, range(100), 2, _died))
    assert got[3] == ("died", 3, None, True, None)
    assert got[:3] + got[4:] == [i * i for i in range(100) if i != 3]


def test_isolation_pool_gives_up_on_an_item_past_its_time(monkeypatch):
    monkeypatch.setattr(settings, "READER_TIMEOUT_SECONDS", 1)
    monkeypatch.setattr(sys.modules[__name__], "_BAD", {40: "hang"})
    started = time.monotonic()
    got = list(isolated.imap(_square_unless, range(200), 2, _died))
    assert got[40] == ("died", 40, None, False, 1)
    assert got[:40] + got[41:] == [i * i for i in range(200) if i != 40]
    assert time.monotonic() - started < 30


def test_isolation_pool_raises_our_own_mistake_and_stops_its_readers(monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "_BAD", {5: "raise"})
    with pytest.raises(isolated.ReaderError, match="our own mistake"):
        list(isolated.imap(_square_unless, range(50), 2, _died))
    assert isolated.call("builtins:len", "abc") == 3  # nothing left behind in the way


def test_isolation_pool_stopped_early_ends_its_readers():
    import multiprocessing
    results = isolated.imap(_square_unless, range(1000), 2, _died)
    assert next(results) == 0
    results.close()
    assert multiprocessing.active_children() == []


def test_isolation_ctrl_c_while_a_reader_ends_is_not_lost(monkeypatch):
    """A Ctrl-C landing while `call` waits for its reader to end reaches the caller (a
    reader ended by a finaliser would have it ignored, and the run go on)."""
    def interrupted(slot, *, kill):
        slot.process.kill()
        slot.process.join()
        raise KeyboardInterrupt

    monkeypatch.setattr(isolated._Slot, "end", interrupted)
    with pytest.raises(KeyboardInterrupt):
        isolated.call("builtins:len", "abc")


def test_isolation_runs_hold_a_few_light_items_and_a_heavy_or_suspect_one_alone():
    from collections import deque

    runs = isolated._Runs(most=3, weight=100, weights=[10, 10, 10, 10, 500, 60, 60, 10, 10])
    waiting, suspects = deque(range(9)), {7}
    taken = []
    while waiting:
        taken.append(runs.take(waiting, suspects))
    assert taken == [[0, 1, 2], [3], [4], [5], [6], [7], [8]]


def test_isolation_runs_shrink_near_the_end_to_one_item():
    """With `spread`, a run holds at most 1/spread of the items left: full runs first, then
    smaller ones, the last ones of one item; every item once, in order."""
    from collections import deque

    runs = isolated._Runs(most=32, weight=10**9, weights=[0] * 400, spread=8)
    waiting: deque[int] = deque(range(400))
    sizes, order = [], []
    while waiting:
        run = runs.take(waiting, set())
        sizes.append(len(run))
        order += run
    assert order == list(range(400))
    assert sizes[:5] == [32] * 5
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[-8:] == [1] * 8
    assert len(sizes) < 400 // 32 + 40  # a few more messages, not one per item


# Work ahead: `prepare` in the readers, `on_start` here while they read

def _record_run(path: str, items: list[int]) -> None:
    """A `prepare` that notes each run it is given (a file per reader process)."""
    with open(f"{path}.{os.getpid()}", "a", encoding="utf-8") as notes:
        notes.write(",".join(map(str, items)) + "\n")


def test_isolation_pool_prepares_each_run_in_its_reader_and_works_here_meanwhile(tmp_path):
    """prepare(run) runs in the reader before the run's items, every item in exactly one run;
    on_start runs here once, after the readers have their first runs, before any answer is
    taken; the answers are unchanged."""
    import functools
    import multiprocessing

    order: list[str] = []
    prepare = functools.partial(_record_run, str(tmp_path / "runs"))
    got = []
    for answer in isolated.imap(_square_unless, range(300), 2, _died, prepare=prepare,
                                on_start=lambda: order.append("started")):
        order.append("answer")
        got.append(answer)
    assert got == [i * i for i in range(300)]
    assert order[0] == "started" and order.count("started") == 1
    runs = [line for notes in tmp_path.glob("runs.*")
            for line in notes.read_text(encoding="utf-8").split()]
    assert len(list(tmp_path.glob("runs.*"))) == 2  # both readers prepared runs
    assert sorted(int(i) for run in runs for i in run.split(",")) == list(range(300))
    assert multiprocessing.active_children() == []


def test_isolation_pool_stops_its_readers_when_the_work_meanwhile_fails():
    """An error raised by on_start stops the readers and reaches the caller; with no items
    on_start still runs (it is work the caller needs done in any case)."""
    import multiprocessing

    def failing() -> None:
        raise RuntimeError("the registry cannot be read")

    with pytest.raises(RuntimeError, match="registry"):
        list(isolated.imap(_square_unless, range(300), 2, _died, on_start=failing))
    assert multiprocessing.active_children() == []
    ran = []
    assert list(isolated.imap(_square_unless, [], 2, _died,
                              on_start=lambda: ran.append(1))) == []
    assert ran == [1]


def test_isolation_inbox_read_while_the_registry_loads_is_read_as_with_it(batch, monkeypatch):
    """read_inbox given the registry's loader: the readers start on the files at once and
    read their first files ahead while it loads (slowly here); every submission is what a
    registry given at once makes, the loader ran once, no reader or value file is left."""
    import multiprocessing
    import tempfile

    from pipeline.engine import read_inbox
    from pipeline.forms.definitions import load_forms
    from pipeline.rounds.base import office_registry

    _parallel_reader(monkeypatch)
    forms = load_forms()
    registry, _ = office_registry(load_config(batch / "tdkt.toml"), forms)
    loads = []

    def slow_load():
        loads.append(time.monotonic())
        time.sleep(1.0)  # the readers read ahead meanwhile
        return registry

    left_before = set(os.listdir(tempfile.gettempdir()))
    ahead = read_inbox(batch / "hop-thu", forms, slow_load, "dang-ky", workers=2)
    plain = read_inbox(batch / "hop-thu", forms, registry, "dang-ky", workers=2)
    assert len(loads) == 1
    assert [s.file for s in ahead] == [s.file for s in plain] == sorted(FILES)
    for a, b in zip(ahead, plain, strict=True):
        assert (a.unit_code, a.sha256, a.findings) == (b.unit_code, b.sha256, b.findings)
        assert set(a.frames) == set(b.frames)
        for sheet in a.frames:
            assert a.frames[sheet].equals(b.frames[sheet])
    assert multiprocessing.active_children() == []
    assert not {n for n in set(os.listdir(tempfile.gettempdir())) - left_before
                if n.endswith(".later")}


def test_isolation_read_job_reads_ahead_only_until_the_registry_comes(batch):
    """A reader's job reads a run's files ahead while the registry is on its way (and nothing
    once it has come); a file read ahead is then made a submission from what was read."""
    from pipeline.engine import ReadFile, _ReadJob
    from pipeline.forms.definitions import load_forms
    from pipeline.rounds.base import office_registry

    forms = load_forms()
    registry, _ = office_registry(load_config(batch / "tdkt.toml"), forms)
    paths = sorted((batch / "hop-thu").glob("*.xlsx"))
    later = parallel.Later()
    try:
        job = _ReadJob(batch / "hop-thu", forms, later, "dang-ky")
        job.prepare(paths)
        assert set(job._ahead) == set(paths)
        assert all(isinstance(r, ReadFile) for r in job._ahead.values())
        later.set(registry)
        subs = [job.read(p) for p in paths]
        assert job._ahead == {}
        assert [s.unit_code for s in subs] == ["01001", "01004", "01005"]
        fresh = _ReadJob(batch / "hop-thu", forms, later, "dang-ky")
        fresh.prepare(paths)  # the registry has come: nothing read ahead
        assert fresh._ahead == {}
    finally:
        later.close()
