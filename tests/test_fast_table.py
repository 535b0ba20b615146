"""Table bodies written a column at a time (fast_table) give the very file that writing the
same cells one by one with XlsxWriter gives, and read back as the values written."""

from __future__ import annotations

import datetime as dt
import heapq
import zipfile
import zlib
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import xlsxwriter

from pipeline.findings import Finding, Severity
from pipeline.reports.fast_table import TableSheet
from pipeline.reports.workbook import (
    NO,
    WORKBOOK_OPTIONS,
    YES,
    Col,
    Letterhead,
    ReportBook,
    _longest,
)

LETTERHEAD = Letterhead("UBND xã Tân Lập", "Phòng Văn hóa – Xã hội", "Tân Lập",
                        date=dt.date(2026, 11, 25))
EMOJI = "\U0001f600"
ODD_TEXTS = [
    "=1+1", "+cmd|' /C calc'!A0", "@SUM(A1)", "http://x.vn", "  lề  ", "a\x01b\x1fc",
    "_x0041_ đã thoát", "<b>&amp;\"'</b>", "<r>không phải rich</r>", "", "dòng 1\ndòng 2",
    "\ufffe\uffff", EMOJI * 3, "x" * 32766 + EMOJI + "y",  # cut at 32,767 UTF-16 units
]


class _Other:
    def __str__(self) -> str:
        return "một đối tượng"


def _put(ws, row: int, col: int, value: object, fmt, date_fmt, stamp_fmt,
         yes_no: tuple[str, str]) -> None:
    """The cell-by-cell writer the bodies used before fast_table, kept as the reference."""
    kind = type(value)
    if kind is str:
        ws.write_string(row, col, value, fmt)
    elif value is None:
        ws.write_blank(row, col, None, fmt)
    elif kind is bool:
        ws.write_string(row, col, yes_no[0] if value else yes_no[1], fmt)
    elif kind is int or kind is float:
        ws.write_number(row, col, value, fmt)
    elif kind is dt.datetime and value.time() != dt.time():
        ws.write_datetime(row, col, value, stamp_fmt)
    elif kind in (dt.date, dt.datetime, dt.time):
        ws.write_datetime(row, col, value, date_fmt)
    else:
        ws.write_string(row, col, str(value), fmt)


def _cell_by_cell(ws, row, columns, formats, fills, heights, yes_no) -> None:
    for r, fill in enumerate(fills):
        for c, values in enumerate(columns):
            _put(ws, row + r, c, values[r], *formats[fill][c], yes_no)
    for r, height in enumerate(heights):
        ws.set_row(row + r, height)


def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def _assert_same_file(fast: Path, reference: Path) -> None:
    a, b = _parts(fast), _parts(reference)
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] == b[name], name
    assert fast.read_bytes() == reference.read_bytes()


def _columns(n: int) -> list[list[object]]:
    """Every kind of plain value, repeated and mixed within columns."""
    rng = np.random.default_rng(7)
    texts = ODD_TEXTS + [f"Nguyễn Văn {i}" for i in range(40)]
    numbers = [0, 1, -1, 2**70, 0.5, -0.0, 0.0, 1e-300, 123456789.123456789, 1.0]
    dates = [dt.date(2026, 5, 20), dt.datetime(2026, 5, 21), dt.datetime(2026, 5, 21, 8, 30),
             dt.time(7, 45), dt.date(1900, 3, 1)]
    mixed = [*texts[:5], *numbers[:5], *dates, True, False, None, _Other()]
    return [
        list(range(1, n + 1)),
        [texts[i] for i in rng.integers(0, len(texts), n)],
        [None if i % 7 == 0 else texts[i % 9] for i in range(n)],
        [numbers[i] for i in rng.integers(0, len(numbers), n)],
        [dates[i] for i in rng.integers(0, len(dates), n)],
        [bool(i % 3) if i % 5 else None for i in range(n)],
        [mixed[i] for i in rng.integers(0, len(mixed), n)],
        [texts[5]] * n,  # the same text as in column 1: one shared string
    ]


