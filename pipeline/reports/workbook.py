"""Workbook writing for every output: official letterhead, tables, findings, marked copies.

Rows of a table sheet (Excel numbering):
  1–2  issuing unit (left) and Quốc hiệu, tiêu ngữ (right); 3 the date line (right)
  5    title; 6 subtitle, only when given
  7    table header (8 with a subtitle); a grouped header takes two rows
  then the body, the totals row, notes and the signature block.

Printing: every sheet is A4, fitted to the page width only (a long list runs over as many
pages as it needs, at a readable size), portrait when the printed columns fit it, landscape
otherwise, with the header rows repeated on each page and "Trang x/y" in the footer. Columns
marked `printed=False` stay on screen (after the printed ones) but outside the print area;
the body rows of a list share one height.

Nothing from a school's file becomes a formula or a link: the workbook options switch off
xlsxwriter's string conversions, every string is written with write_string, and table bodies
(fast_table.TableSheet.write_body, the same file as cell by cell) write text as shared strings.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import numbers
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xlsxwriter
import xlsxwriter.workbook
from xlsxwriter.format import Format
from xlsxwriter.packager import Packager
from xlsxwriter.sharedstrings import SharedStrings, _preserve_whitespace
from xlsxwriter.worksheet import Worksheet

from pipeline import texts as wording
from pipeline.config import Office
from pipeline.findings import FINDING_HEADERS, Finding, Severity, findings_frame
from pipeline.reports.fast_table import TableSheet
from pipeline.settings import FONT_NAME
from pipeline.text import visible

# Input text is never a formula, a link or a number. Parts are assembled in memory, not in
# temporary files: three times faster for the small feedback workbooks.
WORKBOOK_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False,
                    "strings_to_numbers": False, "nan_inf_to_errors": True, "in_memory": True}
# The texts of every sheet (texts.yaml, sections "document" and "reports").
NATION = wording.text("document", "nation")
MOTTO = wording.text("document", "motto")
PREPARER = wording.text("reports", "preparer")
SIGN_HINT = wording.text("reports", "sign_hint")
NO_DATA = wording.text("reports", "no_data")
NO_FINDINGS = wording.text("reports", "no_findings")
TOTALS = wording.text("reports", "totals")
YES, NO = wording.text("reports", "yes"), wording.text("reports", "no")
RED, YELLOW, GREY = "#FFC7CE", "#FFF2CC", "#D9D9D9"
FILLS = {"error": RED, "warning": YELLOW}
_LABELS = {s.value: s.label for s in Severity}

_KINDS = {"text": None, "int": "#,##0", "pct": "0.0%", "date": "dd/mm/yyyy", "number": "#,##0.00"}
_MIN_WIDTH = {"date": 11, "pct": 7, "int": 5}  # narrower shows ##### instead of the value
_MIN_TABLE_WIDTH = 90  # characters: the letterhead's two blocks side by side
# Printed widths (Excel character units) that fit A4 at 100% between the margins below:
# narrower tables print portrait, wider ones landscape (scaled down to fit the width).
_PORTRAIT_WIDTH = 100
BODY_SIZE = 11  # font size of table bodies
ROW_MAX_LINES = 3  # a list row grows to at most this many lines of wrapped text
_FIT_LIMIT = 40  # the widest a one-line list column grows to fit its longest text
_NATION_WIDTH = 48  # characters the Quốc hiệu needs on one line
_OFFICE_WIDTH = 30  # characters the issuing office needs on two lines at most
_DATE, _DATETIME = "dd/mm/yyyy", "dd/mm/yyyy hh:mm"
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
_PLAIN_TYPES = frozenset({str, int, dt.date, type(None)})  # what cell_value leaves as it is


def txt(key: str, **values: object) -> str:
    """A text of the reports (texts.yaml, section "reports"), its {placeholders} filled from
    `values` when given."""
    return wording.render("reports", key, **values) if values else wording.text("reports", key)


@dataclass(frozen=True)
class Letterhead:
    """The official header block of a Vietnamese administrative document."""

    parent: str  # "UBND XÃ TÂN LẬP"
    office: str  # "PHÒNG VĂN HÓA – XÃ HỘI"
    place: str  # "Tân Lập" in "Tân Lập, ngày 25 tháng 11 năm 2026"
    signer: str = "Trưởng phòng"
    date: dt.date | None = None  # None: "ngày … tháng … năm …", filled in by hand

    @classmethod
    def of(cls, office: Office, date: dt.date | None = None) -> Letterhead:
        """The letterhead of a configured office."""
        return cls(office.parent, office.name, office.place, office.signer, date)

    @property
    def date_line(self) -> str:
        """The date line; days < 10 and months 1–2 take a leading 0 (Nghị định 30/2020)."""
        if self.date is None:
            day = wording.text("reports", "date_blank")
        else:
            month = f"{self.date.month:02d}" if self.date.month < 3 else str(self.date.month)
            day = wording.render("reports", "date", day=f"{self.date.day:02d}", month=month,
                                 year=self.date.year)
        return f"{self.place.strip()}, {day}" if self.place.strip() else day.capitalize()


@dataclass(frozen=True)
class Col:
    """One column of a report table."""

    key: str  # DataFrame column
    header: str  # Vietnamese header
    width: float = 14
    kind: str = "text"  # text | int | pct (0..1) | date | number
    total: bool = False  # summed in the totals row (int, number)
    total_from: tuple[str, str] | None = None  # pct total = sum(numerator) / sum(denominator)
    group: str | None = None  # group header above, merged over neighbouring columns
    # False: shown on screen after the printed columns, outside the print area, not wrapped
    # (working data such as codes and full citations, which would make every row tall).
    printed: bool = True

    def __post_init__(self) -> None:
        if (self.kind not in _KINDS or (self.total and self.kind not in ("int", "number"))
                or (self.total_from is not None and self.kind != "pct")):
            raise ValueError(f"column {self.key!r}: kind {self.kind!r} is unknown or cannot "
                             "have this total (total: int/number; total_from: pct)")


class _Formats:
    """One cache per workbook: xlsxwriter formats must be created once and reused."""

    def __init__(self, book: xlsxwriter.Workbook) -> None:
        self._book, self._cache = book, {}

    def __call__(self, **props: object) -> Format:
        merged = {"font_name": FONT_NAME, "font_size": 12, "valign": "vcenter", **props}
        key = tuple(sorted(merged.items()))
        if key not in self._cache:
            self._cache[key] = self._book.add_format(merged)
        return self._cache[key]


class _PlainStrings(SharedStrings):
    """Every shared string written as text. XlsxWriter writes a string that starts with
    "<r>" and ends with "</r>" unescaped, taking it for its own rich text: a school's cell
    holding such a text would make the workbook unreadable. tdkt writes no rich text."""

    def _write_si(self, string: str) -> None:
        string = self._escape_control_characters(string)
        attributes = [("xml:space", "preserve")] if _preserve_whitespace(string) else []
        self._xml_si_element(string, attributes)


class _Packager(Packager):
    def _write_shared_strings_file(self) -> None:
        if not self.workbook.str_table.count:
            return
        sst = _PlainStrings()
        sst.string_table = self.workbook.str_table
        sst._set_xml_writer(self._filename("xl/sharedStrings.xml"))
        sst._assemble_xml_file()


# zlib's level for tdkt's workbooks (XlsxWriter leaves zlib's default, 6). Measured on a
# province's office workbook (122 MB of XML): level 6 1.83 s, 12.4 MB; level 4 0.63 s,
# 13.7 MB; level 1 0.45 s, 16.3 MB.
DEFLATE_LEVEL = 4


class _FastZip(zipfile.ZipFile):
    """A zip package deflated at DEFLATE_LEVEL: at zlib's default a province's workbook spent
    a third of its writing time compressing, for a file a tenth smaller."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, compresslevel=DEFLATE_LEVEL, **kwargs)

    def writestr(self, zinfo_or_arcname: Any, data: Any, compress_type: int | None = None,
                 compresslevel: int | None = None) -> None:
        super().writestr(zinfo_or_arcname, data, compress_type,
                         DEFLATE_LEVEL if compresslevel is None else compresslevel)


