"""The workbook of people `tdkt import-history` matched to the store by a near name, in another
school, or not at all because several people fit: the office types the right person id beside
each one it confirms and runs `tdkt confirm` on the file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.reports.registration import CONFIRM_HEADER, MATCHES_SHEET, PERSON_HEADER
from pipeline.reports.workbook import Col, Letterhead, ReportBook, txt

MATCHES_FILE = "xac-nhan-trung-nguoi_{stem}.xlsx"


def import_matches_path(store_path: Path, imported: Path) -> Path:
    """Where the matches of an imported list are written: beside the store, named after the
    list."""
    return store_path.parent / MATCHES_FILE.format(stem=imported.stem)


def write_import_matches(path: Path, matches: pd.DataFrame, imported: str,
                         letterhead: Letterhead) -> Path:
    """One sheet “Xác nhận trùng người”: a row per match, the office's column left empty."""
    frame = matches.reset_index(drop=True).assign(same_as=None)
    frame.insert(0, "seq", range(1, len(frame) + 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    with ReportBook(path, letterhead, f"Xác nhận trùng người — {imported}") as book:
        book.table_sheet(
            MATCHES_SHEET, "NGƯỜI CẦN PHÒNG XÁC NHẬN KHI NHẬP DANH SÁCH KHEN THƯỞNG",
            frame,
            [Col("seq", txt("seq"), 5, "int"), Col("row", "Dòng trong tệp", 8, "int"),
             Col("school_year", "Năm học", 11), Col("full_name", txt("full_name"), 24),
             Col("birth_date", txt("birth_date"), 11, "date"),
             Col("unit_code", txt("unit_code"), 10),
             Col("person_id", PERSON_HEADER, 10, "int"), Col("label", "Cách đối chiếu", 44),
             Col("candidates", "Mã người có thể trùng", 16),
             Col("same_as", CONFIRM_HEADER, 14, "int")],
            subtitle=f"Tệp đã nhập: {imported}", totals_label=None, signature=False,
            notes=["Kiểm tra bằng lệnh tdkt history “Họ tên, ngày sinh”; nếu là cùng một người, "
                   f"ghi mã người đó vào cột “{CONFIRM_HEADER}” rồi chạy tdkt confirm <tệp này>."
                   " Nhầm thì bỏ bằng tdkt unconfirm MÃ MÃ."])
    return path
