"""Importing decided titles: old consolidated lists and the authorities' Quyết định lists.

An import changes the store once: a file of the same content imported again is recognised by
its sha256 and changes nothing, and a row already stored from another copy of the list (same
person, unit, year, title) is not stored twice. Unit codes are checked against the office's
registry. The matches the office should confirm (a near name, another school, several
candidates) are returned as a table, written by the CLI as a workbook `tdkt confirm` reads.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.config import ConfigError, year_start
from pipeline.findings import Finding, has_errors
from pipeline.forms.definitions import load_forms
from pipeline.ingest.normalize import Context
from pipeline.ingest.read import file_sha256, read_workbook
from pipeline.ingest.submission import submission
from pipeline.store.database import Store
from pipeline.store.identity import MATCH_LABELS, KnownPeople, match_person, person_key
from pipeline.store.record import TO_CONFIRM, known_people

HISTORY_FORM = "lich-su"
AWARD_KINDS = ("title", "commendation", "grade")
MATCH_COLUMNS = ["row", "school_year", "full_name", "birth_date", "unit_code", "person_id",
                 "how", "label", "candidates"]
UNIT_EXPECTED = "một mã trong danh mục đơn vị của Phòng"


@dataclass(frozen=True)
class ImportResult:
    """What one import did: awards stored, rows already in the store, problems found, the
    matches to confirm, and the earlier import when the same file was imported before."""

    stored: int = 0
    already_stored: int = 0
    findings: list[Finding] = field(default_factory=list)
    matches: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=MATCH_COLUMNS))
    earlier: dict | None = None  # file, imported_at, awards of the earlier import


def import_awards(store: Store, path: Path, source: str, unit_codes: frozenset[str],
                  at: dt.datetime | None = None) -> ImportResult:
    """Store every valid row of a history list as awards (one per title, form, grade) in one
    transaction; `unit_codes` are the registry's codes (a row of another code is reported and
    left out)."""
    sha256 = file_sha256(path)
    earlier = store.imported_file(sha256, source)
    if earlier is not None:
        return ImportResult(earlier=earlier)
    forms = load_forms()
    book, findings = read_workbook(path, path.name)
    if book is None or has_errors(findings):
        return ImportResult(findings=findings)
    sub = submission(book, forms, HISTORY_FORM, None, Context(forms.vocabs, unit_codes))
    rows = sub.valid_rows("awards")  # an office list: tied to no unit
    findings = findings + list(sub.findings)
    table = sub.tables.get("awards")

    def where(column: str, row_number: int) -> dict[str, str | None]:
        return {"sheet": table.raw.name if table else None,
                "cell": f"{table.letter(column)}{row_number}" if table else None}

    matches: list[dict] = []
    stored = already = 0
    with store.transaction():
        known = KnownPeople.from_frame(known_people(store))
        for row_number, row in rows.iterrows():
            year, unit = str(row["school_year"]), row["unit_code"]
            try:
                year_start(year)
            except ConfigError:
                findings.append(Finding.make(
                    "bad-school-year", path.name, **where("school_year", row_number),
                    column="Năm học", value=year, expected="năm học dạng 2023-2024"))
                continue
            if unit not in unit_codes:
                findings.append(Finding.make(
                    "unit-not-in-registry", path.name, **where("unit_code", row_number),
                    column="Mã đơn vị", value=unit, expected=UNIT_EXPECTED))
                continue
            awards = _awards(row, year)
            if not awards:
                continue
            key = person_key(row["full_name"], row["birth_date"])
            # A row imported before (from another copy of the list) finds its person again.
            holders = {store.award_holder(key[0], key[1] or None, award, source)
                       for award in awards}
            if len(holders) == 1 and None not in holders:
                already += len(awards)
                continue
            match = match_person(known, row["full_name"], row["birth_date"], unit)
            person = match.person_id
            if person is None:
                person = store.add_person(str(row["full_name"]), key[0], key[1] or None, year)
            else:
                store.add_spellings([(person, key[0], str(row["full_name"]))])
            known.add(person, key[0], key[1], unit)
            if match.how in TO_CONFIRM:
                matches.append({"row": row_number, "school_year": year,
                                "full_name": row["full_name"], "birth_date": row["birth_date"],
                                "unit_code": unit, "person_id": person, "how": match.how,
                                "label": MATCH_LABELS[match.how],
                                "candidates": ", ".join(map(str, match.candidates))})
            new = store.add_awards([{**a, "person_id": person} for a in awards], source)
            stored += new
            already += len(awards) - new
        if not has_errors(findings):  # a file with rows left out may be imported again
            when = (at or dt.datetime.now().astimezone()).isoformat(timespec="seconds")
            store.mark_imported(sha256, source, path.name, when, stored)
    return ImportResult(stored=stored, already_stored=already, findings=findings,
                        matches=pd.DataFrame(matches, columns=MATCH_COLUMNS))


def _awards(row: pd.Series, year: str) -> list[dict]:
    """The awards of one row (person id filled in later): one per title, form and grade."""
    return [{"unit_code": row["unit_code"], "school_year": year, "kind": kind,
             "code": row.get(kind), "decision_no": row.get("decision_no"),
             "decision_date": _iso(row.get("decision_date"))}
            for kind in AWARD_KINDS if _filled(row.get(kind)) and row.get(kind) != "khong_dang_ky"]


def _filled(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and pd.isna(value)) \
        and str(value).strip() != ""


def _iso(value: object) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") and not pd.isna(value) else None