def _sheet_with_body(path: Path, columns, fills: list[int], heights: list[float]) -> Path:
    book = xlsxwriter.Workbook(str(path), WORKBOOK_OPTIONS)
    # a fixed date: both files written on either side of a second boundary stay identical
    book.set_properties({"created": dt.datetime(2026, 11, 25)})
    ws = book.add_worksheet("Bảng", worksheet_class=TableSheet)
    fmt = {}

    def f(**props):  # formats created in a fixed order, first used by the body
        key = tuple(sorted(props.items()))
        if key not in fmt:
            fmt[key] = book.add_format(props)
        return fmt[key]

    kinds = [{"num_format": "#,##0"}, {"text_wrap": True}, {}, {"num_format": "0.00"}, {}, {},
             {}, {"bold": True}]
    formats = [[(f(**k, **extra), f(**(k | extra | {"num_format": "dd/mm/yyyy"})),
                 f(**(k | extra | {"num_format": "dd/mm/yyyy hh:mm"}))) for k in kinds]
               for extra in ({}, {"bg_color": "#FFC7CE"}, {"bg_color": "#D9D9D9"})]
    ws.write_string(0, 0, "Tiêu đề")
    ws.merge_range(1, 0, 1, 11, "Dòng gộp rộng hơn bảng", f(align="center"))
    ws.write_string(3, 10, "ô lẻ cùng khối 16 dòng với thân bảng")
    ws.set_row(2, 30)
    ws.write_body(5, columns, formats, fills, heights, (YES, NO))
    below = 5 + len(fills)
    ws.write_number(below, 2, 42)
    ws.write_string(below + 1, 0, "Ghi chú", f(italic=True))
    ws.write_comment(below + 1, 0, "chú thích")
    ws.autofilter(4, 0, below - 1, len(columns) - 1)
    ws.freeze_panes(5, 0)
    book.close()
    return path


@pytest.mark.parametrize("n", [1, 15, 16, 17, 300])
def test_body_file_is_identical_to_cell_by_cell(tmp_path, monkeypatch, n):
    columns = _columns(n)
    fills = [(i * 7) % 3 if i % 4 == 0 else 0 for i in range(n)]
    heights = [16.0 if i % 5 else 29.5 for i in range(n)]
    fast = _sheet_with_body(tmp_path / "fast.xlsx", columns, fills, heights)
    monkeypatch.setattr(TableSheet, "write_body", _cell_by_cell)
    reference = _sheet_with_body(tmp_path / "reference.xlsx", columns, fills, heights)
    _assert_same_file(fast, reference)


