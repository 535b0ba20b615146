"""Feedback to each school: its problems with how to fix each, then its own workbook with the
faulty cells marked, which the school corrects in place and sends back as its submission.

The copy of an .xlsx submission is the school's own file loaded with openpyxl (cached values
only): sheet names, widths, merges, row heights, styles, dropdowns, protection and the hidden
form id stay as the school had them. Everything that could compute or reach out is taken out:
formulas (their cached values are kept), defined names, conditional formats, charts, pivot
tables, table definitions, links, data validations other than plain lists and references.
An .xls or .ods submission (or one that cannot be loaded again) is copied as values under the
form's sheet names. The hidden sheet names the sheets tdkt added, and the reader skips them.

A school with no finding in its own file gets no copy: its feedback holds only the sheets tdkt
adds, written straight as the package (feedback_xml, ten times faster than openpyxl, the same
bytes); the layout below is written once, for both.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import hashlib
import io
import math
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import openpyxl
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import MergedCell
from openpyxl.comments import Comment
from openpyxl.formatting.formatting import ConditionalFormattingList
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from pipeline import settings
from pipeline import texts as wording
from pipeline.cells import address_parts, column_number
from pipeline.findings import FINDING_HEADERS, Finding, Severity, sorted_findings
from pipeline.ingest.submission import Submission
from pipeline.reports.feedback_xml import (
    BOX,
    ZIP_TIME,
    Look,
    Package,
    Unsupported,
    alignment,
    clean,
    fill,
    font,
    plain,
)
from pipeline.reports.workbook import (
    Col,
    Letterhead,
    cell_value,
    letterhead_split,
    line_height,
    text_lines,
    txt,
)
from pipeline.rounds.base import RoundResult
from pipeline.settings import FONT_NAME

UNKNOWN_DIR = "khong-xac-dinh"
FILLS = {Severity.ERROR: "FFFFC7CE", Severity.WARNING: "FFFFF2CC"}  # opaque ARGB
_GREY = "D9D9D9"
_SIZE = 11  # font size of the lists
# Findings that mean the school's sheets were cut: loading the file whole again could take
# what the reader refused to hold; such a file is copied as the values the reader kept.
_CUT = frozenset({"too-many-rows", "too-many-columns"})
# Unpacked size of a school's .xlsx above which it is not loaded again with its styles.
_RELOAD_MAX_BYTES = 20 * 1024 * 1024
# A data validation kept in the copy: a number, a quoted list, or a reference to cells.
_PLAIN_RULE = re.compile(r"""^(?:-?\d+(?:\.\d+)?|"[^"]*"|(?:'[^']+'|[^\W\d][\w.]*)?!?"""
                         r"""\$?[A-Z]{1,3}\$?\d+(?::\$?[A-Z]{1,3}\$?\d+)?)$""")


@dataclass(frozen=True)
class Table:
    """A table sheet placed before the list of findings (e.g. the verdicts of the year-end
    round): the last column holds the codes people look up, nothing after it."""

    name: str
    title: str
    frame: pd.DataFrame
    cols: list[Col]
    highlight: list[bool] = field(default_factory=list)


# The workbook


def write_feedback(result: RoundResult, findings: list[Finding], sub: Submission | None,
                   title: str, path: Path, *, tables: Sequence[Table] = ()) -> Path:
    """One school's feedback: `tables`, its problems with how to fix each (each linked to
    its cell), then a copy of its workbook with the faulty cells marked and commented."""
    own = [f for f in findings if sub is not None and f.file == sub.file]
    ours = [t.name for t in tables] + [txt("sheet_to_fix")]
    book, names = _school_copy(sub, own, result.school_year, ours) if own else (None, {})
    letterhead = Letterhead.of(result.office, result.run_date)
    created = dt.datetime.combine(result.run_date or dt.date(2000, 1, 1), dt.time())
    listed = sorted_findings(findings)
    if book is None:  # only the sheets tdkt adds: written straight as the package
        package = Package()
        try:
            _sheets(package.sheet, letterhead, title, tables, ours[-1], listed, {}, set(),
                    copied=False)
            package.save(path, title, created)
            return path
        except Unsupported:  # a value the direct writer does not write (a date): openpyxl's
            pass
    marked = _mark(book, own, names) if book is not None else set()
    out = book if book is not None else Workbook()
    first = out.worksheets[0] if book is None else None
    index = iter(range(len(tables) + 1))
    _sheets(lambda name: _BookSheet(out.create_sheet(name, next(index))), letterhead, title,
            tables, ours[-1], listed, names, marked, copied=book is not None)
    if first is not None:
        out.remove(first)
    out.active = 0
    for ws in out.worksheets:  # one selected tab, or Excel opens the sheets grouped
        ws.sheet_view.tabSelected = ws is out.worksheets[0]
    out.properties.title = title
    out.properties.creator = out.properties.lastModifiedBy = "tdkt"
    out.properties.created = out.properties.modified = created
    _save(out, path)
    return path


