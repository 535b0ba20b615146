"""A seeded, regenerable sample province (issue 15, point 6): the Sở's folder with its
configuration, its registry (danh-muc-so) and its two inboxes — registrations
(hop-thu-dang-ky) and year-end results (hop-thu-ket-qua) — each holding the communes' reports
and the files of the schools the Sở manages itself, with planted faults, and the generator's
truth of each round (expected.json, expected-ket-qua.json).

Twelve communes' reports are written by tdkt itself: each commune gets a small school inbox,
a Phòng configuration with its office code, and `pipeline.engine.consolidate` writes its
tong-hop-so.xlsx, copied into the Sở's inbox; at year end the commune consolidates a results
inbox of the same schools against its registration inbox. Two communes fill the office
template by hand.

    python -m tests.sample_province input_samples/tinh

The truth is computed from what the generator wrote (its units, people and collectives, and at
year end which proposals pass by construction), never from the Sở's round.
"""
from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl

from pipeline import settings
from pipeline.config import load_config
from pipeline.forms.definitions import FormSet, Vocabulary, load_forms
from pipeline.forms.template import write_office_report_template

from .sample_inbox import (
    INITIATIVES,
    SCHOOL_YEAR,
    Inbox,
    Planted,
    Unit,
    _collectives,
    _fill_tables,
    _group_values,
    _header,
    _people,
    _plant,
    _result_values,
    _scores,
    _true_counts,
    filled_template,
    write_registry,
    write_rows,
)
from .sample_province_registry import (
    PROVINCE,
    BlockRow,
    OfficeRow,
    UnitRow,
    write_province_registry,
)

SEED = 20251015
RUN_DATE = dt.date(2025, 10, 20)
REGISTRY = "danh-muc-so.xlsx"
INBOX = "hop-thu-dang-ky"
EXPECTED = "expected.json"
REPORT_FORM = "bao-cao-dang-ky"
# The year-end round: its inbox, its truth and the report form the communes send then.
RESULTS_INBOX = "hop-thu-ket-qua"
EXPECTED_RESULTS = "expected-ket-qua.json"
RESULTS_FORM = "bao-cao-ket-qua"
CONFIG = f"""# Cấu hình của Sở Giáo dục và Đào tạo: dữ liệu thử của vòng tổng hợp toàn tỉnh,
# sinh bởi python -m tests.sample_province.
school_year = "{SCHOOL_YEAR}"
registry = "{REGISTRY}"

[rules]
province = "mac-dinh"

[inboxes]
dang-ky = "{INBOX}"
ket-qua = "{RESULTS_INBOX}"

[[offices]]
name = "{PROVINCE.name}"
parent = "{PROVINCE.parent}"
level = "tinh"
place = "{PROVINCE.place}"
signer = "Giám đốc"

[province_office]
name = "Ban Thi đua – Khen thưởng tỉnh"
parent = "{PROVINCE.parent}"
place = "{PROVINCE.place}"
"""
COMMUNE_CONFIG = """school_year = "{year}"
registry = "danh-muc-don-vi.xlsx"

[rules]
province = "mac-dinh"

[[offices]]
name = "Phòng Văn hóa – Xã hội"
parent = "UBND XÃ {upper}"
level = "xa"
place = "{place}"
signer = "Trưởng phòng"
code = "{code}"

[province_office]
name = "{so}"
parent = "{parent}"
place = "{so_place}"
"""
COMMUNES = ["Tân Lập", "Hòa Bình", "Quang Trung", "Lê Lợi", "Đồng Tâm", "Kim Đồng",
            "Bình Minh", "Tân Tiến", "Phú Lâm", "Đoàn Kết", "An Khánh", "Thống Nhất",
            "Hướng Dương", "Sơn Ca", "Hoa Sen"]
# Offices by role: 1–12 report through tdkt, 13–14 fill the template by hand, 15 sends nothing.
TDKT, BY_HAND, SILENT = range(1, 13), (13, 14), 15
WRONG_YEAR, TOTALS, TWICE_A, TWICE_B, CORRUPT, HAND_DIRECT = 3, 4, 5, 6, 8, 14
LEVELS = [("MN", "Trường Mầm non"), ("TH", "Trường Tiểu học"), ("THCS", "Trường THCS"),
          ("TH&THCS", "Trường TH và THCS")]
# The lists the province decides (schemas/rules/law.yaml, province.decides), written out.
PERSON_LISTS = [("title", "cstd_tinh"), ("commendation", "bang_khen_tinh"),
                ("commendation", "bang_khen_bo"), ("commendation", "bang_khen_ttg"),
                ("commendation", "huan_chuong_ld3")]
COLLECTIVE_LISTS = [("collective_title", "tt_lao_dong_xuat_sac"),
                    ("collective_title", "co_thi_dua_tinh"),
                    ("commendation", "bang_khen_tinh"), ("commendation", "bang_khen_bo"),
                    ("commendation", "bang_khen_ttg"), ("commendation", "huan_chuong_ld3")]
TITLE_COUNTS = {"LĐTT": "lao_dong_tien_tien", "CSTĐCS": "cstd_co_so", "CSTĐ tỉnh": "cstd_tinh"}
GROUP_COUNTS = {"TTLĐTT": "tt_lao_dong_tien_tien", "TTLĐXS": "tt_lao_dong_xuat_sac",
                "Cờ thi đua": "co_thi_dua_tinh"}
