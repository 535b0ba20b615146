"""The Sở workbooks as official documents (issue 14): the parts Nghị định 30/2020/NĐ-CP asks
for, only what the Sở needs, one legal basis per list, only proposals the Phòng passed, a list
for every title and form the province decides; printed on few clean pages. Since issue 15 the
workbook is also a form (bao-cao-dang-ky, bao-cao-ket-qua; tests/test_commune_report.py reads
it back): the document's table has one line per list, the lists are one table of persons and
one of collectives, with the title or form in a column."""

from __future__ import annotations

import functools
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import openpyxl
import pytest
import yaml

from pipeline.config import ConfigError, Office, load_config
from pipeline.forms.definitions import load_forms
from pipeline.reports import official
from pipeline.rules.ruleset import load_rules

from .conftest import SAMPLES, table_rows
from .render import RULE_ID, page_problems, pdf_pages, render_pdfs
from .test_end_to_end import _truth_totals

LAW = Path(__file__).resolve().parent.parent / "schemas" / "rules" / "law.yaml"
VOCAB_OF = {"title": "individual_titles", "collective_title": "collective_titles",
            "commendation": "commendations"}
# Working notes that belong to the Phòng workbook only.
NOTES = ("Cần kiểm tra hồ sơ", "cần đối chiếu", "Bộ quy tắc", "Có lỗi", "Quy tắc:",
         "quy định có hiệu lực ngày", "theo nguồn thứ cấp", "chưa xác minh", "Không hợp lệ")
FORMS = {"dang-ky": "bao-cao-dang-ky", "ket-qua": "bao-cao-ket-qua"}
# Pages measured on the samples (LibreOffice, A4): registration 6, results 5 (the document,
# every school of the office on two pages, the persons and the collectives).
MAX_PAGES = 6


@pytest.fixture(scope="module")
def books(sample_run, results_run) -> dict[str, Path]:
    """The two Sở workbooks of the samples, by round."""
    return {"dang-ky": sample_run[1] / "tong-hop-so.xlsx",
            "ket-qua": results_run[1] / "tong-hop-so.xlsx"}


@pytest.fixture(scope="module")
def decides() -> list[tuple[str, str]]:
    """(kind, code) the province decides, read from the rule file itself."""
    rules = yaml.safe_load(LAW.read_text(encoding="utf-8"))["rules"]
    params = next(r["params"] for r in rules if r["id"] == "province.decides")
    return [(kind, code) for kind, codes in params.items() for code in codes]


@functools.cache
def _texts(path: Path) -> dict[str, list[list[object]]]:
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}


def _strings(path: Path) -> list[str]:
    return [v for rows in _texts(path).values() for r in rows for v in r if isinstance(v, str)]


def _sheet_names(round_: str) -> list[str]:
    """The form's sheets, from its definition: the document, schools, persons, collectives."""
    return [sheet.name for sheet in load_forms().current(FORMS[round_]).sheets]


def _lists(path: Path, round_: str) -> dict[str, dict]:
    """The lists: label → {line (the document's line for it), rows [(name, unit)]}."""
    document, _, persons, collectives = _sheet_names(round_)
    lines = table_rows(path, document, "STT")
    rows = [(r["Họ và tên"], r["Tên đơn vị"], r["Danh hiệu thi đua"] or r["Hình thức khen thưởng"])
            for r in table_rows(path, persons, "STT") if isinstance(r["STT"], int)]
    rows += [(r["Tên tập thể"], r["Tên đơn vị"],
              r["Danh hiệu thi đua"] or r["Hình thức khen thưởng"])
             for r in table_rows(path, collectives, "STT") if isinstance(r["STT"], int)]
    return {line["Danh hiệu, hình thức khen thưởng"]: {
        "line": line, "rows": [(n, u) for n, u, what in rows
                               if what == line["Danh hiệu, hình thức khen thưởng"]]}
        for line in lines}


