"""Hostile sheets and cells: each ends correctly read or in its finding at its cell; the rest of
the batch is consolidated; inputs are never changed; nothing from a school becomes a formula.

Every hostile file is the sample school file of unit 01001 made over to unit 01006 and then
edited as a school (or a script) would; the untouched 01001 file sits beside it in the inbox.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import re
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils.datetime import CALENDAR_MAC_1904

from pipeline import settings
from pipeline.config import load_config
from pipeline.engine import consolidate
from pipeline.forms.definitions import load_forms
from pipeline.forms.template import UnitInfo, write_template
from pipeline.ingest.normalize import Context, normalized_value
from pipeline.rounds.base import RoundResult as Consolidation
from pipeline.text import has_control

from .conftest import ROOT, SAMPLES, convert, soffice

GOOD = "dang-ky_01001.xlsx"
FILE = "dang-ky_01006.xlsx"
UNIT = "01006"
STAFF, UNITS = "Cá nhân", "Đơn vị"
SEED = 20251007

# Codes these tests produce (the catalogue test checks every code is produced somewhere).
COVERED = {"hidden-rows", "hidden-columns", "formula-no-value", "error-cell", "out-of-range",
           "date-as-serial", "number-as-text", "code-lost-zero", "hidden-characters",
           "value-too-long"}


# Helpers


def _workbook() -> openpyxl.Workbook:
    """The good sample file, made over to unit 01006."""
    wb = openpyxl.load_workbook(SAMPLES / "hop-thu" / GOOD)
    wb[settings.META_SHEET]["C1"] = UNIT
    wb[UNITS]["C6"] = UNIT
    return wb


def _as_text(cell, value: str) -> None:
    """Put text in a cell as a string even when it looks like a formula or an Excel error."""
    cell.value = value
    cell.data_type = "s"


def _inbox(office, wb: openpyxl.Workbook, replace: dict[str, str] | None = None) -> Path:
    """An office whose inbox holds the good file and the hostile one (with raw XML edits:
    placeholder → replacement in every XML part)."""
    root = office()
    shutil.copy(SAMPLES / "hop-thu" / GOOD, root / "hop-thu" / GOOD)
    path = root / "hop-thu" / FILE
    wb.save(path)
    if replace:
        _rezip(path, replace)
    return root


def _rezip(path: Path, replace: dict[str, str]) -> None:
    with zipfile.ZipFile(path) as source:
        parts = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info, data in parts:
            if info.filename.endswith(".xml"):
                text = data.decode("utf-8")
                for old, new in replace.items():
                    text = text.replace(old, new)
                data = text.encode("utf-8")
            target.writestr(info, data)


def _state(inbox: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in inbox.iterdir()}


def _checked(run):
    """Run a consolidation; the inbox is unchanged and the good unit is consolidated."""
    def wrapped(root: Path, *args) -> Consolidation:
        inbox = root / "hop-thu"
        before = _state(inbox)
        result = run(inbox, *args, load_config(root / "tdkt.toml"))
        assert _state(inbox) == before  # bytes and times: nothing written, moved or touched
        assert result.units.loc["01001", "status"] == "valid"
        return result
    return wrapped


_write = _checked(consolidate)
_RUNS = itertools.count(1)


def _run(root: Path) -> Consolidation:
    """Consolidate with every output written (in a fresh folder beside the inbox) and checked:
    no written cell is a formula."""
    out = root / f"ra-{next(_RUNS)}"
    result = _write(root, out)
    _assert_no_formulas(out, set())
    return result


def _found(result: Consolidation, *codes: str) -> list[tuple[str, str | None, str | None, str]]:
    """(code, sheet, cell, message) of the hostile file's findings with these codes."""
    return [(f.code, f.sheet, f.cell, f.message) for f in result.findings
            if f.file == FILE and f.code in codes]


def _staff(result: Consolidation, unit: str = UNIT) -> list[tuple]:
    """The unit's counted staff rows as (row, name, birth date)."""
    rows = result.staff[result.staff["unit_code"] == unit]
    return sorted(zip(rows["row"], rows["full_name"], rows["birth_date"], strict=True))


def _good_people(result: Consolidation) -> list[tuple]:
    return [(name, born) for _, name, born in _staff(result, "01001")]


