"""A Sở registry (form danh-muc-so) as the Sở fills it: the form's template, typed into.

`write_province_registry(path, OFFICES, UNITS, BLOCKS)` writes the small fixed sample below;
tests plant faults by passing changed rows. Values are given as vocabulary codes (written as
their labels, as a dropdown would) or as any other text, written as typed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import openpyxl

from pipeline.config import Office
from pipeline.forms.definitions import FormSet, Sheet, load_forms
from pipeline.forms.template import UnitInfo, write_template

from .sample_inbox import SCHOOL_YEAR, _header

FORM = "danh-muc-so"
# The Sở, as its configuration names it (a Sở configuration: level "tinh").
PROVINCE = Office(name="Sở Giáo dục và Đào tạo", parent="UBND TỈNH AN PHÚ", level="tinh",
                  place="An Phú")


@dataclass(frozen=True)
class OfficeRow:
    office_code: str
    office_name: str
    commune: str
    email: str | None = None


@dataclass(frozen=True)
class UnitRow:
    unit_code: str
    unit_name: str
    unit_type: str  # a code of unit_types, or text as typed
    level: str  # a code of levels
    block: str  # a khối code (or name) as typed
    disadvantaged: str  # "yes" / "no"
    managers: int
    teachers: int
    support_staff: int
    email: str | None = None


@dataclass(frozen=True)
class BlockRow:
    block_code: str
    block_name: str
    block_kind: str  # "khoi" / "cum"
    note: str | None = None


OFFICES = (
    OfficeRow("X001", "Phòng Văn hóa – Xã hội xã Tân Lập", "Xã Tân Lập", "vhxh@tanlap.gov.vn"),
    OfficeRow("X002", "Phòng Văn hóa – Xã hội xã Hòa Bình", "Xã Hòa Bình", "vhxh@hoabinh.gov.vn"),
    OfficeRow("X003", "Phòng Văn hóa – Xã hội phường An Phú", "Phường An Phú",
              "vhxh@anphu.gov.vn"),
)
UNITS = (
    UnitRow("T0001", "Trường THPT Nguyễn Huệ", "THPT", "THPT", "K1", "no", 4, 62, 11,
            "thpt.nguyenhue@anphu.edu.vn"),
    UnitRow("T0002", "Trường THPT chuyên Lê Quý Đôn", "chuyen", "THPT", "K1", "no", 4, 71, 12,
            "chuyen.lqd@anphu.edu.vn"),
    UnitRow("T0003", "Trường TH, THCS và THPT Hòa Bình", "lien_cap_thpt", "TH-THCS-THPT", "K1",
            "yes", 3, 55, 8, "lc.hoabinh@anphu.edu.vn"),
    # A boarding school for ethnic minorities teaching THCS only: the Sở's all the same.
    UnitRow("T0004", "Trường PTDTNT THCS Tân Lập", "PTDTNT", "THCS", "C1", "yes", 3, 30, 9,
            "dtnt.tanlap@anphu.edu.vn"),
    UnitRow("T0005", "Trung tâm GDTX tỉnh An Phú", "GDTX", "GDTX", "C1", "no", 2, 25, 6,
            "gdtx@anphu.edu.vn"),
    UnitRow("T0006", "Trường Giáo dục chuyên biệt An Phú", "chuyen_biet", "TH&THCS", "C1", "no",
            2, 20, 7, None),
)
BLOCKS = (
    BlockRow("K1", "Khối các trường THPT", "khoi"),
    BlockRow("C1", "Cụm GDTX và trường chuyên biệt", "cum", "PTDTNT, GDTX, chuyên biệt"),
)
SHEET_ROWS = {"offices": OFFICES, "units": UNITS, "blocks": BLOCKS}


def write_province_registry(path: Path, offices: tuple[OfficeRow, ...] = OFFICES,
                            units: tuple[UnitRow, ...] = UNITS,
                            blocks: tuple[BlockRow, ...] = BLOCKS, *,
                            forms: FormSet | None = None) -> Path:
    """The Sở's registry: the danh-muc-so template for the Sở, its input cells filled in."""
    forms = forms or load_forms()
    form = forms.current(FORM)
    rows = {"offices": offices, "units": units, "blocks": blocks}
    sizing = UnitInfo(code="so", name=PROVINCE.name, level="",
                      headcount=max(len(r) for r in rows.values()))
    write_template(form, forms.vocabs, sizing, path, SCHOOL_YEAR, PROVINCE)
    wb = openpyxl.load_workbook(path)
    for sheet in form.sheets:
        ws = wb[sheet.name]
        header, columns = _header(ws, sheet)
        for i, row in enumerate(rows[sheet.id], start=1):
            values = {"seq": i, **asdict(row)}
            for column_id, col in columns.items():
                ws.cell(header + i, col, _typed(forms, sheet, column_id, values.get(column_id)))
    wb.save(path)
    return path


def _typed(forms: FormSet, sheet: Sheet, column_id: str, value: object) -> object:
    """A value as the Sở types it: a vocabulary code as its label, anything else as given."""
    column = sheet.column(column_id)
    if column.type == "choice" and value in forms.vocabs[column.choices].codes:
        return forms.vocabs[column.choices].label_of(str(value))
    return value

