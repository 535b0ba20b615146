"""A seeded, regenerable sample province (issue 15, point 6): the Sở's folder with its
configuration, its registry (danh-muc-so) and its registration inbox holding the communes'
reports and the files of the schools the Sở manages itself, with planted faults, and
expected.json, the generator's truth.

Twelve communes' reports are written by tdkt itself: each commune gets a small school inbox,
a Phòng configuration with its office code, and `pipeline.engine.consolidate` writes its
tong-hop-so.xlsx, copied into the Sở's inbox. Two communes fill the office template by hand.

    python -m tests.sample_province input_samples/tinh

The truth is computed from what the generator wrote (its units, people and collectives), never
from the Sở's round.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import openpyxl

from pipeline import settings
from pipeline.config import load_config
from pipeline.forms.definitions import FormSet, load_forms
from pipeline.forms.template import write_office_report_template

from .sample_inbox import (
    SCHOOL_YEAR,
    Inbox,
    Planted,
    Unit,
    _collectives,
    _header,
    _people,
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
CONFIG = f"""# Cấu hình của Sở Giáo dục và Đào tạo: dữ liệu thử của vòng tổng hợp toàn tỉnh,
# sinh bởi python -m tests.sample_province.
school_year = "{SCHOOL_YEAR}"
registry = "{REGISTRY}"

[rules]
province = "mac-dinh"

[inboxes]
dang-ky = "{INBOX}"

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
        name = f"Trường {kind.replace('_', ' ')} số {i + 1}" if kind not in ("THPT", "GDTX") \
            else (f"Trường THPT số {i + 1}" if kind == "THPT" else f"Trung tâm GDTX số {i + 1}")
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


def _unit_row_cell(path: Path, forms: FormSet, code: str) -> str:
    """The cell of the unit code `code` on the units sheet of a report."""
    sheet = forms.current(REPORT_FORM).sheet("units")
    ws = openpyxl.load_workbook(path)[sheet.name]
    header, columns = _header(ws, sheet)
    col = columns["unit_code"]
    row = next(r for r in range(header + 1, ws.max_row + 1)
               if str(ws.cell(r, col).value) == code)
    return f"{openpyxl.utils.get_column_letter(col)}{row}"


def plant_totals(path: Path, forms: FormSet) -> tuple[str, str]:
    """Two more persons on the report's first list than it lists; (sheet, cell)."""
    sheet = forms.current(REPORT_FORM).sheet("lists")
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


def hand_report(path: Path, n: int, units: list[Unit], forms: FormSet,
                extra: list[Unit] = ()) -> None:
    """The office template filled in: one line per list, its schools, its persons and
    collectives on the province's lists; `extra`: units typed in that are not its own."""
    form = forms.current(REPORT_FORM)
    vocabs = forms.vocabs
    labels = {("person", k, c): vocabs["individual_titles" if k == "title" else "commendations"]
              .label_of(c) for k, c in PERSON_LISTS}
    lists = [labels[("person", k, c)] for k, c in PERSON_LISTS[:1]] + \
        [vocabs["collective_titles"].label_of(c) for _, c in COLLECTIVE_LISTS[:2]] + \
        [labels[("person", k, c)] for k, c in PERSON_LISTS[1:]]
    office = offices()[n - 1]
    every = [*units, *extra]
    write_office_report_template(form, office.office_code, office.office_name, SCHOOL_YEAR, path,
                                 vocabs=vocabs, province=PROVINCE,
                                 parent=f"UBND XÃ {COMMUNES[n - 1].upper()}", lists=lists,
                                 units=len(every))
    wb = openpyxl.load_workbook(path)
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
    rows = {"lists": [], "units": [], "staff": [], "collectives": []}
    for label, (kind, code) in zip(lists, [PERSON_LISTS[0], *COLLECTIVE_LISTS[:2],
                                           *PERSON_LISTS[1:]], strict=True):
        np_ = sum(r.get(kind) == code for r in persons)
        ng = sum(r.get(kind) == code for r in groups)
        rows["lists"].append({"list": label, "persons": np_, "collectives": ng,
                              "total": np_ + ng})
    for u in every:
        t = unit_truth(u, "")
        registered = sum(p.title != "khong_dang_ky" for p in u.people)
        rows["units"].append({
            "unit_code": u.code, "unit_name": u.name, "level": u.level, "block": u.block,
            "submitted": "yes", "staff_registry": u.headcount, "staff_listed": len(u.people),
            "registered": registered,
            **{TITLE_COUNTS.get(h, GROUP_COUNTS.get(h)): v for h, v in t["counts"].items()}})
    rows["staff"], rows["collectives"] = persons, groups
    for sheet in form.sheets:
        ws = wb[sheet.name]
        header, columns = _header(ws, sheet)
        values = [dict(r, seq=i + 1) for i, r in enumerate(rows[sheet.id])]
        write_rows(ws, sheet, forms, header, columns, values)
    wb.save(path)


# The province


def build_province(root: Path, seed: int = SEED) -> dict[str, Any]:
    """The Sở's folder under `root` (see the module's docstring); returns expected.json."""
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
    with tempfile.TemporaryDirectory() as tmp:
        for n in TDKT:
            code = office_code(n)
            units = communes[n] + ([shared] if n == TWICE_B else [])
            report = commune_report(Path(tmp), n, units, forms)
            name = f"bao-cao_{code}.xlsx"
            shutil.copy(report, inbox / name)
            entry = planted.file(name, code, n not in (WRONG_YEAR, CORRUPT))
            status[code] = "Hợp lệ"
            if n == WRONG_YEAR:
                plant_year(inbox / name)
                planted.add(name, "report-wrong-year", None, None)
                status[code] = "Không hợp lệ"
                continue
            if n == CORRUPT:
                data = (inbox / name).read_bytes()
                (inbox / name).write_bytes(data[: len(data) // 3])
                entry["unit"] = None
                planted.add(name, "unreadable-workbook", None, None)
                status[code] = "Chưa nộp"
                continue
            if n == TOTALS:
                planted.add(name, "report-totals-differ", *plant_totals(inbox / name, forms))
                status[code] = "Có lỗi"
            if n in (TWICE_A, TWICE_B):
                status[code] = "Có lỗi"
                planted.add(name, "unit-in-two-reports", forms.current(REPORT_FORM)
                            .sheet("units").name, _unit_row_cell(inbox / name, forms,
                                                                 shared.code))
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
    by_office = totals_by(expected, "office")
    by_level = totals_by(expected, "level")
    zero = dict.fromkeys(next(iter(by_office.values())), 0)
    expected["totals"] = {
        "by_office": {code: by_office.get(code, zero) for code in [*names, ""]},
        "by_level": {levels.by_code(c).attrs.get("name", c): by_level.get(c, zero)
                     for c in levels.codes}}
    (root / EXPECTED).write_text(json.dumps(expected, ensure_ascii=False, indent=1,
                                            sort_keys=True, default=str) + "\n",
                                 encoding="utf-8")
    return expected


def _list_label(forms: FormSet, code: str) -> str:
    """A list's label as the council's sheets show it."""
    for vocab in ("individual_titles", "collective_titles", "commendations"):
        if code in forms.vocabs[vocab].codes:
            return forms.vocabs[vocab].label_of(code)
    return code


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
