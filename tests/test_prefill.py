"""Results templates prefilled from the registrations of the same school year (issue 14).

The expected rows are read here from the sample registration files with openpyxl, not through
tdkt: a value typed as a synonym ("Nhân viên kế toán") is expected as its label in the
vocabulary files (schemas/vocab/, read here as YAML), a date typed as text as a date. The
column correspondence below is written by hand from the two forms' headers.
"""

from __future__ import annotations

import datetime as dt
import functools
import shutil
import unicodedata
from pathlib import Path

import openpyxl
import pytest
import yaml
from click.testing import CliRunner
from openpyxl.utils import get_column_letter, range_boundaries

from pipeline import settings
from pipeline.cli import main
from pipeline.config import load_config
from pipeline.engine import consolidation
from pipeline.status import FileStatus

from .conftest import OFFICE_FILES, ROOT, SAMPLES

UNITS = ("01001", "02001", "03001")  # clean; a title in TCVN3; dates typed as text
STAFF, GROUPS, CRITERIA = "Cá nhân", "Đơn vị", "Tự chấm điểm"
STAFF_HEADER, GROUPS_HEADER = 6, 11  # header rows of the results template
# Registration header → results header, for the columns the results form starts with.
STAFF_COLUMNS = {"Họ và tên": "Họ và tên", "Ngày sinh": "Ngày sinh", "Giới tính": "Giới tính",
                 "Chức vụ": "Chức vụ", "Nhóm": "Nhóm",
                 "Danh hiệu thi đua đăng ký": "Danh hiệu thi đua đề nghị",
                 "Hình thức khen thưởng đăng ký": "Hình thức khen thưởng đề nghị"}
GROUP_COLUMNS = {"Tên tập thể": "Tên tập thể", "Loại tập thể": "Loại tập thể",
                 "Danh hiệu thi đua đăng ký": "Danh hiệu thi đua đề nghị",
                 "Hình thức khen thưởng đăng ký": "Hình thức khen thưởng đề nghị"}
# The vocabulary of each list column (registration header), per sheet.
VOCABS = {STAFF: {"Giới tính": "sexes", "Chức vụ": "positions", "Nhóm": "staff_groups",
                  "Danh hiệu thi đua đăng ký": "individual_titles",
                  "Hình thức khen thưởng đăng ký": "commendations"},
          GROUPS: {"Loại tập thể": "collective_kinds",
                   "Danh hiệu thi đua đăng ký": "collective_titles",
                   "Hình thức khen thưởng đăng ký": "commendations"}}
# Text the sample files hold in a legacy encoding (TCVN3), as a reader of the file means it.
LEGACY = {"Lao ®éng tiªn tiÕn": "Lao động tiên tiến", "NguyÔn V¨n Hïng": "Nguyễn Văn Hùng"}


# Reading workbooks (openpyxl only)


def _table(ws, header_row: int | None, first: str) -> tuple[dict[str, int], list[int]]:
    """Header → column, and the rows holding a value in column `first` (header row found by
    its text when not given)."""
    if header_row is None:
        header_row = next(c.row for row in ws.iter_rows() for c in row if c.value == first)
    headers = {c.value: c.column for c in ws[header_row] if c.value}
    rows = [r for r in range(header_row + 1, ws.max_row + 1)
            if ws.cell(r, headers[first]).value not in (None, "")]
    return headers, rows


def _value(value: object, vocab: str | None = None) -> object:
    """A cell as the school meant it: a date (a date cell, dd/mm/yyyy text or an Excel serial
    number), a text in NFC, a list value as its label."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, int) and 3000 < value < 60000:  # only dates are this large here
        return dt.date(1899, 12, 30) + dt.timedelta(days=value)
    if not isinstance(value, str):
        return value
    text = unicodedata.normalize("NFC", " ".join(value.split()))
    try:
        return dt.datetime.strptime(text, "%d/%m/%Y").date()
    except ValueError:
        text = LEGACY.get(text, text)
    return _labels(vocab).get(text.lower(), text) if vocab else text


@functools.cache
def _labels(vocab: str) -> dict[str, str]:
    """Label, code or synonym (lower case) → label, from a vocabulary file."""
    raw = yaml.safe_load((ROOT / "schemas" / "vocab" / f"{vocab}.yaml").read_text("utf-8"))
    return {str(name).lower(): v["label"] for v in raw["values"]
            for name in (v["label"], v["code"], *v.get("synonyms", ()))}


def _registered(code: str, sheet: str, columns: dict[str, str]) -> list[tuple]:
    """The rows of a sample registration file, in the results form's column order."""
    wb = openpyxl.load_workbook(SAMPLES / "hop-thu" / f"dang-ky_{code}.xlsx", data_only=True)
    ws = wb[sheet]
    headers, rows = _table(ws, None, next(iter(columns)))
    return [tuple(_value(ws.cell(r, headers[h]).value, VOCABS[sheet].get(h)) for h in columns)
            for r in rows]


