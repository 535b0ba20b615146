"""Totals of a registration round: by unit, by cấp học and by khối thi đua."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from pipeline.findings import Finding, Severity
from pipeline.forms.definitions import Vocabulary
from pipeline.ingest.frames import stacked
from pipeline.ingest.submission import Registry, Submission
from pipeline.rules.ruleset import RuleSet, quota_limit
from pipeline.status import UnitStatus
from pipeline.text import name_sort_key

STAFF_SHEET = "staff"
UNIT_SHEET = "unit"
NOT_REGISTERED = "khong_dang_ky"


# Columns summed from units into cấp học, khối and grand totals.
COUNT_COLUMNS = ["expected", "submitted", "valid", "with_errors", "invalid", "missing",
                 "staff_registry", "staff_listed", "registered", "non_leader_registered",
                 "cstd_quota", "cstd_counted"]


# Per-unit count columns whose names carry a code: summed like COUNT_COLUMNS.
COUNTED_PREFIXES = ("title:", "collective:", "proposed:", "check:")


def unit_status(sub: Submission | None) -> UnitStatus:
    """Valid, with errors, invalid or missing, from the unit's chosen submission."""
    if sub is None:
        return UnitStatus.MISSING
    if not sub.counted or any(sub.sheet_rejected(s.id) for s in sub.form.sheets):
        return UnitStatus.INVALID
    if any(f.severity is Severity.ERROR for f in sub.findings):
        return UnitStatus.WITH_ERRORS
    return UnitStatus.VALID


def unit_frame(registry: Registry, chosen: Mapping[str, Submission],
               submitted: Iterable[str]) -> pd.DataFrame:
    """One row per registry unit: its status code, chosen file, whether it is expected and
    submitted, one 0/1 column per status, and the headcount the registry gives."""
    units = registry.units.copy()
    units["status"] = [unit_status(chosen.get(c)) for c in units.index]
    units["file"] = [chosen[c].file if c in chosen else "" for c in units.index]
    units["expected"] = 1
    units["submitted"] = units.index.isin(sorted(submitted)).astype(int)
    for status, column in ((UnitStatus.VALID, "valid"), (UnitStatus.WITH_ERRORS, "with_errors"),
                           (UnitStatus.INVALID, "invalid"), (UnitStatus.MISSING, "missing")):
        units[column] = (units["status"] == status).astype(int)
    units["staff_registry"] = units[["managers", "teachers", "support_staff"]].fillna(0).sum(
        axis=1).astype(int)
    return units


def sheet_rows(chosen: dict[str, Submission], sheet_id: str,
               columns: list[str]) -> pd.DataFrame:
    """Every counted row of one sheet of every unit, with its unit code, file and Excel row;
    the given columns first (present even when no file has them), then any others."""
    tables, codes, files = [], [], []
    for code, sub in sorted(chosen.items()):
        rows = sub.counted_parts(sheet_id)
        if rows is not None and len(rows) and rows.columns:
            tables.append(rows)
            codes += [code] * len(rows)
            files += [sub.file] * len(rows)
    head = ["unit_code", "file", "row", *columns]
    if not tables:
        return pd.DataFrame(columns=head)
    # One stacking of a province's worth of files' arrays (no per-file frame operations).
    joined = stacked(tables).reset_index()
    joined["unit_code"], joined["file"] = codes, files
    return joined.reindex(columns=list(dict.fromkeys([*head, *joined.columns])))


def staff_rows(chosen: dict[str, Submission]) -> pd.DataFrame:
    """Every counted staff row of every unit."""
    return sheet_rows(chosen, STAFF_SHEET, ["full_name", "birth_date", "sex", "position",
                                            "staff_group", "title", "commendation",
                                            "initiative"])


def collective_rows(chosen: dict[str, Submission]) -> pd.DataFrame:
    """Every counted collective row (the unit and its groups)."""
    return sheet_rows(chosen, UNIT_SHEET, ["collective_name", "collective_kind", "members",
                                           "collective_title", "commendation"])


