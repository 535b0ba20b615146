"""The history store: creation, migrations (from version 1, and from the store tdkt 0.1
wrote), transactions, replacing a round, statuses kept as codes, surviving a kill."""

from __future__ import annotations

import ast
import gzip
import hashlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.status import UnitStatus, label
from pipeline.store import database
from pipeline.store.database import SCHEMA_VERSION, RoundRecord, Store, StoreError, open_store

ROOT = Path(__file__).resolve().parent.parent
V1_SQL = Path(__file__).parent / "files" / "store_v1.sql"
V3 = Path(__file__).parent / "files" / "store-v3"  # written by tdkt 0.1 (schema 3)
CONFIG = ROOT / "input_samples" / "tdkt.toml"
TABLES = {"runs", "inputs", "units", "persons", "staff", "proposals", "findings", "decisions",
          "awards", "person_links", "send_log", "archive", "person_names", "link_log",
          "imported_files", "approvals"}
UNIT_LABELS = {label(code) for code in UnitStatus}


def _tables(store: Store) -> set[str]:
    return {r[0] for r in store.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


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
                "block": "Khối 1", "status": "valid"}],
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


def _counts(conn: Store, year: str, round: str) -> dict[str, int]:
    """Rows per table belonging to the runs of one year and round."""
    return {table: conn.execute(
        f"SELECT count(*) FROM {table} t JOIN runs r ON r.id = t.run_id "
        "WHERE r.school_year = ? AND r.round = ?", (year, round)).fetchone()[0]
        for table in ("inputs", "units", "staff", "proposals", "decisions", "findings")}


def _checksum(conn: Store, year: str, round: str) -> str:
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
def db(tmp_path: Path) -> Store:
    with Store.open(tmp_path / "history" / "tdkt.sqlite") as store:
        yield store


def _two_persons(store: Store) -> list[int]:
    return [store.upsert_person("Nguyễn Thị Lan", "nguyen thi lan", "1985-03-12", "2024-2025"),
            store.upsert_person("Trần Văn Đức", "tran van duc", "1979-11-02", "2024-2025")]


def _contents(store: Store) -> dict[str, list[tuple]]:
    """Every row of every table, sorted."""
    return {table: sorted(map(tuple, store.execute(f"SELECT * FROM {table}")), key=repr)
            for table in sorted(_tables(store))}


# General


def test_store_new_has_current_schema(tmp_path: Path, db: Store) -> None:
    assert (tmp_path / "history" / "tdkt.sqlite").exists()
    assert db.schema_version == SCHEMA_VERSION == len(database.MIGRATIONS) == 6
    assert _tables(db) >= TABLES
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000


def test_store_reopen_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "tdkt.sqlite"
    with Store.open(path) as store:
        ids = _two_persons(store)
        store.record_round(_record("2024-2025", "dang-ky", ids))
    with open_store(path) as store:  # the plain function opens the same Store
        assert isinstance(store, Store)
        assert [r["round"] for r in store.round_runs()] == ["dang-ky"]
        assert _counts(store, "2024-2025", "dang-ky")["staff"] == 3


def test_store_closes_at_the_end_of_a_with_block(tmp_path: Path) -> None:
    with Store.open(tmp_path / "tdkt.sqlite") as store:
        pass
    with pytest.raises(sqlite3.ProgrammingError):
        store.execute("SELECT 1")


def test_store_upsert_person_finds_existing(db: Store) -> None:
    first = _two_persons(db)
    assert _two_persons(db) == first
    assert [p["full_name"] for p in db.persons()] == ["Nguyễn Thị Lan", "Trần Văn Đức"]
    # Inside the caller's transaction it joins it instead of committing.
    with pytest.raises(KeyboardInterrupt), db.transaction():
        new = db.upsert_person("Lê Văn Hải", "le van hai", None, "2025-2026")
        assert db.in_transaction
        raise KeyboardInterrupt
    assert not db.in_transaction
    assert new not in db.person_ids()
    assert db.person_ids() == set(first)


def test_store_transaction_commits_or_rolls_back(db: Store) -> None:
    with db.transaction():
        lan = db.add_person("Nguyễn Thị Lan", "nguyen thi lan", "1985-03-12", "2024-2025")
    assert not db.in_transaction and db.person_ids() == {lan}
    with pytest.raises(RuntimeError), db.transaction():
        db.add_person("Trần Văn Đức", "tran van duc", "1979-11-02", "2024-2025")
        raise RuntimeError("stop")
    assert not db.in_transaction and db.person_ids() == {lan}


