"""Importing decided titles: old consolidated lists and the authorities' Quyết định lists."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import ConfigError, year_start
from pipeline.findings import Finding, has_errors
from pipeline.forms.definitions import load_forms
from pipeline.ingest.normalize import Context
from pipeline.ingest.read import read_workbook
from pipeline.ingest.submission import submission
from pipeline.store.database import Store
from pipeline.store.identity import MATCH_LABELS, KnownPeople, match_person, person_key
from pipeline.store.record import TO_CONFIRM, known_people

HISTORY_FORM = "lich-su"
AWARD_KINDS = ("title", "commendation", "grade")


def import_awards(store: Store, path: Path, source: str,
                  unit_codes: frozenset[str] = frozenset()
                  ) -> tuple[int, list[Finding], list[str]]:
    """Store every valid row of a history list as awards (one per title, form, grade);
    returns the number of awards stored, the problems found in the file, and the matches the
    office should confirm (a near name, another school, several candidates)."""
    forms = load_forms()
    book, findings = read_workbook(path, path.name)
    if book is None or has_errors(findings):
        return 0, findings, []
    sub = submission(book, forms, HISTORY_FORM, None, Context(forms.vocabs, unit_codes))
    rows = sub.valid_rows("awards")  # an office list: tied to no unit
    findings = findings + list(sub.findings)
    table = sub.tables.get("awards")
    awards = []
    to_confirm: list[str] = []
    with store.transaction():
        known = KnownPeople.from_frame(known_people(store))
        for row_number, row in rows.iterrows():
            year = str(row["school_year"])
            try:
                year_start(year)
            except ConfigError:
                findings.append(Finding.make(
                    "bad-school-year", path.name, sheet=table.raw.name if table else None,
                    cell=f"{table.letter('school_year')}{row_number}" if table else None,
                    column="Năm học", value=year, expected="năm học dạng 2023-2024"))
                continue
            match = match_person(known, row["full_name"], row["birth_date"], row["unit_code"])
            person = match.person_id
            if match.how in TO_CONFIRM:
                to_confirm.append(f"Dòng {row_number} “{row['full_name']}”: "
                                  f"{MATCH_LABELS[match.how]}"
                                  + (f" (mã {person})" if person else
                                     f" (các mã {', '.join(map(str, match.candidates))})"))
            if person is None:
                key = person_key(row["full_name"], row["birth_date"])
                person = store.add_person(row["full_name"], *key, year)
                known.add(person, *key, row["unit_code"])
            for kind in AWARD_KINDS:
                code = row.get(kind)
                if code and code != "khong_dang_ky":
                    awards.append({"person_id": person, "unit_code": row["unit_code"],
                                   "school_year": year, "kind": kind, "code": code,
                                   "decision_no": row.get("decision_no"),
                                   "decision_date": _iso(row.get("decision_date"))})
        count = store.add_awards(awards, source)
    return count, findings, to_confirm


def _iso(value: object) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else None
