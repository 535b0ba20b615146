"""The history store: every round's inputs, staff, proposals and findings in one SQLite file.

`Store` owns the connection, the schema and its migrations, the transactions and every query:
no SQL is written anywhere else in tdkt. A round is recorded in one transaction that replaces
the earlier record of the same school year and round, so a run killed half-way leaves the
previous record exactly as it was. The schema is versioned with `PRAGMA user_version` and
migrated forward when the store is opened.

Statuses are kept as codes (pipeline.status), never as the Vietnamese labels people read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, overload

from pipeline.status import UnitStatus
from pipeline.text import fold

SCHEMA_VERSION = 6
# A table receiving at least this many rows, and at least as many as it holds, has its indexes
# built again after the rows rather than grown row by row (Store._bulk_load).
BULK_LOAD_ROWS = 20_000
BUSY_TIMEOUT_MS = 10_000
# SQLite's page cache per connection, in KiB (its default is 2 MB): a round's rows go into
# indexes keyed by unit, name and person, and a province's no longer fit in 2 MB (16 MB: the
# rows of 3,000 schools 3.6 -> 3.2 s; more gained nothing measurable).
CACHE_KIB = 16 * 1024
# SQLite's page size for a new store (an existing one keeps its own; SQLite's default is 4 KB):
# a round's bulk inserts split fewer pages (the rows of 3,000 schools 2.5 -> 2.3 s, their
# commit 0.25 -> 0.17 s); a lookup by person or unit reads a few pages either way.
PAGE_BYTES = 16 * 1024

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
    # 3 → 4: unit statuses as codes. tdkt 0.1 wrote the Vietnamese labels into units.status;
    # these are the labels it wrote (fixed here: later label changes must not change this step).
    # Every other status column (inputs.classification, proposals.result, decisions.result,
    # findings.severity, awards.source) already held codes.
    """
    UPDATE units SET status = CASE status
        WHEN 'Hợp lệ' THEN 'valid'
        WHEN 'Có lỗi' THEN 'with_errors'
        WHEN 'Không hợp lệ' THEN 'invalid'
        WHEN 'Chưa nộp' THEN 'missing'
    END
    WHERE status IN ('Hợp lệ', 'Có lỗi', 'Không hợp lệ', 'Chưa nộp');
    """,
    # 4 → 5: every spelling a person was seen under (a typo matched to an earlier spelling
    # still finds the person), a log of every link the office made or undid, the history files
    # imported (by content: a file imported twice changes nothing), the Phòng's approval of a
    # round (before anything goes to the Sở), and the index `tdkt history <unit>` needs.
    # Clean-ups of what tdkt 0.2 wrote: a missing birth date stored as the text "nan"/"NaT",
    # and the exact duplicate awards a second import of the same list stored.
    # tdkt_fold is pipeline.text.fold, registered on the connection by Store.open.
    """
    UPDATE persons SET birth_date = NULL WHERE birth_date IN ('nan', 'NaT', 'None', '');
    CREATE TABLE person_names (
        person_id INTEGER NOT NULL REFERENCES persons(id),
        fold_name TEXT NOT NULL,
        full_name TEXT NOT NULL,
        PRIMARY KEY (person_id, fold_name)
    );
    CREATE INDEX person_names_fold ON person_names (fold_name);
    INSERT OR IGNORE INTO person_names (person_id, fold_name, full_name)
        SELECT id, fold_name, full_name FROM persons ORDER BY id;
    INSERT OR IGNORE INTO person_names (person_id, fold_name, full_name)
        SELECT person_id, tdkt_fold(full_name), full_name FROM staff
        WHERE person_id IS NOT NULL AND full_name IS NOT NULL AND tdkt_fold(full_name) != ''
        ORDER BY run_id, row;
    CREATE TABLE link_log (
        id INTEGER PRIMARY KEY,
        person_id INTEGER NOT NULL,
        other_id INTEGER NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('link', 'unlink')),
        done_by TEXT,
        done_at TEXT
    );
    INSERT INTO link_log (person_id, other_id, action, done_by, done_at)
        SELECT person_id, other_id, 'link', confirmed_by, confirmed_at FROM person_links
        ORDER BY confirmed_at, person_id, other_id;
    CREATE TABLE imported_files (
        sha256 TEXT NOT NULL,
        source TEXT NOT NULL,
        file TEXT NOT NULL,
        imported_at TEXT NOT NULL,
        awards INTEGER NOT NULL,
        PRIMARY KEY (sha256, source)
    );
    DELETE FROM awards WHERE id NOT IN (
        SELECT min(id) FROM awards
        GROUP BY person_id, unit_code, school_year, kind, code, decision_no, decision_date,
                 source);
    CREATE INDEX awards_same ON awards (person_id, school_year, kind, code);
    CREATE INDEX units_code ON units (unit_code);
    CREATE TABLE approvals (
        school_year TEXT NOT NULL,
        round TEXT NOT NULL,
        approved_at TEXT,
        approved_by TEXT,
        manifest_sha256 TEXT,
        PRIMARY KEY (school_year, round)
    );
    """,
    # 5 → 6: the office a unit, a person, a proposal or a decision came through — the code of
    # the commune office whose report the Sở's round read it from; NULL for what the
    # consolidating office read from its own schools' files (every row of a Phòng's round, the
    # Sở's direct schools).
    """
    ALTER TABLE units ADD COLUMN office TEXT;
    ALTER TABLE staff ADD COLUMN office TEXT;
    ALTER TABLE proposals ADD COLUMN office TEXT;
    ALTER TABLE decisions ADD COLUMN office TEXT;
    CREATE INDEX units_office ON units (office);
    """,
]
assert len(MIGRATIONS) == SCHEMA_VERSION

_COLUMNS = {
    "inputs": ("file", "sha256", "unit_code", "classification"),
    "units": ("unit_code", "unit_name", "level", "block", "status", "office"),
    "staff": ("person_id", "unit_code", "row", "full_name", "birth_date", "sex", "position",
              "staff_group", "grade", "office"),
    "proposals": ("person_id", "unit_code", "subject", "name", "kind", "code", "result",
                  "office"),
    "decisions": ("unit_code", "person_id", "name", "kind", "code", "rule_id", "result",
                  "citation", "office"),
    "findings": ("file", "sheet", "cell", "code", "severity", "value", "expected", "message",
                 "unit"),
}
_AWARD_COLUMNS = ("person_id", "unit_code", "school_year", "kind", "code", "decision_no",
                  "decision_date")
AWARD_SOURCES = ("import", "decision")
REGISTRATION_ROUND = "dang-ky"
NOT_REGISTERED = "khong_dang_ky"  # the vocabulary's "không đăng ký" (aggregate.NOT_REGISTERED)

# Proposals (registrations included) and awards, as one list of titles.
_TITLES = """
    SELECT * FROM (
    SELECT r.school_year, r.round, p.unit_code, p.person_id, p.name, p.kind, p.code,
           'proposal' AS source, p.result
    FROM proposals p JOIN runs r ON r.id = p.run_id WHERE {proposals}
    UNION ALL
    SELECT a.school_year, NULL, a.unit_code, a.person_id, n.full_name, a.kind, a.code,
           a.source, 'awarded'
    FROM awards a LEFT JOIN persons n ON n.id = a.person_id WHERE {awards}
    ) ORDER BY school_year, round IS NULL, round, unit_code, kind, code, person_id