def test_store_nested_transaction_undoes_only_its_own_writes(db: Store) -> None:
    with db.transaction():
        lan = db.add_person("Nguyễn Thị Lan", "nguyen thi lan", "1985-03-12", "2024-2025")
        with pytest.raises(sqlite3.IntegrityError):  # person 999 was never added
            db.record_round(_record("2024-2025", "dang-ky", [999]))
        assert db.in_transaction and db.round_runs() == []
        duc = db.add_person("Trần Văn Đức", "tran van duc", "1979-11-02", "2024-2025")
    assert db.person_ids() == {lan, duc}


def test_store_titles_and_awards(db: Store) -> None:
    lan, duc = _two_persons(db)
    db.record_round(_record("2024-2025", "dang-ky", [lan, duc]))
    assert db.add_awards([{"person_id": lan, "unit_code": "TH01", "school_year": "2023-2024",
                           "kind": "title", "code": "CSTĐCS", "decision_no": "123/QĐ-UBND",
                           "decision_date": "2024-06-30"}], source="import") == 1
    assert [(a["school_year"], a["code"], a["source"]) for a in db.awards_of(lan)] == [
        ("2023-2024", "CSTĐCS", "import")]
    assert [(t["school_year"], t["round"], t["code"], t["source"], t["result"])
            for t in db.person_titles(lan)] == [
        ("2023-2024", None, "CSTĐCS", "import", "awarded"),
        ("2024-2025", "dang-ky", "LĐTT", "proposal", "registered"),
    ]
    assert [(t["school_year"], t["person_id"], t["kind"], t["code"], t["result"])
            for t in db.unit_titles("TH01")] == [
        ("2023-2024", lan, "title", "CSTĐCS", "awarded"),
        ("2024-2025", None, "collective_title", "TLĐTT", "registered"),
        ("2024-2025", lan, "title", "LĐTT", "registered"),
        ("2024-2025", duc, "title", "LĐTT", "registered"),
    ]
    with pytest.raises(ValueError):
        db.add_awards([], source="guess")


def test_store_person_titles_follow_confirmed_links(db: Store) -> None:
    lan, duc = _two_persons(db)
    lan_again = db.upsert_person("Nguyễn Thị Lan", "nguyen thi lan", None, "2025-2026")
    db.record_round(_record("2025-2026", "dang-ky", [lan_again]))
    db.add_awards([{"person_id": lan, "school_year": "2023-2024", "kind": "title",
                    "code": "CSTĐCS"}], source="decision")
    assert len(db.person_titles(lan)) == 1
    db.link_persons(lan_again, lan, "Phòng GD&ĐT", "2025-10-01T10:00:00+07:00")
    assert db.person_links() == [(lan, lan_again)]
    assert [t["school_year"] for t in db.person_titles(lan)] == ["2023-2024", "2025-2026"]
    assert db.person_titles(lan) == db.person_titles(lan_again)
    assert db.person_titles(duc) == []


def test_store_send_log_and_archive(db: Store) -> None:
    assert db.sent("2025-10/dang-ky/phong", "a@example.vn") is None
    db.mark_sent("2025-10/dang-ky/phong", "a@example.vn", "d1", "2025-10-31T17:00:00+07:00")
    db.mark_sent("2025-10/dang-ky/phong", "a@example.vn", "d2", "2025-11-30T17:00:00+07:00")
    assert db.sent("2025-10/dang-ky/phong", "a@example.vn") == "d2"
    assert db.sent("2025-10/dang-ky/phong", "b@example.vn") is None
    assert db.send_log() == {("2025-10/dang-ky/phong", "a@example.vn"): "d2"}
    assert db.first_seen("ab" * 32) is None
    db.archive_file("ab" * 32, "01001.xlsx", 10, "2025-10-01T08:00:00+07:00", "ab/x.xlsx")
    db.archive_file("ab" * 32, "01001 (2).xlsx", 10, "2025-10-09T08:00:00+07:00", "ab/x.xlsx")
    assert db.first_seen("ab" * 32) == "2025-10-01T08:00:00+07:00"


# Statuses as codes


