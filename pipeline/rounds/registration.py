"""Đăng ký thi đua đầu năm: who aims for which title, counted by unit, cấp học and khối."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.findings import Finding, sorted_findings
from pipeline.forms.definitions import FormSet
from pipeline.ingest.submission import Registry
from pipeline.reports.registration import write_reports
from pipeline.rounds.base import RoundInputs, RoundResult, office_registry, register
from pipeline.rules.aggregate import (
    collective_rows,
    quota_findings,
    staff_rows,
    totals_by,
    unit_table,
)

ROUND = "dang-ky"


@dataclass(frozen=True)
class RegistrationRound:
    """The start-of-year registrations: totals and the CSTĐCS share each unit registers."""

    name: str = ROUND
    form_id: str = ROUND
    form_ids: tuple[str, ...] = (ROUND,)
    folder: str = ROUND
    label: str = "Đăng ký thi đua"

    def decide(self, inputs: RoundInputs) -> RoundResult:
        """Staff and collective registrations counted per unit, cấp học and khối."""
        config, forms, rules = inputs.config, inputs.forms, inputs.rules
        chosen = inputs.inbox.chosen
        staff = staff_rows(chosen)
        collectives = collective_rows(chosen)
        units = unit_table(inputs.registry, chosen, inputs.inbox.submitted, staff, collectives,
                           forms.vocabs, rules)
        findings = [*inputs.inbox.findings, *inputs.registry_findings,
                    *quota_findings(units, chosen, rules, forms.vocabs)]
        levels = forms.vocabs["levels"].codes
        return RoundResult(
            school_year=config.school_year, round=self.name, office=config.office_for(),
            province=config.province_office, rules=rules, forms=forms,
            registry=inputs.registry, registry_file=config.registry.name,
            submissions=inputs.inbox.submissions, chosen=chosen, units=units,
            by_level=totals_by(units, "level", levels), by_block=totals_by(units, "block", levels),
            staff=staff, collectives=collectives, findings=tuple(sorted_findings(findings)),
            run_date=inputs.run_date)

    def load_registry(self, config: Config, forms: FormSet
                      ) -> tuple[Registry, list[Finding]]:
        """The office's registry of schools."""
        return office_registry(config, forms)

    def write(self, result: RoundResult, folder: Path) -> list[Path]:
        """The Phòng and Sở workbooks and each school's feedback."""
        return write_reports(result, folder)

    def manifest(self, result: RoundResult) -> dict[str, Any]:
        """Nothing beyond what every round's manifest holds."""
        return {}

    def summary(self, result: RoundResult) -> list[str]:
        """The schools the report to the Sở leaves to the Sở."""
        from pipeline.reports.official import province_managed_note

        return province_managed_note(result)


register(RegistrationRound())
