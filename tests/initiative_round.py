"""A round that exists only in the tests: a school's initiatives put forward for grading.

It is one module plus one form file (tests/files/round-sang-kien/): it registers itself, and
the engine runs it without knowing it, as it runs registration and results.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.findings import sorted_findings
from pipeline.reports.workbook import Col, Letterhead, ReportBook
from pipeline.rounds.base import RoundInputs, RoundResult, office_registry, register
from pipeline.rules.aggregate import sheet_rows, totals_by, unit_frame

NAME = "sang-kien-thu"
FORM = "sang-kien"
WORKBOOK = "sang-kien.xlsx"


@dataclass(frozen=True, kw_only=True)
class InitiativeResult(RoundResult):
    """Every initiative counted, one row each."""

    initiatives: pd.DataFrame


@dataclass(frozen=True)
class InitiativeRound:
    """Initiatives per unit, listed for the grading council."""

    name: str = NAME
    form_id: str = FORM
    form_ids: tuple[str, ...] = (FORM,)
    folder: str = NAME
    label: str = "Sáng kiến đề nghị chấm"

    def load_registry(self, config, forms):
        return office_registry(config, forms)  # the schools of the office, as the others

    def decide(self, inputs: RoundInputs) -> InitiativeResult:
        chosen = inputs.inbox.chosen
        rows = sheet_rows(chosen, "initiatives", ["full_name", "initiative", "subject"])
        units = unit_frame(inputs.registry, chosen, inputs.inbox.submitted)
        units["initiatives"] = rows.groupby("unit_code").size().reindex(
            units.index, fill_value=0) if not rows.empty else 0
        units["registered"] = units["non_leader_registered"] = 0  # the shares totals_by gives
        levels = inputs.forms.vocabs["levels"].codes
        config = inputs.config
        empty = pd.DataFrame(columns=["unit_code", "row", "full_name", "birth_date"])
        return InitiativeResult(
            school_year=config.school_year, round=self.name, office=config.office_for(),
            province=config.province_office, rules=inputs.rules, forms=inputs.forms,
            registry=inputs.registry, registry_file=config.registry.name,
            submissions=inputs.inbox.submissions, chosen=chosen, units=units,
            by_level=totals_by(units, "level", levels), by_block=totals_by(units, "block", levels),
            staff=empty, collectives=pd.DataFrame(columns=["unit_code", "row"]),
            findings=tuple(sorted_findings([*inputs.inbox.findings,
                                            *inputs.registry_findings])),
            run_date=inputs.run_date, initiatives=rows)

    def write(self, result: RoundResult, folder: Path) -> list[Path]:
        path = folder / WORKBOOK
        frame = result.initiatives.merge(result.units[["unit_name"]], left_on="unit_code",
                                         right_index=True, how="left")
        frame["seq"] = range(1, len(frame) + 1)
        with ReportBook(path, Letterhead.of(result.office, result.run_date),
                        "Sáng kiến đề nghị chấm") as book:
            book.table_sheet("Sáng kiến", "DANH SÁCH SÁNG KIẾN ĐỀ NGHỊ CHẤM", frame,
                             [Col("seq", "STT", 5, "int"), Col("full_name", "Họ và tên", 24),
                              Col("initiative", "Tên sáng kiến", 40),
                              Col("unit_name", "Đơn vị", 28)], totals_label=None)
        return [path]

    def manifest(self, result: RoundResult) -> dict[str, Any]:
        return {"initiatives": len(result.initiatives)}

    def summary(self, result: RoundResult) -> list[str]:
        return [f"Sáng kiến: {len(result.initiatives)}."]


ROUND = register(InitiativeRound())
