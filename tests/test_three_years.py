"""Issue 5 acceptance: three school years of generated data consolidated in sequence.

A seeded generator writes, for 2023-2024, 2024-2025 and 2025-2026, the registration inbox
(October) and the results inbox (May) of six schools whose staff persist across the years, with
people who move schools, a name typed with one letter wrong, two people of the same full name in
one school, and staff who leave or join. Each year is consolidated into one output folder and
one history store, registration first, then results; every multi-year decision written to the
manifests (consecutive CSTĐCS for CSTĐ cấp tỉnh, consecutive HTXSNV for Bằng khen UBND tỉnh) is
checked against the generator's own truth, and no other multi-year decision may appear.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from pipeline.config import load_config
from pipeline.engine import consolidate
from pipeline.forms.definitions import FormSet, load_forms
from pipeline.forms.template import UnitInfo, write_template
from pipeline.reports.registration import OFFICE_FILE
from pipeline.rules import eligibility as el
from pipeline.rules.ruleset import block_criteria, load_criteria, load_rules
from pipeline.store.database import open_store
from pipeline.store.history import earlier_years
from pipeline.store.identity import MOVED, TYPO
from pipeline.text import fold

from .conftest import SAMPLES, table_rows
from .sample_inbox import (
    ETHNICITIES,
    GIVEN,
    INITIATIVES,
    MIDDLE,
    SURNAMES,
    Unit,
    _field_cell,
    _header,
    _scores,
    _write_allocation,
    write_registry,
    write_rows,
)

SEED = 20230905
YEARS = ("2023-2024", "2024-2025", "2025-2026")
MULTI_YEAR = ("cstd_tinh.base", "bang_khen_tinh.base")
STAFF = 16  # per school: within the CSTĐCS share, floor(0.15 × 16) = 2 may be proposed
UNITS = [  # code, name, level, block
    ("01001", "Trường Mầm non Hoa Sen", "MN", "Khối Mầm non 1"),
    ("01002", "Trường Mầm non Sơn Ca", "MN", "Khối Mầm non 2"),
    ("02001", "Trường Tiểu học Kim Đồng", "TH", "Khối Tiểu học 1"),
    ("02002", "Trường Tiểu học Trần Phú", "TH", "Khối Tiểu học 2"),
    ("03001", "Trường THCS Chu Văn An", "THCS", "Khối THCS"),
    ("03002", "Trường THCS Lê Lợi", "THCS", "Khối THCS"),
]
LD, CS, TINH, BK = "lao_dong_tien_tien", "cstd_co_so", "cstd_tinh", "bang_khen_tinh"

# The planted people: label → full name, sex, and per school year (index into YEARS):
# (unit, title proposed, commendation proposed, grade). Everyone else is random staff proposed
# for LĐTT (a few for a Giấy khen), never for anything a multi-year rule decides.
PLANTED: dict[str, tuple[str, str, dict[int, tuple[str, str, str | None, str]]]] = {
    # CSTĐCS twice, then CSTĐ tỉnh: passes.
    "A": ("Lê Thị Bích Ngân", "nu", {0: ("01001", CS, None, "HTXSNV"),
                                     1: ("01001", CS, None, "HTXSNV"),
                                     2: ("01001", TINH, None, "HTXSNV")}),
    # LĐTT in the middle year: fails.
    "B": ("Trương Văn Khải", "nam", {0: ("01001", CS, None, "HTXSNV"),
                                    1: ("01001", LD, None, "HTTNV"),
                                    2: ("01001", TINH, None, "HTXSNV")}),
    # Moves from 01002 to 02001 in the third year: matched as moved, passes.
    "C": ("Mai Thị Huệ", "nu", {0: ("01002", CS, None, "HTXSNV"),
                                1: ("01002", CS, None, "HTXSNV"),
                                2: ("02001", TINH, None, "HTXSNV")}),
    # Name typed "Trần Thị Lam" in the third year: matched as a typo, passes.
    "D": ("Trần Thị Lan", "nu", {0: ("02002", CS, None, "HTXSNV"),
                                 1: ("02002", CS, None, "HTXSNV"),
                                 2: ("02002", TINH, None, "HTXSNV")}),
    # Same full name in one school, other birth dates: E1 passes, E2 fails.
    "E1": ("Nguyễn Thị Hoa", "nu", {0: ("03001", CS, None, "HTXSNV"),
                                    1: ("03001", CS, None, "HTXSNV"),
                                    2: ("03001", TINH, None, "HTXSNV")}),
    "E2": ("Nguyễn Thị Hoa", "nu", {0: ("03001", LD, None, "HTTNV"),
                                    1: ("03001", LD, None, "HTTNV"),
                                    2: ("03001", TINH, None, "HTXSNV")}),
    # CSTĐ tỉnh in the second year: 2022-2023 unknown, 2023-2024 CSTĐCS → check.
    "F1": ("Đoàn Văn Lộc", "nam", {0: ("03002", CS, None, "HTXSNV"),
                                   1: ("03002", TINH, None, "HTXSNV"),
                                   2: ("03002", LD, None, "HTTNV")}),
    # CSTĐ tỉnh in the second year after LĐTT: a year known without the title → fail.
    "F2": ("Quách Thị Nhung", "nu", {0: ("03002", LD, None, "HTTNV"),
                                     1: ("03002", TINH, None, "HTXSNV"),
                                     2: ("03002", LD, None, "HTTNV")}),
    # CSTĐ tỉnh in the first year, with no store yet: check.
    "K": ("Hà Văn Tài", "nam", {0: ("01002", TINH, None, "HTXSNV"),
                                1: ("01002", LD, None, "HTTNV"),
                                2: ("01002", LD, None, "HTTNV")}),
    # Joins in the second year as CSTĐCS, CSTĐ tỉnh in the third: 2023-2024 unknown → check.
    "L": ("Châu Văn Định", "nam", {1: ("02001", CS, None, "HTXSNV"),
                                   2: ("02001", TINH, None, "HTXSNV")}),
    # Bằng khen tỉnh after HTXSNV in 2024-2025: passes; after HTTNV: fails.
    "G": ("Tạ Thị Xuân", "nu", {0: ("03002", LD, None, "HTTNV"),
                                1: ("03002", LD, None, "HTXSNV"),
                                2: ("03002", LD, BK, "HTXSNV")}),
    "H": ("Kiều Văn Phong", "nam", {0: ("03002", LD, None, "HTXSNV"),
                                    1: ("03002", LD, None, "HTTNV"),
                                    2: ("03002", LD, BK, "HTXSNV")}),
    # New in the third year, proposed for Bằng khen tỉnh: nothing known of 2024-2025 → check.
    "I": ("Lò Thị Sen", "nu", {2: ("02002", LD, BK, "HTXSNV")}),
}
TYPOS = {("D", 2): "Trần Thị Lam"}  # (label, year index) → the name as typed that year


# The generator


@dataclass
class Stint:
    """What a person is in one school year."""

    unit: str
    title: str
    commendation: str | None
    grade: str
    name: str  # as typed in that year's files


@dataclass
class Career:
    """One real person across the years (the truth the pipeline has to recover)."""

    label: str
    full_name: str
    birth_date: dt.date
    sex: str
    ethnicity: str
    position: str
    staff_group: str
    years: dict[str, Stint] = field(default_factory=dict)
    initiative: str = ""


@dataclass
class World:
    root: Path
    careers: list[Career]
    # (school year, unit, Excel row of the results staff sheet) → career label
    rows: dict[tuple[str, str, int], str] = field(default_factory=dict)


def _births(rng: random.Random, count: int) -> list[dt.date]:
    """Distinct birth dates: matching across years needs them, as offices' data has them."""
    days = rng.sample(range((dt.date(2001, 12, 31) - dt.date(1968, 1, 1)).days), count)
    return [dt.date(1968, 1, 1) + dt.timedelta(days=d) for d in days]