"""
_SAME_PERSON = """
    WITH RECURSIVE same(id) AS (
        SELECT ? UNION
        SELECT CASE WHEN l.person_id = same.id THEN l.other_id ELSE l.person_id END
        FROM person_links l JOIN same ON same.id IN (l.person_id, l.other_id)
    )
"""


# Why SQLite could not write the store (its primary result codes), as the office can act on it.
_UNWRITABLE = {
    5: "một chương trình khác đang ghi vào kho (một lần chạy tdkt khác, hoặc một phần mềm đang "
       "mở tệp này); hãy chờ hoặc đóng chương trình đó rồi chạy lại",  # SQLITE_BUSY
    6: "một chương trình khác đang giữ kho; hãy đóng chương trình đó rồi chạy lại",  # LOCKED
    3: "không được phép ghi vào tệp hoặc thư mục của kho; hãy cho phép ghi rồi chạy lại",
    8: "tệp kho hoặc thư mục của nó chỉ cho đọc; hãy cho phép ghi rồi chạy lại",  # READONLY
    10: "lỗi đọc ghi ổ đĩa; hãy kiểm tra ổ đĩa (hoặc ổ mạng) rồi chạy lại",  # SQLITE_IOERR
    13: "ổ đĩa đã đầy; hãy giải phóng chỗ trống rồi chạy lại",  # SQLITE_FULL
    14: "không mở được tệp của kho để ghi; hãy kiểm tra thư mục rồi chạy lại",  # CANTOPEN
}


class StoreError(Exception):
    """The history store can't be used: written by a newer tdkt, or not a store at all."""


