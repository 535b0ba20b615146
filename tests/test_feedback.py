"""Feedback a school fixes in place (issue 14): the copy of its workbook keeps its layout and
hidden form id, each finding links to its marked cell and says how to fix it, codes stay in the
last column, and the copy corrected with openpyxl and sent back is consolidated cleanly."""

from __future__ import annotations

import datetime as dt
import shutil
import unicodedata
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from openpyxl.formatting.rule import FormulaRule
from openpyxl.styles import PatternFill
from openpyxl.workbook.defined_name import DefinedName

from pipeline.config import load_config
from pipeline.engine import consolidate
from pipeline.findings import Severity, catalogue
from pipeline.reports import feedback
from pipeline.reports.feedback import Table, write_feedback
from pipeline.reports.workbook import Col
from pipeline.status import UnitStatus

from .conftest import SAMPLES
from .render import page_problems, pdf_pages, render_pdfs
from .sample_inbox import INITIATIVES

STAFF, UNIT = "Cá nhân", "Đơn vị"
LIST_SHEET = "Lỗi cần sửa"
META = "_tdkt"
CODES = set(catalogue())
MARK_FILLS = {"FFFFC7CE", "FFFFF2CC"}  # error, warning
LDTT, CSTDCS = "Lao động tiên tiến", "Chiến sĩ thi đua cơ sở"


def _feedback(sample_run, code: str) -> Path:
    return sample_run[1] / "phan-hoi" / f"{code}.xlsx"


def _list_rows(ws) -> tuple[list[str], list[tuple]]:
    """The header and the rows (cells) of the list of findings."""
    rows = list(ws.iter_rows())
    top = next(i for i, row in enumerate(rows) if row[0].value == "STT")
    header = [c.value for c in rows[top]]
    body = [row for row in rows[top + 1:] if isinstance(row[0].value, int)]
    return header, body


# The copy keeps the school's layout


def test_feedback_copy_keeps_layout_and_form_id(sample_run):
    original = openpyxl.load_workbook(SAMPLES / "hop-thu" / "dang-ky_03001.xlsx")
    copy = openpyxl.load_workbook(_feedback(sample_run, "03001"))
    assert copy.sheetnames[0] == LIST_SHEET and copy.active.title == LIST_SHEET
    assert copy.sheetnames[1:] == original.sheetnames  # the form's names, in its order
    for name in original.sheetnames:
        ours, theirs = copy[name], original[name]
        assert ours.sheet_state == theirs.sheet_state, name
        assert {k: d.width for k, d in ours.column_dimensions.items()} == \
            {k: d.width for k, d in theirs.column_dimensions.items()}, name
        assert sorted(map(str, ours.merged_cells.ranges)) == \
            sorted(map(str, theirs.merged_cells.ranges)), name
        assert {r: d.height for r, d in ours.row_dimensions.items() if d.height} == \
            {r: d.height for r, d in theirs.row_dimensions.items() if d.height}, name
        assert ours.print_title_rows == theirs.print_title_rows, name
        assert ours.freeze_panes == theirs.freeze_panes, name
        for row in theirs.iter_rows():
            for cell in row:
                mine = ours[cell.coordinate]
                assert mine.value == cell.value, (name, cell.coordinate)
                assert (mine.font.name, mine.font.b, mine.number_format, mine.border.left.style) \
                    == (cell.font.name, cell.font.b, cell.number_format, cell.border.left.style)
    staff = copy[STAFF]
    assert [dv.sqref for dv in staff.data_validations.dataValidation] == \
        [dv.sqref for dv in original[STAFF].data_validations.dataValidation]  # dropdowns kept
    meta = copy[META]
    assert meta.sheet_state == "veryHidden"
    assert [c.value for c in meta[1]] == [c.value for c in original[META][1]]
    assert meta["A2"].value == LIST_SHEET  # the sheet the reader skips


