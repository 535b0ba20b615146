"""Seeded generator of the demo registry and sample inbox, with a record of what it planted.

`python -m tests.sample_inbox input_samples` (or `make samples`) rewrites:
  input_samples/danh-muc-don-vi.xlsx  the unit registry
  input_samples/hop-thu/              the inbox: most schools correct, some with real faults
  input_samples/expected.json         the truth: every planted finding and every counted row
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.utils import get_column_letter

from pipeline.config import load_config
from pipeline.forms.definitions import Form, FormSet, Sheet, load_forms
from pipeline.forms.template import UnitInfo, write_template
from pipeline.rules.ruleset import load_rules

SEED = 20251001
SCHOOL_YEAR = "2025-2026"
INBOX = "hop-thu"
REGISTRY = "danh-muc-don-vi.xlsx"
EXPECTED = "expected.json"

LEVELS = [  # level, count, name stem, blocks
    ("MN", 12, "Trường Mầm non", ["Khối Mầm non 1", "Khối Mầm non 2"]),
    ("TH", 14, "Trường Tiểu học", ["Khối Tiểu học 1", "Khối Tiểu học 2"]),
    ("THCS", 12, "Trường THCS", ["Khối THCS"]),
    ("TH&THCS", 6, "Trường TH và THCS", ["Khối Liên cấp"]),
    ("TH-THCS-THPT", 2, "Trường Liên cấp TH-THCS-THPT", ["Khối Liên cấp"]),
]
PLACES = ["Tân Lập", "Hòa Bình", "Quang Trung", "Lê Lợi", "Hoa Sen", "Sơn Ca", "Bình Minh",
          "Hướng Dương", "Đồng Tâm", "Kim Đồng", "Võ Thị Sáu", "Nguyễn Trãi", "Chu Văn An",
          "Trần Phú", "Lý Tự Trọng", "Tân Tiến", "Phú Lâm", "Đoàn Kết", "An Khánh", "Thống Nhất"]
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ",
            "Ngô", "Dương", "Lý", "Đinh", "Lương"]
MIDDLE = {"nam": ["Văn", "Đức", "Minh", "Quang", "Hữu", "Thanh", "Công"],
          "nu": ["Thị", "Ngọc", "Thu", "Thanh", "Thị Mai", "Thị Thanh", "Kim"]}
GIVEN = {"nam": ["An", "Bình", "Cường", "Dũng", "Hải", "Hùng", "Long", "Minh", "Nam", "Quân",
                 "Sơn", "Tuấn", "Việt", "Đạt", "Khánh", "Thắng", "Phúc", "Trung"],
         "nu": ["Hà", "Hạnh", "Hiền", "Hoa", "Hương", "Lan", "Linh", "Mai", "Nga", "Ngọc",
                "Phương", "Tâm", "Thảo", "Thủy", "Trang", "Vân", "Yến", "Ánh", "Oanh", "Dung"]}
ETHNICITIES = ["Kinh"] * 12 + ["Tày", "Nùng", "Dao", "Mường"]
SUPPORT_POSITIONS = ["ke_toan", "van_thu", "y_te", "thu_vien", "thiet_bi", "bao_ve",
                     "cap_duong"]
INITIATIVES = ["Một số biện pháp nâng cao chất lượng dạy học môn Toán",
               "Ứng dụng công nghệ thông tin trong giảng dạy", "Biện pháp rèn kỹ năng đọc",
               "Tổ chức hoạt động trải nghiệm cho học sinh", "Nâng cao hiệu quả công tác chủ nhiệm",
               "Giáo dục kỹ năng sống cho trẻ mẫu giáo", "Đổi mới sinh hoạt tổ chuyên môn"]
# The CSTĐCS quota the generator plants against, written out rather than computed by the code
# under test: the sample office's own rule layer (input_samples/quy-tac-phong.yaml) sets 15 % of
# those reaching the base titles, rounded down, no minimum (test_quota checks it still says so;
# the law has no cap since 2024).
CSTD_SHARE_PERCENT = 15


def cstd_limit(base: int) -> int:
    """How many CSTĐCS a unit may propose when `base` people reach the base titles: 15 %, down."""
    return base * CSTD_SHARE_PERCENT // 100


# TCVN3 (ABC) glyphs of the two values the legacy-encoding fault plants.
TCVN3 = {"Lao động tiên tiến": "Lao ®éng tiªn tiÕn", "Nguyễn Văn Hùng": "NguyÔn V¨n Hïng"}


@dataclass
class Person:
    full_name: str
    birth_date: dt.date
    sex: str  # sexes code
    ethnicity: str
    position: str  # positions code
    staff_group: str
    title: str  # individual_titles code
    commendation: str | None
    initiative: str | None
    counted: bool = True


@dataclass
class Unit:
    code: str
    name: str
    level: str
    block: str
    disadvantaged: bool
    managers: int
    teachers: int
    support: int
    email: str
    people: list[Person] = field(default_factory=list)
    collectives: list[dict[str, Any]] = field(default_factory=list)

    @property
    def headcount(self) -> int:
        return self.managers + self.teachers + self.support


class Planted:
    """What the generator planted: findings per file and the truth of what counts."""

    def __init__(self) -> None:
        self.files: dict[str, dict[str, Any]] = {}

    def file(self, name: str, unit: str | None, counted: bool) -> dict[str, Any]:
        self.files[name] = {"unit": unit, "counted": counted, "findings": []}
        return self.files[name]

    def add(self, name: str, code: str, sheet: str | None, cell: str | None) -> None:
        self.files[name]["findings"].append([code, sheet, cell])


# People and units


def _person(rng: random.Random, position: str, group: str, taken: set[tuple[str, str]]) -> Person:
    while True:
        sex = rng.choice(["nam", "nu", "nu"])
        name = f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE[sex])} {rng.choice(GIVEN[sex])}"
        birth = dt.date(rng.randint(1968, 2001), rng.randint(1, 12), rng.randint(1, 28))
        if (name, birth.isoformat()) not in taken:
            taken.add((name, birth.isoformat()))
            break
    title = "khong_dang_ky" if rng.random() < 0.06 else "lao_dong_tien_tien"
    return Person(name, birth, sex, rng.choice(ETHNICITIES), position, group, title,
                  rng.choice([None, None, None, "giay_khen"]) if title != "khong_dang_ky"
                  else None, None)


def _people(rng: random.Random, unit: Unit, quota_share: float) -> list[Person]:
    taken: set[tuple[str, str]] = set()
    positions = ["hieu_truong"] + ["pho_hieu_truong"] * (unit.managers - 1)
    people = [_person(rng, p, "CBQL", taken) for p in positions]
    for i in range(unit.teachers):
        position = "to_truong" if i < 2 else ("tong_phu_trach" if i == 2 else "giao_vien")
        people.append(_person(rng, position, "GV", taken))
    for i in range(unit.support):
        people.append(_person(rng, SUPPORT_POSITIONS[i % len(SUPPORT_POSITIONS)], "NV", taken))
    base = [p for p in people if p.title != "khong_dang_ky"]
    limit = int(len(base) * quota_share + 1e-9)
    chosen = rng.sample(base, rng.randint(0, limit))
    for p in chosen:
        p.title = "cstd_co_so"
        p.initiative = rng.choice(INITIATIVES)
    if chosen and rng.random() < 0.35:  # now and then a candidate for the province's title
        chosen[0].title, chosen[0].commendation = "cstd_tinh", "bang_khen_tinh"
    return people


def _collectives(rng: random.Random, unit: Unit) -> list[dict[str, Any]]:
    rows = [{"collective_name": unit.name, "collective_kind": "don_vi", "members": unit.headcount,
             "collective_title": rng.choice(["tt_lao_dong_xuat_sac", "tt_lao_dong_xuat_sac",
                                             "tt_lao_dong_tien_tien", "co_thi_dua_tinh"]),
             "commendation": rng.choice([None, "bang_khen_tinh", "giay_khen"])}]
    for i in range(rng.randint(1, 3)):
        rows.append({"collective_name": f"Tổ chuyên môn {i + 1}",
                     "collective_kind": "to_chuyen_mon", "members": rng.randint(4, 12),
                     "collective_title": rng.choice(["tt_lao_dong_tien_tien",
                                                     "tt_lao_dong_xuat_sac"]),
                     "commendation": rng.choice([None, "giay_khen"])})
    return rows


def make_units(rng: random.Random, quota_share: float) -> list[Unit]:
    units = []
    places = iter(rng.sample(PLACES * 4, len(PLACES) * 4))
    for n_level, (level, count, stem, blocks) in enumerate(LEVELS, start=1):
        used: set[str] = set()
        for i in range(count):
            place = next(places)
            while place in used:
                place = next(places)
            used.add(place)
            small = level == "MN"
            unit = Unit(code=f"{n_level:02d}{i + 1:03d}", name=f"{stem} {place}", level=level,
                        block=blocks[i % len(blocks)], disadvantaged=rng.random() < 0.25,
                        managers=rng.randint(2, 3), teachers=rng.randint(8 if small else 14,
                                                                         20 if small else 40),
                        support=rng.randint(2, 6), email=f"c{n_level}{i + 1:02d}@tanlap.edu.vn")
            unit.people = _people(rng, unit, quota_share)
            unit.collectives = _collectives(rng, unit)
            units.append(unit)
    return units


# Registry


def write_registry(units: list[Unit], forms: FormSet, path: Path) -> None:
    """The registry workbook, laid out as its form definition says."""
    sheet = forms.current("danh-muc").sheets[0]
    levels = forms.vocabs["levels"]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet.name
    ws["A1"] = "DANH MỤC ĐƠN VỊ THAM GIA THI ĐUA NĂM HỌC " + SCHOOL_YEAR
    for col, column in enumerate(sheet.columns, start=1):
        ws.cell(row=3, column=col, value=column.header)
        ws.column_dimensions[get_column_letter(col)].width = column.width
    for i, u in enumerate(units, start=1):
        values = {"seq": i, "unit_code": u.code, "unit_name": u.name,
                  "level": levels.label_of(u.level), "block": u.block,
                  "disadvantaged": "Có" if u.disadvantaged else "Không", "managers": u.managers,
                  "teachers": u.teachers, "support_staff": u.support, "email": u.email}
        for col, column in enumerate(sheet.columns, start=1):
            cell = ws.cell(row=3 + i, column=col, value=values[column.id])
            if column.type == "unit_code":
                cell.number_format = "@"
    ws.freeze_panes = "A4"
    wb.save(path)


# Filling a template as a school would


def _header(ws, sheet: Sheet) -> tuple[int, dict[str, int]]:
    wanted = {c.header: c.id for c in sheet.columns}
    for row in ws.iter_rows(min_row=1, max_row=40):
        found = {wanted[c.value]: c.column for c in row if isinstance(c.value, str)
                 and c.value in wanted}
        if len(found) >= 3:
            return row[0].row, found
    raise AssertionError(f"no header row for {sheet.name}")


def _field_cell(ws, label: str) -> tuple[int, int]:
    for row in ws.iter_rows(min_row=1, max_row=30):
        for c in row:
            if c.value == label:
                return c.row, c.column + 1
    raise AssertionError(f"no field {label}")


def _label(forms: FormSet, column, value: Any) -> Any:
    if value is None or column.type != "choice":
        return value
    return forms.vocabs[column.choices].label_of(value)


def person_values(p: Person, seq: int) -> dict[str, Any]:
    return {"seq": seq, "full_name": p.full_name, "birth_date": p.birth_date, "sex": p.sex,
            "ethnicity": p.ethnicity, "position": p.position, "staff_group": p.staff_group,
            "title": p.title, "commendation": p.commendation, "initiative": p.initiative,
            "note": None}


@dataclass
class Filled:
    """A filled workbook and where its cells are: (sheet name, column id) → column letter."""

    wb: Any
    first_row: dict[str, int]
    letters: dict[tuple[str, str], str]

    def cell(self, sheet_id: str, column_id: str, index: int) -> str:
        return f"{self.letters[(sheet_id, column_id)]}{self.first_row[sheet_id] + index}"


def filled_template(form: Form, forms: FormSet, unit: Unit, path: Path, office,
                    report_date: dt.date) -> Filled:
    """A template made by `tdkt templates`, filled in its input cells only."""
    info = UnitInfo(code=unit.code, name=unit.name, level=unit.level, headcount=unit.headcount)
    write_template(form, forms.vocabs, info, path, SCHOOL_YEAR, office)
    wb = openpyxl.load_workbook(path)
    first_row: dict[str, int] = {}
    letters: dict[tuple[str, str], str] = {}
    for sheet in form.sheets:
        ws = wb[sheet.name]
        header, columns = _header(ws, sheet)
        first_row[sheet.id] = header + 1
        for cid, col in columns.items():
            letters[(sheet.id, cid)] = get_column_letter(col)
        if sheet.id == "unit":
            if "report_date" in {f.id for f in sheet.fields}:
                r, c = _field_cell(ws, sheet.column("report_date").header)
                ws.cell(row=r, column=c, value=report_date).number_format = "dd/mm/yyyy"
            rows = unit.collectives
            values = [dict(row, seq=i + 1) for i, row in enumerate(rows)]
        else:
            values = [person_values(p, i + 1) for i, p in enumerate(unit.people)]
        write_rows(ws, sheet, forms, header, columns, values)
    wb.save(path)
    return Filled(wb=wb, first_row=first_row, letters=letters)


def write_rows(ws, sheet: Sheet, forms: FormSet, header: int, columns: dict[str, int],
               rows: list[dict[str, Any]]) -> dict[int, int]:
    """Type rows under a table's header, choices as their labels; {row index: Excel row}."""
    for i, row in enumerate(rows):
        for cid, col in columns.items():
            if cid not in row:
                continue
            value = _label(forms, sheet.column(cid), row[cid])
            cell = ws.cell(row=header + 1 + i, column=col, value=value)
            if isinstance(value, dt.date):
                cell.number_format = "dd/mm/yyyy"
    return {i: header + 1 + i for i in range(len(rows))}