def _save(book: Workbook, path: Path) -> None:
    """Write the workbook with fixed times in the package, so the same inputs give the same
    bytes (the month-end run mails a school its feedback only when it changed)."""
    buffer = io.BytesIO()
    with _StampedZip(buffer, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as package:
        ExcelWriter(book, package).write_data()  # openpyxl's save, without its time of saving
    path.write_bytes(buffer.getvalue())


class _StampedZip(zipfile.ZipFile):
    """A zip package whose members all carry the same fixed time (openpyxl's save stamps
    the time of saving on each)."""

    def writestr(self, zinfo_or_arcname, data, compress_type=None, compresslevel=None):
        if isinstance(zinfo_or_arcname, str):
            zinfo_or_arcname = zipfile.ZipInfo(zinfo_or_arcname, date_time=ZIP_TIME)
            zinfo_or_arcname.compress_type = zipfile.ZIP_DEFLATED
            zinfo_or_arcname.external_attr = 0o600 << 16
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)

    def write(self, filename, arcname=None, compress_type=None, compresslevel=None):
        """A sheet openpyxl wrote to a temporary file: stamped like the other members."""
        self.writestr(arcname or Path(filename).name, Path(filename).read_bytes())


# The school's copy


def _school_copy(sub: Submission | None, findings: list[Finding], school_year: str,
                 ours: list[str]) -> tuple[Workbook | None, dict[str, str]]:
    """The school's workbook to correct in place, with the hidden form id naming `ours` as
    added, and its sheets' names (those of the school's file); None when the file was not
    identified."""
    if sub is None or sub.raw is None or sub.form is None:
        return None, {}
    book = _original(sub)
    if book is None:
        book = _values_copy(sub)
    for name in [*(sub.raw.meta or {}).get("added", "").split("\n"), *ours]:
        if name and name in book.sheetnames and name != settings.META_SHEET:
            book.remove(book[name])  # a feedback copy sent back: its old list goes
    _write_meta(book, sub, school_year, ours)
    return book, {n: n for n in book.sheetnames}


def _original(sub: Submission) -> Workbook | None:
    """The school's .xlsx loaded again with its styles (cached values only, nothing that
    computes), or None when it is another kind, was cut (a far cell, stray or hostile: the
    reader's findings say so before anything is loaded), or is no longer the file read."""
    raw = sub.raw
    if raw is None or raw.kind != "xlsx" or any(f.code in _CUT for f in sub.findings):
        return None
    try:
        if sub.path.stat().st_size > settings.MAX_FILE_BYTES:
            return None
        data = sub.path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sub.sha256:
            return None
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            if sum(i.file_size for i in package.infolist()) > _RELOAD_MAX_BYTES:
                return None  # openpyxl holds ~50 bytes per byte of XML: values copy
        book = openpyxl.load_workbook(io.BytesIO(data), data_only=True, keep_links=False,
                                      keep_vba=False, rich_text=False)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception:  # the reader read it; openpyxl cannot: the values copy will do
        return None
    _defused(book)
    return book


