"""Tables that share a worksheet with another table: Part 2 ("II. Tập thể", the collectives)
of the older list layout, below (or above) the persons of Part 1.

A form sheet declared `section_of: <sheet id>` is looked for in the worksheet of that sheet's
table when no worksheet of its own holds it: by its header row (every required column found),
introduced or not by a heading such as "II. TẬP THỂ". The table that comes first is cut where
the other begins, so no row is read twice. A heading whose table has no header tdkt knows is
reported (`section-not-read`), never dropped in silence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pipeline import settings
from pipeline.findings import Finding
from pipeline.forms.definitions import Form, Sheet
from pipeline.ingest.read import RawBook, RawSheet, Table, echo, header_keys
from pipeline.text import clean, fold

# A heading of a part of a list, folded: "II. TẬP THỂ", "Phần 2 – Tập thể", "B/ Tập thể:".
_PART = re.compile(r"^(?:(?:phan|muc)\s+)?(?:[ivx]+|[0-9]+|[a-d])\b[\s./):-]*\w")
# How far above a header row its heading may sit.
_HEADING_ABOVE = 3


def with_sections(form: Form, book: RawBook, tables: Mapping[str, Table]
                  ) -> tuple[dict[str, Table], list[Finding]]:
    """The form's tables with each section sheet found in its parent's worksheet (when no
    worksheet of its own holds it), the tables cut where the other begins; and the findings
    of a part that is there but cannot be read."""
    out = dict(tables)
    findings: list[Finding] = []
    for sheet in form.sheets:
        parent = out.get(sheet.section_of) if sheet.section_of else None
        if parent is None or sheet.id in out:
            continue
        found = _section(sheet, parent)
        if isinstance(found, Table):
            out[sheet.section_of], out[sheet.id] = _apart(parent, found)
        elif found is not None:  # a heading, and no header below it
            heading, text = found
            if heading > parent.header_row0:
                out[sheet.section_of] = _cut(parent, heading)
            findings.append(Finding.make(
                "section-not-read", book.file, sheet=parent.raw.name, cell=str(heading + 1),
                value=text, expected=_expected(sheet)))
    return {s.id: out[s.id] for s in form.sheets if s.id in out}, findings


def _expected(sheet: Sheet) -> str:
    headers = ", ".join(f"“{c.header}”" for c in sheet.columns)
    return f"một dòng tiêu đề cột {headers} ngay dưới đề mục"


def _section(sheet: Sheet, parent: Table) -> Table | tuple[int, str] | None:
    """The section's table in the parent's worksheet; else (row0, text) of a heading naming
    it with no header below; else None."""
    raw = parent.raw
    taken = range(parent.header_row0, parent.data_row0)
    keys = header_keys(sheet)
    required = {c.id for c in sheet.columns if c.required}
    word = fold(sheet.name)
    heading: tuple[int, str] | None = None
    for row0 in range(len(raw.grid)):
        if row0 in taken:
            continue
        table = _header_at(sheet, raw, row0, keys)
        if table is not None and required <= set(table.columns):
            table.book = parent.book
            return table
        text = _heading(raw.grid[row0])
        if heading is None and text is not None and word in fold(text):
            heading = (row0, text)
    return heading


def _heading(row: list[Any]) -> str | None:
    """The text of a row that is a numbered part's heading: one short text cell ("II. TẬP
    THỂ", "Phần 2: Tập thể")."""
    texts = [clean(str(v)) for v in row if v is not None and clean(str(v))]
    if len(texts) != 1 or len(texts[0]) > 80:
        return None
    return texts[0] if _PART.match(fold(texts[0])) else None


def _header_at(sheet: Sheet, raw: RawSheet, row0: int, keys: dict[str, str]) -> Table | None:
    """The sheet's header at `row0`, over the form's header rows or one fewer (the lowest text
    of each column wins, as under a merged group header), whichever matches more columns."""
    best: Table | None = None
    for rows in sorted({sheet.header_rows, 1}):
        block = raw.grid[row0:row0 + rows]
        if len(block) < rows or not any(v is not None for v in block[0]):
            continue
        columns: dict[str, list[int]] = {}
        extra: dict[int, str] = {}
        for col0 in range(max(len(r) for r in block)):
            text = next((clean(str(r[col0])) for r in reversed(block)
                         if col0 < len(r) and r[col0] is not None and clean(str(r[col0]))), "")
            if not text:
                continue
            if (column_id := keys.get(fold(text))) is not None:
                columns.setdefault(column_id, []).append(col0)
            else:
                extra[col0] = echo(text)
        if len(columns) < min(settings.MIN_HEADER_MATCHES, len(sheet.columns)):
            continue
        if best is None or len(columns) > len(best.columns):
            best = Table(sheet=sheet, raw=raw, header_row0=row0,
                         columns={k: v[0] for k, v in columns.items()}, extra=extra,
                         ambiguous={k: v for k, v in columns.items() if len(v) > 1},
                         header_rows=rows)
    return best


def _start(table: Table) -> int:
    """Where a part begins: its heading just above its header, else its header."""
    for row0 in range(table.header_row0 - 1, max(-1, table.header_row0 - _HEADING_ABOVE - 1),
                      -1):
        if _heading(table.raw.grid[row0]) is not None:
            return row0
        if any(v is not None for v in table.raw.grid[row0]):
            break
    return table.header_row0


def _cut(table: Table, end: int) -> Table:
    """The table reading no row from `end` (0-based) on: the next part begins there."""
    raw = table.raw
    return replace(table, raw=RawSheet(name=raw.name, grid=raw.grid[:end], visible=raw.visible))


def _apart(parent: Table, section: Table) -> tuple[Table, Table]:
    """Both tables, the first cut where the second begins."""
    if section.header_row0 > parent.header_row0:
        return _cut(parent, _start(section)), section
    return parent, _cut(section, _start(parent))