def _random_career(rng: random.Random, label: str, born: dt.date, position: str, group: str,
                   taken: set[str]) -> Career:
    while True:
        sex = rng.choice(["nam", "nu", "nu"])
        name = f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE[sex])} {rng.choice(GIVEN[sex])}"
        if fold(name) not in taken:
            break
    return Career(label, name, born, sex, rng.choice(ETHNICITIES), position, group)


def make_careers(rng: random.Random) -> list[Career]:
    """The planted people plus random staff: 16 per school and year, some leaving or joining."""
    births = iter(_births(rng, 400))
    planted_names = {fold(name) for name, _, _ in PLANTED.values()} | {
        fold(n) for n in TYPOS.values()}
    careers: list[Career] = []
    for label, (name, sex, plan) in PLANTED.items():
        career = Career(label, name, next(births), sex, "Kinh", "giao_vien", "GV",
                        initiative=rng.choice(INITIATIVES))
        for i, (unit, title, commendation, grade) in plan.items():
            career.years[YEARS[i]] = Stint(unit, title, commendation, grade,
                                           TYPOS.get((label, i), name))
        careers.append(career)
    serial = 0
    for code, *_ in UNITS:
        staff: list[Career] = []
        everyone: list[Career] = []
        for i, year in enumerate(YEARS):
            planted = sum(year in c.years and c.years[year].unit == code for c in careers)
            if i and staff:  # one teacher leaves, others join to keep the school's size
                staff.remove(rng.choice([c for c in staff if c.staff_group == "GV"]))
            positions = [("hieu_truong", "CBQL"), ("pho_hieu_truong", "CBQL"),
                         ("ke_toan", "NV"), ("van_thu", "NV")]
            while len(staff) + planted < STAFF:
                position, group = positions[len(staff)] if len(staff) < len(positions) \
                    else ("giao_vien", "GV")
                serial += 1
                staff.append(_random_career(rng, f"r{serial}", next(births), position, group,
                                            planted_names))
                everyone.append(staff[-1])
            for c in staff:
                c.years[year] = Stint(code, LD, "giay_khen" if rng.random() < 0.15 else None,
                                      "HTXSNV" if rng.random() < 0.3 else "HTTNV", c.full_name)
        careers.extend(everyone)
    return careers