@pytest.mark.parametrize("given", ["valid", UnitStatus.VALID])
def test_store_keeps_unit_status_codes(db: Store, given: str) -> None:
    ids = _two_persons(db)
    run = _record("2024-2025", "dang-ky", ids)
    missing = {**run.units[0], "unit_code": "TH02", "status": "missing"}
    with_errors = {**run.units[0], "unit_code": "TH03", "status": UnitStatus.WITH_ERRORS}
    db.record_round(RoundRecord(run.school_year, run.round, run.run_at,
                                units=[{**run.units[0], "status": given}, missing, with_errors]))
    assert [tuple(r) for r in db.execute("SELECT unit_code, status FROM units ORDER BY 1")] == [
        ("TH01", "valid"), ("TH02", "missing"), ("TH03", "with_errors")]
    assert db.unit_status_counts("2024-2025", "dang-ky") == {
        UnitStatus.VALID: 1, UnitStatus.MISSING: 1, UnitStatus.WITH_ERRORS: 1}


def test_store_refuses_an_unknown_unit_status(db: Store) -> None:
    run = _record("2024-2025", "dang-ky", _two_persons(db))
    with pytest.raises(ValueError, match="not a unit status"):
        db.record_round(RoundRecord(run.school_year, run.round, run.run_at,
                                    units=[{**run.units[0], "status": "Hợp lệ"}]))
    assert db.round_runs() == []


# Migration and versions


def test_store_migrates_v1_file(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(V1_SQL.read_text(encoding="utf-8"))
    old.close()

    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert _tables(store) >= TABLES
        assert store.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert store.execute("PRAGMA foreign_key_check").fetchall() == []
        assert store.round_runs() == [{"id": 1, "school_year": "2024-2025", "round": "dang-ky",
                                       "run_at": "2024-10-15T08:30:00+07:00"}]
        assert [p["full_name"] for p in store.persons()] == ["Nguyễn Thị Lan", "Trần Văn Đức"]
        assert store.person_titles(1) == [{
            "school_year": "2024-2025", "round": "dang-ky", "unit_code": "TH01",
            "kind": "title", "code": "CSTĐCS", "source": "proposal", "result": "registered"}]
        assert _counts(store, "2024-2025", "dang-ky") == {
            "inputs": 1, "units": 1, "staff": 2, "proposals": 3, "decisions": 0, "findings": 1}
        # The new tables are usable alongside the old rows.
        store.add_awards([{"person_id": 2, "unit_code": "TH01", "school_year": "2024-2025",
                           "kind": "title", "code": "LĐTT"}], source="decision")
        assert [t["source"] for t in store.person_titles(2)] == ["proposal", "decision"]
        # The old person ids stay valid for new rounds.
        assert store.upsert_person("Trần Văn Đức", "tran van duc", "1979-11-02",
                                   "2025-2026") == 2


def _v3_store(tmp_path: Path) -> Path:
    """The store tdkt 0.1 wrote for both sample rounds, unpacked into tmp_path."""
    path = tmp_path / "tdkt-lich-su.sqlite"
    with gzip.open(V3 / "tdkt-lich-su.sqlite.gz", "rb") as packed, path.open("wb") as plain:
        shutil.copyfileobj(packed, plain)
    return path


def _labels_left(path: Path) -> list[str]:
    """Every text cell of every table that is a unit status label."""
    conn = sqlite3.connect(path)
    try:
        found = []
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]:
                found += [f"{table}.{column}: {r[0]}" for r in conn.execute(
                    f"SELECT DISTINCT {column} FROM {table} WHERE typeof({column}) = 'text'")
                    if r[0] in UNIT_LABELS]
        return found
    finally:
        conn.close()