class _Workbook(xlsxwriter.Workbook):
    """XlsxWriter's workbook, its shared strings always written as text (_PlainStrings),
    its package deflated at DEFLATE_LEVEL."""

    def _get_packager(self) -> Packager:
        return _Packager()

    def _store_workbook(self) -> None:
        # XlsxWriter names zipfile.ZipFile in its own module and sets no level: the package is
        # made with _FastZip for the time of this call (no other thread writes workbooks).
        module = xlsxwriter.workbook
        original, module.ZipFile = module.ZipFile, _FastZip
        try:
            super()._store_workbook()
        finally:
            module.ZipFile = original


class ReportBook:
    """An output workbook with the official layout; use as a context manager.

    `title` goes into the file's document properties; each sheet has its own title.
    """

    def __init__(self, path: Path, letterhead: Letterhead, title: str, *,
                 big: bool = False) -> None:
        self.path, self.letterhead = Path(path), letterhead
        # A big workbook (a province's lists) assembles its parts in temporary files: in
        # memory they would take as much again as its cells.
        options = WORKBOOK_OPTIONS | ({"in_memory": False} if big else {})
        self._book = _Workbook(str(self.path), options)
        # A fixed creation time keeps the file byte-identical when re-run on the same inputs.
        created = dt.datetime.combine(letterhead.date or dt.date(2000, 1, 1), dt.time())
        self._book.set_properties(
            {"title": title, "author": "tdkt", "company": letterhead.office, "created": created}
        )
        self._fmt = _Formats(self._book)
        self._names: set[str] = set()
        self._closed = False

    def __enter__(self) -> ReportBook:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # xlsxwriter writes only on close: no half-written report, an older file stays
            self._closed = True

    def close(self) -> None:
        """Write the workbook to its path."""
        if not self._closed:
            self._closed = True
            self._book.close()

    # Sheets

    def table_sheet(
        self, name: str, title: str, frame: pd.DataFrame, cols: list[Col], *,
        subtitle: str = "", totals_label: str | None = TOTALS, signature: bool = True,
        notes: Sequence[str] = (), autofilter: bool = True, highlight: pd.Series | None = None,
        max_lines: int = ROW_MAX_LINES, uniform: bool = True,
    ) -> None:
        """An official table: letterhead, title, header, body, totals, notes, signature.

        Body rows share one height: the lines the longest printed text needs, at most
        `max_lines` (`uniform=False`: each row as tall as its own text, for a reference table
        whose texts differ widely). With `max_lines=1` the printed text columns widen to fit
        their longest value on one line."""
        fills: list[str | None] = [None] * len(frame)
        if highlight is not None:  # aligned on the frame's index
            if not highlight.index.equals(frame.index):
                highlight = highlight.reindex(frame.index)
            fills = [RED if pd.notna(flag) and bool(flag) else None for flag in highlight]
        self._table(name, title, frame, cols, subtitle=subtitle, totals_label=totals_label,
                    signature=signature, notes=notes, autofilter=autofilter, fills=fills,
                    empty_text=NO_DATA, max_lines=max_lines, uniform=uniform)

    def findings_sheet(
        self, name: str, findings: list[Finding], *, title: str, include_unit: bool = True
    ) -> None:
        """Every finding, one per row: errors light red, warnings light yellow."""
        frame = findings_frame(list(findings))
        cols = [c for c in _FINDING_COLS if include_unit or c.key != "unit"]
        severities = frame["severity"].tolist()
        subtitle = ""
        if severities:
            errors = severities.count(Severity.ERROR.value)
            subtitle = wording.render("reports", "findings_count", errors=errors,
                                      warnings=len(severities) - errors)
        # Messages vary from a few words to several lines: each row is as tall as its own.
        self._table(name, title, frame, cols, subtitle=subtitle, totals_label=None,
                    signature=False, notes=(), autofilter=True,
                    fills=[FILLS.get(s) for s in severities], empty_text=NO_FINDINGS,
                    max_lines=8, uniform=False)

    def source_sheet(
        self, name: str, grid: list[list[object]], marks: dict[tuple[int, int], tuple[str, str]]
    ) -> None:
        """A copy of a school's sheet at the same addresses, bad cells filled and commented."""
        ws = self._sheet(name)
        ws.hide_gridlines(0)  # show and print the grid, as the school saw its sheet
        lengths: dict[int, int] = {}
        cells = {(r, c) for r, row in enumerate(grid) for c in range(len(row))} | set(marks)
        for r, c in sorted(cells):
            value = cell_value(grid[r][c]) if r < len(grid) and c < len(grid[r]) else None
            if isinstance(value, str):  # the school's text, less what would hide or reverse it
                value = visible(value)
            severity, message = marks.get((r, c), ("", ""))
            fill = FILLS.get(str(severity))
            if value is None and fill is None:
                continue
            props = {"font_size": 11, **({"bg_color": fill, "pattern": 1} if fill else {})}
            self._write(ws, r, c, value, props, bools_as_text=False)
            if value is not None:
                shown = "0" * 10 if isinstance(value, dt.date | dt.time) else str(value)
                lengths[c] = max(lengths.get(c, 0), *map(len, shown.split("\n")))
            if (r, c) in marks:
                label = _LABELS.get(str(severity), str(severity))
                text = f"{label}: {message}" if label else str(message)
                ws.write_comment(r, c, text, {
                    "author": "tdkt", "visible": False, "width": 300,
                    "height": max(80, 18 * text_lines(text, 300 / 7, size=9) + 24),
                })
        for c, length in lengths.items():
            ws.set_column(c, c, min(50, max(8, length + 2)))

    # Layout

    def _sheet(self, name: str) -> TableSheet:
        if (not name or len(name) > 31 or _BAD_SHEET_CHARS.search(name) or name[0] == "'"
                or name[-1] == "'" or name.lower() == "history" or name.lower() in self._names):
            raise ValueError(f"invalid or duplicate sheet name {name!r} (≤ 31 chars, no []:*?/\\)")
        self._names.add(name.lower())
        ws = self._book.add_worksheet(name, worksheet_class=TableSheet)
        ws.set_paper(9)  # A4
        ws.set_landscape()
        ws.fit_to_pages(1, 0)
        ws.center_horizontally()
        ws.set_margins(left=0.6, right=0.4, top=0.6, bottom=0.6)
        ws.set_footer('&C&"Times New Roman,Regular"&10Trang &P/&N')
        return ws

    def _table(
        self, name: str, title: str, frame: pd.DataFrame, cols: list[Col], *, subtitle: str,
        totals_label: str | None, signature: bool, notes: Sequence[str], autofilter: bool,
        fills: list[str | None], empty_text: str, max_lines: int = ROW_MAX_LINES,
        uniform: bool = True,
    ) -> None:
        missing = [c.key for c in cols if c.key not in frame.columns]
        printed = [c for c in cols if c.printed]
        if not printed or missing:
            raise ValueError(f"sheet {name!r}: no printed columns, or not in the frame: "
                             f"{missing}")
        if max_lines == 1:  # one line per row: printed columns as wide as their longest text
            printed = [_fitted(c, frame[c.key]) for c in printed]
        ws = self._sheet(name)
        extra = [c for c in cols if not c.printed]
        cols = printed + extra  # the printed columns first: the print area is one block
        layout = table_widths(printed)
        if extra and len(layout) > len(printed):  # no spacer column between the two blocks
            layout = [max(layout[0], _MIN_TABLE_WIDTH)]
        widths = layout + [max(c.width, _MIN_WIDTH.get(c.kind, 0)) for c in extra]
        for i, width in enumerate(widths):
            ws.set_column(i, i, width)
        if sum(layout) <= _PORTRAIT_WIDTH:
            ws.set_portrait()
        last, right, split = len(cols) - 1, len(layout) - 1, letterhead_split(layout)
        self._letterhead(ws, layout, split)
        self._merge(ws, 4, 0, right, title, fit=layout, font_size=14, bold=True, align="center")
        if subtitle:
            self._merge(ws, 5, 0, right, subtitle, fit=layout, italic=True, align="center")
        head = 7 if subtitle else 6
        top = self._header(ws, head, cols, widths)
        row = top
        if frame.empty:
            self._merge(ws, row, 0, len(printed) - 1, empty_text, italic=True, align="center",
                        border=1, font_size=BODY_SIZE)
            row += 1
        else:
            row = self._body(ws, row, frame, cols, widths, fills, max_lines, uniform)
            if autofilter:
                ws.autofilter(top - 1, 0, row - 1, last)
            if totals_label is not None and any(c.total or c.total_from for c in cols):
                self._totals(ws, row, frame, cols, totals_label)
                row += 1
        ws.freeze_panes(top, 0)
        ws.repeat_rows(head, top - 1)
        row += 1  # one blank row under the table, then notes, blank, signature
        for note in notes:
            self._merge(ws, row, 0, right, note, fit=layout, italic=True, align="left")
            row += 1
        if signature:
            row += bool(notes)
            signer = self.letterhead.signer.upper()
            self._merge(ws, row, 0, split - 1, PREPARER, bold=True, align="center")
            self._merge(ws, row, split, right, signer, fit=layout, bold=True, align="center")
            self._merge(ws, row + 1, 0, split - 1, SIGN_HINT, italic=True, align="center")
            self._merge(ws, row + 1, split, right, SIGN_HINT, italic=True, align="center")
            row += 1
        if extra:
            ws.print_area(0, 0, row, right)

    def _body(self, ws: TableSheet, row: int, frame: pd.DataFrame, cols: list[Col],
              widths: list[float], fills: list[str | None], max_lines: int,
              uniform: bool) -> int:
        """Write the body rows from `row`; return the row after them.

        The body can be a province's worth of rows: values are converted and row heights
        measured a column at a time, and the sheet writes the rows in one go (fast_table).
        LibreOffice does not grow rows for wrapped text on import, so every row's height is
        set here."""
        columns = [cell_values(frame[c.key].tolist()) for c in cols]
        distinct = {fill: i for i, fill in enumerate(dict.fromkeys(fills))}
        formats = [[self._body_formats(c.kind, fill, wrap=c.printed) for c in cols]
                   for fill in distinct]
        lines = np.ones(len(frame), dtype=np.int64)
        if max_lines > 1:  # one line is all a row of a one-line list needs
            for i, col in enumerate(cols):
                if col.kind == "text" and col.printed:
                    own = np.asarray(_column_lines(columns[i], widths[i]), dtype=np.int64)
                    np.maximum(lines, own, out=lines)
        need = np.minimum(lines, max_lines)
        if uniform:
            need[:] = need.max(initial=1)
        heights = [_row_height(n) for n in range(max_lines + 1)]
        ws.write_body(row, columns, formats, [distinct[fill] for fill in fills],
                      [heights[n] for n in need.tolist()], (YES, NO))
        return row + len(frame)

    def _letterhead(self, ws: Worksheet, widths: list[float], split: int) -> None:
        lh, right = self.letterhead, len(widths) - 1
        self._merge(ws, 0, 0, split - 1, lh.parent.upper(), align="center")
        self._merge(ws, 1, 0, split - 1, lh.office.upper(), bold=True, underline=1,
                    align="center")
        self._merge(ws, 0, split, right, NATION, bold=True, align="center")
        self._merge(ws, 1, split, right, MOTTO, bold=True, underline=1, align="center")
        self._merge(ws, 2, split, right, lh.date_line, fit=widths, italic=True, align="center")
        left_w, right_w = sum(widths[:split]), sum(widths[split:])
        for r, (left, rtext) in enumerate([(lh.parent, NATION), (lh.office, MOTTO)]):
            lines = max(text_lines(left.upper(), left_w, bold=r == 1),
                        text_lines(rtext, right_w, bold=True))
            ws.set_row(r, line_height(lines))

    def _header(self, ws: Worksheet, row: int, cols: list[Col], widths: list[float]) -> int:
        """Write the header (two rows when any column has a group); return the first body row."""
        style = {"bold": True, "border": 1, "align": "center", "bg_color": GREY, "pattern": 1}
        grouped, n = any(c.group for c in cols), len(cols)
        need = [text_lines(c.header, w, bold=True) for c, w in zip(cols, widths, strict=False)]
        group_lines, i = 1, 0
        while i < n:
            group, j = cols[i].group, i
            while group and j + 1 < n and cols[j + 1].group == group:
                j += 1
            if group is None:  # spans both header rows when there are groups
                self._merge(ws, row, i, i, cols[i].header, bottom=row + grouped, **style)
            else:
                self._merge(ws, row, i, j, group, **style)
                group_lines = max(group_lines, text_lines(group, sum(widths[i:j + 1]), bold=True))
                for k in range(i, j + 1):
                    ws.write_string(row + 1, k, cols[k].header, self._fmt(text_wrap=True, **style))
            i = j + 1
        alone = max((n for n, c in zip(need, cols, strict=False) if not c.group), default=1)
        if not grouped:
            ws.set_row(row, line_height(alone))
            return row + 1
        under = max(n for n, c in zip(need, cols, strict=False) if c.group)
        ws.set_row(row, line_height(group_lines))
        ws.set_row(row + 1, line_height(max(under, alone - group_lines)))
        return row + 2

    def _totals(self, ws: Worksheet, row: int, frame: pd.DataFrame, cols: list[Col],
                label: str) -> None:
        first = next(i for i, c in enumerate(cols) if c.total or c.total_from)
        if first > 0:
            self._merge(ws, row, 0, first - 1, label, bold=True, align="center", border=1)
        for i, col in enumerate(cols[first:], start=first):
            props = _body_props(col.kind, None) | {"bold": True}
            self._write(ws, row, i, _total(frame, col), props)

    # Cells

    def _merge(self, ws: Worksheet, row: int, first: int, last: int, text: str, *,
               bottom: int | None = None, fit: list[float] | None = None,
               **props: object) -> None:
        """Write text over cells first..last of a row (down to `bottom`), merged.

        Merged cells never grow to fit their text: with `fit` (the column widths) the row
        height is set from the text.
        """
        r2 = row if bottom is None else bottom
        fmt = self._fmt(text_wrap=True, **props)
        if (row, first) != (r2, last):
            ws.merge_range(row, first, r2, last, "", fmt)
        ws.write_string(row, first, text, fmt)
        if fit is not None:
            size = float(props.get("font_size", 12))  # type: ignore[arg-type]
            bold = bool(props.get("bold"))
            lines = text_lines(text, sum(fit[first:last + 1]), size, bold)
            ws.set_row(row, line_height(lines, size))

    def _body_formats(self, kind: str, fill: str | None, *, wrap: bool = True
                      ) -> tuple[Format, Format, Format]:
        """A body cell's format, and its formats for a date and for a date with a time
        (`wrap=False`: text on one line, for columns outside the print area)."""
        props = _body_props(kind, fill) | ({} if wrap or kind != "text" else {"text_wrap": False})
        return (self._fmt(**props), self._fmt(**(props | {"num_format": _DATE})),
                self._fmt(**(props | {"num_format": _DATETIME})))

    def _write(self, ws: Worksheet, row: int, col: int, value: object, props: dict, *,
               bools_as_text: bool = True) -> None:
        value = cell_value(value)
        fmt = self._fmt(**props)
        if value is None:
            ws.write_blank(row, col, None, fmt)
        elif isinstance(value, bool):
            if bools_as_text:
                ws.write_string(row, col, YES if value else NO, fmt)
            else:
                ws.write_boolean(row, col, value, fmt)
        elif isinstance(value, int | float):
            ws.write_number(row, col, value, fmt)
        elif isinstance(value, dt.date | dt.time):
            stamp = isinstance(value, dt.datetime) and value.time() != dt.time()
            date_fmt = self._fmt(**(props | {"num_format": _DATETIME if stamp else _DATE}))
            ws.write_datetime(row, col, value, date_fmt)
        else:
            ws.write_string(row, col, str(value), fmt)


