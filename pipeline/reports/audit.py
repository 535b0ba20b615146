"""The rule-by-rule audit of the year-end round, a working file of its own: one row per
(proposal, rule) decision. It is thousands of rows long, so it stays out of the Phòng workbook
that is printed and out of the mail to the Sở."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline.reports.workbook import Col, Letterhead, ReportBook, txt
from pipeline.rounds.base import RoundResult
from pipeline.rules import eligibility as el
from pipeline.rules.ruleset import STATUS_LABELS

AUDIT_FILE = "doi-chieu-quy-tac.xlsx"
AUDIT_SHEET = "Quyết định theo quy tắc"


def rule_names(result: RoundResult, ids: object) -> str:
    """The Vietnamese names of comma-separated rule ids ("" for none)."""
    if not isinstance(ids, str):
        return ""
    rules = result.rules.rules
    return ", ".join(rules[r].name if r in rules else txt("no_rule")
                     for r in (x.strip() for x in ids.split(",")) if r)


def write_audit_workbook(result: RoundResult, path: Path,
                         label: Callable[[str, str], str]) -> Path:
    """Every decision of every rule over every proposal, by unit, person and rule; `label`
    names a proposal (kind, code)."""
    rules = result.rules.rules
    decisions = result.decisions
    frame = decisions.assign(
        result_label=decisions["result"].map(el.RESULT_LABELS),
        status_label=decisions["status"].map(STATUS_LABELS),
        layer_label=decisions["rule_id"].map(
            lambda r: rules[r].layer_label if r in rules else ""),
        rule_name=decisions["rule_id"].map(lambda r: rule_names(result, r)),
        proposal_label=[label(k, p) for k, p in
                        zip(decisions["kind"], decisions["proposal"], strict=True)])
    frame = frame.merge(result.units[["unit_name"]], left_on="unit_code", right_index=True,
                        how="left")
    frame = frame.sort_values(["unit_code", "subject", "row", "kind", "rule_id"])
    frame = frame.reset_index(drop=True)
    frame.insert(0, "seq", range(1, len(frame) + 1))
    year = result.school_year
    with ReportBook(path, Letterhead.of(result.office, result.run_date),
                    f"Đối chiếu quy tắc năm học {year}", big=True) as book:
        book.table_sheet(
            AUDIT_SHEET, f"CÁC QUYẾT ĐỊNH THEO TỪNG QUY TẮC NĂM HỌC {year}", frame,
            [Col("seq", txt("seq"), 6, "int"), Col("unit_name", txt("unit"), 26),
             Col("name", txt("name"), 22), Col("proposal_label", txt("proposal"), 26),
             Col("rule_name", txt("rule_name"), 30), Col("result_label", txt("result"), 14),
             Col("layer_label", "Cấp quy định", 14, printed=False),
             Col("status_label", txt("verification"), 22, printed=False),
             Col("unit_code", txt("unit_code"), 9, printed=False),
             Col("citation", txt("basis"), 60, printed=False),
             Col("rule_id", txt("rule_id"), 24, printed=False)],
            subtitle=txt("as_of", year=year, date=f"{result.run_date:%d/%m/%Y}"),
            totals_label=None, signature=False, max_lines=1)
    return path
