"""The Phòng workbooks of the samples as they come out of the printer (issue 14): A4, fitted to
the page width at a readable size, header rows repeated, one height for the rows of a list,
whole numbers for counts, rule names instead of rule ids, and a page count an office can print.

The sample consolidations are the session fixtures of conftest.py; the three workbooks are
printed to PDF by one LibreOffice call (tests/render.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils import range_boundaries

from .conftest import table_rows
from .render import page_problems, pdf_pages, render_pdfs

# Measured on the samples before the change: 462 pages (results, 287 of them the rule-by-rule
# audit sheet, ~10 proposals a page) and 59 (registration, the 1,225 registered people in
# small type). After: 59 and 53. The issue asks ≤ 80 for the results workbook. The
# registration limit: 1,225 registered people at one line each take 26 pages, their
# initiatives 5, the rest about 22; 65 leaves room for a few more sheets, not for a list
# printed two lines a row again (that alone would add 26 pages).
RESULTS_PAGES = 80
REGISTRATION_PAGES = 65
# Printed widths (Excel character units) that keep A4 at 85% scale or more. The audit
# workbook, a working file read on screen, prints one line a decision at about 80%.
MAX_WIDTH = {"landscape": 175, "portrait": 120}
AUDIT_WIDTH = 190
# The lists of a workbook: one row per person, collective or proposal.
LISTS = {
    "registration": ["Cá nhân đăng ký", "Sáng kiến đăng ký", "Cá nhân chưa đăng ký",
                     "Tập thể đăng ký"],
    "results": ["Đề nghị cá nhân", "Đề nghị tập thể", "Cần xem lại", "Đăng ký – đề nghị"],
}
# Count columns: (sheet, header) of the samples' workbooks.
COUNTS = {
    "registration": [("Theo cấp học", "Trong danh mục"), ("Theo cấp học", "Số đăng ký"),
                     ("Theo đơn vị", "Số CB-GV-NV"), ("Tập thể đăng ký", "Số thành viên")],
    "results": [("Xếp hạng khối", "Số CSTĐCS"), ("Hạn mức", "Hạn mức"),
                ("Theo cấp học", "Đã nộp")],
}
WHOLE = ("0", "#,##0")


@pytest.fixture(scope="module")
def printed(sample_run, results_run, tmp_path_factory) -> dict[str, tuple[Path, list[str]]]:
    """{name: (workbook, pages)} for both Phòng workbooks and the audit workbook."""
    root = tmp_path_factory.mktemp("print")
    sources = {"registration": sample_run[1] / "tong-hop-phong.xlsx",
               "results": results_run[1] / "tong-hop-phong.xlsx",
               "audit": results_run[1] / "doi-chieu-quy-tac.xlsx"}
    books = {}
    for name, source in sources.items():  # distinct stems for LibreOffice
        books[name] = root / f"{name}.xlsx"
        shutil.copy(source, books[name])
    pdfs = render_pdfs(books.values(), root / "pdf")
    return {name: (book, pdf_pages(pdfs[book])) for name, book in books.items()}


# Pages


def test_print_results_workbook_fits_in_80_pages(printed):
    _, pages = printed["results"]
    assert 10 < len(pages) <= RESULTS_PAGES


def test_print_registration_workbook_page_count(printed):
    _, pages = printed["registration"]
    assert 10 < len(pages) <= REGISTRATION_PAGES


@pytest.mark.parametrize("name", ["registration", "results"])
def test_print_pages_show_no_hash_no_rule_id_no_english(printed, name):
    _, pages = printed[name]
    assert page_problems(pages) == []
    assert all("Trang " in page for page in pages)  # the footer numbers every page


def test_print_proposal_lists_name_rules_in_vietnamese(printed, results_run):
    result, _ = results_run
    book, pages = printed["results"]
    rules = result.rules
    review = table_rows(book, "Cần xem lại", "STT")
    assert len(review) == (result.verdicts["result"] != "pass").sum()
    for row in review:
        ids = [r.strip() for r in row["Mã quy tắc"].split(",")]
        assert row["Quy tắc quyết định"] == ", ".join(rules.rule(r).name for r in ids)
    # The passes resting on an unverified rule: said once under the list, by the rule's name.
    text = " ".join("\n".join(pages).split())
    months = rules.rule("lao_dong_tien_tien.min_months")
    assert months.label and f"quy định chưa xác minh ({months.label}" in text
    assert months.id not in text


def test_print_audit_sheet_is_its_own_workbook(printed, results_run):
    result, out = results_run
    book, pages = printed["audit"]
    assert "Quyết định theo quy tắc" not in openpyxl.load_workbook(
        printed["results"][0], read_only=True).sheetnames
    assert openpyxl.load_workbook(book, read_only=True).sheetnames == ["Quyết định theo quy tắc"]
    assert len(pages) > 10 and page_problems(pages) == []
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert any(o.endswith("doi-chieu-quy-tac.xlsx") for o in manifest["outputs"])
    # Nothing lost: one row per decision, the rule ids kept on screen after the printed columns.
    ws = openpyxl.load_workbook(book, read_only=True)["Quyết định theo quy tắc"]
    rows = list(ws.iter_rows(values_only=True))
    head = next(i for i, r in enumerate(rows) if r[0] == "STT")
    ids = rows[head].index("Mã quy tắc")
    body = [r for r in rows[head + 1:] if r[0] is not None]
    assert len(body) == len(result.decisions)
    assert {r[ids] for r in body} == set(result.decisions["rule_id"])


# Page setup, read back with openpyxl


def _last_printed(ws) -> int:
    """The last column of the print area (the last used column without one)."""
    area = ws.print_area
    if not area:
        return ws.max_column
    area = area if isinstance(area, str) else area[0]
    return range_boundaries(area.split("!")[-1].replace("$", ""))[2]


def _printed_width(ws) -> float:
    """The widths of the columns inside the print area."""
    last = _last_printed(ws)
    widths = {}
    for dim in ws.column_dimensions.values():
        if dim.min is not None and dim.width:
            for col in range(dim.min, dim.max + 1):
                widths[col] = dim.width
    return sum(widths.get(col, 8.43) for col in range(1, last + 1))


@pytest.mark.parametrize("name", ["registration", "results", "audit"])
def test_print_every_sheet_is_a4_fitted_to_width_with_repeated_header(printed, name):
    book = openpyxl.load_workbook(printed[name][0])
    for ws in book.worksheets:
        setup = ws.page_setup
        assert str(setup.paperSize) == "9", ws.title  # A4
        assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        assert setup.fitToWidth in (None, 1) and setup.fitToHeight == 0, ws.title
        assert ws.print_title_rows, ws.title  # header rows repeated on every page
        assert "&P/&N" in ws.oddFooter.center.text, ws.title
        assert ws.freeze_panes, ws.title
        orientation = setup.orientation or "portrait"
        limit = AUDIT_WIDTH if name == "audit" else MAX_WIDTH[orientation]
        assert _printed_width(ws) <= limit, (ws.title, orientation)


def _body(ws) -> tuple[list[str], list[int]]:
    """A table's header cells and the numbers of its body rows."""
    head = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == "STT")
    headers = [ws.cell(head, c).value for c in range(1, ws.max_column + 1)]
    if ws.cell(head + 1, 1).value is None:  # a grouped header: its lower row names the columns
        headers = [ws.cell(head + 1, c).value or h for c, h in enumerate(headers, start=1)]
        head += 1
    rows = []
    for r in range(head + 1, ws.max_row + 1):
        if ws.cell(r, 1).value in (None, "Tổng cộng"):
            break
        rows.append(r)
    return headers, rows