def _report(path: Path, rows: int) -> Path:
    rng = np.random.default_rng(3)
    names = [f"Trần Thị {i % 97}" for i in range(rows)]
    frame = pd.DataFrame({
        "seq": range(1, rows + 1),
        "name": names,
        "birth": pd.to_datetime(["1980-01-02", None, "1975-12-31"] * (rows // 3)
                                + ["1990-06-01"] * (rows % 3)),
        "unit": rng.choice(["Trường Mầm non Hoa Sen", "Trường THCS Tân Lập có tên rất dài "
                            "để dòng phải xuống hàng ở cột hẹp", "=HYPERLINK(\"http://x\")"],
                           rows),
        "count": rng.integers(0, 50, rows).astype("int64"),
        "share": np.where(rng.random(rows) < 0.1, np.nan, rng.random(rows)),
        "flag": rng.random(rows) < 0.5,
        "code": [f"TH{i:03d}" for i in range(rows)],
    })
    cols = [Col("seq", "Stt", 5, "int"), Col("name", "Họ và tên", 20),
            Col("birth", "Ngày sinh", 11, "date"), Col("unit", "Đơn vị", 18),
            Col("count", "Số", 6, "int", total=True), Col("share", "Tỉ lệ", 8, "pct"),
            Col("flag", "Có", 6), Col("code", "Mã", 8, printed=False)]
    findings = [Finding(code="x", file="a.xlsx", sheet="S", cell=f"A{i}", value="=1+1",
                        unit="TH01", severity=Severity.ERROR if i % 2 else Severity.WARNING,
                        message="Lỗi " * (i % 30)) for i in range(40)]
    with ReportBook(path, LETTERHEAD, "Thử") as book:
        book.table_sheet("Đều", "DANH SÁCH", frame, cols, subtitle="Năm học 2026-2027",
                         highlight=frame["count"] > 40, notes=["Ghi chú một."])
        book.table_sheet("Một dòng", "DANH SÁCH MỘT DÒNG", frame, cols, max_lines=1,
                         totals_label=None)
        book.table_sheet("Từng dòng", "DANH SÁCH", frame, cols, uniform=False, max_lines=4)
        book.table_sheet("Trống", "KHÔNG CÓ GÌ", frame.iloc[:0], cols)
        book.findings_sheet("Lỗi", findings, title="LỖI")
    return path


@pytest.mark.parametrize("rows", [2, 50])
def test_report_book_is_identical_to_cell_by_cell(tmp_path, monkeypatch, rows):
    fast = _report(tmp_path / "fast.xlsx", rows)
    monkeypatch.setattr(TableSheet, "write_body", _cell_by_cell)
    _assert_same_file(fast, _report(tmp_path / "reference.xlsx", rows))


def test_body_reads_back(tmp_path):
    columns = [
        ["=1+1", "a\x01b", "  lề  ", EMOJI, "x" * 32766 + EMOJI],
        [True, False, None, 3, 2.5],
        [dt.date(2026, 5, 20), dt.datetime(2026, 5, 21, 8, 30), None, dt.datetime(2026, 1, 1),
         dt.date(2000, 2, 29)],
    ]
    path = _sheet_with_body(tmp_path / "b.xlsx", columns, [0, 1, 0, 2, 0],
                            [18.0, 18.0, 45.0, 18.0, 18.0])
    ws = openpyxl.load_workbook(path)["Bảng"]
    got = [[ws.cell(6 + r, 1 + c).value for c in range(3)] for r in range(5)]
    assert got == [
        ["=1+1", YES, dt.datetime(2026, 5, 20)],
        ["a_x0001_b", NO, dt.datetime(2026, 5, 21, 8, 30)],  # escaped; openpyxl keeps it
        ["  lề  ", None, None],
        [EMOJI, 3, dt.datetime(2026, 1, 1)],
        ["x" * 32766, 2.5, dt.datetime(2000, 2, 29)],  # the emoji would cross the limit
    ]
    assert all(ws.cell(6 + r, 1).data_type == "s" for r in range(5))  # never a formula
    assert ws.cell(6, 3).number_format == "dd/mm/yyyy"
    assert ws.cell(7, 3).number_format == "dd/mm/yyyy hh:mm"
    assert ws.cell(7, 1).fill.fgColor.rgb == "FFFFC7CE"
    assert ws.cell(7, 4).value is None and ws.cell(11, 3).value == 42
    assert [ws.row_dimensions[r].height for r in range(6, 11)] == [18, 18, 45, 18, 18]
    assert ws.freeze_panes == "A6" and ws.auto_filter.ref == "A5:C10"


def test_bodies_need_rows_of_their_own(tmp_path):
    book = xlsxwriter.Workbook(str(tmp_path / "x.xlsx"), WORKBOOK_OPTIONS)
    ws = book.add_worksheet("A", worksheet_class=TableSheet)
    fmt = book.add_format()
    formats = [[(fmt, fmt, fmt)]]
    ws.write_body(2, [["a", "b"]], formats, [0, 0], [15.0, 15.0], (YES, NO))
    with pytest.raises(ValueError, match="rows of its own"):
        ws.write_body(3, [["c"]], formats, [0], [15.0], (YES, NO))
    with pytest.raises(ValueError, match="leaves the sheet"):
        ws.write_body(1_048_575, [["c", "d"]], formats, [0, 0], [15.0, 15.0], (YES, NO))
    book.close()


def test_longest_texts_are_those_heapq_would_pick():
    rng = np.random.default_rng(5)
    words = ["ab", "AB", "abc", "ABC", "Ab", "aBc", "x" * 7, "Y" * 7, ""]
    for _ in range(200):
        values = [words[i] if i < len(words) else i for i in rng.integers(0, 12, 30)]
        expected = heapq.nlargest(5, (v for v in values if isinstance(v, str)), key=len)
        assert _longest(values, 5) == expected


def test_a_cell_written_over_a_body_is_refused(tmp_path):
    book = xlsxwriter.Workbook(str(tmp_path / "x.xlsx"), WORKBOOK_OPTIONS)
    ws = book.add_worksheet("A", worksheet_class=TableSheet)
    fmt = book.add_format()
    ws.write_body(2, [["a", "b"]], [[(fmt, fmt, fmt)]], [0, 0], [15.0, 15.0], (YES, NO))
    ws.write_string(3, 0, "đè lên")
    with pytest.raises(RuntimeError, match="over the table body from row 3"):
        book.close()


def test_text_that_looks_like_rich_text_reads_back_as_typed(tmp_path):
    """XlsxWriter takes a string written "<r>…</r>" for its own rich text and writes it
    unescaped; a school's cell holding one must not make the office's workbook unreadable."""
    texts = ["<r>không phải rich</r>", "<r><t>chữ</t></r>", "<r><broken"]
    frame = pd.DataFrame({"name": texts})
    path = tmp_path / "r.xlsx"
    with ReportBook(path, LETTERHEAD, "Thử") as book:
        book.table_sheet("Bảng", "DANH SÁCH", frame, [Col("name", "Họ và tên", 20)])
    ws = openpyxl.load_workbook(path)["Bảng"]
    body = [ws.cell(r, 1).value for r in range(1, ws.max_row + 1)]
    assert [v for v in body if isinstance(v, str) and v.startswith("<r>")] == texts


def test_an_empty_body_writes_no_row(tmp_path):
    """An official report's table may have no row (no one proposed for a title): its body is
    written directly (official._rows), not through table_sheet's "no data" line."""
    frame = pd.DataFrame({"name": pd.Series([], dtype=object),
                          "count": pd.Series([], dtype="int64")})
    cols = [Col("name", "Họ và tên", 20), Col("count", "Số", 6, "int")]
    with ReportBook(tmp_path / "e.xlsx", LETTERHEAD, "Thử") as book:
        ws = book._sheet("Bảng")
        assert book._body(ws, 7, frame, cols, [20, 6], [], 3, False) == 7
        ws.write_string(7, 0, "sau bảng")
    ws = openpyxl.load_workbook(tmp_path / "e.xlsx")["Bảng"]
    assert ws.cell(8, 1).value == "sau bảng" and ws.max_row == 8


@pytest.mark.parametrize("big", [False, True])  # parts in memory, or in temporary files
def test_report_book_package_is_deflated_at_tdkts_level(tmp_path, big):
    import xlsxwriter.workbook

    from pipeline.reports.workbook import DEFLATE_LEVEL

    frame = pd.DataFrame({"name": [f"Nguyễn Văn {i}" for i in range(300)]})
    path = tmp_path / "z.xlsx"
    with ReportBook(path, LETTERHEAD, "Thử", big=big) as book:
        book.table_sheet("Bảng", "DANH SÁCH", frame, [Col("name", "Họ và tên", 20)])
    assert xlsxwriter.workbook.ZipFile is zipfile.ZipFile  # put back after the save
    with zipfile.ZipFile(path) as package:
        for info in package.infolist():
            packer = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -15)
            data = package.read(info)
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert info.compress_size == len(packer.compress(data) + packer.flush()), info
    assert openpyxl.load_workbook(path)["Bảng"].max_row > 300
