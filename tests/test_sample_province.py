"""The sample province (tests/sample_province.py, input_samples/tinh/) consolidated by the Sở's
two rounds through the CLI: every planted fault is found at its trang tính and cell and sent
back in the right feedback workbook, the clean reports and schools have no finding, and the
Sở's workbook holds the generator's totals and council lists (expected.json for the
registration round, expected-ket-qua.json for the year end, where the council lists also say
which proposals the Sở's re-check failed and the direct schools fail exactly the planted
proposals).

The committed input_samples/tinh/ is read when it is there (generating takes ~70 s); a slow test
regenerates it and compares every cell."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from pipeline import settings
from pipeline.cli import main

from . import golden
from .conftest import table_rows
from .sample_province import EXPECTED, EXPECTED_RESULTS, INBOX, RESULTS_INBOX, build_province

COMMITTED = Path(__file__).resolve().parent.parent / "input_samples" / "tinh"
TOTALS = ("Số đơn vị", "Đã nộp", "Số CB-GV-NV", "LĐTT", "CSTĐCS", "CSTĐ tỉnh", "TTLĐTT",
          "TTLĐXS", "Cờ thi đua")
# Where the feedback of a file that names no known sender goes (by its file name).
UNIDENTIFIED = "khong-xac-dinh"
# Each round: its inbox, its truth, the CLI's round option.
ROUNDS = {"dang-ky": (INBOX, EXPECTED, []),
          "ket-qua": (RESULTS_INBOX, EXPECTED_RESULTS, ["--round", "ket-qua"])}
FAILED = "Không đạt"


def _sample(tmp_path_factory) -> Path:
    if (COMMITTED / EXPECTED).is_file():
        return COMMITTED
    root = tmp_path_factory.mktemp("tinh") / "tinh"
    build_province(root)
    return root


@pytest.fixture(scope="module", params=list(ROUNDS))
def province(request, tmp_path_factory):
    """One round of the Sở consolidated (the year end checked against the registration inbox
    the configuration names): its truth, manifest, output folder and CLI output."""
    root = _sample(tmp_path_factory)
    inbox, truth, options = ROUNDS[request.param]
    expected = json.loads((root / truth).read_text(encoding="utf-8"))
    out = tmp_path_factory.mktemp("tinh-out")
    result = CliRunner().invoke(main, ["consolidate", str(root / inbox), *options, "--config",
                                       str(root / "tdkt.toml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    folder = out / expected["school_year"] / request.param / "tinh"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return expected, manifest, folder, result.output


def _found(manifest) -> dict[str, list[list]]:
    out: dict[str, list[list]] = {}
    for f in manifest["findings"]:
        out.setdefault(f["file"], []).append([f["code"], f["sheet"], f["cell"]])
    return {file: sorted(found, key=str) for file, found in out.items()}


def test_sample_province_every_planted_fault_and_nothing_else(province):
    expected, manifest, _, _ = province
    found = _found(manifest)
    assert set(found) <= set(expected["files"])
    for file, truth in expected["files"].items():
        assert found.get(file, []) == sorted(truth["findings"], key=str), file
    assert sum(not t["findings"] for t in expected["files"].values()) >= 15


def _feedback_codes(path: Path) -> list[str]:
    ws = openpyxl.load_workbook(path)["Lỗi cần sửa"]
    return sorted(r[-1] for r in ws.iter_rows(values_only=True) if r and isinstance(r[0], int))


def test_sample_province_feedback_goes_to_each_sender(province):
    """Each office and direct school that sent a file gets its findings at their cells (the
    corrupt report too: its file name bao-cao_X008 names the office); the unknown school's
    file is fed back under khong-xac-dinh/ by its file name."""
    expected, _, folder, _ = province
    feedback = folder / settings.FEEDBACK_DIR
    for file, truth in expected["files"].items():
        codes = sorted(f[0] for f in truth["findings"])
        if truth["unit"] is None:
            assert _feedback_codes(feedback / UNIDENTIFIED / file) == codes, file
            continue
        path = feedback / f"{truth['unit']}.xlsx"
        assert _feedback_codes(path) == codes, file
        book = openpyxl.load_workbook(path)
        for _, sheet, cell in truth["findings"]:
            if sheet is not None:
                assert book[sheet][cell].comment is not None, (file, sheet, cell)
    silent = [code for code, state in expected["offices"].items() if state == "Chưa nộp"]
    assert not any((feedback / f"{code}.xlsx").exists() for code in silent)
    assert not any((feedback / f"{code}.xlsx").exists()
                   for code, state in expected["direct_status"].items() if state == "Chưa nộp")


def test_sample_province_each_file_is_read_as_its_sender(province):
    """Each file tied to the office or direct school it comes from (the corrupt report by its
    file name; none for the unknown school), and each direct school's status."""
    expected, manifest, _, _ = province
    assert {i["file"]: i["unit"] for i in manifest["inputs"]} == {
        file: truth["unit"] for file, truth in expected["files"].items()}
    assert {u["unit"]: u["status"] for u in manifest["units"]} == expected["direct_status"]


