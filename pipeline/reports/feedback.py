"""Feedback to each school: its problems with how to fix each, then its own workbook with the
faulty cells marked, which the school corrects in place and sends back as its submission.

The copy of an .xlsx submission is the school's own file loaded with openpyxl (cached values
only): sheet names, widths, merges, row heights, styles, dropdowns, protection and the hidden
form id stay as the school had them. Everything that could compute or reach out is taken out:
formulas (their cached values are kept), defined names, conditional formats, charts, pivot
tables, table definitions, links, data validations other than plain lists and references.
An .xls or .ods submission (or one that cannot be loaded again) is copied as values under the
form's sheet names. The hidden sheet names the sheets tdkt added, and the reader skips them.
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

import openpyxl
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, MergedCell
from openpyxl.comments import Comment
from openpyxl.formatting.formatting import ConditionalFormattingList
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.worksheet import Worksheet

from pipeline import settings
from pipeline import texts as wording
from pipeline.cells import address_parts, column_number
from pipeline.findings import FINDING_HEADERS, Finding, Severity, sorted_findings
from pipeline.ingest.submission import Submission
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
from pipeline.text import visible

UNKNOWN_DIR = "khong-xac-dinh"
FILLS = {Severity.ERROR: "FFFFC7CE", Severity.WARNING: "FFFFF2CC"}  # opaque ARGB
_GREY = "D9D9D9"
_THIN = Side(style="thin")
_BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_SIZE = 11  # font size of the lists
_CELL_MAX = 32_767  # characters an Excel cell holds
# Findings that mean the school's sheets were cut: loading the file whole again could take
# what the reader refused to hold; such a file is copied as the values the reader kept.
_CUT = frozenset({"too-many-rows", "too-many-columns"})
# Unpacked size of a school's .xlsx above which it is not loaded again with its styles.
_RELOAD_MAX_BYTES = 20 * 1024 * 1024
# A data validation kept in the copy: a number, a quoted list, or a reference to cells.
_PLAIN_RULE = re.compile(r"""^(?:-?\d+(?:\.\d+)?|"[^"]*"|(?:'[^']+'|[^\W\d][\w.]*)?!?"""
                         r"""\$?[A-Z]{1,3}\$?\d+(?::\$?[A-Z]{1,3}\$?\d+)?)$""")


_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


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
    marked = _mark(book, own, names) if book is not None else set()
    out = book if book is not None else Workbook()
    first = out.worksheets[0] if book is None else None
    letterhead = Letterhead.of(result.office, result.run_date)
    for index, table in enumerate(tables):
        _table_sheet(out.create_sheet(table.name, index), letterhead, title.upper(), table)
    _findings_sheet(out.create_sheet(ours[-1], len(tables)), letterhead, title.upper(),
                    sorted_findings(findings), names, marked, copied=book is not None)
    if first is not None:
        out.remove(first)
    out.active = 0
    for ws in out.worksheets:  # one selected tab, or Excel opens the sheets grouped
        ws.sheet_view.tabSelected = ws is out.worksheets[0]
    out.properties.title = title
    out.properties.creator = out.properties.lastModifiedBy = "tdkt"
    out.properties.created = out.properties.modified = dt.datetime.combine(
        result.run_date or dt.date(2000, 1, 1), dt.time())
    _save(out, path)
    return path


def _save(book: Workbook, path: Path) -> None:
    """Write the workbook with fixed times in the package, so the same inputs give the same
    bytes (the month-end run mails a school its feedback only when it changed)."""
    stamp = book.properties.created.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    buffer = io.BytesIO()
    book.save(buffer)
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type, entry.external_attr = zipfile.ZIP_DEFLATED, 0o600 << 16
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the time of saving
                data = _MODIFIED.sub(lambda m: m[1] + stamp + m[2], data)
            target.writestr(entry, data)


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
                cell.border = _BOX
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
        cell.comment = Comment(_clean(text), "tdkt", width=340, height=min(600, 20 * lines + 20))
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


# The sheets tdkt adds


