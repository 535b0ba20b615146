"""The reports communes' offices send the Sở, read as data and checked: one frame per table of
the report form (each row with the office that reported it), and the findings the Sở's round
adds to what the reader found — a report of another school year or round, totals that do not
add up to the lists, a unit reported by two offices, a unit the Sở manages itself reported by
an office. Pure functions of the chosen reports; nothing is written."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from pipeline.cells import cell_address
from pipeline.findings import Finding
from pipeline.forms.definitions import FormSet, Vocabulary
from pipeline.ingest.submission import Submission
from pipeline.rules.ruleset import RuleSet
from pipeline.text import fold

# The report form's tables (schemas/forms/bao-cao-*/): the counts per list, the units, the
# persons and the collectives.
LISTS, UNITS, STAFF, COLLECTIVES = "lists", "units", "staff", "collectives"
OFFICE = "office_code"
# Which vocabulary a list's label belongs to, and the column of a person or collective that
# holds it.
_KINDS = (("individual_titles", STAFF, "title"), ("commendations", STAFF, "commendation"),
          ("collective_titles", COLLECTIVES, "collective_title"),
          ("commendations", COLLECTIVES, "commendation"))


@dataclass(frozen=True)
class Reports:
    """Every chosen report's tables stacked, each row with its office code, file and row."""

    lists: pd.DataFrame
    units: pd.DataFrame
    staff: pd.DataFrame
    collectives: pd.DataFrame


def report_tables(chosen: Mapping[str, Submission]) -> Reports:
    """The counted rows of each table of every chosen report (office code order)."""
    tables = []
    for sheet_id in (LISTS, UNITS, STAFF, COLLECTIVES):
        frames = []
        for office, sub in sorted(chosen.items()):
            rows = sub.counted_rows(sheet_id) if sheet_id in sub.frames else pd.DataFrame()
            if not rows.empty:
                frames.append(rows.reset_index().assign(**{OFFICE: office, "file": sub.file}))
        tables.append(pd.concat(frames, ignore_index=True) if frames
                      else pd.DataFrame(columns=[OFFICE, "file", "row"]))
    return Reports(*tables)


def identity_findings(sub: Submission, school_year: str, phase: str) -> list[Finding]:
    """A report declaring another school year or another round in its hidden id."""
    meta = (sub.raw.meta if sub.raw else None) or {}
    found = []
    declared = meta.get("school_year", "")
    if declared and declared != school_year:
        found.append(Finding.make("report-wrong-year", sub.file, unit=sub.unit_code,
                                  value=declared, expected=school_year))
    round_ = meta.get("round", "")
    if round_ and round_ != phase:
        found.append(Finding.make("report-wrong-round", sub.file, unit=sub.unit_code,
                                  value=round_, expected=phase))
    return found


def _where(sub: Submission, sheet_id: str, column_id: str, row: int) -> tuple[str, str]:
    """The sheet name and cell of a table's column on an Excel row of the report."""
    table = sub.tables[sheet_id]
    return table.raw.name, cell_address(row - 1, table.columns.get(column_id, 0))


def _code_of(label: object, forms: FormSet) -> list[tuple[str, str, str]]:
    """(table, column, code) a list's label names, in every vocabulary that has it."""
    key = fold(str(label))
    out = []
    for vocab, table, column in _KINDS:
        for value in forms.vocabs[vocab].values:
            if fold(value.label) == key or fold(value.code) == key:
                out.append((table, column, value.code))
    return out


def totals_findings(chosen: Mapping[str, Submission], reports: Reports,
                    forms: FormSet) -> list[Finding]:
    """A list's count of persons or collectives that differs from the rows the report lists
    for that title or form."""
    found = []
    # How many rows each office lists for each value of each proposal column, per table.
    tally = {kind: {col: getattr(reports, kind).groupby([OFFICE, col]).size().to_dict()
                    for _, table, col in _KINDS
                    if table == kind and col in getattr(reports, kind)}
             for kind in (STAFF, COLLECTIVES)}
    for row in reports.lists.itertuples(index=False):
        office = getattr(row, OFFICE)
        sub = chosen[office]
        named = _code_of(row.list, forms)
        if not named:
            continue
        for kind, column in ((STAFF, "persons"), (COLLECTIVES, "collectives")):
            listed = sum(tally[kind][col].get((office, code), 0) for table, col, code in named
                         if table == kind and col in tally[kind])
            typed = getattr(row, column)
            if pd.notna(typed) and int(typed) != listed:
                sheet, cell = _where(sub, LISTS, column, int(row.row))
                found.append(Finding.make(
                    "report-totals-differ", sub.file, sheet=sheet, cell=cell,
                    column=sub.tables[LISTS].sheet.column(column).header, unit=sub.unit_code,
                    value=str(int(typed)), expected=str(listed)))
    return found


