"""input_samples/ → output/: planted faults, totals against the generator's truth, re-runs."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

import openpyxl
import pytest

from . import golden
from .conftest import SAMPLES, table_rows, totals_row, workbook_cells

TITLES = ["lao_dong_tien_tien", "cstd_co_so", "cstd_tinh"]
COLLECTIVES = ["tt_lao_dong_tien_tien", "tt_lao_dong_xuat_sac", "co_thi_dua_tinh"]


def _registry() -> dict[str, dict[str, Any]]:
    """The sample registry read straight from its workbook (not through the pipeline)."""
    ws = openpyxl.load_workbook(SAMPLES / "danh-muc-don-vi.xlsx", read_only=True).active
    rows = list(ws.iter_rows(values_only=True))
    header = next(i for i, r in enumerate(rows) if r and "Mã đơn vị" in r)
    keys = rows[header]
    return {r[keys.index("Mã đơn vị")]: dict(zip(keys, r, strict=False))
            for r in rows[header + 1:] if r and r[1]}


def _truth_totals(expected: dict, key: str, forms) -> dict[str, Counter]:
    """Totals per cấp học or khối recomputed from the generator's record."""
    registry = _registry()
    totals: dict[str, Counter] = defaultdict(Counter)
    levels = forms.vocabs["levels"]
    for code, unit in expected["units"].items():
        reg = registry[code]
        group = levels.exact[reg["Cấp học"].lower()] if key == "level" else reg["Khối thi đua"]
        t = totals[group]
        t["expected"] += 1
        t["missing"] += unit["status"] == "Chưa nộp"
        t["submitted"] += unit["status"] != "Chưa nộp"
        t["valid"] += unit["status"] == "Hợp lệ"
        t["with_errors"] += unit["status"] == "Có lỗi"
        t["staff_registry"] += reg["Số CBQL"] + reg["Số GV"] + reg["Số NV"]
        for title, _group in unit["staff"]:
            t[title] += 1
            t["registered"] += title != "khong_dang_ky"
        for title in unit["collectives"]:
            t[title] += 1
    return totals


def _abbr(forms, vocab: str, code: str) -> str:
    return forms.vocabs[vocab].by_code(code).abbr


def _check_row(row: dict, truth: Counter, forms) -> None:
    assert row["Trong danh mục"] == truth["expected"]
    assert row["Đã nộp"] == truth["submitted"]
    assert row["Chưa nộp"] == truth["missing"]
    if "Hợp lệ" in row:  # the Phòng's sheets; the Sở's report leaves file statuses out
        assert row["Hợp lệ"] == truth["valid"]
        assert row["Có lỗi"] == truth["with_errors"]
    assert row["Số CB-GV-NV"] == truth["staff_registry"]
    assert row["Số đăng ký"] == truth["registered"]
    share = truth["registered"] / truth["staff_registry"] if truth["staff_registry"] else 0
    assert row["Tỉ lệ đăng ký"] == pytest.approx(share)
    for title in TITLES:
        assert row[_abbr(forms, "individual_titles", title)] == truth[title], title
    for title in COLLECTIVES:
        assert row[_abbr(forms, "collective_titles", title)] == truth[title], title


# Planted faults


def test_end_to_end_every_planted_fault_is_found_exactly(sample_run, expected):
    _, out = sample_run
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    found: dict[str, Counter] = defaultdict(Counter)
    for f in manifest["findings"]:
        assert set(f) >= {"file", "sheet", "cell", "code", "severity", "value", "expected",
                          "message"}
        found[f["file"]][(f["code"], f["sheet"], f["cell"])] += 1
    planted = {name: Counter(tuple(x) for x in spec["findings"])
               for name, spec in expected["files"].items()}
    assert sum(bool(p) for p in planted.values()) >= 10
    assert {k: v for k, v in found.items() if v} == {k: v for k, v in planted.items() if v}
    inputs = {i["file"]: i for i in manifest["inputs"]}
    assert set(inputs) == set(expected["files"])
    for name, spec in expected["files"].items():
        assert inputs[name]["unit"] == spec["unit"], name
        assert (inputs[name]["classification"] == "accepted") == spec["counted"], name
        assert len(inputs[name]["sha256"]) == 64


def test_end_to_end_feedback_workbooks_carry_each_school_s_findings(sample_run, expected):
    _, out = sample_run
    for name, spec in expected["files"].items():
        if spec["unit"]:
            path = out / "phan-hoi" / f"{spec['unit']}.xlsx"
        else:
            matches = list((out / "phan-hoi" / "khong-xac-dinh").glob("*.xlsx"))
            path = next(p for p in matches if openpyxl.load_workbook(p, read_only=True)[
                "Lỗi cần sửa"]["A5"].value.endswith(f"“{name}”".upper()))
        rows = [r for r in table_rows(path, "Lỗi cần sửa", "STT")
                if r.get("Mã lỗi (để tra cứu)")]
        got = Counter((r["Mã lỗi (để tra cứu)"], r["Trang tính"], r["Ô"] or None) for r in rows
                      if r["Tệp"] == name)
        assert got == Counter(tuple(x) for x in spec["findings"]), name
        wb = openpyxl.load_workbook(path)
        for _code, sheet, cell in spec["findings"]:
            if sheet and cell and not cell.isdigit() and name.endswith(".xlsx") \
                    and spec["counted"]:
                marked = wb[sheet][cell]
                assert marked.comment is not None, (name, cell)
                assert marked.fill.fgColor.rgb in ("FFFFC7CE", "FFFFF2CC"), (name, cell)