def _history(path: Path, who: str) -> str:
    result = CliRunner().invoke(main, ["history", who, "--store", str(path),
                                       "--config", str(CONFIG)])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_store_migrates_the_store_tdkt_0_1_wrote(tmp_path: Path) -> None:
    path = _v3_store(tmp_path)
    with sqlite3.connect(path) as old:
        assert old.execute("PRAGMA user_version").fetchone()[0] == 3
        old_statuses = dict(old.execute("SELECT status, count(*) FROM units GROUP BY status"))
    assert old_statuses == {"Hợp lệ": 74, "Có lỗi": 3, "Chưa nộp": 15}
    assert sorted(_labels_left(path)) == ["units.status: Chưa nộp", "units.status: Có lỗi",
                                          "units.status: Hợp lệ"]

    with Store.open(path) as store:
        assert store.schema_version == 6
        assert store.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        statuses = dict(store.execute("SELECT status, count(*) FROM units GROUP BY status"))
        migrated = store.unit_status_counts("2025-2026", "dang-ky")
    assert statuses == {"valid": 74, "with_errors": 3, "missing": 15}
    assert set(statuses) <= set(UnitStatus)
    assert sum(migrated.values()) == 46
    assert _labels_left(path) == []
    with sqlite3.connect(path) as plain:
        assert plain.execute("PRAGMA user_version").fetchone()[0] == 6
        # Rows read before the Sở's round existed came through no other office.
        assert plain.execute("SELECT count(*) FROM units WHERE office IS NOT NULL"
                             ).fetchone()[0] == 0

    # `tdkt history` reads the migrated store exactly as tdkt 0.1 read its own.
    assert _history(path, "01001") == (V3 / "history-01001.txt").read_text(encoding="utf-8")
    assert _history(path, "Đinh Đức Bình") == \
        (V3 / "history-person.txt").read_text(encoding="utf-8")


def test_store_opening_a_migrated_store_again_changes_nothing(tmp_path: Path) -> None:
    path = _v3_store(tmp_path)
    with Store.open(path) as store:
        before = _contents(store)
    data = path.read_bytes()
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.connection.total_changes == 0  # no migration ran
        assert _contents(store) == before
    assert path.read_bytes() == data
    assert _history(path, "01001") == (V3 / "history-01001.txt").read_text(encoding="utf-8")
    assert path.read_bytes() == data


def test_store_refuses_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    with Store.open(path) as store:
        store.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="phiên bản mới hơn"):
        Store.open(path)


def test_store_refuses_file_that_is_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "tong-hop.sqlite"
    path.write_bytes(b"PK\x03\x04 this is a workbook, not a store" * 100)
    with pytest.raises(StoreError, match="bị hỏng"):
        Store.open(path)


# Recording rounds


def test_store_record_round_replaces_only_that_round(db: Store) -> None:
    ids = _two_persons(db)
    db.record_round(_record("2024-2025", "dang-ky", ids, n_staff=4))
    db.record_round(_record("2024-2025", "ket-qua", ids, n_staff=5))
    db.record_round(_record("2025-2026", "dang-ky", ids, n_staff=6))
    other_round = (_counts(db, "2024-2025", "ket-qua"), _checksum(db, "2024-2025", "ket-qua"))
    other_year = (_counts(db, "2025-2026", "dang-ky"), _checksum(db, "2025-2026", "dang-ky"))

    run_id = db.record_round(_record("2024-2025", "dang-ky", ids, n_staff=9))

    assert [r["id"] for r in db.round_runs("2024-2025") if r["round"] == "dang-ky"] == [run_id]
    assert len(db.round_runs()) == 3
    assert _counts(db, "2024-2025", "dang-ky")["staff"] == 9
    # Each of the two persons registered LĐTT once, plus the collective.
    assert _counts(db, "2024-2025", "dang-ky")["proposals"] == 3
    assert (_counts(db, "2024-2025", "ket-qua"), _checksum(db, "2024-2025", "ket-qua")) == \
        other_round
    assert (_counts(db, "2025-2026", "dang-ky"), _checksum(db, "2025-2026", "dang-ky")) == \
        other_year
    assert db.round_inputs("2024-2025", "dang-ky") == {"TH01.xlsx": "00ff"}
    # No orphans were left by the replaced run.
    assert db.execute("SELECT count(*) FROM staff WHERE run_id NOT IN "
                      "(SELECT id FROM runs)").fetchone()[0] == 0


def test_store_record_round_failure_rolls_back(db: Store) -> None:
    ids = _two_persons(db)
    db.record_round(_record("2024-2025", "dang-ky", ids))
    before = (_counts(db, "2024-2025", "dang-ky"), _checksum(db, "2024-2025", "dang-ky"))
    with pytest.raises(sqlite3.IntegrityError):  # person 999 was never added
        db.record_round(_record("2024-2025", "dang-ky", [999]))
    assert not db.in_transaction
    assert (_counts(db, "2024-2025", "dang-ky"), _checksum(db, "2024-2025", "dang-ky")) == \
        before