def _fill(path: Path, form, forms: FormSet, tables: dict[str, list[dict[str, Any]]],
          report_date: dt.date) -> dict[str, dict[int, int]]:
    """Write rows into a template's tables and its "Ngày lập"; {sheet: {index: Excel row}}."""
    wb = openpyxl.load_workbook(path)
    placed: dict[str, dict[int, int]] = {}
    for sheet in form.sheets:
        ws = wb[sheet.name]
        if "report_date" in {f.id for f in sheet.fields}:
            r, c = _field_cell(ws, sheet.column("report_date").header)
            ws.cell(row=r, column=c, value=report_date).number_format = "dd/mm/yyyy"
        rows = tables.get(sheet.id)
        if not rows:
            continue
        header, columns = _header(ws, sheet)
        placed[sheet.id] = write_rows(ws, sheet, forms, header, columns, rows)
    wb.save(path)
    return placed


def _staff_of(careers: list[Career], year: str, unit: str) -> list[tuple[Career, Stint]]:
    """The school's staff that year in list order: managers, teachers, support staff."""
    order = {"CBQL": 0, "GV": 1, "NV": 2}
    people = [(c, c.years[year]) for c in careers
              if year in c.years and c.years[year].unit == unit]
    return sorted(people, key=lambda p: (order[p[0].staff_group], p[0].birth_date))


def _registration_row(c: Career, s: Stint, seq: int) -> dict[str, Any]:
    cstd = s.title in (CS, TINH)
    return {"seq": seq, "full_name": s.name, "birth_date": c.birth_date, "sex": c.sex,
            "ethnicity": c.ethnicity, "position": c.position, "staff_group": c.staff_group,
            "title": s.title, "commendation": s.commendation,
            "initiative": c.initiative if cstd else None}


def _result_row(c: Career, s: Stint, seq: int, end: int) -> dict[str, Any]:
    level = {CS: "co_so", TINH: "tinh"}.get(s.title)
    return {"seq": seq, "full_name": s.name, "birth_date": c.birth_date, "sex": c.sex,
            "position": c.position, "staff_group": c.staff_group, "grade": s.grade,
            "months_worked": 12, "absence": "khong", "discipline": "khong",
            "initiative": c.initiative if level else None, "initiative_level": level,
            "initiative_decision": f"Số 15/QĐ-HĐSK ngày 10/4/{end}" if level else None,
            "title": s.title, "commendation": s.commendation, "vote_share": 90}