def _output_cells(out: Path):
    """(workbook path, cell) of every non-empty cell written (formulas as written)."""
    paths = sorted(out.rglob("*.xlsx"))
    assert paths
    for path in paths:
        for ws in openpyxl.load_workbook(path).worksheets:
            for row in ws.iter_rows():
                yield from ((path, c) for c in row if c.value is not None)


def _assert_no_formulas(out: Path, texts: set[str]) -> None:
    """No output cell is a formula; each text appears somewhere as a plain string."""
    seen = set()
    for _, cell in _output_cells(out):
        assert cell.data_type != "f", (cell.parent.title, cell.coordinate, cell.value)
        assert not (isinstance(cell.value, str) and len(cell.value) > 32_767)
        if isinstance(cell.value, str):
            seen.update(t for t in texts if t in cell.value)
    assert seen == texts


# 1. Merged header cells


@pytest.mark.parametrize("group", [False, True], ids=["merged-down", "group-header"])
def test_hostile_merged_header_cells_are_read(office, group):
    """Headers merged over two rows (values in the upper row), and a group header merged over
    two columns with the columns' own headers below: the table is read as the template's."""
    wb = _workbook()
    ws = wb[STAFF]
    for col in "ABCDEFGHIJK":  # move the header up into the empty row 5, merged down
        ws[f"{col}5"], ws[f"{col}6"] = ws[f"{col}6"].value, None
    for col in "ABCDEFGHIJK":
        if group and col in "HI":
            continue
        ws.merge_cells(f"{col}5:{col}6")
    if group:
        ws["H5"], ws["H6"], ws["I6"] = ("Danh hiệu, khen thưởng", "Danh hiệu thi đua đăng ký",
                                        "Hình thức khen thưởng đăng ký")
        ws["I5"] = None
        ws.merge_cells("H5:I5")
    result = _run(_inbox(office, wb))
    assert [f for f in result.findings if f.file == FILE and f.sheet == STAFF
            and f.severity == "error"] == []
    assert _found(result, "missing-column", "unknown-column") == []
    people = _staff(result)
    assert [(n, b) for _, n, b in people] == _good_people(result)
    assert people[0][0] == 7  # the first data row, as in the template


# 2. Hidden rows and columns, 3. an autofilter


def test_hostile_hidden_rows_and_columns_are_read_and_reported(office):
    """A hidden row is still data: it is counted, like what the school sent. The school may
    have forgotten it, so one warning for the sheet names the hidden rows (and one the hidden
    form columns): the office sees that what the school shows is not all it sent."""
    wb = _workbook()
    ws = wb[STAFF]
    for row in (9, 10, 11, 15):
        ws.row_dimensions[row].hidden = True
    ws.row_dimensions[40].hidden = True  # an empty hidden row says nothing
    ws.column_dimensions["J"].hidden = True
    result = _run(_inbox(office, wb))
    assert [(n, b) for _, n, b in _staff(result)] == _good_people(result)
    assert _found(result, "hidden-rows", "hidden-columns") == [
        ("hidden-columns", STAFF, "J", "Trang tính “Cá nhân”: cột J (Tên sáng kiến/đề tài dự kiến) "
         "đang bị ẩn; dữ liệu trong cột vẫn được đọc."),
        ("hidden-rows", STAFF, "9", "Trang tính “Cá nhân”: các dòng 9–11, 15 đang bị ẩn; các dòng "
         "này vẫn được đọc và tổng hợp như mọi dòng khác."),
    ]


def test_hostile_autofilter_hiding_rows_reads_every_row(office):
    """An autofilter left on hides rows the filter leaves out: every row is still read."""
    wb = _workbook()
    ws = wb[STAFF]
    ws.auto_filter.ref = "A6:K29"
    ws.auto_filter.add_filter_column(6, ["GV"])  # Nhóm = GV only
    hidden = [r for r in range(7, 30) if ws[f"G{r}"].value != "GV"]
    for row in hidden:
        ws.row_dimensions[row].hidden = True
    result = _run(_inbox(office, wb))
    assert len(_staff(result)) == 23
    (code, sheet, cell, message), = _found(result, "hidden-rows")
    assert (code, sheet, cell) == ("hidden-rows", STAFF, str(hidden[0]))
    assert "(ẩn bởi bộ lọc đang bật)" in message


