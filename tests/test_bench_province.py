"""The Sở's bench (tests/bench_province.py): its generator gives a province of the issue's
shape, and its check refuses a run that did not decide what it should. The bench itself
(`make bench`) is not run here."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest
import yaml

from tests import bench_province as bp

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "vocab"


def _vocab(name: str) -> dict[str, dict]:
    rows = yaml.safe_load((SCHEMAS / f"{name}.yaml").read_text(encoding="utf-8"))
    return {r["code"]: r for r in rows["values"]}


def test_communes_have_10_to_40_commune_schools_with_codes_unique_in_the_province() -> None:
    sizes = bp.commune_sizes(120)
    assert len(sizes) == 120 and all(10 <= n <= 40 for n in sizes.values())
    assert len(set(sizes.values())) > 10  # spread, not one size
    levels = _vocab("levels")
    units = [u for n in (1, 2, 119, 120) for u in bp.commune_units(n, sizes[n])]
    assert len({u.code for u in units}) == len(units) == sum(sizes[n] for n in (1, 2, 119, 120))
    assert all(levels[u.level]["manager"] == "commune" for u in units)
    assert all(len(u.people) == u.headcount and 15 <= u.headcount <= 70 for u in units)
    again = bp.commune_units(119, sizes[119])  # seeded: the same in any process
    assert [(u.code, u.name, [p.full_name for p in u.people]) for u in again] == \
        [(u.code, u.name, [p.full_name for p in u.people]) for u in units if u.code[:3] == "119"]


def test_direct_units_are_the_sos_with_realistic_staff() -> None:
    direct = bp.direct_units(150)
    types, levels = _vocab("unit_types"), _vocab("levels")
    assert len({r.unit_code for r, _ in direct}) == 150
    for row, unit in direct:
        assert (row.unit_code, row.level, row.managers + row.teachers + row.support_staff) == \
            (unit.code, unit.level, unit.headcount)
        assert types[row.unit_type]["any_level"] or levels[row.level]["manager"] == "province"
        if row.unit_type == "THPT":
            assert 40 <= unit.headcount <= 120
    assert sum(r.unit_type == "THPT" for r, _ in direct) > 100


def _run(tmp: Path, statuses: list[str], total: tuple[int, int], errors: int = 0) -> Path:
    """A run's manifest and Sở workbook as the bench reads them."""
    folder = tmp / "2025-2026" / "dang-ky" / "tinh"
    folder.mkdir(parents=True)
    manifest = {"offices": [{"office": f"X{i:03d}", "status": s} for i, s in
                            enumerate(statuses, start=1)],
                "units": [{"unit": "T0001", "status": "Hợp lệ"}], "counts": {"errors": errors}}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["TỔNG HỢP"])
    ws.append(["Mã", "Phòng Văn hóa – Xã hội / đơn vị", "Báo cáo", "Số đơn vị", "Đã nộp",
               "Số CB-GV-NV"])
    ws.append(["X001", "Phòng", "Hợp lệ", 3, 3, 40])
    ws.append(["Tổng cộng", None, None, total[0], total[0], total[1]])
    wb.save(folder / "tong-hop-tinh.xlsx")
    return tmp


TRUTH = {"communes": 2, "direct": 1, "commune_schools": 20, "commune_staff": 700,
         "direct_staff": 80}


@pytest.mark.parametrize(("statuses", "total", "errors", "wrong"), [
    (["Hợp lệ", "Hợp lệ"], (21, 780), 0, None),
    (["Hợp lệ", "Không hợp lệ"], (21, 780), 0, "1 of 2 offices"),
    (["Hợp lệ", "Hợp lệ"], (20, 780), 0, "20 schools"),
    (["Hợp lệ", "Hợp lệ"], (21, 780), 3, "3 errors"),
])
def test_the_check_refuses_a_run_that_decided_otherwise(tmp_path: Path, statuses: list[str],
                                                        total: tuple[int, int], errors: int,
                                                        wrong: str | None) -> None:
    problems = bp.run_problems(_run(tmp_path, statuses, total, errors), TRUTH)
    assert (problems == []) if wrong is None else any(wrong in p for p in problems)


def test_bench_record_stage_counts_the_rows_written_alongside_the_write():
    from .bench import stage_checks

    checks = {text.split()[1]: (text, ok) for text, ok, _ in stage_checks(
        {"read_check": 8.0, "record": 1.0, "record_rows": 2.5, "write": 8.0}, 3000)}
    text, ok = checks["record"]
    assert text.startswith("stage record 3.5 s (matching 1.0 s") and not ok  # 9.2 / 3 < 3.5
    assert checks["read_check"][1] and checks["write"][1]
    assert stage_checks({"record": 3.0}, 3000)[1][1]  # an older log: no rows part