def sheet_grids(wb) -> dict[str, list[list[Any]]]:
    """The visible sheets' values, for re-saving in another format or layout."""
    grids = {}
    for ws in wb.worksheets:
        if ws.sheet_state != "visible":
            continue
        grids[ws.title] = [[c.value for c in row] for row in ws.iter_rows()]
    return grids


def write_xls(grids: dict[str, list[list[Any]]], path: Path) -> None:
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    date_style = xlwt.easyxf(num_format_str="dd/mm/yyyy")
    for name, grid in grids.items():
        ws = book.add_sheet(name)
        for r, row in enumerate(grid):
            for c, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, dt.date):
                    ws.write(r, c, value, date_style)
                else:
                    ws.write(r, c, value)
    book.save(str(path))


def write_ods(grids: dict[str, list[list[Any]]], path: Path) -> None:
    import pandas as pd

    with pd.ExcelWriter(path, engine="odf") as writer:
        for name, grid in grids.items():
            width = max(len(r) for r in grid)
            frame = pd.DataFrame([r + [None] * (width - len(r)) for r in grid], dtype=object)
            frame.to_excel(writer, sheet_name=name, header=False, index=False)


def write_plain_xlsx(grids: dict[str, list[list[Any]]], path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, grid in grids.items():
        ws = wb.create_sheet(name)
        for r, row in enumerate(grid, start=1):
            for c, value in enumerate(row, start=1):
                if value is not None:
                    cell = ws.cell(row=r, column=c, value=value)
                    if isinstance(value, dt.date):
                        cell.number_format = "dd/mm/yyyy"
    wb.save(path)


# The inbox


class Inbox:
    """Writes the inbox files and records, for each, what it planted and what counts."""

    def __init__(self, root: Path, forms: FormSet, office, rng: random.Random) -> None:
        self.dir = root / INBOX
        self.forms, self.office, self.rng = forms, office, rng
        self.form = forms.current("dang-ky")
        self.staff_sheet = self.form.sheet("staff").name
        self.unit_sheet = self.form.sheet("unit").name
        self.planted = Planted()
        self.units: dict[str, dict[str, Any]] = {}
        self.dates: dict[str, dt.date] = {}  # file → the "Ngày lập" written on it

    def date(self) -> dt.date:
        """A "Ngày lập" from 28/9 to 17/10: most before the 15/10 deadline, one in ten after."""
        return dt.date(2025, 9, 22) + dt.timedelta(days=self.rng.randint(6, 25))

    def truth(self, unit: Unit, file: str, status: str, collectives: bool = True) -> None:
        written = self.dates.get(file)
        self.units[unit.code] = {
            "status": status, "file": file,
            "report_date": written.isoformat() if written else None,
            "staff": [[p.title, p.staff_group] for p in unit.people if p.counted],
            "collectives": [c["collective_title"] for c in unit.collectives] if collectives else [],
        }

    def template_file(self, unit: Unit, name: str | None = None, form: Form | None = None,
                      report_date: dt.date | None = None) -> tuple[str, Filled]:
        name = name or f"dang-ky_{unit.code}.xlsx"
        self.dates[name] = report_date or self.date()
        filled = filled_template(form or self.form, self.forms, unit, self.dir / name,
                                 self.office, self.dates[name])
        return name, filled

    def clean(self, unit: Unit) -> None:
        name, _ = self.template_file(unit)
        self.planted.file(name, unit.code, True)
        self.truth(unit, name, "Hợp lệ")

    def _edit(self, name: str, edits: dict[tuple[str, str], Any],
              formats: dict[tuple[str, str], str] | None = None) -> None:
        wb = openpyxl.load_workbook(self.dir / name)
        for (sheet, cell), value in edits.items():
            wb[sheet][cell].value = value
        for (sheet, cell), fmt in (formats or {}).items():
            wb[sheet][cell].number_format = fmt
        wb.save(self.dir / name)

    def _index(self, unit: Unit, title: str | None = None, skip: int = 0) -> int:
        found = [i for i, p in enumerate(unit.people) if title is None or p.title == title]
        return found[min(skip, len(found) - 1)]

    # One method per fault a real school makes

    def no_diacritics(self, unit: Unit) -> None:
        _ensure_title(unit, "cstd_co_so")
        name, f = self.template_file(unit)
        self.planted.file(name, unit.code, True)
        a, b = self._index(unit, "lao_dong_tien_tien", 2), self._index(unit, "cstd_co_so")
        cells = {a: "Lao dong tien tien", b: "CSTD co so"}
        edits = {(self.staff_sheet, f.cell("staff", "title", i)): v for i, v in cells.items()}
        self._edit(name, edits)
        for sheet, cell in edits:
            self.planted.add(name, "choice-normalized", sheet, cell)
        self.truth(unit, name, "Hợp lệ")

    def nfd(self, unit: Unit) -> None:
        name, f = self.template_file(unit)
        self.planted.file(name, unit.code, True)
        cell = f.cell("staff", "full_name", 0)
        self._edit(name, {(self.staff_sheet, cell):
                          unicodedata.normalize("NFD", unit.people[0].full_name)})
        self.planted.add(name, "unicode-nfd", self.staff_sheet, cell)
        self.truth(unit, name, "Hợp lệ")

    def tcvn3(self, unit: Unit) -> None:
        i = self._index(unit, "lao_dong_tien_tien", 1)
        j = self._index(unit, None, 5)
        unit.people[j].full_name, unit.people[j].sex = "Nguyễn Văn Hùng", "nam"
        name, f = self.template_file(unit)
        self.planted.file(name, unit.code, True)
        edits = {(self.staff_sheet, f.cell("staff", "title", i)): TCVN3["Lao động tiên tiến"],
                 (self.staff_sheet, f.cell("staff", "full_name", j)): TCVN3["Nguyễn Văn Hùng"]}
        self._edit(name, edits)
        for sheet, cell in edits:
            self.planted.add(name, "legacy-encoding", sheet, cell)
        self.truth(unit, name, "Hợp lệ")

    def text_dates(self, unit: Unit) -> None:
        name, f = self.template_file(unit)
        self.planted.file(name, unit.code, True)
        cells = [f.cell("staff", "birth_date", i) for i in (1, 2, 3)]
        people = unit.people[1:4]
        edits = {(self.staff_sheet, cells[0]): people[0].birth_date.strftime("%d/%m/%Y"),
                 (self.staff_sheet, cells[1]): people[1].birth_date.strftime("%d/%m/%Y"),
                 (self.staff_sheet, cells[2]): (people[2].birth_date - dt.date(1899, 12, 30)).days}
        formats = {(self.staff_sheet, cells[0]): "@", (self.staff_sheet, cells[1]): "@",
                   (self.staff_sheet, cells[2]): "General"}
        self._edit(name, edits, formats)
        for code, cell in zip(["date-as-text", "date-as-text", "date-as-serial"], cells,
                              strict=True):
            self.planted.add(name, code, self.staff_sheet, cell)
        self.truth(unit, name, "Hợp lệ")

    def blank_required(self, unit: Unit) -> None:
        name, f = self.template_file(unit)
        self.planted.file(name, unit.code, True)
        cells = [f.cell("staff", "birth_date", 4), f.cell("staff", "sex", 5)]
        self._edit(name, {(self.staff_sheet, c): None for c in cells})
        for cell in cells:
            self.planted.add(name, "missing-value", self.staff_sheet, cell)
        unit.people[4].counted = unit.people[5].counted = False
        self.truth(unit, name, "Có lỗi")

    def own_layout(self, unit: Unit) -> None:
        """Columns reordered, one renamed to a known alias, one extra; no hidden sheet."""
        tmp, f = self.template_file(unit, name="_tmp.xlsx")
        grids = sheet_grids(openpyxl.load_workbook(self.dir / tmp))
        (self.dir / tmp).unlink()
        grid = grids[self.staff_sheet]
        header = f.first_row["staff"] - 2  # 0-based header row
        birth = openpyxl.utils.column_index_from_string(f.letters[("staff", "birth_date")]) - 1
        sex = openpyxl.utils.column_index_from_string(f.letters[("staff", "sex")]) - 1
        full = openpyxl.utils.column_index_from_string(f.letters[("staff", "full_name")]) - 1
        width = max(len(r) for r in grid)
        for r, row in enumerate(grid):
            row.extend([None] * (width - len(row)))
            row[birth], row[sex] = row[sex], row[birth]
            if r == header:
                row[full] = "Họ tên"
                row.append("Số điện thoại")
            elif r > header and r - header - 1 < len(unit.people):
                row.append(f"09{self.rng.randint(10_000_000, 99_999_999)}")
        name = f"Đăng ký thi đua {unit.name}.xlsx"
        self.dates[name] = self.dates.pop(tmp)
        write_plain_xlsx(grids, self.dir / name)
        self.planted.file(name, unit.code, True)
        self.planted.add(name, "unknown-column", self.staff_sheet,
                         f"{get_column_letter(width + 1)}{header + 1}")
        self.truth(unit, name, "Hợp lệ")

    def old_version(self, unit: Unit) -> None:
        name, _ = self.template_file(unit, name=f"dang-ky_{unit.code}_mau-nam-truoc.xlsx",
                                     form=self.forms.get("dang-ky", "2024.1"))
        self.planted.file(name, unit.code, True)
        self.planted.add(name, "old-form-version", None, None)
        self.truth(unit, name, "Hợp lệ")

    def unknown_unit(self, unit: Unit) -> None:
        name, _ = self.template_file(unit, name=f"dang-ky_{unit.code}.xlsx")
        self.planted.file(name, None, False)
        self.planted.add(name, "unknown-unit", None, None)

    def sent_twice(self, unit: Unit) -> None:
        first_title = unit.people[0].title
        unit.people[0].title = "khong_dang_ky"
        old, _ = self.template_file(unit, report_date=dt.date(2025, 10, 5))
        unit.people[0].title = first_title
        new, _ = self.template_file(unit, name=f"dang-ky_{unit.code} (gửi lại).xlsx",
                                    report_date=dt.date(2025, 10, 20))
        self.planted.file(old, unit.code, False)
        self.planted.add(old, "superseded", None, None)
        self.planted.file(new, unit.code, True)
        self.truth(unit, new, "Hợp lệ")

    def xls(self, unit: Unit) -> None:
        tmp, _ = self.template_file(unit, name="_tmp.xlsx")
        grids = sheet_grids(openpyxl.load_workbook(self.dir / tmp))
        (self.dir / tmp).unlink()
        name = f"{unit.code}.xls"
        self.dates[name] = self.dates.pop(tmp)
        write_xls(grids, self.dir / name)
        self.planted.file(name, unit.code, True)
        self.planted.add(name, "old-file-format", None, None)
        self.truth(unit, name, "Hợp lệ")

    def ods(self, unit: Unit) -> None:
        tmp, _ = self.template_file(unit, name="_tmp.xlsx")
        grids = sheet_grids(openpyxl.load_workbook(self.dir / tmp))
        (self.dir / tmp).unlink()
        name = f"{unit.code}.ods"
        self.dates[name] = self.dates.pop(tmp)
        write_ods(grids, self.dir / name)
        self.planted.file(name, unit.code, True)
        self.truth(unit, name, "Hợp lệ")

    def person_twice(self, unit: Unit) -> None:
        twin = Person(**{**unit.people[6].__dict__, "counted": False})
        unit.people.append(twin)
        name, f = self.template_file(unit)
        self.planted.file(name, unit.code, True)
        self.planted.add(name, "duplicate-person", self.staff_sheet,
                         f.cell("staff", "full_name", len(unit.people) - 1))
        self.truth(unit, name, "Có lỗi")

    def no_initiative(self, unit: Unit) -> None:
        _ensure_title(unit, "cstd_co_so")
        i = self._index(unit, "cstd_co_so")
        unit.people[i].initiative = None
        name, f = self.template_file(unit)
        self.planted.file(name, unit.code, True)
        self.planted.add(name, "missing-initiative", self.staff_sheet,
                         f.cell("staff", "initiative", i))
        self.truth(unit, name, "Hợp lệ")

    def free_typed(self, unit: Unit) -> None:
        i = self._index(unit, "lao_dong_tien_tien", 6)
        name, f = self.template_file(unit)
        self.planted.file(name, unit.code, True)
        cell = f.cell("staff", "title", i)
        self._edit(name, {(self.staff_sheet, cell): "Chiến sĩ giỏi"})
        self.planted.add(name, "not-in-list", self.staff_sheet, cell)
        unit.people[i].counted = False
        self.truth(unit, name, "Có lỗi")

    def lost_zero(self, unit: Unit) -> None:
        name = f"DK thi dua {unit.code}.xlsx"
        self.template_file(unit, name=name)
        wb = openpyxl.load_workbook(self.dir / name)
        del wb["_tdkt"]
        ws = wb[self.unit_sheet]
        row, col = _field_cell(ws, self.form.sheet("unit").column("unit_code").header)
        ws.cell(row=row, column=col).value = int(unit.code)
        ws.cell(row=row, column=col).number_format = "General"
        wb.save(self.dir / name)
        self.planted.file(name, unit.code, True)
        self.planted.add(name, "code-lost-zero", self.unit_sheet, f"{get_column_letter(col)}{row}")
        self.truth(unit, name, "Hợp lệ")

    def legacy_list(self, unit: Unit) -> None:
        name = f"Danh sach dang ky thi dua {unit.code} (mau cu).xlsx"
        sheet = "Danh sách"
        write_legacy_list(unit, self.forms, self.dir / name, sheet)
        self.planted.file(name, unit.code, True)
        self.planted.add(name, "legacy-layout", sheet, "6")
        self.truth(unit, name, "Hợp lệ", collectives=False)

    def over_quota(self, unit: Unit, limit: int) -> None:
        lao_dong = [p for p in unit.people if p.title == "lao_dong_tien_tien"]
        wanted = limit + 2 - sum(p.title == "cstd_co_so" for p in unit.people)
        for p in lao_dong[:wanted]:
            p.title, p.initiative = "cstd_co_so", INITIATIVES[0]
        name, _ = self.template_file(unit)
        self.planted.file(name, unit.code, True)
        self.planted.add(name, "quota-exceeded", self.staff_sheet, None)
        self.truth(unit, name, "Hợp lệ")


def _ensure_title(unit: Unit, title: str) -> None:
    if not any(p.title == title for p in unit.people):
        p = next(p for p in unit.people[3:] if p.title == "lao_dong_tien_tien")
        p.title, p.initiative = title, INITIATIVES[1]


def write_legacy_list(unit: Unit, forms: FormSet, path: Path, sheet: str) -> None:
    """The list layout offices used before the templates: two-row merged header, Ông (bà)."""
    titles, positions = forms.vocabs["individual_titles"], forms.vocabs["positions"]
    commendations = forms.vocabs["commendations"]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    ws["A1"], ws["E1"] = "UBND XÃ TÂN LẬP", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
    ws["A2"], ws["E2"] = unit.name.upper(), "Độc lập - Tự do - Hạnh phúc"
    ws["A4"] = f"DANH SÁCH ĐĂNG KÝ DANH HIỆU THI ĐUA NĂM HỌC {SCHOOL_YEAR}"
    ws.merge_cells("A4:F4")
    for col, text in zip("ABCD", ["Stt", "Ông (bà)", "Họ và tên", "Chức vụ, đơn vị"],
                         strict=True):
        ws[f"{col}6"] = text
        ws.merge_cells(f"{col}6:{col}7")
    ws["E6"] = "Đăng ký thi đua, khen thưởng"
    ws.merge_cells("E6:F6")
    ws["E7"], ws["F7"] = "Thi đua", "Khen thưởng"
    for i, p in enumerate(unit.people):
        row = 8 + i
        ws[f"A{row}"] = i + 1
        ws[f"B{row}"] = "Ông" if p.sex == "nam" else "Bà"
        ws[f"C{row}"] = p.full_name
        ws[f"D{row}"] = f"{positions.label_of(p.position)}, {unit.name}"
        ws[f"E{row}"] = titles.by_code(p.title).abbr if p.title != "khong_dang_ky" \
            else titles.label_of(p.title)
        ws[f"F{row}"] = commendations.label_of(p.commendation) if p.commendation else None
    end = 8 + len(unit.people) + 1
    ws[f"E{end}"] = "Tân Lập, ngày 10 tháng 10 năm 2025"
    ws[f"E{end + 1}"] = "HIỆU TRƯỞNG"
    wb.save(path)


@dataclass
class Registrations:
    """The registration inbox as generated, and what the year-end round is generated from."""

    units: list[Unit]
    inbox: Inbox
    forms: FormSet
    config: Any
    rng: random.Random  # its state after the registrations: each results build takes a copy


def build(root: Path, violations: bool = True) -> dict[str, Any]:
    """Write the registry, the inboxes and expected.json under `root`; returns the record.

    With `violations=False` the results inbox holds only proposals that meet every rule.
    """
    return build_year_end(root, build_registrations(root), violations)


def build_registrations(root: Path) -> Registrations:
    """Write the registry and the registration inbox under `root`."""
    rng = random.Random(SEED)
    forms = load_forms()
    config = load_config(root / "tdkt.toml", SCHOOL_YEAR)
    units = make_units(rng, CSTD_SHARE_PERCENT / 100)
    write_registry(units, forms, root / REGISTRY)
    inbox = Inbox(root, forms, config.office_for(), rng)
    shutil.rmtree(inbox.dir, ignore_errors=True)
    inbox.dir.mkdir(parents=True)
    faults = {1: inbox.nfd, 2: inbox.no_diacritics, 12: inbox.tcvn3, 13: inbox.own_layout,
              14: inbox.sent_twice, 15: inbox.no_initiative, 16: inbox.lost_zero,
              17: inbox.legacy_list, 26: inbox.text_dates, 27: inbox.blank_required,
              28: inbox.old_version, 29: inbox.xls, 30: inbox.ods, 31: inbox.person_twice,
              32: inbox.free_typed}
    missing = {5, 20, 33, 41}
    for i, unit in enumerate(units):
        if i in missing:
            inbox.units[unit.code] = {"status": "Chưa nộp", "file": None, "staff": [],
                                      "collectives": []}
        elif i == 34:
            base = sum(p.title != "khong_dang_ky" for p in unit.people)
            inbox.over_quota(unit, cstd_limit(base))
        else:
            faults.get(i, inbox.clean)(unit)
    stranger = Unit(code="09001", name="Trường Tiểu học Thực hành Sư phạm", level="TH",
                    block="Khối Tiểu học 1", disadvantaged=False, managers=2, teachers=12,
                    support=3, email="thsp@tanlap.edu.vn")
    stranger.people = _people(rng, stranger, CSTD_SHARE_PERCENT / 100)
    stranger.collectives = _collectives(rng, stranger)
    inbox.unknown_unit(stranger)
    (inbox.dir / "Công văn gửi Phòng.docx").write_bytes(b"PK\x03\x04 not really a document")
    inbox.planted.file("Công văn gửi Phòng.docx", None, False)
    inbox.planted.add("Công văn gửi Phòng.docx", "not-a-workbook", None, None)
    openpyxl.Workbook().save(inbox.dir / "bang-dang-ky-trong.xlsx")
    inbox.planted.file("bang-dang-ky-trong.xlsx", None, False)
    inbox.planted.add("bang-dang-ky-trong.xlsx", "empty-workbook", None, None)
    return Registrations(units, inbox, forms, config, rng)


def build_year_end(root: Path, registrations: Registrations, violations: bool = True,
                   templates: dict[str, bytes] | None = None) -> dict[str, Any]:
    """Write the results inbox, the allocation and expected.json under `root` (which holds the
    registrations' tdkt.toml); returns the record. `registrations` is left as it was, so one
    generated registration inbox serves several year-end builds. `templates` (unit code → the
    blank results template's bytes) is filled and reused across builds: the blank templates
    do not depend on the violations."""
    rng = random.Random()
    rng.setstate(registrations.rng.getstate())
    inbox = registrations.inbox
    results = build_results(root, registrations.units, inbox, registrations.forms,
                            registrations.config, rng, violations, templates)
    record = {"seed": SEED, "school_year": SCHOOL_YEAR, "files": inbox.planted.files,
              "units": inbox.units, "results": results}
    (root / EXPECTED).write_text(json.dumps(record, ensure_ascii=False, indent=1, sort_keys=True),
                                 encoding="utf-8")
    return record


# The year-end round


RESULTS_INBOX = "hop-thu-ket-qua"
ALLOCATION = "phan-bo-khen-thuong.xlsx"


def _result_values(p: Person, rng: random.Random, seq: int) -> dict[str, Any]:
    high = p.title in ("cstd_co_so", "cstd_tinh") or (p.commendation or "").startswith("bang")
    level = {"cstd_co_so": "co_so", "cstd_tinh": "tinh"}.get(p.title)
    maternity = p.sex == "nu" and not high and rng.random() < 0.05
    return {"seq": seq, "full_name": p.full_name, "birth_date": p.birth_date, "sex": p.sex,
            "position": p.position, "staff_group": p.staff_group,
            "grade": "HTXSNV" if high or rng.random() < 0.3 else "HTTNV",
            "months_worked": 4 if maternity else rng.choice([12, 12, 12, 10, 9]),
            "absence": "thai_san" if maternity else "khong",
            "absence_months": 6 if maternity else None, "discipline": "khong",
            "initiative": p.initiative if level else None, "initiative_level": level,
            "initiative_decision": "Số 15/QĐ-HĐSK ngày 10/4/2026" if level else None,
            "title": p.title, "commendation": p.commendation,
            # CSTĐ cấp tỉnh needs 90 % of the council, CSTĐCS 80 %.
            "vote_share": rng.choice([90, 95, 100] if p.title == "cstd_tinh"
                                     else [85, 90, 95, 100])}


def _group_values(c: dict[str, Any], seq: int) -> dict[str, Any]:
    members = int(c["members"])
    share = {"tt_lao_dong_xuat_sac": 0.8, "co_thi_dua_tinh": 0.8}.get(c["collective_title"], 0.6)
    return {"seq": seq, "collective_name": c["collective_name"],
            "collective_kind": c["collective_kind"], "members": members,
            "completed_tasks": members, "lao_dong_count": -(-int(members * share * 100) // 100),
            "cstd_count": 1, "disciplined": 0, "collective_title": c["collective_title"],
            "commendation": c["commendation"], "vote_share": 95}


def _fill_rows(path: Path, form: Form, forms: FormSet, sheet_id: str,
               rows: list[dict[str, Any]]) -> dict[int, int]:
    """Write rows into a template's table; returns {row index: Excel row}."""
    wb = openpyxl.load_workbook(path)
    sheet = form.sheet(sheet_id)
    ws = wb[sheet.name]
    header, columns = _header(ws, sheet)
    placed = write_rows(ws, sheet, forms, header, columns, rows)
    wb.save(path)
    return placed


def _fill_tables(path: Path, form: Form, forms: FormSet,
                 tables: dict[str, list[dict[str, Any]]],
                 report_date: dt.date | None = None) -> dict[str, dict[int, int]]:
    """_fill_rows for several tables (sheet id → rows), and the unit sheet's "Ngày lập",
    loading and saving the workbook once; returns {sheet id: {row index: Excel row}}."""
    wb = openpyxl.load_workbook(path)
    placed = {}
    for sheet_id, rows in tables.items():
        sheet = form.sheet(sheet_id)
        ws = wb[sheet.name]
        header, columns = _header(ws, sheet)
        placed[sheet_id] = write_rows(ws, sheet, forms, header, columns, rows)
        if report_date is not None and "report_date" in {f.id for f in sheet.fields}:
            r, c = _field_cell(ws, sheet.column("report_date").header)
            ws.cell(row=r, column=c, value=report_date).number_format = "dd/mm/yyyy"
    wb.save(path)
    return placed


def _results_date(code: str) -> dt.date:
    """The results form's "Ngày lập" (the unit's council meeting) of a unit: 5/5 to 27/5/2026,
    most before the 25/5 deadline, about one in ten after. Drawn from its own generator so
    every other generated value stays as it was."""
    return dt.date(2026, 5, 25) - dt.timedelta(days=random.Random(f"ngay-lap-{code}").randint(
        -2, 20))


def _scores(criteria: tuple[dict[str, Any], ...], total: int) -> list[float]:
    """Self-scores per criterion adding up to `total`, none above its maximum."""
    maxima = [int(c["max_score"]) for c in criteria]
    scores = [m * total // sum(maxima) for m in maxima]
    for i in range(total - sum(scores)):
        scores[i % len(scores)] += 1
    return scores


def build_results(root: Path, units: list[Unit], inbox: Inbox, forms: FormSet, config,
                  rng: random.Random, violations: bool = True,
                  templates: dict[str, bytes] | None = None) -> dict[str, Any]:
    """The results inbox: one file per unit that registered cleanly, with planted violations.

    `templates`, when given, caches each unit's blank template (see build_year_end)."""
    from pipeline.rules.ruleset import block_criteria, load_criteria

    form = forms.current("ket-qua")
    target = root / RESULTS_INBOX
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    criteria = load_criteria(SCHOOL_YEAR)
    quota = load_rules(SCHOOL_YEAR).rule("cstd_co_so.quota")
    clean = [u for u in units if inbox.units[u.code]["status"] == "Hợp lệ"
             and inbox.units[u.code]["collectives"]]
    sent = clean[:-3]  # the last three send nothing
    totals = {u.code: rng.randint(70, 95) for u in sent}
    planted: list[dict[str, Any]] = []
    count_differs: list[dict[str, Any]] = []
    # A tie at the top of Khối THCS, broken by the share of LĐTT.
    thcs = [u for u in sent if u.block == "Khối THCS"][:2]
    top = max(totals[u.code] for u in sent if u.block == "Khối THCS") + 3
    for u in thcs:
        totals[u.code] = min(top, 100)
    leaders = {}
    for u in sent:
        best = leaders.get(u.block)
        if best is None or totals[u.code] > totals[best.code]:
            leaders[u.block] = u
    truth_units = {}
    # The unit where a CSTĐCS without HTXSNV or an initiative is planted: the first with a
    # CSTĐCS registration, outside the units that carry the other planted faults.
    cstd_index = next(i for i, u in enumerate(sent) if i not in range(1, 7)
                      and any(p.title == "cstd_co_so" for p in u.people))
    over_quota = next(spec["unit"] for spec in inbox.planted.files.values()
                      if any(f[0] == "quota-exceeded" for f in spec["findings"]))
    for index, unit in enumerate(sent):
        people = [_result_values(p, rng, i + 1) for i, p in enumerate(unit.people)]
        groups = [_group_values(c, i + 1) for i, c in enumerate(unit.collectives)]
        if groups[0]["collective_title"] == "co_thi_dua_tinh" and leaders[unit.block] is not unit:
            groups[0]["collective_title"] = "tt_lao_dong_xuat_sac"  # only the leader proposes
        name = f"ket-qua_{unit.code}.xlsx"
        planted_here = _plant(index, unit, people, groups, rng, cstd_index) if violations else []
        if not violations:
            for p in people:  # the initiative registered without a name is recognised now
                if p["title"] in ("cstd_co_so", "cstd_tinh") and not p["initiative"]:
                    p.update(initiative=INITIATIVES[2], initiative_level="co_so",
                             initiative_decision="Số 15/QĐ-HĐSK ngày 10/4/2026")
        beyond = 0
        if unit.code == over_quota and violations:  # the CSTĐCS it registered, over the share
            base = sum(p["title"] in quota.params["base_titles"] for p in people)
            capped = sum(p["title"] in quota.params["counted_titles"] for p in people)
            beyond = capped - cstd_limit(base)
            planted.append({"subject": "person", "file": f"ket-qua_{unit.code}.xlsx",
                            "unit": unit.code, "rule_id": quota.id, "result": "over-quota",
                            "count": beyond})
        else:
            _keep_within_quota(people, planted_here, quota)
        groups[0].update(_true_counts(people, planted_here, quota, beyond))
        if groups[0]["cstd_count"] == 0 and groups[0]["collective_title"] in (
                "tt_lao_dong_xuat_sac", "co_thi_dua_tinh"):
            groups[0]["collective_title"] = "tt_lao_dong_tien_tien"  # needs ≥ 1 CSTĐCS
        first_tied = truth_units.get(thcs[0].code) if unit is thcs[-1] else None
        if first_tied and first_tied["lao_dong_share"] == (
                groups[0]["lao_dong_count"] / groups[0]["members"]):
            # The two units tied on score differ on the share of LĐTT (the first tie-break).
            spare = next(p for i, p in enumerate(people) if p["title"] == "lao_dong_tien_tien"
                         and not any(v.get("index") == i for v in planted_here))
            spare["title"] = "khong_dang_ky"
            groups[0].update(_true_counts(people, planted_here, quota, beyond))
        if index == 6 and violations:  # the unit sheet types more LĐTT than its person rows
            true = groups[0]["lao_dong_count"]
            groups[0]["lao_dong_count"] = groups[0]["members"]
            count_differs.append({"file": name, "unit": unit.code, "column": "lao_dong_count",
                                  "typed": groups[0]["members"], "computed": true})
        info = UnitInfo(code=unit.code, name=unit.name, level=unit.level,
                        headcount=unit.headcount,
                        rows={"criteria": block_criteria(criteria, unit.block)})
        path = target / name
        if templates is not None and unit.code in templates:
            path.write_bytes(templates[unit.code])
        else:
            write_template(form, forms.vocabs, info, path, SCHOOL_YEAR, inbox.office)
            if templates is not None:
                templates[unit.code] = path.read_bytes()
        crit = block_criteria(criteria, unit.block)
        placed = _fill_tables(path, form, forms, {
            "staff": people, "unit": groups,
            "criteria": [{"self_score": s} for s in _scores(crit, totals[unit.code])]},
            report_date=_results_date(unit.code))
        staff_rows, unit_rows = placed["staff"], placed["unit"]
        for v in planted_here:
            rows = staff_rows if v["subject"] == "person" else unit_rows
            row = rows[v.pop("index")]
            planted.append({**v, "file": name, "unit": unit.code, "row": row})
        truth_units[unit.code] = {
            "block": unit.block, "score": totals[unit.code],
            "lao_dong_share": groups[0]["lao_dong_count"] / groups[0]["members"],
            "cstd_count": groups[0]["cstd_count"], "file": name,
            "report_date": _results_date(unit.code).isoformat()}
    allocation = _write_allocation(root / ALLOCATION, forms, 1 if violations else 100)
    return {"planted": planted, "units": truth_units, "allocation": allocation,
            "count_differs": count_differs}


def _plant(index: int, unit: Unit, people: list[dict], groups: list[dict],
           rng: random.Random, cstd_index: int) -> list[dict[str, Any]]:
    """The violations the issue lists, spread over the first units; returns what was planted."""
    def person(i: int, rule: str, kind: str = "title") -> dict[str, Any]:
        return {"subject": "person", "index": i, "name": people[i]["full_name"], "kind": kind,
                "proposal": people[i][kind], "rule_id": rule, "result": "fail"}

    def first(title: str, start: int = 3) -> int | None:
        return next((i for i, p in enumerate(people) if i >= start and p["title"] == title), None)

    out: list[dict[str, Any]] = []
    if index == cstd_index and (i := first("cstd_co_so", 0)) is not None:
        # Neither HTXSNV nor a recognised initiative (Luật 06/2022 Điều 23 needs one of them).
        people[i]["initiative"] = people[i]["initiative_level"] = None
        people[i].update(initiative_decision=None, grade="HTTNV")
        out.append(person(i, "cstd_co_so.base"))
    if index == 1 and (i := first("lao_dong_tien_tien")) is not None:
        people[i].update(months_worked=5, absence="khac")
        out.append(person(i, "lao_dong_tien_tien.min_months"))
        j = first("lao_dong_tien_tien", i + 1)
        people[j].update(months_worked=8, absence="khac")  # passes with 6 months, not with 10
    if index == 2 and (i := first("lao_dong_tien_tien")) is not None:
        people[i].update(discipline="khien_trach", discipline_date=dt.date(2026, 1, 12))
        out.append(person(i, "lao_dong_tien_tien.discipline"))
    if index == 3 and (i := first("khong_dang_ky", 0)) is not None:
        people[i]["title"] = "lao_dong_tien_tien"
        out.append(person(i, "registration.title"))
    if index == 4 and len(groups) > 1:
        groups[1].update(collective_title="tt_lao_dong_xuat_sac",
                         lao_dong_count=groups[1]["members"] // 2)
        out.append({"subject": "collective", "index": 1, "name": groups[1]["collective_name"],
                    "kind": "collective_title", "proposal": "tt_lao_dong_xuat_sac",
                    "rule_id": "tt_lao_dong_xuat_sac.base", "result": "fail"})
    if index == 5 and (i := first("cstd_co_so", 0)) is not None:
        people[i]["vote_share"] = 70  # below 80 % of the council (NĐ 98/2023 Điều 30 k7)
        out.append(person(i, "vote.cstd_co_so"))
    return out


# Rules whose failure leaves a person short of LĐTT, or of CSTĐCS (the generator's own list of
# what it plants, not the engine's): the unit sheet's counts come from the person rows.
LAO_DONG_RULES = {"lao_dong_tien_tien.min_months", "lao_dong_tien_tien.discipline",
                  "registration.title"}
CSTD_RULES = {"cstd_co_so.base", "vote.cstd_co_so"}


def _true_counts(people: list[dict], violations: list[dict], quota, beyond: int
                 ) -> dict[str, int]:
    """The unit row's counts as its person rows and their planted outcomes give them."""
    failed = {v["index"] for v in violations if v["subject"] == "person"
              and v["rule_id"] in LAO_DONG_RULES}
    no_cstd = failed | {v["index"] for v in violations if v["subject"] == "person"
                        and v["rule_id"] in CSTD_RULES}
    base, counted = quota.params["base_titles"], quota.params["counted_titles"]
    return {
        "members": len(people),
        "completed_tasks": sum(p["grade"] in ("HTXSNV", "HTTNV", "HTNV") for p in people),
        "lao_dong_count": sum(p["title"] in base and i not in failed
                              for i, p in enumerate(people)),
        "cstd_count": sum(p["title"] in counted and i not in no_cstd
                          for i, p in enumerate(people)) - beyond,
        "disciplined": 0}


def _keep_within_quota(people: list[dict], violations: list[dict], quota) -> None:
    """Clean units stay within the CSTĐCS share: extra CSTĐCS are proposed as LĐTT instead."""
    failing = {v["index"] for v in violations if v["subject"] == "person"}
    base = [i for i, p in enumerate(people) if i not in failing
            and p["title"] in quota.params["base_titles"]]
    capped = [i for i in base if people[i]["title"] in quota.params["counted_titles"]]
    for i in capped[cstd_limit(len(base)):]:
        if any(v["index"] == i for v in violations):
            continue
        people[i]["title"] = "lao_dong_tien_tien"


def _write_allocation(path: Path, forms: FormSet, scale: int) -> dict[str, int]:
    """The office's allocation of Bằng khen UBND tỉnh per khối."""
    sheet = forms.current("phan-bo").sheets[0]
    limits = {block: n * scale for block, n in (
        ("Khối Mầm non 1", 3), ("Khối Mầm non 2", 3), ("Khối Tiểu học 1", 4),
        ("Khối Tiểu học 2", 4), ("Khối THCS", 5), ("Khối Liên cấp", 4))}
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet.name
    ws["A1"] = "PHÂN BỔ HẠN MỨC KHEN THƯỞNG THEO KHỐI THI ĐUA NĂM HỌC " + SCHOOL_YEAR
    for col, column in enumerate(sheet.columns, start=1):
        ws.cell(row=3, column=col, value=column.header)
    label = forms.vocabs["commendations"].label_of("bang_khen_tinh")
    for i, (block, limit) in enumerate(limits.items(), start=1):
        for col, value in enumerate([i, block, label, limit], start=1):
            ws.cell(row=3 + i, column=col, value=value)
    wb.save(path)
    return limits


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "input_samples")
    result = build(target)
    print(f"{len(result['files'])} tệp trong {target / INBOX}; "
          f"{sum(bool(f['findings']) for f in result['files'].values())} tệp có lỗi cài sẵn.")
