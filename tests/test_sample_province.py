"""The sample province (tests/sample_province.py, input_samples/tinh/) consolidated by the Sở's
registration round through the CLI: every planted fault is found at its trang tính and cell and
sent back in the right feedback workbook, the clean reports and schools have no finding, and
the Sở's workbook holds the generator's totals and council lists (expected.json).

The committed input_samples/tinh/ is read when it is there (generating takes ~30 s); a slow test
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
from .sample_province import EXPECTED, INBOX, build_province

COMMITTED = Path(__file__).resolve().parent.parent / "input_samples" / "tinh"
TOTALS = ("Số đơn vị", "Đã nộp", "Số CB-GV-NV", "LĐTT", "CSTĐCS", "CSTĐ tỉnh", "TTLĐTT",
          "TTLĐXS", "Cờ thi đua")
# Where the feedback of a file that names no known sender goes (by its file name).
UNIDENTIFIED = "khong-xac-dinh"


def _sample(tmp_path_factory) -> Path:
    if (COMMITTED / EXPECTED).is_file():
        return COMMITTED
    root = tmp_path_factory.mktemp("tinh") / "tinh"
    build_province(root)
    return root


@pytest.fixture(scope="module")
def province(tmp_path_factory):
    root = _sample(tmp_path_factory)
    expected = json.loads((root / EXPECTED).read_text(encoding="utf-8"))
    out = tmp_path_factory.mktemp("tinh-out")
    result = CliRunner().invoke(main, ["consolidate", str(root / INBOX), "--config",
                                       str(root / "tdkt.toml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    folder = out / expected["school_year"] / "dang-ky" / "tinh"
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
    assert sum(not t["findings"] for t in expected["files"].values()) >= 20


def _feedback_codes(path: Path) -> list[str]:
    ws = openpyxl.load_workbook(path)["Lỗi cần sửa"]
    return sorted(r[-1] for r in ws.iter_rows(values_only=True) if r and isinstance(r[0], int))


def test_sample_province_feedback_goes_to_each_sender(province):
    """Each office and direct school that sent a file gets its findings at their cells; a
    file nobody can be told apart by (the corrupt report, the unknown school) is fed back
    under khong-xac-dinh/ by its file name."""
    expected, _, folder, _ = province
    feedback = folder / settings.FEEDBACK_DIR
    for file, truth in expected["files"].items():
        codes = sorted(f[0] for f in truth["findings"])
        if truth["unit"] is None:
            path = feedback / UNIDENTIFIED / file
            assert _feedback_codes(path) == codes, file
            continue
        path = feedback / f"{truth['unit']}.xlsx"
        assert _feedback_codes(path) == codes, file
        book = openpyxl.load_workbook(path)
        for _, sheet, cell in truth["findings"]:
            if sheet is not None:
                assert book[sheet][cell].comment is not None, (file, sheet, cell)
    silent = [code for code, state in expected["offices"].items() if state == "Chưa nộp"]
    assert not any((feedback / f"{code}.xlsx").exists() for code in silent)
    assert not (feedback / f"{expected['silent_unit']}.xlsx").exists()


def test_sample_province_each_file_is_read_as_its_sender(province):
    """Each file tied to the office or direct school it comes from (none for the corrupt
    report and the unknown school), and each direct school's status."""
    expected, manifest, _, _ = province
    assert {i["file"]: i["unit"] for i in manifest["inputs"]} == {
        file: truth["unit"] for file, truth in expected["files"].items()}
    assert {u["unit"]: u["status"] for u in manifest["units"]} == expected["direct_status"]


def test_sample_province_offices_status(province):
    """The corrupt report leaves its office without a report, a report of another year is
    invalid, and a report whose totals do not add up, that lists another office's school or a
    school of the Sở's has errors."""
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
    expected, _, folder, _ = province
    rows = table_rows(folder / "tong-hop-tinh.xlsx", sheet, "STT")
    got = Counter((r["Họ và tên / tập thể"], r["Đơn vị"], r["Đề nghị"], r["Nơi gửi"])
                  for r in rows)
    assert got == Counter(tuple(r) for r in expected["council"][subject])
    assert [r["STT"] for r in rows] == list(range(1, len(rows) + 1))


@pytest.mark.slow
def test_sample_province_regenerates_identically(tmp_path):
    """The committed sample province is what the seeded generator writes."""
    if not (COMMITTED / EXPECTED).is_file():
        pytest.skip("input_samples/tinh/ is not generated yet")
    root = tmp_path / "tinh"
    record = build_province(root)
    assert record == json.loads((COMMITTED / EXPECTED).read_text(encoding="utf-8"))
    assert (root / EXPECTED).read_bytes() == (COMMITTED / EXPECTED).read_bytes()
    assert (root / "tdkt.toml").read_bytes() == (COMMITTED / "tdkt.toml").read_bytes()
    names = sorted(p.relative_to(root) for p in root.rglob("*.xlsx"))
    assert names == sorted(p.relative_to(COMMITTED) for p in COMMITTED.rglob("*.xlsx"))
    for name in names:
        if not expected_readable(record, name):
            assert (root / name).read_bytes() == (COMMITTED / name).read_bytes(), name
            continue
        assert golden.workbook_cells(root / name) == golden.workbook_cells(COMMITTED / name), \
            name


def expected_readable(record: dict, name: Path) -> bool:
    """Whether a file of the sample is a workbook (the corrupt report is not)."""
    truth = record["files"].get(name.name)
    return not (truth and [f[0] for f in truth["findings"]] == ["unreadable-workbook"])