# 4. Formulas without a cached value


def test_hostile_formula_without_cached_value(office, tmp_path):
    """openpyxl writes formulas without their values: calamine sees an empty cell. Each such
    cell is reported with its formula (the cell counts as empty: a required one gets one error
    that says so, not a warning and missing-value); the formula text reaches the outputs only
    as a plain string."""
    wb = _workbook()
    wb[STAFF]["B9"] = '=A9&"x"'
    wb[STAFF]["K10"] = "=1+1"  # an optional note: the row still counts
    wb[UNITS]["C9"] = "=TODAY()"  # the header field "Ngày lập"
    result = _write(_inbox(office, wb), tmp_path / "out")
    assert _found(result, "formula-no-value", "formula-no-value-required",
                  "missing-value") == [
        ("formula-no-value-required", STAFF, "B9", "Ô B9 trang tính “Cá nhân” (cột “Họ và tên”, "
         "bắt buộc): ô có công thức “=A9&\"x\"” nhưng chưa có giá trị tính sẵn nên được coi là "
         "trống; cần nội dung cột “Họ và tên”. Dòng này chưa được tổng hợp."),
        ("formula-no-value", STAFF, "K10", "Ô K10 trang tính “Cá nhân” (cột “Ghi chú”): ô có công "
         "thức “=1+1” nhưng chưa có giá trị tính sẵn; ô được coi là trống, cần giá trị đã được "
         "Excel tính sẵn."),
        ("formula-no-value", UNITS, "C9", "Ô C9 trang tính “Đơn vị” (cột “Ngày lập”): ô có công "
         "thức “=TODAY()” nhưng chưa có giá trị tính sẵn; ô được coi là trống, cần giá trị đã "
         "được Excel tính sẵn."),
    ]
    assert [r for r, _, _ in _staff(result)] == [r for r in range(7, 30) if r != 9]
    _assert_no_formulas(result.out_dir, {'=A9&"x"', "=TODAY()"})


# 5. Error cells


def test_hostile_error_cells_are_reported_never_counted(office):
    """Cached Excel errors (#N/A from a lookup, #REF!, #DIV/0!, #VALUE!) and "#REF!" typed as
    text: one finding per cell naming the error; the cell counts as empty, so in a required
    cell it is an error and its row left out. "#REF!" is never counted as a name or a title."""
    wb = _workbook()
    ws = wb[STAFF]
    ws["D8"] = "#N/A"  # openpyxl stores Excel's error literals as error cells (t="e")
    ws["B10"] = "#REF!"
    ws["K11"] = "#DIV/0!"
    ws["E12"] = "#VALUE!"
    _as_text(ws["H13"], "#REF!")  # the same, typed (or pasted) as text
    root = _inbox(office, wb, {"<v>#DIV/0!</v>": "<f>1/0</f><v>#DIV/0!</v>"})  # as Excel saves
    with zipfile.ZipFile(root / "hop-thu" / FILE) as archive:
        sheet_xml = archive.read("xl/worksheets/sheet3.xml").decode()
    assert re.search(r'<c r="D8"[^>]*t="e"', sheet_xml)
    result = _run(root)
    found = [(code, cell, re.search(r"“(#[^”]+)”", message).group(1)
              if code.startswith("error-cell") else None) for code, _, cell, message in
             _found(result, "error-cell", "error-cell-required", "missing-value", "not-in-list")]
    assert found == [("error-cell-required", "D8", "#N/A"),
                     ("error-cell-required", "B10", "#REF!"),
                     ("error-cell", "K11", "#DIV/0!"), ("error-cell", "E12", "#VALUE!"),
                     ("error-cell-required", "H13", "#REF!")]
    message = next(m for c, _, cell, m in _found(result, "error-cell-required")
                   if cell == "B10")
    assert message == ("Ô B10 trang tính “Cá nhân” (cột “Họ và tên”, bắt buộc): ô báo lỗi công "
                       "thức “#REF!” nên được coi là trống; cần nội dung cột “Họ và tên”. Dòng này "
                       "chưa được tổng hợp.")
    rows = [r for r, _, _ in _staff(result)]
    assert rows == [r for r in range(7, 30) if r not in (8, 10, 13)]
    assert not any("#" in str(v) for v in result.staff.to_numpy().ravel() if v is not None)


