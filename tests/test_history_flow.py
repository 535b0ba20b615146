"""The store across years: import earlier lists, decide consecutive-year rules, show history."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.engine import consolidate
from pipeline.forms.definitions import load_forms
from pipeline.rules import eligibility as el
from pipeline.store.database import open_store

from .conftest import SAMPLES, table_rows

COVERED = {"bad-school-year"}
RESULTS = SAMPLES / "hop-thu-ket-qua"
REGISTRATIONS = SAMPLES / "hop-thu"


def _history_list(path: Path, rows: list[tuple]) -> Path:
    """A list in the documented import layout (the lich-su form), written as an office would."""
    sheet = load_forms().current("lich-su").sheets[0]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet.name
    ws.append([c.header for c in sheet.columns])
    for i, row in enumerate(rows, start=1):
        ws.append([i, *row])
        ws.cell(ws.max_row, 4).number_format = "dd/mm/yyyy"
    wb.save(path)
    return path


@pytest.fixture(scope="module")
def first_year(tmp_path_factory):
    """Registration and results of 2025-2026 consolidated once, with no history yet."""
    out = tmp_path_factory.mktemp("out")
    config = load_config(SAMPLES / "tdkt.toml")
    consolidate(REGISTRATIONS, out, config)
    result = consolidate(RESULTS, out, config, round="ket-qua", registration_inbox=REGISTRATIONS)
    return out, config, result


def _candidates(result):
    """People proposed for CSTĐ cấp tỉnh, with what identifies them."""
    chosen = result.verdicts[(result.verdicts["kind"] == "title")
                             & (result.verdicts["proposal"] == "cstd_tinh")]
    staff = result.staff.set_index(["unit_code", "row"])
    return [(v.name, staff.loc[(v.unit_code, v.row), "birth_date"], v.unit_code)
            for v in chosen.itertuples()]


def _label(code: str) -> str:
    return load_forms().vocabs["individual_titles"].label_of(code)


def test_history_rounds_are_recorded_once_each(first_year):
    out, config, _ = first_year
    connection = open_store(out / "tdkt-lich-su.sqlite")
    try:
        runs = connection.round_runs("2025-2026")
        assert sorted(r["round"] for r in runs) == ["dang-ky", "ket-qua"]
        people = connection.execute("SELECT COUNT(*) FROM persons").fetchone()[0]
    finally:
        connection.close()
    consolidate(REGISTRATIONS, out, config)  # a re-run replaces its round, adds nobody
    connection = open_store(out / "tdkt-lich-su.sqlite")
    try:
        assert len(connection.round_runs("2025-2026")) == 2
        assert connection.execute("SELECT COUNT(*) FROM persons").fetchone()[0] == people
    finally:
        connection.close()


def test_history_decides_consecutive_years_once_imported(first_year, tmp_path):
    out, config, before = first_year
    checks = before.decisions[before.decisions["rule_id"] == "cstd_tinh.base"]
    assert len(checks) >= 3 and (checks["result"] == el.CHECK).all()
    (a, a_born, a_unit), (b, b_born, b_unit), (c, c_born, c_unit) = _candidates(before)[:3]
    rows = [("2023-2024", a, a_born, a_unit, "HTXSNV", _label("cstd_co_so"), None, "12/QĐ",
             dt.date(2024, 6, 1)),
            ("2024-2025", a, a_born, a_unit, "HTXSNV", _label("cstd_co_so"), None, "15/QĐ",
             dt.date(2025, 6, 1)),
            ("2023-2024", b, b_born, b_unit, "HTTNV", _label("lao_dong_tien_tien"), None,
             "12/QĐ", dt.date(2024, 6, 1)),
            ("2024-2025", b, b_born, b_unit, "HTXSNV", _label("cstd_co_so"), None, "15/QĐ",
             dt.date(2025, 6, 1)),
            ("2024-2025", c, c_born, c_unit, "HTXSNV", _label("cstd_co_so"), None, "15/QĐ",
             dt.date(2025, 6, 1))]
    # A CSTĐCS of this year with two earlier CSTĐCS years, not proposed for CSTĐ cấp tỉnh, and
    # a person imported under a name one letter off (a typo the office must confirm).
    passed = before.verdicts[(before.verdicts["proposal"] == "cstd_co_so")
                             & (before.verdicts["result"] == el.PASS)].iloc[0]
    staff = before.staff.set_index(["unit_code", "row"])
    d, d_born, d_unit = passed["name"], staff.loc[(passed["unit_code"], passed["row"]),
                                                  "birth_date"], passed["unit_code"]
    other = before.staff[~before.staff["full_name"].isin([a, b, c, d])].iloc[0]
    typo = other["full_name"][:-1] + ("x" if other["full_name"][-1] != "x" else "y")
    rows += [(year, d, d_born, d_unit, "HTXSNV", _label("cstd_co_so"), None, "15/QĐ", None)
             for year in ("2023-2024", "2024-2025")]
    rows.append(("2024-2025", typo, other["birth_date"], other["unit_code"], "HTTNV",
                 _label("lao_dong_tien_tien"), None, None, None))
    path = _history_list(tmp_path / "lich-su.xlsx", rows)
    imported = CliRunner().invoke(main, ["import-history", str(path), "--out", str(out),
                                         "--config", str(SAMPLES / "tdkt.toml")])
    assert imported.exit_code == 0, imported.output
    assert "Đã nhập 16 dòng" in imported.output
    after = consolidate(RESULTS, out, config, round="ket-qua", registration_inbox=REGISTRATIONS)
    decided = after.decisions[after.decisions["rule_id"] == "cstd_tinh.base"].set_index("name")
    assert decided.loc[a, "result"] == el.PASS  # CSTĐCS 2023-2024 and 2024-2025
    assert decided.loc[b, "result"] == el.FAIL  # LĐTT only in 2023-2024
    assert decided.loc[c, "result"] == el.CHECK  # nothing known of 2023-2024
    assert "theo kho lịch sử" in decided.loc[a, "reason"]
    book = after.out_dir / "tong-hop-phong.xlsx"
    eligible = table_rows(book, "Đủ điều kiện cao hơn", "STT")
    # Two CSTĐCS years and HTXSNV last year (imported) and this year: both higher forms.
    assert sorted(r["Mã quy tắc"] for r in eligible if r["Họ và tên"] == d) == [
        "bang_khen_tinh.base", "cstd_tinh.base"]
    assert sorted(r["Quy tắc"] for r in eligible if r["Họ và tên"] == d) == sorted(
        after.rules.rule(r).name for r in ("bang_khen_tinh.base", "cstd_tinh.base"))
    assert "Xác nhận trùng người" in openpyxl.load_workbook(book, read_only=True).sheetnames
    assert any(typo in line and "sai một chữ" in line for line in imported.output.splitlines())
    shown = CliRunner().invoke(main, ["history", f"{a}, {a_born:%d/%m/%Y}", "--out", str(out),
                                      "--config", str(SAMPLES / "tdkt.toml")])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert any("2023-2024" in x and "Chiến sĩ thi đua cơ sở" in x and "danh sách cũ" in x
               for x in lines)
    assert any("2025-2026" in x and "Chiến sĩ thi đua cấp tỉnh" in x for x in lines)
    unit = CliRunner().invoke(main, ["history", a_unit, "--out", str(out), "--config",
                                     str(SAMPLES / "tdkt.toml")])
    assert unit.exit_code == 0 and f"Đơn vị {a_unit}:" in unit.output


def test_history_import_reports_bad_rows(first_year, tmp_path):
    out, _, _ = first_year
    path = _history_list(tmp_path / "sai.xlsx", [
        ("2024", "Lê Văn Tám", dt.date(1980, 1, 1), "01001", None, _label("lao_dong_tien_tien"),
         None, None, None)])
    result = CliRunner().invoke(main, ["import-history", str(path), "--out", str(out),
                                       "--config", str(SAMPLES / "tdkt.toml")])
    assert result.exit_code == 0
    assert "không phải năm học" in result.output and "Đã nhập 0 dòng" in result.output


def test_history_two_rows_of_one_round_are_never_one_person(tmp_path):
    import pandas as pd

    from pipeline.store.record import assign_person_ids

    staff = pd.DataFrame([
        {"unit_code": u, "full_name": "Nguyễn Thị Hương", "birth_date": dt.date(1985, 3, 4)}
        for u in ("01001", "01002")])
    connection = open_store(tmp_path / "kho.sqlite")
    try:
        ids, notes = assign_person_ids(connection, staff, "2025-2026")
    finally:
        connection.close()
    assert ids[0] != ids[1]
    assert notes["how"].tolist() == ["ambiguous"]


def test_history_office_confirmation_is_kept_and_followed(tmp_path):
    """An ambiguous person confirmed by the office in the Phòng workbook is one person after."""
    import pandas as pd

    from pipeline.reports.registration import CONFIRM_HEADER, MATCHES_SHEET
    from pipeline.store.record import assign_person_ids, known_people

    store = tmp_path / "kho.sqlite"
    staff = pd.DataFrame([
        {"unit_code": u, "full_name": "Nguyễn Thị Hương", "birth_date": dt.date(1985, 3, 4)}
        for u in ("01001", "01002")])
    connection = open_store(store)
    try:
        ids, _ = assign_person_ids(connection, staff, "2024-2025")
    finally:
        connection.close()
    book = tmp_path / "tong-hop-phong.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = MATCHES_SHEET
    ws.append(["STT", "Họ và tên", "Mã người trong kho", CONFIRM_HEADER])
    ws.append([1, "Nguyễn Thị Hương", int(ids[1]), int(ids[0])])
    wb.save(book)
    result = CliRunner().invoke(main, ["confirm", str(book), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "Đã lưu 1 xác nhận" in result.output
    connection = open_store(store)
    try:
        assert set(known_people(connection)["person_id"]) == {int(ids[0])}
    finally:
        connection.close()


def test_history_medal_once_and_years_of_service(first_year, tmp_path):
    """Kỷ niệm chương: 20 years in the sector (15 with 5 in hard areas), and only once."""
    import shutil

    out, config, _ = first_year
    inbox = tmp_path / "ket-qua"
    shutil.copytree(RESULTS, inbox)
    path = sorted(inbox.glob("*.xlsx"))[1]
    wb = openpyxl.load_workbook(path)
    ws = wb["Cá nhân"]
    header = next(r for r in range(1, 20) if ws.cell(r, 1).value == "STT")
    col = {ws.cell(header, c).value: c for c in range(1, ws.max_column + 1)}
    medal = load_forms().vocabs["commendations"].label_of("ky_niem_chuong_vsngd")
    people = []
    for offset, (years, hard) in enumerate([(25, None), (16, 6), (12, None)], start=1):
        row = header + offset
        ws.cell(row, col["Hình thức khen thưởng đề nghị"]).value = medal
        ws.cell(row, col["Số năm công tác trong ngành"]).value = years
        ws.cell(row, col["Số năm ở vùng đặc biệt khó khăn"]).value = hard
        born = ws.cell(row, col["Ngày sinh"]).value  # a datetime, as openpyxl reads dates
        people.append((ws.cell(row, col["Họ và tên"]).value, born.date()))
    wb.save(path)
    unit = wb["Đơn vị"]["C6"].value
    first, _ = people[0]
    history = _history_list(tmp_path / "knc.xlsx", [
        ("2023-2024", first, people[0][1], unit, None, None, medal, "7/QĐ-BGDĐT", None)])
    imported = CliRunner().invoke(main, ["import-history", str(history), "--out", str(out),
                                         "--config", str(SAMPLES / "tdkt.toml")])
    assert imported.exit_code == 0, imported.output
    result = consolidate(inbox, tmp_path / "out", config, round="ket-qua",
                         registration_inbox=REGISTRATIONS, store=out / "tdkt-lich-su.sqlite")
    decided = result.decisions[result.decisions["proposal"] == "ky_niem_chuong_vsngd"]
    table = {(d.name, d.rule_id): d.result for d in decided.itertuples()}
    names = [name for name, _ in people]
    assert table[(names[0], "ky_niem_chuong_vsngd.years")] == el.PASS
    assert table[(names[0], "ky_niem_chuong_vsngd.once")] == el.FAIL  # received in 2023-2024
    assert table[(names[1], "ky_niem_chuong_vsngd.years")] == el.PASS  # 16 years, 6 hard
    assert table[(names[1], "ky_niem_chuong_vsngd.once")] == el.CHECK
    assert table[(names[2], "ky_niem_chuong_vsngd.years")] == el.FAIL