DIRECT_TYPES = [("THPT", "THPT", "K1"), ("THPT", "THPT", "K2"), ("chuyen", "THPT", "K1"),
                ("lien_cap_thpt", "TH-THCS-THPT", "K2"), ("PTDTNT", "THCS", "C1"),
                ("GDTX", "GDTX", "C1"), ("chuyen_biet", "TH&THCS", "C1")]
DIRECT_NAMES = {"THPT": "Trường THPT", "chuyen": "Trường THPT chuyên",
                "lien_cap_thpt": "Trường TH, THCS và THPT", "PTDTNT": "Trường PTDTNT THCS",
                "GDTX": "Trung tâm GDTX", "chuyen_biet": "Trường Giáo dục chuyên biệt"}
BLOCKS = (BlockRow("K1", "Khối THPT 1", "khoi"), BlockRow("K2", "Khối THPT 2", "khoi"),
          BlockRow("C1", "Cụm GDTX và trường chuyên biệt", "cum"))
DIRECT_COUNT = 16


def office_code(n: int) -> str:
    return f"X{n:03d}"


def _small_unit(rng: random.Random, code: str, name: str, level: str, block: str,
                email: str) -> Unit:
    unit = Unit(code=code, name=name, level=level, block=block,
                disadvantaged=rng.random() < 0.25, managers=2, teachers=rng.randint(6, 12),
                support=rng.randint(2, 3), email=email)
    unit.people = _people(rng, unit, 0.15)
    unit.collectives = _collectives(rng, unit)
    return unit


def commune_units(rng: random.Random, n: int) -> list[Unit]:
    """3–6 schools of commune `n` (MN/TH/THCS/TH&THCS), codes unique province-wide."""
    units = []
    for i in range(rng.randint(3, 6)):
        k = i % len(LEVELS) if i < len(LEVELS) else rng.randrange(len(LEVELS))
        level, stem = LEVELS[k]
        units.append(_small_unit(rng, f"{n:02d}{k + 1}{i + 1:02d}",
                                 f"{stem} {COMMUNES[n - 1]} {i + 1}", level,
                                 f"Khối {level}", f"c{n:02d}{i + 1}@anphu.edu.vn"))
    return units


def direct_units(rng: random.Random) -> list[tuple[UnitRow, Unit]]:
    out = []
    for i in range(DIRECT_COUNT):
        kind, level, block = DIRECT_TYPES[i % len(DIRECT_TYPES)]
        code = f"T{i + 1:04d}"
        name = f"{DIRECT_NAMES[kind]} số {i + 1}"
        unit = _small_unit(rng, code, name, level, block, f"t{i + 1:02d}@anphu.edu.vn")
        row = UnitRow(code, name, kind, level, block, "yes" if unit.disadvantaged else "no",
                      unit.managers, unit.teachers, unit.support, unit.email)
        out.append((row, unit))
    return out


def offices() -> tuple[OfficeRow, ...]:
    return tuple(OfficeRow(office_code(n), f"Phòng Văn hóa – Xã hội xã {place}", f"Xã {place}",
                           f"vhxh{n}@anphu.gov.vn") for n, place in enumerate(COMMUNES, start=1))


# The truth of one school as a report lists it


def unit_truth(unit: Unit, office: str, sent: bool = True) -> dict[str, Any]:
    people = [p for p in unit.people if p.counted] if sent else []
    groups = unit.collectives if sent else []
    counts = {h: sum(p.title == c for p in people) for h, c in TITLE_COUNTS.items()}
    counts |= {h: sum(g["collective_title"] == c for g in groups) for h, c in GROUP_COUNTS.items()}
    return {"unit": unit.code, "office": office, "level": unit.level, "sent": sent,
            "staff": unit.headcount, "counts": counts}


def council_rows(unit: Unit, sender: str) -> dict[str, list[list[str]]]:
    """(name, unit name, list code, sender) of each person and collective on a decided list."""
    persons = [[p.full_name, unit.name, getattr(p, kind), sender]
               for p in unit.people if p.counted for kind, code in PERSON_LISTS
               if getattr(p, kind) == code]
    groups = [[g["collective_name"], unit.name, g[kind], sender]
              for g in unit.collectives for kind, code in COLLECTIVE_LISTS if g[kind] == code]
    return {"persons": persons, "collectives": groups}


# Communes that use tdkt


def commune_report(work: Path, n: int, units: list[Unit], forms: FormSet) -> Path:
    """The commune's tong-hop-so.xlsx as tdkt writes it from a school inbox of `units`."""
    from pipeline.engine import consolidate

    place = COMMUNES[n - 1]
    root = work / office_code(n)
    inbox = root / "hop-thu"
    inbox.mkdir(parents=True)
    (root / "tdkt.toml").write_text(COMMUNE_CONFIG.format(
        year=SCHOOL_YEAR, upper=place.upper(), place=place, code=office_code(n),
        so=PROVINCE.name, parent=PROVINCE.parent, so_place=PROVINCE.place), encoding="utf-8")
    write_registry(units, forms, root / "danh-muc-don-vi.xlsx")
    config = load_config(root / "tdkt.toml", SCHOOL_YEAR)
    for unit in units:
        filled_template(forms.current("dang-ky"), forms, unit, inbox / f"dang-ky_{unit.code}.xlsx",
                        config.office_for(), dt.date(2025, 10, 10))
    consolidate(inbox, root / "out", config, run_date=RUN_DATE, forms=forms,
                store=root / "out" / "store.sqlite")
    return root / "out" / SCHOOL_YEAR / "dang-ky" / "tong-hop-so.xlsx"


