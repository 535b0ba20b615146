"""The history store: every round's inputs, staff, proposals and findings in one SQLite file.

A round is recorded in one transaction that replaces the earlier record of the same school year
and round, so a run killed half-way leaves the previous record exactly as it was. The schema is
versioned with `PRAGMA user_version` and migrated forward when the store is opened.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA_VERSION = 3
BUSY_TIMEOUT_MS = 10_000

# MIGRATIONS[i] upgrades a store from version i to i + 1. Never edit a shipped entry: stores
# written by that version exist in the offices; add a new entry instead.
MIGRATIONS: list[str] = [
    # 0 → 1: rounds, their inputs, units, staff, proposals and findings; persons across years.
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        school_year TEXT NOT NULL,
        round TEXT NOT NULL,
        run_at TEXT NOT NULL
    );
    CREATE TABLE inputs (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        file TEXT NOT NULL, sha256 TEXT, unit_code TEXT, classification TEXT
    );
    CREATE TABLE units (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        unit_code TEXT NOT NULL, unit_name TEXT, level TEXT, block TEXT, status TEXT
    );
    CREATE TABLE persons (
        id INTEGER PRIMARY KEY,
        full_name TEXT NOT NULL, fold_name TEXT NOT NULL, birth_date TEXT, created_year TEXT
    );
    CREATE TABLE staff (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        person_id INTEGER REFERENCES persons(id),
        unit_code TEXT, row INTEGER, full_name TEXT, birth_date TEXT, sex TEXT,
        position TEXT, staff_group TEXT, grade TEXT
    );
    CREATE TABLE proposals (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        person_id INTEGER REFERENCES persons(id),
        unit_code TEXT, subject TEXT, name TEXT, kind TEXT, code TEXT, result TEXT
    );
    CREATE TABLE findings (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        file TEXT, sheet TEXT, cell TEXT, code TEXT, severity TEXT, value TEXT,
        expected TEXT, message TEXT, unit TEXT
    );
    """,
    # 1 → 2: rule decisions, awards actually granted (or imported from old lists), the person
    # matches the office confirmed, and the indexes the history look-ups need.
    """
    CREATE TABLE decisions (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        unit_code TEXT, person_id INTEGER REFERENCES persons(id),
        name TEXT, kind TEXT, code TEXT, rule_id TEXT, result TEXT, citation TEXT
    );
    CREATE TABLE awards (
        id INTEGER PRIMARY KEY,
        person_id INTEGER REFERENCES persons(id),
        unit_code TEXT, school_year TEXT NOT NULL, kind TEXT NOT NULL, code TEXT NOT NULL,
        decision_no TEXT, decision_date TEXT,
        source TEXT NOT NULL CHECK (source IN ('import', 'decision'))
    );
    CREATE TABLE person_links (
        person_id INTEGER NOT NULL REFERENCES persons(id),
        other_id INTEGER NOT NULL REFERENCES persons(id),
        confirmed_by TEXT, confirmed_at TEXT,
        PRIMARY KEY (person_id, other_id)
    );
    CREATE INDEX runs_year_round ON runs (school_year, round);
    CREATE INDEX persons_fold ON persons (fold_name, birth_date);
    CREATE INDEX inputs_run ON inputs (run_id);
    CREATE INDEX units_run ON units (run_id);
    CREATE INDEX staff_run ON staff (run_id);
    CREATE INDEX staff_person ON staff (person_id);
    CREATE INDEX staff_unit ON staff (unit_code);
    CREATE INDEX proposals_run ON proposals (run_id);
    CREATE INDEX proposals_person ON proposals (person_id);
    CREATE INDEX proposals_unit ON proposals (unit_code);
    CREATE INDEX findings_run ON findings (run_id);
    CREATE INDEX decisions_run ON decisions (run_id);
    CREATE INDEX decisions_person ON decisions (person_id);
    CREATE INDEX decisions_unit ON decisions (unit_code);
    CREATE INDEX awards_person ON awards (person_id);
    CREATE INDEX awards_unit ON awards (unit_code);
    CREATE INDEX person_links_other ON person_links (other_id);
    """,
    # 2 → 3: the messages sent (so a re-run sends only what changed) and the archive of every
    # input file kept once by its sha256, with the time it first arrived.
    """
    CREATE TABLE send_log (
        key TEXT NOT NULL, recipient TEXT NOT NULL, digest TEXT NOT NULL, sent_at TEXT,
        PRIMARY KEY (key, recipient)
    );
    CREATE TABLE archive (
        sha256 TEXT PRIMARY KEY, file TEXT NOT NULL, size INTEGER, first_seen TEXT NOT NULL,
        stored_as TEXT NOT NULL
    );
    """,
]
assert len(MIGRATIONS) == SCHEMA_VERSION