# 6. Dates before 1900, the 1904 date system


def test_hostile_dates_before_1900_are_out_of_range(office):
    """A text date of 1899 and a number that is an 1900 serial are dates no one on staff was
    born on: out of the range the template allows, reported at the cell, row left out."""
    wb = _workbook()
    ws = wb[STAFF]
    ws["C8"] = "05/09/1899"
    ws["C9"] = 100  # serial 100 = 09/04/1900
    ws["C9"].number_format = "General"
    result = _run(_inbox(office, wb))
    assert _found(result, "out-of-range", "bad-date", "date-as-text", "date-as-serial") == [
        ("out-of-range", STAFF, "C8", "Ô C8 trang tính “Cá nhân” (cột “Ngày sinh”): 05/09/1899 nằm "
         "ngoài giới hạn; cần ngày từ 01/01/1940 đến 31/12/2030."),
        ("out-of-range", STAFF, "C9", "Ô C9 trang tính “Cá nhân” (cột “Ngày sinh”): số 100 (Excel "
         "hiểu là ngày 09/04/1900) nằm ngoài giới hạn; cần ngày từ 01/01/1940 đến 31/12/2030."),
    ]
    assert [r for r, _, _ in _staff(result)] == [r for r in range(7, 30) if r not in (8, 9)]


def test_hostile_date_cell_with_an_impossible_cached_value(office):
    """A date cell whose cached value no date can have (-inf: a broken writer) must end
    in a finding, never stop the run. python-calamine 0.9.1 panics on it (a pyo3
    PanicException, which is not an Exception): the reader must catch that too."""
    wb = _workbook()
    wb[STAFF]["C8"] = 54321
    wb[STAFF]["C8"].number_format = "dd/mm/yyyy"
    result = _run(_inbox(office, wb, {"<v>54321</v>": "<v>-inf</v>"}))
    found = [(f.code, f.cell) for f in result.findings if f.file == FILE
             and f.severity == "error"]
    assert ("unreadable-workbook", None) in found or ("bad-date", "C8") in found


def test_hostile_1904_date_system_reads_the_same_dates(office):
    """A workbook counting days from 1904 (old Mac Excel): dates read as the dates shown; a
    plain number typed in a date column counts from 1904 too."""
    wb = _workbook()
    wb.epoch = CALENDAR_MAC_1904
    wb[STAFF]["C10"] = 31000  # 1904-01-01 + 31000 days
    wb[STAFF]["C10"].number_format = "General"
    root = _inbox(office, wb)
    with zipfile.ZipFile(root / "hop-thu" / FILE) as archive:
        assert 'date1904="1"' in archive.read("xl/workbook.xml").decode()
    result = _run(root)
    day = dt.date(1904, 1, 1) + dt.timedelta(days=31000)
    people = [(n, b) for _, n, b in _staff(result)]
    good = _good_people(result)
    assert people == [(n, day if i == 3 else b) for i, (n, b) in enumerate(good)]
    assert _found(result, "date-as-serial") == [
        ("date-as-serial", STAFF, "C10", "Ô C10 trang tính “Cá nhân” (cột “Ngày sinh”): ô chứa số "
         f"31000 thay vì ngày; đã hiểu là {day:%d/%m/%Y}.")]
    assert result.chosen[UNIT].report_date == result.chosen["01001"].report_date


# 7. Numbers stored as text, a unit code that lost its zeros


@pytest.mark.parametrize(("text", "number", "code"), [
    ("12", 12, None), (" 45 ", 45, None), ("12,0", 12, None), ("1.0000", 1, None),
    ("1.234", 1234, "number-as-text"),
    ("12 500", 12500, "number-as-text"), ("1,234,567", 1234567, "number-as-text"),
    ("1.2.3", "1.2.3", None), ("1,5", "1,5", None),
])
def test_hostile_integer_text_is_read_as_a_number(text, number, code):
    column = load_forms().current("dang-ky").sheet("unit").column("members")
    value, fix = normalized_value(text, column, Context(vocabs={}))
    assert value == number and (fix.code if fix else None) == code