def _table(ws, forms: FormSet, sheet_id: str) -> tuple[int, dict[str, int]]:
    return _header(ws, forms.current(REPORT_FORM).sheet(sheet_id))


def _unit_row_cell(path: Path, forms: FormSet, code: str, form_id: str = REPORT_FORM) -> str:
    """The cell of the unit code `code` on the units sheet of a report."""
    sheet = forms.current(form_id).sheet("units")
    ws = openpyxl.load_workbook(path)[sheet.name]
    header, columns = _header(ws, sheet)
    col = columns["unit_code"]
    row = next(r for r in range(header + 1, ws.max_row + 1)
               if str(ws.cell(r, col).value) == code)
    return f"{openpyxl.utils.get_column_letter(col)}{row}"


def plant_report_faults(path: Path, n: int, code: str, forms: FormSet, form_id: str,
                        planted: Planted, status: dict[str, str], shared: str) -> bool:
    """The faults of commune `n`'s report as tdkt wrote it (another year, cut short, totals
    off, a school another commune reports too), recorded in `planted` and `status`; whether
    the Sở counts the report."""
    name = path.name
    planted.file(name, code, n not in (WRONG_YEAR, CORRUPT))
    status[code] = "Hợp lệ"
    if n == WRONG_YEAR:
        plant_year(path)
        planted.add(name, "report-wrong-year", None, None)
        status[code] = "Không hợp lệ"
        return False
    if n == CORRUPT:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
        # Named by its file name (bao-cao_<office code>): the office is told, its report is
        # invalid.
        planted.add(name, "unreadable-workbook", None, None)
        status[code] = "Không hợp lệ"
        return False
    if n == TOTALS:
        planted.add(name, "report-totals-differ", *plant_totals(path, forms, form_id))
        status[code] = "Có lỗi"
    if n in (TWICE_A, TWICE_B):
        status[code] = "Có lỗi"
        planted.add(name, "unit-in-two-reports", forms.current(form_id).sheet("units").name,
                    _unit_row_cell(path, forms, shared, form_id))
    return True


def plant_totals(path: Path, forms: FormSet, form_id: str = REPORT_FORM) -> tuple[str, str]:
    """Two more persons on the report's first list than it lists; (sheet, cell)."""
    sheet = forms.current(form_id).sheet("lists")
    wb = openpyxl.load_workbook(path)
    ws = wb[sheet.name]
    header, columns = _header(ws, sheet)
    cell = ws.cell(header + 1, columns["persons"])
    cell.value = int(cell.value or 0) + 2
    wb.save(path)
    return sheet.name, cell.coordinate


def plant_year(path: Path) -> None:
    wb = openpyxl.load_workbook(path)
    wb[settings.META_SHEET].cell(1, 4, "2024-2025")
    wb.save(path)


# Communes that fill the template by hand


def _list_order(forms: FormSet) -> list[tuple[str, str, str]]:
    """(label, kind, code) of each list a hand-filled report has a line for, in its order."""
    vocabs = forms.vocabs
    kinds = [PERSON_LISTS[0], *COLLECTIVE_LISTS[:2], *PERSON_LISTS[1:]]
    return [(vocabs[{"title": "individual_titles", "collective_title": "collective_titles",
                     "commendation": "commendations"}[k]].label_of(c), k, c) for k, c in kinds]


def hand_report(path: Path, n: int, units: list[Unit], forms: FormSet,
                extra: list[Unit] = ()) -> None:
    """The office template filled in: one line per list, its schools, its persons and
    collectives on the province's lists; `extra`: units typed in that are not its own."""
    every = [*units, *extra]
    persons, groups = [], []
    for u in every:
        for p in u.people:
            for kind, code in PERSON_LISTS:
                if getattr(p, kind) == code:
                    persons.append({"full_name": p.full_name, "birth_date": p.birth_date,
                                    "sex": p.sex, "position": p.position, "unit_code": u.code,
                                    "unit_name": u.name, "level": u.level,
                                    kind: code})
        for g in u.collectives:
            for kind, code in COLLECTIVE_LISTS:
                if g[kind] == code:
                    groups.append({"collective_name": g["collective_name"],
                                   "collective_kind": g["collective_kind"],
                                   "members": g["members"], "unit_code": u.code,
                                   "unit_name": u.name, "level": u.level, kind: code})
    units_rows = []
    for u in every:
        t = unit_truth(u, "")
        registered = sum(p.title != "khong_dang_ky" for p in u.people)
        units_rows.append({
            "unit_code": u.code, "unit_name": u.name, "level": u.level, "block": u.block,
            "submitted": "yes", "staff_registry": u.headcount, "staff_listed": len(u.people),
            "registered": registered,
            **{TITLE_COUNTS.get(h, GROUP_COUNTS.get(h)): v for h, v in t["counts"].items()}})
    fill_report(path, n, REPORT_FORM, forms, persons, groups, units_rows)