_COLUMNS = {
    "inputs": ("file", "sha256", "unit_code", "classification"),
    "units": ("unit_code", "unit_name", "level", "block", "status"),
    "staff": ("person_id", "unit_code", "row", "full_name", "birth_date", "sex", "position",
              "staff_group", "grade"),
    "proposals": ("person_id", "unit_code", "subject", "name", "kind", "code", "result"),
    "decisions": ("unit_code", "person_id", "name", "kind", "code", "rule_id", "result",
                  "citation"),
    "findings": ("file", "sheet", "cell", "code", "severity", "value", "expected", "message",
                 "unit"),
}
REGISTRATION_ROUND = "dang-ky"
NOT_REGISTERED = "khong_dang_ky"  # the vocabulary's "không đăng ký" (aggregate.NOT_REGISTERED)


class StoreError(Exception):
    """The history store can't be used: written by a newer tdkt, or not a store at all."""


@dataclass(frozen=True)
class RoundRecord:
    """One consolidated round, as it is written to the store.

    Each person's `title` and `commendation` are stored as proposals of that person (result
    'registered' in the registration round, 'proposed' otherwise) unless empty, "khong_dang_ky",
    or already in `proposals` with the same (person_id, kind, code).
    """

    school_year: str
    round: str
    run_at: str  # ISO timestamp
    inputs: list[dict] = field(default_factory=list)
    units: list[dict] = field(default_factory=list)
    people: list[dict] = field(default_factory=list)
    proposals: list[dict] = field(default_factory=list)
    decisions: list[dict] = field(default_factory=list)
    findings: list[dict] = field(default_factory=list)


# Open and migrate


def open_store(path: Path) -> sqlite3.Connection:
    """A connection to the store at `path`, created or migrated to SCHEMA_VERSION as needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        _migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"Kho lịch sử {path} bị hỏng hoặc không phải tệp SQLite ({exc}).") \
            from exc
    except BaseException:
        conn.close()
        raise
    conn.row_factory = sqlite3.Row
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version the store was written with (PRAGMA user_version)."""
    return conn.execute("PRAGMA user_version").fetchone()[0]


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the missing migrations, each in its own transaction with its user_version."""
    while True:
        version = schema_version(conn)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"Kho lịch sử {path} được tạo bởi phiên bản mới hơn của tdkt (lược đồ {version}; "
                f"phiên bản đang chạy chỉ đọc được đến lược đồ {SCHEMA_VERSION}). "
                "Hãy cập nhật tdkt rồi chạy lại.")
        if version == SCHEMA_VERSION:
            return
        with _transaction(conn):
            # Another process may have migrated while we waited for the write lock.
            if schema_version(conn) == version:
                for statement in _statements(MIGRATIONS[version]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")


def _statements(script: str) -> Iterator[str]:
    """The SQL statements of `script`; executescript() would commit our transaction."""
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):  # false for a ';' inside a string or trigger
            if buffer.strip(" \n;"):
                yield buffer.strip()
            buffer = ""


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK and re-raise on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# Write


def record_round(conn: sqlite3.Connection, run: RoundRecord) -> int:
    """Store one round, replacing the earlier record of the same year and round; the run id."""
    proposals = list(run.proposals) + _registrations(run)
    # Joins the caller's transaction when one is open (person ids assigned in the same one).
    with _transaction(conn) if not conn.in_transaction else contextlib.nullcontext():
        conn.execute("DELETE FROM runs WHERE school_year = ? AND round = ?",
                     (run.school_year, run.round))
        run_id = conn.execute("INSERT INTO runs (school_year, round, run_at) VALUES (?, ?, ?)",
                              (run.school_year, run.round, run.run_at)).lastrowid
        for table, rows in (("inputs", run.inputs), ("units", run.units), ("staff", run.people),
                            ("proposals", proposals), ("decisions", run.decisions),
                            ("findings", run.findings)):
            columns = _COLUMNS[table]
            conn.executemany(
                f"INSERT INTO {table} (run_id, {', '.join(columns)}) "
                f"VALUES (?{', ?' * len(columns)})",
                ((run_id, *(row.get(c) for c in columns)) for row in rows))
    return run_id


def _registrations(run: RoundRecord) -> list[dict]:
    """Each person's title and commendation as a proposal not already in `run.proposals`."""
    known = {(p.get("person_id"), p.get("kind"), p.get("code")) for p in run.proposals}
    result = "registered" if run.round == REGISTRATION_ROUND else "proposed"
    return [{"person_id": person["person_id"], "unit_code": person.get("unit_code"),
             "subject": "person", "name": person.get("full_name"), "kind": kind,
             "code": person[kind], "result": result}
            for person in run.people for kind in ("title", "commendation")
            if person.get(kind) and person[kind] != NOT_REGISTERED
            and (person["person_id"], kind, person[kind]) not in known]


