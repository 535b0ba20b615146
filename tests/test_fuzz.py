"""Property: whatever a school file has become, the batch ends in findings, never in a crash.

A valid school file is mutated at random (cell values of every type, renamed or deleted
sheets, deleted, duplicated, truncated or corrupted zip parts, flipped bytes) and consolidated
beside a good file. For every mutation: no exception; the mutated file is either counted or
has a finding with a Vietnamese message; the good unit is "Hợp lệ"; no input file changes.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import re
import shutil
import tempfile
import unicodedata
import warnings
import zipfile
from pathlib import Path

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import settings as tdkt_settings
from pipeline.config import load_config
from pipeline.engine import consolidation
from pipeline.forms.definitions import load_forms
from pipeline.ingest.normalize import Context, fix_finding, max_length, normalized_value
from pipeline.ingest.read import CellProblem, Serial1904
from pipeline.text import clean

from .conftest import OFFICE_FILES, SAMPLES

GOOD = "dang-ky_01001.xlsx"
FILE = "dang-ky_01006.xlsx"
UNIT = "01006"
FORM_SHEETS = ("Đơn vị", "Cá nhân")
# Characters XML 1.0 cannot hold: openpyxl refuses them, so they are written the way Excel
# escapes them in its parts ("_x0001_"), which readers turn back into the character.
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_VIETNAMESE = re.compile(r"[ăâđêôơưáàảãạấầẩẫậắằẳẵặéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ]",
                         re.IGNORECASE)


@functools.cache
def _base() -> bytes:
    """The good sample file, made over to unit 01006."""
    wb = openpyxl.load_workbook(SAMPLES / "hop-thu" / GOOD)
    wb[tdkt_settings.META_SHEET]["C1"] = UNIT
    wb["Đơn vị"]["C6"] = UNIT
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


@functools.cache
def _base_shared() -> bytes:
    """The same workbook written by xlsxwriter, as Excel writes: text in xl/sharedStrings.xml
    (openpyxl writes it inline in each sheet)."""
    import xlsxwriter

    source = openpyxl.load_workbook(io.BytesIO(_base()))
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False,
                                     "strings_to_urls": False, "strings_to_numbers": False})
    date = book.add_format({"num_format": "dd/mm/yyyy"})
    for ws in source.worksheets:
        sheet = book.add_worksheet(ws.title)
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, dt.date):
                    sheet.write_datetime(c.row - 1, c.column - 1, c.value, date)
                elif c.value is not None:
                    sheet.write(c.row - 1, c.column - 1, c.value)
        if ws.sheet_state != "visible":
            sheet.hide()
    book.close()
    return out.getvalue()


# Mutations

TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
FORMULA_LIKE = st.sampled_from(['=HYPERLINK("http://x.invalid","y")', "+cmd|' /C calc'!A0",
                                "@SUM(A1:A2)", "-2+3", "=1/0", "#REF!", "#N/A", "#DIV/0!",
                                "\u202eRLO", "\u200b", "\ufeffBOM", "a\x00b\x1fc\x7f", " 45 ",
                                "1.234", "01001", "05/09/1899", "31/02/2020", "2020-13-01"])
VALUES = st.one_of(
    st.none(), TEXT, FORMULA_LIKE,
    st.integers(min_value=1000, max_value=32_767).map(lambda n: "ư" * n),  # very long text
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=False, allow_infinity=False),
    st.dates(min_value=dt.date(1800, 1, 1), max_value=dt.date(9999, 12, 31)),
    st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(2100, 1, 1)),
    st.times(), st.booleans(),
)
CELL_EDIT = st.tuples(st.just("cell"), st.sampled_from(FORM_SHEETS),
                      st.integers(min_value=1, max_value=35), st.integers(min_value=1,
                                                                         max_value=12),
                      VALUES, st.sampled_from(["value", "text", "formula"]))
SHEET_EDIT = st.one_of(
    st.tuples(st.just("rename"), st.integers(min_value=0, max_value=9),
              st.one_of(TEXT, st.sampled_from(["Ca nhan", "Đơn vị", "Sheet1", "Danh mục"]))),
    st.tuples(st.just("delete"), st.integers(min_value=0, max_value=9)),
)
ZIP_EDIT = st.one_of(
    st.tuples(st.just("drop"), st.integers(min_value=0, max_value=99)),
    st.tuples(st.just("twice"), st.integers(min_value=0, max_value=99)),
    st.tuples(st.just("truncate"), st.integers(min_value=0, max_value=99),
              st.floats(min_value=0, max_value=1)),
    st.tuples(st.just("corrupt"), st.integers(min_value=0, max_value=99),
              st.floats(min_value=0, max_value=1), st.binary(min_size=1, max_size=16)),
    # a cached value no spreadsheet writes, but a reader parses: inf, NaN, 1e400, text
    st.tuples(st.just("value"), st.integers(min_value=0, max_value=999),
              st.sampled_from(["inf", "-inf", "NaN", "1e400", "-0", "", "abc", "1e-400"])),
)
FLIPS = st.lists(st.tuples(st.floats(min_value=0, max_value=1),
                           st.integers(min_value=1, max_value=255)), min_size=1, max_size=8)
MUTATION = st.one_of(
    st.tuples(st.just("cells"), st.lists(CELL_EDIT, min_size=1, max_size=12)),
    st.tuples(st.just("sheets"), st.lists(st.one_of(SHEET_EDIT, CELL_EDIT), min_size=1,
                                          max_size=4)),
    st.tuples(st.sampled_from(["zip", "zip-shared"]), st.lists(ZIP_EDIT, min_size=1, max_size=3)),
    st.tuples(st.sampled_from(["bytes", "bytes-shared"]), FLIPS),
)


def _escaped(value):
    if isinstance(value, str):
        return _ILLEGAL.sub(lambda m: f"_x{ord(m.group()):04X}_", value)
    return value


def _edited_book(edits: list[tuple]) -> bytes:
    wb = openpyxl.load_workbook(io.BytesIO(_base()))
    for edit in edits:
        try:
            if edit[0] == "cell":
                _, sheet, row, col, value, how = edit
                if sheet not in wb.sheetnames:
                    continue
                cell = wb[sheet].cell(row=row, column=col)
                if type(cell).__name__ == "MergedCell":
                    continue
                if how == "formula" and isinstance(value, str):
                    value = "=" + value.lstrip("=")
                cell.value = _escaped(value)
                if how == "text" and isinstance(value, str):
                    cell.data_type = "s"
            elif edit[0] == "rename":
                wb.worksheets[edit[1] % len(wb.worksheets)].title = edit[2]
            elif edit[0] == "delete" and len(wb.worksheets) > 1:
                del wb[wb.worksheets[edit[1] % len(wb.worksheets)].title]
        except (ValueError, TypeError):
            continue  # openpyxl refuses that edit: the file stays as it was
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _zip_edited(data: bytes, edits: list[tuple]) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        parts = [(info.filename, source.read(info)) for info in source.infolist()]
    for edit in edits:
        if not parts:
            break
        if edit[0] == "value":
            parts = _value_edited(parts, edit[1], edit[2])
            continue
        i = edit[1] % len(parts)
        name, content = parts[i]
        if edit[0] == "drop":
            del parts[i]
        elif edit[0] == "twice":
            parts.insert(i, (name, content[: len(content) // 2]))
        elif edit[0] == "truncate":
            parts[i] = (name, content[: int(len(content) * edit[2])])
        else:
            at = int(len(content) * edit[2])
            parts[i] = (name, content[:at] + edit[3] + content[at + len(edit[3]):])
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a duplicated part name
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
            for name, content in parts:
                target.writestr(name, content)
    return out.getvalue()


def _value_edited(parts: list[tuple[str, bytes]], index: int,
                  text: str) -> list[tuple[str, bytes]]:
    """One numeric cached value of a worksheet (`<v>` of a cell with no type) replaced."""
    sheets = [i for i, (name, _) in enumerate(parts) if name.startswith("xl/worksheets/")]
    if not sheets:
        return parts
    i = sheets[index % len(sheets)]
    name, content = parts[i]
    numbers = list(re.finditer(rb'<c r="[A-Z]+\d+"(?: s="\d+")?(?: t="n")?><v>[^<]*</v>', content))
    if numbers:
        match = numbers[index % len(numbers)]
        cell = re.sub(rb"<v>[^<]*</v>", b"<v>" + text.encode() + b"</v>", match.group())
        content = content[: match.start()] + cell + content[match.end():]
    return [*parts[:i], (name, content), *parts[i + 1:]]


def _flipped(data: bytes, flips: list[tuple[float, int]]) -> bytes:
    raw = bytearray(data)
    for where, mask in flips:
        raw[min(int(len(raw) * where), len(raw) - 1)] ^= mask
    return bytes(raw)


def _mutated(mutation: tuple) -> bytes:
    kind, edits = mutation
    if kind in ("cells", "sheets"):
        return _edited_book(edits)
    base = _base_shared() if kind.endswith("-shared") else _base()
    if kind.startswith("zip"):
        return _zip_edited(base, edits)
    return _flipped(base, edits)


# The property


def _state(inbox: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in inbox.iterdir()}


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(MUTATION)
def test_fuzz_any_mutation_ends_counted_or_in_findings(mutation):
    data = _mutated(mutation)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        inbox = root / "hop-thu"
        inbox.mkdir()
        for name in OFFICE_FILES:
            shutil.copy(SAMPLES / name, root / name)
        shutil.copy(SAMPLES / "hop-thu" / GOOD, inbox / GOOD)
        (inbox / FILE).write_bytes(data)
        before = _state(inbox)
        result = consolidation(inbox, load_config(root / "tdkt.toml"))
        assert _state(inbox) == before
    sub = next(s for s in result.submissions if s.file == FILE)
    if sub.unit_code != "01001":  # a mutation may make the file another one of unit 01001
        assert result.units.loc["01001", "status"] == "valid"
    findings = [f for f in sub.findings if f.message]
    assert sub.counted or findings
    for finding in sub.findings:
        assert finding.message and unicodedata.is_normalized("NFC", finding.message)
        assert _VIETNAMESE.search(finding.message)
        assert len(finding.message) < 2_000


# Every cell value, every column type

FORMS = load_forms()
COLUMNS = [c for s in FORMS.current("dang-ky").sheets for c in (*s.fields, *s.columns)]
CONTEXT = Context(vocabs=FORMS.vocabs, unit_codes=frozenset({"01001", "01006", "0123"}))
CELL = st.one_of(VALUES, st.floats(), st.builds(CellProblem, st.sampled_from(["error-cell",
                                                                 "formula-no-value"]), TEXT),
                 st.builds(Serial1904, st.one_of(st.integers(-(10**6), 10**6),
                                                 st.floats(allow_nan=True))))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.sampled_from(COLUMNS), CELL)
def test_fuzz_any_cell_value_normalises_or_is_reported(column, value):
    clean_value, fix = normalized_value(value, column, CONTEXT)
    if fix is not None:
        finding = fix_finding(fix, file="tệp.xlsx", sheet="Cá nhân", cell="B7",
                              column=column.header, unit=None)
        assert finding.message and len(finding.message) < 2_000
    if isinstance(clean_value, str):
        assert len(clean_value) <= max_length(column) + 1
        assert clean_value == clean(clean_value)
