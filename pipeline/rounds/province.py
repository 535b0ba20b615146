"""The Sở's rounds (tinh-dang-ky, tinh-ket-qua): one province consolidated from the reports the
communes' offices send and the files of the schools the Sở manages itself.

The inbox holds both kinds of file; each is identified by its hidden id, then its headers. The
schools are decided exactly as a Phòng decides its schools: the school round of the same phase
runs on them, with the Sở's registry of direct units. The reports are read as submissions of
their own form, each tied to its office by the registry's office codes, so that the newest
report of an office wins and an older one is superseded as a school's file is.

Reading the reports' tables into the province's totals and the council's lists builds on
this round (issue 15); today it decides the direct schools and checks each report's identity.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import settings
from pipeline.config import Config
from pipeline.findings import Finding, Severity, sorted_findings
from pipeline.forms.definitions import FormSet
from pipeline.ingest.province_registry import load_province_registry
from pipeline.ingest.registry import RegistryError
from pipeline.ingest.submission import Registry, Submission
from pipeline.rounds.base import CheckedInbox, RoundInputs, RoundResult, register, round_named
from pipeline.rounds.commune_reports import (
    Reports,
    identity_findings,
    recheck_findings,
    rechecked,
    report_tables,
    totals_findings,
    unit_findings,
)
from pipeline.rounds.province_quota import (
    ProvinceAllocation,
    allocation_findings,
    over_allocation,
    province_allocation,
)
from pipeline.rules.aggregate import unit_status
from pipeline.status import UnitStatus, label

# The report a commune's office sends the Sở, per phase (the school round of the same name).
REPORT_FORMS = {"dang-ky": "bao-cao-dang-ky", "ket-qua": "bao-cao-ket-qua"}
PREFIX = "tinh-"
# Registry rows that are offices (their reports) rather than direct units (their files).
KIND, OFFICE, UNIT = "entity", "office", "unit"


@dataclass(frozen=True, kw_only=True)
class ProvinceResult(RoundResult):
    """What the Sở's round decided: the direct schools as a Phòng's round decides them, and the
    offices with the report chosen for each."""

    direct: RoundResult
    offices: pd.DataFrame  # index office code: office_name, commune, email, status, file
    reports: tuple[Submission, ...]
    reported: Reports  # the tables of the reports counted (right year and round)
    # The Sở's own verdict on each proposal of the reports (results round; empty otherwise),
    # over quota beyond the office's number of the Sở's allocation.
    rechecked: pd.DataFrame
    # Each office's number of each commendation the Sở allocated (results.QUOTA_COLUMNS).
    office_quotas: pd.DataFrame
    # File name → when the input archive first saw its content (`tdkt run` archives the inbox
    # before consolidating); a file not archived arrives on the run date.
    arrivals: Mapping[str, dt.datetime]


def province_round_name(phase: str) -> str:
    """"tinh-ket-qua" for the phase "ket-qua"."""
    return f"{PREFIX}{phase}"


def round_for(config: Config, name: str) -> str:
    """The round a configuration runs for a phase or round name: a Sở's configuration runs
    the Sở's round of the phase ("dang-ky" → "tinh-dang-ky"), any other the round named."""
    return province_round_name(name) if name in REPORT_FORMS and config.is_province else name


def named_office(file: str, offices: Iterable[str]) -> str | None:
    """The one office code the file's name holds as a word ("bao-cao_X008.xlsx" → "X008"),
    or None when it names none or several."""
    words = {w.casefold() for w in re.split(r"[^0-9A-Za-z]+", Path(file).stem) if w}
    named = [code for code in offices if code.casefold() in words]
    return named[0] if len(named) == 1 else None


def by_file_name(inbox: CheckedInbox, offices: Iterable[str]) -> CheckedInbox:
    """The inbox with each file that could not be read (no form found) and whose name names
    one office tied to that office: its findings then reach the office's feedback, and the
    office shows that it sent something unusable rather than nothing."""
    codes = tuple(offices)
    subs = []
    for sub in inbox.submissions:
        code = named_office(sub.file, codes) if sub.form is None and not sub.unit_code \
            else None
        if code is not None:
            sub = replace(sub, unit_code=code,
                          intake=tuple(replace(f, unit=code) for f in sub.intake))
        subs.append(sub)
    return replace(inbox, submissions=tuple(subs))