def upsert_person(conn: sqlite3.Connection, full_name: str, fold_name: str,
                  birth_date: str | None, year: str) -> int:
    """The id of the person with this folded name and birth date, added if new.

    Joins the caller's transaction when one is open; otherwise runs in its own.
    """
    def find_or_add() -> int:
        found = conn.execute("SELECT id FROM persons WHERE fold_name = ? AND birth_date IS ? "
                             "ORDER BY id LIMIT 1", (fold_name, birth_date)).fetchone()
        if found:
            return found[0]
        return conn.execute("INSERT INTO persons (full_name, fold_name, birth_date, created_year)"
                            " VALUES (?, ?, ?, ?)",
                            (full_name, fold_name, birth_date, year)).lastrowid

    if conn.in_transaction:
        return find_or_add()
    with _transaction(conn):
        return find_or_add()


def link_persons(conn: sqlite3.Connection, person_id: int, other_id: int, confirmed_by: str,
                 confirmed_at: str) -> None:
    """Record that the office confirmed two person ids are the same person."""
    conn.execute("INSERT OR REPLACE INTO person_links VALUES (?, ?, ?, ?)",
                 (min(person_id, other_id), max(person_id, other_id), confirmed_by, confirmed_at))


def add_awards(conn: sqlite3.Connection, rows: Iterable[dict], source: str) -> int:
    """Store titles granted by a decision or imported from old lists; the number stored."""
    if source not in ("import", "decision"):
        raise ValueError(f"award source must be 'import' or 'decision', not {source!r}")
    columns = ("person_id", "unit_code", "school_year", "kind", "code", "decision_no",
               "decision_date")
    values = [(*(row.get(c) for c in columns), source) for row in rows]
    sql = (f"INSERT INTO awards ({', '.join(columns)}, source) "
           f"VALUES ({', '.join('?' * (len(columns) + 1))})")
    if conn.in_transaction:
        conn.executemany(sql, values)
    else:
        with _transaction(conn):
            conn.executemany(sql, values)
    return len(values)


# Read


def _dicts(cursor: sqlite3.Cursor) -> list[dict]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def round_runs(conn: sqlite3.Connection, school_year: str | None = None) -> list[dict]:
    """The recorded rounds (id, school_year, round, run_at), oldest year first."""
    return _dicts(conn.execute(
        "SELECT id, school_year, round, run_at FROM runs WHERE ? IS NULL OR school_year = ? "
        "ORDER BY school_year, round, id", (school_year, school_year)))


def persons(conn: sqlite3.Connection) -> list[dict]:
    """Every person known to the store."""
    return _dicts(conn.execute("SELECT id, full_name, fold_name, birth_date, created_year "
                               "FROM persons ORDER BY id"))


def awards_of(conn: sqlite3.Connection, person_id: int) -> list[dict]:
    """The awards recorded for one person id, oldest year first."""
    return _dicts(conn.execute(
        "SELECT id, person_id, unit_code, school_year, kind, code, decision_no, decision_date, "
        "source FROM awards WHERE person_id = ? ORDER BY school_year, id", (person_id,)))


# Proposals (registrations included) and awards, as one list of titles.
_TITLES = """
    SELECT * FROM (
    SELECT r.school_year, r.round, p.unit_code, p.person_id, p.name, p.kind, p.code,
           'proposal' AS source, p.result
    FROM proposals p JOIN runs r ON r.id = p.run_id WHERE {proposals}
    UNION ALL
    SELECT a.school_year, NULL, a.unit_code, a.person_id, NULL, a.kind, a.code, a.source,
           'awarded'
    FROM awards a WHERE {awards}
    ) ORDER BY school_year, round IS NULL, round, unit_code, kind, code, person_id
"""
_SAME_PERSON = """
    WITH RECURSIVE same(id) AS (
        SELECT ? UNION
        SELECT CASE WHEN l.person_id = same.id THEN l.other_id ELSE l.person_id END
        FROM person_links l JOIN same ON same.id IN (l.person_id, l.other_id)
    )
"""


def person_titles(conn: sqlite3.Connection, person_id: int) -> list[dict]:
    """Titles registered, proposed and awarded for a person and every id confirmed as them."""
    sql = _SAME_PERSON + _TITLES.format(proposals="p.person_id IN same",
                                        awards="a.person_id IN same")
    keep = ("school_year", "round", "unit_code", "kind", "code", "source", "result")
    return [{k: row[k] for k in keep} for row in _dicts(conn.execute(sql, (person_id,)))]


def unit_titles(conn: sqlite3.Connection, unit_code: str) -> list[dict]:
    """Titles registered, proposed and awarded in a unit, for its staff and the unit itself."""
    sql = _TITLES.format(proposals="p.unit_code = ?", awards="a.unit_code = ?")
    return _dicts(conn.execute(sql, (unit_code, unit_code)))