def fill_report(path: Path, n: int, form_id: str, forms: FormSet, persons: list[dict],
                groups: list[dict], units: list[dict]) -> dict[str, dict[int, int]]:
    """The office template of `form_id` written and filled: a line per list counting the rows
    given, then the schools, the persons and the collectives as given; {sheet id: {row index:
    Excel row}}."""
    form = forms.current(form_id)
    order = _list_order(forms)
    office = offices()[n - 1]
    write_office_report_template(form, office.office_code, office.office_name, SCHOOL_YEAR, path,
                                 vocabs=forms.vocabs, province=PROVINCE,
                                 parent=f"UBND XÃ {COMMUNES[n - 1].upper()}",
                                 lists=[label for label, _, _ in order], units=len(units))
    wb = openpyxl.load_workbook(path)
    rows: dict[str, list[dict]] = {"lists": [], "units": units, "staff": persons,
                                   "collectives": groups}
    for label, kind, code in order:
        np_ = sum(r.get(kind) == code for r in persons)
        ng = sum(r.get(kind) == code for r in groups)
        rows["lists"].append({"list": label, "persons": np_, "collectives": ng,
                              "total": np_ + ng})
    placed = {}
    for sheet in form.sheets:
        ws = wb[sheet.name]
        header, columns = _header(ws, sheet)
        values = [dict(r, seq=i + 1) for i, r in enumerate(rows[sheet.id])]
        placed[sheet.id] = write_rows(ws, sheet, forms, header, columns, values)
    wb.save(path)
    return placed


# The province


def build_province(root: Path, seed: int = SEED) -> dict[str, Any]:
    """The Sở's folder under `root` (see the module's docstring), both rounds; returns
    expected.json (the registration round's truth; the year end's is expected-ket-qua.json)."""
    with tempfile.TemporaryDirectory() as work:
        expected, state = build_registrations(root, Path(work), seed)
        build_year_end(root, state)
    return expected


def build_registrations(root: Path, work: Path, seed: int = SEED
                        ) -> tuple[dict[str, Any], YearEnd]:
    """The registration round's folder and truth; the communes' tdkt folders under `work`."""
    forms = load_forms()
    rng = random.Random(seed)
    inbox = root / INBOX
    shutil.rmtree(inbox, ignore_errors=True)  # only what this generator writes
    inbox.mkdir(parents=True)
    (root / "tdkt.toml").write_text(CONFIG, encoding="utf-8")
    office_rows = offices()
    names = {o.office_code: o.office_name for o in office_rows}
    direct = direct_units(rng)
    direct_codes = {u.code for _, u in direct}
    write_province_registry(root / REGISTRY, office_rows, tuple(r for r, _ in direct), BLOCKS,
                            forms=forms)
    planted = Planted()
    units_truth: list[dict[str, Any]] = []
    council: dict[str, list[list[str]]] = {"persons": [], "collectives": []}
    status: dict[str, str] = {}

    def counts(code: str, units: list[Unit]) -> None:
        """A report's units in the totals, each school once (a school two offices report
        counts under the first; a direct unit an office reports counts as the Sở's own), and
        all its rows in the council's lists (each sender's)."""
        counted = {u["unit"] for u in units_truth}
        for u in units:
            if u.code not in counted and u.code not in direct_codes:
                units_truth.append(unit_truth(u, code))
            for k, v in council_rows(u, names[code]).items():
                council[k].extend(v)

    communes = {n: commune_units(rng, n) for n in [*TDKT, *BY_HAND]}
    shared = communes[TWICE_A][0]
    for n in TDKT:
        code = office_code(n)
        units = communes[n] + ([shared] if n == TWICE_B else [])
        report = commune_report(work, n, units, forms)
        name = f"bao-cao_{code}.xlsx"
        shutil.copy(report, inbox / name)
        if plant_report_faults(inbox / name, n, code, forms, REPORT_FORM, planted, status,
                               shared.code):
            counts(code, units)
    for n in BY_HAND:
        code = office_code(n)
        name = f"bao-cao_{code}.xlsx"
        extra = [direct[0][1]] if n == HAND_DIRECT else []
        hand_report(inbox / name, n, communes[n], forms, extra)
        planted.file(name, code, True)
        status[code] = "Hợp lệ"
        if extra:
            status[code] = "Có lỗi"
            planted.add(name, "province-unit-in-report", forms.current(REPORT_FORM)
                        .sheet("units").name, _unit_row_cell(inbox / name, forms,
                                                             extra[0].code))
        counts(code, [*communes[n], *extra])
    status[office_code(SILENT)] = "Chưa nộp"

    # The schools the Sở manages itself, faults planted as sample_inbox plants them.
    schools = Inbox(root, forms, PROVINCE, rng)
    schools.dir = inbox
    schools.date = lambda: dt.date(2025, 10, 10)  # type: ignore[method-assign]
    faults = {1: schools.text_dates, 2: schools.free_typed, 3: schools.blank_required}
    silent_school = DIRECT_COUNT - 1
    for i, (_, unit) in enumerate(direct):
        if i == silent_school:
            units_truth.append(unit_truth(unit, "", sent=False))
            continue
        faults.get(i, schools.clean)(unit)
        units_truth.append(unit_truth(unit, ""))
        for k, v in council_rows(unit, "Đơn vị trực thuộc Sở").items():
            council[k].extend(v)
    stranger = _small_unit(rng, "T0099", "Trường THPT ngoài danh mục", "THPT", "K1",
                           "t99@anphu.edu.vn")
    schools.unknown_unit(stranger)
    planted.files.update(schools.planted.files)

    levels = forms.vocabs["levels"]
    expected = {
        "school_year": SCHOOL_YEAR, "seed": seed, "files": planted.files,
        "offices": status,
        "direct_status": {u.code: schools.units[u.code]["status"] if u.code in schools.units
                          else "Chưa nộp" for _, u in direct},
        "units": units_truth, "silent_unit": direct[silent_school][1].code,
        # Listed twice, counted once (see counts): a school two communes report, a direct
        # unit a commune reports.
        "listed_twice": [shared.code, direct[0][1].code],
        "council": {k: [[n, u, _list_label(forms, c), s] for n, u, c, s in rows]
                    for k, rows in council.items()},
    }
    write_truth(root / EXPECTED, expected, names, levels)
    return expected, YearEnd(forms=forms, work=work, seed=seed, communes=communes,
                             shared=shared, direct=[u for _, u in direct],
                             registered=expected["direct_status"])