def _defused(book: Workbook) -> None:
    """Take out of a school's workbook whatever could compute or reach out."""
    book.template = False  # saved as a workbook (.xlsx), whatever the school's file was
    book.defined_names.clear()
    for ws in book.worksheets:
        ws.defined_names.clear()
        ws.conditional_formatting = ConditionalFormattingList()
        ws.data_validations.dataValidation = [
            dv for dv in ws.data_validations.dataValidation
            if all(_PLAIN_RULE.match(str(f).lstrip("=")) for f in (dv.formula1, dv.formula2)
                   if f is not None) and dv.type != "custom"]
        ws.tables.clear()
        ws._charts, ws._images, ws._pivots = [], [], []
        ws.legacy_drawing = None
        for cell in ws._cells.values():
            if isinstance(cell, MergedCell):
                continue
            cell._hyperlink = None
            if cell.data_type == "f":  # data_only leaves none; kept as text if ever
                cell.data_type = "s"


def _values_copy(sub: Submission) -> Workbook:
    """The sheets the reader kept (an .xls, an .ods, a file that changed), values only, under
    their names, with the form's column widths and a boxed table."""
    book = Workbook()
    book.remove(book.active)
    tables = {t.raw.name: t for t in sub.tables.values()}
    for raw in sub.raw.visible_sheets if sub.raw else []:
        if not raw.grid:
            continue  # a sheet nothing was read from (instructions): not kept in memory
        ws = book.create_sheet(_free_name(book, raw.name))
        for r, row in enumerate(raw.grid, start=1):
            for c, value in enumerate(row, start=1):
                if value is not None:
                    _put(ws.cell(r, c), value)
        table = tables.get(raw.name)
        if table is None:
            continue
        widths = {c: table.sheet.column(i).width for i, c in table.columns.items()}
        for c, width in widths.items():
            ws.column_dimensions[get_column_letter(c + 1)].width = width
        header = table.data_row0
        for r in range(table.header_row0 + 1, ws.max_row + 1):
            for c in widths:
                cell = ws.cell(r, c + 1)
                cell.border = BOX
                cell.alignment = Alignment(vertical="center", wrap_text=True)
                if r <= header:
                    cell.font, cell.fill = Font(bold=True), PatternFill("solid", fgColor=_GREY)
        ws.freeze_panes = ws.cell(header + 1, 1)
    return book


def _free_name(book: Workbook, name: str) -> str:
    taken = {n.casefold() for n in book.sheetnames}
    return name if name.casefold() not in taken else f"{name[:27]} ({len(taken)})"


def _write_meta(book: Workbook, sub: Submission, school_year: str, ours: list[str]) -> None:
    """The very hidden form id: kept as the school's file had it, written when it had none;
    its second row names the sheets tdkt added, which the reader skips."""
    if settings.META_SHEET in book.sheetnames:
        meta = book[settings.META_SHEET]
    else:
        meta = book.create_sheet(settings.META_SHEET)
        form = sub.form
        for col, value in enumerate((form.form, form.version, sub.unit_code or "",
                                     school_year), start=1):
            _put(meta.cell(1, col), value)
            meta.cell(1, col).number_format = "@"
    for cell in list(meta[2]) if meta.max_row >= 2 else []:
        cell.value = None
    for col, name in enumerate(ours, start=1):
        _put(meta.cell(2, col), name)
    meta.sheet_state = "veryHidden"
    meta.protection.sheet = True


def _mark(book: Workbook, findings: list[Finding], names: dict[str, str]) -> set[tuple[str, str]]:
    """Fill and comment every cell a finding names (errors red, warnings yellow; what is wrong
    and how to fix it); returns the (sheet, cell) pairs marked, as named in the copy."""
    by_cell: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        target = _target(f, names, book)
        if target is not None:
            by_cell.setdefault(target, []).append(f)
    for (sheet, ref), found in by_cell.items():
        ws = book[sheet]
        cell = _anchor(ws, ref)
        found.sort(key=lambda f: f.severity is not Severity.ERROR)
        worst = found[0].severity
        cell.fill = PatternFill("solid", fgColor=FILLS[worst])
        text = "\n".join(f"{f.severity.label}: {f.message}\n{txt('fix')}: {f.fix}"
                         for f in found)
        lines = sum(max(1, math.ceil(len(part) / 48)) for part in text.split("\n"))
        cell.comment = Comment(clean(text), "tdkt", width=340, height=min(600, 20 * lines + 20))
    return set(by_cell)