def test_feedback_copy_of_file_without_form_id_gets_one(sample_run):
    # "DK thi dua 02005.xlsx": the school deleted the hidden sheet (tests/sample_inbox lost_zero)
    copy = openpyxl.load_workbook(_feedback(sample_run, "02005"))
    assert [c.value for c in copy[META][1]][:3] == ["dang-ky", "2025.1", "02005"]
    # an .xls comes back as .xlsx with the form's sheets and the form id
    xls = openpyxl.load_workbook(_feedback(sample_run, "03004"))
    assert xls.sheetnames == [LIST_SHEET, UNIT, STAFF, META]
    assert xls[META]["C1"].value == "03004"


# The list of findings


def _copies(sample_run) -> list[Path]:
    return sorted(p for p in (sample_run[1] / "phan-hoi").glob("*.xlsx")
                  if len(openpyxl.load_workbook(p, read_only=True).sheetnames) > 1)


def test_feedback_rows_link_to_marked_cells_with_fix(sample_run):
    copies = _copies(sample_run)
    linked = 0
    for path in copies:
        book = openpyxl.load_workbook(path)
        header, rows = _list_rows(book[LIST_SHEET])
        cell_col = header.index("Ô")
        for row in rows:
            link = row[cell_col].hyperlink
            if link is None:
                assert not row[cell_col].value or not row[cell_col].value[-1].isdigit(), \
                    (path.name, row[0].value)  # only a finding with no cell has no link
                continue
            sheet, ref = link.location.rsplit("!", 1)
            target = book[sheet.strip("'")][ref]
            assert target.fill.fgColor.rgb in MARK_FILLS, (path.name, ref)
            comment = target.comment.text
            assert "\nCách sửa: " in comment and len(comment.split("Cách sửa: ")[1]) > 20
            linked += 1
    assert len(copies) >= 10 and linked >= 15
    # The date typed as text says what to type and how (tests/sample_inbox text_dates).
    comment = openpyxl.load_workbook(_feedback(sample_run, "03001"))[STAFF]["C8"].comment.text
    assert "dd/mm/yyyy" in comment and "Định dạng ô C8 là Ngày" in comment


def test_feedback_codes_only_in_last_column(sample_run):
    for path in sorted((sample_run[1] / "phan-hoi").rglob("*.xlsx")):
        book = openpyxl.load_workbook(path)
        header, rows = _list_rows(book[LIST_SHEET])
        assert header[-1] == "Mã lỗi (để tra cứu)"
        for row in book[LIST_SHEET].iter_rows():
            for cell in row[:len(header) - 1]:
                text = str(cell.value or "")
                assert not any(code in text.split() for code in CODES), (path.name, text)
        assert all(row[-1].value in CODES for row in rows)
        for ws in book.worksheets[1:]:
            for row in ws.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (path.name, ws.title, cell.coordinate)
                    if cell.comment:
                        assert not CODES & set(cell.comment.text.split()), cell.coordinate


# Fixed in place and sent back

# The values the generator replaced (tests/sample_inbox.py, seed 2025); each unit's cells as
# named in input_samples/expected.json.
FIXES = {
    "03002": {(STAFF, "C11"): dt.date(1982, 10, 14), (STAFF, "D12"): "Nam"},  # blank_required
    "03007": {(STAFF, "H14"): LDTT},  # free_typed replaced an LĐTT title
    "02001": {(STAFF, "H8"): LDTT, (STAFF, "B12"): "Nguyễn Văn Hùng"},  # tcvn3
    "01003": {(STAFF, "H10"): LDTT, (STAFF, "H23"): CSTDCS},  # no_diacritics
    "02004": {(STAFF, "J21"): INITIATIVES[0]},  # no_initiative: any initiative
    "02005": {(UNIT, "C6"): "02005"},  # lost_zero
    "03004": {},  # an .xls: the copy is an .xlsx already
}


