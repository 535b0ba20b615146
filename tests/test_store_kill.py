"""A run killed while it records its round: the store stays as it was, the outputs too."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from pipeline import parallel, settings
from pipeline.config import load_config
from pipeline.engine import consolidate
from pipeline.status import UnitStatus
from pipeline.store.database import open_store

from .conftest import SAMPLES, workbook_cells

# The child stops once the round's rows are written, inside the open transaction, says so on
# stdout and waits there to be killed: the parent kills it as soon as it reads that line.
CHILD = textwrap.dedent("""
    import signal, sys
    from pathlib import Path
    from pipeline.config import load_config
    from pipeline.engine import consolidate
    from pipeline.store.database import Store

    original = Store.record_round

    def stalled(store, run):  # the rows are written, the transaction not yet committed
        run_id = original(store, run)
        print("recording" if store.in_transaction else "committed", flush=True)
        signal.pause()
        return run_id

    Store.record_round = stalled
    inbox, out, config = sys.argv[1:4]
    consolidate(Path(inbox), Path(out), load_config(Path(config)))
""")


def _snapshot(store) -> dict:
    connection = open_store(store)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {table: connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("runs", "persons", "staff", "proposals", "inputs", "findings")}
    finally:
        connection.close()


def _first_run(office, tmp_path):
    """An office of two sample schools, consolidated once: (root, out, config, result)."""
    root = office()
    for name in ("dang-ky_01001.xlsx", "dang-ky_01002.xlsx"):
        (root / "hop-thu" / name).write_bytes((SAMPLES / "hop-thu" / name).read_bytes())
    out = tmp_path / "out"
    config = load_config(root / "tdkt.toml")
    return root, out, config, consolidate(root / "hop-thu", out, config)


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX-only")
def test_store_kill_while_recording_keeps_store_and_outputs(office, tmp_path):
    root, out, config, first = _first_run(office, tmp_path)
    store = out / "tdkt-lich-su.sqlite"
    before = _snapshot(store)
    cells = {p.name: workbook_cells(p) for p in first.out_dir.glob("*.xlsx")}
    # The inbox grows; the next run is killed in the middle of recording it.
    (root / "hop-thu" / "dang-ky_02001.xlsx").write_bytes(
        (SAMPLES / "hop-thu" / "dang-ky_02001.xlsx").read_bytes())
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root / "hop-thu"), str(out),
                              str(root / "tdkt.toml")], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "recording"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
    assert _snapshot(store) == before
    assert {p.name: workbook_cells(p) for p in first.out_dir.glob("*.xlsx")} == cells
    again = consolidate(root / "hop-thu", out, config)
    after = _snapshot(store)
    assert after["runs"] == 1 and after["staff"] > before["staff"]
    assert again.units.loc["02001", "status"] == UnitStatus.VALID


def test_store_rows_failing_during_the_write_keep_store_and_outputs(office, tmp_path,
                                                                    monkeypatch):
    """The round's rows are written while the workbooks are (parallel.alongside): when that
    fails, the run fails, the store and the outputs stay as they were."""
    from pipeline.store import record

    root, out, config, first = _first_run(office, tmp_path)
    store = out / "tdkt-lich-su.sqlite"
    before = _snapshot(store)
    cells = {p.name: workbook_cells(p) for p in first.out_dir.glob("*.xlsx")}
    log = json.loads((out / settings.RUN_LOG).read_text(encoding="utf-8").splitlines()[-1])
    assert log["seconds"]["record_rows"] > 0  # the rows' own time is logged

    written = record.PendingRecord.write

    def fails_after_writing(pending):
        written(pending)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(record.PendingRecord, "write", fails_after_writing)
    (root / "hop-thu" / "dang-ky_02001.xlsx").write_bytes(
        (SAMPLES / "hop-thu" / "dang-ky_02001.xlsx").read_bytes())
    with pytest.raises(sqlite3.OperationalError):
        consolidate(root / "hop-thu", out, config)
    assert _snapshot(store) == before
    assert {p.name: workbook_cells(p) for p in first.out_dir.glob("*.xlsx")} == cells
    assert not list(first.out_dir.parent.glob(".*tmp-*"))  # no staging folder left


@pytest.mark.skipif(not parallel.can_fork(), reason="workbooks are written in forked workers")
def test_store_matching_failing_while_workers_write_releases_them(office, tmp_path,
                                                                 monkeypatch):
    """The persons are matched while worker processes write the workbooks, the office
    workbook waiting for the matches: when the matching fails, that workbook's job is
    released (no run waits for ever), the run fails, the store and the outputs stay."""
    from pipeline.store import record

    root, out, config, first = _first_run(office, tmp_path)
    store = out / "tdkt-lich-su.sqlite"
    before = _snapshot(store)
    cells = {p.name: workbook_cells(p) for p in first.out_dir.glob("*.xlsx")}
    monkeypatch.setattr(settings, "PARALLEL_MIN_FILES", 2)
    monkeypatch.setattr(settings, "MAX_WORKERS", 2)
    monkeypatch.setattr("os.cpu_count", lambda: 2)

    def fails(*_args):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(record, "match_persons", fails)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError):
        consolidate(root / "hop-thu", out, config)
    assert time.monotonic() - started < 60
    assert _snapshot(store) == before
    assert {p.name: workbook_cells(p) for p in first.out_dir.glob("*.xlsx")} == cells
    assert not list(first.out_dir.parent.glob(".*tmp-*"))


def test_store_held_by_another_program_is_said_in_vietnamese(office, tmp_path, monkeypatch):
    """Another program writing the store (a second tdkt, a database browser) when the round is
    to be recorded: `tdkt consolidate` says so in Vietnamese, exit 2, and changes nothing."""
    from click.testing import CliRunner

    from pipeline.cli import main
    from pipeline.store import database

    root, out, _config, first = _first_run(office, tmp_path)
    store = out / "tdkt-lich-su.sqlite"
    before = _snapshot(store)
    cells = {p.name: workbook_cells(p) for p in first.out_dir.glob("*.xlsx")}
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 200)  # it waits 10 s before giving up
    other = sqlite3.connect(store, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        result = CliRunner().invoke(main, ["consolidate", str(root / "hop-thu"), "--out",
                                           str(out), "--config", str(root / "tdkt.toml")])
    finally:
        other.close()
    assert result.exit_code == 2, result.output
    assert f"Không ghi được vào kho lịch sử {store}: một chương trình khác đang ghi" \
        in result.output
    assert "Traceback" not in result.output and "locked" not in result.output
    assert _snapshot(store) == before
    assert {p.name: workbook_cells(p) for p in first.out_dir.glob("*.xlsx")} == cells
