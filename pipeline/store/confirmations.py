"""The office's confirmations that two person ids are one person: read from the sheet “Xác
nhận trùng người” (of the Phòng workbook or of the workbook `tdkt import-history` writes),
checked against the store, kept, and undone.

A confirmation links two ids only when both exist and, unless the office says otherwise, both
have the same birth date (or one has none): two different people are never merged by a typed
number alone. Every link and every undo is logged in the store.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

from python_calamine import CalamineWorkbook

from pipeline import texts as wording
from pipeline.cells import column_letter
from pipeline.findings import Finding
from pipeline.store.database import Store
from pipeline.text import clean

# Read back by tdkt confirm: the sheet and the two columns the reports write (texts.yaml).
MATCHES_SHEET = wording.text("reports", "sheet_matches")
PERSON_HEADER = wording.text("reports", "person_id")
CONFIRM_HEADER = wording.text("reports", "same_person")
ALLOW_OPTION = "--allow-different-birth-dates"
HEADER_SEARCH_ROWS = 30
PERSON_ID_EXPECTED = "mã người (số) có trong kho lịch sử"


@dataclass(frozen=True)
class Confirmation:
    """One row the office filled in: the person of the row is the same as `same_as`."""

    row: int  # Excel row number
    person_cell: str
    same_as_cell: str
    person: object  # as typed: normally an int
    same_as: object


@dataclass(frozen=True)
class Link:
    """Two person ids the office confirmed as one person, checked against the store."""

    person_id: int
    other_id: int


def confirmations(path: Path) -> tuple[list[Confirmation], list[Finding]]:
    """The rows of the confirmation sheet whose “Là cùng người với mã” cell is filled, and the
    problems that stop the file from being read (not a workbook, no sheet, no column)."""
    file = path.name
    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises several kinds for a file it cannot read
        return [], [Finding.make("unreadable-workbook", file,
                                 value=str(exc) or type(exc).__name__)]
    if MATCHES_SHEET not in book.sheet_names:
        return [], [Finding.make("missing-sheet", file, expected=MATCHES_SHEET,
                                 value=", ".join(book.sheet_names))]
    rows = book.get_sheet_by_name(MATCHES_SHEET).to_python(skip_empty_area=False)
    header = next((r for r, row in enumerate(rows[:HEADER_SEARCH_ROWS])
                   if {PERSON_HEADER, CONFIRM_HEADER} <= {_text(v) for v in row}), None)
    if header is None:
        missing = PERSON_HEADER if not any(PERSON_HEADER in map(_text, r) for r in rows) \
            else CONFIRM_HEADER
        return [], [Finding.make("missing-column", file, sheet=MATCHES_SHEET, column=missing)]
    texts = [_text(v) for v in rows[header]]
    person_col, same_col = texts.index(PERSON_HEADER), texts.index(CONFIRM_HEADER)
    found = []
    for r, row in enumerate(rows[header + 1:], start=header + 2):
        same_as = row[same_col] if same_col < len(row) else None
        if _text(same_as) == "":
            continue
        found.append(Confirmation(
            row=r, person_cell=f"{column_letter(person_col)}{r}",
            same_as_cell=f"{column_letter(same_col)}{r}",
            person=row[person_col] if person_col < len(row) else None, same_as=same_as))
    return found, []


def checked_links(store: Store, rows: list[Confirmation], file: str,
                  allow_different_birth_dates: bool = False) -> tuple[list[Link], list[Finding]]:
    """The links the rows ask for, and a finding for each row that cannot be kept: an id the
    store does not know, or two people born on different days (unless allowed)."""
    typed = [(_person_id(c.person), _person_id(c.same_as)) for c in rows]
    known = store.persons_by_id(i for pair in typed for i in pair if i is not None)
    links: list[Link] = []
    findings: list[Finding] = []
    for c, (person, same_as) in zip(rows, typed, strict=True):
        bad = [(cell, header, value) for cell, header, value, pid in (
            (c.person_cell, PERSON_HEADER, c.person, person),
            (c.same_as_cell, CONFIRM_HEADER, c.same_as, same_as)) if pid not in known]
        if bad:
            findings += [Finding.make("unknown-person-id", file, sheet=MATCHES_SHEET, cell=cell,
                                      column=header, value=_shown(value),
                                      expected=PERSON_ID_EXPECTED) for cell, header, value in bad]
            continue
        if person == same_as:
            continue
        born, other_born = known[person]["birth_date"], known[same_as]["birth_date"]
        if born and other_born and born != other_born and not allow_different_birth_dates:
            findings.append(Finding.make(
                "birth-dates-differ", file, sheet=MATCHES_SHEET, cell=c.same_as_cell,
                column=CONFIRM_HEADER, value=str(same_as),
                expected=f"mã {person} sinh {_date(born)}, mã {same_as} sinh {_date(other_born)}"))
            continue
        links.append(Link(person, same_as))
    return links, findings


def keep_links(store: Store, links: list[Link], confirmed_by: str,
               at: dt.datetime | None = None) -> int:
    """Store the office's confirmations in one transaction; the number kept."""
    when = (at or dt.datetime.now().astimezone()).isoformat(timespec="seconds")
    with store.transaction():
        for link in links:
            store.link_persons(link.person_id, link.other_id, confirmed_by, when)
    return len(links)


def undo_link(store: Store, person_id: int, other_id: int, undone_by: str,
              at: dt.datetime | None = None) -> str | None:
    """Undo the confirmation that two ids are one person; None when done, else why not (in
    Vietnamese)."""
    known = store.persons_by_id([person_id, other_id])
    missing = [str(i) for i in (person_id, other_id) if i not in known]
    if missing:
        return f"Không có mã người {', '.join(missing)} trong kho lịch sử."
    when = (at or dt.datetime.now().astimezone()).isoformat(timespec="seconds")
    if store.unlink_persons(person_id, other_id, undone_by, when):
        return None
    links = {(link["person_id"], link["other_id"])
             for i in (person_id, other_id) for link in store.links_of(i)}
    shown = "; ".join(f"{a} và {b}" for a, b in sorted(links)) or "không có"
    return (f"Phòng chưa xác nhận mã {person_id} và mã {other_id} là cùng một người, nên không "
            f"có gì để bỏ. Các xác nhận đang có của hai mã này: {shown}.")


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return clean(str(value))


def _person_id(value: object) -> int | None:
    """A typed person id (12, 12.0, " 12 ") as an int; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, int):
        return value
    text = _text(value)
    return int(text) if text.isdigit() else None


def _shown(value: object) -> str:
    return _text(value) or "(để trống)"


def _date(iso: str) -> str:
    try:
        return dt.date.fromisoformat(iso).strftime("%d/%m/%Y")
    except ValueError:
        return iso
