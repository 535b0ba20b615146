"""Workbook files → raw cell grids → identified sheets with their tables and header fields.

Only cached cell values are read (python-calamine); nothing in a file is ever executed, and
the file is opened read-only and never written.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from python_calamine import CalamineWorkbook

from . import settings
from .findings import Finding
from .forms import Form, FormSet, Sheet
from .text import clean, fold

# Read


@dataclass
class RawSheet:
    """A sheet's cached values, row-major, grid[0][0] being A1; empty cells are None."""

    name: str
    grid: list[list[Any]]
    visible: bool = True

    def value(self, row0: int, col0: int) -> Any:
        """The value at 0-based (row, column), None outside the grid."""
        if row0 < len(self.grid) and col0 < len(self.grid[row0]):
            return self.grid[row0][col0]
        return None


@dataclass
class RawBook:
    """A workbook as read: its sheets and the identity its hidden sheet declares, if any."""

    file: str
    path: Path
    sha256: str
    sheets: list[RawSheet]
    meta: dict[str, str] | None = None

    @property
    def visible_sheets(self) -> list[RawSheet]:
        """The sheets a person sees."""
        return [s for s in self.sheets if s.visible and s.name != settings.META_SHEET]


def column_letter(col0: int) -> str:
    """"A" for 0, "AA" for 26."""
    letters = ""
    n = col0 + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def cell_address(row0: int, col0: int) -> str:
    """"F12" for 0-based (11, 5)."""
    return f"{column_letter(col0)}{row0 + 1}"


def file_sha256(path: Path) -> str:
    """The file's sha256, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def _zip_bomb(path: Path) -> str | None:
    """What is wrong when a zip-based workbook would expand too far (sizes declared in the
    zip directory are read; nothing is decompressed). None for a sane or a non-zip file."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None  # not a zip: the reader reports it as unreadable
    total = sum(m.file_size for m in members)
    packed = max(1, sum(m.compress_size for m in members))
    if total > settings.MAX_UNCOMPRESSED_BYTES:
        return _megabytes(total)
    if total / packed > settings.MAX_COMPRESSION_RATIO and total > 10 * 1024 * 1024:
        return f"{_megabytes(total)}, nén {total // packed} lần"
    return None


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def _meta(sheets: list[RawSheet]) -> dict[str, str] | None:
    for sheet in sheets:
        if sheet.name == settings.META_SHEET and sheet.grid:
            row = [clean(str(v)) if v is not None else "" for v in sheet.grid[0]] + [""] * 4
            return {"form": row[0], "version": row[1], "unit": row[2], "school_year": row[3]}
    return None


def read_workbook(path: Path, name: str) -> tuple[RawBook | None, list[Finding]]:
    """Open one inbox file read-only; a file that is not a readable workbook becomes a finding."""
    suffix = path.suffix.lower()
    if suffix not in settings.WORKBOOK_EXTENSIONS:
        return None, [Finding.make("not-a-workbook", name, value=suffix or "tệp không có đuôi",
                                   expected="tệp .xlsx (hoặc .xls, .ods)")]
    size = path.stat().st_size
    if size == 0:
        return None, [Finding.make("empty-file", name)]
    if size > settings.MAX_FILE_BYTES:
        return None, [Finding.make("file-too-large", name, value=_megabytes(size),
                                   expected=_megabytes(settings.MAX_FILE_BYTES))]
    bomb = _zip_bomb(path) if suffix in settings.ZIP_EXTENSIONS else None
    if bomb is not None:
        return None, [Finding.make("zip-bomb", name, value=bomb,
                                   expected=_megabytes(settings.MAX_UNCOMPRESSED_BYTES))]
    sha = file_sha256(path)
    try:
        book = CalamineWorkbook.from_path(str(path))
        sheets = []
        for meta in book.sheets_metadata:
            rows = book.get_sheet_by_name(meta.name).to_python(skip_empty_area=False)
            grid = [[_cell(v) for v in row] for row in rows]
            sheets.append(RawSheet(meta.name, grid, str(meta.visible).endswith("Visible")))
    except Exception as exc:  # calamine raises several error types for broken files
        reason = type(exc).__name__
        return None, [Finding.make("unreadable-workbook", name, value=reason)]
    raw = RawBook(file=name, path=path, sha256=sha, sheets=sheets, meta=_meta(sheets))
    if not any(any(v is not None for v in row) for s in raw.visible_sheets for row in s.grid):
        return raw, [Finding.make("empty-workbook", name,
                                  value="mọi sheet đều trống" if raw.sheets else "không có sheet")]
    return raw, []


# Identify


@dataclass
class Table:
    """One form sheet found in a workbook: where its header is and which column is where."""

    sheet: Sheet
    raw: RawSheet
    header_row0: int
    columns: dict[str, int]  # column id → 0-based column index
    extra: dict[int, str]  # 0-based column index → header text not in the form
    ambiguous: dict[str, list[int]] = field(default_factory=dict)
    fields: dict[str, tuple[Any, int, int]] = field(default_factory=dict)

    @property
    def data_row0(self) -> int:
        """First 0-based row below the header."""
        return self.header_row0 + self.sheet.header_rows

    def letter(self, column_id: str) -> str:
        """The spreadsheet column letter of a column id in this file."""
        return column_letter(self.columns[column_id])


def _header_keys(sheet: Sheet) -> dict[str, str]:
    keys: dict[str, str] = {}
    for column in sheet.columns:
        for name in column.names:
            keys.setdefault(fold(name), column.id)
    return keys