def _label(kind: str, code: str) -> str:
    return load_forms().vocabs[VOCAB_OF[kind]].label_of(code)


# Data


def test_official_level_names_are_whole():
    names = [v.attrs["name"] for v in load_forms().vocabs["levels"].values]
    assert names == ["Mầm non", "Tiểu học", "Trung học cơ sở", "Liên cấp TH và THCS",
                     "Liên cấp TH, THCS và THPT", "Trung học phổ thông", "Liên cấp THCS và THPT",
                     "Giáo dục thường xuyên"]


def test_official_parts_from_the_configuration_and_their_defaults():
    plain = Office(name="Phòng Văn hóa – Xã hội", parent="UBND XÃ TÂN LẬP", level="xa",
                   place="Tân Lập")
    assert official.office_symbol(plain) == "VHXH"
    assert official.office_symbol(Office("Phòng Giáo dục và Đào tạo", "UBND HUYỆN A", "huyen")
                                  ) == "GDĐT"
    assert official.distribution(plain) == ("- Như trên;", "- Lưu: VT.")
    assert official.locality(plain) == "xã Tân Lập"
    province = Office("Sở Giáo dục và Đào tạo", "UBND THÀNH PHỐ HÀ NỘI", "tinh", "Hà Nội")
    assert official.addressee(province) == "Sở Giáo dục và Đào tạo thành phố Hà Nội"
    config = load_config(SAMPLES / "tdkt.toml")
    assert official.addressee(config.province_office) == "Sở Giáo dục và Đào tạo tỉnh An Phú"
    assert config.office_for().signer_name and config.office_for().distribution


