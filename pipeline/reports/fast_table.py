"""Large table bodies written straight to worksheet XML, a column at a time.

XlsxWriter stores one tuple per cell and, on close, writes each cell's XML through several
calls: a province's person lists hold millions of cells and spend most of their writing time
there. `TableSheet.write_body` takes a whole body at once instead. Each column's distinct
values are converted once; shared strings are registered in the order the cell-by-cell
writes would have registered them (row by row, left to right); and on close the body rows are
written from string templates, the format indices assigned in the order of their first use.
The file is byte for byte the one the cell-by-cell writes give (tests/test_fast_table.py
writes both), so every reader and LibreOffice see the same workbook. Everything else on the
sheet (letterhead, header, totals, merged ranges, print settings) goes through XlsxWriter.
This leans on XlsxWriter 3.x internals (the shared string table, row records, _write_row,
_write_rows, _calculate_spans, Format._get_xf_index): that byte comparison fails first if a
release changes them.

Cell semantics are those of the table bodies: text is always a shared string, never a
formula; None is a formatted blank; booleans are the given yes/no texts; int and float are
numbers; dates, datetimes and times are Excel serial numbers with the column's date format
(a datetime with a time of day with its date-and-time format); anything else is its str().
"""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from xlsxwriter.format import Format
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet

# The formats of one body column under one fill: plain, date, date with a time of day.
CellFormats = tuple[Format, Format, Format]
_PLAIN, _DATE, _STAMP = 0, 1, 2
_NUMBER, _TEXT, _BLANK = 0, 1, 2
_FACTORIZED = frozenset({str, int, dt.date, type(None)})  # no two of them compare equal
_CHUNK = 4096  # body rows joined into one write
_TEXT_LIMIT = 32767  # UTF-16 units in a cell


@dataclass(frozen=True)
class _Column:
    """A body column: each row's code, and for each code (each distinct cell) its format
    variant (_PLAIN, _DATE, _STAMP), its kind (_NUMBER, _TEXT, _BLANK) and its <v> text (a
    text's string until it is shared, then its index in the shared strings)."""

    codes: np.ndarray
    variants: np.ndarray
    kinds: np.ndarray
    texts: list[str]


@dataclass(frozen=True)
class _Body:
    top: int  # first row (0-based)
    columns: list[_Column]
    formats: Sequence[Sequence[CellFormats]]  # [fill][column]
    fills: np.ndarray  # each row's index into formats
    heights: np.ndarray  # each row's index into examples
    examples: list[int]  # a row of each height

    @property
    def stop(self) -> int:
        return self.top + len(self.fills)