# SQL lives in the store's database module


def _sql_in(path: Path) -> list[int]:
    """Lines of SQL string constants and execute calls in one module."""
    sql = re.compile(r"\A\s*(?:SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|BEGIN|COMMIT"
                     r"|ROLLBACK|SAVEPOINT|RELEASE|PRAGMA|WITH\b.*\bSELECT)\b", re.DOTALL)
    def is_sql(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str) and sql.match(node.value) is not None
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
            node.func.attr in ("execute", "executemany", "executescript")

    return [node.lineno for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if is_sql(node)]


def test_store_sql_only_in_the_database_module() -> None:
    found = {path.relative_to(ROOT).as_posix(): _sql_in(path)
             for path in sorted((ROOT / "pipeline").rglob("*.py"))}
    assert found["pipeline/store/database.py"]  # the checker sees SQL where it is
    assert {path: lines for path, lines in found.items()
            if lines and path != "pipeline/store/database.py"} == {}


# Bugs and crashes


# The child records a large round; a progress handler, called by SQLite while it writes the
# rows inside the open transaction, tells the parent so on stdout and waits there to be killed.
_CHILD = textwrap.dedent("""
    import signal
    import sys
    from pathlib import Path
    from pipeline.store.database import RoundRecord, Store

    store = Store.open(Path(sys.argv[1]))
    people = [{"person_id": 1 + i % 2, "unit_code": "TH%02d" % (i % 40), "row": 7 + i,
               "full_name": "Người thứ %d" % i, "birth_date": "1980-01-01", "sex": "Nữ",
               "position": "Giáo viên", "staff_group": "GV", "grade": "Hạng III",
               "title": "LĐTT", "commendation": "GK-UBND" if i % 3 == 0 else None}
              for i in range(int(sys.argv[2]))]
    run = RoundRecord("2024-2025", "dang-ky", "2025-05-21T09:00:00+07:00", people=people)
    steps = 0

    def inside():
        global steps
        if store.in_transaction:
            steps += 1
            if steps == 200:  # well into the new rows, the old round already deleted
                print("inside", flush=True)
                signal.pause()  # until killed
        return 0

    store.connection.set_progress_handler(inside, 1000)
    store.record_round(run)
    print("done", flush=True)
""")


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX only")
def test_store_killed_during_record_round_keeps_previous_round(tmp_path: Path) -> None:
    path = tmp_path / "tdkt.sqlite"
    with Store.open(path) as store:
        ids = _two_persons(store)
        assert ids == [1, 2]  # the child process relies on these ids
        store.record_round(_record("2024-2025", "dang-ky", ids, n_staff=50))
        before = (_counts(store, "2024-2025", "dang-ky"),
                  _checksum(store, "2024-2025", "dang-ky"))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), "20000"],
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        # Sent from inside the open transaction, while the rows are being written.
        assert child.stdout.readline().strip() == "inside"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    assert "done" not in child.stdout.read()  # it was killed inside the transaction

    with Store.open(path) as store:
        assert store.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert (_counts(store, "2024-2025", "dang-ky"),
                _checksum(store, "2024-2025", "dang-ky")) == before
        assert len(store.round_runs()) == 1

        store.record_round(_record("2024-2025", "dang-ky", ids, n_staff=7))
        assert _counts(store, "2024-2025", "dang-ky")["staff"] == 7
        assert len(store.round_runs()) == 1


def test_store_rows_kept_as_columns_read_as_dicts_and_tuples() -> None:
    rows = database.Rows({"person_id": [4, 5], "full_name": ["Lan", "Đức"]})
    assert len(rows) == 2
    assert list(rows) == [{"person_id": 4, "full_name": "Lan"},
                          {"person_id": 5, "full_name": "Đức"}]
    assert rows[1] == {"person_id": 5, "full_name": "Đức"} and rows[-1:] == [rows[1]]
    assert list(rows.values(["full_name", "sex"])) == [("Lan", None), ("Đức", None)]
    with pytest.raises(ValueError):
        database.Rows({"person_id": [1], "full_name": []})