def test_official_distribution_must_be_a_list_of_lines(tmp_path):
    text = (SAMPLES / "tdkt.toml").read_text(encoding="utf-8").replace(
        'distribution = ["Như trên;", "UBND xã Tân Lập (để báo cáo);", "Lưu: VT, VHXH."]',
        "distribution = 3")
    assert "distribution = 3" in text
    for name in ("danh-muc-don-vi.xlsx", "quy-tac-phong.yaml"):
        (tmp_path / name).write_bytes((SAMPLES / name).read_bytes())
    (tmp_path / "tdkt.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="Nơi nhận"):
        load_config(tmp_path / "tdkt.toml")


def test_official_legal_basis_names_only_trusted_texts_in_force():
    now = load_rules("2025-2026")
    assert official.legal_basis(now, "title", "cstd_tinh") == (
        "Căn cứ: Luật Thi đua, khen thưởng số 06/2022/QH15; Nghị định 152/2025/NĐ-CP.")
    # Bắc Ninh's decision is the province's own text, cited with its number.
    bac_ninh = load_rules("2025-2026", province="bac-ninh")
    assert official.legal_basis(bac_ninh, "collective_title", "tt_lao_dong_xuat_sac") == (
        "Căn cứ: Luật Thi đua, khen thưởng số 06/2022/QH15; QĐ 86/2025/QĐ-UBND tỉnh Bắc Ninh.")
    # A repealed decree cited by a rule in force ("NĐ 98/2023 Điều 30") is not a basis.
    assert "98/2023" not in official.legal_basis(now, "collective_title", "co_thi_dua_tinh")
    before = load_rules("2024-2025")
    assert "Nghị định 98/2023/NĐ-CP" in official.legal_basis(before, "title", "cstd_tinh")


# The documents


@pytest.mark.parametrize("round_, code", [("dang-ky", "BC"), ("ket-qua", "TTr")])
def test_official_document_has_every_part(books, round_, code):
    config = load_config(SAMPLES / "tdkt.toml")
    office = config.office_for()
    sheets = _texts(books[round_])
    names = _sheet_names(round_)
    assert list(sheets) == [*names, "_tdkt"]
    cells = [v for r in sheets[names[0]] for v in r if isinstance(v, str)]
    assert cells[:4] == ["UBND XÃ TÂN LẬP", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
                         "PHÒNG VĂN HÓA – XÃ HỘI", "Độc lập – Tự do – Hạnh phúc"]
    assert re.fullmatch(rf"Số:\s+/{code}-VHXH", cells[4])
    assert re.fullmatch(r"Tân Lập, ngày \d\d tháng \d+ năm \d{4}", cells[5])
    assert cells[6] in ("BÁO CÁO", "TỜ TRÌNH")
    assert "Kính gửi: Sở Giáo dục và Đào tạo tỉnh An Phú" in cells
    assert not [c for c in cells if "UBND TỈNH" in c]
    at = cells.index("Nơi nhận:")
    assert cells[at + 1] == office.signer.upper() == "TRƯỞNG PHÒNG"
    assert cells[at + 2:at + 5] == ["- Như trên;", "- UBND xã Tân Lập (để báo cáo);",
                                    "- Lưu: VT, VHXH."]
    assert cells[-1] == office.signer_name == "Nguyễn Thị Thu Hà"
    for name in names[1:]:  # every attached table names the document it goes with
        attached = sheets[name][1][0]
        assert attached.startswith(f"(Kèm theo {cells[6].capitalize()} số")
        assert f"/{code}-VHXH" in attached


def test_official_documents_hold_no_working_notes(books):
    for path in books.values():
        for value in _strings(path):
            assert not any(note.casefold() in value.casefold() for note in NOTES), value
            assert not RULE_ID.findall(value), value


@pytest.mark.parametrize("round_", ["dang-ky", "ket-qua"])
def test_official_one_basis_line_per_list(books, decides, round_):
    path = books[round_]
    lists = _lists(path, round_)
    assert list(lists) == [_label(k, c) for k, c in decides]
    for label, found in lists.items():
        assert found["line"]["Căn cứ"].startswith("Luật Thi đua, khen thưởng"), label
        line = found["line"]
        assert line["Cộng"] == line["Cá nhân"] + line["Tập thể"] == len(found["rows"]), label
    basis = [v for v in _strings(path) if "Luật Thi đua, khen thưởng" in v]
    assert len(basis) == len(decides)


def _commune_truth(expected: dict, forms) -> dict[str, Counter]:
    """The generator's totals per cấp học, without the cấp học the Sở manages itself
    (levels.yaml `manager: province`): those schools send their files to the Sở."""
    sos = {v.code for v in forms.vocabs["levels"].values if v.attrs.get("manager") == "province"}
    return {level: t for level, t in _truth_totals(expected, "level", forms).items()
            if level not in sos}


def test_official_registration_lists_match_the_generator(books, expected):
    forms = load_forms()
    truth = sum(_commune_truth(expected, forms).values(), Counter())
    lists = _lists(books["dang-ky"], "dang-ky")
    for kind, code in (("title", "cstd_tinh"), ("collective_title", "tt_lao_dong_xuat_sac"),
                       ("collective_title", "co_thi_dua_tinh")):
        found = lists[_label(kind, code)]
        assert len(found["rows"]) == truth[code] > 0, code
        column = "Cá nhân" if kind == "title" else "Tập thể"
        assert found["line"][column] == truth[code]
    units = table_rows(books["dang-ky"], _sheet_names("dang-ky")[1], "STT")
    assert len(units) == sum(t["expected"] for t in _commune_truth(expected, forms).values())
    assert {r["Cấp học"] for r in units} <= set(forms.vocabs["levels"].codes)
    assert "Có lỗi" not in units[0] and "Hợp lệ" not in units[0]
    assert sum(r["Đã nộp"] == "Có" for r in units) == sum(
        t["submitted"] for t in _commune_truth(expected, forms).values())


def test_official_registration_schools_add_up_to_the_generator_truth(books, expected):
    """The Sở totals a province by cấp học from the schools' table: the sums equal the totals
    recomputed from the generator's record (what the report's table by cấp học showed before
    issue 15)."""
    forms = load_forms()
    truth = _commune_truth(expected, forms)
    found: dict[str, Counter] = defaultdict(Counter)
    for row in table_rows(books["dang-ky"], _sheet_names("dang-ky")[1], "STT"):
        t = found[row["Cấp học"]]
        t["expected"] += 1
        t["submitted"] += row["Đã nộp"] == "Có"
        t["staff_registry"] += row["Số CB-GV-NV"]
        t["registered"] += row["Số đăng ký"]
        for vocab in ("individual_titles", "collective_titles"):
            for value in forms.vocabs[vocab].values:
                if value.code != "khong_dang_ky":
                    t[value.code] += row[value.abbr]
    assert set(found) == set(truth)
    for level, t in found.items():
        for key, count in t.items():
            assert count == truth[level][key], (level, key)


# Results: what the Phòng passed goes up; what waits for records stays


def _outcomes(results_dir: Path) -> dict[tuple, str]:
    """Each proposal's outcome recomputed from the manifest's rule-by-rule decisions: failed
    by any rule, else over a quota, else waiting for a check, else passed."""
    manifest = json.loads((results_dir / "manifest.json").read_text(encoding="utf-8"))
    names = {u["unit"]: u["name"] for u in manifest["units"]}
    results: dict[tuple, set] = defaultdict(set)
    for d in manifest["decisions"]:
        kind, code = d["proposal"].split(":")
        results[(kind, code, d["person"], names[d["unit"]], d["unit"], d["row"])].add(
            d["result"])
    order = ("fail", "over-quota", "check", "pass")
    return {key: next(r for r in order if r in found) for key, found in results.items()}


def test_official_results_lists_hold_only_what_the_office_passed(books, results_run, decides):
    outcomes = _outcomes(results_run[1])
    lists = _lists(books["ket-qua"], "ket-qua")
    required = {("title", "cstd_tinh"), ("commendation", "bang_khen_tinh"),
                ("collective_title", "tt_lao_dong_xuat_sac"),
                ("collective_title", "co_thi_dua_tinh")}
    assert required <= set(decides)
    listed = 0
    for kind, code in decides:
        passed = sorted((name, unit) for (k, c, name, unit, _, _), result in outcomes.items()
                        if (k, c) == (kind, code) and result == "pass")
        assert sorted(lists[_label(kind, code)]["rows"]) == passed, code
        listed += len(passed)
    assert listed >= 50
    assert lists[_label("title", "cstd_tinh")]["rows"] == []  # all wait for records
    assert sum(not f["rows"] and f["line"]["Cộng"] == 0 for f in lists.values()) >= 2


def test_official_waiting_proposals_are_on_the_phong_sheet(books, results_run, decides):
    outcomes = _outcomes(results_run[1])
    waiting = sorted((name, unit, _label(k, c)) for (k, c, name, unit, _, _), result
                     in outcomes.items() if (k, c) in decides and result == "check")
    assert len(waiting) >= 11
    rows = table_rows(results_run[1] / "tong-hop-phong.xlsx", official.t("waiting_sheet"), "STT")
    assert sorted((r["Họ và tên / tập thể"], r["Đơn vị"], r["Đề nghị"]) for r in rows) == waiting


# Print


@pytest.mark.libreoffice
def test_official_documents_print_on_few_clean_pages(books, tmp_path):
    copies = {}
    for round_, path in books.items():
        copies[round_] = tmp_path / f"so-{round_}.xlsx"
        copies[round_].write_bytes(path.read_bytes())
    pdfs = render_pdfs(copies.values(), tmp_path / "pdf")
    counts = {}
    for round_, path in copies.items():
        pages = pdf_pages(pdfs[path])
        counts[round_] = len(pages)
        assert page_problems(pages) == [], round_
        assert "Kính gửi" in pages[0] and "Nơi nhận" in "".join(pages)
    assert all(1 < n <= MAX_PAGES for n in counts.values()), counts