def split_inbox(inbox: CheckedInbox, report_form: str,
                offices: frozenset[str] = frozenset()) -> tuple[CheckedInbox, CheckedInbox]:
    """The schools' files and the offices' reports (a file tied to an office by its name
    counts as a report), each with its chosen submissions."""

    def is_report(sub: Submission) -> bool:
        if sub.form is None:
            return sub.unit_code in offices
        return sub.form.form == report_form

    parts = []
    for wanted in (False, True):
        parts.append(CheckedInbox(
            submissions=tuple(s for s in inbox.submissions if is_report(s) is wanted),
            chosen={c: s for c, s in inbox.chosen.items() if is_report(s) is wanted},
            ignored=inbox.ignored if not wanted else ()))
    return parts[0], parts[1]


def _registry(registry: Registry, kind: str) -> Registry:
    units = registry.units
    return Registry(units=units[units[KIND] == kind].drop(columns=[KIND]))


def _office_table(offices: Registry, reports: CheckedInbox, rejected: frozenset[str],
                  faulty: frozenset[str | None]) -> pd.DataFrame:
    """Per office: its name, commune, e-mail, the status of its report (invalid when it is of
    another school year or round, or when no file it sent could be read; with errors when the
    Sở's checks found one) and the file chosen (else the last it sent)."""
    table = offices.units[["unit_name", "commune", "email"]].rename(
        columns={"unit_name": "office_name"}).copy()
    sent = {s.unit_code: s.file for s in reports.submissions if s.unit_code}
    statuses = []
    for code in table.index:
        chosen = reports.chosen.get(code)
        if code in rejected or (chosen is None and code in sent):
            status = UnitStatus.INVALID
        else:
            status = unit_status(chosen)
        if status is UnitStatus.VALID and code in faulty:
            status = UnitStatus.WITH_ERRORS
        statuses.append(status)
    table["status"] = statuses
    table["file"] = [reports.chosen[c].file if c in reports.chosen else sent.get(c, "")
                     for c in table.index]
    return table


def _report_feedback(result: ProvinceResult, folder: Path) -> list[Callable[[], Path]]:
    """One job per office that sent a report: its feedback workbook, its findings each linked
    to its cell in a copy of the report it corrects and sends again
    (phan-hoi/<office code>.xlsx)."""
    from pipeline.reports.feedback import write_feedback
    from pipeline.reports.workbook import txt

    target = folder / settings.FEEDBACK_DIR
    target.mkdir(exist_ok=True)
    sent = {s.unit_code: s for s in result.reports if s.unit_code}
    by_office: dict[str, list[Finding]] = {}
    for f in result.findings:
        if f.unit in sent:
            by_office.setdefault(f.unit, []).append(f)
    jobs: list[Callable[[], Path]] = []
    for code, office in result.offices.iterrows():
        sub = result.chosen.get(code, sent.get(code))
        if sub is None:
            continue
        title = txt("feedback_title", title=txt("feedback_report"), year=result.school_year,
                    unit=office["office_name"])
        jobs.append(functools.partial(write_feedback, result, by_office.get(code, []), sub,
                                      title, target / f"{code}.xlsx"))
    return jobs


