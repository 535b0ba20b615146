"""`tdkt run` with a Sở's configuration (issue 15, point 5): the month-end job runs the Sở's
round, writes the Sở's progress report (offices and direct schools, arrivals from the input
archive's first sightings), mails the Sở its summary and each office and direct school with
findings its feedback, each message once, and nothing further up.

A small province: three offices (X001 sends a report tdkt wrote from a three-school commune,
X002 sends later a copy whose totals do not add up, X003 sends nothing) and the six direct
schools of tests/sample_province_registry (T0001 clean, T0002 and T0006 with a wrong title;
T0006 has no e-mail in the registry; the others send nothing). Registration due 15/10/2025;
the first run is on 12/10, the second on 20/10."""

from __future__ import annotations

import datetime as dt
import io
import random
import shutil
from collections import Counter

import openpyxl
import pytest
from click.testing import CliRunner

from pipeline import settings
from pipeline.cli import main
from pipeline.config import load_config
from pipeline.engine import consolidate
from pipeline.forms.definitions import load_forms
from pipeline.monthly.job import messages, office_addressee, round_for, run_month

from .conftest import table_rows
from .sample_inbox import SCHOOL_YEAR, Unit, _collectives, _people, filled_template, write_registry
from .sample_province_registry import UNITS, OfficeRow, write_province_registry
from .test_monthly import _attachments, _text, running_smtp, signed_with

aiosmtpd = pytest.importorskip("aiosmtpd.controller", reason="aiosmtpd is a dev dependency")

LEADERS = "lanh-dao@sogddt.anphu.gov.vn"
OFFICES = (
    OfficeRow("X001", "Phòng Văn hóa – Xã hội xã Tân Lập", "Xã Tân Lập", "vhxh@tanlap.gov.vn"),
    OfficeRow("X002", "Phòng Văn hóa – Xã hội xã Hòa Bình", "Xã Hòa Bình",
              "vhxh@hoabinh.gov.vn"),
    OfficeRow("X003", "Phòng Văn hóa – Xã hội phường An Phú", "Phường An Phú",
              "vhxh@anphu.gov.vn"),
)
EMAILS = {u.unit_code: u.email for u in UNITS} | {o.office_code: o.email for o in OFFICES}
SO_CONFIG = """school_year = "2025-2026"
registry = "danh-muc-so.xlsx"

[rules]
province = "mac-dinh"

[inboxes]
dang-ky = "hop-thu"

[[offices]]
name = "Sở Giáo dục và Đào tạo"
parent = "UBND TỈNH AN PHÚ"
level = "tinh"
place = "An Phú"
signer = "Giám đốc"
email = "vanphong@sogddt.anphu.gov.vn"

[province_office]
name = "Ban Thi đua – Khen thưởng tỉnh"
parent = "UBND TỈNH AN PHÚ"
place = "An Phú"

[recipients]
so = ["{leaders}"]

[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
sender = "tdkt@sogddt.anphu.gov.vn"
"""
COMMUNE_CONFIG = """school_year = "2025-2026"
registry = "danh-muc-don-vi.xlsx"

[rules]
province = "mac-dinh"

[[offices]]
name = "Phòng Văn hóa – Xã hội"
parent = "UBND XÃ TÂN LẬP"
level = "xa"
place = "Tân Lập"
signer = "Trưởng phòng"
code = "X001"

[province_office]
name = "Sở Giáo dục và Đào tạo"
parent = "UBND TỈNH AN PHÚ"
place = "An Phú"
"""
DUE = dt.date(2025, 10, 15)
FIRST, SECOND = (dt.datetime(2025, 10, d, 8, 0).astimezone() for d in (12, 20))
SIGNED = ["Trân trọng,", "Giám đốc", "Sở Giáo dục và Đào tạo – UBND TỈNH AN PHÚ"]


def _unit(rng: random.Random, code: str, name: str, level: str) -> Unit:
    unit = Unit(code=code, name=name, level=level, block=f"Khối {level}", disadvantaged=False,
                managers=2, teachers=rng.randint(6, 10), support=2, email=f"{code}@anphu.edu.vn")
    unit.people = _people(rng, unit, 0.15)
    unit.collectives = _collectives(rng, unit)
    return unit