def test_sample_province_offices_status(province):
    """A corrupt report or a report of another year is invalid, and a report whose totals do
    not add up, that lists another office's school or a school of the Sở's, or (year end) has
    a proposal the Sở's re-check fails, has errors."""
    expected, manifest, _, output = province
    assert {o["office"]: o["status"] for o in manifest["offices"]} == expected["offices"]
    sent = sum(state != "Chưa nộp" for state in expected["offices"].values())
    assert f"Báo cáo của các Phòng Văn hóa – Xã hội: {sent}/{len(expected['offices'])}." \
        in output


def test_sample_province_totals_by_office_and_level(province):
    expected, _, folder, _ = province
    path = folder / "tong-hop-tinh.xlsx"
    offices = {r["Mã"] or "": {h: r[h] for h in TOTALS}
               for r in table_rows(path, "Theo Phòng", "Mã")}
    assert offices == expected["totals"]["by_office"]
    levels = {r["Cấp học"]: {h: r[h] for h in TOTALS}
              for r in table_rows(path, "Theo cấp học", "Cấp học")}
    assert levels == expected["totals"]["by_level"]


@pytest.mark.parametrize(("sheet", "subject"), [("Cá nhân đề nghị", "persons"),
                                                 ("Tập thể đề nghị", "collectives")])
def test_sample_province_council_lists(province, sheet, subject):
    """Every person and collective on a list the province decides, with its sender, and at
    year end whether the Sở's re-check failed it (only the planted ones)."""
    expected, _, folder, _ = province
    rows = table_rows(folder / "tong-hop-tinh.xlsx", sheet, "STT")
    got = Counter((r["Họ và tên / tập thể"], r["Đơn vị"], r["Đề nghị"], r["Nơi gửi"],
                   r["Sở xét lại"] == FAILED)[:len(expected["council"][subject][0])]
                  for r in rows)
    assert got == Counter(tuple(r) for r in expected["council"][subject])
    assert [r["STT"] for r in rows] == list(range(1, len(rows) + 1))


def test_sample_province_direct_schools_fail_what_was_planted(province):
    """At year end the direct schools' proposals that fail are the planted ones, each on the
    planted rule, row and feedback; every other proposal of theirs is decided otherwise."""
    expected, manifest, folder, _ = province
    if "direct_fails" not in expected:
        pytest.skip("year end only")
    planted = expected["direct_fails"]
    assert len(planted) >= 5
    fails = [d for d in manifest["decisions"] if d["result"] == "fail"]
    assert {(d["unit"], d["person"]) for d in fails} == {(p["unit"], p["name"]) for p in planted}
    for p in planted:
        assert any(d["unit"] == p["unit"] and d["person"] == p["name"] and d["row"] == p["row"]
                   and d["rule_id"] == p["rule_id"] for d in fails), p
        said = [r for r in table_rows(folder / settings.FEEDBACK_DIR / f"{p['unit']}.xlsx",
                                      "Kết quả xét", "STT")
                if r["Kết quả"] == FAILED]
        assert [r["Họ và tên / tập thể"] for r in said] == [p["name"]], p
        assert p["rule_id"] in said[0]["Quy tắc (để tra cứu)"], p