@dataclass(frozen=True)
class ProvinceRound:
    """The Sở's round of one phase: direct schools decided, offices' reports identified."""

    name: str
    phase: str
    label: str

    @property
    def form_id(self) -> str:
        return self.phase

    @property
    def form_ids(self) -> tuple[str, ...]:
        return (self.phase, REPORT_FORMS[self.phase])

    @property
    def folder(self) -> str:
        return f"{self.phase}/{settings.PROVINCE_DIR}"

    def load_registry(self, config: Config, forms: FormSet
                      ) -> tuple[Registry, list[Finding]]:
        """The Sở's registry (danh-muc-so): its direct units and its offices as one registry,
        each row marked as a unit or an office; RegistryError when it cannot be used."""
        province, findings = load_province_registry(config.registry, forms, config.limits)
        if not province.usable:
            raise RegistryError(f"Danh mục của Sở “{config.registry}” không dùng được: "
                                + "; ".join(f.message for f in findings))
        offices = province.offices.rename(columns={"office_name": "unit_name"}).assign(
            **{KIND: OFFICE})
        units = province.units.assign(**{KIND: UNIT})
        both = pd.concat([units, offices]).sort_index()
        return Registry(units=both.rename_axis("unit_code")), findings

    def decide(self, inputs: RoundInputs) -> ProvinceResult:
        """The direct schools decided by the school round of the phase; the offices' reports
        identified, the newest of each office chosen."""
        from pipeline.reports.completeness import first_sightings

        office_codes = frozenset(_registry(inputs.registry, OFFICE).codes)
        inbox = by_file_name(inputs.inbox, sorted(office_codes))
        schools, reports = split_inbox(inbox, REPORT_FORMS[self.phase], office_codes)
        options = dict(inputs.options)
        options.setdefault("registration_round", province_round_name("dang-ky"))
        allocation = ProvinceAllocation({}, {})
        if self.phase == "ket-qua":  # the khối part caps the direct schools
            allocation = province_allocation(
                inputs.config.allocation, inputs.forms,
                _registry(inputs.registry, OFFICE).units, _registry(inputs.registry, UNIT).units)
            options["allocation"] = (dict(allocation.blocks), list(allocation.findings))
        direct = round_named(self.phase).decide(replace(
            inputs, registry=_registry(inputs.registry, UNIT), inbox=schools, options=options,
            registry_findings=()))
        identity = {code: identity_findings(sub, inputs.config.school_year, self.phase)
                    for code, sub in reports.chosen.items()}
        counted = {code: sub for code, sub in reports.chosen.items() if not identity[code]}
        reported = report_tables(counted)
        direct_codes = frozenset(_registry(inputs.registry, UNIT).codes)
        verdicts = rechecked(reported, inputs.rules, inputs.forms.vocabs) \
            if self.phase == "ket-qua" else pd.DataFrame(columns=["result"])
        verdicts, quotas = over_allocation(verdicts, reported, allocation.offices, inputs.rules)
        checks = [*totals_findings(counted, reported, inputs.forms),
                  *unit_findings(counted, reported, direct_codes, inputs.forms),
                  *recheck_findings(counted, verdicts, inputs.forms.vocabs),
                  *allocation_findings(counted, verdicts, inputs.forms.vocabs)]
        offices = _office_table(
            _registry(inputs.registry, OFFICE), reports,
            frozenset(c for c, found in identity.items() if found),
            frozenset(f.unit for f in checks if f.severity is Severity.ERROR))
        findings = sorted_findings([
            *direct.findings, *inputs.registry_findings, *reports.findings,
            *(f for found in identity.values() for f in found), *checks])
        fields = {f: getattr(direct, f) for f in RoundResult.__dataclass_fields__}
        return ProvinceResult(**(fields | {
            "round": self.name, "registry": inputs.registry,
            "submissions": inbox.submissions, "chosen": inputs.inbox.chosen,
            "findings": tuple(findings)}),
            direct=direct, offices=offices, reports=reports.submissions, reported=reported,
            rechecked=verdicts, office_quotas=quotas,
            arrivals=first_sightings(inputs.store, inputs.inbox.submissions)
            if inputs.store is not None else {})

    def write(self, result: RoundResult, folder: Path) -> list[Path]:
        """The Sở's workbook of the province, and the direct schools' workbook and feedback
        as the school round writes them (without a report to the Sở)."""
        assert isinstance(result, ProvinceResult)
        from pipeline.reports import registration, results
        from pipeline.reports.province import PROVINCE_SUMMARY, write_province_summary
        from pipeline.reports.registration import write_all

        if self.phase == "ket-qua":
            schools = results.write_results_reports(result.direct, folder, with_report=False)
            offers = results.passed_offers(result.direct)
        else:
            schools = registration.write_reports(result.direct, folder, with_report=False)
            offers = registration.registered_offers(result.direct)
        summary = functools.partial(write_province_summary, result, offers, self.phase,
                                    folder / PROVINCE_SUMMARY)
        return sorted([*schools, *write_all([summary], _report_feedback(result, folder))])

    def manifest(self, result: RoundResult) -> dict[str, Any]:
        """The school round's additions, and each office's report."""
        assert isinstance(result, ProvinceResult)
        own = round_named(self.phase).manifest(result.direct)
        return own | {"offices": [
            {"office": code, "name": row["office_name"], "status": label(row["status"]),
             "file": row["file"] or None} for code, row in result.offices.iterrows()]}

    def summary(self, result: RoundResult) -> list[str]:
        """The school round's lines, and how many offices reported."""
        assert isinstance(result, ProvinceResult)
        sent = int((result.offices["file"] != "").sum())
        return [*round_named(self.phase).summary(result.direct),
                f"Báo cáo của các Phòng Văn hóa – Xã hội: {sent}/{len(result.offices)}."]


register(ProvinceRound(name=province_round_name("dang-ky"), phase="dang-ky",
                       label="Tổng hợp đăng ký thi đua của Sở"))
register(ProvinceRound(name=province_round_name("ket-qua"), phase="ket-qua",
                       label="Tổng hợp kết quả bình xét của Sở"))