class Rows(Sequence[dict]):
    """Rows of a table kept as columns (name → one list each, all of one length), or as
    tuples (`from_tuples`): each row read is a dict built on the way, and `values` gives the
    rows as tuples without any dict (a province's round is a few hundred thousand rows)."""

    def __init__(self, columns: dict[str, list]) -> None:
        self.__columns: dict[str, list] | None = columns
        self._tuples: tuple[tuple[str, ...], list[tuple]] | None = None
        self._length = len(next(iter(columns.values()))) if columns else 0
        if any(len(values) != self._length for values in columns.values()):
            raise ValueError("columns of different lengths")

    @classmethod
    def from_tuples(cls, names: Sequence[str], rows: list[tuple]) -> Rows:
        """Rows given as tuples of the columns `names`, in that order: `values` in that order
        gives them back as they are (no pass through columns)."""
        if any(len(row) != len(names) for row in rows):
            raise ValueError("rows of another width than the names")
        made = cls({})
        made.__columns, made._tuples, made._length = None, (tuple(names), rows), len(rows)
        return made

    @property
    def _columns(self) -> dict[str, list]:
        if self.__columns is None:
            names, rows = self._tuples  # type: ignore[misc]
            values = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in names]
            self.__columns = dict(zip(names, values, strict=True))
        return self.__columns

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> dict: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict]: ...
    def __getitem__(self, index: int | slice) -> dict | list[dict]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._length))]
        return {name: values[index] for name, values in self._columns.items()}

    def __iter__(self) -> Iterator[dict]:
        names = list(self._columns)
        return (dict(zip(names, row, strict=True))
                for row in zip(*self._columns.values(), strict=True))

    def values(self, names: Sequence[str]) -> Iterator[tuple]:
        """Each row's values of the columns `names`, in that order (None for a column the
        rows do not have)."""
        if self._tuples is not None and tuple(names) == self._tuples[0]:
            return iter(self._tuples[1])
        absent = [None] * self._length
        return zip(*(self._columns.get(name, absent) for name in names), strict=True)


def row_values(rows: Sequence[dict], names: Sequence[str]) -> Iterator[tuple]:
    """Each row's values of the columns `names` (None where a row has no such key)."""
    if isinstance(rows, Rows):
        return rows.values(names)
    return (tuple(map(row.get, names)) for row in rows)


@dataclass(frozen=True)
class RoundRecord:
    """One consolidated round, as it is written to the store.

    Each person's `title` and `commendation` are stored as proposals of that person (result
    'registered' in the registration round, 'proposed' otherwise) unless empty, "khong_dang_ky",
    or already in `proposals` with the same (person_id, kind, code). Each unit's `status` is a
    UnitStatus code. Every name a person of `people` is listed under is kept as a spelling of
    that person: `spellings`, (person_id, fold_name, full_name) each, when the caller has them
    (record.match_persons), else worked out from the rows written.
    """

    school_year: str
    round: str
    run_at: str  # ISO timestamp
    inputs: Sequence[dict] = field(default_factory=list)
    units: Sequence[dict] = field(default_factory=list)
    people: Sequence[dict] = field(default_factory=list)
    proposals: Sequence[dict] = field(default_factory=list)
    decisions: Sequence[dict] = field(default_factory=list)
    findings: Sequence[dict] = field(default_factory=list)
    spellings: Sequence[tuple[int, str, str]] | None = None