@pytest.mark.slow
def test_sample_province_regenerates_identically(tmp_path):
    """The committed sample province (both rounds) is what the seeded generator writes."""
    if not (COMMITTED / EXPECTED_RESULTS).is_file():
        pytest.skip("input_samples/tinh/ is not generated yet")
    root = tmp_path / "tinh"
    record = build_province(root)
    assert record == json.loads((COMMITTED / EXPECTED).read_text(encoding="utf-8"))
    for name in (EXPECTED, EXPECTED_RESULTS, "tdkt.toml"):
        assert (root / name).read_bytes() == (COMMITTED / name).read_bytes(), name
    names = sorted(p.relative_to(root) for p in root.rglob("*.xlsx"))
    assert names == sorted(p.relative_to(COMMITTED) for p in COMMITTED.rglob("*.xlsx"))
    assert any(name.parts[0] == RESULTS_INBOX for name in names)
    truths = {INBOX: record, RESULTS_INBOX: json.loads(
        (root / EXPECTED_RESULTS).read_text(encoding="utf-8"))}
    for name in names:
        if not expected_readable(truths.get(name.parts[0], {"files": {}}), name):
            assert (root / name).read_bytes() == (COMMITTED / name).read_bytes(), name
            continue
        assert golden.workbook_cells(root / name) == golden.workbook_cells(COMMITTED / name), \
            name


def expected_readable(record: dict, name: Path) -> bool:
    """Whether a file of the sample is a workbook (the corrupt report is not)."""
    truth = record["files"].get(name.name)
    return not (truth and [f[0] for f in truth["findings"]] == ["unreadable-workbook"])


def test_sample_province_direct_schools_ranked_in_the_provinces_khoi(province):
    """At year end the Sở's workbook ranks its direct schools inside the province's khối and
    cụm (from the Sở's registry), by the self-scores their files carry, and marks each
    khối's leader (who may be proposed for the Cờ thi đua)."""
    expected, _, folder, _ = province
    if "direct_fails" not in expected:
        pytest.skip("year end only")
    root = COMMITTED
    registry = openpyxl.load_workbook(root / "danh-muc-so.xlsx", read_only=True)
    blocks = {r[1]: r[2] for r in registry["Khối thi đua"].iter_rows(values_only=True)
              if isinstance(r[0], int)}
    block_of = {r[1]: blocks[r[5]] for r in registry["Đơn vị trực thuộc Sở"].iter_rows(
        values_only=True) if isinstance(r[0], int)}
    scores = {}
    for path in sorted((root / RESULTS_INBOX).glob("ket-qua_T*.xlsx")):
        book = openpyxl.load_workbook(path, read_only=True)
        code = path.stem.split("_")[1]
        if code not in block_of or "Tự chấm điểm" not in book.sheetnames:
            continue
        rows = [r for r in book["Tự chấm điểm"].iter_rows(values_only=True)
                if r and isinstance(r[0], int)]
        scores[code] = sum(float(r[3]) for r in rows if isinstance(r[3], int | float))
    assert len(scores) >= 10
    ranked = table_rows(folder / "tong-hop-tinh.xlsx", "Xếp hạng khối", "Khối thi đua")
    assert {r["Mã đơn vị"] for r in ranked} == set(scores)
    for block in set(block_of.values()):
        mine = [r for r in ranked if r["Khối thi đua"] == block]
        assert all(block_of[r["Mã đơn vị"]] == block for r in mine)
        assert [r["Điểm tự chấm"] for r in mine] == sorted(
            (scores[r["Mã đơn vị"]] for r in mine), reverse=True)
        leaders = [r["Mã đơn vị"] for r in mine if r["Dẫn đầu"]]
        best = max(scores[r["Mã đơn vị"]] for r in mine) if mine else None
        assert len(leaders) == (1 if mine else 0)
        assert not mine or scores[leaders[0]] == best