def _anchor(ws: Worksheet, ref: str):
    """The cell at `ref`, or the first cell of the merged range that covers it."""
    cell = ws[ref]
    if isinstance(cell, MergedCell):
        for merged in ws.merged_cells.ranges:
            if ref in merged:
                return ws.cell(merged.min_row, merged.min_col)
    return cell


def _target(f: Finding, names: dict[str, str], book: Workbook | None
            ) -> tuple[str, str] | None:
    """Where a finding points in the copy: (sheet, cell); a whole row points at its first
    cell, a whole column at its top; None for a finding of no cell or not in the copy."""
    if (book is None or not f.sheet or not f.cell or f.code in _CUT
            or names.get(f.sheet) not in book.sheetnames):
        return None  # a cut sheet's far end is named in the list, never made a cell
    letters, row = address_parts(f.cell)
    if ((letters and column_number(letters) > settings.MAX_COLUMNS)
            or (row or 1) > settings.MAX_ROWS):
        return None
    return names[f.sheet], f"{letters or 'A'}{row or 1}"


# The sheets tdkt adds: laid out once, into an openpyxl sheet (the school's copy beside them)
# or into the package written directly (feedback_xml); both give the same workbook.


def _sheets(create: Callable[[str], Target], letterhead: Letterhead, title: str,
            tables: Sequence[Table], name: str, findings: list[Finding],
            names: dict[str, str], marked: set[tuple[str, str]], *, copied: bool) -> None:
    """The tables, then the list of findings, each in a sheet `create` adds."""
    for table in tables:
        _table_sheet(create(table.name), letterhead, title.upper(), table)
    _findings_sheet(create(name), letterhead, title.upper(), findings, names, marked,
                    copied=copied)


class Target(Protocol):
    """A sheet being laid out: openpyxl's (`_BookSheet`) or the direct writer's."""

    def width(self, col: int, width: float) -> None: ...
    def put(self, row: int, col: int, value: object, look: Look) -> None: ...
    def merge(self, row: int, first: int, last: int) -> None: ...
    def height(self, row: int) -> float | None: ...
    def set_height(self, row: int, height: float) -> None: ...
    def frame(self, header: int) -> None: ...
    def table(self, filter_ref: str, area: str) -> None: ...


class _BookSheet:
    """A sheet of an openpyxl workbook as a layout target."""

    def __init__(self, ws: Worksheet) -> None:
        self.ws = ws
        self._styles: dict[tuple[int, Look], StyleArray] = {}

    def width(self, col: int, width: float) -> None:
        self.ws.column_dimensions[get_column_letter(col)].width = width

    def put(self, row: int, col: int, value: object, look: Look) -> None:
        cell = self.ws.cell(row, col)
        _put(cell, value)
        style = self._styles.get((col, look))
        if style is not None:  # openpyxl hashes every style object set: copy the first
            cell._style = copy.copy(style)
            return
        cell.font, cell.alignment = font(look), alignment(look)
        if look.boxed:
            cell.border = BOX
        if look.number_format != "General":
            cell.number_format = look.number_format
        if look.fill:
            cell.fill = fill(look)
        self._styles[col, look] = copy.copy(cell._style)

    def merge(self, row: int, first: int, last: int) -> None:
        self.ws.merge_cells(start_row=row, start_column=first, end_row=row, end_column=last)

    def height(self, row: int) -> float | None:
        return self.ws.row_dimensions[row].height

    def set_height(self, row: int, height: float) -> None:
        self.ws.row_dimensions[row].height = height

    def frame(self, header: int) -> None:
        ws = self.ws
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.orientation = "landscape"
        ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.print_options.horizontalCentered = True
        ws.page_margins.left, ws.page_margins.right = 0.6, 0.4
        ws.oddFooter.center.text = "Trang &P/&N"
        ws.oddFooter.center.font = f"{FONT_NAME},Regular"
        ws.print_title_rows = f"{header}:{header}"
        ws.freeze_panes = ws.cell(header + 1, 1)

    def table(self, filter_ref: str, area: str) -> None:
        self.ws.auto_filter.ref = filter_ref
        self.ws.print_area = area