def _fixed(path: Path, code: str, out: Path) -> Path:
    """The feedback copy as a secretary corrects it in Excel."""
    book = openpyxl.load_workbook(path)
    for (sheet, ref), value in FIXES.get(code, {}).items():
        book[sheet][ref].value = value
        if isinstance(value, dt.date):
            book[sheet][ref].number_format = "dd/mm/yyyy"
        elif ref == "C6":
            book[sheet][ref].number_format = "@"
    staff = book[STAFF]
    if code == "03001":  # dates typed as text and as a day number: typed again as dates
        for ref in ("C8", "C9"):
            day, month, year = map(int, staff[ref].value.split("/"))
            staff[ref].value = dt.date(year, month, day)
        staff["C10"].value = dt.date(1899, 12, 30) + dt.timedelta(days=int(staff["C10"].value))
        for ref in ("C8", "C9", "C10"):
            staff[ref].number_format = "dd/mm/yyyy"
    if code == "01002":  # the name in decomposed Unicode, typed again
        staff["B7"].value = unicodedata.normalize("NFC", staff["B7"].value)
    if code == "03006":  # the second row of the same person: emptied
        for cell in staff[26]:
            cell.value = None
    if code == "02002":  # the school's own column "Số điện thoại" (L): emptied
        for cell in staff["L"]:
            cell.value = None
    target = out / f"phan-hoi {code}.xlsx"
    book.save(target)
    return target


FIXED = sorted([*FIXES, "03001", "01002", "03006", "02002"])
# Planted faults no cell edit can fix: last year's form (03003), the old list layout (02006),
# too many CSTĐCS (03009: a unit finding with no cell), a unit not in the registry (09001).


@pytest.fixture(scope="module")
def returned(sample_run, office):
    inbox = office() / "hop-thu"
    for code in [*FIXED, "03003"]:  # 03003 sent back as it is: last year's form still
        _fixed(_feedback(sample_run, code), code, inbox)
    root = inbox.parent
    return consolidate(inbox, root / "ket-qua", load_config(root / "tdkt.toml"),
                       run_date=sample_run[0].run_date)


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    from .conftest import OFFICE_FILES

    def make() -> Path:
        root = tmp_path_factory.mktemp("returned")
        (root / "hop-thu").mkdir()
        for name in OFFICE_FILES:
            shutil.copy(SAMPLES / name, root / name)
        return root / "hop-thu"

    return lambda: make().parent


def test_feedback_fixed_in_place_is_consolidated_without_findings(returned, expected):
    assert [(f.unit, f.code, f.sheet, f.cell) for f in returned.findings
            if f.unit in FIXED] == []
    staff = returned.staff.groupby("unit_code").size()
    for code in FIXED:
        assert returned.units.loc[code, "status"] == UnitStatus.VALID, code
        sub = returned.chosen[code]
        assert sub.counted and sub.file == f"phan-hoi {code}.xlsx"
        # everyone the generator wrote is counted, the rows once in error included
        again = {"03002": 2, "03007": 1}.get(code, 0)
        assert staff[code] == len(expected["units"][code]["staff"]) + again, code


def test_feedback_sent_back_twice_keeps_one_list(returned):
    # A copy sent back unchanged: its one fault (last year's form) comes back, and its feedback,
    # the copy of a copy, holds one list of findings, which the form id names.
    assert [f.code for f in returned.findings if f.unit == "03003"] == ["old-form-version"]
    book = openpyxl.load_workbook(returned.out_dir / "phan-hoi" / "03003.xlsx")
    assert book.sheetnames == [LIST_SHEET, "Hướng dẫn", UNIT, STAFF, "Danh mục", META]
    assert [c.value for c in book[META][2] if c.value] == [LIST_SHEET]


# Nothing of a school's file computes in its copy


