"""Pandera schemas built from the form definitions, and their failures turned into findings."""

from __future__ import annotations

import datetime as dt
import functools
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from pipeline.findings import Finding
from pipeline.forms.definitions import Check, Column, Sheet, Vocabulary
from pipeline.ingest.frames import FrameParts, stacked
from pipeline.ingest.normalize import format_date


def _checks_without_synthesis() -> None:
    """Load Pandera's checks for pandas now, without its data synthesis: Pandera imports
    hypothesis for its strategies when it is installed (a development dependency of tdkt),
    which tdkt never uses, and that import cost a run's start ~70 ms before the readers could
    start. Pandera works without hypothesis (an optional extra of it); where hypothesis is
    already loaded (the tests), Pandera takes it as before."""
    blocked = "hypothesis" not in sys.modules
    if blocked:
        sys.modules["hypothesis"] = None  # type: ignore[assignment]  # its import fails here
    try:
        import pandera.backends.pandas.builtin_checks  # noqa: F401
    finally:
        if blocked:
            del sys.modules["hypothesis"]


_checks_without_synthesis()

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Pandera's own check names → our finding codes (custom checks carry our code as `error`).
_BUILTIN_CODES = {"not_nullable": "missing-value"}


# Checks by column type


def _of_kinds(series: pd.Series, kinds: frozenset[type],
              valid: Callable[[Any], bool]) -> pd.Series:
    """`valid` of each value: all True at once when every value is of one of `kinds` (a
    province's columns are), each value looked at only when some value is not."""
    if set(map(type, series.tolist())) <= kinds:
        return pd.Series(True, index=series.index)
    return series.map(valid)


_NONE = type(None)


def _is_date(series: pd.Series) -> pd.Series:
    return _of_kinds(series, frozenset({_NONE, dt.date, dt.datetime}),
                     lambda v: v is None or isinstance(v, dt.date))


def _is_integer(series: pd.Series) -> pd.Series:
    return _of_kinds(series, frozenset({_NONE, int}),
                     lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)))


def _is_number(series: pd.Series) -> pd.Series:
    return _of_kinds(series, frozenset({_NONE, int, float}), lambda v: v is None or _numeric(v))


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _in_range(low: float | None, high: float | None) -> Callable[[pd.Series], pd.Series]:
    def check(series: pd.Series) -> pd.Series:
        return series.map(lambda v: not _numeric(v) or (
            (low is None or v >= low) and (high is None or v <= high)))
    return check


def _is_email(series: pd.Series) -> pd.Series:
    return series.map(lambda v: v is None or bool(_EMAIL.match(str(v))))


def _column_checks(column: Column, vocabs: dict[str, Vocabulary]) -> list[pa.Check]:
    if column.type == "choice":
        return [pa.Check.isin(vocabs[column.choices].codes, error="not-in-list")]
    if column.type == "date":
        return [pa.Check(_is_date, error="bad-date")]
    if column.type in ("integer", "number"):
        is_valid = _is_integer if column.type == "integer" else _is_number
        checks = [pa.Check(is_valid, error="bad-number")]
        if column.min is not None or column.max is not None:
            checks.append(pa.Check(_in_range(column.min, column.max), error="out-of-range"))
        return checks
    if column.type == "email":
        return [pa.Check(_is_email, error="bad-email")]
    return []


# Cross-column checks: registered by name, parameters from the form definition


def _required_if(check: Check) -> Callable[[pd.DataFrame], pd.Series]:
    when_column, when_in = check.params["when_column"], set(check.params["when_in"])

    def run(frame: pd.DataFrame) -> pd.Series:
        if check.column not in frame or when_column not in frame:
            return pd.Series(True, index=frame.index)
        return ~(frame[when_column].isin(when_in) & frame[check.column].isna())
    return run


