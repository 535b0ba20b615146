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

    def dying(data, suffix, name, limits):
        if name == VICTIM:
            death()
        return judged(data, suffix, name, limits)

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