def _commune_report(root, forms, rng):
    """X001's report to the Sở, written by tdkt from a commune inbox of three schools."""
    units = [_unit(rng, f"01{k}01", f"{stem} Tân Lập", level) for k, (level, stem) in
             enumerate([("MN", "Trường Mầm non"), ("TH", "Trường Tiểu học"),
                        ("THCS", "Trường THCS")], start=1)]
    (root / "hop-thu").mkdir(parents=True)
    (root / "tdkt.toml").write_text(COMMUNE_CONFIG, encoding="utf-8")
    write_registry(units, forms, root / "danh-muc-don-vi.xlsx")
    config = load_config(root / "tdkt.toml", SCHOOL_YEAR)
    for unit in units:
        filled_template(forms.current("dang-ky"), forms, unit,
                        root / "hop-thu" / f"dang-ky_{unit.code}.xlsx", config.office_for(),
                        dt.date(2025, 10, 10))
    consolidate(root / "hop-thu", root / "out", config, run_date=dt.date(2025, 10, 10),
                forms=forms, store=root / "out" / "store.sqlite")
    return root / "out" / SCHOOL_YEAR / "dang-ky" / "tong-hop-so.xlsx"


def _totals_off(source, target) -> None:
    """X002's report: X001's with its own hidden id, no schools of its own, and two persons
    more on its first list than it lists."""
    book = openpyxl.load_workbook(source)
    book[settings.META_SHEET]["C1"] = "X002"
    units = book["Đơn vị"]
    top = next(r for r in range(1, units.max_row + 1) if units.cell(r, 1).value == "STT")
    for row in range(top + 1, units.max_row + 1):
        if isinstance(units.cell(row, 1).value, int):
            for col in range(1, units.max_column + 1):
                units.cell(row, col).value = None
    lists = book["Báo cáo"]
    top = next(r for r in range(1, lists.max_row + 1) if lists.cell(r, 1).value == "STT")
    col = next(c for c in range(1, lists.max_column + 1) if lists.cell(top, c).value == "Cá nhân")
    lists.cell(top + 1, col).value = int(lists.cell(top + 1, col).value or 0) + 2
    book.save(target)


def _direct_files(inbox, forms, rng) -> None:
    """T0001 clean; T0002 and T0006 with a title no list has, on their first staff row."""
    from pipeline.config import Office

    office = Office(name="Sở Giáo dục và Đào tạo", parent="UBND TỈNH AN PHÚ", level="tinh",
                    place="An Phú")
    form = forms.current("dang-ky")
    for row in UNITS:
        if row.unit_code not in ("T0001", "T0002", "T0006"):
            continue
        unit = Unit(code=row.unit_code, name=row.unit_name, level=row.level, block=row.block,
                    disadvantaged=False, managers=2, teachers=8, support=2, email="")
        unit.people = _people(rng, unit, 0.15)
        unit.collectives = _collectives(rng, unit)
        path = inbox / f"dang-ky_{row.unit_code}.xlsx"
        filled = filled_template(form, forms, unit, path, office, dt.date(2025, 10, 10))
        if row.unit_code != "T0001":
            cell = f"{filled.letters[('staff', 'title')]}{filled.first_row['staff']}"
            filled.wb[form.sheet("staff").name][cell] = "Danh hiệu không có thật"
            filled.wb.save(path)


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    """The province, its two month-end runs and a third that finds nothing new, through a
    local mail server: messages per run, the outputs' folder."""
    with running_smtp() as (handler, port):
        root = tmp_path_factory.mktemp("so-cuoi-thang")
        forms = load_forms()
        rng = random.Random(515)
        report = _commune_report(root / "xa", forms, rng)
        (root / "tdkt.toml").write_text(SO_CONFIG.format(leaders=LEADERS, port=port),
                                        encoding="utf-8")
        write_province_registry(root / "danh-muc-so.xlsx", offices=OFFICES, forms=forms)
        inbox = root / "hop-thu"
        inbox.mkdir()
        shutil.copy(report, inbox / "bao-cao_X001.xlsx")
        _direct_files(inbox, forms, rng)
        config = load_config(root / "tdkt.toml")
        out = root / "out"
        runs, sent = [], []
        for now, add in ((FIRST, None), (SECOND, "bao-cao_X002.xlsx"), (SECOND, None)):
            if add:
                _totals_off(report, inbox / add)
            start = len(handler.messages)
            runs.append(run_month(config, out, "2025-10", now=now))
            sent.append(handler.messages[start:])
            # The progress report of the month, as this run left it (the next run replaces it).
            shutil.copy(runs[-1].rounds[0].report, root / f"tien-do-{len(runs)}.xlsx")
        yield {"root": root, "out": out, "runs": runs, "sent": sent}