def test_feedback_copy_carries_no_formula_link_or_rule(office, tmp_path):
    book = openpyxl.load_workbook(SAMPLES / "hop-thu" / "dang-ky_03007.xlsx")
    staff = book[STAFF]
    staff["K7"] = '=HYPERLINK("http://example.com/x","bấm")'  # no cached value
    staff["B8"].hyperlink = "http://example.com/phish"
    staff.conditional_formatting.add("A7:K50", FormulaRule(formula=['WEBSERVICE("x")'],
                                                           fill=PatternFill("solid")))
    book.defined_names["Ngoai"] = DefinedName("Ngoai", attr_text='WEBSERVICE("http://x")')
    root = office()
    book.save(root / "hop-thu" / "dang-ky_03007.xlsx")
    # A far cell (the hostile reference of tests/test_hostile_limits.py): the reader cut the
    # sheet, so its copy holds the values the reader kept, not the file loaded again whole.
    far = openpyxl.load_workbook(SAMPLES / "hop-thu" / "dang-ky_03006.xlsx")
    far[STAFF]["XFD1048576"] = "ô lạc"
    far.save(root / "hop-thu" / "dang-ky_03006.xlsx")
    result = consolidate(root / "hop-thu", root / "ra", load_config(root / "tdkt.toml"))
    copy = openpyxl.load_workbook(result.out_dir / "phan-hoi" / "03007.xlsx")
    staff = copy[STAFF]
    assert staff["K7"].value is None and staff["K7"].comment is not None  # marked, empty
    assert staff["B8"].hyperlink is None
    assert not list(staff.conditional_formatting) and not copy.defined_names
    for ws in copy.worksheets:
        assert not [c.coordinate for row in ws.iter_rows() for c in row if c.data_type == "f"]
    cut = openpyxl.load_workbook(result.out_dir / "phan-hoi" / "03006.xlsx")
    assert cut[STAFF].max_row < 100 and cut[STAFF].max_column < 30
    header, rows = _list_rows(cut[LIST_SHEET])
    far_rows = [r for r in rows if r[header.index("Mã lỗi (để tra cứu)")].value
                in {"too-many-rows", "too-many-columns"}]
    assert len(far_rows) == 2 and all(r[header.index("Ô")].hyperlink is None for r in far_rows)


# Printed


def test_feedback_prints_clean(sample_run, tmp_path):
    pdf = render_pdfs([_feedback(sample_run, "03001")], tmp_path)[_feedback(sample_run, "03001")]
    pages = pdf_pages(pdf)
    assert page_problems(pages) == []
    print(f"03001 feedback: {len(pages)} pages")
    assert len(pages) <= 12


# Written straight or through openpyxl: the same workbook


def _direct_and_openpyxl(result, tmp_path, monkeypatch, findings, tables=()):
    """A feedback with no copy of the school's file, written straight (feedback_xml) and,
    the direct writer switched off, with openpyxl."""
    def refuse(*args, **kwargs):
        raise feedback.Unsupported("test")

    with monkeypatch.context() as patch:
        patch.setattr(feedback, "Workbook", None)  # openpyxl's workbook is not used
        direct = write_feedback(result, findings, None, "Phản hồi <thử> & kiểm tra",
                                tmp_path / "direct.xlsx", tables=tables)
    with monkeypatch.context() as patch:
        patch.setattr(feedback.Package, "save", refuse)
        book = write_feedback(result, findings, None, "Phản hồi <thử> & kiểm tra",
                              tmp_path / "openpyxl.xlsx", tables=tables)
    return direct, book


def _verdicts(values: list) -> Table:
    frame = pd.DataFrame({"seq": list(range(1, len(values) + 1)), "name": values,
                          "score": [1.5, None, 7, 0.1][:len(values)]})
    cols = [Col("seq", "STT", 5, "int"), Col("name", "Họ và tên", 22),
            Col("score", "Điểm", 9, "number"), Col("rules", "Quy tắc", 18)]
    return Table("Kết quả xét", "KẾT QUẢ", frame.assign(rules="r.a, r.b"), cols,
                 [True, False, False, True][:len(values)])