_FINDING_COLS = [
    Col(key, FINDING_HEADERS[key if key != "severity_label" else "severity"], width)
    # About 150 characters wide: A4 landscape at ~90% scale, still readable when printed.
    for key, width in [("unit", 9), ("file", 18), ("sheet", 11), ("cell", 6),
                       ("severity_label", 9), ("value", 15), ("expected", 16),
                       ("message", 32), ("hint", 26)]
] + [Col("code", FINDING_HEADERS["code"], 16, printed=False)]  # codes: on screen, last


def _body_props(kind: str, fill: str | None) -> dict:
    props: dict = {"border": 1, "font_size": BODY_SIZE}
    if kind == "text":
        props |= {"text_wrap": True, "align": "left"}
    else:
        props |= {"num_format": _KINDS[kind], "align": "right" if kind == "number" else "center"}
    if fill:
        props |= {"bg_color": fill, "pattern": 1}
    return props


def _total(frame: pd.DataFrame, col: Col) -> float | int | None:
    """The totals-row value of a column, computed here rather than as an Excel formula."""
    if col.total_from:
        num, den = (float(pd.to_numeric(frame[k], errors="coerce").sum()) for k in col.total_from)
        return num / den if den else 0.0
    if not col.total:
        return None
    total = float(pd.to_numeric(frame[col.key], errors="coerce").sum())
    return int(total) if col.kind == "int" and total.is_integer() else total