def _unique(check: Check) -> Callable[[pd.DataFrame], pd.Series]:
    columns = list(check.params["columns"])

    def run(frame: pd.DataFrame) -> pd.Series:
        if not set(columns) <= set(frame.columns):
            return pd.Series(True, index=frame.index)
        # Over many files at once (a part column is present) duplicates count per file.
        keys = pd.DataFrame({c: [v.casefold() if isinstance(v, str) else v
                                 for v in frame[c].tolist()] for c in columns},
                            index=frame.index)
        if PART in frame:
            keys[PART] = frame[PART]
        complete = keys.notna().all(axis=1)
        return ~(keys.duplicated(keep="first") & complete)
    return run


def _unique_key(value: Any) -> Any:
    if isinstance(value, str):
        return value.casefold()
    return value


def _not_above(check: Check) -> Callable[[pd.DataFrame], pd.Series]:
    other = check.params["other"]

    def run(frame: pd.DataFrame) -> pd.Series:
        if check.column not in frame or other not in frame:
            return pd.Series(True, index=frame.index)
        both = frame[check.column].map(_numeric) & frame[other].map(_numeric)
        values = pd.to_numeric(frame[check.column].where(both), errors="coerce")
        limits = pd.to_numeric(frame[other].where(both), errors="coerce")
        return ~(both & (values > limits))
    return run


CROSS_CHECKS: dict[str, Callable[[Check], Callable[[pd.DataFrame], pd.Series]]] = {
    "required_if": _required_if,
    "unique": _unique,
    "not_above": _not_above,
}


def build_schema(sheet: Sheet, vocabs: dict[str, Vocabulary]) -> pa.DataFrameSchema:
    """The Pandera schema of one form sheet, over its normalised frame (columns = column ids)."""
    columns = {
        c.id: pa.Column(object, nullable=not c.required, required=False,
                        checks=_column_checks(c, vocabs))
        for c in sheet.columns
    }
    # The error names the check's code and target column: two checks may share a code.
    # Each cross check passes a row it cannot judge (a value it needs is empty) by itself:
    # Pandera's own pass for rows with every cell empty (ignore_na) would take a look at every
    # cell of the stacked frame per check, for nothing.
    checks = [pa.Check(CROSS_CHECKS[c.check](c), error=_cross_key(c), ignore_na=False)
              for c in sheet.checks]
    return pa.DataFrameSchema(columns, checks=checks, coerce=False)


# Failures → findings


def _cross_key(check: Check) -> str:
    return f"{check.code}|{check.column}"


def _expected(column: Column, vocabs: dict[str, Vocabulary], code: str) -> str:
    if column.type == "choice":
        return ", ".join(vocabs[column.choices].labels)
    if column.type == "date":
        return "ngày đầy đủ dạng ngày/tháng/năm (dd/mm/yyyy), ví dụ 05/09/1985"
    if column.type in ("integer", "number"):
        if code == "out-of-range":
            low = "" if column.min is None else f"từ {column.min:g} "
            high = "" if column.max is None else f"đến {column.max:g}"
            return f"số {low}{high}".strip()
        return "một số nguyên" if column.type == "integer" else "một số"
    if column.type == "email":
        return "địa chỉ thư điện tử"
    return f"nội dung cột “{column.header}”"


def _display(value: Any, column: Column, vocabs: dict[str, Vocabulary]) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if column.type == "choice" and value in vocabs[column.choices].codes:
        return vocabs[column.choices].label_of(value)
    if isinstance(value, dt.date):
        return format_date(value)
    if isinstance(value, float):
        return f"{value:g}".replace(".", ",")
    return str(value)