def test_store_round_of_rows_as_columns_equals_the_round_of_dicts(tmp_path: Path) -> None:
    """A round given as Rows (what record.round_record builds) stores exactly what the same
    round given as dicts stores, registrations and spellings included."""
    run = _record("2024-2025", "dang-ky", [1, 2], n_staff=5)
    columns = database.Rows({key: [p.get(key) for p in run.people]
                             for key in run.people[0]})
    tables = []
    for people in (run.people, columns):
        with Store.open(tmp_path / f"{len(tables)}.sqlite") as store, store.transaction():
            for person in (1, 2):
                store.upsert_person(f"Người {person - 1}", f"nguoi {person - 1}", "1980-01-01",
                                    "2024-2025")
            store.record_round(RoundRecord(run.school_year, run.round, run.run_at,
                                           inputs=run.inputs, units=run.units, people=people,
                                           proposals=run.proposals))
            tables.append({t: store.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall()
                           for t in ("staff", "proposals", "person_names")})
    assert tables[0] == tables[1]
    assert len(tables[0]["proposals"]) == 3  # the collective and two persons' LĐTT
    assert [tuple(r) for r in tables[0]["person_names"]] == [  # every name seen
        (1, "nguoi 0", "Người 0"), (2, "nguoi 1", "Người 1"), (1, "nguoi 2", "Người 2"),
        (2, "nguoi 3", "Người 3"), (1, "nguoi 4", "Người 4")]


# Bulk loads: indexes built again after the rows


def _indexes(store: Store) -> list[tuple]:
    return sorted(map(tuple, store.execute(
        "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'")))


def _persons(first: int, count: int) -> list[tuple]:
    return [(first + i, f"Người {i}", f"nguoi {i}", "1980-01-01", "2025-2026")
            for i in range(count)]


def _statements(store: Store) -> list[str]:
    seen: list[str] = []
    store.connection.set_trace_callback(seen.append)
    return seen


def test_store_bulk_load_rebuilds_the_same_indexes_and_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def recorded(threshold: int, folder: str) -> tuple[list, dict, list[str]]:
        monkeypatch.setattr(database, "BULK_LOAD_ROWS", threshold)
        with Store.open(tmp_path / folder / "tdkt.sqlite") as store:
            seen = _statements(store)
            store.add_persons(_persons(1, 5))
            store.record_round(_record("2025-2026", "dang-ky", [1, 2, 3, 4, 5], n_staff=8))
            lookup = store.execute("EXPLAIN QUERY PLAN SELECT person_id FROM person_names "
                                   "WHERE fold_name = 'nguoi 3'").fetchall()
            return _indexes(store), _contents(store), [*seen, repr([tuple(r) for r in lookup])]

    grown = recorded(10**9, "grown")
    rebuilt = recorded(1, "rebuilt")
    assert rebuilt[0] == grown[0]  # every index back, as the schema declares it
    assert rebuilt[1] == grown[1]
    dropped = [s for s in rebuilt[2] if s.startswith("DROP INDEX")]
    assert {s.split('"')[1] for s in dropped} >= {"persons_fold", "person_names_fold",
                                                  "staff_person", "proposals_unit"}
    assert not any(s.startswith("DROP INDEX") for s in grown[2])
    assert "person_names_fold" in rebuilt[2][-1]  # the rebuilt index serves the lookups


def test_store_add_persons_names_them_in_order_whatever_their_ids(tmp_path: Path) -> None:
    """A round's new persons (ids one after another) have their names copied by SQLite; any
    other ids are named row by row: the same person_names rows, in the same rowid order, and a
    name that folds to nothing is not a spelling either way."""
    people = [(7, "Lê Văn A", "le van a", "1980-01-01", "2025-2026"),
              (8, "  ", "", None, "2025-2026"),
              (9, "Lê  văn a", "le van a", "1980-01-01", "2025-2026"),
              (10, "Trần B", "tran b", None, "2025-2026")]
    expected = [(7, "le van a", "Lê Văn A"), (9, "le van a", "Lê  văn a"),
                (10, "tran b", "Trần B")]

    def names(order: list[int], folder: str) -> list[tuple]:
        with Store.open(tmp_path / folder / "tdkt.sqlite") as store:
            store.add_persons([people[i] for i in order])
            return [tuple(r) for r in store.execute(
                "SELECT person_id, fold_name, full_name FROM person_names ORDER BY rowid")]

    assert names([0, 1, 2, 3], "consecutive") == expected
    assert names([0, 2, 3], "gap") == expected  # 7, 9, 10: named row by row
    assert names([3, 2, 1, 0], "descending") == expected[::-1]
    with Store.open(tmp_path / "held" / "tdkt.sqlite") as store:
        store.add_persons([people[0]])
        store.add_persons([people[2], people[3]])  # 9, 10: person 7 is not named twice
        assert store.execute("SELECT count(*) FROM person_names").fetchone()[0] == 3