def _findings_sheet(ws: Worksheet, letterhead: Letterhead, title: str,
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
    rows, links = [], []
    for n, f in enumerate(findings, start=1):
        target = _target(f, names, ws.parent) if copied else None
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
    top = _heading(ws, letterhead, title, cols, [counts, *notes] if counts else notes)
    fills = [FILLS[f.severity] for f in findings]
    _body(ws, top, cols, rows, fills, empty=wording.text("reports", "no_findings"))
    link_col = [c.key for c in cols].index("cell") + 1
    for offset, target in enumerate(links):
        if target is not None:
            cell = ws.cell(top + 1 + offset, link_col)
            cell.hyperlink = Hyperlink(ref=cell.coordinate,
                                       location=f"{quote_sheetname(target[0])}!{target[1]}",
                                       display=cell.value)
            cell.font = Font(name=FONT_NAME, size=11, color="0563C1", underline="single")


def _table_sheet(ws: Worksheet, letterhead: Letterhead, title: str, table: Table) -> None:
    top = _heading(ws, letterhead, title, table.cols, [])
    rows = [{c.key: cell_value(v) for c, v in zip(table.cols, values, strict=True)}
            for values in zip(*(table.frame[c.key].tolist() for c in table.cols), strict=True)
            ] if len(table.frame) else []
    fills = [FILLS[Severity.ERROR] if flag else None for flag in table.highlight] or \
        [None] * len(rows)
    _body(ws, top, table.cols, rows, fills, empty=wording.text("reports", "no_data"))


def _heading(ws: Worksheet, letterhead: Letterhead, title: str, cols: list[Col],
             notes: list[str]) -> int:
    """Letterhead, title and notes over the printed columns (all but the last, which holds
    the codes to look up on screen); the page set up for A4 landscape. Returns the header row."""
    widths = [c.width for c in cols]
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    widths = widths[:-1]
    last, split = len(widths), letterhead_split(widths) + 1
    rows = [(1, 1, split - 1, letterhead.parent.upper(), {}),
            (1, split, last, wording.text("document", "nation"), {"bold": True}),
            (2, 1, split - 1, letterhead.office.upper(), {"bold": True}),
            (2, split, last, wording.text("document", "motto"), {"bold": True,
                                                                 "underline": "single"}),
            (3, split, last, letterhead.date_line, {"italic": True}),
            (5, 1, last, title, {"bold": True, "size": 14})]
    row = 6
    for note in notes:
        rows.append((row, 1, last, note, {"italic": True, "size": 11}))
        row += 1
    for r, first, end, text, font in rows:
        _merged(ws, r, first, end, text, font, widths)
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left, ws.page_margins.right = 0.6, 0.4
    ws.oddFooter.center.text = "Trang &P/&N"
    ws.oddFooter.center.font = f"{FONT_NAME},Regular"
    header = row + 1
    ws.print_title_rows = f"{header}:{header}"
    ws.freeze_panes = ws.cell(header + 1, 1)
    return header


def _body(ws: Worksheet, header: int, cols: list[Col], rows: list[dict],
          fills: list[str | None], *, empty: str) -> None:
    """The header row and one row per item, boxed; long texts wrapped, rows as tall as their
    longest text (LibreOffice does not grow them on opening)."""
    bold = Font(name=FONT_NAME, size=11, bold=True)
    for i, col in enumerate(cols, start=1):
        cell = ws.cell(header, i)
        _put(cell, col.header)
        cell.font, cell.border = bold, _BOX
        cell.fill = PatternFill("solid", fgColor=_GREY)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    ws.row_dimensions[header].height = line_height(
        max(text_lines(c.header, c.width, _SIZE, bold=True) for c in cols), _SIZE)
    if not rows:
        _merged(ws, header + 1, 1, len(cols) - 1, empty, {"italic": True, "size": 11},
                [c.width for c in cols])
        return
    font = Font(name=FONT_NAME, size=11)
    styles: dict[tuple[int, str | None], StyleArray] = {}  # one per column and fill
    for offset, (values, fill) in enumerate(zip(rows, fills, strict=True), start=1):
        r = header + offset
        tallest = 1
        for i, col in enumerate(cols, start=1):
            cell = ws.cell(r, i)
            value = values.get(col.key)
            _put(cell, value)
            style = styles.get((i, fill))
            if style is not None:  # openpyxl hashes every style object set: copy the first
                cell._style = copy.copy(style)
            else:
                cell.font, cell.border = font, _BOX
                cell.alignment = Alignment(
                    vertical="center", wrap_text=True,
                    horizontal="left" if col.kind == "text" else "center")
                if col.kind == "date":
                    cell.number_format = "dd/mm/yyyy"
                if fill:
                    cell.fill = PatternFill("solid", fgColor=fill)
                styles[i, fill] = copy.copy(cell._style)
            if isinstance(value, str):
                tallest = max(tallest, text_lines(value, col.width, _SIZE))
        ws.row_dimensions[r].height = line_height(tallest, _SIZE)
    ws.auto_filter.ref = f"A{header}:{get_column_letter(len(cols))}{header + len(rows)}"
    ws.print_area = f"A1:{get_column_letter(len(cols) - 1)}{header + len(rows)}"


def _merged(ws: Worksheet, row: int, first: int, last: int, text: str, font: dict,
            widths: list[float]) -> None:
    if last > first:
        ws.merge_cells(start_row=row, start_column=first, end_row=row, end_column=last)
    cell = ws.cell(row, first)
    _put(cell, text)
    size = font.get("size", 12)
    cell.font = Font(name=FONT_NAME, size=size, bold=font.get("bold", False),
                     italic=font.get("italic", False), underline=font.get("underline"))
    cell.alignment = Alignment(horizontal="center" if not font.get("italic") or row < 5
                               else "left", vertical="center", wrap_text=True)
    width = sum(widths[first - 1:last])
    ws.row_dimensions[row].height = max(ws.row_dimensions[row].height or 0,
                                        line_height(text_lines(text, width, size), size))


# Values


def _clean(text: str) -> str:
    """Text as a cell may hold it: no control characters, within Excel's length."""
    return ILLEGAL_CHARACTERS_RE.sub("", visible(text))[:_CELL_MAX]


def _put(cell, value: object) -> None:
    """Write a value; text always as text, never as a formula."""
    value = cell_value(value)
    if value == "":
        cell.value = None
    elif isinstance(value, str):
        cell.value = _clean(value)
        cell.data_type = "s"
    elif value is None or isinstance(value, bool | int | float | dt.date | dt.time):
        cell.value = value
    else:
        cell.value = _clean(str(value))
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