def _cross_finding(check: Check, row: int, frame: pd.DataFrame, sheet: Sheet,
                   vocabs: dict[str, Vocabulary], where: dict[str, Any]) -> Finding:
    letters = where["letters"]
    target = sheet.column(check.column) if check.column in letters else None
    cell = f"{letters.get(check.column, '')}{row}"
    if check.check == "unique":
        columns = list(check.params["columns"])
        key = frame.loc[row, columns]
        same = frame[columns].map(_unique_key).eq(key.map(_unique_key)).all(axis=1)
        first = int(same[same].index[0])
        value = " – ".join(_display(frame.loc[row, c], sheet.column(c), vocabs) for c in columns)
        expected = f"dòng {first}"
    elif check.check == "not_above":
        other = sheet.column(check.params["other"])
        value = _display(frame.loc[row, check.column], sheet.column(check.column), vocabs)
        expected = f"{other.header}: {_display(frame.loc[row, other.id], other, vocabs)}"
    else:
        when = sheet.column(check.params["when_column"])
        value = _display(frame.loc[row, when.id], when, vocabs)
        expected = check.params.get("expected", "")
    return Finding.make(check.code, where["file"], sheet=where["sheet"], cell=cell,
                        column=target.header if target else None, value=value,
                        expected=expected, unit=where["unit"])


@dataclass
class Part:
    """One file's normalised sheet to validate and where it came from."""

    table: FrameParts
    letters: Mapping[str, str]  # column id → column letter in this file
    file: str
    sheet_name: str
    unit: str | None

    @functools.cached_property
    def frame(self) -> pd.DataFrame:
        """The sheet as a frame (index = Excel row): built for a finding that looks at it."""
        return self.table.frame()


# The column telling the files apart when their frames are validated together.
PART = "_part"


def validation_findings(table: FrameParts, sheet: Sheet, vocabs: dict[str, Vocabulary], *,
                        letters: Mapping[str, str], file: str, sheet_name: str,
                        unit: str | None) -> list[Finding]:
    """Every problem in one normalised sheet, found in one lazy Pandera run."""
    part = Part(table, letters, file, sheet_name, unit)
    return batch_validation_findings([part], sheet, vocabs)[0]


def batch_validation_findings(parts: list[Part], sheet: Sheet,
                              vocabs: dict[str, Vocabulary]) -> list[list[Finding]]:
    """Every problem in many files' frames of one form sheet (all with the same columns),
    found in ONE lazy Pandera run over the frames stacked; returns the findings per part."""
    results: list[list[Finding]] = [[] for _ in parts]
    sizes = [len(p.table) for p in parts]
    if not sum(sizes):
        return results
    parts_at = np.repeat(np.arange(len(parts)), sizes).tolist()
    rows_at = np.concatenate([p.table.rows for p in parts]).tolist()
    stacked_frame = stacked([p.table for p in parts], keep_rows=False)
    if len(parts) > 1:
        stacked_frame[PART] = parts_at
    try:
        build_schema(sheet, vocabs).validate(stacked_frame, lazy=True)
        return results
    except SchemaErrors as errors:
        cases = errors.failure_cases
    checks = {_cross_key(c): c for c in sheet.checks}
    seen: set[tuple[int, str, int, str]] = set()
    for case in cases.itertuples(index=False):
        if case.index is None or pd.isna(case.index):
            continue
        position = int(case.index)
        i, row = parts_at[position], rows_at[position]
        part = parts[i]
        where = {"file": part.file, "sheet": part.sheet_name, "unit": part.unit,
                 "letters": part.letters}
        code = _BUILTIN_CODES.get(str(case.check), str(case.check))
        if code in checks:
            check = checks[code]
            key = (i, check.code, row, check.column)
            if key not in seen:
                seen.add(key)
                results[i].append(_cross_finding(check, row, part.frame, sheet, vocabs, where))
            continue
        column = sheet.column(str(case.column))
        key = (i, code, row, column.id)
        if key in seen:
            continue
        seen.add(key)
        results[i].append(Finding.make(
            code, part.file, sheet=part.sheet_name, cell=f"{part.letters[column.id]}{row}",
            column=column.header, value=_display(case.failure_case, column, vocabs),
            expected=_expected(column, vocabs, code), unit=part.unit))
    return results