@pytest.mark.parametrize("name", ["registration", "results"])
def test_print_list_rows_share_one_height(printed, name):
    book = openpyxl.load_workbook(printed[name][0])
    for sheet in LISTS[name]:
        ws = book[sheet]
        _, rows = _body(ws)
        heights = {ws.row_dimensions[r].height for r in rows}
        assert len(rows) > 5 and len(heights) == 1 and None not in heights, (sheet, heights)


@pytest.mark.parametrize("name", ["registration", "results"])
def test_print_counts_are_whole_numbers(printed, name):
    book = openpyxl.load_workbook(printed[name][0])
    for sheet, header in COUNTS[name]:
        ws = book[sheet]
        head = next(r for r in range(1, 20) for c in range(1, ws.max_column + 1)
                    if ws.cell(r, c).value == header)
        col = next(c for c in range(1, ws.max_column + 1) if ws.cell(head, c).value == header)
        cells = [ws.cell(r, col) for r in range(head + 1, ws.max_row + 1)
                 if isinstance(ws.cell(r, col).value, int | float)]
        assert cells, (sheet, header)
        assert {c.number_format for c in cells} <= set(WHOLE), (sheet, header)
        assert all(float(c.value).is_integer() for c in cells), (sheet, header)


def test_print_proposal_list_keeps_every_column_on_screen(printed, results_run):
    """Presentation only: the rules, reasons and citations of each proposal are still in the
    sheet, after the printed columns (outside the print area)."""
    result, _ = results_run
    ws = openpyxl.load_workbook(printed["results"][0])["Đề nghị cá nhân"]
    headers, rows = _body(ws)
    last = _last_printed(ws)
    for header in ("Lý do", "Căn cứ", "Mã quy tắc", "Quy tắc quyết định", "Thẩm quyền quyết định",
                   "Cấp học"):
        assert headers.index(header) + 1 > last, header
    assert headers[:last] == ["STT", "Họ và tên", "Chức vụ", "Đơn vị", "Xếp loại", "Đề nghị",
                              "Kết quả"]
    people = result.verdicts[result.verdicts["subject"] == "person"]
    assert len(rows) == len(people)