def build_world(root: Path) -> World:
    """Registry, configuration and the six inboxes of three years under `root`."""
    rng = random.Random(SEED)
    forms = load_forms()
    careers = make_careers(rng)
    world = World(root, careers)
    units = [Unit(code, name, level, block, False, 2, STAFF - 4, 2, f"c{code}@tanlap.edu.vn")
             for code, name, level, block in UNITS]
    write_registry(units, forms, root / "danh-muc-don-vi.xlsx")
    _write_allocation(root / "phan-bo-khen-thuong.xlsx", forms, 100)
    shutil.copy(SAMPLES / "tdkt.toml", root / "tdkt.toml")
    shutil.copy(SAMPLES / "quy-tac-phong.yaml", root / "quy-tac-phong.yaml")
    registration, results = forms.current("dang-ky"), forms.current("ket-qua")
    for year in YEARS:
        config = load_config(root / "tdkt.toml", year)
        office = config.office_for(year)
        start = int(year[:4])
        criteria = load_criteria(year)
        for d in ("dang-ky", "ket-qua"):
            (root / year / d).mkdir(parents=True)
        for code, name, level, block in UNITS:
            staff = _staff_of(careers, year, code)
            size = len(staff)
            info = UnitInfo(code=code, name=name, level=level, headcount=size)
            path = root / year / "dang-ky" / f"dang-ky_{code}.xlsx"
            write_template(registration, forms.vocabs, info, path, year, office)
            unit_row = {"seq": 1, "collective_name": name, "collective_kind": "don_vi",
                        "members": size, "collective_title": "tt_lao_dong_tien_tien",
                        "commendation": None}
            _fill(path, registration, forms,
                  {"staff": [_registration_row(c, s, i + 1) for i, (c, s) in enumerate(staff)],
                   "unit": [unit_row]}, dt.date(start, 10, rng.randint(5, 25)))
            crit = block_criteria(criteria, block)
            info = UnitInfo(code=code, name=name, level=level, headcount=size,
                            rows={"criteria": crit})
            path = root / year / "ket-qua" / f"ket-qua_{code}.xlsx"
            write_template(results, forms.vocabs, info, path, year, office)
            cstd = sum(s.title in (CS, TINH) for _, s in staff)
            group = {"seq": 1, "collective_name": name, "collective_kind": "don_vi",
                     "members": size, "completed_tasks": size, "lao_dong_count": size,
                     "cstd_count": cstd, "disciplined": 0,
                     "collective_title": "tt_lao_dong_tien_tien", "commendation": None,
                     "vote_share": 95}
            placed = _fill(path, results, forms, {
                "staff": [_result_row(c, s, i + 1, start + 1) for i, (c, s) in enumerate(staff)],
                "unit": [group],
                "criteria": [{"self_score": v} for v in _scores(crit, rng.randint(70, 95))]},
                dt.date(start + 1, 5, rng.randint(5, 25)))
            for i, (c, _) in enumerate(staff):
                world.rows[(year, code, placed["staff"][i])] = c.label
    return world


# The truth


def _spec(rule_id: str) -> dict[str, Any]:
    return load_rules(YEARS[-1]).rule(rule_id).consecutive