def _list_label(forms: FormSet, code: str) -> str:
    """A list's label as the council's sheets show it."""
    for vocab in ("individual_titles", "collective_titles", "commendations"):
        if code in forms.vocabs[vocab].codes:
            return forms.vocabs[vocab].label_of(code)
    return code


def write_truth(path: Path, expected: dict[str, Any], offices: Iterable[str],
                levels: Vocabulary) -> None:
    """The truth with its totals by office ("" for the Sở's own) and by cấp học, as JSON."""
    by_office = totals_by(expected, "office")
    by_level = totals_by(expected, "level")
    zero = dict.fromkeys(next(iter(by_office.values())), 0)
    expected["totals"] = {
        "by_office": {code: by_office.get(code, zero) for code in [*offices, ""]},
        "by_level": {levels.by_code(c).attrs.get("name", c): by_level.get(c, zero)
                     for c in levels.codes}}
    path.write_text(json.dumps(expected, ensure_ascii=False, indent=1, sort_keys=True,
                               default=str) + "\n", encoding="utf-8")


def totals_by(expected: dict[str, Any], key: str) -> dict[str, dict[str, int]]:
    """Schools, sent, staff and each count, per office ("" for the Sở's own) or per cấp học,
    of the units the Sở's workbook counts (those of counted reports, and its own schools)."""
    out: dict[str, dict[str, int]] = {}
    for u in expected["units"]:
        row = out.setdefault(u[key], {"Số đơn vị": 0, "Đã nộp": 0, "Số CB-GV-NV": 0})
        row["Số đơn vị"] += 1
        row["Đã nộp"] += int(u["sent"])
        row["Số CB-GV-NV"] += u["staff"]
        for h, v in u["counts"].items():
            row[h] = row.get(h, 0) + v
    return out


# The year-end round


RESULTS_RUN_DATE = dt.date(2026, 5, 28)
RESULTS_DATE = dt.date(2026, 5, 15)  # the schools' "Ngày lập", before the 25/5 deadline
# Year-end faults besides the registration round's: a report tdkt wrote that someone edited
# after (a TTLĐXS with too few LĐTT), a hand-filled report with a CSTĐ cấp tỉnh elected by too
# few of the council; both fail the Sở's re-check.
RECHECK_EDITED, RECHECK_HAND = 7, 13
RECHECK_VOTE = 85  # under the 90 % a CSTĐ cấp tỉnh needs (law.yaml vote.cstd_tinh)
DIRECT_SENDER = "Đơn vị trực thuộc Sở"
# The direct school whose unit sheet types one LĐTT fewer than its person rows give.
COUNT_DIFFERS = 6
# What passes, written out rather than computed by the code under test: there is no history
# store, so a person's proposals whose rules read earlier years' records (CSTĐ cấp tỉnh,
# Bằng khen tỉnh and above) wait for them (neither pass nor fail); a collective's Bằng khen
# needs only its registration. Everything else passes unless the generator planted a
# violation.
WAITING = {("person", "title", "cstd_tinh"), *(("person", "commendation", c) for c in (
    "bang_khen_tinh", "bang_khen_bo", "bang_khen_ttg", "huan_chuong_ld3"))}
# A unit's TTLĐXS needs a CSTĐCS and 70 % of its members LĐTT, a TTLĐTT more than half
# (mac-dinh.yaml tt_lao_dong_xuat_sac.base, tt_lao_dong_tien_tien.base).
TTLDXS_SHARE, TTLDTT_SHARE = 0.7, 0.5
RESULT_COUNTS = {"LĐTT": ("title", "lao_dong_tien_tien"), "CSTĐCS": ("title", "cstd_co_so"),
                 "CSTĐ tỉnh": ("title", "cstd_tinh"),
                 "TTLĐTT": ("collective_title", "tt_lao_dong_tien_tien"),
                 "TTLĐXS": ("collective_title", "tt_lao_dong_xuat_sac"),
                 "Cờ thi đua": ("collective_title", "co_thi_dua_tinh")}


@dataclass(frozen=True)
class YearEnd:
    """What the registration round generated that the year end builds on."""

    forms: FormSet
    work: Path  # the communes' tdkt folders (their registration inbox and outputs)
    seed: int
    communes: dict[int, list[Unit]]
    shared: Unit  # the school two communes report
    direct: list[Unit]
    registered: dict[str, str]  # direct unit → status of its registration