class Store:
    """One open history store: its connection, schema, transactions and named queries.

    Open it with `Store.open(path)` (created or migrated as needed) and close it with `close()`
    or a `with` block. Writes of several statements run in `transaction()`; a method that writes
    joins the caller's transaction when one is open.
    """

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.connection = connection
        self.path = path
        self._savepoints = 0

    # Open, close, migrate

    @classmethod
    def open(cls, path: Path) -> Store:
        """The store at `path`, created or migrated to SCHEMA_VERSION as needed."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        store = cls(conn, path)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute(f"PRAGMA page_size = {PAGE_BYTES}")  # a new store's only (see above)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            conn.create_function("tdkt_fold", 1, _fold_or_empty, deterministic=True)
            store._migrate()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"Kho lịch sử {path} bị hỏng hoặc không phải tệp SQLite ({exc}).") \
                from exc
        except BaseException:
            conn.close()
            raise
        conn.row_factory = sqlite3.Row
        return store

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The schema version the store was written with (PRAGMA user_version)."""
        return self.connection.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        """Apply the missing migrations, each in its own transaction with its user_version."""
        while True:
            version = self.schema_version
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"Kho lịch sử {self.path} được tạo bởi phiên bản mới hơn của tdkt (lược đồ "
                    f"{version}; phiên bản đang chạy chỉ đọc được đến lược đồ {SCHEMA_VERSION})."
                    " Hãy cập nhật tdkt rồi chạy lại.")
            if version == SCHEMA_VERSION:
                return
            with self.transaction():
                # Another process may have migrated while we waited for the write lock.
                if self.schema_version == version:
                    for statement in _statements(MIGRATIONS[version]):
                        self.connection.execute(statement)
                    self.connection.execute(f"PRAGMA user_version = {version + 1}")

    # Transactions and plain SQL

    @property
    def in_transaction(self) -> bool:
        return self.connection.in_transaction

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK and re-raise on any exception.

        Inside an open transaction it is a savepoint instead: an exception undoes only what was
        written inside it, and the caller's transaction decides the rest.
        """
        conn = self.connection
        if conn.in_transaction:
            self._savepoints += 1
            name = f"tdkt_{self._savepoints}"
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield self
            except BaseException:
                if conn.in_transaction:
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
                raise
            finally:
                self._savepoints -= 1
            conn.execute(f"RELEASE {name}")
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            reason = _UNWRITABLE.get(getattr(exc, "sqlite_errorcode", 0) & 0xFF)
            if reason is None:  # not the file or the disk: our own mistake, as it is
                raise
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"Không ghi được vào kho lịch sử {self.path}: {reason}.") from exc

    def execute(self, sql: str, parameters: Iterable[Any] = ()) -> sqlite3.Cursor:
        """Run one statement (for checks and tests; tdkt itself uses the named queries)."""
        return self.connection.execute(sql, tuple(parameters))

    def query(self, sql: str, parameters: Iterable[Any] = ()) -> list[dict]:
        """The rows of one query as dicts."""
        return _dicts(self.execute(sql, parameters))

    # Rounds

    def record_round(self, run: RoundRecord) -> int:
        """Store one round, replacing the earlier record of the same year and round; the run
        id. Joins the caller's transaction when one is open (person ids assigned in the same
        one)."""
        units = [{**unit, "status": _status_code(unit.get("status"))} for unit in run.units]
        conn = self.connection
        with self.transaction():
            conn.execute("DELETE FROM runs WHERE school_year = ? AND round = ?",
                         (run.school_year, run.round))
            run_id = conn.execute(
                "INSERT INTO runs (school_year, round, run_at) VALUES (?, ?, ?)",
                (run.school_year, run.round, run.run_at)).lastrowid
            loads: dict[str, list[Sequence[dict]]] = {}
            for table, rows in (("inputs", run.inputs), ("units", units), ("staff", run.people),
                                ("proposals", run.proposals), ("proposals", _registrations(run)),
                                ("decisions", run.decisions), ("findings", run.findings)):
                loads.setdefault(table, []).append(rows)
            for table, parts in loads.items():
                columns = _COLUMNS[table]
                with self._bulk_load(table, sum(map(len, parts))):
                    for rows in parts:
                        conn.executemany(
                            f"INSERT INTO {table} (run_id, {', '.join(columns)}) "
                            f"VALUES ({run_id:d}{', ?' * len(columns)})",
                            row_values(rows, columns))
            # Every spelling a person was recorded under finds them later (a typo match keeps
            # the person's id, not the name typed this year).
            if run.spellings is not None:
                self.add_spellings(run.spellings)
            else:
                conn.execute(
                    "INSERT OR IGNORE INTO person_names (person_id, fold_name, full_name) "
                    "SELECT person_id, tdkt_fold(full_name), full_name FROM staff "
                    "WHERE run_id = ? AND person_id IS NOT NULL AND tdkt_fold(full_name) != '' "
                    "ORDER BY row", (run_id,))
        return run_id

    def round_runs(self, school_year: str | None = None) -> list[dict]:
        """The recorded rounds (id, school_year, round, run_at), oldest year first."""
        return self.query(
            "SELECT id, school_year, round, run_at FROM runs "
            "WHERE ? IS NULL OR school_year = ? ORDER BY school_year, round, id",
            (school_year, school_year))

    def round_inputs(self, school_year: str, round: str) -> dict[str, str]:
        """File name → sha256 of the inputs of the recorded round."""
        rows = self.connection.execute(
            "SELECT i.file, i.sha256 FROM inputs i JOIN runs r ON r.id = i.run_id "
            "WHERE r.school_year = ? AND r.round = ?", (school_year, round))
        return {r[0]: r[1] for r in rows}

    def unit_status_counts(self, school_year: str, round: str) -> dict[str, int]:
        """How many units of the recorded round had each status (UnitStatus codes)."""
        rows = self.connection.execute(
            "SELECT u.status, COUNT(*) FROM units u JOIN runs r ON r.id = u.run_id "
            "WHERE r.school_year = ? AND r.round = ? GROUP BY u.status", (school_year, round))
        return {r[0]: r[1] for r in rows}

    def round_staff(self, school_year: str, round: str) -> list[dict]:
        """The staff rows of the recorded round (unit_code, row, person_id, full_name,
        birth_date, sex, position, staff_group, office), by unit and row."""
        return self.query(
            "SELECT s.unit_code, s.row, s.person_id, s.full_name, s.birth_date, s.sex, "
            "s.position, s.staff_group, s.office FROM staff s JOIN runs r ON r.id = s.run_id "
            "WHERE r.school_year = ? AND r.round = ? ORDER BY s.unit_code, s.row",
            (school_year, round))

    def round_proposals(self, school_year: str, round: str) -> list[dict]:
        """The proposals of the recorded round (person_id, unit_code, subject, name, kind,
        code, result, office), in the order they were recorded."""
        return self.query(
            "SELECT p.person_id, p.unit_code, p.subject, p.name, p.kind, p.code, p.result, "
            "p.office FROM proposals p JOIN runs r ON r.id = p.run_id "
            "WHERE r.school_year = ? AND r.round = ? ORDER BY p.rowid", (school_year, round))

    def has_unit(self, unit_code: str) -> bool:
        """Whether a recorded round lists this unit, or an imported award names it."""
        return self.connection.execute(
            "SELECT EXISTS (SELECT 1 FROM units WHERE unit_code = ?) "
            "OR EXISTS (SELECT 1 FROM awards WHERE unit_code = ?)",
            (unit_code, unit_code)).fetchone()[0] == 1

    # Persons

    def upsert_person(self, full_name: str, fold_name: str, birth_date: str | None,
                      year: str) -> int:
        """The id of the person with this folded name and birth date, added if new (always
        new without a birth date: a name alone identifies nobody)."""
        with self.transaction():
            found = self.connection.execute(
                "SELECT id FROM persons WHERE fold_name = ? AND birth_date = ? "
                "ORDER BY id LIMIT 1", (fold_name, birth_date)).fetchone()
            if found:
                return found[0]
            return self.add_person(full_name, fold_name, birth_date, year)

    def add_person(self, full_name: str, fold_name: str, birth_date: str | None,
                   year: str) -> int:
        """Add a new person; their id."""
        with self.transaction():
            person = self.connection.execute(
                "INSERT INTO persons (full_name, fold_name, birth_date, created_year) "
                "VALUES (?, ?, ?, ?)", (full_name, fold_name, birth_date, year)).lastrowid
            self.add_spellings([(person, fold_name, full_name)])
        return person

    def add_persons(self, rows: Iterable[tuple[int, str, str, str | None, str]]) -> None:
        """Add new persons with the ids chosen by the caller: (id, full_name, fold_name,
        birth_date, created_year) each; their names are their first spellings."""
        rows = list(rows)
        with self.transaction():
            with self._bulk_load("persons", len(rows)):
                self.connection.executemany(
                    "INSERT INTO persons (id, full_name, fold_name, birth_date, created_year) "
                    "VALUES (?, ?, ?, ?, ?)", rows)
            ids = [r[0] for r in rows]
            first = ids[0] if ids else 0
            if ids != list(range(first, first + len(ids))):
                self.add_spellings([(r[0], r[2], r[1]) for r in rows])
                return
            # Ids one after another (a round's new persons): that range holds just them, and
            # SQLite copies their names itself, in the same order (a province's 226,000 persons:
            # 0.34 -> 0.11 s).
            with self._bulk_load("person_names", len(rows)):
                self.connection.execute(
                    "INSERT OR IGNORE INTO person_names (person_id, fold_name, full_name) "
                    "SELECT id, fold_name, full_name FROM persons "
                    "WHERE id >= ? AND id < ? AND fold_name != '' ORDER BY id",
                    (first, first + len(ids)))

    def add_spellings(self, rows: Iterable[tuple[int, str, str]]) -> None:
        """Remember names a person was seen under: (person_id, fold_name, full_name) each; a
        folded name already known for that person is kept as it was."""
        rows = [r for r in rows if r[1]]
        with self.transaction(), self._bulk_load("person_names", len(rows)):
            self.connection.executemany(
                "INSERT OR IGNORE INTO person_names (person_id, fold_name, full_name) "
                "VALUES (?, ?, ?)", rows)

    @contextmanager
    def _bulk_load(self, table: str, count: int) -> Iterator[None]:
        """Run the block (inserting `count` rows into `table`) with the table's own indexes
        dropped, and build them again after it, when they are BULK_LOAD_ROWS or more and at
        least double the table (an office's first round in a store): SQLite builds an
        index from all its keys at once faster than it grows it row by row (the 945,000 rows
        of 3,000 schools: 2.7 -> 1.9 s). In a transaction of its own within the caller's: a
        failure puts the indexes back with the rows. A table of earlier years, larger than
        the rows, keeps its indexes (building them again would cost more). Unique indexes
        stay: they decide which rows go in (INSERT OR IGNORE)."""
        held = self.connection.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0] or 0
        if count < BULK_LOAD_ROWS or held > count:
            yield
            return
        plain = {row[1] for row in self.connection.execute(f"PRAGMA index_list({table})")
                 if not row[2] and row[3] == "c"}  # (seq, name, unique, origin, partial)
        indexes = [(name, sql) for name, sql in self.connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL ORDER BY name", (table,)) if name in plain]
        with self.transaction():
            for name, _ in indexes:
                self.connection.execute(f'DROP INDEX "{name}"')
            yield
            for _, sql in indexes:
                self.connection.execute(sql)

    def next_person_id(self) -> int:
        """The id after the largest one given so far."""
        return (self.connection.execute("SELECT max(id) FROM persons").fetchone()[0] or 0) + 1

    def person_ids(self) -> set[int]:
        """The id of every person known to the store."""
        return {r[0] for r in self.connection.execute("SELECT id FROM persons")}

    def persons(self) -> list[dict]:
        """Every person known to the store."""
        return self.query("SELECT id, full_name, fold_name, birth_date, created_year "
                          "FROM persons ORDER BY id")

    def persons_named(self, fold_name: str, birth_date: str | None = None) -> list[dict]:
        """The persons (id, full_name, birth_date) ever recorded under this folded name, born
        that day when `birth_date` is given; by id."""
        return self.query(
            "SELECT p.id, p.full_name, p.birth_date FROM persons p WHERE p.id IN "
            "(SELECT person_id FROM person_names WHERE fold_name = ?) "
            "AND (? IS NULL OR p.birth_date = ?) ORDER BY p.id",
            (fold_name, birth_date, birth_date))

    def persons_by_id(self, ids: Iterable[int]) -> dict[int, dict]:
        """id → person (id, full_name, birth_date) of those of `ids` the store knows."""
        wanted = sorted({int(i) for i in ids})
        found: dict[int, dict] = {}
        for start in range(0, len(wanted), 500):  # SQLite's bound on parameters
            chunk = wanted[start:start + 500]
            found.update((r["id"], r) for r in self.query(
                "SELECT id, full_name, birth_date FROM persons "
                f"WHERE id IN ({', '.join('?' * len(chunk))})", chunk))
        return found

    def spellings(self, person_id: int) -> list[str]:
        """The names a person was recorded under (as first typed), the first one first."""
        return [r[0] for r in self.connection.execute(
            "SELECT full_name FROM person_names WHERE person_id = ? ORDER BY rowid",
            (person_id,))]

    def person_sightings(self) -> list[tuple[int, str, str | None, str | None]]:
        """(person_id, fold_name, birth_date, unit_code) of every person, once per spelling
        and unit they were seen in as staff or in an award (unit None when in neither)."""
        return [tuple(r) for r in self.connection.execute("""
            SELECT p.id AS person_id, n.fold_name, p.birth_date, s.unit_code
            FROM persons p
            JOIN (SELECT person_id, fold_name FROM person_names
                  UNION SELECT id, fold_name FROM persons) n ON n.person_id = p.id
            LEFT JOIN (
                SELECT person_id, unit_code FROM staff
                UNION SELECT person_id, unit_code FROM awards) s ON s.person_id = p.id
        """)]

    def undated_staff(self, school_year: str) -> list[tuple[int, str, str | None]]:
        """(person_id, full_name, unit_code) of the staff rows of a school year whose person
        has no birth date."""
        return [tuple(r) for r in self.connection.execute(
            "SELECT DISTINCT s.person_id, s.full_name, s.unit_code FROM staff s "
            "JOIN runs r ON r.id = s.run_id JOIN persons p ON p.id = s.person_id "
            "WHERE r.school_year = ? AND p.birth_date IS NULL", (school_year,))]

    def link_persons(self, person_id: int, other_id: int, confirmed_by: str,
                     confirmed_at: str) -> None:
        """Record that the office confirmed two person ids are the same person (and log it)."""
        pair = (min(person_id, other_id), max(person_id, other_id))
        with self.transaction():
            self.connection.execute(
                "INSERT OR REPLACE INTO person_links VALUES (?, ?, ?, ?)",
                (*pair, confirmed_by, confirmed_at))
            self._log_link(pair, "link", confirmed_by, confirmed_at)

    def unlink_persons(self, person_id: int, other_id: int, undone_by: str,
                       undone_at: str) -> bool:
        """Undo the office's confirmation that two person ids are one person (and log it);
        False when they were not linked to each other."""
        pair = (min(person_id, other_id), max(person_id, other_id))
        with self.transaction():
            gone = self.connection.execute(
                "DELETE FROM person_links WHERE person_id = ? AND other_id = ?", pair).rowcount
            if gone:
                self._log_link(pair, "unlink", undone_by, undone_at)
        return bool(gone)

    def _log_link(self, pair: tuple[int, int], action: str, by: str, at: str) -> None:
        self.connection.execute(
            "INSERT INTO link_log (person_id, other_id, action, done_by, done_at) "
            "VALUES (?, ?, ?, ?, ?)", (*pair, action, by, at))

    def person_links(self) -> list[tuple[int, int]]:
        """Every (person_id, other_id) the office confirmed as the same person."""
        return [(r[0], r[1]) for r in
                self.connection.execute("SELECT person_id, other_id FROM person_links")]

    def links_of(self, person_id: int) -> list[dict]:
        """The confirmations in force that involve a person (person_id, other_id,
        confirmed_by, confirmed_at)."""
        return self.query(
            "SELECT person_id, other_id, confirmed_by, confirmed_at FROM person_links "
            "WHERE ? IN (person_id, other_id) ORDER BY person_id, other_id", (person_id,))

    def same_person_ids(self, person_id: int) -> list[int]:
        """The person and every id confirmed as them, directly or through others; sorted."""
        return sorted(r[0] for r in self.connection.execute(
            _SAME_PERSON + "SELECT id FROM same", (person_id,)))

    def link_log(self) -> list[dict]:
        """Every link the office made or undid, oldest first (person_id, other_id, action
        'link' or 'unlink', done_by, done_at)."""
        return self.query("SELECT person_id, other_id, action, done_by, done_at FROM link_log "
                          "ORDER BY id")

    # Titles and awards

    def add_awards(self, rows: Iterable[dict], source: str) -> int:
        """Store titles granted by a decision or imported from old lists; the number stored.

        An award already stored (same person, unit, school year, kind, code and source) is not
        stored again: importing the same list twice changes nothing."""
        if source not in AWARD_SOURCES:
            raise ValueError(f"award source must be 'import' or 'decision', not {source!r}")
        stored = 0
        with self.transaction():
            for row in rows:
                stored += self.connection.execute(
                    f"INSERT INTO awards ({', '.join(_AWARD_COLUMNS)}, source) "
                    f"SELECT {', '.join('?' * (len(_AWARD_COLUMNS) + 1))} WHERE NOT EXISTS ("
                    "SELECT 1 FROM awards WHERE person_id IS ? AND unit_code IS ? "
                    "AND school_year = ? AND kind = ? AND code = ? AND source = ?)",
                    (*(row.get(c) for c in _AWARD_COLUMNS), source, row.get("person_id"),
                     row.get("unit_code"), row.get("school_year"), row.get("kind"),
                     row.get("code"), source)).rowcount
        return stored

    def award_holder(self, fold_name: str, birth_date: str | None, award: dict,
                     source: str) -> int | None:
        """The person already holding this award (unit, school year, kind, code, source) and
        recorded under this folded name and birth date; None when there is none (a row of a
        list imported before finds its person again, even without a birth date)."""
        row = self.connection.execute(
            "SELECT a.person_id FROM awards a JOIN persons p ON p.id = a.person_id "
            "WHERE a.unit_code IS ? AND a.school_year = ? AND a.kind = ? AND a.code = ? "
            "AND a.source = ? AND p.birth_date IS ? AND a.person_id IN "
            "(SELECT person_id FROM person_names WHERE fold_name = ?) "
            "ORDER BY a.person_id LIMIT 1",
            (award.get("unit_code"), award.get("school_year"), award.get("kind"),
             award.get("code"), source, birth_date, fold_name)).fetchone()
        return row[0] if row else None

    # Imported files

    def imported_file(self, sha256: str, source: str) -> dict | None:
        """The earlier import of a file of this content as `source` (file, imported_at,
        awards), None when never imported."""
        rows = self.query("SELECT file, imported_at, awards FROM imported_files "
                          "WHERE sha256 = ? AND source = ?", (sha256, source))
        return rows[0] if rows else None

    def mark_imported(self, sha256: str, source: str, file: str, imported_at: str,
                      awards: int) -> None:
        """Record that a file of this content was imported as `source`."""
        with self.transaction():
            self.connection.execute(
                "INSERT OR IGNORE INTO imported_files (sha256, source, file, imported_at, "
                "awards) VALUES (?, ?, ?, ?, ?)", (sha256, source, file, imported_at, awards))

    def awards_of(self, person_id: int) -> list[dict]:
        """The awards recorded for one person id, oldest year first."""
        return self.query(
            "SELECT id, person_id, unit_code, school_year, kind, code, decision_no, "
            "decision_date, source FROM awards WHERE person_id = ? ORDER BY school_year, id",
            (person_id,))

    def person_titles(self, person_id: int) -> list[dict]:
        """Titles registered, proposed and awarded for a person and every id confirmed as
        them."""
        sql = _SAME_PERSON + _TITLES.format(proposals="p.person_id IN same",
                                            awards="a.person_id IN same")
        keep = ("school_year", "round", "unit_code", "kind", "code", "source", "result")
        return [{k: row[k] for k in keep} for row in self.query(sql, (person_id,))]

    def unit_titles(self, unit_code: str) -> list[dict]:
        """Titles registered, proposed and awarded in a unit, for its staff and the unit
        itself."""
        sql = _TITLES.format(proposals="p.unit_code = ?", awards="a.unit_code = ?")
        return self.query(sql, (unit_code, unit_code))

    def titles_held(self, kind: str, results_round: str) -> list[tuple[int, str, str]]:
        """(person_id, school_year, code) of every title of `kind` held: passed at the
        year-end round `results_round` — except in a year whose decisions of that kind were
        imported, read from the decisions only (the authority may have granted fewer titles
        than the Phòng found eligible) — or awarded."""
        return [tuple(r) for r in self.connection.execute(
            """SELECT p.person_id, r.school_year, p.code FROM proposals p
               JOIN runs r ON r.id = p.run_id
               WHERE r.round = ? AND p.kind = ? AND p.result = 'pass'
                 AND r.school_year NOT IN (SELECT school_year FROM awards
                                           WHERE source = 'decision' AND kind = ?)
               UNION SELECT person_id, school_year, code FROM awards WHERE kind = ?""",
            (results_round, kind, kind, kind))]

    def grades_held(self, results_round: str) -> list[tuple[int, str, str]]:
        """(person_id, school_year, grade) of every evaluation grade recorded at the year-end
        round `results_round` or imported."""
        return [tuple(r) for r in self.connection.execute(
            """SELECT s.person_id, r.school_year, s.grade FROM staff s
               JOIN runs r ON r.id = s.run_id WHERE r.round = ? AND s.grade IS NOT NULL
               UNION SELECT person_id, school_year, code FROM awards WHERE kind = 'grade'""",
            (results_round,))]

    # Messages sent

    def sent(self, key: str, recipient: str) -> str | None:
        """The digest of the message `key` last sent to `recipient`, None when never sent."""
        row = self.connection.execute(
            "SELECT digest FROM send_log WHERE key = ? AND recipient = ?",
            (key, recipient)).fetchone()
        return row[0] if row else None

    def mark_sent(self, key: str, recipient: str, digest: str, sent_at: str) -> None:
        """Record, in its own small transaction, that the server accepted a message."""
        with self.transaction():
            self.connection.execute(
                "INSERT OR REPLACE INTO send_log (key, recipient, digest, sent_at) "
                "VALUES (?, ?, ?, ?)", (key, recipient, digest, sent_at))

    def send_log(self) -> dict[tuple[str, str], str]:
        """(key, recipient) → digest of every message sent."""
        return {(r[0], r[1]): r[2] for r in
                self.connection.execute("SELECT key, recipient, digest FROM send_log")}

    # Approvals

    def approve_round(self, school_year: str, round: str, approved_by: str,
                      manifest_sha256: str, at: datetime) -> None:
        """Record that the Phòng approved a round's outputs (the manifest of that digest);
        a later approval of the same round replaces the earlier one."""
        with self.transaction():
            self.connection.execute(
                "INSERT OR REPLACE INTO approvals "
                "(school_year, round, approved_at, approved_by, manifest_sha256) "
                "VALUES (?, ?, ?, ?, ?)",
                (school_year, round, at.isoformat(timespec="seconds"), approved_by,
                 manifest_sha256))

    def round_approval(self, school_year: str, round: str) -> dict | None:
        """The Phòng's approval of a round (school_year, round, approved_at, approved_by,
        manifest_sha256), None when the round was never approved."""
        rows = self.query(
            "SELECT school_year, round, approved_at, approved_by, manifest_sha256 "
            "FROM approvals WHERE school_year = ? AND round = ?", (school_year, round))
        return rows[0] if rows else None

    # The input archive

    def first_seen(self, sha256: str) -> str | None:
        """When the archived file of this content first arrived (ISO), None if not archived."""
        row = self.connection.execute("SELECT first_seen FROM archive WHERE sha256 = ?",
                                      (sha256,)).fetchone()
        return row[0] if row else None

    def archive_file(self, sha256: str, file: str, size: int, first_seen: str,
                     stored_as: str) -> None:
        """Record an archived file (kept when its content was already recorded)."""
        with self.transaction():
            self.connection.execute(
                "INSERT OR IGNORE INTO archive (sha256, file, size, first_seen, stored_as) "
                "VALUES (?, ?, ?, ?, ?)", (sha256, file, size, first_seen, stored_as))


def _fold_or_empty(text: object) -> str:
    """pipeline.text.fold for SQL (NULL folds to "")."""
    return fold(str(text)) if text is not None else ""


def open_store(path: Path) -> Store:
    """The store at `path`, created or migrated as needed (`Store.open`)."""
    return Store.open(path)


def _statements(script: str) -> Iterator[str]:
    """The SQL statements of `script`; executescript() would commit our transaction."""
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):  # false for a ';' inside a string or trigger
            if buffer.strip(" \n;"):
                yield buffer.strip()
            buffer = ""


def _status_code(value: object) -> str | None:
    """A unit status as its code (ValueError for anything that is not one: a label is not)."""
    if value is None:
        return None
    try:
        return UnitStatus(str(value)).value
    except ValueError:
        raise ValueError(f"not a unit status: {value!r}") from None


def _registrations(run: RoundRecord) -> Rows:
    """Each person's title and commendation as a proposal not already in `run.proposals`."""
    known = {(p.get("person_id"), p.get("kind"), p.get("code")) for p in run.proposals}
    # The Sở's registration round ("tinh-dang-ky") registers as the schools' does.
    result = "registered" if run.round.endswith(REGISTRATION_ROUND) else "proposed"
    rows = []  # in the order of _COLUMNS["proposals"]
    add = rows.append
    for person, unit, name, title, commendation, office in row_values(run.people, (
            "person_id", "unit_code", "full_name", "title", "commendation", "office")):
        if title and title != NOT_REGISTERED and (person, "title", title) not in known:
            add((person, unit, "person", name, "title", title, result, office))
        if commendation and commendation != NOT_REGISTERED and \
                (person, "commendation", commendation) not in known:
            add((person, unit, "person", name, "commendation", commendation, result, office))
    return Rows.from_tuples(_COLUMNS["proposals"], rows)


def _dicts(cursor: sqlite3.Cursor) -> list[dict]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]