# Cell values and layout measures, shared by the xlsxwriter reports here, the official
# documents (official.py) and the openpyxl feedback copy (feedback.py).


def cell_value(value: object) -> object:
    """A cell value as None, bool, int, float, str, date, datetime or time."""
    kind = type(value)
    if kind is str or kind is int or kind is dt.date:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)  # ±inf would become the formula =1/0: leave the cell empty
        return number if math.isfinite(number) else None
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
        if value is pd.NaT:
            return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime(warn=False)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date | dt.time | str):
        return value
    return str(value)


def cell_values(values: list) -> list:
    """`cell_value` of each value; a column of only text, whole numbers, dates and None is
    already plain."""
    if set(map(type, values)) <= _PLAIN_TYPES:
        return values
    return [cell_value(v) for v in values]


def _column_lines(values: list, width: float) -> list[int]:
    """The lines each value of a wrapped text column needs (1 for other values)."""
    lines: dict[str, int] = {}
    return [(lines[v] if v in lines else lines.setdefault(v, text_lines(v, width, BODY_SIZE)))
            if isinstance(v, str) else 1 for v in values]


def table_widths(cols: list[Col]) -> list[float]:
    """Column widths, widened so the letterhead fits on its lines above a narrow table."""
    widths = [max(c.width, _MIN_WIDTH.get(c.kind, 0)) for c in cols]
    if len(cols) == 1:  # the Quốc hiệu goes in an extra column beside the table
        return [*widths, max(50.0, _MIN_TABLE_WIDTH - widths[0])]
    total = sum(widths)
    if total < _MIN_TABLE_WIDTH:  # keep the table's proportions
        widths = [w * _MIN_TABLE_WIDTH / total for w in widths]
    return widths


