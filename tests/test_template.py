"""Templates: made from the form definition, read back with openpyxl and python-calamine."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils import range_boundaries
from python_calamine import CalamineWorkbook

from pipeline import settings
from pipeline.config import Office
from pipeline.forms.definitions import Column, Form, VocabValue, load_forms
from pipeline.forms.template import UnitInfo, template_filename, write_template, write_templates

FORMS = load_forms()
FORM = FORMS.current("dang-ky")
OFFICE = Office(name="Phòng Văn hóa – Xã hội", parent="UBND XÃ TÂN LẬP", level="xa",
                place="Tân Lập")
UNIT = UnitInfo(code="03101", name="Trường Tiểu học Tân Lập", level="TH", headcount=12)
YEAR = "2025-2026"
LIST_REF = re.compile(r"^'?(?P<sheet>[^'!]+)'?!(?P<range>\$[A-Z]+\$\d+:\$[A-Z]+\$\d+)$")


def _write(tmp_path: Path, form: Form = FORM, vocabs=None, unit: UnitInfo = UNIT) -> Path:
    path = tmp_path / template_filename(form, unit)
    return write_template(form, vocabs or FORMS.vocabs, unit, path, YEAR, OFFICE)


def _header_row(sheet) -> int:
    """The documented layout: header fields from row 6, a blank row, then the table header."""
    return 6 + len(sheet.fields) + 1 if sheet.fields else 6


def _data_rows(sheet, unit: UnitInfo = UNIT) -> int:
    if sheet.fields:
        return settings.TEMPLATE_COLLECTIVE_ROWS
    return max(settings.TEMPLATE_MIN_ROWS, unit.headcount + settings.TEMPLATE_SPARE_ROWS)


def _grid(path: Path, sheet: str) -> list[list]:
    book = CalamineWorkbook.from_path(str(path))
    return book.get_sheet_by_name(sheet).to_python(skip_empty_area=False)


def _list_values(path: Path, ref: str) -> list[str]:
    """The values a list validation offers, read from the lists sheet with calamine."""
    match = LIST_REF.match(ref)
    assert match, ref
    min_col, min_row, max_col, max_row = range_boundaries(match["range"].replace("$", ""))
    assert min_col == max_col
    grid = _grid(path, match["sheet"])
    return [grid[r - 1][min_col - 1] for r in range(min_row, max_row + 1)]


def _validation_for(ws, cells: str):
    """The data validation whose ranges include every cell of `cells`."""
    min_col, min_row, max_col, max_row = range_boundaries(cells)
    for dv in ws.data_validations.dataValidation:
        for rng in dv.sqref.ranges:
            if (rng.min_col <= min_col and max_col <= rng.max_col
                    and rng.min_row <= min_row and max_row <= rng.max_row):
                return dv
    return None


# General


def test_template_meta_sheet_identifies_form_unit_and_year(tmp_path):
    path = _write(tmp_path)
    wb = openpyxl.load_workbook(path)
    meta = wb[settings.META_SHEET]
    assert [meta.cell(1, c).value for c in range(1, 5)] == ["dang-ky", "2025.1", "03101", YEAR]
    assert meta.sheet_state == "veryHidden"
    assert meta.protection.sheet
    assert _grid(path, settings.META_SHEET)[0][:4] == ["dang-ky", "2025.1", "03101", YEAR]
    states = {m.name: str(m.visible) for m in CalamineWorkbook.from_path(str(path)).sheets_metadata}
    assert states[settings.META_SHEET].endswith("VeryHidden")
    assert states[settings.LISTS_SHEET].endswith(".Hidden")


def test_template_sheet_order_active_sheet_and_properties(tmp_path):
    wb = openpyxl.load_workbook(_write(tmp_path))
    names = [s.name for s in FORM.sheets]
    expected = [settings.INSTRUCTIONS_SHEET, *names, settings.LISTS_SHEET, settings.META_SHEET]
    assert wb.sheetnames == expected
    assert wb.active.title == FORM.sheet("unit").name
    assert [ws.title for ws in wb.worksheets if ws.sheet_view.tabSelected] == [wb.active.title]
    assert wb.properties.title == FORM.title
    assert wb.properties.creator == "tdkt"


def test_template_unit_fields_are_prefilled_and_locked(tmp_path):
    path = _write(tmp_path)
    ws = openpyxl.load_workbook(path)[FORM.sheet("unit").name]
    rows = range(6, 6 + len(FORM.sheet("unit").fields))
    fields = {ws.cell(r, 2).value: ws.cell(r, 3) for r in rows}
    assert list(fields) == [f.header for f in FORM.sheet("unit").fields]
    code = fields["Mã đơn vị"]
    assert code.value == "03101" and code.data_type == "s" and code.number_format == "@"
    assert code.protection.locked
    assert fields["Tên đơn vị"].value == UNIT.name and fields["Tên đơn vị"].protection.locked
    assert fields["Cấp học"].value == FORMS.vocabs["levels"].label_of("TH")
    report_date = fields["Ngày lập"]
    assert report_date.value is None and not report_date.protection.locked
    assert report_date.number_format == "dd/mm/yyyy"
    assert _validation_for(ws, report_date.coordinate).type == "date"
    grid = _grid(path, FORM.sheet("unit").name)
    assert grid[5][1:3] == ["Mã đơn vị", "03101"]  # calamine sees text, leading zero kept


@pytest.mark.parametrize("sheet", FORM.sheets, ids=lambda s: s.id)
def test_template_header_row_follows_form(tmp_path, sheet):
    path = _write(tmp_path)
    row = _header_row(sheet)
    headers = [c.header for c in sheet.columns]
    assert _grid(path, sheet.name)[row - 1][: len(headers)] == headers
    ws = openpyxl.load_workbook(path)[sheet.name]
    assert [ws.cell(row, i).value for i in range(1, len(headers) + 1)] == headers
    assert ws.freeze_panes == f"A{row + 1}"
    assert all(ws.cell(row, i).font.bold for i in range(1, len(headers) + 1))
    widths = [ws.column_dimensions[chr(64 + i)].width for i in range(1, len(headers) + 1)]
    assert widths == [c.width for c in sheet.columns]


@pytest.mark.parametrize("sheet", FORM.sheets, ids=lambda s: s.id)
def test_template_dropdowns_offer_vocabulary_labels(tmp_path, sheet):
    path = _write(tmp_path)
    ws = openpyxl.load_workbook(path)[sheet.name]
    first, last = _header_row(sheet) + 1, _header_row(sheet) + _data_rows(sheet)
    choices = [(i, c) for i, c in enumerate(sheet.columns, start=1) if c.type == "choice"]
    assert choices
    for i, column in choices:
        letter = chr(64 + i)
        dv = _validation_for(ws, f"{letter}{first}:{letter}{last}")
        assert dv is not None and dv.type == "list", column.header
        assert _list_values(path, dv.formula1) == FORMS.vocabs[column.choices].labels
        assert not dv.showDropDown  # openpyxl's False keeps the in-cell arrow
        assert dv.errorStyle == "stop" and dv.showErrorMessage
        assert "danh mục" in dv.error and dv.promptTitle == column.header[:32]
        assert 0 < len(dv.prompt) <= 255


def test_template_dates_and_numbers_are_checked(tmp_path):
    path = _write(tmp_path)
    ws = openpyxl.load_workbook(path)[FORM.sheet("staff").name]
    birth = 1 + FORM.sheet("staff").column_ids.index("birth_date")
    cell = ws.cell(_header_row(FORM.sheet("staff")) + 1, birth)
    assert cell.number_format == "dd/mm/yyyy"
    dv = _validation_for(ws, cell.coordinate)
    assert (dv.type, dv.operator, dv.formula1, dv.formula2) == ("date", "between", "14611", "47848")
    unit_ws = openpyxl.load_workbook(path)[FORM.sheet("unit").name]
    members = 1 + FORM.sheet("unit").column_ids.index("members")
    dv = _validation_for(unit_ws, unit_ws.cell(_header_row(FORM.sheet("unit")) + 1, members)
                         .coordinate)
    assert (dv.type, dv.formula1, dv.formula2) == ("whole", "1", "1000")


@pytest.mark.parametrize("sheet", FORM.sheets, ids=lambda s: s.id)
def test_template_only_input_cells_are_unlocked(tmp_path, sheet):
    ws = openpyxl.load_workbook(_write(tmp_path))[sheet.name]
    header = _header_row(sheet)
    last = header + _data_rows(sheet)
    assert ws.max_row == (last + 4 if sheet.fields else last)  # signature block on the unit sheet
    assert ws.protection.sheet and not ws.protection.password
    assert not ws.protection.formatColumns and not ws.protection.formatRows
    assert ws.protection.sort and ws.protection.autoFilter
    for i, column in enumerate(sheet.columns, start=1):
        assert ws.cell(header, i).protection.locked
        assert ws.cell(1, i).protection.locked
        for row in (header + 1, last):
            assert ws.cell(row, i).protection.locked == column.locked
            assert ws.cell(row, i).border.left.style == "thin"
        assert ws.cell(last + 1, i).protection.locked


def test_template_staff_rows_follow_headcount(tmp_path):
    sheet = FORM.sheet("staff")
    big = dataclasses.replace(UNIT, headcount=100)
    ws = openpyxl.load_workbook(_write(tmp_path, unit=big))[sheet.name]
    assert ws.max_row == _header_row(sheet) + 130
    assert not ws.cell(_header_row(sheet) + 130, 2).protection.locked


def test_template_unit_sheet_first_row_and_signature(tmp_path):
    path = _write(tmp_path)
    sheet = FORM.sheet("unit")
    grid = _grid(path, sheet.name)
    first = dict(zip(sheet.column_ids, grid[_header_row(sheet)], strict=False))
    assert first["seq"] == 1
    assert first["collective_name"] == UNIT.name
    assert first["collective_kind"] == FORMS.vocabs["collective_kinds"].label_of("don_vi")
    assert not any(grid[_header_row(sheet) + 1])  # the other rows are for the school
    texts = [v for row in grid for v in row if isinstance(v, str) and v]
    for text in ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập – Tự do – Hạnh phúc",
                 "THỦ TRƯỞNG ĐƠN VỊ", "(Ký tên, đóng dấu)", UNIT.name.upper(),
                 f"{sheet.title} NĂM HỌC {YEAR}"):
        assert text in texts
    staff = _grid(path, FORM.sheet("staff").name)
    assert "THỦ TRƯỞNG ĐƠN VỊ" not in [v for row in staff for v in row]
    assert not any(any(row) for row in staff[_header_row(FORM.sheet("staff")):])  # STT not filled


@pytest.mark.parametrize("sheet", FORM.sheets, ids=lambda s: s.id)
def test_template_print_setup_is_a4_landscape(tmp_path, sheet):
    ws = openpyxl.load_workbook(_write(tmp_path))[sheet.name]
    assert ws.page_setup.paperSize == 9 and ws.page_setup.orientation == "landscape"
    assert (ws.page_setup.fitToWidth, ws.page_setup.fitToHeight) == (1, 0)
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    row = _header_row(sheet)
    assert ws.print_title_rows == f"${row}:${row}"
    assert ws.print_options.horizontalCentered


def test_template_instructions_list_every_column(tmp_path):
    path = _write(tmp_path)
    grid = _grid(path, settings.INSTRUCTIONS_SHEET)
    texts = [v for row in grid for v in row if isinstance(v, str) and v]
    assert all(unicodedata.is_normalized("NFC", t) for t in texts)
    rows = {row[1]: row for row in grid if len(row) > 3}
    for sheet in FORM.sheets:
        assert any(sheet.name in t for t in texts)
        for column in (*sheet.fields, *sheet.columns):
            assert column.header in rows, column.header
        for column in sheet.columns:
            if column.type == "choice":
                allowed = ", ".join(FORMS.vocabs[column.choices].labels)
                assert allowed in [r[3] for r in grid if r[1] == column.header]
    joined = "\n".join(texts)
    for phrase in ("dd/mm/yyyy", "danh sách thả xuống", ".xlsx", "Không đổi tên",
                   "Tên sáng kiến/đề tài dự kiến", "Chiến sĩ thi đua cơ sở", OFFICE.name):
        assert phrase in joined


def test_template_has_no_formulas(tmp_path):
    evil = dataclasses.replace(UNIT, name="=HYPERLINK(\"x\")")
    wb = openpyxl.load_workbook(_write(tmp_path, unit=evil))
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            assert all(c.data_type != "f" for c in row), ws.title


def test_template_follows_a_changed_form(tmp_path):
    vocabs = dict(FORMS.vocabs)
    sexes = vocabs["sexes"]
    vocabs["sexes"] = dataclasses.replace(
        sexes, values=(*sexes.values, VocabValue(code="khac", label="Khác")))
    vocabs["unions"] = dataclasses.replace(
        sexes, name="unions", label="Đoàn thể",
        values=(VocabValue("cd", "Công đoàn"), VocabValue("dtn", "Đoàn thanh niên")))
    staff = FORM.sheet("staff")
    new = Column(id="union", header="Đoàn thể tham gia", type="choice", choices="unions", width=18)
    changed = dataclasses.replace(staff, columns=(*staff.columns, new))
    form = dataclasses.replace(FORM, sheets=tuple(
        changed if s.id == "staff" else s for s in FORM.sheets))
    path = _write(tmp_path, form=form, vocabs=vocabs)
    ws = openpyxl.load_workbook(path)[staff.name]
    row = _header_row(staff)
    col = len(changed.columns)
    assert _grid(path, staff.name)[row - 1][col - 1] == "Đoàn thể tham gia"
    letter = chr(64 + col)
    dv = _validation_for(ws, f"{letter}{row + 1}:{letter}{row + _data_rows(staff)}")
    assert _list_values(path, dv.formula1) == ["Công đoàn", "Đoàn thanh niên"]
    sex = chr(65 + staff.column_ids.index("sex"))
    dv = _validation_for(ws, f"{sex}{row + 1}")
    assert _list_values(path, dv.formula1) == ["Nam", "Nữ", "Khác"]
    guide = [v for r in _grid(path, settings.INSTRUCTIONS_SHEET) for v in r]
    assert "Đoàn thể tham gia" in guide and "Nam, Nữ, Khác" in guide


def test_write_templates_one_file_per_unit(tmp_path):
    units = [dataclasses.replace(UNIT, code="03102", name="Trường Mầm non Hoa Sen", level="MN"),
             UNIT]
    paths = write_templates(FORMS, "dang-ky", units, tmp_path / "mau", YEAR, OFFICE)
    assert [p.name for p in paths] == ["dang-ky_03101.xlsx", "dang-ky_03102.xlsx"]
    assert _grid(paths[1], settings.META_SHEET)[0][:3] == ["dang-ky", FORM.version, "03102"]
    assert _grid(paths[1], FORM.sheet("unit").name)[7][2] == "MN"


# LibreOffice


@pytest.mark.libreoffice
def test_template_renders_in_libreoffice(tmp_path):
    soffice = shutil.which("soffice")
    if not soffice or not shutil.which("pdftoppm"):
        pytest.skip("Không có LibreOffice/pdftoppm (soffice/pdftoppm not on PATH)")
    path = _write(tmp_path)
    subprocess.run([soffice, f"-env:UserInstallation=file://{tmp_path}/lo", "--headless",
                    "--convert-to", "pdf", "--outdir", str(tmp_path), str(path)],
                   check=True, timeout=180, capture_output=True)
    pdf = path.with_suffix(".pdf")
    assert pdf.exists()
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "2", str(pdf),
                    str(tmp_path / "page")], check=True, timeout=60)
    pngs = sorted(tmp_path.glob("page*.png"))
    assert len(pngs) == 2 and all(p.stat().st_size > 5_000 for p in pngs)
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, timeout=60,
                              capture_output=True, text=True).stdout
        assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in text
        assert UNIT.name in text and "###" not in text