def test_feedback_written_straight_equals_openpyxl_s(sample_run, tmp_path, monkeypatch):
    # The direct writer's package is the one openpyxl writes for the same sheets, byte for
    # byte: a school's feedback does not change (nor is mailed again) with the way it is written.
    result = sample_run[0]
    findings = [f for s in Severity for f in result.findings if f.severity is s][:6]
    findings += [f for f in result.findings if f.severity is Severity.WARNING][:6]
    assert {f.severity for f in findings} >= {Severity.ERROR, Severity.WARNING}
    cases = [([], ()), (findings, ()),
             (findings, (_verdicts([" Nguyễn <Văn> A ", "=1+1", True, "x\ny & z"]),)),
             ([], (_verdicts([]),))]
    for n, (listed, tables) in enumerate(cases):
        case = tmp_path / str(n)
        case.mkdir()
        direct, book = _direct_and_openpyxl(result, case, monkeypatch, listed, tables)
        assert direct.read_bytes() == book.read_bytes(), n
    # and the same inputs, the same bytes
    again = write_feedback(result, findings, None, "Phản hồi <thử> & kiểm tra",
                           tmp_path / "again.xlsx", tables=[_verdicts(["A", "B"])])
    once = write_feedback(result, findings, None, "Phản hồi <thử> & kiểm tra",
                          tmp_path / "once.xlsx", tables=[_verdicts(["A", "B"])])
    assert again.read_bytes() == once.read_bytes()
    book = openpyxl.load_workbook(tmp_path / "2" / "direct.xlsx")
    assert book.sheetnames == ["Kết quả xét", LIST_SHEET] and book.active.title == "Kết quả xét"
    verdicts = book["Kết quả xét"]
    assert [verdicts.cell(8, c).value for c in range(1, 5)] == [1, " Nguyễn <Văn> A ", 1.5,
                                                                 "r.a, r.b"]
    assert verdicts["B9"].value == "=1+1" and verdicts["B9"].data_type == "s"  # never a formula
    assert verdicts["B10"].value is True and verdicts["C9"].value is None
    assert verdicts["A8"].fill.fgColor.rgb == "FFFFC7CE" and verdicts["A9"].fill.fill_type is None
    assert verdicts.print_area == "'Kết quả xét'!$A$1:$C$11"
    header, rows = _list_rows(book[LIST_SHEET])
    assert len(rows) == len(findings) and header[-1] == "Mã lỗi (để tra cứu)"
    assert all(r[3].hyperlink is None for r in rows)  # no copy: nothing to link to
    assert book.properties.title == "Phản hồi <thử> & kiểm tra"


def test_feedback_with_a_date_is_written_by_openpyxl(sample_run, tmp_path):
    table = _verdicts(["A", "B"])
    frame = table.frame.assign(name=[dt.date(2026, 5, 1), "B"])
    dated = Table(table.name, table.title, frame, table.cols, table.highlight)
    path = write_feedback(sample_run[0], [], None, "T", tmp_path / "d.xlsx", tables=[dated])
    cell = openpyxl.load_workbook(path)["Kết quả xét"]["B8"]
    assert cell.value == dt.datetime(2026, 5, 1) and cell.is_date


def test_feedback_package_is_what_zipfile_writes(tmp_path):
    """feedback_xml.zip_package: zipfile's bytes for the same members (a name in UTF-8, a
    member repeated, packed once: the same bytes both times; an empty member)."""
    import io
    import zipfile

    from pipeline.reports.feedback_xml import ZIP_TIME, zip_package

    parts = [("xl/theme/theme1.xml", "<a:theme>" + "x" * 5000 + "</a:theme>"),
             ("docProps/app.xml", b"<Properties/>"), ("xl/trống.xml", "Tiếng Việt có dấu"),
             ("empty.xml", b""), ("xl/theme/theme2.xml", "<a:theme>" + "x" * 5000 + "</a:theme>")]
    for attempt in range(2):  # the second time every member is already packed
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as package:
            for name, data in parts:
                entry = zipfile.ZipInfo(name, date_time=ZIP_TIME)
                entry.compress_type, entry.external_attr = zipfile.ZIP_DEFLATED, 0o600 << 16
                package.writestr(entry, data)
        assert zip_package(parts) == buffer.getvalue(), attempt
    with zipfile.ZipFile(io.BytesIO(zip_package(parts))) as package:
        assert package.testzip() is None
        assert package.read("xl/trống.xml").decode() == "Tiếng Việt có dấu"