@dataclass
class Results:
    """One school's year-end rows as its file carries them, and the violations planted."""

    unit: Unit
    people: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    total: int  # its self-score
    failed: list[dict[str, Any]]  # sample_inbox._plant's records, with the row index

    def passes(self, subject: str, index: int, kind: str, code: str) -> bool:
        return (subject, kind, code) not in WAITING and not any(
            v["subject"] == subject and v["index"] == index and v["kind"] == kind
            for v in self.failed)

    def counts(self) -> dict[str, int]:
        """The passes per count column of the report's unit table."""
        out = {}
        for header, (kind, code) in RESULT_COUNTS.items():
            subject, rows = ("person", self.people) if kind == "title" \
                else ("collective", self.groups)
            out[header] = sum(r.get(kind) == code and self.passes(subject, i, kind, code)
                              for i, r in enumerate(rows))
        return out

    def proposals(self, passed_only: bool) -> dict[str, list[tuple[int, str, str]]]:
        """(row index, kind, code) of each person's and collective's proposal on a list the
        province decides (those that pass, with `passed_only`)."""
        out: dict[str, list[tuple[int, str, str]]] = {"persons": [], "collectives": []}
        for key, subject, rows, lists in (("persons", "person", self.people, PERSON_LISTS),
                                          ("collectives", "collective", self.groups,
                                           COLLECTIVE_LISTS)):
            for i, r in enumerate(rows):
                for kind, code in lists:
                    if r.get(kind) == code and (
                            not passed_only or self.passes(subject, i, kind, code)):
                        out[key].append((i, kind, code))
        return out


def _quota():
    from pipeline.rules.ruleset import load_rules

    return load_rules(SCHOOL_YEAR).rule("cstd_co_so.quota")


def unit_results(rng: random.Random, unit: Unit, total: int, leader: bool, quota,
                 plant: int | None = None, cstd_index: int = -1) -> Results:
    """A school's year-end rows from its registration (sample_inbox's values): only its khối's
    leader keeps a Cờ thi đua proposal, and the school as a whole proposes TTLĐXS only when
    its person rows reach it; `plant`: the index of sample_inbox._plant's violations to
    plant."""
    people = [_result_values(p, rng, i + 1) for i, p in enumerate(unit.people)]
    groups = [_group_values(c, i + 1) for i, c in enumerate(unit.collectives)]
    if groups[0]["collective_title"] == "co_thi_dua_tinh" and not leader:
        groups[0]["collective_title"] = "tt_lao_dong_xuat_sac"
    failed = _plant(plant, unit, people, groups, rng, cstd_index) if plant is not None else []
    whole = groups[0]
    whole.update(_true_counts(people, failed, quota, 0))
    share = whole["lao_dong_count"] / whole["members"]
    if whole["collective_title"] in ("tt_lao_dong_xuat_sac", "co_thi_dua_tinh") and (
            whole["cstd_count"] == 0 or share < TTLDXS_SHARE):
        whole["collective_title"] = "tt_lao_dong_tien_tien"
    assert share > TTLDTT_SHARE, unit.code  # a TTLĐTT needs more than half
    return Results(unit, people, groups, total, failed)


def group_results(rng: random.Random, units: list[Unit], quota, known: dict[str, Results],
                  plants: dict[int, int] | None = None, cstd_index: int = -1,
                  no_flag: frozenset[str] = frozenset()) -> dict[str, Results]:
    """The results of the schools one office consolidates: distinct self-scores, so each
    khối has one leader; `known`: schools already drawn (the shared school), kept as they
    are; `no_flag`: schools that never propose a Cờ thi đua."""
    taken = {known[u.code].total for u in units if u.code in known}
    pool = [t for t in range(70, 100) if t not in taken]
    drawn = iter(rng.sample(pool, len(units)))
    totals = {u.code: known[u.code].total if u.code in known else next(drawn) for u in units}
    best: dict[str, str] = {}
    for u in units:
        if u.block not in best or totals[u.code] > totals[best[u.block]]:
            best[u.block] = u.code
    out = {}
    for i, u in enumerate(units):
        if u.code in known:
            out[u.code] = known[u.code]
            continue
        leader = best[u.block] == u.code and u.code not in no_flag
        out[u.code] = unit_results(rng, u, totals[u.code], leader, quota,
                                   (plants or {}).get(i), cstd_index)
    return out


def write_results_file(path: Path, res: Results, forms: FormSet, office
                       ) -> dict[str, dict[int, int]]:
    """The results template of the school, filled as the school would; its rows' places."""
    from pipeline.forms.template import UnitInfo, write_template
    from pipeline.rules.ruleset import block_criteria, load_criteria

    form = forms.current("ket-qua")
    unit = res.unit
    crit = block_criteria(load_criteria(SCHOOL_YEAR), unit.block)
    write_template(form, forms.vocabs, UnitInfo(code=unit.code, name=unit.name, level=unit.level,
                                                headcount=unit.headcount,
                                                rows={"criteria": crit}),
                   path, SCHOOL_YEAR, office)
    return _fill_tables(path, form, forms, {
        "staff": res.people, "unit": res.groups,
        "criteria": [{"self_score": s} for s in _scores(crit, res.total)]},
        report_date=RESULTS_DATE)


def commune_results_report(work: Path, n: int, units: list[Unit], results: dict[str, Results],
                           forms: FormSet) -> Path:
    """The commune's year-end tong-hop-so.xlsx as tdkt writes it from a results inbox of
    `units`, checked against the registration inbox commune_report wrote."""
    from pipeline.engine import consolidate

    root = work / office_code(n)
    inbox = root / RESULTS_INBOX
    inbox.mkdir()
    config = load_config(root / "tdkt.toml", SCHOOL_YEAR)
    for unit in units:
        write_results_file(inbox / f"ket-qua_{unit.code}.xlsx", results[unit.code], forms,
                           config.office_for())
    consolidate(inbox, root / "out", config, round="ket-qua", run_date=RESULTS_RUN_DATE,
                forms=forms, store=root / "out" / "store.sqlite",
                registration_inbox=root / "hop-thu")
    return root / "out" / SCHOOL_YEAR / "ket-qua" / "tong-hop-so.xlsx"