def _prefilled(path: Path, sheet: str, header_row: int, columns: list[str]) -> list[tuple]:
    ws = openpyxl.load_workbook(path)[sheet]
    headers, rows = _table(ws, header_row, columns[0])
    return [tuple(_date_cell(ws.cell(r, headers[h]).value) for h in columns) for r in rows]


def _date_cell(value: object) -> object:
    """A template cell as written: a date cell as its date, anything else as it is."""
    return value.date() if isinstance(value, dt.datetime) else value


def _validation(ws, cell: str):
    """The data validation covering a cell, or None."""
    col, row, _, _ = range_boundaries(cell)
    for dv in ws.data_validations.dataValidation:
        for rng in dv.sqref.ranges:
            if rng.min_col <= col <= rng.max_col and rng.min_row <= row <= rng.max_row:
                return dv
    return None


def _run(*args: str):
    result = CliRunner().invoke(main, ["templates", *args])
    assert result.exit_code == 0, result.output
    return result


# Shared work: one office copy, one small registration inbox, templates written twice


@pytest.fixture(scope="module")
def office(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("prefill-office")
    for name in OFFICE_FILES:
        shutil.copy(SAMPLES / name, root / name)
    return root


@pytest.fixture(scope="module")
def registration_inbox(tmp_path_factory) -> Path:
    inbox = tmp_path_factory.mktemp("prefill-dang-ky")
    for code in UNITS:
        shutil.copy(SAMPLES / "hop-thu" / f"dang-ky_{code}.xlsx", inbox)
    return inbox


@pytest.fixture(scope="module")
def from_store(sample_run, office) -> tuple[str, Path]:
    """Results templates of UNITS from the history store of the sample registration round."""
    store = sample_run[0].out_dir.parents[1] / settings.STORE_FILE
    assert store.is_file()
    out = office / "tu-kho"
    result = _run("--form", "ket-qua", "--out", str(out), "--config", str(office / "tdkt.toml"),
                  "--store", str(store), *[a for c in UNITS for a in ("--unit", c)])
    return result.output, out / "2025-2026" / "mau-ket-qua"


@pytest.fixture(scope="module")
def from_inbox(office, registration_inbox) -> tuple[str, Path]:
    """The same templates from the registration inbox (no store)."""
    out = office / "tu-hop-thu"
    result = _run("--form", "ket-qua", "--out", str(out), "--config", str(office / "tdkt.toml"),
                  "--registrations", str(registration_inbox),
                  *[a for c in UNITS for a in ("--unit", c)])
    return result.output, out / "2025-2026" / "mau-ket-qua"


# Prefilled rows


@pytest.mark.parametrize("code", UNITS)
def test_prefill_staff_rows_are_the_registered_staff(from_store, code):
    output, folder = from_store
    assert "điền sẵn theo đợt đăng ký năm học 2025-2026 đã tổng hợp" in output
    expected = _registered(code, STAFF, STAFF_COLUMNS)
    got = _prefilled(folder / f"ket-qua_{code}.xlsx", STAFF, STAFF_HEADER,
                     list(STAFF_COLUMNS.values()))
    assert len(expected) >= 18
    assert got == expected
    assert all(isinstance(row[1], dt.date) for row in got)  # dates, also where typed as text


@pytest.mark.parametrize("code", UNITS)
def test_prefill_collectives_are_the_registered_collectives(from_store, code):
    _, folder = from_store
    expected = _registered(code, GROUPS, GROUP_COLUMNS)
    got = _prefilled(folder / f"ket-qua_{code}.xlsx", GROUPS, GROUPS_HEADER,
                     list(GROUP_COLUMNS.values()))
    assert got == expected
    assert got[0][1] == "Đơn vị"
    ws = openpyxl.load_workbook(folder / f"ket-qua_{code}.xlsx")[GROUPS]
    headers, rows = _table(ws, GROUPS_HEADER, "Tên tập thể")
    assert [ws.cell(r, headers["STT"]).value for r in rows] == list(range(1, len(rows) + 1))
    # Counted at year end, not carried: members, counts, vote share.
    assert {ws.cell(r, headers["Số thành viên"]).value for r in rows} == {None}


def test_prefill_cells_stay_editable_with_validations_and_room_below(from_store):
    _, folder = from_store
    path = folder / f"ket-qua_{UNITS[2]}.xlsx"
    ws = openpyxl.load_workbook(path)[STAFF]
    headers, rows = _table(ws, STAFF_HEADER, "Họ và tên")
    first, last = rows[0], rows[-1]
    assert rows == list(range(STAFF_HEADER + 1, last + 1))
    assert ws.protection.sheet is True
    spare = last + settings.TEMPLATE_SPARE_ROWS
    for column in headers.values():
        letter = get_column_letter(column)
        for row in (first, last, last + 1, spare):
            assert ws[f"{letter}{row}"].protection.locked is False, f"{letter}{row}"
    for header in ("Họ và tên", "Ngày sinh", "Chức vụ", "Danh hiệu thi đua đề nghị",
                   "Xếp loại viên chức"):
        letter = get_column_letter(headers[header])
        assert ws[f"{letter}{spare}"].value is None
    birth = get_column_letter(headers["Ngày sinh"])
    assert ws[f"{birth}{first}"].is_date and ws[f"{birth}{first}"].number_format == "dd/mm/yyyy"
    assert _validation(ws, f"{birth}{first}").type == "date"
    assert _validation(ws, f"{birth}{spare}").type == "date"
    for header in ("Giới tính", "Chức vụ", "Nhóm", "Danh hiệu thi đua đề nghị",
                   "Xếp loại viên chức"):
        letter = get_column_letter(headers[header])
        assert _validation(ws, f"{letter}{first}").type == "list", header
        assert _validation(ws, f"{letter}{spare}").type == "list", header
    groups = openpyxl.load_workbook(path)[GROUPS]
    assert groups["B12"].protection.locked is False and groups.protection.sheet is True
    assert _validation(groups, "I12").type == "list"
    criteria = openpyxl.load_workbook(path)[CRITERIA]
    assert criteria["B7"].value and criteria["B7"].protection.locked is not False


def test_prefill_from_the_inbox_equals_prefill_from_the_store(from_store, from_inbox):
    output, folder = from_inbox
    assert "điền sẵn theo các bản đăng ký năm học 2025-2026 trong hộp thư" in output
    for code in UNITS:
        a = openpyxl.load_workbook(from_store[1] / f"ket-qua_{code}.xlsx")
        b = openpyxl.load_workbook(folder / f"ket-qua_{code}.xlsx")
        for name in (STAFF, GROUPS, "Hướng dẫn"):
            assert list(a[name].values) == list(b[name].values), (code, name)


def test_prefill_none_without_a_registration_says_why(office, tmp_path):
    out = tmp_path / "out"
    result = _run("--form", "ket-qua", "--out", str(out), "--config", str(office / "tdkt.toml"),
                  "--unit", UNITS[0])
    lines = [line for line in result.output.splitlines() if "để trống" in line]
    assert len(lines) == 1 and "chưa có đợt đăng ký năm học 2025-2026" in lines[0]
    ws = openpyxl.load_workbook(out / "2025-2026" / "mau-ket-qua" / f"ket-qua_{UNITS[0]}.xlsx")
    assert _table(ws[STAFF], STAFF_HEADER, "Họ và tên")[1] == []
    assert [ws[GROUPS].cell(12, c).value for c in (1, 2, 3)] == [
        1, "Trường Mầm non Nguyễn Trãi", "Đơn vị"]  # the unit row, as before


def test_prefill_leaves_the_registration_form_alone(sample_run, office, tmp_path):
    store = sample_run[0].out_dir.parents[1] / settings.STORE_FILE
    out = tmp_path / "out"
    result = _run("--out", str(out), "--config", str(office / "tdkt.toml"), "--store",
                  str(store), "--unit", UNITS[0])
    assert "điền sẵn" not in result.output
    ws = openpyxl.load_workbook(out / "2025-2026" / "mau-dang-ky" / f"dang-ky_{UNITS[0]}.xlsx")
    assert _table(ws[STAFF], STAFF_HEADER, "Họ và tên")[1] == []


def test_prefill_unknown_unit_is_refused(office, tmp_path):
    result = CliRunner().invoke(main, ["templates", "--form", "ket-qua", "--out",
                                       str(tmp_path), "--config", str(office / "tdkt.toml"),
                                       "--unit", "99999"])
    assert result.exit_code == settings.EXIT_USAGE
    assert "99999" in result.output and "Traceback" not in result.output


# A prefilled template, completed by the school, consolidated at year end


def test_prefilled_template_completed_is_accepted(from_store, registration_inbox, office,
                                                  tmp_path):
    code = UNITS[2]
    inbox = tmp_path / "hop-thu-ket-qua"
    inbox.mkdir()
    path = inbox / f"ket-qua_{code}.xlsx"
    shutil.copy(from_store[1] / path.name, path)
    wb = openpyxl.load_workbook(path)
    ws = wb[STAFF]
    headers, rows = _table(ws, STAFF_HEADER, "Họ và tên")
    left = rows[5]  # moved away: the school clears the row
    gone = ws.cell(left, headers["Họ và tên"]).value
    for column in headers.values():
        ws.cell(left, column).value = None
    new = rows[-1] + 1  # arrived: typed into the first empty row
    for header, value in (("Họ và tên", "Trần Văn Mới"), ("Ngày sinh", dt.date(1990, 5, 17)),
                          ("Giới tính", "Nam"), ("Chức vụ", "Giáo viên"), ("Nhóm", "GV"),
                          ("Danh hiệu thi đua đề nghị", "Lao động tiên tiến")):
        ws.cell(new, headers[header]).value = value
    for row in [r for r in rows if r != left] + [new]:
        ws.cell(row, headers["Xếp loại viên chức"]).value = "Hoàn thành tốt nhiệm vụ"
        ws.cell(row, headers["Số tháng công tác"]).value = 12
        ws.cell(row, headers["Tỉ lệ phiếu bầu (%)"]).value = 90
        if ws.cell(row, headers["Danh hiệu thi đua đề nghị"]).value == "Chiến sĩ thi đua cơ sở":
            ws.cell(row, headers["Tên sáng kiến/đề tài"]).value = "Dạy học theo dự án"
            ws.cell(row, headers["Cấp công nhận sáng kiến"]).value = "Cấp cơ sở"
            ws.cell(row, headers["Số, ngày quyết định công nhận"]).value = "15/QĐ-PGD"
    groups = wb[GROUPS]
    g_headers, g_rows = _table(groups, GROUPS_HEADER, "Tên tập thể")
    for row in g_rows:
        for header in ("Số thành viên", "Số hoàn thành nhiệm vụ", "Số đạt Lao động tiên tiến"):
            groups.cell(row, g_headers[header]).value = len(rows) if row == g_rows[0] else 4
        for header in ("Số đạt Chiến sĩ thi đua cơ sở", "Số bị kỷ luật từ cảnh cáo trở lên"):
            groups.cell(row, g_headers[header]).value = 0
        groups.cell(row, g_headers["Tỉ lệ phiếu bầu (%)"]).value = 90
    criteria = wb[CRITERIA]
    c_headers, c_rows = _table(criteria, STAFF_HEADER, "Tiêu chí")
    assert c_rows
    for row in c_rows:
        criteria.cell(row, c_headers["Điểm tự chấm"]).value = criteria.cell(
            row, c_headers["Điểm tối đa"]).value
    wb.save(path)

    result = consolidation(inbox, load_config(office / "tdkt.toml"), round="ket-qua",
                           registration_inbox=registration_inbox)
    [sub] = result.submissions
    assert (sub.unit_code, sub.status) == (code, FileStatus.ACCEPTED)
    carried = {STAFF: {get_column_letter(headers[h]) for h in STAFF_COLUMNS.values()},
               GROUPS: {get_column_letter(g_headers[h]) for h in GROUP_COLUMNS.values()}}
    about_carried = [f for f in result.findings if f.sheet in carried
                     and f.cell and f.cell.rstrip("0123456789") in carried[f.sheet]]
    assert about_carried == []
    assert not [f for f in result.findings if f.severity.value == "error"]
    assert {f.code for f in result.findings} <= {"count-differs"}
    staff = result.staff[result.staff["unit_code"] == code]
    names = list(staff["full_name"])
    assert len(names) == len(rows) and gone not in names and "Trần Văn Mới" in names
    assert all(isinstance(d, dt.date) for d in staff["birth_date"])


# Which columns are carried, and a collective's kind from its name


def test_prefill_columns_are_those_both_forms_share(forms):
    from pipeline.forms.prefill import carried_columns

    columns = carried_columns(forms.current("ket-qua"), forms.current("dang-ky"))
    assert {sheet: [c.id for c in cols] for sheet, cols in columns.items()} == {
        "unit": ["collective_name", "collective_kind", "collective_title", "commendation"],
        "staff": ["full_name", "birth_date", "sex", "position", "staff_group", "title",
                  "commendation"]}


@pytest.mark.parametrize(("name", "kind"), [
    ("Tổ chuyên môn 1", "to_chuyen_mon"), ("Tổ CM Toán - Tin", "to_chuyen_mon"),
    ("Tổ văn phòng", "to_van_phong"), ("Trường THCS Tân Lập", "don_vi"),
    ("Tổ Toán", None), ("Chi đoàn", None)])
def test_prefill_kind_told_from_the_name(forms, name, kind):
    from pipeline.forms.prefill import kind_named

    assert kind_named(name, forms.vocabs["collective_kinds"]) == kind
