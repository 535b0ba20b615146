"""Commune reports in the Sở's inbox (issue 15): the report tdkt writes for the sample office is
read by the Sở's round with no finding; copies of it with one planted fault each (another
school year, another round, a count that does not add up, a unit another office reports, a
unit the Sở manages) give exactly that fault, at its trang tính and cell, on that report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from pipeline import settings
from pipeline.cli import main

from .conftest import table_rows
from .sample_province_registry import OfficeRow, write_province_registry
from .test_province_round import CONFIG

COVERED = {"report-wrong-year", "report-wrong-round", "report-totals-differ",
           "report-proposal-fails", "report-over-allocation", "allocation-unknown-scope",
           "unit-in-two-reports", "province-unit-in-report"}
SHEETS = {"lists": "Báo cáo", "units": "Đơn vị"}
OFFICES = tuple(OfficeRow(f"X00{n}", f"Phòng Văn hóa – Xã hội xã Số {n}", f"Xã Số {n}",
                          f"vhxh{n}@anphu.gov.vn") for n in range(1, 7))


def _header_row(ws, first: str = "STT") -> int:
    return next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == first)


def _column(ws, header_row: int, header: str) -> int:
    return next(c for c in range(1, ws.max_column + 1)
                if ws.cell(header_row, c).value == header)


def _copy(source, target, office: str, change=None) -> None:
    """The report for `office` (its hidden id), with `change(book)` applied."""
    book = openpyxl.load_workbook(source)
    book[settings.META_SHEET]["C1"] = office
    if change is not None:
        change(book)
    book.save(target)


def _keep_first_unit(code: str | None = None, keep: int = 1):
    """Empty the units table but its first `keep` rows (the first unit's code changed)."""
    def change(book):
        ws = book[SHEETS["units"]]
        top = _header_row(ws)
        for row in range(top + 1 + keep, ws.max_row + 1):
            if isinstance(ws.cell(row, 1).value, int):
                for col in range(1, ws.max_column + 1):
                    ws.cell(row, col).value = None
        if code is not None:
            ws.cell(top + 1, _column(ws, top, "Mã đơn vị")).value = code
    return change


def _province(tmp_path_factory, name: str, report):
    """A Sở's folder (configuration, registry of OFFICES) whose inbox holds `report` as X001's."""
    root = tmp_path_factory.mktemp(name)
    (root / "tdkt.toml").write_text(CONFIG, encoding="utf-8")
    write_province_registry(root / "danh-muc-so.xlsx", offices=OFFICES)
    (root / "hop-thu").mkdir()
    shutil.copy(report, root / "hop-thu" / "bao-cao_X001.xlsx")
    return root


@pytest.fixture(scope="module")
def consolidated(sample_run, tmp_path_factory):
    report = sample_run[1] / "tong-hop-so.xlsx"
    root = _province(tmp_path_factory, "so-reports", report)
    inbox = root / "hop-thu"
    _copy(report, inbox / "bao-cao_X002.xlsx", "X002",
          lambda book: book[settings.META_SHEET].cell(1, 4, "2024-2025"))
    _copy(report, inbox / "bao-cao_X003.xlsx", "X003",
          lambda book: book[settings.META_SHEET].cell(1, 5, "ket-qua"))

    def more_persons(book):  # and no unit: its units are X001's (the lists' rows are kept)
        _keep_first_unit(keep=0)(book)
        ws = book[SHEETS["lists"]]
        top = _header_row(ws)
        cell = ws.cell(top + 1, _column(ws, top, "Cá nhân"))
        cell.value = int(cell.value) + 2

    _copy(report, inbox / "bao-cao_X004.xlsx", "X004", more_persons)
    _copy(report, inbox / "bao-cao_X005.xlsx", "X005", _keep_first_unit())
    _copy(report, inbox / "bao-cao_X006.xlsx", "X006", _keep_first_unit("T0001"))
    out = root / "out"
    result = CliRunner().invoke(main, ["consolidate", str(inbox), "--out", str(out),
                                       "--config", str(root / "tdkt.toml")])
    assert result.exit_code == 0, result.output
    folder = out / "2025-2026" / "dang-ky" / "tinh"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["_folder"] = folder
    return report, manifest, result.output


def _found(manifest, file: str) -> list[tuple]:
    return sorted((f["code"], f["sheet"], f["cell"], f["value"], f["expected"])
                  for f in manifest["findings"] if f["file"] == file)


def test_province_reports_are_chosen_for_their_offices(consolidated):
    _, manifest, output = consolidated
    files = {o["office"]: o["file"] for o in manifest["offices"]}
    assert files == {f"X00{n}": f"bao-cao_X00{n}.xlsx" for n in range(1, 7)}
    assert "Báo cáo của các Phòng Văn hóa – Xã hội: 6/6." in output


def test_province_reports_planted_faults_are_found_where_they_are(consolidated):
    report, manifest, _ = consolidated
    book = openpyxl.load_workbook(report, read_only=True)
    units = book[SHEETS["units"]]
    rows = [list(r) for r in units.iter_rows(values_only=True)]
    top = next(i for i, r in enumerate(rows) if r[0] == "STT")
    first = rows[top + 1][rows[top].index("Mã đơn vị")]
    lists = [list(r) for r in book[SHEETS["lists"]].iter_rows(values_only=True)]
    head = next(i for i, r in enumerate(lists) if r[0] == "STT")
    persons = lists[head][:].index("Cá nhân")
    typed = lists[head + 1][persons]
    column = chr(ord("A") + rows[top].index("Mã đơn vị"))
    assert _found(manifest, "bao-cao_X002.xlsx") == [
        ("report-wrong-year", None, None, "2024-2025", "2025-2026")]
    assert _found(manifest, "bao-cao_X003.xlsx") == [
        ("report-wrong-round", None, None, "ket-qua", "dang-ky")]
    assert _found(manifest, "bao-cao_X004.xlsx") == [
        ("report-totals-differ", SHEETS["lists"], f"{chr(ord('A') + persons)}{head + 2}",
         str(typed + 2), str(typed))]
    # X005 reports the first unit of X001 again: each report is told of the other.
    first_cell = f"{column}{top + 2}"
    assert _found(manifest, "bao-cao_X005.xlsx") == [
        ("unit-in-two-reports", SHEETS["units"], first_cell, first, "X001")]
    assert ("unit-in-two-reports", SHEETS["units"], first_cell, first, "X005") in \
        _found(manifest, "bao-cao_X001.xlsx")
    # X006 reports a school the Sở manages itself.
    assert [f[:3] for f in _found(manifest, "bao-cao_X006.xlsx")] == [
        ("province-unit-in-report", SHEETS["units"], first_cell)]


def test_province_reports_the_clean_report_has_no_other_finding(consolidated):
    _, manifest, _ = consolidated
    assert [f[0] for f in _found(manifest, "bao-cao_X001.xlsx")] == ["unit-in-two-reports"]


def test_province_reports_sum_up_in_the_sos_workbook(consolidated):
    """The Sở's workbook, read back: per office the schools its counted report lists, each
    school once (the reports of another year or round count nothing), the Sở's own six
    schools, the same by cấp học, and each counted report's persons in the council's list."""
    report, manifest, _ = consolidated
    assert "tong-hop-tinh.xlsx" in manifest["outputs"]
    sent = openpyxl.load_workbook(report, read_only=True)
    units = [r for r in sent[SHEETS["units"]].iter_rows(values_only=True)
             if isinstance(r[0], int)]
    persons = [r for r in sent["Cá nhân"].iter_rows(values_only=True) if isinstance(r[0], int)]
    assert len(units) > 20 and persons
    path = manifest["_folder"] / "tong-hop-tinh.xlsx"
    offices = {r["Mã"]: r for r in table_rows(path, "Theo Phòng", "Mã")}
    schools = {code: r["Số đơn vị"] for code, r in offices.items() if code}
    # X001 shares a school with X005 (an error on both); X002 is of another school year.
    assert {code: r["Báo cáo"] for code, r in offices.items() if code in ("X001", "X002")} == {
        "X001": "Có lỗi", "X002": "Không hợp lệ"}
    # X005's one school is X001's (counted under X001), X006's is the Sở's own T0001.
    assert schools == {"X001": len(units), "X002": 0, "X003": 0, "X004": 0, "X005": 0,
                       "X006": 0}
    direct = [r for code, r in offices.items() if not code]
    assert [r["Số đơn vị"] for r in direct] == [6] and direct[0]["Đã nộp"] == 0
    levels = table_rows(path, "Theo cấp học", "Cấp học")
    assert sum(r["Số đơn vị"] for r in levels) == len(units) + 6
    council = table_rows(path, "Cá nhân đề nghị", "STT")
    assert len(council) == 4 * len(persons)  # X001, X004, X005, X006 keep the persons


def test_province_reports_the_sos_workbook_prints_clean(consolidated, tmp_path):
    from .render import page_problems, pdf_pages, render_pdfs

    path = consolidated[1]["_folder"] / "tong-hop-tinh.xlsx"
    pages = pdf_pages(render_pdfs([path], tmp_path)[path])
    assert page_problems(pages) == []
    assert len(pages) <= 40, len(pages)
    print(f"tong-hop-tinh.xlsx: {len(pages)} pages")


def test_province_reports_each_office_gets_its_findings_at_their_cells(consolidated):
    """The feedback of an office: its findings listed, each cell of its report marked in the
    copy it corrects (the hidden id kept, so the copy sent back is read as its report)."""
    _, manifest, _ = consolidated
    feedback = manifest["_folder"] / "phan-hoi"
    assert sorted(p.stem for p in feedback.glob("X*.xlsx")) == [f"X00{n}" for n in range(1, 7)]
    book = openpyxl.load_workbook(feedback / "X004.xlsx")
    assert book.sheetnames[0] == "Lỗi cần sửa"
    listed = [[c.value for c in row] for row in book["Lỗi cần sửa"].iter_rows()]
    codes = [r[-1] for r in listed if r and isinstance(r[0], int)]
    assert codes == ["report-totals-differ"]
    (_, sheet, cell, _, _), = _found(manifest, "bao-cao_X004.xlsx")
    assert book[sheet][cell].comment is not None
    assert book[settings.META_SHEET]["C1"].value == "X004"


def test_province_reports_arrivals_of_offices_and_direct_schools(consolidated):
    """Who sent what: a report of another year or round is invalid; the others arrived after
    the registration deadline (15/10/2025: the run is later); the six direct schools sent
    nothing."""
    _, manifest, _ = consolidated
    rows = table_rows(manifest["_folder"] / "tong-hop-tinh.xlsx", "Tình trạng nộp", "STT")
    states = {r["Mã"]: r["Tình trạng"] for r in rows}
    assert {states[c] for c in ("X002", "X003")} == {"Không hợp lệ"}
    assert {states[c] for c in ("X001", "X004", "X005", "X006")} == {"Nộp muộn"}
    assert [states[f"T000{n}"] for n in range(1, 7)] == ["Chưa nộp"] * 6


def test_province_reports_the_store_keeps_each_row_with_its_office(consolidated):
    """The Sở's history store: every unit, person and registration of each counted report
    with the office that reported it; the Sở's own schools with none; the reports of another
    year or round recorded as inputs only."""
    import contextlib
    import sqlite3

    report, manifest, _ = consolidated
    store = manifest["_folder"].parents[2] / settings.PROVINCE_STORE_FILE
    sent = openpyxl.load_workbook(report, read_only=True)
    units = [r for r in sent[SHEETS["units"]].iter_rows(values_only=True)
             if isinstance(r[0], int)]
    staff = [list(r) for r in sent["Cá nhân"].iter_rows(values_only=True)]
    head = next(i for i, r in enumerate(staff) if r and r[0] == "STT")
    title, form = (staff[head].index(h) for h in ("Danh hiệu thi đua", "Hình thức khen thưởng"))
    people = [r for r in staff[head + 1:] if isinstance(r[0], int)]
    with contextlib.closing(sqlite3.connect(store)) as db:
        def rows(sql: str) -> list[tuple]:
            return db.execute(sql + " AND run_id = (SELECT id FROM runs WHERE round = "
                              "'tinh-dang-ky')").fetchall()

        by_office: dict = {}
        for office, code in rows("SELECT office, unit_code FROM units WHERE 1"):
            by_office.setdefault(office, set()).add(code)
        persons = rows("SELECT office, full_name, person_id FROM staff WHERE office = 'X001'")
        proposals = rows("SELECT result, count(*) FROM proposals WHERE office = 'X001' "
                         "AND subject = 'person' GROUP BY result")
    assert by_office == {None: {f"T000{n}" for n in range(1, 7)},
                         "X001": {r[1] for r in units}, "X005": {units[0][1]},
                         "X006": {"T0001"}}
    assert sorted(p[1] for p in persons) == sorted({r[1] for r in people})
    assert all(p[2] is not None for p in persons)
    assert proposals == [("registered", sum(bool(r[title]) + bool(r[form]) for r in people))]


def test_province_reports_a_corrupt_report_reaches_the_office_its_name_gives(sample_run,
                                                                              tmp_path_factory):
    """A report that cannot be opened is tied to the office whose code its file name holds:
    the office shows that it sent something unusable and its feedback says why; a file whose
    name names no office stays among the files of no known sender."""
    report = sample_run[1] / "tong-hop-so.xlsx"
    root = _province(tmp_path_factory, "so-corrupt", report)
    data = report.read_bytes()
    (root / "hop-thu" / "Bao cao x002 (gui lai).xlsx").write_bytes(data[: len(data) // 3])
    (root / "hop-thu" / "bao-cao.xlsx").write_bytes(data[: len(data) // 4])
    out = root / "out"
    result = CliRunner().invoke(main, ["consolidate", str(root / "hop-thu"), "--out", str(out),
                                       "--config", str(root / "tdkt.toml")])
    assert result.exit_code == 0, result.output
    folder = out / "2025-2026" / "dang-ky" / "tinh"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    offices = {o["office"]: (o["status"], o["file"]) for o in manifest["offices"]}
    assert offices["X002"] == ("Không hợp lệ", "Bao cao x002 (gui lai).xlsx")
    assert offices["X003"] == ("Chưa nộp", None)
    assert [(f["code"], f["unit"]) for f in manifest["findings"]
            if f["file"] == "Bao cao x002 (gui lai).xlsx"] == [("unreadable-workbook", "X002")]
    book = openpyxl.load_workbook(folder / "phan-hoi" / "X002.xlsx", read_only=True)
    listed = [r for r in book["Lỗi cần sửa"].iter_rows(values_only=True)
              if r and isinstance(r[0], int)]
    assert [r[-1] for r in listed] == ["unreadable-workbook"]
    assert [p.name for p in (folder / "phan-hoi" / "khong-xac-dinh").iterdir()] == [
        "bao-cao.xlsx"]
    rows = table_rows(folder / "tong-hop-tinh.xlsx", "Tình trạng nộp", "STT")
    assert {r["Mã"]: r["Tình trạng"] for r in rows}["X002"] == "Không hợp lệ"


@pytest.fixture(scope="module")
def results_consolidated(results_run, tmp_path_factory):
    """The sample office's results report (X001) and a copy (X002, no units of its own) in
    which one TTLĐXS collective has no CSTĐCS left: the Sở's results round on both."""
    report = results_run[1] / "tong-hop-so.xlsx"
    root = _province(tmp_path_factory, "so-results", report)
    inbox = root / "hop-thu"
    planted = {}

    def no_cstd(book):
        _keep_first_unit(keep=0)(book)
        ws = book["Tập thể"]
        top = _header_row(ws)
        title, count = _column(ws, top, "Danh hiệu thi đua"), _column(
            ws, top, "Số đạt Chiến sĩ thi đua cơ sở")
        row = next(r for r in range(top + 1, ws.max_row + 1)
                   if ws.cell(r, title).value == "Tập thể lao động xuất sắc")
        ws.cell(row, count).value = 0
        planted["cell"] = f"{chr(ord('A') + _column(ws, top, 'Tên tập thể') - 1)}{row}"

    _copy(report, inbox / "bao-cao_X002.xlsx", "X002", no_cstd)
    out = root / "out"
    result = CliRunner().invoke(main, ["consolidate", str(inbox), "--round", "ket-qua",
                                       "--out", str(out), "--config", str(root / "tdkt.toml")])
    assert result.exit_code == 0, result.output
    folder = out / "2025-2026" / "ket-qua" / "tinh"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return manifest | {"outputs_folder": str(folder)}, planted


def test_province_reports_the_sos_rules_decide_again_from_the_report(results_consolidated):
    manifest, planted = results_consolidated
    assert manifest["round"] == "tinh-ket-qua"
    assert [f for f in manifest["findings"] if f["file"] == "bao-cao_X001.xlsx"] == []
    found = [(f["code"], f["sheet"], f["cell"]) for f in manifest["findings"]
             if f["file"] == "bao-cao_X002.xlsx"]
    assert found == [("report-proposal-fails", "Tập thể", planted["cell"])]


def test_province_reports_council_list_shows_the_sos_verdict(results_consolidated):
    manifest, _ = results_consolidated
    path = Path(manifest["outputs_folder"]) / "tong-hop-tinh.xlsx"
    rows = table_rows(path, "Tập thể đề nghị", "STT")
    mine = [r for r in rows if r["Nơi gửi"] == OFFICES[1].office_name]
    assert mine and sum(r["Sở xét lại"] == "Không đạt" for r in mine) == 1
    # The clean report: nothing fails (earlier years' records are for the Sở to check).
    assert {r["Sở xét lại"] for r in rows if r["Nơi gửi"] == OFFICES[0].office_name} <= {
        "Đạt", "Cần kiểm tra", "Cần kiểm tra hồ sơ các năm trước"}


def test_province_reports_the_store_keeps_the_sos_verdict_on_each_proposal(
        results_consolidated):
    """At year end each proposal of a report is recorded with the office and the Sở's own
    verdict: the planted collective of X002 failed, the same collective of X001 did not."""
    import contextlib
    import sqlite3

    manifest, _ = results_consolidated
    store = Path(manifest["outputs_folder"]).parents[2] / settings.PROVINCE_STORE_FILE
    with contextlib.closing(sqlite3.connect(store)) as db:
        found = db.execute(
            "SELECT office, name, result FROM proposals WHERE kind = 'collective_title' "
            "AND code = 'tt_lao_dong_xuat_sac' AND run_id = (SELECT id FROM runs WHERE "
            "round = 'tinh-ket-qua') ORDER BY office, name").fetchall()
    failed = [(o, n) for o, n, r in found if r == "fail"]
    assert len(failed) == 1 and failed[0][0] == "X002"
    assert [r for o, n, r in found if (o, n) == ("X001", failed[0][1])] in (["pass"], ["check"])
    assert {r for _, _, r in found} <= {"pass", "check", "fail"}


# The Sở's allocation (phan-bo form): per office by its code or commune, per khối by its code.
BANG_KHEN = "Bằng khen của Chủ tịch UBND tỉnh"


def _allocation(path, rows) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "Phân bổ"
    ws["A1"] = "PHÂN BỔ HẠN MỨC KHEN THƯỞNG"
    for col, header in enumerate(["STT", "Khối thi đua", "Hình thức khen thưởng",
                                  "Số lượng phân bổ"], start=1):
        ws.cell(3, col, header)
    for i, (scope, limit) in enumerate(rows, start=1):
        for col, value in enumerate([i, scope, BANG_KHEN, limit], start=1):
            ws.cell(3 + i, col, value)
    book.save(path)


def _listed(report, sheet: str, name: str) -> list[tuple[str, int]]:
    """(name, Excel row) of the report's rows proposed for the Bằng khen UBND tỉnh."""
    ws = openpyxl.load_workbook(report, read_only=True)[sheet]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    top = next(i for i, r in enumerate(rows) if r and r[0] == "STT")
    form, col = rows[top].index("Hình thức khen thưởng"), rows[top].index(name)
    return [(r[col], i + 1) for i, r in enumerate(rows[top + 1:], start=top + 1)
            if isinstance(r[0], int) and r[form] == BANG_KHEN]


@pytest.fixture(scope="module")
def allocated(results_run, tmp_path_factory):
    """The sample office's results report as X001 and as X002: the Sở allocates one Bằng khen
    UBND tỉnh to X001 (by its code), none to X002 (by its commune), five to the khối K1 (by
    its code), and names a khối it does not have."""
    report = results_run[1] / "tong-hop-so.xlsx"
    root = _province(tmp_path_factory, "so-allocation", report)
    _copy(report, root / "hop-thu" / "bao-cao_X002.xlsx", "X002")
    text = (root / "tdkt.toml").read_text(encoding="utf-8")
    (root / "tdkt.toml").write_text(text.replace('registry = "danh-muc-so.xlsx"',
                                                 'registry = "danh-muc-so.xlsx"\n'
                                                 'allocation = "phan-bo-so.xlsx"'),
                                    encoding="utf-8")
    _allocation(root / "phan-bo-so.xlsx", [("X001", 1), ("Xã Số 2", 0), ("K1", 5),
                                            ("Khối Không Có", 2)])
    out = root / "out"
    result = CliRunner().invoke(main, ["consolidate", str(root / "hop-thu"), "--round",
                                       "ket-qua", "--out", str(out),
                                       "--config", str(root / "tdkt.toml")])
    assert result.exit_code == 0, result.output
    folder = out / "2025-2026" / "ket-qua" / "tinh"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return report, manifest, folder


def test_province_allocation_caps_each_offices_proposals_by_priority(allocated):
    report, manifest, folder = allocated
    persons = _listed(report, "Cá nhân", "Họ và tên")
    groups = _listed(report, "Tập thể", "Tên tập thể")
    proposed = len(persons) + len(groups)
    assert proposed >= 2  # the sample office proposes several for the Bằng khen UBND tỉnh
    over = {f["file"]: [] for f in manifest["findings"]}
    for f in manifest["findings"]:
        if f["code"] == "report-over-allocation":
            over[f["file"]].append((f["sheet"], f["cell"]))
    # X001: one within its number, the others beyond; X002: all beyond.
    assert len(over["bao-cao_X001.xlsx"]) == proposed - 1
    cells = {("Cá nhân", f"B{row}") for _, row in persons} | \
        {("Tập thể", f"B{row}") for _, row in groups}
    assert set(over["bao-cao_X002.xlsx"]) == cells
    assert set(over["bao-cao_X001.xlsx"]) < cells
    severities = {f["severity"] for f in manifest["findings"]
                  if f["code"] == "report-over-allocation"}
    assert severities == {"warning"}
    council = table_rows(folder / "tong-hop-tinh.xlsx", "Cá nhân đề nghị", "STT") + \
        table_rows(folder / "tong-hop-tinh.xlsx", "Tập thể đề nghị", "STT")
    mine = [r for r in council if r["Đề nghị"] == BANG_KHEN
            and r["Nơi gửi"] == OFFICES[0].office_name]
    assert len(mine) == proposed
    assert sum(r["Sở xét lại"] == "Vượt hạn mức" for r in mine) == proposed - 1


def test_province_allocation_sheet_and_unknown_scope(allocated):
    report, manifest, folder = allocated
    proposed = len(_listed(report, "Cá nhân", "Họ và tên")) + \
        len(_listed(report, "Tập thể", "Tên tập thể"))
    rows = table_rows(folder / "tong-hop-tinh.xlsx", "Phân bổ", "STT")
    got = [(r["Phòng Văn hóa – Xã hội / khối thi đua"], r["Số phân bổ"],
            r["Số đề nghị Sở xét đạt"], r["Vượt số phân bổ"]) for r in rows]
    assert got == [(OFFICES[0].office_name, 1, proposed, proposed - 1),
                   (OFFICES[1].office_name, 0, proposed, proposed),
                   ("Khối các trường THPT", 5, 0, 0)]
    unknown = [(f["file"], f["sheet"], f["cell"], f["value"]) for f in manifest["findings"]
               if f["code"] == "allocation-unknown-scope"]
    assert unknown == [("phan-bo-so.xlsx", "Phân bổ", "B7", "Khối Không Có")]