def test_hostile_numbers_as_text_and_code_typed_as_number(office):
    """Digits stored as text become numbers ("12", " 45 " silently: nothing to doubt;
    "1.234", grouped the Vietnamese way, with a warning saying how it was read). A unit code
    typed as a number (01006 → 1006) gets its zero back (no hidden sheet declares the unit)."""
    wb = _workbook()
    del wb[settings.META_SHEET]
    wb[UNITS]["C6"] = 1006
    wb[UNITS]["D12"] = "12"
    wb[UNITS]["D13"] = " 45 "
    wb[STAFF]["A8"] = "1.234"
    result = _run(_inbox(office, wb))
    assert result.chosen[UNIT].file == FILE
    members = result.collectives[result.collectives["unit_code"] == UNIT].set_index("row")
    assert members.loc[12, "members"] == 12 and members.loc[13, "members"] == 45
    staff = result.staff[result.staff["unit_code"] == UNIT].set_index("row")
    assert staff.loc[8, "seq"] == 1234
    assert _found(result, "number-as-text", "code-lost-zero", "bad-number") == [
        ("number-as-text", STAFF, "A8", "Ô A8 trang tính “Cá nhân” (cột “STT”): số “1.234” được "
         "gõ dạng chữ có dấu phân cách; đã hiểu là 1234."),
        ("code-lost-zero", UNITS, "C6", "Ô C6 trang tính “Đơn vị” (cột “Mã đơn vị”): mã đơn vị "
         "1006 bị mất số 0 ở đầu; đã hiểu là “01006”."),
    ]


# 8. Dropdown lists longer than Excel's inline limit


def test_hostile_long_dropdown_list_lives_on_the_list_sheet(tmp_path):
    """Excel refuses an inline dropdown list over 255 characters: a vocabulary that long is
    referenced from the hidden list sheet, and the template reads back with every label."""
    schemas = tmp_path / "schemas"
    shutil.copytree(ROOT / "schemas", schemas)
    vocab = schemas / "vocab" / "positions.yaml"
    rng = random.Random(SEED)
    extra = [f"Nhân viên hợp đồng số {i} {rng.choice(['A', 'B', 'C'])}" for i in range(20)]
    vocab.write_text(vocab.read_text(encoding="utf-8") + "".join(
        f"  - {{code: hd_{i}, label: {label}, group: NV, leader: false}}\n"
        for i, label in enumerate(extra)), encoding="utf-8")
    forms = load_forms(schemas / "forms", schemas / "vocab")
    labels = forms.vocabs["positions"].labels
    assert len(",".join(labels)) > settings.EXCEL_INLINE_LIST_LIMIT
    office = load_config(SAMPLES / "tdkt.toml").office_for()
    path = write_template(forms.current("dang-ky"), forms.vocabs,
                          UnitInfo(code=UNIT, name="Trường Mầm non X", level="MN", headcount=5),
                          tmp_path / "mau.xlsx", "2025-2026", office)
    _assert_list_on_list_sheet(path, labels)
    if soffice() is not None:  # LibreOffice opens it and writes the same list back
        again = convert(path, "xlsx:Calc MS Excel 2007 XML", tmp_path / "lo")
        _assert_list_on_list_sheet(again, labels)


def _assert_list_on_list_sheet(path: Path, labels: list[str]) -> None:
    wb = openpyxl.load_workbook(path)
    ws = wb[STAFF]
    header = next(r for r in ws.iter_rows(max_row=30) if any(c.value == "Chức vụ" for c in r))
    letter = next(c.column_letter for c in header if c.value == "Chức vụ")
    row = header[0].row + 1
    dv = next(d for d in ws.data_validations.dataValidation
              if d.type == "list" and f"{letter}{row}" in d.sqref)
    assert len(dv.formula1) <= settings.EXCEL_INLINE_LIST_LIMIT
    sheet, _, ref = dv.formula1.rpartition("!")
    assert sheet.strip("'") == settings.LISTS_SHEET
    lists = wb[settings.LISTS_SHEET]
    assert [c.value for row in lists[ref.replace("$", "")] for c in row] == labels


# 9. Text a spreadsheet would take for a formula


