"""The commune office's report to the Sở is a form (issue 15, point 1): the report tdkt writes
for the sample office is read back by the engine's own reader with no findings, its values
are those of the Phòng workbook (read with openpyxl), and they survive a trip through
LibreOffice (xlsx → ods → xlsx); the blank report for offices without tdkt, filled by hand,
reads with no findings too."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from collections import Counter
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml

from pipeline.config import Office
from pipeline.engine import read_submission
from pipeline.forms.template import write_office_report_template
from pipeline.ingest.normalize import Context
from pipeline.ingest.submission import Registry, Submission
from pipeline.reports.results import write_results_province

from .conftest import ROOT, SAMPLES, soffice, table_rows

OFFICE = "X001"  # the sample office's code in the Sở's registry (input_samples/tdkt.toml)
FORMS = {"dang-ky": "bao-cao-dang-ky", "ket-qua": "bao-cao-ket-qua"}
LAW = ROOT / "schemas" / "rules" / "law.yaml"
VOCAB_OF = {"title": "individual_titles", "collective_title": "collective_titles",
            "commendation": "commendations"}


def _registry(*codes: str) -> Registry:
    """The Sở's registry as the reader needs it: the offices' codes."""
    return Registry(units=pd.DataFrame({"unit_name": [f"Phòng {c}" for c in codes]},
                                       index=pd.Index(codes, name="unit_code")))


def _read(path: Path, forms, form_id: str) -> Submission:
    """A report read by the engine's per-file reader, as the Sở's round reads it."""
    return read_submission(path, path.parent, forms, _registry(OFFICE),
                           Context(vocabs=forms.vocabs), form_id)


def _decides() -> list[tuple[str, str]]:
    """(kind, code) the province decides, read from the rule file itself."""
    rules = yaml.safe_load(LAW.read_text(encoding="utf-8"))["rules"]
    params = next(r["params"] for r in rules if r["id"] == "province.decides")
    return [(kind, code) for kind, codes in params.items() for code in codes]


def _labels(forms, kind: str) -> set[str]:
    """The labels of the titles or forms of one kind the province decides."""
    vocab = forms.vocabs[VOCAB_OF[kind]]
    return {vocab.label_of(c) for k, c in _decides() if k == kind}


def _label(forms, vocab: str, code: object) -> str | None:
    return forms.vocabs[vocab].label_of(code) if isinstance(code, str) else None


def _records(sub: Submission, sheet: str) -> list[dict]:
    return sub.frames[sheet].reset_index(drop=True).to_dict("records")


@pytest.fixture(scope="module")
def reports(sample_run, results_run) -> dict[str, Path]:
    return {"dang-ky": sample_run[1] / "tong-hop-so.xlsx",
            "ket-qua": results_run[1] / "tong-hop-so.xlsx"}


@pytest.fixture(scope="module")
def read_back(reports, forms) -> dict[str, Submission]:
    return {round_: _read(path, forms, FORMS[round_]) for round_, path in reports.items()}


# The report as tdkt writes it


@pytest.mark.parametrize("round_", ["dang-ky", "ket-qua"])
def test_commune_report_reads_with_no_findings(read_back, round_):
    sub = read_back[round_]
    assert [f.message for f in sub.findings] == []
    assert sub.form.key == f"{FORMS[round_]} 2026.1"
    assert sub.unit_code == OFFICE
    assert {k: sub.raw.meta[k] for k in ("form", "version", "unit", "school_year", "round")} == {
        "form": FORMS[round_], "version": "2026.1", "unit": OFFICE, "school_year": "2025-2026",
        "round": round_}
    assert sub.raw.meta["tdkt_version"]
    assert set(sub.frames) == {"lists", "units", "staff", "collectives"}


def test_commune_report_id_sheet_is_very_hidden(reports):
    book = openpyxl.load_workbook(reports["ket-qua"])
    assert book["_tdkt"].sheet_state == "veryHidden"
    assert [c.value for c in book["_tdkt"][1]][:5] == ["bao-cao-ket-qua", "2026.1", OFFICE,
                                                       "2025-2026", "ket-qua"]


@pytest.mark.parametrize("round_", ["dang-ky", "ket-qua"])
def test_commune_report_counts_add_up_to_its_lists(read_back, forms, round_):
    """One line per list the province decides, in the rule's order; the totals row is not
    read as a line; each line counts the rows of its list."""
    sub = read_back[round_]
    lines = _records(sub, "lists")
    assert [r["list"] for r in lines] == [forms.vocabs[VOCAB_OF[k]].label_of(c)
                                          for k, c in _decides()]
    people, groups = _records(sub, "staff"), _records(sub, "collectives")
    for (kind, code), line in zip(_decides(), lines, strict=True):
        persons = sum(r.get(kind) == code for r in people)
        collectives = sum(r.get(kind) == code for r in groups)
        assert (line["persons"], line["collectives"], line["total"]) == (
            persons, collectives, persons + collectives), code
        assert line["basis"].startswith("Luật Thi đua, khen thưởng")
    assert sum(r["total"] for r in lines) == len(people) + len(groups)


def _sos(forms) -> set[str]:
    """The cấp học the Sở manages itself (levels.yaml): their schools are not in the report."""
    return {v.code for v in forms.vocabs["levels"].values if v.attrs.get("manager") == "province"}


def test_commune_report_registration_equals_the_phong_workbook(read_back, sample_run, forms):
    sub = read_back["dang-ky"]
    phong = sample_run[1] / "tong-hop-phong.xlsx"
    titles, commendations = _labels(forms, "title"), _labels(forms, "commendation")
    units = {r["Mã đơn vị"]: r for r in table_rows(phong, "Theo đơn vị", "Mã đơn vị")
             if r["Cấp học"] not in _sos(forms)}
    names = {r["Tên đơn vị"] for r in units.values()}
    # Persons: one row per person and title or form the province decides.
    want = Counter()
    for r in table_rows(phong, "Cá nhân đăng ký", "STT"):
        for label in (r["Danh hiệu đăng ký"], r["Hình thức khen thưởng"]):
            if label in titles | commendations and r["Đơn vị"] in names:
                want[(r["Họ và tên"], r["Ngày sinh"].date(), r["Đơn vị"], label)] += 1
    got = Counter((r["full_name"], r["birth_date"], r["unit_name"],
                   _label(forms, "individual_titles", r["title"])
                   or _label(forms, "commendations", r["commendation"]))
                  for r in _records(sub, "staff"))
    assert got == want and len(want) > 10
    # Collectives.
    groups = _labels(forms, "collective_title") | commendations
    want = Counter((r["Tên tập thể"], r["Đơn vị"], label)
                   for r in table_rows(phong, "Tập thể đăng ký", "STT")
                   for label in (r["Danh hiệu đăng ký"], r["Hình thức khen thưởng"])
                   if label in groups and r["Đơn vị"] in names)
    got = Counter((r["collective_name"], r["unit_name"],
                   _label(forms, "collective_titles", r["collective_title"])
                   or _label(forms, "commendations", r["commendation"]))
                  for r in _records(sub, "collectives"))
    assert got == want and len(want) > 10
    # Every school of the office the Sở does not manage itself, with its counts.
    rows = _records(sub, "units")
    assert [r["unit_code"] for r in rows] == list(units)
    for r in rows:
        unit = units[r["unit_code"]]
        assert r["submitted"] == ("no" if unit["Tình trạng"] == "Chưa nộp" else "yes")
        assert (r["unit_name"], r["level"], r["block"]) == (
            unit["Tên đơn vị"], unit["Cấp học"], unit["Khối thi đua"])
        for column, header in (("staff_registry", "Số CB-GV-NV"), ("registered", "Số đăng ký"),
                               ("lao_dong_tien_tien", "LĐTT"), ("cstd_co_so", "CSTĐCS"),
                               ("cstd_tinh", "CSTĐ tỉnh"), ("tt_lao_dong_xuat_sac", "TTLĐXS"),
                               ("co_thi_dua_tinh", "Cờ thi đua")):
            assert r[column] == unit[header], (r["unit_code"], column)


def _passed(phong, sheet: str, name: str, decided: set[str], names: set[str]) -> Counter:
    """The proposals the Phòng passed for a title or form the province decides, in the
    schools its report holds: (name, school, proposal)."""
    return Counter((r[name], r["Đơn vị"], r["Đề nghị"]) for r in table_rows(phong, sheet, "STT")
                   if r["Đề nghị"] in decided and r["Kết quả"] == "Đạt" and r["Đơn vị"] in names)


def test_commune_report_results_equal_the_phong_workbook(read_back, results_run, forms):
    sub = read_back["ket-qua"]
    phong = results_run[1] / "tong-hop-phong.xlsx"
    names = {r["Tên đơn vị"] for r in table_rows(SAMPLES / "danh-muc-don-vi.xlsx",
                                                 "Danh mục đơn vị", "STT")
             if r["Cấp học"] not in _sos(forms)}  # the registry as the office typed it
    for table, sheet, header, name, title in (
            ("staff", "Đề nghị cá nhân", "Họ và tên", "full_name", "title"),
            ("collectives", "Đề nghị tập thể", "Tên tập thể", "collective_name",
             "collective_title")):
        decided = _labels(forms, title) | _labels(forms, "commendation")
        want = _passed(phong, sheet, header, decided, names)
        got = Counter((r[name], r["unit_name"], _label(forms, VOCAB_OF[title], r[title])
                       or _label(forms, "commendations", r["commendation"]))
                      for r in _records(sub, table))
        assert got == want, table
    assert sum(want.values()) >= 50  # the collectives
    # Every collective carries what the province's rules read.
    for r in _records(sub, "collectives"):
        assert isinstance(r["members"], int) and r["members"] >= 1
        assert all(isinstance(r[c], int) for c in ("completed_tasks", "lao_dong_count",
                                                   "cstd_count", "disciplined"))
    # The schools' counts of passed titles and forms add up to the Phòng's totals by cấp học.
    units = pd.DataFrame(_records(sub, "units"))
    assert set(units["submitted"]) == {"yes", "no"}
    for row in table_rows(phong, "Theo cấp học", "Cấp học"):
        mine = units[units["level"] == row["Cấp học"]]
        for code, header in (("lao_dong_tien_tien", "LĐTT đạt"), ("cstd_co_so", "CSTĐCS đạt"),
                             ("tt_lao_dong_xuat_sac", "TTLĐXS đạt"),
                             ("bang_khen_tinh", "BK UBND tỉnh đạt"),
                             ("giay_khen", "Giấy khen đạt")):
            assert mine[code].sum() == (row.get(header) or 0), (row["Cấp học"], code)
        assert (mine["submitted"] == "yes").sum() == row["Đã nộp"]


def test_commune_report_carries_what_the_rules_read(results_run, forms, tmp_path):
    """Persons the Phòng passed for the province's titles carry every input the province's
    rules read (the sample passes none: some are passed here by hand)."""
    result, _ = results_run
    verdicts = result.verdicts.copy()
    chosen = (verdicts["subject"] == "person") & verdicts["proposal"].isin(
        ["cstd_tinh", "bang_khen_tinh"])
    assert chosen.sum() >= 5
    verdicts.loc[chosen, "result"] = "pass"
    path = write_results_province(dataclasses.replace(result, verdicts=verdicts),
                                  tmp_path / "tong-hop-so.xlsx")
    sub = _read(path, forms, "bao-cao-ket-qua")
    assert [f.message for f in sub.findings] == []
    staff = result.staff.set_index(["unit_code", "row"])
    rows = _records(sub, "staff")
    want = sorted((u, r, p) for u, r, p in zip(verdicts.loc[chosen, "unit_code"],
                                                verdicts.loc[chosen, "row"],
                                                verdicts.loc[chosen, "proposal"], strict=True))
    found = []
    for row in rows:
        source = staff.loc[(row["unit_code"], _row_of(staff, row))]
        for column in ("full_name", "birth_date", "grade", "months_worked", "discipline",
                       "initiative", "initiative_level", "vote_share", "pending_case"):
            same = source[column] if pd.notna(source[column]) else None
            assert row[column] == same, column
        found.append((row["unit_code"], _row_of(staff, row), row["title"] or row["commendation"]))
    assert sorted(found) == want


def _row_of(staff: pd.DataFrame, row: dict) -> int:
    """The school-file row of a person of the report (by unit, name and birth date)."""
    mine = staff.loc[row["unit_code"]]
    return int(mine[(mine["full_name"] == row["full_name"])
                    & (mine["birth_date"] == row["birth_date"])].index[0])


# Through LibreOffice


@pytest.mark.libreoffice
def test_commune_report_survives_libreoffice(reports, read_back, forms, tmp_path):
    """Opened and saved through LibreOffice (xlsx → ods → xlsx): still no findings, same data."""
    if soffice() is None:
        pytest.skip("LibreOffice (soffice) is not installed; .ci/run installs it on Debian")
    copies = []
    for round_, path in reports.items():
        copies.append(tmp_path / f"{round_}.xlsx")
        shutil.copy(path, copies[-1])
    ods = _convert(copies, "ods", tmp_path / "ods")
    back = _convert(ods, "xlsx", tmp_path / "back")
    for round_, path in zip(reports, back, strict=True):
        sub = _read(path, forms, FORMS[round_])
        assert [f.message for f in sub.findings] == [], round_
        assert sub.raw.meta["round"] == round_ and sub.raw.meta["unit"] == OFFICE
        for sheet, frame in read_back[round_].frames.items():
            assert _records(sub, sheet) == frame.reset_index(drop=True).to_dict("records"), \
                (round_, sheet)


def _convert(paths: list[Path], fmt: str, out_dir: Path) -> list[Path]:
    """Many files converted by one LibreOffice call (its start-up is most of the cost)."""
    import subprocess

    out_dir.mkdir()
    subprocess.run([soffice(), f"-env:UserInstallation=file://{out_dir / 'lo-profile'}",
                    "--headless", "--convert-to", fmt, "--outdir", str(out_dir),
                    *map(str, paths)], check=True, capture_output=True, timeout=240)
    converted = [out_dir / f"{p.stem}.{fmt}" for p in paths]
    assert all(p.exists() for p in converted)
    return converted


# The blank report, filled by hand


SO = Office(name="Sở Giáo dục và Đào tạo", parent="UBND TỈNH AN PHÚ", level="tinh",
            place="An Phú")
PEOPLE = [
    {"full_name": "Nguyễn Văn An", "birth_date": dt.date(1980, 3, 4), "sex": "Nam",
     "position": "Giáo viên", "unit_code": "T0101", "unit_name": "Trường Tiểu học Hòa Bình",
     "level": "TH", "title": "Chiến sĩ thi đua cấp tỉnh", "staff_group": "GV",
     "grade": "Hoàn thành xuất sắc nhiệm vụ", "months_worked": 12,
     "initiative": "Dạy học theo dự án", "initiative_level": "Cấp tỉnh", "vote_share": 90,
     "history": "3 năm liên tục đạt Chiến sĩ thi đua cơ sở"},
    {"full_name": "Trần Thị Bình", "birth_date": dt.date(1985, 7, 9), "sex": "Nữ",
     "position": "Hiệu trưởng", "unit_code": "T0102", "unit_name": "Trường THCS Hòa Bình",
     "level": "THCS", "commendation": "Bằng khen của Chủ tịch UBND tỉnh",
     "grade": "Hoàn thành xuất sắc nhiệm vụ", "months_worked": 12, "pending_case": "Không"},
]
GROUPS = [
    {"collective_name": "Trường Tiểu học Hòa Bình", "collective_kind": "Đơn vị",
     "unit_code": "T0101", "unit_name": "Trường Tiểu học Hòa Bình", "level": "TH",
     "collective_title": "Tập thể lao động xuất sắc", "members": 30, "completed_tasks": 30,
     "lao_dong_count": 25, "cstd_count": 3, "disciplined": 0, "vote_share": 95},
    {"collective_name": "Tổ chuyên môn 1", "collective_kind": "Tổ chuyên môn",
     "unit_code": "T0101", "unit_name": "Trường Tiểu học Hòa Bình", "level": "TH",
     "collective_title": "Tập thể lao động xuất sắc", "members": 8, "completed_tasks": 8,
     "lao_dong_count": 7, "cstd_count": 1, "disciplined": 0},
]
UNITS = [
    {"unit_code": "T0101", "unit_name": "Trường Tiểu học Hòa Bình", "level": "TH",
     "block": "Khối Tiểu học", "submitted": "Có", "staff_registry": 30,
     "cstd_tinh": 1, "tt_lao_dong_xuat_sac": 2},
    {"unit_code": "T0102", "unit_name": "Trường THCS Hòa Bình", "level": "THCS",
     "block": "Khối THCS", "submitted": "Có", "staff_registry": 25, "bang_khen_tinh": 1},
]


def _fill(path: Path, form, lists: list[str]) -> None:
    """Type into the template as an office would, choosing dropdown labels."""
    wb = openpyxl.load_workbook(path)
    rows = {"staff": PEOPLE, "collectives": GROUPS, "units": UNITS,
            "lists": [{"list": label, "persons": int(label in ("Chiến sĩ thi đua cấp tỉnh",
                                                               "Bằng khen của Chủ tịch UBND tỉnh")),
                       "collectives": 2 * (label == "Tập thể lao động xuất sắc")}
                      for label in lists]}
    for line in rows["lists"]:
        line["total"] = line["persons"] + line["collectives"]
    for sheet in form.sheets:
        ws = wb[sheet.name]
        header = next(r for r in range(1, 40) if ws.cell(r, 1).value == "STT")
        col = {ws.cell(header, c).value: c for c in range(1, ws.max_column + 1)}
        for i, row in enumerate(rows[sheet.id]):
            ws.cell(header + 1 + i, 1).value = i + 1
            for column in sheet.columns:
                if column.id in row and column.id != "list":
                    cell = ws.cell(header + 1 + i, col[column.header])
                    assert cell.protection.locked is False, (sheet.name, cell.coordinate)
                    cell.value = row[column.id]
                elif column.id == "list":  # prefilled, one line per list
                    assert ws.cell(header + 1 + i, col[column.header]).value == row["list"]
    wb.save(path)


def test_commune_report_template_filled_by_hand_reads_clean(forms, tmp_path):
    form = forms.current("bao-cao-ket-qua")
    lists = [forms.vocabs[VOCAB_OF[k]].label_of(c) for k, c in _decides()]
    path = write_office_report_template(
        form, "X002", "Phòng Văn hóa – Xã hội xã Hòa Bình", "2025-2026",
        tmp_path / "bao-cao-ket-qua_X002.xlsx",
        vocabs=forms.vocabs, province=SO, parent="UBND xã Hòa Bình", lists=lists, units=2)
    heading = openpyxl.load_workbook(path)["Tờ trình"]
    assert [heading.cell(r, 1).value for r in (1, 2)] == ["UBND XÃ HÒA BÌNH",
                                                           "PHÒNG VĂN HÓA – XÃ HỘI XÃ HÒA BÌNH"]
    _fill(path, form, lists)
    sub = read_submission(path, path.parent, forms, _registry("X002"),
                          Context(vocabs=forms.vocabs), "bao-cao-ket-qua")
    assert [f.message for f in sub.findings] == []
    assert sub.unit_code == "X002" and sub.raw.meta["round"] == "ket-qua"
    staff = _records(sub, "staff")
    assert [(r["full_name"], r["unit_code"], r["title"], r["commendation"]) for r in staff] == [
        ("Nguyễn Văn An", "T0101", "cstd_tinh", None),
        ("Trần Thị Bình", "T0102", None, "bang_khen_tinh")]
    assert staff[0]["initiative_level"] == "tinh" and staff[0]["vote_share"] == 90
    assert [r["lao_dong_count"] for r in _records(sub, "collectives")] == [25, 7]
    assert [r["total"] for r in _records(sub, "lists")] == [
        1 if label in ("Chiến sĩ thi đua cấp tỉnh", "Bằng khen của Chủ tịch UBND tỉnh")
        else 2 if label == "Tập thể lao động xuất sắc" else 0 for label in lists]
    assert [r["unit_code"] for r in _records(sub, "units")] == ["T0101", "T0102"]


def test_commune_report_the_phong_is_told_which_schools_go_to_the_so(sample_run):
    """The schools of the registry whose cấp học the Sở manages (a level with a THPT part)
    are not in the report; the run's summary names them for the Phòng."""
    from pipeline.rounds.base import round_named

    result, out = sample_run
    book = openpyxl.load_workbook(SAMPLES / "danh-muc-don-vi.xlsx", read_only=True)
    rows = [r for r in book.worksheets[0].iter_rows(values_only=True) if isinstance(r[0], int)]
    thpt = sorted(r[1] for r in rows if "THPT" in str(r[3]))
    assert thpt  # the sample office's registry has two TH-THCS-THPT schools
    (line,) = round_named("dang-ky").summary(result)
    assert line.startswith(f"Báo cáo gửi Sở không gồm {len(thpt)} trường")
    assert line.endswith(f": {', '.join(thpt)}; các trường này gửi hồ sơ thẳng cho Sở.")
    report = openpyxl.load_workbook(out / "tong-hop-so.xlsx", read_only=True)
    listed = {r[1] for r in report["Đơn vị"].iter_rows(values_only=True) if isinstance(r[0], int)}
    assert listed and not listed & set(thpt)