def expected_decisions(world: World) -> dict[str, dict[tuple[str, int, str], tuple[str, str]]]:
    """Per school year: (unit, row, rule id) → (name as typed, result) of every multi-year
    decision, from what the generator knows of each person.

    A year counts when the person held one of the rule's titles (a title is held when its
    proposal passed; the generator makes every proposal valid but the planted CSTĐ tỉnh, which
    pass only on their history) or grades; a year in which the person is known with another
    title or grade fails the rule; a year before the first, or one the person spent outside
    these schools, is unknown and leaves the rule to check by hand.
    """
    held: dict[tuple[str, str], str] = {}  # (label, year) → title held
    out: dict[str, dict[tuple[str, int, str], tuple[str, str]]] = {}
    where = {(year, unit, label): row for (year, unit, row), label in world.rows.items()}
    for year in YEARS:
        out[year] = {}
        verdicts: dict[str, str] = {}
        for c in world.careers:
            stint = c.years.get(year)
            if stint is None:
                continue
            row = where[(year, stint.unit, c.label)]
            for rule_id, proposed in (("cstd_tinh.base", stint.title == TINH),
                                      ("bang_khen_tinh.base", stint.commendation == BK)):
                if not proposed:
                    continue
                spec = _spec(rule_id)
                states = []
                for before in earlier_years(year, int(spec["years"]) - 1):
                    known = c.years.get(before)
                    if spec["kind"] == "grade":
                        value = known.grade if known else None
                    else:
                        value = held.get((c.label, before))
                    states.append(None if value is None else value in spec["codes"])
                result = el.FAIL if False in states else el.CHECK if None in states \
                    else el.PASS
                out[year][(stint.unit, row, rule_id)] = (stint.name, result)
                if rule_id == "cstd_tinh.base":
                    verdicts[c.label] = result
        for c in world.careers:  # the titles held this year, for the years after
            stint = c.years.get(year)
            if stint is not None and verdicts.get(c.label, el.PASS) == el.PASS:
                held[(c.label, year)] = stint.title
    return out


def world_career(world: World, label: str) -> Career:
    return next(c for c in world.careers if c.label == label)


# Building and consolidating once


@pytest.fixture(scope="module")
def three_years(tmp_path_factory):
    """The three years written, then consolidated in order into one folder and store."""
    root = tmp_path_factory.mktemp("three-years")
    world = build_world(root)
    out = root / "output"
    runs: dict[tuple[str, str], Any] = {}
    for year in YEARS:
        config = load_config(root / "tdkt.toml", year)
        registration = root / year / "dang-ky"
        runs[(year, "dang-ky")] = consolidate(registration, out, config)
        runs[(year, "ket-qua")] = consolidate(root / year / "ket-qua", out, config,
                                              round="ket-qua", registration_inbox=registration)
    return world, out, runs


def _manifest(out: Path, year: str) -> dict[str, Any]:
    return json.loads((out / year / "ket-qua" / "manifest.json").read_text(encoding="utf-8"))


def _multi_year(out: Path, year: str) -> dict[tuple[str, int, str], tuple[str, str]]:
    return {(d["unit"], d["row"], d["rule_id"]): (d["person"], d["result"])
            for d in _manifest(out, year)["decisions"] if d["rule_id"] in MULTI_YEAR}


# Tests


def test_three_years_inputs_are_read_without_errors(three_years):
    """The generated files are clean: every decision below rests on data read as written."""
    _, out, runs = three_years
    for (year, round_), result in runs.items():
        assert not result.errors, (year, round_, [f.to_dict() for f in result.errors][:5])
        manifest = json.loads((out / year / round_ / "manifest.json").read_text("utf-8"))
        assert manifest["counts"]["accepted"] == len(UNITS), (year, round_)


def test_three_years_multi_year_decisions_match_the_truth(three_years):
    world, out, _ = three_years
    truth = expected_decisions(world)
    for year in YEARS:
        got = _multi_year(out, year)
        wrong = {key: (world.rows[(year, key[0], key[1])], truth[year].get(key), got.get(key))
                 for key in set(truth[year]) | set(got) if truth[year].get(key) != got.get(key)}
        assert not wrong, f"{year}: (unit, row, rule) → (person, expected, got): {wrong}"