def _signed(message) -> bool:
    return signed_with(message, SIGNED)


# The round


def test_monthly_province_runs_the_sos_round_into_its_folder(month):
    (run,) = month["runs"][0].rounds
    assert run.round == "tinh-dang-ky" == round_for(load_config(month["root"] / "tdkt.toml"),
                                                    "dang-ky")
    folder = month["out"] / SCHOOL_YEAR / "dang-ky" / "tinh"
    assert (folder / "tong-hop-tinh.xlsx").is_file() and (folder / "manifest.json").is_file()
    assert not (month["out"] / SCHOOL_YEAR / "dang-ky" / "tong-hop-phong.xlsx").exists()
    # The Sở's own history store, never the Phòng's.
    assert (month["out"] / "tdkt-lich-su-tinh.sqlite").is_file()
    assert not (month["out"] / "tdkt-lich-su.sqlite").exists()


# Who sent what


PROGRESS = "2025-10_tinh-dang-ky.xlsx"


def _progress(month, n: int) -> dict[str, dict]:
    """The rows of the progress report as run `n` (0, 1, 2) wrote it."""
    assert month["runs"][n].rounds[0].report == month["out"] / SCHOOL_YEAR / "tien-do" / PROGRESS
    path = month["root"] / f"tien-do-{n + 1}.xlsx"
    return {r["Mã"]: r for r in table_rows(path, "Theo đơn vị", "STT")}


def test_monthly_province_progress_of_offices_and_direct_schools(month):
    """Second run (20/10, due 15/10): X001's report was first seen on 12/10 (on time, from the
    archive, not the run date), X002's on 20/10 (5 days late), X003 sent nothing (5 days);
    the direct schools by the date on their form (10/10), the silent ones 5 days overdue."""
    rows = _progress(month, 1)
    assert list(rows) == ["X001", "X002", "X003", *(u.unit_code for u in UNITS)]
    seen = {c: (r["Tình trạng"], r["Số ngày muộn"], r["Loại"], r["Thư điện tử"])
            for c, r in rows.items()}
    assert seen == {
        "X001": ("Đúng hạn", 0, "Phòng VH-XH", EMAILS["X001"]),
        "X002": ("Nộp muộn", 5, "Phòng VH-XH", EMAILS["X002"]),
        "X003": ("Chưa nộp", 5, "Phòng VH-XH", EMAILS["X003"]),
        "T0001": ("Đúng hạn", 0, "Đơn vị trực thuộc Sở", EMAILS["T0001"]),
        "T0002": ("Đúng hạn", 0, "Đơn vị trực thuộc Sở", EMAILS["T0002"]),
        "T0003": ("Chưa nộp", 5, "Đơn vị trực thuộc Sở", EMAILS["T0003"]),
        "T0004": ("Chưa nộp", 5, "Đơn vị trực thuộc Sở", EMAILS["T0004"]),
        "T0005": ("Chưa nộp", 5, "Đơn vị trực thuộc Sở", EMAILS["T0005"]),
        "T0006": ("Đúng hạn", 0, "Đơn vị trực thuộc Sở", None)}
    assert rows["X001"]["Thời điểm nhận"].date() == FIRST.date()
    assert rows["X001"]["Căn cứ thời điểm nhận"] == "Lần đầu thấy tệp trong hộp thư"
    assert rows["X002"]["Thời điểm nhận"].date() == SECOND.date()
    assert rows["T0001"]["Thời điểm nhận"].date() == dt.date(2025, 10, 10)
    assert rows["X001"]["Tệp đã nhận"] == "bao-cao_X001.xlsx"
    kinds = {r["Loại"]: r for r in table_rows(month["root"] / "tien-do-2.xlsx", "Theo loại",
                                               "Loại")}
    assert (kinds["Phòng VH-XH"]["Đúng hạn"], kinds["Phòng VH-XH"]["Nộp muộn"],
            kinds["Phòng VH-XH"]["Chưa nộp"]) == (1, 1, 1)
    assert kinds["Đơn vị trực thuộc Sở"]["Tổng số đơn vị"] == 6


def test_monthly_province_first_run_before_the_deadline(month):
    rows = _progress(month, 0)
    assert {c: (r["Tình trạng"], r["Số ngày muộn"]) for c, r in rows.items()
            if c.startswith("X")} == {"X001": ("Đúng hạn", 0), "X002": ("Chưa nộp", 0),
                                      "X003": ("Chưa nộp", 0)}


