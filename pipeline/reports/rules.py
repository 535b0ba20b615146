"""The rules in force as a workbook (`tdkt rules --out`): the rules, and the changes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.config import Office
from pipeline.reports.workbook import Col, Letterhead, ReportBook
from pipeline.rules.listing import LISTING_COLUMNS, changes, listing
from pipeline.rules.ruleset import RuleSet


def write_rules_workbook(path: Path, office: Office, rules: RuleSet,
                         before: RuleSet | None) -> Path:
    """Sheet "Quy tắc" (every rule in force) and, given the previous year's, "Thay đổi"."""
    title = f"QUY TẮC XÉT THI ĐUA, KHEN THƯỞNG NĂM HỌC {rules.school_year}"
    rows = pd.DataFrame(listing(rules), columns=LISTING_COLUMNS)
    rows.insert(0, "seq", range(1, len(rows) + 1))
    with ReportBook(path, Letterhead.of(office), title) as book:
        book.table_sheet(
            "Quy tắc", title, rows,
            [Col("seq", "STT", 5, "int"), Col("id", "Mã quy tắc", 26),
             Col("description", "Yêu cầu", 50), Col("numbers", "Số liệu", 22),
             Col("layer", "Cấp quy định", 16), Col("citation", "Căn cứ", 40),
             Col("status", "Mức xác minh", 20), Col("window", "Hiệu lực", 16),
             Col("changes", "Tầng dưới thay đổi", 36)],
            subtitle=f"Quy định có hiệu lực ngày {rules.date:%d/%m/%Y}; {rules.province}.",
            totals_label=None)
        if before is not None:
            diff = pd.DataFrame(changes(before, rules),
                                columns=["id", "change", "before", "after"])
            diff.insert(0, "seq", range(1, len(diff) + 1))
            book.table_sheet(
                "Thay đổi", f"THAY ĐỔI SO VỚI NĂM HỌC {before.school_year}", diff,
                [Col("seq", "STT", 5, "int"), Col("id", "Mã quy tắc", 26),
                 Col("change", "Thay đổi", 24), Col("before", before.school_year, 44),
                 Col("after", rules.school_year, 44)],
                totals_label=None)
    return path