def plant_recheck(path: Path, forms: FormSet) -> tuple[str, str, str, str]:
    """Half the members of the report's first TTLĐXS counted as LĐTT (it needs 70 %): sheet,
    cell of the collective's name, its name and its school's name."""
    sheet = forms.current(RESULTS_FORM).sheet("collectives")
    label = forms.vocabs["collective_titles"].label_of("tt_lao_dong_xuat_sac")
    wb = openpyxl.load_workbook(path)
    ws = wb[sheet.name]
    header, columns = _header(ws, sheet)
    row = next(r for r in range(header + 1, ws.max_row + 1)
               if ws.cell(r, columns["collective_title"]).value == label)
    members = int(ws.cell(row, columns["members"]).value)
    ws.cell(row, columns["lao_dong_count"]).value = members // 2
    wb.save(path)
    name = ws.cell(row, columns["collective_name"])
    return (sheet.name, name.coordinate, name.value,
            ws.cell(row, columns["unit_name"]).value)


def hand_results_report(path: Path, n: int, results: list[Results], forms: FormSet
                        ) -> dict[str, dict[int, int]]:
    """The year-end office template filled in by hand: every proposal of its schools on a
    province list (as its own council passed them), one row each; the schools' counts as
    typed. Returns the rows' places."""
    persons, groups, units = [], [], []
    drop = ("seq", "title", "commendation", "collective_title")
    for res in results:
        u = res.unit
        where = {"unit_code": u.code, "unit_name": u.name, "level": u.level}
        wanted = res.proposals(passed_only=False)
        for i, kind, code in wanted["persons"]:
            row = {k: v for k, v in res.people[i].items() if k not in drop}
            persons.append({**row, **where, kind: code})
        for i, kind, code in wanted["collectives"]:
            row = {k: v for k, v in res.groups[i].items() if k not in drop}
            groups.append({**row, **where, kind: code})
        counts = res.counts()
        units.append({**where, "block": u.block, "submitted": "yes",
                      "staff_registry": u.headcount,
                      **{code: counts[h] for h, (_, code) in RESULT_COUNTS.items()}})
    return fill_report(path, n, RESULTS_FORM, forms, persons, groups, units)