# Messages


def test_monthly_province_first_run_mails_the_so_and_the_schools_with_findings(month):
    sent = month["sent"][0]
    got = Counter(recipient for recipient, _ in sent)
    # X001's report is clean, X002 and X003 sent nothing, T0001 is clean, T0006 has no e-mail;
    # nothing goes to the Sở's parent.
    assert got == {LEADERS: 1, EMAILS["T0002"]: 1}
    summary = next(m for r, m in sent if r == LEADERS)
    text = _text(summary)
    assert text.startswith("Kính gửi: Lãnh đạo Sở Giáo dục và Đào tạo,")
    assert "Tổng hợp đăng ký thi đua toàn tỉnh năm học 2025-2026 (hạn 15/10/2025" in text
    assert "Phòng Văn hóa – Xã hội chưa gửi báo cáo: X002 Phòng Văn hóa – Xã hội xã Hòa Bình; " \
           "X003 Phòng Văn hóa – Xã hội phường An Phú." in text
    assert "- Báo cáo của 3 Phòng Văn hóa – Xã hội: đúng hạn 1; nộp muộn 0; chưa nộp 2; " \
           "không hợp lệ 0." in text
    assert "- Hồ sơ của 6 đơn vị trực thuộc Sở: đúng hạn 3; nộp muộn 0; chưa nộp 3" in text
    assert "Đơn vị trực thuộc chưa nộp: T0003" in text
    assert "tdkt approve" not in text and "duyệt" not in text
    files = _attachments(summary)
    assert set(files) == {"tong-hop-tinh.xlsx", "tong-hop-phong.xlsx",
                          "2025-10_tinh-dang-ky.xlsx"}
    book = openpyxl.load_workbook(io.BytesIO(files["tong-hop-tinh.xlsx"]))
    assert "Tình trạng nộp" in book.sheetnames
    school = next(m for r, m in sent if r == EMAILS["T0002"])
    assert _text(school).startswith("Kính gửi: Trường THPT chuyên Lê Quý Đôn,")
    assert "Danh hiệu không có thật" in _text(school)
    assert "gửi lại cho Sở." in _text(school)
    assert set(_attachments(school)) == {"T0002.xlsx"}
    for recipient, message in sent:
        sender = message["From"].addresses[0]
        assert (sender.display_name, sender.addr_spec) == ("Sở Giáo dục và Đào tạo",
                                                           "tdkt@sogddt.anphu.gov.vn")
        assert _signed(message), recipient


def test_monthly_province_office_with_findings_gets_its_feedback(month):
    """X002's report arrives: X002 gets its feedback (a copy of its report with the hidden id
    kept, the faulty cell noted), addressed to its office; X001 (clean) gets nothing."""
    got = Counter(recipient for recipient, _ in month["sent"][1])
    assert got[EMAILS["X002"]] == 1 and got[LEADERS] == 1
    assert EMAILS["X001"] not in got and EMAILS["X003"] not in got
    assert set(got) <= {LEADERS, EMAILS["X002"], EMAILS["T0002"]}
    message = next(m for r, m in month["sent"][1] if r == EMAILS["X002"])
    assert message["Subject"] == ("[TĐKT] Phản hồi báo cáo đăng ký thi đua — "
                                  "Phòng Văn hóa – Xã hội xã Hòa Bình")
    text = _text(message)
    assert text.startswith("Kính gửi: Phòng Văn hóa – Xã hội xã Hòa Bình,")
    assert ("báo cáo đăng ký thi đua năm học 2025-2026 của Phòng (tệp “bao-cao_X002.xlsx”). "
            "Có 1 lỗi cần sửa và 0 cảnh báo:") in text
    assert "gửi lại chính tệp đó cho Sở" in text and _signed(message)
    files = _attachments(message)
    assert set(files) == {"X002.xlsx"}
    book = openpyxl.load_workbook(io.BytesIO(files["X002.xlsx"]))
    assert book[settings.META_SHEET]["C1"].value == "X002"
    assert book.sheetnames[0] == "Lỗi cần sửa"