def test_three_years_planted_people_decided_as_planned(three_years):
    """The planted cases, spelled out (the truth above, read per person)."""
    world, out, _ = three_years
    planned = {  # label: (school year, rule, result)
        "A": ("2025-2026", "cstd_tinh.base", el.PASS),
        "B": ("2025-2026", "cstd_tinh.base", el.FAIL),
        "C": ("2025-2026", "cstd_tinh.base", el.PASS),
        "D": ("2025-2026", "cstd_tinh.base", el.PASS),
        "E1": ("2025-2026", "cstd_tinh.base", el.PASS),
        "E2": ("2025-2026", "cstd_tinh.base", el.FAIL),
        "F1": ("2024-2025", "cstd_tinh.base", el.CHECK),
        "F2": ("2024-2025", "cstd_tinh.base", el.FAIL),
        "K": ("2023-2024", "cstd_tinh.base", el.CHECK),
        "L": ("2025-2026", "cstd_tinh.base", el.CHECK),
        "G": ("2025-2026", "bang_khen_tinh.base", el.PASS),
        "H": ("2025-2026", "bang_khen_tinh.base", el.FAIL),
        "I": ("2025-2026", "bang_khen_tinh.base", el.CHECK),
    }
    rows = {(year, label): (unit, row) for (year, unit, row), label in world.rows.items()}
    got = {}
    for label, (year, rule_id, _) in planned.items():
        unit, row = rows[(year, label)]
        decided = [d for d in _manifest(out, year)["decisions"]
                   if (d["unit"], d["row"], d["rule_id"]) == (unit, row, rule_id)]
        assert len(decided) == 1, (label, decided)
        assert decided[0]["person"] == world_career(world, label).years[year].name
        got[label] = decided[0]["result"]
    assert got == {label: result for label, (_, _, result) in planned.items()}


def test_three_years_first_year_leaves_history_rules_to_check(three_years):
    _, out, _ = three_years
    first = _multi_year(out, YEARS[0])
    assert first and {result for _, result in first.values()} == {el.CHECK}


def test_three_years_store_knows_each_person_once(three_years):
    """Moves and the typo are the same person; the two of the same name are two people."""
    world, out, runs = three_years
    connection = open_store(out / "tdkt-lich-su.sqlite")
    try:
        persons = connection.execute("SELECT COUNT(*) FROM persons").fetchone()[0]
        rounds = connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    finally:
        connection.close()
    assert rounds == 2 * len(YEARS)
    assert persons == len(world.careers)
    matches = runs[(YEARS[2], "dang-ky")].matches
    how = {(m.unit_code, m.full_name): m.how for m in matches.itertuples()}
    assert how[("02001", "Mai Thị Huệ")] == MOVED
    assert how[("02002", "Trần Thị Lam")] == TYPO
    assert not any(name == "Nguyễn Thị Hoa" for _, name in how)  # exact matches, not guesses


def test_three_years_office_workbook_shows_the_verdicts(three_years):
    """The Phòng's list of proposals says Đạt for A's CSTĐ cấp tỉnh, and what the others got."""
    _, out, _ = three_years
    rows = table_rows(out / YEARS[2] / "ket-qua" / OFFICE_FILE, "Đề nghị cá nhân", "STT")
    tinh = "Chiến sĩ thi đua cấp tỉnh"

    def results(name: str) -> list[str]:
        return sorted(r["Kết quả"] for r in rows if r["Họ và tên"] == name
                      and r["Đề nghị"] == tinh)

    assert results("Lê Thị Bích Ngân") == ["Đạt"]
    assert results("Trương Văn Khải") == ["Không đạt"]
    assert results("Mai Thị Huệ") == ["Đạt"]
    assert results("Trần Thị Lam") == ["Đạt"]
    assert results("Nguyễn Thị Hoa") == ["Không đạt", "Đạt"]
    assert results("Châu Văn Định") == ["Cần kiểm tra hồ sơ các năm trước"]


def test_three_years_history_finds_the_typo_under_both_spellings(three_years):
    """“Trần Thị Lam” (a typo of Trần Thị Lan, matched to her) finds her three years, as the
    name she was first recorded under does."""
    from click.testing import CliRunner

    from pipeline.cli import main

    world, out, _ = three_years
    lan = world_career(world, "D")
    store = str(out / "tdkt-lich-su.sqlite")
    shown = {}
    for typed in ("Trần Thị Lam", f"Tran Thi Lam, {lan.birth_date:%d/%m/%Y}", "Trần Thị Lan"):
        result = CliRunner().invoke(main, ["history", typed, "--store", store])
        assert result.exit_code == 0, result.output
        shown[typed] = result.output
        heading, *lines = result.output.splitlines()
        assert heading.startswith(f"Trần Thị Lan (sinh {lan.birth_date:%d/%m/%Y}, mã ")
        assert "còn ghi là: Trần Thị Lam" in heading
        assert {line.split()[0] for line in lines} == set(YEARS), typed
    assert len(set(shown.values())) == 1