def test_end_to_end_messages_are_vietnamese_and_name_the_place(sample_run):
    result, _ = sample_run
    for f in result.findings:
        assert f.message and f.hint
        if f.cell and f.sheet:
            assert f.cell in f.message and f.sheet in f.message, f.message


# Totals


def test_end_to_end_office_totals_match_the_generator_truth(sample_run, expected, forms):
    _, out = sample_run
    path = out / "tong-hop-phong.xlsx"
    by_level = _truth_totals(expected, "level", forms)
    rows = table_rows(path, "Theo cấp học", "Cấp học")
    assert {r["Cấp học"] for r in rows} == set(by_level)
    for row in rows:
        _check_row(row, by_level[row["Cấp học"]], forms)
    grand = sum(by_level.values(), Counter())
    _check_row(totals_row(path, "Theo cấp học", "Cấp học"), grand, forms)
    by_block = _truth_totals(expected, "block", forms)
    rows = table_rows(path, "Theo khối thi đua", "Khối thi đua")
    assert len(by_block) >= 4 and {r["Khối thi đua"] for r in rows} == set(by_block)
    for row in rows:
        _check_row(row, by_block[row["Khối thi đua"]], forms)


# The Sở's report by cấp học: tests/test_official.py
# (test_official_registration_schools_add_up_to_the_generator_truth sums its schools' table).


def test_end_to_end_lists_hold_every_counted_person(sample_run, expected):
    _, out = sample_run
    path = out / "tong-hop-phong.xlsx"
    people = table_rows(path, "Cá nhân đăng ký", "STT")
    others = table_rows(path, "Cá nhân chưa đăng ký", "STT")
    staff = [title for u in expected["units"].values() for title, _ in u["staff"]]
    assert len(people) == sum(t != "khong_dang_ky" for t in staff)
    assert len(others) == sum(t == "khong_dang_ky" for t in staff)
    assert [r["STT"] for r in people] == list(range(1, len(people) + 1))
    missing = table_rows(out / "tong-hop-phong.xlsx", "Chưa nộp – không hợp lệ", "STT")
    truth = {c for c, u in expected["units"].items() if u["status"] == "Chưa nộp"}
    assert {r["Mã đơn vị"] for r in missing} == truth


# Re-runs


def test_end_to_end_rerun_gives_identical_workbooks(sample_run, sample_rerun):
    _, out = sample_run
    again = sample_rerun[0]  # the same inbox again, on the same date, into another folder
    for path in sorted(out.rglob("*.xlsx")):
        other = again.out_dir / path.relative_to(out)
        assert workbook_cells(path) == workbook_cells(other), path.name
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == \
        sorted(p.relative_to(again.out_dir) for p in again.out_dir.rglob("*"))


def test_end_to_end_inputs_are_never_modified(sample_rerun):
    _, before, after = sample_rerun  # every file's bytes and time, around a whole consolidation
    assert len(before) > 40
    assert before == after


def test_end_to_end_no_output_cell_is_a_formula(sample_run):
    _, out = sample_run
    for path in out.rglob("*.xlsx"):
        wb = openpyxl.load_workbook(path)
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (path.name, ws.title, cell.coordinate)


@pytest.mark.slow  # generates both sample inboxes again: `make test-slow`, in CI
def test_end_to_end_samples_regenerate_identically(generated_samples):
    """The committed sample inbox is what the seeded generator writes."""
    root, record = generated_samples  # tests.sample_inbox.build, in a temporary folder
    assert record == json.loads((SAMPLES / "expected.json").read_text(encoding="utf-8"))
    assert (root / "expected.json").read_text(encoding="utf-8") == (
        SAMPLES / "expected.json").read_text(encoding="utf-8")
    generated = [*sorted((root / "hop-thu").glob("*.xlsx")),
                 *sorted((root / "hop-thu-ket-qua").glob("*.xlsx")),
                 root / "danh-muc-don-vi.xlsx", root / "phan-bo-khen-thuong.xlsx"]
    assert len(generated) > 70
    assert {p.name for p in (root / "hop-thu").iterdir()} == {
        p.name for p in (SAMPLES / "hop-thu").iterdir()}
    assert {p.name for p in (root / "hop-thu-ket-qua").iterdir()} == {
        p.name for p in (SAMPLES / "hop-thu-ket-qua").iterdir()}
    # Every cell's value of every sheet (hidden ones too), read with calamine: 20 times faster
    # than openpyxl here, and the generator writes no formula and no empty-string cell, the two
    # things only openpyxl would tell apart.
    for path in generated:
        committed = SAMPLES / path.relative_to(root)
        assert golden.workbook_cells(path) == golden.workbook_cells(committed), path.name