def _findings_sheet(sheet: Target, letterhead: Letterhead, title: str,
                    findings: list[Finding], names: dict[str, str],
                    marked: set[tuple[str, str]], *, copied: bool) -> None:
    """The list of findings: sheet, cell (a link to it in the copy), value, expected, what
    is wrong, how to fix it, severity, and the code to look up in the last column."""
    headers = {**FINDING_HEADERS, "fix": txt("fix"), "code": txt("code_lookup")}
    cols = [Col("seq", txt("seq"), 5, "int"), Col("file", headers["file"], 16),
            Col("sheet", headers["sheet"], 12), Col("cell", headers["cell"], 7),
            Col("value", headers["value"], 14), Col("expected", headers["expected"], 14),
            Col("message", headers["message"], 40), Col("fix", headers["fix"], 36),
            Col("severity", headers["severity"], 9), Col("code", headers["code"], 13)]
    ws = sheet.ws if isinstance(sheet, _BookSheet) else None
    rows, links = [], []
    for n, f in enumerate(findings, start=1):
        target = _target(f, names, ws.parent) if copied and ws is not None else None
        rows.append({"seq": n, "file": f.file, "sheet": names.get(f.sheet or "", f.sheet or ""),
                     "cell": f.cell or "",
                     "value": f.value or "", "expected": f.expected or "",
                     "message": f.message, "fix": f.fix,
                     "severity": f.severity.label, "code": f.code})
        links.append(target if target in marked else None)
    errors = sum(f.severity is Severity.ERROR for f in findings)
    counts = wording.render("reports", "findings_count", errors=errors,
                            warnings=len(findings) - errors) if findings else ""
    notes = [txt("feedback_how_copy") if copied else txt("feedback_how")] if findings else []
    top = _heading(sheet, letterhead, title, cols, [counts, *notes] if counts else notes)
    fills = [FILLS[f.severity] for f in findings]
    _body(sheet, top, cols, rows, fills, empty=wording.text("reports", "no_findings"))
    if ws is None:
        return
    link_col = [c.key for c in cols].index("cell") + 1
    for offset, target in enumerate(links):
        if target is not None:
            cell = ws.cell(top + 1 + offset, link_col)
            cell.hyperlink = Hyperlink(ref=cell.coordinate,
                                       location=f"{quote_sheetname(target[0])}!{target[1]}",
                                       display=cell.value)
            cell.font = Font(name=FONT_NAME, size=11, color="0563C1", underline="single")


def _table_sheet(sheet: Target, letterhead: Letterhead, title: str, table: Table) -> None:
    top = _heading(sheet, letterhead, title, table.cols, [])
    rows = [{c.key: cell_value(v) for c, v in zip(table.cols, values, strict=True)}
            for values in zip(*(table.frame[c.key].tolist() for c in table.cols), strict=True)
            ] if len(table.frame) else []
    fills = [FILLS[Severity.ERROR] if flag else None for flag in table.highlight] or \
        [None] * len(rows)
    _body(sheet, top, table.cols, rows, fills, empty=wording.text("reports", "no_data"))


def _heading(sheet: Target, letterhead: Letterhead, title: str, cols: list[Col],
             notes: list[str]) -> int:
    """Letterhead, title and notes over the printed columns (all but the last, which holds
    the codes to look up on screen); the page set up for A4 landscape. Returns the header row."""
    widths = [c.width for c in cols]
    for i, width in enumerate(widths, start=1):
        sheet.width(i, width)
    widths = widths[:-1]
    last, split = len(widths), letterhead_split(widths) + 1
    rows = [(1, 1, split - 1, letterhead.parent.upper(), Look()),
            (1, split, last, wording.text("document", "nation"), Look(bold=True)),
            (2, 1, split - 1, letterhead.office.upper(), Look(bold=True)),
            (2, split, last, wording.text("document", "motto"),
             Look(bold=True, underline="single")),
            (3, split, last, letterhead.date_line, Look(italic=True)),
            (5, 1, last, title, Look(bold=True, size=14))]
    row = 6
    for note in notes:
        rows.append((row, 1, last, note, _NOTE))
        row += 1
    for r, first, end, text, look in rows:
        _merged(sheet, r, first, end, text, look, widths)
    header = row + 1
    sheet.frame(header)
    return header


