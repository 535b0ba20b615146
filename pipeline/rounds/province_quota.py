"""The Sở's allocation of the province's commendations (optional data, the phan-bo form): a
number per commune office and per khối or cụm of the province, for each form of commendation.

The khối part goes to the Sở's own schools, decided by the school round exactly as a Phòng's
allocation is; the office part caps the proposals each office's report carries that the Sở's
re-check leaves standing: beyond the number, in the documented priority (rule quota.priority),
a proposal is over quota, the office is told, and the Sở's lists say so. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.cells import cell_address
from pipeline.findings import Finding
from pipeline.forms.definitions import FormSet, Vocabulary
from pipeline.ingest.submission import Submission
from pipeline.rounds.commune_reports import COLLECTIVES, OFFICE, STAFF, Reports
from pipeline.rounds.results import QUOTA_COLUMNS, VIABLE, quota_priority, read_allocation
from pipeline.rules import eligibility as el
from pipeline.rules.quota import within_quota
from pipeline.rules.ruleset import RuleSet
from pipeline.text import fold

ALLOCATION_RULE = "quota.allocation"


@dataclass(frozen=True)
class ProvinceAllocation:
    """The Sở's allocation, split by who it caps."""

    offices: Mapping[tuple[str, str], int]  # (office code, commendation code) → number
    blocks: Mapping[tuple[str, str], int]  # (khối name as the direct units hold it, code)
    findings: tuple[Finding, ...] = ()


def _blocks(units: pd.DataFrame) -> dict[str, str]:
    """The province's khối/cụm the direct units are in: name → code ("" when none)."""
    if "block" not in units:
        return {}
    codes = units["block_code"] if "block_code" in units else pd.Series("", index=units.index)
    return {name: code if isinstance(code, str) else ""
            for name, code in sorted(zip(units["block"], codes, strict=True),
                                     key=lambda p: str(p[0]))
            if isinstance(name, str) and name}


