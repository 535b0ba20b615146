"""The history store: creation, migration from version 1, replacing a round, surviving a kill."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.store import database as store
from pipeline.store.database import (
    SCHEMA_VERSION,
    RoundRecord,
    StoreError,
    add_awards,
    awards_of,
    open_store,
    person_titles,
    persons,
    record_round,
    round_runs,
    schema_version,
    unit_titles,
    upsert_person,
)

ROOT = Path(__file__).resolve().parent.parent
V1_SQL = Path(__file__).parent / "files" / "store_v1.sql"
TABLES = {"runs", "inputs", "units", "persons", "staff", "proposals", "findings", "decisions",
          "awards", "person_links"}


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _record(year: str, round: str, person_ids: list[int], unit: str = "TH01",
            n_staff: int = 3) -> RoundRecord:
    """A small round: one input, one unit, `n_staff` staff rows spread over `person_ids`.

    The first row of each person registers LĐTT, the others nothing ("khong_dang_ky"); the unit
    registers its Tổ 1 as TLĐTT.
    """
    people = [{"person_id": person_ids[i % len(person_ids)], "unit_code": unit, "row": 7 + i,
               "full_name": f"Người {i}", "birth_date": "1980-01-01", "sex": "Nữ",
               "position": "Giáo viên", "staff_group": "GV", "grade": "Hạng III",
               "title": "LĐTT" if i < len(person_ids) else "khong_dang_ky", "commendation": None}
              for i in range(n_staff)]
    return RoundRecord(
        school_year=year, round=round, run_at="2025-05-20T09:00:00+07:00",
        inputs=[{"file": f"{unit}.xlsx", "sha256": "00ff", "unit_code": unit,
                 "classification": "accepted"}],
        units=[{"unit_code": unit, "unit_name": "Trường Tiểu học Hòa Bình", "level": "TH",
                "block": "Khối 1", "status": "accepted"}],
        people=people,
        proposals=[{"person_id": None, "unit_code": unit, "subject": "collective",
                    "name": "Tổ 1", "kind": "collective_title", "code": "TLĐTT",
                    "result": "registered"}],
        decisions=[{"unit_code": unit, "person_id": person_ids[0], "name": "Người 0",
                    "kind": "title", "code": "LĐTT", "rule_id": "ldtt-ty-le", "result": "pass",
                    "citation": "Điều 24"}],
        findings=[{"code": "bad-date", "file": f"{unit}.xlsx", "sheet": "Cá nhân", "cell": "F9",
                   "column": "Ngày sinh", "value": "31/02/1980", "expected": None,
                   "unit": unit, "severity": "error", "message": "Ngày không hợp lệ.",
                   "hint": ""}],
    )


def _counts(conn: sqlite3.Connection, year: str, round: str) -> dict[str, int]:
    """Rows per table belonging to the runs of one year and round."""
    return {table: conn.execute(
        f"SELECT count(*) FROM {table} t JOIN runs r ON r.id = t.run_id "
        "WHERE r.school_year = ? AND r.round = ?", (year, round)).fetchone()[0]
        for table in ("inputs", "units", "staff", "proposals", "decisions", "findings")}


def _checksum(conn: sqlite3.Connection, year: str, round: str) -> str:
    """A digest of every staff and proposal row of one year and round, with its run."""
    digest = hashlib.sha256()
    for table in ("staff", "proposals"):
        rows = conn.execute(
            f"SELECT r.id, r.run_at, t.* FROM {table} t JOIN runs r ON r.id = t.run_id "
            "WHERE r.school_year = ? AND r.round = ? ORDER BY 1, 2, 3, 4, 5, 6, 7",
            (year, round))
        for row in rows:
            digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    conn = open_store(tmp_path / "history" / "tdkt.sqlite")
    yield conn
    conn.close()


def _two_persons(conn: sqlite3.Connection) -> list[int]:
    return [upsert_person(conn, "Nguyễn Thị Lan", "nguyen thi lan", "1985-03-12", "2024-2025"),
            upsert_person(conn, "Trần Văn Đức", "tran van duc", "1979-11-02", "2024-2025")]


# General


def test_store_new_has_current_schema(tmp_path: Path, db: sqlite3.Connection) -> None:
    assert (tmp_path / "history" / "tdkt.sqlite").exists()
    assert schema_version(db) == SCHEMA_VERSION == len(store.MIGRATIONS)
    assert _tables(db) >= TABLES
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000


def test_store_reopen_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "tdkt.sqlite"
    conn = open_store(path)
    ids = _two_persons(conn)
    record_round(conn, _record("2024-2025", "dang-ky", ids))
    conn.close()
    conn = open_store(path)
    assert [r["round"] for r in round_runs(conn)] == ["dang-ky"]
    assert _counts(conn, "2024-2025", "dang-ky")["staff"] == 3
    conn.close()


def test_store_upsert_person_finds_existing(db: sqlite3.Connection) -> None:
    first = _two_persons(db)
    assert _two_persons(db) == first
    assert [p["full_name"] for p in persons(db)] == ["Nguyễn Thị Lan", "Trần Văn Đức"]
    # Inside the caller's transaction it joins it instead of committing.
    db.execute("BEGIN IMMEDIATE")
    new = upsert_person(db, "Lê Văn Hải", "le van hai", None, "2025-2026")
    assert db.in_transaction
    db.execute("ROLLBACK")
    assert new not in [p["id"] for p in persons(db)]


def test_store_titles_and_awards(db: sqlite3.Connection) -> None:
    lan, duc = _two_persons(db)
    record_round(db, _record("2024-2025", "dang-ky", [lan, duc]))
    assert add_awards(db, [{"person_id": lan, "unit_code": "TH01", "school_year": "2023-2024",
                            "kind": "title", "code": "CSTĐCS", "decision_no": "123/QĐ-UBND",
                            "decision_date": "2024-06-30"}], source="import") == 1
    assert [(a["school_year"], a["code"], a["source"]) for a in awards_of(db, lan)] == [
        ("2023-2024", "CSTĐCS", "import")]
    assert [(t["school_year"], t["round"], t["code"], t["source"], t["result"])
            for t in person_titles(db, lan)] == [
        ("2023-2024", None, "CSTĐCS", "import", "awarded"),
        ("2024-2025", "dang-ky", "LĐTT", "proposal", "registered"),
    ]
    assert [(t["school_year"], t["person_id"], t["kind"], t["code"], t["result"])
            for t in unit_titles(db, "TH01")] == [
        ("2023-2024", lan, "title", "CSTĐCS", "awarded"),
        ("2024-2025", None, "collective_title", "TLĐTT", "registered"),
        ("2024-2025", lan, "title", "LĐTT", "registered"),
        ("2024-2025", duc, "title", "LĐTT", "registered"),
    ]
    with pytest.raises(ValueError):
        add_awards(db, [], source="guess")


def test_store_person_titles_follow_confirmed_links(db: sqlite3.Connection) -> None:
    lan, duc = _two_persons(db)
    lan_again = upsert_person(db, "Nguyễn Thị Lan", "nguyen thi lan", None, "2025-2026")
    record_round(db, _record("2025-2026", "dang-ky", [lan_again]))
    add_awards(db, [{"person_id": lan, "school_year": "2023-2024", "kind": "title",
                     "code": "CSTĐCS"}], source="decision")
    assert len(person_titles(db, lan)) == 1
    store.link_persons(db, lan_again, lan, "Phòng GD&ĐT", "2025-10-01T10:00:00+07:00")
    assert [t["school_year"] for t in person_titles(db, lan)] == ["2023-2024", "2025-2026"]
    assert person_titles(db, lan) == person_titles(db, lan_again)
    assert person_titles(db, duc) == []


# Migration and versions


def test_store_migrates_v1_file(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(V1_SQL.read_text(encoding="utf-8"))
    old.close()

    conn = open_store(path)
    assert schema_version(conn) == SCHEMA_VERSION
    assert _tables(conn) >= TABLES
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert round_runs(conn) == [{"id": 1, "school_year": "2024-2025", "round": "dang-ky",
                                 "run_at": "2024-10-15T08:30:00+07:00"}]
    assert [p["full_name"] for p in persons(conn)] == ["Nguyễn Thị Lan", "Trần Văn Đức"]
    assert person_titles(conn, 1) == [{
        "school_year": "2024-2025", "round": "dang-ky", "unit_code": "TH01", "kind": "title",
        "code": "CSTĐCS", "source": "proposal", "result": "registered"}]
    assert _counts(conn, "2024-2025", "dang-ky") == {
        "inputs": 1, "units": 1, "staff": 2, "proposals": 3, "decisions": 0, "findings": 1}
    # The new tables are usable alongside the old rows.
    add_awards(conn, [{"person_id": 2, "unit_code": "TH01", "school_year": "2024-2025",
                       "kind": "title", "code": "LĐTT"}], source="decision")
    assert [t["source"] for t in person_titles(conn, 2)] == ["proposal", "decision"]
    # The old person ids stay valid for new rounds.
    assert upsert_person(conn, "Trần Văn Đức", "tran van duc", "1979-11-02", "2025-2026") == 2
    conn.close()


def test_store_refuses_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    conn = open_store(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="phiên bản mới hơn"):
        open_store(path)


def test_store_refuses_file_that_is_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "tong-hop.sqlite"
    path.write_bytes(b"PK\x03\x04 this is a workbook, not a store" * 100)
    with pytest.raises(StoreError, match="bị hỏng"):
        open_store(path)


# Recording rounds


def test_store_record_round_replaces_only_that_round(db: sqlite3.Connection) -> None:
    ids = _two_persons(db)
    record_round(db, _record("2024-2025", "dang-ky", ids, n_staff=4))
    record_round(db, _record("2024-2025", "ket-qua", ids, n_staff=5))
    record_round(db, _record("2025-2026", "dang-ky", ids, n_staff=6))
    other_round = (_counts(db, "2024-2025", "ket-qua"), _checksum(db, "2024-2025", "ket-qua"))
    other_year = (_counts(db, "2025-2026", "dang-ky"), _checksum(db, "2025-2026", "dang-ky"))

    run_id = record_round(db, _record("2024-2025", "dang-ky", ids, n_staff=9))

    assert [r["id"] for r in round_runs(db, "2024-2025") if r["round"] == "dang-ky"] == [run_id]
    assert len(round_runs(db)) == 3
    assert _counts(db, "2024-2025", "dang-ky")["staff"] == 9
    # Each of the two persons registered LĐTT once, plus the collective.
    assert _counts(db, "2024-2025", "dang-ky")["proposals"] == 3
    assert (_counts(db, "2024-2025", "ket-qua"), _checksum(db, "2024-2025", "ket-qua")) == \
        other_round
    assert (_counts(db, "2025-2026", "dang-ky"), _checksum(db, "2025-2026", "dang-ky")) == \
        other_year
    # No orphans were left by the replaced run.
    assert db.execute("SELECT count(*) FROM staff WHERE run_id NOT IN "
                      "(SELECT id FROM runs)").fetchone()[0] == 0


def test_store_record_round_failure_rolls_back(db: sqlite3.Connection) -> None:
    ids = _two_persons(db)
    record_round(db, _record("2024-2025", "dang-ky", ids))
    before = (_counts(db, "2024-2025", "dang-ky"), _checksum(db, "2024-2025", "dang-ky"))
    with pytest.raises(sqlite3.IntegrityError):  # person 999 was never added
        record_round(db, _record("2024-2025", "dang-ky", [999]))
    assert not db.in_transaction
    assert (_counts(db, "2024-2025", "dang-ky"), _checksum(db, "2024-2025", "dang-ky")) == \
        before


# Bugs and crashes


_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from pipeline.store.database import RoundRecord, open_store, record_round

    conn = open_store(Path(sys.argv[1]))
    people = [{"person_id": 1 + i % 2, "unit_code": "TH%02d" % (i % 40), "row": 7 + i,
               "full_name": "Người thứ %d" % i, "birth_date": "1980-01-01", "sex": "Nữ",
               "position": "Giáo viên", "staff_group": "GV", "grade": "Hạng III",
               "title": "LĐTT", "commendation": "GK-UBND" if i % 3 == 0 else None}
              for i in range(int(sys.argv[2]))]
    run = RoundRecord("2024-2025", "dang-ky", "2025-05-21T09:00:00+07:00", people=people)
    print("started", flush=True)
    record_round(conn, run)
    print("done", flush=True)
""")


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX only")
def test_store_killed_during_record_round_keeps_previous_round(tmp_path: Path) -> None:
    path = tmp_path / "tdkt.sqlite"
    conn = open_store(path)
    ids = _two_persons(conn)
    assert ids == [1, 2]  # the child process relies on these ids
    record_round(conn, _record("2024-2025", "dang-ky", ids, n_staff=50))
    before = (_counts(conn, "2024-2025", "dang-ky"), _checksum(conn, "2024-2025", "dang-ky"))
    conn.close()

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), "200000"],
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "started"
        time.sleep(0.3)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    assert "done" not in child.stdout.read()  # it was killed inside the transaction

    conn = open_store(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert (_counts(conn, "2024-2025", "dang-ky"), _checksum(conn, "2024-2025", "dang-ky")) == \
        before
    assert len(round_runs(conn)) == 1

    record_round(conn, _record("2024-2025", "dang-ky", ids, n_staff=7))
    assert _counts(conn, "2024-2025", "dang-ky")["staff"] == 7
    assert len(round_runs(conn)) == 1
    conn.close()
