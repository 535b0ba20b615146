"""Sheets that claim to be enormous: a cell reference written with leading zeros or too many
digits (.xlsx), a legacy sheet filled to its last row (.xls), an OpenDocument repeat count of ten
or more digits (.ods). Each ends in its finding, read within the row and column limits; the rest
of the batch is consolidated; inputs are unchanged; no output cell is a formula; the whole run
(the reader processes included) stays under 1 GB.

Every hostile file is generated here (seeded) from a sample school file. Each run is a separate
process, so that its peak memory can be measured and so that a reader that aborts cannot take
the test session with it.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest

from pipeline import settings
from pipeline.ingest import sniff
from pipeline.ingest.read import read_workbook

from .conftest import ROOT, SAMPLES
from .test_hostile import _assert_no_formula, _rezip, _state

GOOD = "dang-ky_01001.xlsx"
SEED = 20261203
STAFF = "Cá nhân"
MAX_PEAK_MB = 1024

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="peak memory from resource")

_RUN = """
import json, resource, sys
from pathlib import Path
from pipeline.config import load_config
from pipeline.engine import consolidate

root, out = Path(sys.argv[1]), Path(sys.argv[2])
result = consolidate(root / "hop-thu", out, load_config(root / "tdkt.toml"))
scale = 1024 * 1024 if sys.platform == "darwin" else 1024
peak = max(resource.getrusage(who).ru_maxrss for who in
           (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / scale
staff = result.staff.groupby("unit_code").size()
print(json.dumps({
    "findings": [[f.file, f.code, f.sheet, f.value, f.message] for f in result.findings],
    "status": {code: row["status"] for code, row in result.units.iterrows()},
    "staff": {code: int(count) for code, count in staff.items()},
    "peak_mb": peak}))
"""


def _consolidated(root: Path) -> dict:
    """Consolidate the office in a fresh process; its findings, unit statuses, counted staff
    per unit and peak memory (MB), after checking the inputs and the outputs."""
    before = _state(root / "hop-thu")
    out = root / "ra"
    done = subprocess.run([sys.executable, "-c", _RUN, str(root), str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert _state(root / "hop-thu") == before  # bytes and times: nothing written or moved
    _assert_no_formula(out)
    assert report["status"]["01001"] == "valid"  # the rest of the batch went on
    assert report["peak_mb"] < MAX_PEAK_MB, report["peak_mb"]
    return report


def _found(report: dict, name: str) -> list[tuple[str, str | None, str | None, str]]:
    """(code, sheet, value, message) of the findings on one file."""
    return [(code, sheet, value, message) for file, code, sheet, value, message
            in report["findings"] if file == name]


@pytest.fixture
def inbox(office):
    root = office()
    (root / "hop-thu" / GOOD).write_bytes((SAMPLES / "hop-thu" / GOOD).read_bytes())
    return root


def _sample(unit: str) -> bytes:
    return (SAMPLES / "hop-thu" / f"dang-ky_{unit}.xlsx").read_bytes()


def _people(unit: str) -> int:
    """How many staff rows the sample file of `unit` holds (read with openpyxl)."""
    sheet = openpyxl.load_workbook(io.BytesIO(_sample(unit)), read_only=True)[STAFF]
    return sum(1 for row in sheet.iter_rows(min_row=7, max_col=2, values_only=True) if row[1])


# 1. Cell references of any length (.xlsx)


def _with_staff_xml(data: bytes, rows: str, dimension: str | None = None) -> bytes:
    """A sample registration with `rows` added at the end of the staff sheet's XML (and its
    declared dimension replaced)."""
    part = sniff.sheet_parts(zipfile.ZipFile(io.BytesIO(data)))[STAFF]

    def change(name: str, body: bytes) -> bytes:
        if name != part:
            return body
        body = body.replace(b"</sheetData>", rows.encode() + b"</sheetData>")
        if dimension:
            body = re.sub(rb'<dimension ref="[^"]*"', f'<dimension ref="{dimension}"'.encode(),
                          body)
        return body

    return _rezip(data, change=change)


def _stray(reference: str, row: str = "") -> str:
    """One text cell at `reference`, in a row with attribute r=`row` (none when empty)."""
    where = f' r="{row}"' if row else ""
    cell = f' r="{reference}"' if reference else ""
    return f'<row{where}><c{cell} t="inlineStr"><is><t>ô lạc</t></is></c></row>'


ROWS_MESSAGE = ("Trang tính “Cá nhân” có ô ghi dữ liệu tới dòng {}, vượt giới hạn 20000 dòng; chỉ "
                "đọc 20000 dòng đầu, các dòng bên dưới bị bỏ qua.")
COLUMNS_MESSAGE = ("Trang tính “Cá nhân” có ô ghi dữ liệu tới cột {} (cột thứ {}), vượt giới hạn "
                   "200 cột; chỉ đọc 200 cột đầu, các cột bên phải bị bỏ qua.")


# Each on its own school: (unit, rows added to the staff sheet, declared dimension, findings).
REFERENCES = [
    # The file: python-calamine tried to allocate 512 GB and the process aborted.
    ("01004", _stray("XFD0001048576"), None,
     [("too-many-columns", "cột XFD (cột thứ 16384)"), ("too-many-rows", "dòng 1048576")]),
    ("01005", _stray("Z0001000000"), None, [("too-many-rows", "dòng 1000000")]),  # 4.2 GB, 146 s
    ("01007", _stray("L0000200000"), None, [("too-many-rows", "dòng 200000")]),  # 513 MB, 23 s
    ("01008", _stray("xfd0001048576", "0001048576"), "A1:XFD0001048576",
     [("too-many-columns", "cột XFD (cột thứ 16384)"), ("too-many-rows", "dòng 1048576")]),
    ("01009", _stray("", "0000200000"), None, [("too-many-rows", "dòng 200000")]),  # row's own
    # More digits than any sheet has rows: calamine's 32-bit arithmetic wraps it (194 GB).
    ("01010", _stray("B99999999999"), None, [("too-many-rows", "dòng 99999999999")]),
]


def test_hostile_limits_padded_or_huge_cell_references(inbox):
    """Six schools each send a file with one far cell written the hostile way (leading zeros,
    lower case, a padded row number, a padded dimension, eleven digits): each file is read
    within the limits with the warnings that say where its sheet claims to end, and each
    school is counted with its real people only (no 200,000 empty rows in its feedback)."""
    for unit, rows, dimension, _ in REFERENCES:
        data = _with_staff_xml(_sample(unit), rows, dimension)
        assert len(data) < 40_000
        (inbox / "hop-thu" / f"dang-ky_{unit}.xlsx").write_bytes(data)
    report = _consolidated(inbox)
    for unit, _, _, expected in REFERENCES:
        found = _found(report, f"dang-ky_{unit}.xlsx")
        assert sorted((code, value) for code, _, value, _ in found) == expected, unit
        assert {sheet for _, sheet, _, _ in found} == {STAFF}
        messages = {code: message for code, _, _, message in found}
        rows = dict(expected)["too-many-rows"].split()[1]
        assert messages["too-many-rows"] == ROWS_MESSAGE.format(rows)
        if len(found) > 1:
            assert messages["too-many-columns"] == COLUMNS_MESSAGE.format("XFD", 16384)
        assert report["status"][unit] == "valid"
        assert report["staff"][unit] == _people(unit)


def test_hostile_limits_far_cell_written_oddly_is_measured(tmp_path):
    """A far cell whose reference is written in a way no quick count recognises (a tab, spaces
    around "="), or a cell with no reference behind text that looks like one, among ordinary
    cells: the sheet is measured tag by tag, so the reader streams its first rows instead of
    building the whole range, and says where the sheet claims to end."""
    odd = ('<row r="9000"><c\tr = "XFD1048576" t="inlineStr"><is><t>ô lạc</t></is></c></row>',
           '<row r="1048576"><c t="inlineStr"> r="A1"<is><t>ô lạc</t></is></c></row>')
    expected = [[("too-many-columns", "cột XFD (cột thứ 16384)"),
                 ("too-many-rows", "dòng 1048576")], [("too-many-rows", "dòng 1048576")]]
    for n, (rows, wanted) in enumerate(zip(odd, expected, strict=True)):
        path = tmp_path / f"dang-ky_{n}.xlsx"
        path.write_bytes(_with_staff_xml(_sample("01001"), rows))
        book, found = read_workbook(path, path.name)
        assert sorted((f.code, f.value) for f in found) == wanted
        staff = next(s for s in book.sheets if s.name == STAFF)
        assert len(staff.grid) <= settings.MAX_ROWS
        assert staff.grid[6][:3] == [1, "Đinh Đức Bình", dt.date(1977, 11, 28)]


# 2. A legacy .xls sheet read to its last row


def _name(rng: random.Random) -> str:
    return " ".join((rng.choice(["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi"]),
                     rng.choice(["Thị", "Văn", "Hữu", "Ngọc", "Minh", "Thu", "Đức"]),
                     rng.choice(["An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Hải", "Hạnh",
                                 "Khánh", "Lan", "Linh", "Long", "Mai", "Nam", "Phúc", "Quân"])))


def _legacy(unit: str, stray: dict[tuple[int, int], str] | None = None,
            filled_to: int = 0) -> bytes:
    """The sample registration of `unit` saved as an .xls (xlwt, as the sample generator
    does), with stray texts at 0-based (row, column) of the staff sheet and, with `filled_to`,
    made-up people (seeded, each born on a different day) down to that 1-based row."""
    import xlwt

    source = openpyxl.load_workbook(io.BytesIO(_sample(unit)))
    book = xlwt.Workbook(encoding="utf-8")
    dates = xlwt.easyxf(num_format_str="dd/mm/yyyy")
    for ws in source.worksheets:
        sheet = book.add_sheet(ws.title)
        if ws.sheet_state != "visible":
            sheet.visibility = 2 if ws.sheet_state == "veryHidden" else 1
        people = []
        for row in ws.iter_rows():
            values = [c.value for c in row]
            if ws.title == STAFF and row[0].row >= 7 and values[1]:
                people.append(values)
            for col, value in enumerate(values):
                if value is not None:
                    sheet.write(row[0].row - 1, col, value,
                                dates if hasattr(value, "year") else xlwt.Style.default_style)
        if ws.title == STAFF:
            rng = random.Random(SEED)
            for row0 in range(len(people) + 6, filled_to):
                person = [row0 - 5, _name(rng), dt.date(1960, 1, 1) + dt.timedelta(row0 % 20_000),
                          *rng.choice(people)[3:]]
                for col, value in enumerate(person):
                    if value is not None:
                        sheet.write(row0, col, value, dates if hasattr(value, "year")
                                    else xlwt.Style.default_style)
            for (row0, col), text in (stray or {}).items():
                sheet.write(row0, col, text)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@pytest.mark.slow  # a sheet filled to Excel's last row (~11 s): `make test-slow`, in CI
def test_hostile_limits_legacy_sheet_filled_to_its_last_row(inbox):
    """The issue's file: 65,536 rows of people (a 44-staff unit counted 65,527): only the rows
    within the limit are read, with the warning that says where the sheet really ends."""
    name = "dang-ky_01004.xls"
    (inbox / "hop-thu" / name).write_bytes(_legacy("01004", filled_to=65_536))
    with (inbox / "tdkt.toml").open("a", encoding="utf-8") as handle:
        handle.write("\n[limits]\nmax_rows = 300\n")  # the same rule, a quicker run
    report = _consolidated(inbox)
    found = _found(report, name)
    assert [(code, sheet, value) for code, sheet, value, _ in found
            if code.startswith("too-many")] == [("too-many-rows", STAFF, "dòng 65536")]
    message = next(m for code, _, _, m in found if code == "too-many-rows")
    assert "vượt giới hạn 300 dòng; chỉ đọc 300 dòng đầu" in message
    assert report["staff"]["01004"] == 300 - 6  # rows 7 to 300: the header takes six


def test_hostile_limits_legacy_sheets_with_far_cells(inbox):
    """A stray cell at A65536 (01004): read within the limits with its warning. One at IV65536
    (01005): calamine would hold 65,536 × 256 cells (a gigabyte) for a 6 KB file, so the file
    is refused before it is read."""
    (inbox / "hop-thu" / "dang-ky_01004.xls").write_bytes(
        _legacy("01004", {(65_535, 0): "ô lạc"}))
    corner = _legacy("01005", {(65_535, 255): "ô lạc"})
    assert len(corner) < 40_000
    (inbox / "hop-thu" / "dang-ky_01005.xls").write_bytes(corner)
    report = _consolidated(inbox)
    found = _found(report, "dang-ky_01004.xls")
    assert [(code, sheet, value) for code, sheet, value, _ in found
            if code.startswith("too-many")] == [("too-many-rows", STAFF, "dòng 65536")]
    assert report["staff"]["01004"] == _people("01004")
    (code, sheet, value, message), = _found(report, "dang-ky_01005.xls")
    assert (code, sheet, value) == ("sheet-too-large", STAFF, "65536 dòng × 256 cột")
    assert message == ("Trang tính “Cá nhân” của tệp “dang-ky_01005.xls” có dữ liệu trải tới 65536 "
                       "dòng × 256 cột, vượt giới hạn tối đa 20000 dòng × 200 cột; tệp "
                       "OpenDocument (.ods) hoặc Excel 97–2003 (.xls) lớn như vậy không được đọc.")
    assert "01005" not in report["staff"]


def _small_compound_file(name: str, payload: bytes) -> bytes:
    """An OLE2 compound file whose one stream `name` is smaller than 4,096 bytes, so kept in the
    mini stream (64-byte sectors, chained by the mini FAT), as Excel keeps a tiny workbook."""
    def u32(n: int) -> bytes:
        return n.to_bytes(4, "little")

    end, free, fat_sector, none = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
    minis = -(-len(payload) // 64)
    container = payload.ljust(minis * 64, b"\0")
    sectors = -(-len(container) // 512)
    fat = [fat_sector, end, end, *range(4, 3 + sectors), end]
    header = (bytes.fromhex("d0cf11e0a1b11ae1") + bytes(16) + (0x3E).to_bytes(2, "little")
              + (3).to_bytes(2, "little") + b"\xfe\xff" + (9).to_bytes(2, "little")
              + (6).to_bytes(2, "little") + bytes(6) + u32(0) + u32(1) + u32(1) + u32(0)
              + u32(4096) + u32(2) + u32(1) + u32(end) + u32(0) + u32(0)
              + b"".join(u32(free) for _ in range(108)))

    def entry(title: str, kind: int, child: int, start: int, size: int) -> bytes:
        encoded = title.encode("utf-16-le") + b"\0\0"
        return (encoded.ljust(64, b"\0") + len(encoded).to_bytes(2, "little")
                + bytes([kind, 1]) + u32(none) + u32(none) + u32(child) + bytes(36)
                + u32(start) + u32(size) + bytes(4))

    directory = (entry("Root Entry", 5, 1, 3, len(container))
                 + entry(name, 2, none, 0, len(payload))).ljust(512, b"\0")
    minifat = b"".join(u32(n) for n in [*range(1, minis), end]).ljust(512, b"\xff")
    table = b"".join(u32(n) for n in fat).ljust(512, b"\xff")
    return header + table + directory + minifat + container.ljust(sectors * 512, b"\0")


def test_hostile_limits_tiny_legacy_workbook_in_the_mini_stream(tmp_path):
    """A 3 KB .xls whose workbook stream sits in the compound file's mini stream (the way
    Excel stores a stream under 4,096 bytes) is measured all the same."""
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet(STAFF)
    sheet.write(0, 0, "STT")
    sheet.write(65_535, 255, "ô lạc")
    buffer = io.BytesIO()
    book.save(buffer)
    padded = sniff.cfb_stream(buffer.getvalue(), ("Workbook",))  # xlwt pads it to 4,096
    at = 0
    while padded[at:at + 4] not in (b"", bytes(4)):  # record by record, to the padding
        at += 4 + int.from_bytes(padded[at + 2:at + 4], "little")
    stream = padded[:at]
    assert len(stream) < 4096
    data = _small_compound_file("Workbook", stream)
    assert sniff.cfb_stream(data, ("Workbook", "Book")) == stream
    path = tmp_path / "nho.xls"
    path.write_bytes(data)
    raw, found = read_workbook(path, path.name)
    assert raw is None
    assert [(f.code, f.sheet, f.value) for f in found] == [
        ("sheet-too-large", STAFF, "65536 dòng × 256 cột")]


# 3. OpenDocument repeat counts of any length (.ods)


def _ods_with(rows: bytes) -> bytes:
    """The sample .ods with `rows` added at the end of its first sheet."""
    def change(name: str, body: bytes) -> bytes:
        if name != "content.xml":
            return body
        cut = body.index(b"</table:table>")
        return body[:cut] + rows + body[cut:]

    return _rezip((SAMPLES / "hop-thu" / "03005.ods").read_bytes(), change=change)


_VALUED = (b'<table:table-row><table:table-cell office:value-type="string"><text:p>xa</text:p>'
           b"</table:table-cell></table:table-row>")


_EMPTY_ROWS = b"<table:table-row %s><table:table-cell/></table:table-row>" + _VALUED
# (file, rows added to the first sheet, how far it then reaches)
REPEATS = [
    ("lon-1.ods", _EMPTY_ROWS % b'table:number-rows-repeated="0001000000"',
     "1000042 dòng × 5 cột"),
    ("lon-2.ods", _EMPTY_ROWS % b'table:number-rows-repeated="99999999999"',
     "100000000041 dòng × 5 cột"),
    ("lon-3.ods", _EMPTY_ROWS % (b'table:number-rows-repeated="%s"' % b"200000".zfill(50)),
     "200042 dòng × 5 cột"),
    ("rong.ods", b'<table:table-row><table:table-cell table:number-columns-repeated='
     b'"0000016384" office:value-type="string"><text:p>xa</text:p></table:table-cell>'
     b"</table:table-row>", "42 dòng × 16384 cột"),
]


def test_hostile_limits_opendocument_repeat_counts_of_any_length(inbox):
    """Repeat counts with leading zeros, of ten, eleven or fifty digits (a 6.5 KB file cost
    1.07 GB and 30 s, no finding): each file is refused, none is built."""
    for name, rows, _ in REPEATS:
        data = _ods_with(rows)
        assert len(data) < 10_000
        (inbox / "hop-thu" / name).write_bytes(data)
    report = _consolidated(inbox)
    for name, _, value in REPEATS:
        (code, sheet, found, message), = _found(report, name)
        assert (code, sheet, found) == ("sheet-too-large", "Hướng dẫn", value), name
        assert f"có dữ liệu trải tới {value}, vượt giới hạn tối đa 20000 dòng × 200 cột" in message


def test_hostile_limits_settings_are_the_ones_the_messages_name():
    assert (settings.MAX_ROWS, settings.MAX_COLUMNS) == (20_000, 200)