def _scopes(offices: pd.DataFrame, units: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """Folded office code, office name or commune → ("office", code); folded khối code or
    name → ("block", the khối's name as the direct units hold it)."""
    scopes: dict[str, tuple[str, str]] = {}
    for name, code in _blocks(units).items():
        scopes[fold(name)] = ("block", name)
        if code:
            scopes[fold(code)] = ("block", name)
    for code, row in offices.iterrows():
        for name in (code, row.get("unit_name"), row.get("commune")):
            if isinstance(name, str) and name:
                scopes[fold(name)] = ("office", str(code))
    return scopes


def province_allocation(path: Path | None, forms: FormSet, offices: pd.DataFrame,
                        units: pd.DataFrame) -> ProvinceAllocation:
    """The allocation workbook the Sở's configuration names, each row tied to an office (its
    code, name or commune) or to a khối/cụm of the province (its code or name); a row naming
    neither is a finding and caps nothing. AllocationError when the workbook cannot be used."""
    rows, sub, findings = read_allocation(path, forms)
    scopes = _scopes(offices, units)
    by_office: dict[tuple[str, str], int] = {}
    by_block: dict[tuple[str, str], int] = {}
    for row in rows.itertuples():
        scope = scopes.get(fold(str(row.block)))
        if scope is None:
            findings.append(_unknown_scope(sub, int(row.Index), str(row.block), offices,
                                           units))
            continue
        target = by_office if scope[0] == "office" else by_block
        target[(scope[1], row.commendation)] = int(row.limit)
    return ProvinceAllocation(by_office, by_block, tuple(findings))


def _unknown_scope(sub: Submission | None, row: int, value: str, offices: pd.DataFrame,
                   units: pd.DataFrame) -> Finding:
    assert sub is not None  # rows come from a workbook
    table = sub.tables["allocation"]
    examples = f"mã Phòng như {', '.join(offices.index[:2])}; khối, cụm: " \
        + ", ".join(_blocks(units))
    return Finding.make("allocation-unknown-scope", sub.file, sheet=table.raw.name,
                        cell=cell_address(row - 1, table.columns.get("block", 0)),
                        value=value, expected=examples)


def _candidates(standing: pd.DataFrame, reported: Reports) -> pd.DataFrame:
    """The standing proposals with the report columns the priority reads (persons from the
    staff table, collectives from theirs; the school's area is not in a report)."""
    parts = []
    for subject, table in (("person", reported.staff), ("collective", reported.collectives)):
        mine = standing[standing["subject"] == subject]
        if mine.empty:
            continue
        extra = table.drop(columns=[c for c in ("unit_code", "file") if c in table])
        parts.append(mine.merge(extra, on=[OFFICE, "row"], how="left",
                                suffixes=("", "_report")))
    candidates = pd.concat(parts, ignore_index=True)
    candidates["full_name"] = candidates["name"]
    return candidates


def over_allocation(verdicts: pd.DataFrame, reported: Reports,
                    limits: Mapping[tuple[str, str], int],
                    rules: RuleSet) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The re-check's verdicts with each proposal beyond its office's number marked over quota
    (its reason: its place in the priority), and the table of every office's number
    (QUOTA_COLUMNS; kind "office")."""
    if not limits or verdicts.empty:
        return verdicts, pd.DataFrame(columns=QUOTA_COLUMNS)
    rule = rules.rule(ALLOCATION_RULE)
    keys = quota_priority(rules)
    out = verdicts.copy()
    rows = []
    for code in sorted({c for _, c in limits}):
        mine = {office: n for (office, c), n in limits.items() if c == code}
        proposed = out[(out["kind"] == "commendation") & (out["proposal"] == code)]
        standing = proposed[proposed["result"].isin(VIABLE) & proposed[OFFICE].isin(mine)]
        beyond = pd.DataFrame(columns=[OFFICE, "row", "subject"])
        if not standing.empty:
            candidates = _candidates(standing, reported)
            for key in keys:  # a column a report does not carry sorts last
                if key.column not in candidates:
                    candidates[key.column] = None
            marked = within_quota(candidates, mine, keys, group=OFFICE,
                                  quota_label="phân bổ cho Phòng")
            beyond = marked[~marked["within_quota"]]
            for b in beyond.itertuples(index=False):
                hit = (out[OFFICE] == getattr(b, OFFICE)) & (out["row"] == b.row) & \
                    (out["subject"] == b.subject) & (out["kind"] == "commendation") & \
                    (out["proposal"] == code)
                out.loc[hit, "result"] = el.OVER
                out.loc[hit, "reasons"] = f"{b.quota_reason} ({rule.citation})."
        for office, limit in sorted(mine.items()):
            rows.append({
                "scope": office, "kind": "office", "code": code, "base": None, "limit": limit,
                "proposed": int(((proposed[OFFICE] == office)
                                 & (proposed["result"] != el.FAIL)).sum()),
                "beyond": int((beyond[OFFICE] == office).sum()), "rule_id": rule.id})
    return out, pd.DataFrame(rows, columns=QUOTA_COLUMNS)


def allocation_findings(chosen: Mapping[str, Submission], verdicts: pd.DataFrame,
                        vocabs: Mapping[str, Vocabulary]) -> list[Finding]:
    """A proposal beyond its office's number: on the report's row, with its place in the
    priority."""
    found = []
    for v in verdicts[verdicts["result"] == el.OVER].itertuples(index=False):
        sub = chosen[getattr(v, OFFICE)]
        table = sub.tables[STAFF if v.subject == "person" else COLLECTIVES]
        column = "full_name" if v.subject == "person" else "collective_name"
        label = vocabs[el.PROPOSAL_COLUMNS[v.subject][v.kind]].label_of(v.proposal)
        found.append(Finding.make(
            "report-over-allocation", sub.file, sheet=table.raw.name,
            cell=cell_address(int(v.row) - 1, table.columns.get(column, 0)),
            unit=sub.unit_code, value=f"{v.name}: {label}", expected=str(v.reasons)))
    return found