def _fitted(col: Col, values: pd.Series) -> Col:
    """The column widened (at most to _FIT_LIMIT) so that its longest text fits one line."""
    if col.kind != "text":
        return col
    texts = _longest(values.tolist(), 5)
    if not texts:
        return col
    width = col.width
    while width < _FIT_LIMIT and any(text_lines(t, width, BODY_SIZE) > 1 for t in texts):
        width += 1
    return replace(col, width=width)


def _longest(values: list, n: int) -> list[str]:
    """The `n` longest texts among the values, longest first, equally long ones in their
    order (as `sorted(..., key=len, reverse=True)[:n]`)."""
    texts = [v for v in values if isinstance(v, str)]
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    return [texts[i] for i in np.argsort(-lengths, kind="stable")[:n].tolist()]


def letterhead_split(widths: list[float]) -> int:
    """How many columns the left block of the letterhead covers: about 40% of the width,
    leaving the Quốc hiệu room for one line when the columns allow it."""
    total = sum(widths)

    def badness(k: int) -> float:  # how short the worse block falls, then distance from 40%
        left = sum(widths[:k])
        cramped = max(1.0, _OFFICE_WIDTH / left, _NATION_WIDTH / (total - left))
        return cramped + abs(left - 0.4 * total) / total

    return min(range(1, len(widths)), key=badness, default=1)


@functools.lru_cache(maxsize=1 << 16)
def text_lines(text: str, width: float, size: float = 12, bold: bool = False) -> int:
    """Roughly how many lines a wrapped text needs in a cell `width` characters wide."""
    room = width * 7 + 5 - 8  # Excel column width → pixels, less the cell padding
    upper = sum(ch.isupper() for ch in text) / max(1, len(text))
    char = size * 4 / 3 * (0.44 + 0.26 * upper) * (1.07 if bold else 1)
    per_line = max(1, int(room / char * 0.95))  # word wrapping wastes part of each line
    return sum(max(1, math.ceil(len(part) / per_line)) for part in text.split("\n"))


def line_height(lines: int, size: float = 12) -> float:
    """The height in points of a row of `lines` lines of text in a `size`-point font."""
    return round(lines * size * 1.2 + 4, 1)


def _row_height(lines: int) -> float:
    """A body row of `lines` lines of wrapped text (BODY_SIZE), with a little air."""
    return round(lines * BODY_SIZE * 1.2 + 2.5, 1)