_NOTE = Look(italic=True, size=11, horizontal="left")  # notes and the empty list's line
_HEADER = Look(bold=True, size=11, boxed=True, fill=_GREY)


def _body(sheet: Target, header: int, cols: list[Col], rows: list[dict],
          fills: list[str | None], *, empty: str) -> None:
    """The header row and one row per item, boxed; long texts wrapped, rows as tall as their
    longest text (LibreOffice does not grow them on opening)."""
    for i, col in enumerate(cols, start=1):
        sheet.put(header, i, col.header, _HEADER)
    sheet.set_height(header, line_height(
        max(text_lines(c.header, c.width, _SIZE, bold=True) for c in cols), _SIZE))
    if not rows:
        _merged(sheet, header + 1, 1, len(cols) - 1, empty, _NOTE, [c.width for c in cols])
        return
    looks = {shade: [Look(size=11, boxed=True, fill=shade,
                          horizontal="left" if col.kind == "text" else "center",
                          number_format="dd/mm/yyyy" if col.kind == "date" else "General")
                     for col in cols] for shade in set(fills)}
    for offset, (values, shade) in enumerate(zip(rows, fills, strict=True), start=1):
        r = header + offset
        tallest = 1
        for i, (col, look) in enumerate(zip(cols, looks[shade], strict=True), start=1):
            value = values.get(col.key)
            sheet.put(r, i, value, look)
            if isinstance(value, str):
                tallest = max(tallest, text_lines(value, col.width, _SIZE))
        sheet.set_height(r, line_height(tallest, _SIZE))
    sheet.table(f"A{header}:{get_column_letter(len(cols))}{header + len(rows)}",
                f"A1:{get_column_letter(len(cols) - 1)}{header + len(rows)}")


def _merged(sheet: Target, row: int, first: int, last: int, text: str, look: Look,
            widths: list[float]) -> None:
    if last > first:
        sheet.merge(row, first, last)
    sheet.put(row, first, text, look)
    width = sum(widths[first - 1:last])
    sheet.set_height(row, max(sheet.height(row) or 0,
                              line_height(text_lines(text, width, look.size), look.size)))


# Values


def _put(cell, value: object) -> None:
    """Write a value; text always as text, never as a formula."""
    value = plain(value)
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"


# The jobs


FeedbackWriter = Callable[[RoundResult, str | None, list[Finding], Submission | None, str,
                           Path], Path]


def feedback_jobs(result: RoundResult, root: Path, write: FeedbackWriter,
                  title: str) -> list[Callable[[], Path]]:
    """One job per feedback workbook: per unit that sent a file, and per file of no known
    unit (creates the folders)."""
    feedback = root / settings.FEEDBACK_DIR
    feedback.mkdir()
    by_unit: dict[str, list[Finding]] = {}
    for f in result.findings:
        if f.unit:
            by_unit.setdefault(f.unit, []).append(f)
    names = result.units["unit_name"]
    jobs: list[Callable[[], Path]] = []
    for code in sorted({s.unit_code for s in result.submissions if s.unit_code}):
        jobs.append(functools.partial(
            write, result, code, by_unit.get(code, []), result.chosen.get(code),
            txt("feedback_title", title=title, year=result.school_year, unit=names[code]),
            feedback / f"{code}.xlsx"))
    unknown = [s for s in result.submissions if not s.unit_code]
    if unknown:
        (feedback / UNKNOWN_DIR).mkdir()
    taken: set[str] = set()
    for sub in unknown:
        stem = re.sub(r"[^\w.-]+", "_", Path(sub.file).stem)[:80] or "tep"
        name, n = stem, 2
        while name.casefold() in taken:  # two names alike once shortened: -2, -3, …
            name, n = f"{stem}-{n}", n + 1
        taken.add(name.casefold())
        jobs.append(functools.partial(write, result, None, sub.findings, sub,
                                      txt("feedback_file", file=sub.file),
                                      feedback / UNKNOWN_DIR / f"{name}.xlsx"))
    return jobs


def registration_feedback(result: RoundResult, code: str | None, findings: list[Finding],
                          sub: Submission | None, title: str, path: Path) -> Path:
    """A school's feedback on its registration: its problems and its marked copy."""
    return write_feedback(result, findings, sub, title, path)