@pytest.mark.parametrize("n", [0, 1])
def test_monthly_province_sos_workbook_tells_the_same_arrivals(month, tmp_path, n):
    """The Sở's workbook mailed after a run (sheet "Tình trạng nộp") and the progress report
    of that run say the same of every office and direct school."""
    summary = next(m for r, m in month["sent"][n] if r == LEADERS)
    path = tmp_path / "tong-hop-tinh.xlsx"
    path.write_bytes(_attachments(summary)["tong-hop-tinh.xlsx"])
    sheet = {r["Mã"]: (r["Tình trạng"], r["Số ngày muộn"])
             for r in table_rows(path, "Tình trạng nộp", "STT")}
    progress = _progress(month, n)
    assert sheet == {c: (r["Tình trạng"], r["Số ngày muộn"]) for c, r in progress.items()}


def test_monthly_province_first_sightings_from_the_store(month):
    """What the Sở's round can read at decision time (the store the run archived into) gives
    the arrivals the progress report shows: X001 on 12/10, X002 on 20/10."""
    from pipeline.reports.completeness import first_sightings, province_completeness
    from pipeline.store.database import Store

    result = month["runs"][1].rounds[0].result
    with Store.open(month["out"] / "tdkt-lich-su-tinh.sqlite") as store:
        seen = first_sightings(store, result.submissions)
    assert {f: seen[f].date() for f in ("bao-cao_X001.xlsx", "bao-cao_X002.xlsx")} == {
        "bao-cao_X001.xlsx": FIRST.date(), "bao-cao_X002.xlsx": SECOND.date()}
    table = province_completeness(result, DUE, seen)
    rows = _progress(month, 1)
    assert {c: (s.value, d) for c, s, d in zip(table["unit_code"], table["state"],
                                               table["days_late"], strict=True)} == {
        c: (_STATES[r["Tình trạng"]], r["Số ngày muộn"]) for c, r in rows.items()}


_STATES = {"Đúng hạn": "on_time", "Nộp muộn": "late", "Chưa nộp": "missing",
           "Không hợp lệ": "invalid"}


def test_monthly_province_nothing_new_nothing_sent(month):
    assert month["sent"][2] == []
    delivery = month["runs"][2].delivery
    assert delivery.sent == [] and len(delivery.skipped) >= 3


def test_monthly_province_cli_run_says_nothing_of_an_approval(month, tmp_path):
    """`tdkt run` on the Sở's folder (dry run, today's date): exit 0, the Sở's round, no
    "waiting for the Phòng's approval" line, the messages written as .eml files."""
    out = tmp_path / "out"
    shutil.copytree(month["out"], out)
    result = CliRunner().invoke(main, ["run", "--period", "2025-10", "--dry-run", "--config",
                                       str(month["root"] / "tdkt.toml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "tinh-dang-ky" in result.output and "Chưa gửi Sở" not in result.output
    written = sorted((out / "thu-gui" / "2025-10").glob("*.eml"))
    assert written  # the run date changed: the workbooks differ, so the messages go again


def test_monthly_province_summary_without_recipients_goes_to_the_sos_own_address(month):
    """No [recipients] so: the Sở's summary goes to the address of its [[offices]] entry; the
    offices' and schools' messages do not change."""
    from dataclasses import replace

    config = load_config(month["root"] / "tdkt.toml")
    both = {bool(recipients): {i.key: i.to for i in messages(
        month["runs"][1], replace(config, recipients=recipients))}
        for recipients in (config.recipients, {})}
    assert both[False].pop("2025-10/tinh-dang-ky/so") == ("vanphong@sogddt.anphu.gov.vn",)
    assert both[True].pop("2025-10/tinh-dang-ky/so") == (LEADERS,)
    assert both[False] == both[True] and EMAILS["X002"] in {a for to in both[True].values()
                                                             for a in to}


@pytest.mark.parametrize("name, commune, expected", [
    ("PHONG VHXH Tan Lap", "Xã Tân Lập", "PHONG VHXH Tan Lap"),
    ("Phòng Văn hóa – Xã hội xã Tân Lập", "Xã Tân Lập", "Phòng Văn hóa – Xã hội xã Tân Lập"),
    ("UBND xã Tân Lập", "Xã Tân Lập", "Phòng Văn hóa – Xã hội xã Tân Lập"),
    ("", "Phường An Phú", "Phòng Văn hóa – Xã hội phường An Phú"),
    ("", "Hòa Bình", "Phòng Văn hóa – Xã hội xã Hòa Bình"),
    ("phòng văn hóa – xã hội đặc khu Côn Đảo", None, "phòng văn hóa – xã hội đặc khu Côn Đảo"),
])
def test_monthly_province_office_addressee(name, commune, expected):
    assert office_addressee(name, commune) == expected