def _positions(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Each value's position in `index` (-1 for a value it lacks, or a missing one)."""
    return index.get_indexer(values)


def _counts(at: np.ndarray | None, values: pd.Series | None, codes: list[str],
            units: int) -> np.ndarray:
    """How many rows of each unit (by position `at`) hold each code (units × codes): what
    pd.crosstab counts (rows with a unit or a code missing, or not listed, left out)."""
    if at is None or values is None:
        return np.zeros((units, len(codes)), dtype=np.int64)
    code_at = pd.Index(codes).get_indexer(values)
    kept = (at >= 0) & (code_at >= 0)
    cells = np.bincount(at[kept] * len(codes) + code_at[kept], minlength=units * len(codes))
    return cells.reshape(units, len(codes)).astype(np.int64)


def unit_table(registry: Registry, chosen: Mapping[str, Submission], submitted: Iterable[str],
               staff: pd.DataFrame, collectives: pd.DataFrame,
               vocabs: dict[str, Vocabulary], rules: RuleSet) -> pd.DataFrame:
    """One row per registry unit: status, headcounts, registrations by title, quota."""
    units = unit_frame(registry, chosen, submitted)
    index = units.index
    # Each row's unit as a position in the table, once (a province's staff: 226,000 rows).
    at = _positions(staff["unit_code"], index) if not staff.empty else None
    units["staff_listed"] = _per_unit(at, index) if at is not None else 0
    registered = staff["title"].to_numpy() != NOT_REGISTERED if at is not None else None
    units["registered"] = _per_unit(at, index, registered)
    # Leadership posts are marked in the positions vocabulary (`leader: true`); Tổ trưởng,
    # Tổ phó chuyên môn are not leaders for this share (glossary.md).
    leaders = {v.code for v in vocabs["positions"].values if v.attrs.get("leader")}
    units["non_leader_registered"] = _per_unit(
        at, index,
        registered & ~staff["position"].isin(leaders).to_numpy() if at is not None else None)
    codes = vocabs["individual_titles"].codes
    titles = _counts(at, staff["title"] if at is not None else None, codes, len(index))
    for j, code in enumerate(codes):
        units[f"title:{code}"] = titles[:, j]
    codes = vocabs["collective_titles"].codes
    collective_at = _positions(collectives["unit_code"], index) \
        if not collectives.empty else None
    ctitles = _counts(collective_at, collectives["collective_title"]
                      if collective_at is not None else None, codes, len(index))
    for j, code in enumerate(codes):
        units[f"collective:{code}"] = ctitles[:, j]
    quota = rules.rule("cstd_co_so.quota")
    base = sum(units[f"title:{t}"] for t in quota.params["base_titles"])
    units["cstd_counted"] = sum(units[f"title:{t}"] for t in quota.params["counted_titles"])
    # No layer setting a share: no cap (the column stays empty, nothing is exceeded).
    limits = [quota_limit(int(b), quota) for b in base]
    units["cstd_quota"] = pd.array(limits, dtype="Int64")
    units["cstd_base"] = base
    units["quota_exceeded"] = (units["cstd_counted"] > units["cstd_quota"]).fillna(False) \
        .astype(bool)
    return _with_shares(units)


def _per_unit(at: np.ndarray | None, index: pd.Index, rows: np.ndarray | None = None
              ) -> pd.Series:
    """How many rows (those where `rows` is True, when given) each unit has, the rows' units
    given as positions in `index` (`at`; None: no rows)."""
    if at is None:
        return pd.Series(0, index=index)
    kept = at >= 0 if rows is None else (at >= 0) & rows
    return pd.Series(np.bincount(at[kept], minlength=len(index)).astype(np.int64), index=index)


def _with_shares(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    staff = table["staff_registry"].where(table["staff_registry"] > 0)
    table["registration_share"] = (table["registered"] / staff).fillna(0.0)
    regs = table["registered"].where(table["registered"] > 0)
    table["non_leader_share"] = (table["non_leader_registered"] / regs).fillna(0.0)
    return table


def totals_by(units: pd.DataFrame, key: str, levels: list[str]) -> pd.DataFrame:
    """The unit table summed by cấp học or khối, shares recomputed from the sums.

    Cấp học come in the vocabulary's order `levels`; khối by their first cấp học, then name.
    """
    summed = [c for c in units.columns if c in COUNT_COLUMNS or c.startswith(COUNTED_PREFIXES)]
    table = units.groupby(key, sort=True)[summed].sum()
    if key == "block":
        block_levels = units.groupby("block")["level"].agg(
            lambda s: sorted(set(s), key=lambda v: _rank(v, levels)))
        table.insert(0, "level", block_levels.map(", ".join))
        ranked = sorted(table.index, key=lambda b: (_rank(block_levels[b][0], levels), b))
    else:
        ranked = sorted(table.index, key=lambda v: _rank(v, levels))
    return _with_shares(table.loc[ranked].reset_index())


def _rank(value: str, order: list[str]) -> tuple[int, str]:
    return (order.index(value) if value in order else len(order), str(value))


def quota_findings(units: pd.DataFrame, chosen: dict[str, Submission], rules: RuleSet,
                   vocabs: dict[str, Vocabulary]) -> list[Finding]:
    """A warning for every unit whose CSTĐCS registrations exceed the share of LĐTT."""
    quota = rules.rule("cstd_co_so.quota")
    titles = vocabs["individual_titles"]
    counted_label = ", ".join(titles.by_code(t).abbr for t in quota.params["counted_titles"])
    findings = []
    for code, row in units[units["quota_exceeded"]].iterrows():
        sub = chosen[code]
        table = sub.tables.get(STAFF_SHEET)
        findings.append(Finding.make(
            quota.finding or "quota-exceeded", sub.file, unit=code,
            sheet=table.raw.name if table else None,
            value=f"{row['cstd_counted']} {counted_label} trên {row['cstd_base']} người đăng ký "
                  f"{titles.by_code(quota.params['base_titles'][0]).abbr} trở lên",
            expected=f"{row['cstd_quota']} ({quota.params['share']:.0%}, làm tròn "
                     f"{_ROUNDING_LABELS[quota.params.get('rounding', 'floor')]}; {quota.basis})"))
    return findings


_ROUNDING_LABELS = {"floor": "xuống", "ceil": "lên", "nearest": "đến số gần nhất"}


def sorted_people(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """People in Vietnamese list order inside each group: given name, then the rest."""
    if frame.empty:
        return frame
    groups = list(zip(*(frame[c].astype(str).tolist() for c in by), strict=True)) if by \
        else [()] * len(frame)
    names = [str(name) for name in frame["full_name"].tolist()]
    # Each distinct name's key once (a province's list outgrows the function's cache).
    name_key = {name: name_sort_key(name) for name in dict.fromkeys(names)}
    keys = [(group, name_key[name]) for group, name in zip(groups, names, strict=True)]
    order = sorted(range(len(frame)), key=keys.__getitem__)
    return frame.iloc[order].reset_index(drop=True)