def _header_texts(raw: RawSheet, row0: int, rows: int) -> list[str]:
    width = max((len(raw.grid[r]) for r in range(row0, min(row0 + rows, len(raw.grid)))),
                default=0)
    texts = []
    for col0 in range(width):
        text = ""
        for r in range(row0 + rows - 1, row0 - 1, -1):  # the lowest header row wins
            value = raw.value(r, col0)
            if value is not None and clean(str(value)):
                text = clean(str(value))
                break
        texts.append(text)
    return texts


def _match_header(sheet: Sheet, raw: RawSheet) -> Table | None:
    keys = _header_keys(sheet)
    best: Table | None = None
    best_score = 0
    for row0 in range(min(settings.HEADER_SCAN_ROWS, len(raw.grid))):
        texts = _header_texts(raw, row0, sheet.header_rows)
        found: dict[str, list[int]] = {}
        extra: dict[int, str] = {}
        for col0, text in enumerate(texts):
            if not text:
                continue
            column_id = keys.get(fold(text))
            if column_id:
                found.setdefault(column_id, []).append(col0)
            else:
                extra[col0] = text
        score = len(found)
        if score > best_score:
            best_score = score
            best = Table(sheet=sheet, raw=raw, header_row0=row0,
                         columns={k: v[0] for k, v in found.items()}, extra=extra,
                         ambiguous={k: v for k, v in found.items() if len(v) > 1})
    needed = min(settings.MIN_HEADER_MATCHES, len(sheet.columns))
    return best if best is not None and best_score >= needed else None


def _match_fields(table: Table) -> None:
    wanted = {fold(f.header): f for f in table.sheet.fields}
    for row0 in range(min(table.header_row0, len(table.raw.grid))):
        row = table.raw.grid[row0]
        for col0, value in enumerate(row):
            if value is None:
                continue
            spec = wanted.get(fold(str(value)))
            if spec is None or spec.id in table.fields:
                continue
            for right in range(col0 + 1, min(col0 + 5, len(row))):
                if row[right] is not None:
                    table.fields[spec.id] = (row[right], row0, right)
                    break
            else:
                table.fields[spec.id] = (None, row0, col0 + 1)


def find_table(sheet: Sheet, book: RawBook, taken: set[str], *, by_name: bool) -> Table | None:
    """The workbook sheet holding a form sheet.

    By name (or alias) when `by_name`; otherwise the untaken sheet whose header row matches at
    least half of the form sheet's columns (a renamed sheet).
    """
    names = {fold(n) for n in sheet.names}
    candidates = [s for s in book.visible_sheets if s.name not in taken
                  and (fold(s.name) in names) == by_name]
    for raw in candidates:
        table = _match_header(sheet, raw)
        if table is not None and (by_name or 2 * len(table.columns) >= len(sheet.columns)):
            _match_fields(table)
            return table
    return None


def find_tables(form: Form, book: RawBook) -> dict[str, Table]:
    """Each form sheet's table: sheets found by name first, then renamed ones by their headers."""
    tables: dict[str, Table] = {}
    taken: set[str] = set()
    for by_name in (True, False):
        for sheet in form.sheets:
            if sheet.id in tables:
                continue
            table = find_table(sheet, book, taken, by_name=by_name)
            if table is not None:
                tables[sheet.id] = table
                taken.add(table.raw.name)
    return {s.id: tables[s.id] for s in form.sheets if s.id in tables}


def form_score(form: Form, book: RawBook) -> int:
    """How many of the form's columns the workbook's headers match (for identification)."""
    return sum(len(t.columns) for t in find_tables(form, book).values())


def identify_form(book: RawBook, forms: FormSet, form_id: str) -> tuple[Form | None, str]:
    """Which version of `form_id` the workbook is: its hidden sheet first, then its headers.

    Returns the form (or None) and, when None, the reason in Vietnamese.
    """
    if book.meta and book.meta.get("form"):
        declared = forms.get(book.meta["form"], book.meta.get("version", ""))
        if declared is not None and declared.form == form_id:
            return declared, ""
        if book.meta["form"] != form_id:
            return None, f"tệp khai báo biểu mẫu “{book.meta['form']}”, không phải “{form_id}”"
    scored = sorted(((form_score(f, book), not f.current, f.version, f)
                     for f in forms.versions(form_id)), key=lambda t: (-t[0], t[1], t[2]))
    if not scored or scored[0][0] == 0:
        return None, "không tìm thấy dòng tiêu đề cột nào của biểu mẫu"
    return scored[0][3], ""


def table_frame(table: Table) -> pd.DataFrame:
    """The table's rows as text-or-value cells: one column per column id, index = Excel row."""
    ids = list(table.columns)
    content_ids = [i for i in ids if i != "seq"]
    rows: list[list[Any]] = []
    index: list[int] = []
    for row0 in range(table.data_row0, len(table.raw.grid)):
        if _is_footer(table.raw.grid[row0]):
            break  # the signature block: the table has ended
        values = [table.raw.value(row0, table.columns[i]) for i in ids]
        if all(table.raw.value(row0, table.columns[i]) is None for i in content_ids):
            continue
        rows.append(values)
        index.append(row0 + 1)
    return pd.DataFrame(rows, columns=ids, index=pd.Index(index, name="row"), dtype=object)


_DATE_LINE = re.compile(r"(^|\s)ngay(\s.*)?\sthang(\s.*)?\snam(\s|$)")


def _is_footer(row: list[Any]) -> bool:
    """A signature-block row: every text is a closing phrase or a "…, ngày … tháng … năm …" line."""
    texts = [fold(str(v)) for v in row if v is not None]
    return bool(texts) and all(
        t.startswith(settings.FOOTER_PREFIXES) or _DATE_LINE.search(t) for t in texts)
