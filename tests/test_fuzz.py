"""Property: whatever a school file has become, the batch ends in findings, never in a crash.

A valid school file is mutated at random (cell values of every type, renamed or deleted
sheets, deleted, duplicated, truncated or corrupted zip parts, flipped bytes, cell references
and row numbers padded, lengthened, relettered or dropped) and consolidated beside a good file.
For every mutation: no exception; the mutated file is either counted or has a finding with a
Vietnamese message; the good unit is "Hợp lệ"; no input file changes.

Cell references, row and dimension attributes (.xlsx), repeat counts (.ods) and the rows and
columns of cell and DIMENSIONS records (.xls) are also mutated on their own and read: every
sheet read stays within the row and column limits, and the size checks catch every such file
before a reader has to (no reader process dies).

`make test` runs a few hundred examples, derandomized; `make fuzz` (TDKT_FUZZ_SCALE=10) runs
ten times as many, at random.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import os
import re
import shutil
import tempfile
import unicodedata
import warnings
import zipfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import settings as tdkt_settings
from pipeline.config import load_config
from pipeline.engine import consolidation
from pipeline.forms.definitions import load_forms
from pipeline.ingest import biff, sniff
from pipeline.ingest.normalize import Context, fix_finding, max_length, normalized_value
from pipeline.ingest.read import CellProblem, Serial1904, read_workbook
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
# A cell reference, a row number or a sheet's declared dimension, changed: leading zeros, any
# number of digits, other letters (either case), gone, or any short text.
PAD = st.tuples(st.just("pad"), st.integers(min_value=1, max_value=40))
DIGITS = st.tuples(st.just("digits"), st.one_of(st.integers(min_value=0, max_value=10**7),
                                                st.integers(min_value=0, max_value=10**22)))
REFERENCE_CHANGE = st.one_of(
    PAD, PAD, DIGITS, DIGITS,  # the hostile forms, twice as often
    st.tuples(st.just("letters"), st.text(alphabet="ABCKXYZabxz", min_size=1, max_size=10)),
    st.tuples(st.just("drop")),
    st.tuples(st.just("text"), st.text(alphabet="AZaz0159$ :-+.", max_size=12)),
)
REFERENCE_EDIT = st.tuples(st.sampled_from(["c", "row", "dimension"]),
                           st.integers(min_value=0, max_value=9),
                           st.integers(min_value=0, max_value=10_000), REFERENCE_CHANGE)
# An OpenDocument repeat count put on a row or a cell: small, large or huge, zero-padded.
REPEAT_EDIT = st.tuples(st.sampled_from(["table-row", "table-cell"]),
                        st.integers(min_value=0, max_value=10_000),
                        st.one_of(st.integers(min_value=0, max_value=30),
                                  st.integers(min_value=0, max_value=10**7),
                                  st.integers(min_value=0, max_value=10**25)),
                        st.integers(min_value=0, max_value=30))
REFERENCES = st.tuples(st.sampled_from(["refs", "refs-shared"]),
                       st.lists(REFERENCE_EDIT, min_size=1, max_size=4))
# A legacy .xls cell record moved (row or column), or a sheet's DIMENSIONS record changed.
RECORD_EDIT = st.tuples(st.sampled_from(["row", "col", "dimensions"]),
                        st.integers(min_value=0, max_value=10_000),
                        st.one_of(st.integers(min_value=0, max_value=300),
                                  st.integers(min_value=0, max_value=0xFFFF)),
                        st.integers(min_value=0, max_value=0xFFFFFFFF))
MUTATION = st.one_of(
    st.tuples(st.just("cells"), st.lists(CELL_EDIT, min_size=1, max_size=12)),
    st.tuples(st.just("sheets"), st.lists(st.one_of(SHEET_EDIT, CELL_EDIT), min_size=1,
                                          max_size=4)),
    st.tuples(st.sampled_from(["zip", "zip-shared"]), st.lists(ZIP_EDIT, min_size=1, max_size=3)),
    st.tuples(st.sampled_from(["bytes", "bytes-shared"]), FLIPS),
    REFERENCES,
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


_REFERENCE = {"c": re.compile(rb'<c r="([A-Za-z]*)(\d*)"'),
              "row": re.compile(rb'<row r="()(\d*)"'),
              "dimension": re.compile(rb'<dimension ref="(?:[^":]*:)?([A-Za-z]*)(\d*)"')}


def _changed_reference(match: re.Match, change: tuple) -> bytes:
    """The attribute `match` found, changed."""
    letters, digits = match.group(1), match.group(2)
    kind = change[0]
    if kind == "drop":
        return match.group()[:match.group().index(b" ")]
    value = (letters + b"0" * change[1] + digits if kind == "pad"
             else letters + str(change[1]).encode() if kind == "digits"
             else change[1].encode() + digits if kind == "letters"
             else change[1].encode())
    return match.group()[:match.start(1) - match.start()] + value + b'"'


def _references_edited(data: bytes, edits: list[tuple]) -> bytes:
    """Cell references, row numbers and declared dimensions of the worksheets, changed."""
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        parts = [(info.filename, source.read(info)) for info in source.infolist()]
    sheets = [i for i, (name, _) in enumerate(parts) if name.startswith("xl/worksheets/")]
    for target, sheet, index, change in edits:
        name, xml = parts[sheets[sheet % len(sheets)]]
        found = list(_REFERENCE[target].finditer(xml))
        if found:
            match = found[index % len(found)]
            xml = xml[:match.start()] + _changed_reference(match, change) + xml[match.end():]
            parts[sheets[sheet % len(sheets)]] = (name, xml)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target_zip:
        for name, content in parts:
            target_zip.writestr(name, content)
    return out.getvalue()


def _repeats_edited(edits: list[tuple]) -> bytes:
    """The sample .ods with repeat counts put on some of its rows and cells."""
    with zipfile.ZipFile(SAMPLES / "hop-thu" / "03005.ods") as source:
        parts = [(info.filename, source.read(info)) for info in source.infolist()]
    for tag, index, count, zeros in edits:
        i = next(i for i, (name, _) in enumerate(parts) if name == "content.xml")
        xml = parts[i][1]
        starts = [m.end() for m in re.finditer(rb"<table:" + tag.encode() + rb"(?=[ />])", xml)]
        if not starts:
            continue
        at = starts[index % len(starts)]
        what = b"rows" if tag == "table-row" else b"columns"
        attribute = b" table:number-%s-repeated=\"%s%d\"" % (what, b"0" * zeros, count)
        parts[i] = ("content.xml", xml[:at] + attribute + xml[at:])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name, content in parts:  # the mimetype first, stored, as OpenDocument wants
            target.writestr(name, content, zipfile.ZIP_STORED if name == "mimetype"
                            else zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _records_edited(edits: list[tuple]) -> bytes:
    """The sample .xls with some cell records moved and DIMENSIONS records changed, patched in
    place (the workbook stream keeps its size, so its sectors stay where they are)."""
    data = bytearray((SAMPLES / "hop-thu" / "03004.xls").read_bytes())
    compound = sniff._compound(bytes(data))
    entry = next(e for e in compound.entries if sniff._entry_name(e) == "Workbook")
    chain = list(compound.chained(int.from_bytes(entry[116:120], "little")))
    stream = sniff.cfb_stream(bytes(data), ("Workbook",))
    records = list(biff._records(stream, 0))
    cells = [(at, length) for kind, at, length in records
             if kind in biff._CELLS or kind == biff._MULRK]
    dimensions = [at for kind, at, length in records if kind == biff._DIMENSIONS and length == 14]

    def put(offset: int, value: int, size: int) -> None:
        for i, byte in enumerate(value.to_bytes(size, "little")):
            where = offset + i
            data[(chain[where // compound.size] + 1) * compound.size
                 + where % compound.size] = byte

    for field, index, small, large in edits:
        if field == "dimensions" and dimensions:
            at = dimensions[index % len(dimensions)]
            put(at + 4, large, 4)
            put(at + 10, small, 2)
        elif cells:
            at, _ = cells[index % len(cells)]
            put(at + (0 if field == "row" else 2), small, 2)
    return bytes(data)


def _mutated(mutation: tuple) -> bytes:
    kind, edits = mutation
    if kind in ("cells", "sheets"):
        return _edited_book(edits)
    if kind == "repeats":
        return _repeats_edited(edits)
    if kind == "records":
        return _records_edited(edits)
    base = _base_shared() if kind.endswith("-shared") else _base()
    if kind.startswith("zip"):
        return _zip_edited(base, edits)
    if kind.startswith("refs"):
        return _references_edited(base, edits)
    return _flipped(base, edits)


# How many examples: a few hundred in `make test`; `make fuzz` multiplies them.
SCALE = int(os.environ.get("TDKT_FUZZ_SCALE", "1"))


# The property


def _state(inbox: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in inbox.iterdir()}


@pytest.mark.slow  # `make test-slow` (CI) and `make fuzz`
@settings(max_examples=40 * SCALE, deadline=None, derandomize=SCALE == 1,
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


# References, repeat counts, BIFF records: every sheet read stays within the limits

READ_WITHIN_LIMITS = st.one_of(
    REFERENCES, st.tuples(st.just("repeats"), st.lists(REPEAT_EDIT, min_size=1, max_size=4)),
    st.tuples(st.just("records"), st.lists(RECORD_EDIT, min_size=1, max_size=4)))
_SUFFIX = {"repeats": ".ods", "records": ".xls"}
# What a reader process that died, or gave up, is reported as: the size checks come first.
_READER_DIED = ("trình đọc bảng tính dừng đột ngột", "cần quá nhiều bộ nhớ", "vẫn chưa xong")


@settings(max_examples=200 * SCALE, deadline=None, derandomize=SCALE == 1,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(READ_WITHIN_LIMITS)
def test_fuzz_any_reference_repeat_or_record_is_read_within_the_limits(mutation):
    data = _mutated(mutation)
    suffix = _SUFFIX.get(mutation[0], ".xlsx")
    limits = tdkt_settings.default_limits()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"tep{suffix}"
        path.write_bytes(data)
        raw, found = read_workbook(path, path.name)
    assert raw is not None or found
    for finding in found:
        assert finding.message and unicodedata.is_normalized("NFC", finding.message)
        assert _VIETNAMESE.search(finding.message)
        assert not any(words in finding.message for words in _READER_DIED), finding.message
    for sheet in raw.sheets if raw is not None else ():
        assert len(sheet.grid) <= limits.max_rows
        assert all(len(row) <= limits.max_columns for row in sheet.grid)


# Every cell value, every column type

FORMS = load_forms()
COLUMNS = [c for s in FORMS.current("dang-ky").sheets for c in (*s.fields, *s.columns)]
CONTEXT = Context(vocabs=FORMS.vocabs, unit_codes=frozenset({"01001", "01006", "0123"}))
CELL = st.one_of(VALUES, st.floats(), st.builds(CellProblem, st.sampled_from(["error-cell",
                                                                 "formula-no-value"]), TEXT),
                 st.builds(Serial1904, st.one_of(st.integers(-(10**6), 10**6),
                                                 st.floats(allow_nan=True))))


@settings(max_examples=300 * SCALE, deadline=None, derandomize=SCALE == 1)
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


# The worksheet scan: as an array (long pieces) it answers as the byte searches do

_LETTERS = st.text("ABCDEFGHXYZabcxyz#_-", max_size=4)
_PLAIN_REF = st.builds(lambda letters, row: f'r="{letters}{row}"',
                       st.text("ABCKXZ", min_size=1, max_size=3),
                       st.one_of(*(st.integers(10**n, 10**(n + 1) - 1) for n in range(4))))
_REF = st.one_of(
    _PLAIN_REF, _PLAIN_REF, _PLAIN_REF,
    st.just(""),  # no reference: only a measure tag by tag places the cell
    st.builds(lambda q, d1, letters, d2, zeros, row, space: (
        f"r{space}={space}{q}{d1}{letters}{d2}{'0' * zeros}{row}{q}"),
        st.sampled_from(['"', "'"]), st.sampled_from(["", "$"]), _LETTERS,
        st.sampled_from(["", "$"]), st.integers(0, 3),
        st.one_of(st.integers(1, 120), st.integers(1, 10**12), st.just("")),
        st.sampled_from(["", "", " ", "\t"])))
_CELL_TAG = st.builds(
    lambda prefix, space, ref, attrs, body: f"<{prefix}c{space if ref else ''}{ref}{attrs}"
                                            f"{body.format(p=prefix)}",
    st.sampled_from(["", "", "", "", "x:"]), st.sampled_from([" ", " ", "\t", "\n"]), _REF,
    st.sampled_from(["", ' s="3"', ' t="s"', ' t="e"', " t='e'", ' t="inlineStr"']),
    st.sampled_from(["/>", "><{p}v>1</{p}v></{p}c>", "><{p}f>A1+1</{p}f><{p}v>2</{p}v></{p}c>",
                     "><{p}is><{p}t>hidden text</{p}t></{p}is></{p}c>", "></{p}c>",
                     "><{p}f/><{p}v>0</{p}v></{p}c>"]))
_OTHER_TAG = st.sampled_from([
    '<row r="3" spans="1:11">', "</row>", '<row r="4" hidden="1">', '<col min="1" hidden = "1"/>',
    '<autoFilter ref="A1:B2"/>', "<x:autoFilter/>", '<sheetProtection autoFilter="1"/>',
    "<cols>", "<c:chart/>", '<mc:Choice Requires="x14">', "<x:row>", "<fill/>",
    "<v>3</v>", "<!-- c r=A1 -->", '<c>r="B7"</c>', "<c r=C9/>", '<c r=A1"/>', '<c r=_B3"/>'])
_BODY = st.sampled_from(["/>", "><v>1</v></c>", "><f>A1+1</f><v>2</v></c>", "></c>",
                        "><is><t>hidden text</t></is></c>"])
_PLAIN_CELL = st.builds(lambda ref, attrs, body: f"<c {ref}{attrs}{body}", _PLAIN_REF,
                        st.sampled_from(["", ' s="3"', ' t="s"', ' t="e"']), _BODY)
_PIECE = st.one_of(st.lists(st.one_of(_PLAIN_CELL, _PLAIN_CELL, _PLAIN_CELL, _OTHER_TAG,
                                      _CELL_TAG), max_size=30),
                   st.lists(st.one_of(_CELL_TAG, _CELL_TAG, _OTHER_TAG), max_size=30)).map(
    lambda tags: "".join(tags).encode())


@settings(max_examples=300 * SCALE, deadline=None, derandomize=SCALE == 1)
@given(_PIECE, st.sampled_from([(1000, 200), (10**6, 16384), (99, 26), (10**4, 25), (10**9, 50)]))
def test_fuzz_worksheet_array_scan_answers_as_the_byte_scan(piece, limits):
    """A long worksheet piece is scanned with numpy (sniff._array_scan), a short one with byte
    searches: both give the same quick bound (or none), and the array's hint of something
    NOTABLE is never missing where NOTABLE matches (the scan confirms a hint with it)."""
    flat = piece.translate(sniff._FLAT)
    array_hint, array_bound = sniff._array_scan(piece, flat, limits)
    bytes_hint, bytes_bound = sniff._bytes_scan(piece, flat, limits)
    assert array_bound == bytes_bound or (array_bound is None and limits[0] >= 10**9)
    assert bool(sniff.NOTABLE.search(piece)) <= array_hint <= bytes_hint
    if bytes_bound is not None:  # the quick bound holds every reference that was read
        exact = sniff.xlsx_bound(iter([piece]))
        assert exact is None or (exact.rows <= bytes_bound.rows
                                 and exact.cols <= bytes_bound.cols)
