"""The workbook-writing layer: layout, values, formats, safety and a LibreOffice render."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from pipeline.config import Office
from pipeline.findings import Finding, Severity
from pipeline.reports.workbook import MOTTO, NATION, Col, Letterhead, ReportBook

LETTERHEAD = Letterhead(
    parent="UBND xã Tân Lập",
    office="Phòng Văn hóa – Xã hội",
    place="Tân Lập",
    signer="Trưởng phòng",
    date=dt.date(2026, 11, 25),
)
HOSTILE = ['=HYPERLINK("http://x")', "+cmd|' /C calc'!A0", "@SUM(A1)", "-2+3", "http://x.vn"]
RED, YELLOW = "FFFFC7CE", "FFFFF2CC"


def _units() -> pd.DataFrame:
    return pd.DataFrame({
        "stt": [1, 2, 3],
        "unit": ["Trường Mầm non Hoa Sen", "Trường Tiểu học Tân Lập", "Trường THCS Tân Lập"],
        "staff": [np.int64(25), 40, 38],
        "registered": [25.0, 36.0, np.nan],
        "coverage": [1.0, 0.9, np.nan],
        "deadline": [dt.date(2026, 5, 20), pd.Timestamp("2026-05-21"), None],
        "remote": [True, False, np.bool_(True)],
    })


def _cols(grouped: bool = False) -> list[Col]:
    group = "Đăng ký" if grouped else None
    return [
        Col("stt", "Stt", 6, "int"),
        Col("unit", "Tên đơn vị", 34),
        Col("staff", "Số CB-GV-NV", 12, "int", total=True),
        Col("registered", "Số đăng ký", 12, "int", total=True, group=group),
        Col("coverage", "Tỉ lệ", 10, "pct", total_from=("registered", "staff"), group=group),
        Col("deadline", "Hạn nộp", 13, "date"),
        Col("remote", "Vùng khó khăn", 12),
    ]


def _book(path: Path, **sheets) -> Path:
    with ReportBook(path, LETTERHEAD, "Tổng hợp") as book:
        for name, kwargs in sheets.items():
            book.table_sheet(name, **kwargs)
    return path


def _no_formulas(path: Path) -> None:
    wb = openpyxl.load_workbook(path)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            assert all(cell.data_type != "f" for cell in row), ws.title


def _findings() -> list[Finding]:
    return [
        Finding(code="not-in-list", file="th-tan-lap.xlsx", sheet="Cá nhân", cell="E12",
                value="LĐTT1", expected="một trong: LĐTT, CSTĐCS", unit="TH01",
                severity=Severity.ERROR, message="Ô E12: giá trị “LĐTT1” không có trong danh mục.",
                hint="Chọn từ danh sách."),
        Finding(code="bad-date", file="mn-hoa-sen.xlsx", sheet="Cá nhân", cell="F7",
                value="=1+1", unit="MN01", severity=Severity.WARNING,
                message="Ô F7: ngày không rõ.", hint="Ghi ngày dạng dd/mm/yyyy."),
    ]


# Table sheet


def test_table_letterhead_title_and_header(tmp_path):
    path = _book(tmp_path / "a.xlsx", **{"Đơn vị": dict(
        title="TỔNG HỢP ĐĂNG KÝ THI ĐUA", frame=_units(), cols=_cols())})
    ws = openpyxl.load_workbook(path)["Đơn vị"]
    assert ws["A1"].value == "UBND XÃ TÂN LẬP"
    assert ws["A2"].value == "PHÒNG VĂN HÓA – XÃ HỘI" and ws["A2"].font.b
    # The left block covers ~40% of the width: Stt (6) + Tên đơn vị (34) of 99.
    merged = {str(r) for r in ws.merged_cells.ranges}
    assert {"A1:B1", "A2:B2", "C1:G1", "C2:G2", "C3:G3", "A5:G5"} <= merged
    assert ws["C1"].value == NATION and ws["C1"].font.b
    assert ws["C2"].value == MOTTO and ws["C2"].font.b
    assert ws["C3"].value == "Tân Lập, ngày 25 tháng 11 năm 2026" and ws["C3"].font.i
    assert ws["A5"].value == "TỔNG HỢP ĐĂNG KÝ THI ĐUA" and ws["A5"].font.sz == 14
    assert [c.value for c in ws[7]] == [c.header for c in _cols()]
    assert ws["A7"].font.b and ws["A7"].fill.fgColor.rgb == "FFD9D9D9"
    assert ws.freeze_panes == "A8"
    assert ws.auto_filter.ref == "A7:G10"
    assert ws.print_title_rows == "$7:$7"
    # 99 characters wide: A4 portrait at full size; fitted to the width, as long as it needs.
    assert ws.page_setup.orientation == "portrait" and ws.page_setup.paperSize == 9
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToHeight == 0
    assert ws.oddFooter.center.text.endswith("Trang &P/&N")


def test_table_print_area_leaves_screen_columns_out_and_rows_share_one_height(tmp_path):
    frame = _units().assign(note=["ngắn", "một ghi chú rất dài " * 6, None],
                            code=["a.b", "c.d", None])
    cols = [*_cols(), Col("note", "Ghi chú", 20), Col("code", "Mã", 30, printed=False),
            Col("unit_code", "Mã đơn vị", 10, printed=False)]
    path = _book(tmp_path / "a.xlsx", S=dict(title="T", frame=frame.assign(unit_code="X"),
                                              cols=[cols[-1], *cols[:-1]]))
    ws = openpyxl.load_workbook(path)["S"]
    # The screen columns come after the printed ones, outside the print area, not wrapped.
    assert [c.value for c in ws[7]] == [*(c.header for c in _cols()), "Ghi chú", "Mã đơn vị",
                                        "Mã"]
    assert "!$A$1:$H$" in ws.print_area
    assert ws["I8"].value == "X" and ws["J8"].value == "a.b"
    assert not ws["J8"].alignment.wrap_text
    assert ws["H9"].alignment.wrap_text
    # Wider than A4 portrait: landscape. One height for every body row, from the longest
    # note (three lines at most).
    assert ws.page_setup.orientation == "landscape"
    heights = {ws.row_dimensions[r].height for r in (8, 9, 10)}
    assert len(heights) == 1 and heights.pop() == pytest.approx(3 * 11 * 1.2 + 2.5, abs=0.5)


def test_table_one_line_rows_widen_their_columns(tmp_path):
    frame = _units().assign(unit=["Trường Trung học cơ sở và Trung học phổ thông Tân Lập",
                                  "Trường A", "Trường B"])
    path = _book(tmp_path / "a.xlsx", S=dict(title="T", frame=frame, cols=_cols(),
                                              max_lines=1))
    ws = openpyxl.load_workbook(path)["S"]
    assert ws.column_dimensions["B"].width > 40  # the longest name on one line
    assert [ws.row_dimensions[r].height for r in (8, 9, 10)] == [pytest.approx(15.7, abs=0.5)] * 3


def test_table_body_values_and_formats(tmp_path):
    path = _book(tmp_path / "a.xlsx", S=dict(title="T", frame=_units(), cols=_cols()))
    ws = openpyxl.load_workbook(path)["S"]
    assert [c.value for c in ws[8]] == [1, "Trường Mầm non Hoa Sen", 25, 25, 1.0,
                                        dt.datetime(2026, 5, 20), "Có"]
    assert [c.value for c in ws[9]][5:] == [dt.datetime(2026, 5, 21), "Không"]
    assert ws["D10"].value is None and ws["E10"].value is None and ws["F10"].value is None
    assert ws["C8"].number_format == "#,##0"
    assert ws["E8"].number_format == "0.0%"
    assert ws["F8"].number_format == "dd/mm/yyyy"
    assert ws["B8"].alignment.wrap_text and ws["B8"].font.sz == 11
    assert ws["B8"].font.name == "Times New Roman"
    assert ws["B8"].border.left.style == "thin"


def test_table_totals_row_sums_in_python(tmp_path):
    frame = _units()
    path = _book(tmp_path / "a.xlsx", S=dict(title="T", frame=frame, cols=_cols()))
    ws = openpyxl.load_workbook(path)["S"]
    assert ws["A11"].value == "Tổng cộng" and "A11:B11" in {str(r) for r in ws.merged_cells.ranges}
    assert ws["C11"].value == frame["staff"].sum() == 103
    assert ws["D11"].value == frame["registered"].sum() == 61
    assert ws["E11"].value == pytest.approx(61 / 103)
    assert ws["C11"].font.b and ws["F11"].value is None
    _no_formulas(path)


def test_table_pct_total_is_zero_without_denominator(tmp_path):
    frame = pd.DataFrame({"n": [0, 0], "d": [0, 0], "p": [0.0, 0.0]})
    cols = [Col("n", "N", kind="int", total=True), Col("d", "D", kind="int", total=True),
            Col("p", "P", kind="pct", total_from=("n", "d"))]
    ws = openpyxl.load_workbook(_book(tmp_path / "a.xlsx", S=dict(
        title="T", frame=frame, cols=cols)))["S"]
    assert [c.value for c in ws[10]] == [0, 0, 0]  # no label: the first column is a total


def test_table_grouped_header(tmp_path):
    path = _book(tmp_path / "a.xlsx", S=dict(title="T", frame=_units(), cols=_cols(True),
                                             subtitle="Năm học 2025-2026"))
    ws = openpyxl.load_workbook(path)["S"]
    assert ws["A6"].value == "Năm học 2025-2026" and ws["A6"].font.i
    merged = {str(r) for r in ws.merged_cells.ranges}
    assert {"A8:A9", "B8:B9", "C8:C9", "D8:E8", "F8:F9", "G8:G9"} <= merged
    assert ws["D8"].value == "Đăng ký"
    assert [ws["D9"].value, ws["E9"].value] == ["Số đăng ký", "Tỉ lệ"]
    assert ws["A8"].value == "Stt" and ws["A10"].value == 1
    assert ws.freeze_panes == "A10" and ws.print_title_rows == "$8:$9"
    assert ws.auto_filter.ref == "A9:G12"


def test_table_empty_frame_and_highlight(tmp_path):
    frame = _units()
    path = _book(
        tmp_path / "a.xlsx",
        Empty=dict(title="T", frame=frame.iloc[0:0], cols=_cols()),
        Marked=dict(title="T", frame=frame, cols=_cols(), signature=False,
                    highlight=pd.Series([False, True, False], index=frame.index),
                    notes=["Ghi chú: số liệu đến ngày 20/5."]),
    )
    wb = openpyxl.load_workbook(path)
    empty = wb["Empty"]
    assert [c.value for c in empty[7]] == [c.header for c in _cols()]
    assert empty["A8"].value == "Không có dữ liệu"
    assert "A8:G8" in {str(r) for r in empty.merged_cells.ranges}
    values = [c.value for row in empty.iter_rows() for c in row]
    assert "NGƯỜI LẬP BIỂU" in values and "TRƯỞNG PHÒNG" in values
    marked = wb["Marked"]
    assert [marked.cell(r, 2).fill.fgColor.rgb for r in (8, 9, 10)] == ["00000000", RED,
                                                                         "00000000"]
    assert marked["A13"].value == "Ghi chú: số liệu đến ngày 20/5." and marked["A13"].font.i
    assert "NGƯỜI LẬP BIỂU" not in [c.value for row in marked.iter_rows() for c in row]


def test_table_odd_values(tmp_path):
    frame = pd.DataFrame({
        "a": pd.array([1, None, 3], dtype="Int64"),
        "b": [np.float32(1.5), np.float64("nan"), float("inf")],
        "c": [pd.Timestamp("2026-01-02 08:30", tz="Asia/Ho_Chi_Minh"), pd.NaT, np.nan],
        "d": [pd.NA, "x", 7],
    })
    cols = [Col("a", "A", kind="int", total=True), Col("b", "B", kind="number"),
            Col("c", "C", kind="date"), Col("d", "D")]
    ws = openpyxl.load_workbook(_book(tmp_path / "a.xlsx", S=dict(
        title="T", frame=frame, cols=cols, highlight=pd.Series([pd.NA, True, np.nan]))))["S"]
    assert [c.value for c in ws[8]] == [1, 1.5, dt.datetime(2026, 1, 2, 8, 30), None]
    assert ws["C8"].number_format == "dd/mm/yyyy hh:mm"
    assert [c.value for c in ws[9]] == [None, None, None, "x"]
    assert [ws["B10"].value, ws["D10"].value] == [None, 7]
    assert ws["A11"].value == 4
    assert [ws.cell(r, 1).fill.fgColor.rgb for r in (8, 9, 10)] == ["00000000", RED, "00000000"]
    _no_formulas(tmp_path / "a.xlsx")


def test_table_narrow_and_single_column(tmp_path):
    path = _book(tmp_path / "a.xlsx",
                 One=dict(title="T", frame=pd.DataFrame({"u": ["A"]}), cols=[Col("u", "Đơn vị")]),
                 Two=dict(title="T", frame=pd.DataFrame({"n": [1], "u": ["A"]}),
                          cols=[Col("n", "Stt", 5, "int"), Col("u", "Đơn vị", 20)]))
    wb = openpyxl.load_workbook(path)
    assert wb["One"]["A1"].value == "UBND XÃ TÂN LẬP" and wb["One"]["B1"].value == NATION
    assert wb["One"]["A8"].value == "A"
    two = wb["Two"]
    widths = [two.column_dimensions[k].width for k in "AB"]
    assert sum(widths) >= 89 and widths[1] > 3 * widths[0]  # widened, proportions kept
    assert two["B1"].value == NATION


def test_letterhead_of_office():
    office = Office(name="Phòng Giáo dục và Đào tạo", parent="UBND huyện Tân Lập", level="huyen",
                    place="Tân Lập", signer="Trưởng phòng")
    lh = Letterhead.of(office, dt.date(2026, 1, 9))
    assert (lh.parent, lh.office, lh.signer) == (office.parent, office.name, office.signer)
    assert lh.date_line == "Tân Lập, ngày 09 tháng 01 năm 2026"


def test_table_signature_block(tmp_path):
    path = _book(tmp_path / "a.xlsx", S=dict(title="T", frame=_units(), cols=_cols()))
    ws = openpyxl.load_workbook(path)["S"]
    assert ws["A13"].value == "NGƯỜI LẬP BIỂU" and ws["A14"].value == "(Ký, ghi rõ họ tên)"
    assert ws["C13"].value == "TRƯỞNG PHÒNG" and ws["C14"].value == "(Ký, ghi rõ họ tên)"
    assert {"A13:B13", "C13:G13"} <= {str(r) for r in ws.merged_cells.ranges}


def test_formula_looking_strings_stay_strings(tmp_path):
    frame = pd.DataFrame({"a": HOSTILE})
    path = tmp_path / "a.xlsx"
    with ReportBook(path, LETTERHEAD, "T") as book:
        book.table_sheet("S", "T", frame, [Col("a", "Giá trị", 30)])
        book.source_sheet("Copy", [HOSTILE], {(0, 0): ("error", "=1+1")})
    wb = openpyxl.load_workbook(path)
    cells = [wb["S"].cell(8 + i, 1) for i in range(len(HOSTILE))] + list(wb["Copy"][1])
    assert [c.value for c in cells] == HOSTILE * 2
    assert all(c.data_type == "s" and c.hyperlink is None for c in cells)
    _no_formulas(path)


@pytest.mark.parametrize("name", ["", "x" * 32, "a/b", "a:b", "[x]", "'x", "History"])
def test_sheet_name_validation(tmp_path, name):
    with ReportBook(tmp_path / "a.xlsx", LETTERHEAD, "T") as book, pytest.raises(ValueError):
        book.table_sheet(name, "T", _units(), _cols())


def test_sheet_name_duplicate_raises(tmp_path):
    with ReportBook(tmp_path / "a.xlsx", LETTERHEAD, "T") as book:
        book.table_sheet("Đơn vị", "T", _units(), _cols())
        with pytest.raises(ValueError):
            book.findings_sheet("ĐƠN VỊ", [], title="T")


def test_date_line_forms():
    assert Letterhead("A", "B", "Tân Lập", date=dt.date(2026, 3, 5)).date_line == (
        "Tân Lập, ngày 05 tháng 3 năm 2026")
    assert Letterhead("A", "B", "Tân Lập", date=dt.date(2026, 2, 1)).date_line == (
        "Tân Lập, ngày 01 tháng 02 năm 2026")
    assert Letterhead("A", "B", "Tân Lập").date_line == "Tân Lập, ngày … tháng … năm …"
    assert Letterhead("A", "B", "").date_line == "Ngày … tháng … năm …"


def test_same_inputs_give_identical_files(tmp_path):
    one = _book(tmp_path / "1.xlsx", S=dict(title="T", frame=_units(), cols=_cols(True)))
    two = _book(tmp_path / "2.xlsx", S=dict(title="T", frame=_units(), cols=_cols(True)))
    assert one.read_bytes() == two.read_bytes()


def test_failed_book_writes_nothing(tmp_path):
    path, old = tmp_path / "a.xlsx", tmp_path / "old.xlsx"
    old.write_bytes(b"previous run")
    for target in (path, old):
        with pytest.raises(KeyError), ReportBook(target, LETTERHEAD, "T") as book:
            book.table_sheet("S", "T", _units(), _cols())
            raise KeyError("boom")
    assert not path.exists() and old.read_bytes() == b"previous run"


# Findings sheet


def test_findings_sheet_rows_and_fills(tmp_path):
    path = tmp_path / "a.xlsx"
    with ReportBook(path, LETTERHEAD, "T") as book:
        book.findings_sheet("Lỗi", _findings(), title="DANH SÁCH LỖI")
        book.findings_sheet("Của trường", _findings()[:1], title="LỖI", include_unit=False)
    wb = openpyxl.load_workbook(path)
    ws = wb["Lỗi"]
    assert ws["A6"].value == "1 lỗi, 1 cảnh báo"
    # The finding code is for tdkt's people: on screen, last, outside the print area.
    assert [c.value for c in ws[8]] == ["Mã đơn vị", "Tệp", "Trang tính", "Ô", "Mức độ",
                                        "Giá trị tìm thấy", "Cần", "Nội dung", "Cách sửa",
                                        "Mã lỗi"]
    assert [c.value for c in ws[9]][:6] == ["MN01", "mn-hoa-sen.xlsx", "Cá nhân", "F7",
                                           "Cảnh báo", "=1+1"]
    assert ws["J9"].value == "bad-date" and "!$A$1:$I$" in ws.print_area
    assert ws["F9"].data_type == "s"
    assert [c.value for c in ws[10]][:5] == ["TH01", "th-tan-lap.xlsx", "Cá nhân", "E12", "Lỗi"]
    assert ws["A9"].fill.fgColor.rgb == YELLOW and ws["J10"].fill.fgColor.rgb == RED
    assert ws.freeze_panes == "A9" and ws.auto_filter.ref == "A8:J10"
    own = wb["Của trường"]
    assert own["A8"].value == "Tệp" and own["D9"].value == "Lỗi"
    _no_formulas(path)


def test_findings_sheet_without_findings(tmp_path):
    path = tmp_path / "a.xlsx"
    with ReportBook(path, LETTERHEAD, "T") as book:
        book.findings_sheet("Lỗi", [], title="DANH SÁCH LỖI")
    ws = openpyxl.load_workbook(path)["Lỗi"]
    assert ws["A7"].value == "Mã đơn vị"
    assert ws["A8"].value == "Không có lỗi hay cảnh báo nào."


# Source sheet


def test_source_sheet_copies_values_and_marks_cells(tmp_path):
    grid = [
        ["Stt", "Họ và tên", "Ngày sinh", "Danh hiệu", None],
        [1, "Nguyễn Văn An", dt.date(1980, 1, 2), "LĐTT1", None],
        [2.5, "Trần Thị Bình", dt.datetime(1990, 12, 31), None, True],
    ]
    marks = {(1, 3): ("error", "Giá trị không có trong danh mục"),
             (2, 3): ("warning", "Chưa điền danh hiệu"),
             (4, 0): ("error", "Thiếu dòng")}
    path = tmp_path / "a.xlsx"
    with ReportBook(path, LETTERHEAD, "T") as book:
        book.source_sheet("Cá nhân", grid, marks)
    ws = openpyxl.load_workbook(path)["Cá nhân"]
    assert [c.value for c in ws[1]][:4] == grid[0][:4]
    assert [c.value for c in ws[2]][:4] == [1, "Nguyễn Văn An", dt.datetime(1980, 1, 2), "LĐTT1"]
    assert [c.value for c in ws[3]] == [2.5, "Trần Thị Bình", dt.datetime(1990, 12, 31), None,
                                        True]
    assert ws["C2"].number_format == "dd/mm/yyyy"
    assert ws["D2"].fill.fgColor.rgb == RED and ws["D3"].fill.fgColor.rgb == YELLOW
    assert ws["A5"].fill.fgColor.rgb == RED and ws["A5"].value is None
    assert "Giá trị không có trong danh mục" in ws["D2"].comment.text
    assert ws["D2"].comment.author == "tdkt"
    assert "Chưa điền danh hiệu" in ws["D3"].comment.text
    assert ws["B2"].comment is None and ws["B2"].fill.fgColor.rgb == "00000000"
    assert ws.freeze_panes is None
    assert ws.column_dimensions["B"].width >= len("Nguyễn Văn An")


# Rendering


def _sample_book(path: Path) -> Path:
    frame = pd.concat([_units()] * 6, ignore_index=True)
    frame["stt"] = range(1, len(frame) + 1)
    with ReportBook(path, LETTERHEAD, "Tổng hợp thi đua") as book:
        book.table_sheet("Đơn vị", "TỔNG HỢP ĐĂNG KÝ THI ĐUA NĂM HỌC 2025-2026", frame,
                         _cols(True), subtitle="(Kèm theo báo cáo của Phòng Văn hóa – Xã hội)",
                         notes=["Tỉ lệ = số đăng ký / số CB-GV-NV của đơn vị."],
                         highlight=frame["coverage"].lt(0.95))
        book.findings_sheet("Lỗi", _findings(), title="DANH SÁCH LỖI VÀ CẢNH BÁO")
        staff = [[i, f"Nguyễn Văn An {i}", "Giáo viên, Trường TH Tân Lập", "LĐTT",
                  dt.date(1980, 1, i)] for i in range(1, 16)]
        book.source_sheet("Tệp của trường",
                          [["Stt", "Họ và tên", "Chức vụ, đơn vị", "Danh hiệu", "Ngày sinh"],
                           *staff],
                          {(1, 3): ("error", "Giá trị “LĐTT1” không có trong danh mục."),
                           (2, 4): ("warning", "Ngày sinh cần kiểm tra lại.")})
    return path


@pytest.mark.libreoffice
def test_render_with_libreoffice(tmp_path):
    soffice = shutil.which("soffice")
    if not soffice or not shutil.which("pdftoppm") or not shutil.which("pdftotext"):
        pytest.skip("LibreOffice (soffice) or poppler-utils is not installed")
    book = _sample_book(tmp_path / "mau.xlsx")
    subprocess.run([soffice, "--headless", f"-env:UserInstallation=file://{tmp_path}/lo",
                    "--convert-to", "pdf", "--outdir", str(tmp_path), str(book)],
                   check=True, timeout=180, capture_output=True)
    pdf = tmp_path / "mau.pdf"
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(pdf), str(tmp_path / "page")],
                   check=True, timeout=120)
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) >= 3 and all(p.stat().st_size > 5_000 for p in pages)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, timeout=60,
                          capture_output=True, text=True).stdout
    assert NATION in text and "#####" not in text