def test_store_bulk_load_keeps_the_indexes_of_a_larger_table(
        db: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "BULK_LOAD_ROWS", 1)
    db.add_persons(_persons(1, 10))
    seen = _statements(db)
    db.add_persons(_persons(11, 9))  # fewer than the 10 held: grown row by row
    assert not any(s.startswith("DROP INDEX") for s in seen)
    seen.clear()
    db.add_persons(_persons(20, 19))  # 19 held: as many again or more → rebuilt
    assert any(s.startswith('DROP INDEX "persons_fold"') for s in seen)
    assert db.execute("SELECT count(*) FROM persons").fetchone()[0] == 38


def test_store_bulk_load_failing_leaves_rows_and_indexes(
        db: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "BULK_LOAD_ROWS", 1)
    before_indexes = _indexes(db)
    before = _contents(db)
    with pytest.raises(sqlite3.IntegrityError):
        db.add_persons([*_persons(1, 5), *_persons(3, 1)])  # id 3 twice
    assert _indexes(db) == before_indexes
    assert _contents(db) == before
    with pytest.raises(sqlite3.IntegrityError), db.transaction():
        db.add_persons(_persons(1, 5))
        db.add_persons(_persons(5, 1))  # inside the caller's transaction
    assert _indexes(db) == before_indexes
    assert _contents(db) == before


def test_store_bulk_load_keeps_unique_indexes(db: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unique index decides which rows go in: it is never dropped for a bulk load."""
    monkeypatch.setattr(database, "BULK_LOAD_ROWS", 1)
    db.execute("CREATE UNIQUE INDEX persons_once ON persons (fold_name, birth_date)")
    seen = _statements(db)
    with pytest.raises(sqlite3.IntegrityError):
        db.add_persons([(1, "An", "an", "1980-01-01", "2025-2026"),
                        (2, "An", "an", "1980-01-01", "2025-2026")])
    assert any(s.startswith('DROP INDEX "persons_fold"') for s in seen)
    assert not any("persons_once" in s for s in seen if s.startswith("DROP"))
    assert db.execute("SELECT count(*) FROM persons").fetchone()[0] == 0


def test_store_new_store_pages_and_an_existing_one_kept(tmp_path: Path) -> None:
    """A new store is made of 16 KB pages; a store made earlier with SQLite's default keeps
    its pages (and its rows) when tdkt opens it."""
    with Store.open(tmp_path / "moi.sqlite") as store:
        assert store.execute("PRAGMA page_size").fetchone()[0] == database.PAGE_BYTES
    old = tmp_path / "cu.sqlite"
    conn = sqlite3.connect(old)
    conn.execute("PRAGMA page_size = 4096")
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with Store.open(old) as store:
        assert store.execute("PRAGMA page_size").fetchone()[0] == 4096
        assert "t" in _tables(store) and _tables(store) >= TABLES


def test_store_rows_given_as_tuples_read_as_columns_would() -> None:
    """Rows given as tuples give their values back in any column order, None for a column
    they lack, and read as dicts like rows given as columns."""
    names = ("person_id", "name", "kind")
    tuples = [(1, "An", "title"), (2, "Bình", "commendation")]
    rows = database.Rows.from_tuples(names, tuples)
    columns = database.Rows({"person_id": [1, 2], "name": ["An", "Bình"],
                             "kind": ["title", "commendation"]})
    assert len(rows) == 2 and list(rows) == list(columns) and rows[1] == columns[1]
    assert list(database.row_values(rows, names)) == tuples
    assert list(database.row_values(rows, ("kind", "office", "person_id"))) == \
        [("title", None, 1), ("commendation", None, 2)] == \
        list(database.row_values(columns, ("kind", "office", "person_id")))
    assert list(database.Rows.from_tuples(names, [])) == []
    with pytest.raises(ValueError):
        database.Rows.from_tuples(names, [(1, "An")])