def test_hostile_formula_like_names_stay_text_in_every_output(office, tmp_path):
    """Names and notes that a spreadsheet would run as formulas (a link, a DDE command, an
    @-function, arithmetic) are consolidated as the text they are, and every output holds
    them as plain strings; no output cell is a formula."""
    texts = {"B8": '=HYPERLINK("http://x.invalid","y")', "B9": "+cmd|' /C calc'!A0",
             "B10": "@SUM(A1:A2)", "B11": "-2+3"}
    wb = _workbook()
    for cell, text in texts.items():
        _as_text(wb[STAFF][cell], text)
    result = _write(_inbox(office, wb), tmp_path / "out")
    names = {n for _, n, _ in _staff(result)}
    assert set(texts.values()) <= names
    assert [f for f in result.findings if f.file == FILE and f.sheet == STAFF] == []
    _assert_no_formulas(result.out_dir, set(texts.values()))


# 10. Invisible characters


def test_hostile_invisible_characters_are_removed_with_a_warning(office, tmp_path):
    """Control characters, zero-width spaces, direction marks (RLO shows a name reversed) and
    a BOM inside names are removed; the name is counted clean. One warning per cell names the
    characters removed: what Excel shows the school may differ from what was counted (RLO),
    and the same name will not match the school's own lists while they remain. The office's
    workbooks hold the clean names only."""
    wb = _workbook()
    ws = wb[STAFF]
    originals = {cell: ws[cell].value for cell in ("B8", "B9", "B10")}
    ws["B8"] = originals["B8"].replace(" ", " \u200b", 1) + "\ufeff"
    ws["B9"] = "\u202e" + originals["B9"]
    ws["B10"] = originals["B10"].replace(" ", "@@1 ", 1) + "@@7f"
    root = _inbox(office, wb, {"@@1": "_x0001_", "@@7f": "\x7f"})
    result = _write(root, tmp_path / "out")
    staff = {r: n for r, n, _ in _staff(result)}
    assert [staff[r] for r in (8, 9, 10)] == list(originals.values())
    assert [(code, cell, message.rsplit("(", 1)[1]) for code, _, cell, message in
            _found(result, "hidden-characters")] == [
        ("hidden-characters", "B8", "U+200B, U+FEFF); đã xoá các ký tự này."),
        ("hidden-characters", "B9", "U+202E); đã xoá các ký tự này."),
        ("hidden-characters", "B10", "U+0001, U+007F); đã xoá các ký tự này."),
    ]
    message = _found(result, "hidden-characters")[1][3]
    assert message.startswith(f"Ô B9 trang tính “Cá nhân” (cột “Họ và tên”): “{originals['B9']}” "
                              "chứa ký tự ẩn")
    # Only the school's own sheet, copied into its feedback as it was sent, may still hold them.
    for path, cell in _output_cells(result.out_dir):
        if isinstance(cell.value, str) and has_control(cell.value):
            assert (path.parent.name, path.name, cell.parent.title) == (
                settings.FEEDBACK_DIR, f"{UNIT}.xlsx", STAFF)


# 11. Very long text


def test_hostile_very_long_text_is_reported_and_outputs_still_written(office, tmp_path):
    """A 10,000-character name and a 32,767-character note (Excel's maximum): each is too long
    for its column (names 100 characters, notes 1,000), reported with a short echo ending in
    "…"; the row is left out; every output is still written and opens."""
    rng = random.Random(SEED)
    wb = _workbook()
    name = "".join(rng.choice("aăâbcdđ") for _ in range(10_000))
    wb[STAFF]["B8"] = name
    wb[STAFF]["K9"] = "x" * 32_767
    result = _write(_inbox(office, wb), tmp_path / "out")
    found = _found(result, "value-too-long")
    assert [(code, cell) for code, _, cell, _ in found] == [("value-too-long", "B8"),
                                                            ("value-too-long", "K9")]
    assert found[0][3] == (f"Ô B8 trang tính “Cá nhân” (cột “Họ và tên”): nội dung quá dài "
                           f"(“{name[:60]}…”); cần tối đa 100 ký tự, ô có 10.000 ký "
                           "tự. Dòng này chưa được tổng hợp.")
    assert "cần tối đa 1.000 ký tự, ô có 32.767 ký tự" in found[1][3]
    assert [r for r, _, _ in _staff(result)] == [r for r in range(7, 30) if r not in (8, 9)]
    _assert_no_formulas(result.out_dir, set())
