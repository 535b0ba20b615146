"""Cell values → clean values: NFC, legacy encodings, text dates, serial dates, synonyms.

A value that cannot be understood is left as found, for validation to report; a value that was
understood only after a correction is converted and reported as a warning, one per cell.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline import settings
from pipeline.findings import Finding
from pipeline.forms.definitions import Column, Derive, Sheet, Vocabulary
from pipeline.ingest.frames import FrameParts
from pipeline.ingest.legacy import fix_legacy
from pipeline.ingest.read import (
    EXCEL_ERRORS,
    CellProblem,
    Serial1904,
    TableCells,
    echo,
)
from pipeline.text import clean, fold, has_control, loose

_EXCEL_EPOCH = dt.date(1899, 12, 30)
_EPOCH_1904 = dt.date(1904, 1, 1)
# Plausible serial numbers for the dates these forms hold (1900 … 2099).
_SERIAL_RANGE = (1, 73051)
# A whole number in this range typed in a date cell is a year, not a day count (serials
# 1900…2100 are days of 1905, outside every date the forms hold).
_YEARS = (1900, 2100)
# Dates the forms can hold (the range the template's date check allows).
_DATE_RANGE = tuple(dt.date.fromisoformat(d) for d in settings.TEMPLATE_DATE_RANGE)
_TEXT_DATE = re.compile(r"^(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T].*)?$")
_INTEGER_TEXT = re.compile(r"^[+-]?\d+(?:[.,]0+)?$")
# "1.234" or "12 500": thousands grouped the Vietnamese way (or with commas or spaces).
_GROUPED_TEXT = re.compile(r"^\d{1,3}(?:([., ])\d{3})(?:\1\d{3})*$")
_DECIMAL_TEXT = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")

# Longest text a cell may hold: names are short, other text (notes, initiative titles) may run
# to a paragraph, and choices, dates, numbers and codes typed as text are short. Longer values
# are cut and reported, so no report repeats a page of text (Excel allows 32,767 characters).
NAME_MAX_LENGTH = 100
TEXT_MAX_LENGTH = 1000
CODE_MAX_LENGTH = 100


@dataclass(frozen=True)
class Context:
    """What normalisation needs besides the cell: vocabularies and the registry's unit codes."""

    vocabs: dict[str, Vocabulary]
    unit_codes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Fix:
    """A correction made to one cell: the finding code and what the value became."""

    code: str
    value: str
    expected: str


def format_date(value: dt.date) -> str:
    """05/09/1985."""
    return value.strftime("%d/%m/%Y")