class TableSheet(Worksheet):
    """An XlsxWriter worksheet that also takes whole table bodies (`write_body`)."""

    def __init__(self) -> None:
        super().__init__()
        self._bodies: list[_Body] = []
        self._frozen_spans: dict | None = None

    def write_body(self, row: int, columns: Sequence[Sequence[object]],
                   formats: Sequence[Sequence[CellFormats]], fills: Sequence[int],
                   heights: Sequence[float], yes_no: tuple[str, str]) -> None:
        """Write a table body from `row`: `columns[c][r]` the plain values (`cell_value` in
        workbook.py: no NaN or infinity), `formats[fills[r]][c]` row r's formats,
        `heights[r]` its height in points; booleans are written as the texts `yes_no`."""
        n = len(fills)
        if n == 0 or not columns:
            return
        if self.constant_memory or any(b.top < row + n and row < b.stop for b in self._bodies):
            raise ValueError("a body needs the whole-sheet mode and rows of its own")
        if row < 0 or row + n > self.xls_rowmax or len(columns) > self.xls_colmax:
            raise ValueError(f"a body of {n} rows from row {row} leaves the sheet")
        self._check_dimensions(row, 0)
        self._check_dimensions(row + n - 1, len(columns) - 1)
        parts = [_distinct(list(values), yes_no, self._convert_date_time) for values in columns]
        self._share_strings(parts)
        height_codes, distinct = pd.factorize(np.asarray(heights, dtype=float))
        examples = [int(np.argmax(height_codes == k)) + row for k in range(len(distinct))]
        for example, height in zip(examples, distinct.tolist(), strict=True):
            self.set_row(example, height)  # XlsxWriter's row record, copied to the others
        # The other rows share the examples' records (XlsxWriter only reads them).
        codes = height_codes.tolist()
        for records in (self.row_info, self.row_sizes):
            kept = [records[r] for r in examples]
            records.update(zip(range(row, row + n), (kept[k] for k in codes), strict=True))
        self._bodies.append(_Body(row, parts, formats,
                                  np.asarray(fills, dtype=np.int64),
                                  height_codes.astype(np.int64), examples))
        self._bodies.sort(key=lambda b: b.top)

    def _share_strings(self, columns: list[_Column]) -> None:
        """Register the body's texts in the shared string table in the order of their first
        cell, row by row and left to right, and replace each text by its index there."""
        firsts, cols, codes = [], [], []
        cells = 0
        for c, column in enumerate(columns):
            is_text = column.kinds == _TEXT
            if not is_text.any():
                continue
            cells += int(is_text[column.codes].sum())
            first = np.full(len(column.texts), -1, dtype=np.int64)
            uniq, where = np.unique(column.codes, return_index=True)
            first[uniq] = where
            texts = np.flatnonzero(is_text)
            firsts.append(first[texts])
            cols.append(np.full(len(texts), c, dtype=np.int64))
            codes.append(texts)
        if not codes:
            return
        col, code = np.concatenate(cols), np.concatenate(codes)
        order = np.lexsort((col, np.concatenate(firsts)))
        share = self.str_table._get_shared_string_index
        for c, k in zip(col[order].tolist(), code[order].tolist(), strict=True):
            texts = columns[c].texts
            texts[k] = str(share(texts[k]))
        self.str_table.count += cells - len(code)  # the repeats: one count per text cell

    # Writing on close

    def _calculate_spans(self) -> None:
        if self._frozen_spans is not None:
            self.row_spans = self._frozen_spans
            return
        super()._calculate_spans()
        for body in self._bodies:  # a body has a cell in each of its columns on every row
            last = len(body.columns)
            for block in range(body.top // 16, (body.stop - 1) // 16 + 1):
                low, high = 1, last
                if block in self.row_spans:
                    old_low, old_high = map(int, self.row_spans[block].split(":"))
                    low, high = min(low, old_low), max(high, old_high)
                self.row_spans[block] = f"{low}:{high}"

    def _write_rows(self) -> None:
        if not self._bodies:
            super()._write_rows()
            return
        first, last = self.dim_rowmin, self.dim_rowmax
        self._calculate_spans()
        self._frozen_spans = self.row_spans
        try:
            start = first
            for body in self._bodies:
                self._write_other_rows(start, body.top - 1)
                self._write_body_rows(body)
                start = body.stop
            self._write_other_rows(start, last)
        finally:
            self.dim_rowmin, self.dim_rowmax = first, last
            self._frozen_spans = None

    def _write_other_rows(self, first: int, last: int) -> None:
        if first <= last:
            self.dim_rowmin, self.dim_rowmax = first, last
            super()._write_rows()

    def _write_body_rows(self, body: _Body) -> None:
        n, top = len(body.fills), body.top
        if any(top <= r < body.stop and cells for r, cells in self.table.items()):
            raise RuntimeError(f"cells written over the table body from row {top + 1}")
        # Format indices are numbered on first use: use them in the order the cells would.
        uses = []
        for c, column in enumerate(body.columns):
            keys = body.fills * 3 + column.variants[column.codes]
            uniq, where = np.unique(keys, return_index=True)
            uses += [(w, c, body.formats[k // 3][c][k % 3])
                     for k, w in zip(uniq.tolist(), where.tolist(), strict=True)]
        for _, _, fmt in sorted(uses, key=lambda use: use[:2]):
            fmt._get_xf_index()
        tails = [_tails(column, [f[c] for f in body.formats], body.fills)
                 for c, column in enumerate(body.columns)]
        tags = self._row_tags(body)
        template = '<row r="{0}"{1}' + "".join(
            f'<c r="{xl_col_to_name(c)}{{0}}"{{{c + 2}}}' for c in range(len(body.columns))
        ) + "</row>"
        render = template.format
        for start in range(0, n, _CHUNK):
            stop = min(n, start + _CHUNK)
            rows = zip(map(str, range(top + start + 1, top + stop + 1)), tags[start:stop],
                       *(t[start:stop] for t in tails), strict=True)
            self.fh.write("".join([render(*cells) for cells in rows]))

    def _row_tags(self, body: _Body) -> list[str]:
        """Each body row's <row> attributes after r="…", as XlsxWriter writes them."""
        rows = np.arange(body.top, body.stop)
        keys = (rows // 16) * len(body.examples) + body.heights
        uniq, inverse = np.unique(keys, return_inverse=True)
        tags = []
        for key in uniq.tolist():
            block, height = divmod(key, len(body.examples))
            example = body.examples[height]
            out, self.fh = self.fh, io.StringIO()
            try:
                self._write_row(example, self.row_spans.get(block), self.row_info[example])
                tag = self.fh.getvalue()
            finally:
                self.fh = out
            prefix = f'<row r="{example + 1}"'
            if not tag.startswith(prefix):
                raise RuntimeError(f"unexpected row element {tag!r}")
            tags.append(tag[len(prefix):])
        return _spread(tags, inverse)


def _distinct(values: list, yes_no: tuple[str, str], serial) -> _Column:
    """A column's values as codes (each row's index among its distinct cells) and cells."""
    if set(map(type, values)) <= _FACTORIZED:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        codes, uniques = pd.factorize(array)
        distinct = uniques.tolist()
        if (codes < 0).any():  # None
            codes[codes < 0] = len(distinct)
            distinct.append(None)
    else:  # floats (-0.0 and 0.0 compare equal, 1 and True too): keyed by type and sign
        index: dict = {}
        distinct = []
        codes = np.empty(len(values), dtype=np.int64)
        for i, value in enumerate(values):
            key = (type(value), value, math.copysign(1, value) if type(value) is float else 0)
            code = index.get(key)
            if code is None:
                code = index[key] = len(distinct)
                distinct.append(value)
            codes[i] = code
    variants = np.full(len(distinct), _PLAIN, dtype=np.int64)
    kinds = np.full(len(distinct), _TEXT, dtype=np.int64)
    short = _TEXT_LIMIT // 2  # a shorter text is within the limit whatever its characters
    for k, value in enumerate(distinct):  # texts stay as they are
        if type(value) is not str or len(value) > short:
            variants[k], kinds[k], distinct[k] = _cell(value, yes_no, serial)
    return _Column(codes, variants, kinds, distinct)


def _cell(value: object, yes_no: tuple[str, str], serial) -> tuple[int, int, str]:
    """One value's format variant, kind and <v> text, as the cell-by-cell writes store it."""
    kind = type(value)
    if kind is str:
        return _PLAIN, _TEXT, _excel_text(value)
    if value is None:
        return _PLAIN, _BLANK, ""
    if kind is bool:
        return _PLAIN, _TEXT, yes_no[0] if value else yes_no[1]
    if kind is int or kind is float:
        return _PLAIN, _NUMBER, f"{value:.16G}"
    if kind is dt.datetime and value.time() != dt.time():  # type: ignore[attr-defined]
        return _STAMP, _NUMBER, f"{serial(value):.16G}"
    if kind in (dt.date, dt.datetime, dt.time):
        return _DATE, _NUMBER, f"{serial(value):.16G}"
    return _PLAIN, _TEXT, _excel_text(str(value))


def _excel_text(text: str, limit: int = _TEXT_LIMIT) -> str:
    """The text cut to Excel's limit of 32,767 UTF-16 units, a character above U+FFFF
    counting two and never split."""
    if len(text) <= limit // 2 or len(text.encode("utf-16-le", "surrogatepass")) // 2 <= limit:
        return text
    length = 0
    for i, char in enumerate(text):
        length += 2 if ord(char) > 0xFFFF else 1
        if length > limit:
            return text[:i]
    return text


def _tails(column: _Column, formats: list[CellFormats], fills: np.ndarray) -> list[str]:
    """Each row's cell XML after r="…" for one column."""
    count = len(formats)
    keys = column.codes * count + fills
    uniq, inverse = np.unique(keys, return_inverse=True)
    tails = []
    variants, kinds, texts = column.variants.tolist(), column.kinds.tolist(), column.texts
    for key in uniq.tolist():
        code, fill = divmod(key, count)
        kind, text = kinds[code], texts[code]
        xf = formats[fill][variants[code]]._get_xf_index()
        if kind == _BLANK:
            tails.append(f' s="{xf}"/>')
        elif kind == _TEXT:
            tails.append(f' s="{xf}" t="s"><v>{text}</v></c>')
        else:
            tails.append(f' s="{xf}"><v>{text}</v></c>')
    return _spread(tails, inverse)


def _spread(distinct: list[str], codes: np.ndarray) -> list[str]:
    array = np.empty(len(distinct), dtype=object)
    array[:] = distinct
    return array[codes].tolist()