def unit_findings(chosen: Mapping[str, Submission], reports: Reports, direct: frozenset[str],
                  forms: FormSet) -> list[Finding]:
    """A unit in the reports of two offices (on each), and a unit the Sở manages itself — a
    direct unit's code, or a cấp học the province manages — in an office's report."""
    units = reports.units
    if units.empty:
        return []
    found = []
    levels = forms.vocabs["levels"]
    offices = units.groupby("unit_code")[OFFICE].unique()
    for row in units.itertuples(index=False):
        sub = chosen[getattr(row, OFFICE)]
        others = [o for o in offices[row.unit_code] if o != getattr(row, OFFICE)]
        if others:
            sheet, cell = _where(sub, UNITS, "unit_code", int(row.row))
            found.append(Finding.make("unit-in-two-reports", sub.file, sheet=sheet, cell=cell,
                                      unit=sub.unit_code, value=row.unit_code,
                                      expected=", ".join(sorted(others))))
        level = row.level if isinstance(row.level, str) and row.level in levels.codes else None
        managed = level is not None and levels.by_code(level).attrs.get("manager") == "province"
        if row.unit_code in direct or managed:
            column = "unit_code" if row.unit_code in direct else "level"
            sheet, cell = _where(sub, UNITS, column, int(row.row))
            found.append(Finding.make(
                "province-unit-in-report", sub.file, sheet=sheet, cell=cell,
                unit=sub.unit_code, value=f"{row.unit_code} {row.unit_name}",
                expected=levels.by_code(level).attrs.get("name", level) if managed
                else "đơn vị trực thuộc Sở"))
    return found


def rechecked(reports: Reports, rules: RuleSet, vocabs: Mapping[str, Vocabulary]
              ) -> pd.DataFrame:
    """The Sở's own decision on every proposal the offices passed, from the data their reports
    carry, with the rules in force for the province's forms: one verdict per person or
    collective and title or form (columns of eligibility.verdicts, and the office code).

    Registration rules are not applied (the report carries no registration: the office
    compared them), and the rules on earlier years' records are left to check (the Sở reads
    the office's `history` line). A report carries no scores to rank a khối by: a collective
    the office passed for a title that goes to its khối's leader (Cờ thi đua) is taken as
    that leader."""
    from dataclasses import replace

    from pipeline.rounds.results import with_months
    from pipeline.rules import eligibility as el

    rules = replace(rules, rules={rid: rule for rid, rule in rules.rules.items()
                                  if not (rule.require and "registered" in rule.require)})
    names = {r.id: r.name for r in rules.rules.values()}
    out = []
    for subject, frame in (("person", reports.staff), ("collective", reports.collectives)):
        if frame.empty or "unit_code" not in frame:
            continue
        rows = with_months(frame, rules) if subject == "person" else frame.assign(leader=True)
        for office, mine in rows.groupby(OFFICE, sort=True):  # rows are per report
            found = el.verdicts(el.decisions(mine, subject, rules, vocabs), names)
            out.append(found.assign(**{OFFICE: office}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(
        columns=["unit_code", "subject", "row", "name", "kind", "proposal", "result", "rules",
                 "reasons", OFFICE])


def recheck_findings(chosen: Mapping[str, Submission], verdicts: pd.DataFrame,
                     vocabs: Mapping[str, Vocabulary]) -> list[Finding]:
    """A proposal an office passed that the Sở's rules, read on its own report's data, do not:
    on the report's row, with why."""
    from pipeline.rules import eligibility as el

    found = []
    for v in verdicts[verdicts["result"] == el.FAIL].itertuples(index=False):
        sub = chosen[getattr(v, OFFICE)]
        table = STAFF if v.subject == "person" else COLLECTIVES
        column = "full_name" if v.subject == "person" else "collective_name"
        sheet, cell = _where(sub, table, column, int(v.row))
        label = vocabs[el.PROPOSAL_COLUMNS[v.subject][v.kind]].label_of(v.proposal)
        found.append(Finding.make("report-proposal-fails", sub.file, sheet=sheet, cell=cell,
                                  unit=sub.unit_code, value=f"{v.name}: {label}",
                                  expected=str(v.reasons)))
    return found