def build_year_end(root: Path, state: YearEnd) -> dict[str, Any]:
    """The year-end inbox of the Sở (the communes' results reports, the direct schools'
    results files) with its planted faults, and expected-ket-qua.json, its truth."""
    forms = state.forms
    rng = random.Random(f"{state.seed}-ket-qua")
    quota = _quota()
    inbox = root / RESULTS_INBOX
    shutil.rmtree(inbox, ignore_errors=True)  # only what this generator writes
    inbox.mkdir(parents=True)
    names = {o.office_code: o.office_name for o in offices()}
    direct_codes = {u.code for u in state.direct}
    report = forms.current(RESULTS_FORM)
    planted = Planted()
    units_truth: list[dict[str, Any]] = []
    council: dict[str, list[list[Any]]] = {"persons": [], "collectives": []}
    status: dict[str, str] = {}
    refused: set[tuple[str, str, str, str]] = set()  # rows the Sở's re-check fails

    def counts(code: str, results: list[Results], sender: str, every: bool) -> None:
        """As build_registrations' counts: a report's schools in the totals once, its rows in
        the council's lists (`every`: all its rows on a province list, as a hand-filled
        report types them; else those that pass, as tdkt writes them)."""
        counted = {u["unit"] for u in units_truth}
        for res in results:
            u = res.unit
            if u.code not in counted and u.code not in direct_codes:
                units_truth.append(result_truth(res, code))
            rows = res.proposals(passed_only=not every)
            for key, table in (("persons", res.people), ("collectives", res.groups)):
                name = "full_name" if key == "persons" else "collective_name"
                for i, _, c in rows[key]:
                    council[key].append([table[i][name], u.name, _list_label(forms, c), sender])

    # The direct schools first (a hand-filled report types one of them in).
    sent = [u for u in state.direct if state.registered[u.code] == "Hợp lệ"][:-1]
    cstd_index = next(i for i, u in enumerate(sent) if i > COUNT_DIFFERS
                      and any(p.title == "cstd_co_so" for p in u.people))
    direct = group_results(rng, sent, quota, {},
                           plants={i: i for i in [*range(1, 6), cstd_index]},
                           cstd_index=cstd_index)
    known: dict[str, Results] = {}
    shared = state.shared.code
    for n in TDKT:
        code = office_code(n)
        units = state.communes[n] + ([state.shared] if n == TWICE_B else [])
        results = group_results(rng, units, quota, known, no_flag=frozenset({shared}))
        if shared in results:
            known[shared] = results[shared]
        path = commune_results_report(state.work, n, units, results, forms)
        name = f"bao-cao_{code}.xlsx"
        shutil.copy(path, inbox / name)
        if not plant_report_faults(inbox / name, n, code, forms, RESULTS_FORM, planted, status,
                                   shared):
            continue
        if n == RECHECK_EDITED:
            sheet, cell, collective, school = plant_recheck(inbox / name, forms)
            planted.add(name, "report-proposal-fails", sheet, cell)
            refused.add((collective, school, _list_label(forms, "tt_lao_dong_xuat_sac"),
                         names[code]))
            status[code] = "Có lỗi"
        counts(code, [results[u.code] for u in units], names[code], every=False)
    for n in BY_HAND:
        code = office_code(n)
        name = f"bao-cao_{code}.xlsx"
        results = group_results(rng, state.communes[n], quota, {})
        mine = [results[u.code] for u in state.communes[n]]
        extra = [direct[state.direct[0].code]] if n == HAND_DIRECT else []
        if n == RECHECK_HAND:  # the head of its first school typed in as CSTĐ cấp tỉnh
            head = mine[0].people[0]
            head.update(title="cstd_tinh", commendation=None, grade="HTXSNV",
                        months_worked=12, absence="khong", absence_months=None,
                        initiative=INITIATIVES[0], initiative_level="tinh",
                        initiative_decision="Số 20/QĐ-UBND ngày 15/4/2026",
                        vote_share=RECHECK_VOTE)
        placed = hand_results_report(inbox / name, n, [*mine, *extra], forms)
        planted.file(name, code, True)
        status[code] = "Hợp lệ"
        if extra:
            status[code] = "Có lỗi"
            planted.add(name, "province-unit-in-report", report.sheet("units").name,
                        _unit_row_cell(inbox / name, forms, extra[0].unit.code, RESULTS_FORM))
        if n == RECHECK_HAND:
            status[code] = "Có lỗi"
            sheet = report.sheet("staff")
            ws = openpyxl.load_workbook(inbox / name)[sheet.name]
            _, columns = _header(ws, sheet)
            head_row = placed["staff"][0]  # the first person row is the planted head
            assert ws.cell(head_row, columns["full_name"]).value == head["full_name"]
            planted.add(name, "report-proposal-fails", sheet.name,
                        f"{openpyxl.utils.get_column_letter(columns['full_name'])}{head_row}")
            refused.add((head["full_name"], mine[0].unit.name,
                         _list_label(forms, "cstd_tinh"), names[code]))
        counts(code, [*mine, *extra], names[code], every=True)
    status[office_code(SILENT)] = "Chưa nộp"

    # The direct schools' files.
    school_form = forms.current("ket-qua")
    direct_status = {}
    decisions = []
    for i, unit in enumerate(sent):
        res = direct[unit.code]
        name = f"ket-qua_{unit.code}.xlsx"
        planted.file(name, unit.code, True)
        direct_status[unit.code] = "Hợp lệ"
        typed = None
        if i == COUNT_DIFFERS:
            true = res.groups[0]["lao_dong_count"]
            res.groups[0]["lao_dong_count"] = typed = true - 1
        placed = write_results_file(inbox / name, res, forms, PROVINCE)
        if typed is not None:
            res.groups[0]["lao_dong_count"] = true
            sheet = school_form.sheet("unit")
            ws = openpyxl.load_workbook(inbox / name)[sheet.name]
            _, columns = _header(ws, sheet)
            planted.add(name, "count-differs", sheet.name,
                        f"{openpyxl.utils.get_column_letter(columns['lao_dong_count'])}"
                        f"{placed['unit'][0]}")
        for v in res.failed:
            rows = res.people if v["subject"] == "person" else res.groups
            decisions.append({"unit": unit.code, "name": v["name"], "subject": v["subject"],
                              "kind": v["kind"], "proposal": v["proposal"],
                              "rule_id": v["rule_id"], "row": placed[
                                  "staff" if v["subject"] == "person" else "unit"][v["index"]]})
            assert rows[v["index"]]["full_name" if v["subject"] == "person"
                                    else "collective_name"] == v["name"]
        units_truth.append(result_truth(res, ""))
        rows = res.proposals(passed_only=True)
        for key, table in (("persons", res.people), ("collectives", res.groups)):
            field = "full_name" if key == "persons" else "collective_name"
            for j, _, c in rows[key]:
                council[key].append([table[j][field], unit.name, _list_label(forms, c),
                                     DIRECT_SENDER])
    for unit in state.direct:
        if unit.code not in direct:
            direct_status[unit.code] = "Chưa nộp"
            units_truth.append({"unit": unit.code, "office": "", "level": unit.level,
                                "sent": False, "staff": unit.headcount,
                                "counts": dict.fromkeys(RESULT_COUNTS, 0)})
    stranger = _small_unit(rng, "T0099", "Trường THPT ngoài danh mục", "THPT", "K1",
                           "t99@anphu.edu.vn")
    write_results_file(inbox / "ket-qua_T0099.xlsx",
                       unit_results(rng, stranger, 80, False, quota), forms, PROVINCE)
    planted.file("ket-qua_T0099.xlsx", None, False)
    planted.add("ket-qua_T0099.xlsx", "unknown-unit", None, None)

    levels = forms.vocabs["levels"]
    expected: dict[str, Any] = {
        "school_year": SCHOOL_YEAR, "seed": state.seed, "files": planted.files,
        "offices": status, "direct_status": direct_status,
        "units": units_truth, "silent_units": sorted(set(direct_codes) - set(direct)),
        "listed_twice": [shared, state.direct[0].code],
        "council": {k: [[*row, tuple(row) in refused] for row in rows]
                    for k, rows in council.items()},
        "direct_fails": decisions,
    }
    write_truth(root / EXPECTED_RESULTS, expected, names, levels)
    return expected


def result_truth(res: Results, office: str) -> dict[str, Any]:
    """The truth of one school as the year-end report lists it: its passes."""
    return {"unit": res.unit.code, "office": office, "level": res.unit.level, "sent": True,
            "staff": res.unit.headcount, "counts": res.counts()}


def main(argv: list[str]) -> int:
    import time

    if len(argv) != 1:
        print("python -m tests.sample_province <thư mục>")
        return 2
    start = time.perf_counter()
    build_province(Path(argv[0]))
    print(f"{argv[0]}: {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