def _as_text(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return format_date(value.date())
    if isinstance(value, dt.date):
        return format_date(value)
    if isinstance(value, bool):
        return "Có" if value else "Không"
    return str(value)


def normalized_text(value: Any) -> tuple[str | None, Fix | None]:
    """Clean NFC text; converts legacy TCVN3/VNI glyphs and decomposed Unicode, and removes
    invisible characters (controls, zero-width spaces, direction marks, BOM), saying so."""
    if value is None:
        return None, None
    if type(value) is str:  # positions, titles, places: the same texts in every file
        return _normalized_str(value)
    return _normalized_text(value)


def _normalized_text(value: Any) -> tuple[str | None, Fix | None]:
    raw = _as_text(value)
    text = clean(raw)
    if not text:
        return None, None
    converted, encoding = fix_legacy(text)
    if encoding:
        converted = clean(converted)
        return converted, Fix("legacy-encoding", raw, converted)
    if isinstance(value, str) and not unicodedata.is_normalized("NFC", raw):
        return text, Fix("unicode-nfd", raw, text)
    if isinstance(value, str) and has_control(raw):
        return text, Fix("hidden-characters", text, _hidden_characters(raw))
    return text, None


_normalized_str = functools.lru_cache(maxsize=1 << 14)(_normalized_text)


def _hidden_characters(raw: str) -> str:
    """"U+202E, U+200B": the invisible characters a text held, each once, in order."""
    found = dict.fromkeys(ch for ch in raw if has_control(ch))
    return ", ".join(f"U+{ord(ch):04X}" for ch in found)


def normalized_choice(value: Any, vocab: Vocabulary) -> tuple[Any, Fix | None]:
    """The vocabulary code of a label or synonym; a match made without diacritics is flagged."""
    text, fix = normalized_text(value)
    if text is None:
        return None, None
    code = vocab.exact.get(loose(text))
    if code is not None:
        if fix is not None and fix.code != "hidden-characters":
            fix = Fix(fix.code, fix.value, vocab.label_of(code))
        return code, fix
    code = vocab.folded.get(fold(text))
    if code is not None:
        return code, fix or Fix("choice-normalized", text, vocab.label_of(code))
    return text, fix


def _date_from_text(text: str) -> dt.date | None:
    match = _TEXT_DATE.match(text)
    try:
        if match:
            day, month, year = (int(g) for g in match.groups())
            return dt.date(year, month, day)
        match = _ISO_DATE.match(text)
        if match:
            year, month, day = (int(g) for g in match.groups())
            return dt.date(year, month, day)
    except ValueError:
        return None
    return None


def normalized_date(value: Any) -> tuple[Any, Fix | None]:
    """A date from a date cell, an Excel serial number or dd/mm/yyyy text; a date outside the
    range the forms allow (before 1940, after 2030) is reported."""
    day, fix = _date(value)
    if isinstance(day, dt.date) and not _DATE_RANGE[0] <= day <= _DATE_RANGE[1]:
        low, high = (format_date(d) for d in _DATE_RANGE)
        # Quote what was typed: a number is shown with the day Excel would make of it.
        typed = (f"số {fix.value} (Excel hiểu là ngày {format_date(day)})"
                 if fix is not None and fix.code == "date-as-serial" else format_date(day))
        return day, Fix("out-of-range", typed, f"ngày từ {low} đến {high}")
    return day, fix


def _date(value: Any) -> tuple[Any, Fix | None]:
    if value is None:
        return None, None
    if isinstance(value, dt.datetime):
        return value.date(), None
    if isinstance(value, dt.date):
        return value, None
    epoch = _EXCEL_EPOCH
    if isinstance(value, Serial1904):
        value, epoch = value.number, _EPOCH_1904
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if _YEARS[0] <= value <= _YEARS[1] and float(value).is_integer():
            # Only a year typed (1985): as a serial it would be a day of 1905 nobody typed;
            # left as typed, for validation to ask for the full date.
            return str(int(value)), None
        if _SERIAL_RANGE[0] <= value <= _SERIAL_RANGE[1]:
            day = epoch + dt.timedelta(days=int(value))
            return day, Fix("date-as-serial", _as_text(value), format_date(day))
        return _as_text(value), None
    text, _ = normalized_text(value)
    if text is None:
        return None, None
    parsed = _date_from_text(text)
    if parsed is None:
        return text, None
    return parsed, Fix("date-as-text", text, format_date(parsed))


def normalized_integer(value: Any) -> tuple[Any, Fix | None]:
    """An int from a number cell or digits stored as text."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        return _as_text(value), None
    if isinstance(value, int):
        return value, None
    if isinstance(value, float):
        return (int(value), None) if value.is_integer() else (value, None)
    text, _ = normalized_text(value)
    if text is None:
        return None, None
    if _GROUPED_TEXT.match(text):
        number = int(re.sub(r"[., ]", "", text))
        return number, Fix("number-as-text", text, str(number))
    if _INTEGER_TEXT.match(text.replace(" ", "")):
        return int(float(text.replace(" ", "").replace(",", "."))), None
    return text, None


def normalized_number(value: Any) -> tuple[Any, Fix | None]:
    """A number from a number cell or text with a decimal comma or point ("85,5")."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        return _as_text(value), None
    if isinstance(value, (int, float)):
        return value, None
    text, _ = normalized_text(value)
    if text is None:
        return None, None
    compact = text.replace(" ", "").rstrip("%")
    if _DECIMAL_TEXT.match(compact):
        number = float(compact.replace(",", "."))
        return (int(number) if number.is_integer() else number), None
    return text, None


def normalized_unit_code(value: Any, unit_codes: frozenset[str]) -> tuple[Any, Fix | None]:
    """A unit code as text; a code typed as a number that lost its leading zeros is restored."""
    if value is None:
        return None, None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or abs(value) >= 1e15 or value != int(value):
            return _as_text(value), None  # no code: validation reports it as found
        digits = str(int(value))
        padded = [c for c in unit_codes if c.isdigit() and c != digits and c.lstrip("0") == digits]
        if len(padded) == 1:
            return padded[0], Fix("code-lost-zero", digits, padded[0])
        return digits, None
    text, fix = normalized_text(value)
    return text, fix


def normalized_value(value: Any, column: Column, context: Context) -> tuple[Any, Fix | None]:
    """One cell's value, normalised by its column type.

    An Excel error ("#REF!", also as text) or a formula with no cached value becomes an empty
    cell, reported; text longer than the column allows is cut, reported.
    """
    return _normalized(value, column, context, max_length(column))


def _normalized(value: Any, column: Column, context: Context,
                limit: int) -> tuple[Any, Fix | None]:
    """normalized_value, the column's longest text (max_length) given."""
    if isinstance(value, CellProblem):
        return None, Fix(value.code, echo(value.text), _PROBLEM_EXPECTED[value.code])
    # Every Excel error starts with "#": a text without one is not an error.
    if isinstance(value, str) and "#" in value and clean(value).upper() in EXCEL_ERRORS:
        return None, Fix("error-cell", clean(value), _PROBLEM_EXPECTED["error-cell"])
    if isinstance(value, str) and len(value) > limit and len(text := clean(value)) > limit:
        return f"{text[:limit]}…", Fix("value-too-long", echo(text),
                                       f"tối đa {_thousands(limit)} ký tự, ô có "
                                       f"{_thousands(len(text))} ký tự")
    return _typed_value(value, column, context)


def _text_cell(value: str, column: Column, context: Context,
               limit: int) -> tuple[str | None, Fix | None]:
    """_normalized of a text in a text column: straight to the texts already normalised when
    it can be neither an Excel error nor too long."""
    if "#" in value or len(value) > limit:
        return _normalized(value, column, context, limit)
    return _normalized_str(value)


_PROBLEM_EXPECTED = {
    "error-cell": "một giá trị, không phải lỗi công thức",
    "formula-no-value": "giá trị đã được Excel tính sẵn",
}


def max_length(column: Column) -> int:
    """The longest text a column takes (a `max_length` in the form definition wins)."""
    declared = getattr(column, "max_length", None)
    if declared:
        return int(declared)
    if column.type == "email":
        return 254  # the longest address mail systems accept
    if column.type != "text":
        return CODE_MAX_LENGTH
    return NAME_MAX_LENGTH if column.id.endswith("name") else TEXT_MAX_LENGTH


def _thousands(number: int) -> str:
    """"32.767": thousands grouped the Vietnamese way."""
    return f"{number:,}".replace(",", ".")


def _typed_value(value: Any, column: Column, context: Context) -> tuple[Any, Fix | None]:
    if column.type == "choice":
        return normalized_choice(value, context.vocabs[column.choices])
    if column.type == "date":
        return normalized_date(value)
    if column.type == "integer":
        return normalized_integer(value)
    if column.type == "number":
        return normalized_number(value)
    if column.type == "unit_code":
        return normalized_unit_code(value, context.unit_codes)
    return normalized_text(value)


def fix_finding(fix: Fix, *, file: str, sheet: str, cell: str, column: str,
                unit: str | None) -> Finding:
    """The warning that reports a correction."""
    return Finding.make(fix.code, file, sheet=sheet, cell=cell, column=column, value=fix.value,
                        expected=fix.expected, unit=unit)


def normalized_parts(
    cells: TableCells, sheet: Sheet, letters: dict[str, str], context: Context, *,
    file: str, sheet_name: str, unit: str | None,
) -> tuple[FrameParts, list[Finding]]:
    """Every cell of a table normalised by its column, with one warning per corrected cell:
    the table as arrays (one column per column id, each row's Excel row; what a reader sends,
    see pipeline.ingest.frames).

    Rows and columns the file hides are counted like the others, with one warning each for the
    sheet (the school may have forgotten them: what it sees is not all it sent).
    """
    findings = _hidden_findings(cells, sheet, letters, file=file, sheet_name=sheet_name,
                                unit=unit)
    rows = cells.rows
    columns = []
    for column_id, raw in zip(cells.ids, cells.columns, strict=True):
        column = sheet.column(column_id)
        values, fixes = _normalized_column(raw, column, context)
        columns.append(values)
        findings += [fix_finding(fix, file=file, sheet=sheet_name,
                                 cell=f"{letters[column_id]}{rows[n]}", column=column.header,
                                 unit=unit) for n, fix in fixes]
    return FrameParts.of_columns(columns, cells.ids, rows), findings


def _normalized_column(values: list[Any], column: Column, context: Context,
                       ) -> tuple[list[Any], list[tuple[int, Fix]]]:
    """A column's values normalised, and each correction with the position of its cell.

    Choices and codes repeat down a column: each distinct value is normalised once."""
    limit = max_length(column)
    kinds = set(map(type, values))
    if kinds <= _AS_READ.get(column.type, frozenset()):
        return list(values), []  # numbers in a number column: nothing to normalise
    if column.type == "date" and kinds <= _DATE_CELLS:
        days = [v.date() if type(v) is dt.datetime else v for v in values]
        low, high = _DATE_RANGE
        if all(d is None or low <= d <= high for d in days):
            return days, []  # date cells, every one in range (else as below: reported)
    if kinds <= _DISTINCT_KINDS and not {int, float} <= kinds:
        # No two values of different kinds are equal here (True == 1, 1 == 1.0 would be):
        # the values themselves tell the distinct ones.
        one = _text_cell if column.type == "text" and kinds <= _TEXT_CELLS else _normalized
        found = {v: one(v, column, context, limit) if v is not None else (None, None)
                 for v in dict.fromkeys(values)}
        normal = {v: result[0] for v, result in found.items()}
        fixed = {v: result[1] for v, result in found.items() if result[1] is not None}
        return (list(map(normal.__getitem__, values)),
                [(n, fixed[v]) for n, v in enumerate(values) if v in fixed] if fixed else [])
    seen: dict[tuple[type, Any], tuple[Any, Fix | None]] = {}
    out: list[Any] = []
    fixes: list[tuple[int, Fix]] = []
    for n, v in enumerate(values):
        key: tuple[type, Any] | None = (type(v), v)
        try:
            result = seen.get(key)
        except TypeError:  # an unhashable value
            key, result = None, None
        if result is None:
            result = _normalized(v, column, context, limit)
            if key is not None:
                seen[key] = result
        out.append(result[0])
        if result[1] is not None:
            fixes.append((n, result[1]))
    return out, fixes


# The kinds of value a column of each type keeps as read (normalized_value leaves them as they
# are, without a correction), and the date cells a date column takes the day of.
_AS_READ = {"integer": frozenset({type(None), int}),
            "number": frozenset({type(None), int, float})}
_DATE_CELLS = frozenset({type(None), dt.date, dt.datetime})
_TEXT_CELLS = frozenset({type(None), str})

# The kinds of value a cell holds as read; no value of one equals a value of another, but for
# int and float.
_DISTINCT_KINDS = frozenset({type(None), str, int, float, dt.date, dt.datetime, dt.time,
                             dt.timedelta, CellProblem, Serial1904})


def _hidden_findings(cells: TableCells, sheet: Sheet, letters: dict[str, str], *, file: str,
                     sheet_name: str, unit: str | None) -> list[Finding]:
    """Warnings for the table's hidden rows and columns."""
    findings = []
    rows = cells.hidden_rows
    if rows:
        filtered = " (ẩn bởi bộ lọc đang bật)" if cells.filtered else ""
        findings.append(Finding.make("hidden-rows", file, sheet=sheet_name, cell=str(rows[0]),
                                     value=f"{_row_ranges(rows)}{filtered}", unit=unit))
    columns = [c for c in cells.hidden_columns if c in letters]
    if columns:
        value = ", ".join(f"{letters[c]} ({sheet.column(c).header})" for c in columns)
        findings.append(Finding.make("hidden-columns", file, sheet=sheet_name,
                                     cell=letters[columns[0]], value=value, unit=unit))
    return findings


def _row_ranges(rows: list[int], most: int = 20) -> str:
    """"7, 9–11": row numbers with runs joined; after `most` runs, "… (N dòng)"."""
    runs: list[list[int]] = []
    for row in sorted(rows):
        if runs and row == runs[-1][-1] + 1:
            runs[-1].append(row)
        else:
            runs.append([row])
    text = ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}–{r[-1]}" for r in runs[:most])
    return f"{text}, … ({len(rows)} dòng)" if len(runs) > most else text


def derived_frame(frame: pd.DataFrame, derive: Iterable[Derive],
                  vocabs: dict[str, Vocabulary]) -> pd.DataFrame:
    """Columns an older layout lacks, derived as its form definition says."""
    out = frame.copy()
    for d in derive:
        source = out[d.source] if d.source in out else pd.Series(None, index=out.index)
        values = source
        if d.split:
            values = values.map(lambda v, sep=d.split: clean(str(v).split(sep)[0])
                                if isinstance(v, str) else v)
        if d.choices:
            vocab = vocabs[d.choices]
            values = values.map(lambda v, vocab=vocab: normalized_choice(v, vocab)[0])
        if d.via:
            vocab = vocabs[d.via]
            codes = set(vocab.codes)
            values = values.map(lambda v, vocab=vocab, codes=codes, attr=d.attribute:
                                vocab.by_code(v).attrs.get(attr) if v in codes else None)
        out[d.into] = values.astype(object)
    return out
