"""The year-end round: results sheets → eligibility decisions, quotas, rankings per khối."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.config import Config
from pipeline.findings import Finding, has_errors, sorted_findings
from pipeline.forms.definitions import FormSet
from pipeline.ingest.normalize import Context
from pipeline.ingest.read import read_workbook
from pipeline.ingest.submission import Registry, Submission, submission
from pipeline.reports.results import OFFICE_FILE, write_results_reports
from pipeline.reports.workbook import txt
from pipeline.rounds.base import RoundInputs, RoundResult, office_registry, register
from pipeline.rules import eligibility as el
from pipeline.rules.aggregate import sheet_rows, totals_by, unit_frame
from pipeline.rules.quota import priority_keys, within_quota
from pipeline.rules.rank import block_ranking, read_office_scores, tie_breaks, verified_scores
from pipeline.rules.ruleset import RuleSet, quota_limit
from pipeline.status import Verdict, label
from pipeline.store.database import Store
from pipeline.text import fold

ROUND = "ket-qua"
REGISTRATION_ROUND = "dang-ky"
ALLOCATION_FORM = "phan-bo"
RANKING_SHEET = txt("sheet_ranking")  # where the office types its scores
VIABLE = (el.PASS, el.CHECK)
NO_REGISTRATION = "bản đăng ký đầu năm học (chưa có dữ liệu đăng ký để đối chiếu)"
PERSON_COLUMNS = ["full_name", "birth_date", "sex", "position", "staff_group", "grade",
                  "months_worked", "absence", "absence_months", "study_result", "discipline",
                  "discipline_date", "pending_case", "initiative", "initiative_level",
                  "years_in_sector", "years_hardship", "title", "commendation", "vote_share"]
COLLECTIVE_COLUMNS = ["collective_name", "collective_kind", "members", "completed_tasks",
                      "lao_dong_count", "cstd_count", "disciplined", "collective_title",
                      "commendation", "vote_share"]
# The counts a collective rule uses, taken from the unit's person rows and their decisions
# (rules.md): the unit sheet's typed numbers only show where they differ.
COUNT_COLUMNS = ["members", "completed_tasks", "lao_dong_count", "cstd_count", "disciplined"]
LAO_DONG, CSTD = "lao_dong_tien_tien", "cstd_co_so"
COMPLETED_GRADES = ("HTXSNV", "HTTNV", "HTNV")
SERIOUS_DISCIPLINE = 2  # cảnh cáo and above (vocab/disciplines.yaml rank)
UNIT_KIND = "don_vi"


class AllocationError(Exception):
    """The allocation workbook named in the configuration cannot be used."""


# Joining the registration of the same school year


def _person_key(frame: pd.DataFrame) -> pd.Series:
    births = frame["birth_date"].map(lambda d: d.isoformat() if isinstance(d, dt.date) else "")
    return frame["unit_code"].astype(str) + "|" + frame["full_name"].map(
        lambda n: fold(str(n))) + "|" + births


def _collective_key(frame: pd.DataFrame) -> pd.Series:
    return frame["unit_code"].astype(str) + "|" + frame["collective_name"].map(
        lambda n: fold(str(n)))


def with_registration(results: pd.DataFrame, registered: pd.DataFrame, key: Callable,
                      columns: dict[str, str]) -> pd.DataFrame:
    """Results rows with what the same person or collective registered in October."""
    out = results.copy()
    if results.empty:
        for target in columns.values():
            out[target] = pd.Series(dtype=object)
        return out
    keys = key(results)
    found = registered.assign(_key=key(registered)).drop_duplicates("_key").set_index("_key") \
        if not registered.empty else pd.DataFrame()
    for source, target in columns.items():
        out[target] = keys.map(found[source]) if source in found else None
    out["registered"] = keys.isin(found.index) if not found.empty else False
    return out


def registered_not_proposed(registered: pd.DataFrame, proposed: pd.DataFrame, key: Callable,
                            column: str) -> pd.DataFrame:
    """Registrations in October with no proposal of that title or above now: for the office."""
    if registered.empty:
        return registered.assign(proposed=None)
    made = registered[registered[column].notna() & (registered[column] != "khong_dang_ky")]
    now = proposed.assign(_key=key(proposed)).set_index("_key")[column] \
        if not proposed.empty else pd.Series(dtype=object)
    keys = key(made)
    out = made.assign(proposed=keys.map(now))
    return out[out["proposed"] != out[column]]


def with_history(people: pd.DataFrame, store: Store, rules: RuleSet,
                 school_year: str) -> pd.DataFrame:
    """People with the store's person ids (read only: new people get none yet) and, for each
    rule the store can decide, its answer: True, False or None (check by hand)."""
    from pipeline.store.history import consecutive_flags, not_received_flags
    from pipeline.store.identity import KnownPeople, match_person
    from pipeline.store.record import history_records, known_people

    out = people.copy()
    known = KnownPeople.from_frame(known_people(store))
    out["person_id"] = [match_person(known, r.full_name, r.birth_date, r.unit_code).person_id
                        for r in out.itertuples()] if len(out) else []
    records: dict[str, pd.DataFrame] = {}
    for rule in rules.rules.values():
        spec = rule.consecutive or rule.not_received
        if spec is None:
            continue
        kind = spec["kind"]
        if kind not in records:
            records[kind] = history_records(store, kind, before=school_year)
        flags = consecutive_flags if rule.consecutive else not_received_flags
        out[el.history_column(rule)] = flags(out["person_id"], records[kind], school_year, spec)
    return out


def eligible_not_proposed(people: pd.DataFrame, verdicts: pd.DataFrame,
                          rules: RuleSet) -> pd.DataFrame:
    """People whose record of consecutive years now meets a multi-year rule (this year
    included) but who were not proposed for what that rule leads to: for the office to see."""
    rows = []
    for rule in rules.rules.values():
        spec, column = rule.consecutive, el.history_column(rule)  # what the years now meet
        if spec is None or column not in people:
            continue
        if spec["kind"] == "grade":
            now = people["grade"].isin(list(spec["codes"]))
        else:
            held = verdicts[(verdicts["kind"] == "title") & (verdicts["result"] == el.PASS)
                            & verdicts["proposal"].isin(list(spec["codes"]))]
            now = pd.Series(list(zip(people["unit_code"], people["row"], strict=True)),
                            index=people.index).isin(
                set(zip(held["unit_code"], held["row"], strict=True)))
        ready = people[now & (people[column] == True)]  # noqa: E712 — True, not truthy
        for kind, codes in rule.proposals.items():
            proposed = set(zip(verdicts.loc[(verdicts["kind"] == kind)
                                            & verdicts["proposal"].isin(codes), "unit_code"],
                               verdicts.loc[(verdicts["kind"] == kind)
                                            & verdicts["proposal"].isin(codes), "row"],
                               strict=True))
            for person in ready.itertuples():
                if (person.unit_code, person.row) in proposed:
                    continue
                rows.append({"unit_code": person.unit_code, "row": person.row,
                             "name": person.full_name, "kind": kind, "proposal": codes[0],
                             "rule_id": rule.id, "reason": f"Đủ {rule.history} "
                             f"(tính cả năm học này) nhưng chưa được đề nghị."})
    return pd.DataFrame(rows, columns=["unit_code", "row", "name", "kind", "proposal",
                                       "rule_id", "reason"])


def with_months(people: pd.DataFrame, rules: RuleSet) -> pd.DataFrame:
    """People with the months that count as worked: months worked plus the months of an absence
    the rules count as worked (maternity, study, treatment: NĐ 152/2025 Điều 4 k5), and whether
    such an absence lacks its number of months (then the rule cannot decide)."""
    rule = rules.rules.get("lao_dong_tien_tien.min_months")
    counted = list(rule.params.get("counted_absences") or ()) if rule else []
    out = people.copy()
    worked = pd.to_numeric(out["months_worked"], errors="coerce") if "months_worked" in out \
        else pd.Series(float("nan"), index=out.index)
    leave = pd.to_numeric(out["absence_months"], errors="coerce") if "absence_months" in out \
        else pd.Series(float("nan"), index=out.index)
    counts = out["absence"].isin(counted) if "absence" in out \
        else pd.Series(False, index=out.index)
    out["months_counted"] = (worked + leave.where(counts).fillna(0)).clip(upper=12)
    out["leave_months_missing"] = (counts & leave.isna()).astype(bool)
    return out


def without_registration(rules: RuleSet) -> RuleSet:
    """With no registration data to compare with, registration rules are left to check by hand
    (never failed, never passed silently)."""
    changed = {
        rid: replace(rule, require=None, history=NO_REGISTRATION)
        if rule.require and "registered" in rule.require else rule
        for rid, rule in rules.rules.items()}
    return replace(rules, rules=changed)


# Allocation of quotas per khối


def load_allocation(path: Path | None, forms: FormSet) -> tuple[dict, list[Finding]]:
    """{(khối, commendation code): number allocated} from the office's allocation workbook."""
    rows, _, findings = read_allocation(path, forms)
    limits = {(str(r.block), r.commendation): int(r.limit) for r in rows.itertuples()}
    return limits, findings


def read_allocation(path: Path | None, forms: FormSet
                    ) -> tuple[pd.DataFrame, Submission | None, list[Finding]]:
    """The valid rows of the allocation workbook (index: Excel row), its submission and its
    findings; no rows without a workbook named. AllocationError when it cannot be used."""
    if path is None:
        return pd.DataFrame(columns=["block", "commendation", "limit"]), None, []
    if not path.is_file():
        raise AllocationError(f"Không tìm thấy bảng phân bổ “{path}”.")
    book, findings = read_workbook(path, path.name)
    if book is None or has_errors(findings):
        raise AllocationError(f"Không đọc được bảng phân bổ “{path}”.")
    context = Context(vocabs=forms.vocabs)
    sub = submission(book, forms, ALLOCATION_FORM, None, context)
    rows = sub.valid_rows("allocation")
    if sub.form is None or (rows.empty and sub.findings):
        raise AllocationError(f"Bảng phân bổ “{path}” không đúng mẫu.")
    return rows, sub, [*findings, *sub.findings]


# The round


def _units_frame(registry_units: pd.DataFrame) -> pd.DataFrame:
    return registry_units[["unit_name", "level", "block", "disadvantaged"]]


def _ranking(collectives: pd.DataFrame, criteria: pd.DataFrame, units: pd.DataFrame,
             rules: RuleSet, office: Mapping[str, float], counts: pd.DataFrame) -> pd.DataFrame:
    own = collectives[collectives["collective_kind"] == UNIT_KIND].drop_duplicates("unit_code")
    own = own.set_index("unit_code")
    scores = pd.to_numeric(criteria["self_score"], errors="coerce").groupby(
        criteria["unit_code"]).sum(min_count=1) if not criteria.empty else pd.Series(dtype=float)
    submitted = sorted(set(scores.index) | set(own.index))
    table = units.loc[units.index.intersection(submitted)].copy()
    table = table.join(verified_scores(scores.reindex(table.index), office))
    members = pd.to_numeric(own["members"], errors="coerce").reindex(table.index)
    table["lao_dong_share"] = pd.to_numeric(own["lao_dong_count"], errors="coerce").reindex(
        table.index) / members.where(members > 0)
    table["cstd_total"] = pd.to_numeric(own["cstd_count"], errors="coerce").reindex(table.index)
    raw = list(rules.rule("ranking.tie_break").params["tie_breaks"])
    women = rules.rules.get(WOMEN_RULE)
    if women is not None:  # NĐ 152/2025 Điều 4 k6: collectives with ≥ 70 % women first
        share = pd.to_numeric(counts["women_share"], errors="coerce").reindex(table.index)
        table["women_majority"] = (share >= float(women.params["women_share"])).astype(int)
        raw.append({"column": "women_majority", "descending": True,
                    "label": f"tập thể có từ {float(women.params['women_share']):.0%} nữ"})
    leader_rule = rules.rules.get("co_thi_dua.khoi_leader")
    leaders = leader_rule.params.get("per_block", 1) if leader_rule else 1
    return block_ranking(table, tie_breaks=tie_breaks(raw), leaders_per_block=leaders)


WOMEN_RULE = "principles.women_priority"


def quota_priority(rules: RuleSet):
    """The quota priority of the plan, then women (NĐ 152/2025 Điều 4 k6) between equals."""
    raw = list(rules.rule("quota.priority").params["keys"])
    if WOMEN_RULE in rules.rules:
        raw.append({"column": "sex", "order": ["nu"], "label": "nữ"})
    return priority_keys(raw)


def _quota_decisions(verdicts: pd.DataFrame, people: pd.DataFrame, rules: RuleSet,
                     base: pd.Series) -> pd.DataFrame:
    """CSTĐCS within the unit's share of LĐTT: those beyond, by the data-defined priority.
    No layer setting a share means no cap."""
    quota = rules.rule("cstd_co_so.quota")
    if quota.params.get("share") is None:
        return pd.DataFrame(columns=el.DECISION_COLUMNS)
    passing = _standing_titles(verdicts)
    limits = cstd_limits(base, quota)
    capped = passing[passing["proposal"].isin(quota.params["counted_titles"])]
    if capped.empty:
        return pd.DataFrame(columns=el.DECISION_COLUMNS)
    candidates = capped.merge(people, on=["unit_code", "row"], how="left",
                              suffixes=("", "_person"))
    candidates["full_name"] = candidates["name"]
    limits = {code: limits.get(code, 0) for code in candidates["unit_code"].unique()}
    marked = within_quota(candidates, limits, quota_priority(rules), group="unit_code",
                          quota_label="Chiến sĩ thi đua cơ sở của đơn vị")
    return _over(marked[~marked["within_quota"]], quota, "person")


# Who meets what, from the person rows and their decisions


def title_rules(rules: RuleSet, title: str) -> set[str]:
    """Ids of the rules that decide a proposal of this individual title."""
    return {r.id for r in rules.rules.values()
            if r.decides and r.subject in ("person", "any")
            and title in r.proposals.get("title", ())}


def person_standing(people: pd.DataFrame, decided: pd.DataFrame,
                    rules: RuleSet) -> pd.DataFrame:
    """Per person row (unit_code, row): whether every LĐTT rule holds for their title proposal
    (a CSTĐCS candidate who fails only a CSTĐCS rule still counts as LĐTT), and whether their
    CSTĐCS (or CSTĐ cấp tỉnh) proposal stands (not failed, not beyond the quota)."""
    keys = people[["unit_code", "row"]].copy()
    quota = rules.rules.get("cstd_co_so.quota")
    base_titles = set(quota.params["base_titles"]) if quota else {LAO_DONG, CSTD, "cstd_tinh"}
    counted = set(quota.params["counted_titles"]) if quota else {CSTD, "cstd_tinh"}
    titles = decided[(decided["subject"] == "person") & (decided["kind"] == "title")]

    def blocked(rule_ids: set[str], results: tuple[str, ...]) -> set[tuple]:
        bad = titles[titles["rule_id"].isin(sorted(rule_ids)) & titles["result"].isin(results)]
        return set(zip(bad["unit_code"], bad["row"], strict=True))

    pairs = list(zip(keys["unit_code"], keys["row"], strict=True))
    lao_dong_failed = blocked(title_rules(rules, LAO_DONG), (el.FAIL,))
    cstd_failed = blocked(title_rules(rules, CSTD) | ({quota.id} if quota else set()),
                          (el.FAIL, el.OVER))
    proposed = people["title"].tolist()
    keys["meets_lao_dong"] = [t in base_titles and p not in lao_dong_failed
                              for t, p in zip(proposed, pairs, strict=True)]
    keys["meets_cstd"] = [t in counted and p not in cstd_failed and p not in lao_dong_failed
                          for t, p in zip(proposed, pairs, strict=True)]
    return keys


def disciplined_in_year(people: pd.DataFrame, rules: RuleSet,
                        vocabs: Mapping[str, Any]) -> pd.Series:
    """Person rows disciplined at cảnh cáo or above in a way that counts in the year (the
    discipline rule's reading: within the year, or the discipline's period reaching into it)."""
    ranks = {v.code: int(v.attrs.get("rank", 0)) for v in vocabs["disciplines"].values}
    serious = people["discipline"].map(ranks).fillna(0) >= SERIOUS_DISCIPLINE \
        if "discipline" in people else pd.Series(False, index=people.index)
    rule = rules.rules.get("lao_dong_tien_tien.discipline")
    how = rule.require.get("discipline_clear", "in_year") if rule and rule.require else "in_year"
    clear = el.discipline_clear(people, how, (rules.starts, rules.ends))
    return serious & ~clear


def unit_counts(people: pd.DataFrame, standing: pd.DataFrame, rules: RuleSet,
                vocabs: Mapping[str, Any]) -> pd.DataFrame:
    """Per unit, from its person rows: members, completed tasks (HTNV or better), LĐTT,
    CSTĐCS, disciplined at cảnh cáo or above, and the share of women."""
    columns = [*COUNT_COLUMNS, "women_share"]
    if people.empty:
        return pd.DataFrame(columns=columns, dtype=float)
    frame = pd.DataFrame({
        "unit_code": people["unit_code"].to_numpy(),
        "members": 1,
        "completed_tasks": people["grade"].isin(COMPLETED_GRADES).astype(int).to_numpy(),
        "lao_dong_count": standing["meets_lao_dong"].astype(int).to_numpy(),
        "cstd_count": standing["meets_cstd"].astype(int).to_numpy(),
        "disciplined": disciplined_in_year(people, rules, vocabs).astype(int).to_numpy(),
        "women": (people["sex"] == "nu").astype(int).to_numpy()})
    counts = frame.groupby("unit_code").sum()
    counts["women_share"] = counts["women"] / counts["members"]
    return counts[columns]


def with_counts(groups: pd.DataFrame, counts: pd.DataFrame,
                chosen: Mapping[str, Submission]) -> tuple[pd.DataFrame, list[Finding]]:
    """The unit's own row (kind "Đơn vị") with the counts of its person rows; a finding for
    every typed count that differs. Other collectives (tổ, khối) keep their typed counts:
    person rows do not say which tổ a person belongs to."""
    out = groups.copy()
    findings: list[Finding] = []
    own = (out["collective_kind"] == UNIT_KIND) & out["unit_code"].isin(list(counts.index)) \
        if not out.empty else pd.Series(False, index=out.index)
    for index in out.index[own]:
        code = out.at[index, "unit_code"]
        sub = chosen.get(code)
        table = sub.tables.get("unit") if sub is not None else None
        for column in COUNT_COLUMNS:
            computed = int(counts.at[code, column])
            typed = pd.to_numeric(pd.Series([out.at[index, column]]), errors="coerce").iloc[0]
            if table is not None and column in table.columns and (
                    pd.isna(typed) or int(typed) != computed):
                findings.append(Finding.make(
                    "count-differs", sub.file, unit=code, sheet=table.raw.name,
                    cell=f"{table.letter(column)}{int(out.at[index, 'row'])}",
                    column=table.sheet.column(column).header,
                    value="trống" if pd.isna(typed) else str(int(typed)),
                    expected=str(computed)))
            out.at[index, column] = computed
    return out, findings


def _allocation_decisions(verdicts: pd.DataFrame, people: pd.DataFrame,
                          collectives: pd.DataFrame, limits: dict, rules: RuleSet,
                          units: pd.DataFrame) -> pd.DataFrame:
    """Commendations beyond the number allocated to the khối, by the same priority."""
    if not limits:
        return pd.DataFrame(columns=el.DECISION_COLUMNS)
    rule = rules.rule("quota.allocation")
    keys = quota_priority(rules)
    out = []
    passing = verdicts[(verdicts["kind"] == "commendation") & verdicts["result"].isin(VIABLE)]
    passing = passing.merge(units[["block"]], left_on="unit_code", right_index=True,
                            how="left")
    for code in sorted({c for _, c in limits}):
        chosen = passing[passing["proposal"] == code]
        if chosen.empty:
            continue
        person = chosen[chosen["subject"] == "person"].merge(
            people, on=["unit_code", "row"], how="left", suffixes=("", "_person"))
        group = chosen[chosen["subject"] == "collective"].merge(
            units[["disadvantaged"]], left_on="unit_code", right_index=True, how="left")
        candidates = pd.concat([person, group], ignore_index=True)
        candidates["full_name"] = candidates["name"]
        block_limits = {b: n for (b, c), n in limits.items() if c == code}
        marked = within_quota(candidates, block_limits, keys, group="block",
                              quota_label="phân bổ cho khối")
        out.append(_over(marked[~marked["within_quota"]], rule, None))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(
        columns=el.DECISION_COLUMNS)


def _standing_titles(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Title proposals still standing: passed, waiting for earlier years' records, or beyond a
    quota (they were standing when the quota was applied). These compete for the quota."""
    return verdicts[(verdicts["kind"] == "title")
                    & verdicts["result"].isin((*VIABLE, el.OVER))]


def lao_dong_base(standing: pd.DataFrame) -> pd.Series:
    """Per unit: how many of its people meet every LĐTT rule (the base of the CSTĐCS share)."""
    if standing.empty:
        return pd.Series(dtype=int)
    return standing.groupby("unit_code")["meets_lao_dong"].sum().astype(int)


def cstd_limits(base: pd.Series, quota) -> dict[str, int]:
    """Per unit: how many CSTĐCS its share of LĐTT allows (only when a share is in force)."""
    return {code: quota_limit(int(n), quota) for code, n in base.items()}


QUOTA_COLUMNS = ["scope", "kind", "code", "base", "limit", "proposed", "beyond", "rule_id"]


def quota_table(verdicts: pd.DataFrame, decisions: pd.DataFrame, limits: dict,
                rules: RuleSet, units: pd.DataFrame, base: pd.Series) -> pd.DataFrame:
    """Every quota the round applied: per unit, its CSTĐCS against the share of its LĐTT; per
    khối, each allocated commendation against the number allocated. `scope` is the unit code
    or the khối; `kind` is "unit" or "block"; `code` the title or commendation capped."""
    rows = []
    over = decisions[decisions["result"] == el.OVER]
    quota = rules.rule("cstd_co_so.quota")
    standing = _standing_titles(verdicts)
    capped_by_unit = standing.groupby("unit_code") if quota.params.get("share") is not None \
        else ()
    for code, group in capped_by_unit:
        capped = group[group["proposal"].isin(quota.params["counted_titles"])]
        if capped.empty:
            continue
        count = int(base.get(code, 0))
        beyond = over[(over["unit_code"] == code) & (over["rule_id"] == quota.id)]
        rows.append({"scope": code, "kind": "unit", "code": "cstd_co_so", "base": count,
                     "limit": quota_limit(count, quota), "proposed": len(capped),
                     "beyond": len(beyond), "rule_id": quota.id})
    allocation = rules.rule("quota.allocation")
    blocks = verdicts["unit_code"].map(units["block"])
    over_blocks = over["unit_code"].map(units["block"])
    for (block, code), limit in sorted((limits or {}).items()):
        proposed = verdicts[(verdicts["kind"] == "commendation") & (verdicts["proposal"] == code)
                            & (verdicts["result"] != el.FAIL) & (blocks == block)]
        beyond = over[(over["rule_id"] == allocation.id) & (over["proposal"] == code)
                      & (over_blocks == block)]
        rows.append({"scope": block, "kind": "block", "code": code, "base": None,
                     "limit": limit, "proposed": len(proposed), "beyond": len(beyond),
                     "rule_id": allocation.id})
    return pd.DataFrame(rows, columns=QUOTA_COLUMNS)


def _over(rows: pd.DataFrame, rule, subject: str | None) -> pd.DataFrame:
    if rows.empty:
        return pd.DataFrame(columns=el.DECISION_COLUMNS)
    return pd.DataFrame({
        "unit_code": rows["unit_code"].to_numpy(),
        "subject": rows["subject"].to_numpy() if subject is None else subject,
        "row": rows["row"].to_numpy(), "name": rows["name"].to_numpy(),
        "kind": rows["kind"].to_numpy(), "proposal": rows["proposal"].to_numpy(),
        "rule_id": rule.id, "result": el.OVER, "citation": rule.citation,
        "status": rule.status, "layer": rule.layer,
        "reason": [f"{r} ({rule.citation})." for r in rows["quota_reason"]],
    })


@dataclass(frozen=True, kw_only=True)
class YearEndResult(RoundResult):
    """What the year-end round decided, beyond the totals every round has."""

    decisions: pd.DataFrame   # every rule decision, one row per rule and proposal
    verdicts: pd.DataFrame    # one row per proposal: its overall result
    quotas: pd.DataFrame      # every quota applied, with its limit and who is beyond
    ranking: pd.DataFrame     # units per khối
    criteria: pd.DataFrame    # self-score rows
    limits: dict              # numbers allocated per (khối, commendation)
    not_proposed: pd.DataFrame  # registered in October, not proposed now
    eligible: pd.DataFrame    # shown eligible for a higher form by the store, not proposed
    # Where the registrations compared came from: "store", "inbox", or "" (none).
    registration_source: str = ""


@dataclass(frozen=True)
class ResultsRound:
    """Kết quả bình xét cuối năm: results sheets → eligibility decisions, quotas, rankings."""

    name: str = ROUND
    form_id: str = ROUND
    form_ids: tuple[str, ...] = (ROUND,)
    folder: str = ROUND
    label: str = "Kết quả bình xét"

    def decide(self, inputs: RoundInputs) -> YearEndResult:
        """Decide every proposal, rank the units per khối (no writing).

        The Phòng workbook of an earlier run in `inputs.previous` may hold "Điểm thẩm định"
        typed by the office; those scores take precedence over the units' own. The option
        `registration_inbox` names the registration inbox of the same year to join, read only
        when the history store has not recorded that round.
        """
        return _decided(inputs)

    def load_registry(self, config: Config, forms: FormSet
                      ) -> tuple[Registry, list[Finding]]:
        """The office's registry of schools."""
        return office_registry(config, forms)

    def write(self, result: RoundResult, folder: Path) -> list[Path]:
        """The Phòng and Sở workbooks and each school's feedback."""
        return write_results_reports(result, folder)

    def manifest(self, result: RoundResult) -> dict[str, Any]:
        """Every rule decision: unit, person, proposal, rule_id, result, citation."""
        return {"decisions": decision_records(result.decisions)}

    def summary(self, result: RoundResult) -> list[str]:
        """The proposals counted by result."""
        counts = result.verdicts["result"].value_counts()
        parts = [f"{label(code).lower()}: {int(counts.get(code, 0))}" for code in Verdict]
        from pipeline.reports.official import province_managed_note

        source = getattr(result, "registration_source", "")
        compared = [REGISTRATION_SOURCES[source]] if source in REGISTRATION_SOURCES else []
        return [f"Đề nghị khen thưởng: {len(result.verdicts)} ({'; '.join(parts)}).",
                *compared, *province_managed_note(result)]


def decision_records(decisions: pd.DataFrame) -> list[dict]:
    """Every rule decision as unit, person, proposal, rule_id, result, citation (+ status)."""
    return [{"unit": d.unit_code, "person": d.name, "subject": d.subject, "row": int(d.row),
             "proposal": f"{d.kind}:{d.proposal}", "rule_id": d.rule_id, "result": d.result,
             "citation": d.citation, "status": d.status, "layer": d.layer}
            for d in decisions.sort_values(["unit_code", "subject", "row", "kind",
                                            "rule_id"]).itertuples()]


# What the year-end summary says of the registrations it compared with.
REGISTRATION_SOURCES = {
    "store": "Đối chiếu với bản đăng ký đầu năm đã tổng hợp (kho lịch sử), không đọc lại hộp thư "
             "đăng ký.",
    "inbox": "Đối chiếu với bản đăng ký đầu năm đọc từ hộp thư đăng ký."}


@dataclass(frozen=True)
class Registered:
    """What the registration round of the same year registered: each person's row (unit,
    name, birth date, title, commendation, …) and each collective's."""

    staff: pd.DataFrame
    collectives: pd.DataFrame
    source: str  # "store" or "inbox"


def registered_from_store(store: Store, school_year: str, round_name: str
                          ) -> Registered | None:
    """The registration round as the history store recorded it (its own schools' rows), or
    None when the store has not recorded that round."""
    from pipeline.forms.prefill import registrations_from_store

    found = registrations_from_store(store, school_year, Path(""), None, round_name)
    if found is None:
        return None
    staff = [{"unit_code": code, **row} for code, sheets in found.units.items()
             for row in sheets.get("staff", ())]
    groups = [{"unit_code": code, **row} for code, sheets in found.units.items()
              for row in sheets.get("unit", ())]
    return Registered(
        staff=pd.DataFrame(staff, columns=list(dict.fromkeys(
            ["unit_code", "full_name", "birth_date", "title", "commendation",
             *(k for r in staff for k in r)]))),
        collectives=pd.DataFrame(groups, columns=list(dict.fromkeys(
            ["unit_code", "collective_name", "collective_title", "commendation",
             *(k for r in groups for k in r)]))),
        source="store")


def _registration(inputs: RoundInputs) -> Registered | None:
    """The registration round of the same year: from the history store when it recorded that
    round (no registration file is read again), else from the registration inbox when one is
    given; None when neither has it."""
    # The Sở's round names its own registration round (its registry is the Sở's).
    round_ = inputs.options.get("registration_round", REGISTRATION_ROUND)
    if isinstance(inputs.store, Store):
        found = registered_from_store(inputs.store, inputs.config.school_year, round_)
        if found is not None:
            return found
    inbox = inputs.options.get("registration_inbox")
    if inbox is None or not Path(inbox).is_dir():
        return None
    from pipeline.engine import consolidation  # the engine runs the registration round too

    result = consolidation(Path(inbox), inputs.config, round=round_, forms=inputs.forms,
                           run_date=inputs.run_date)
    return Registered(staff=result.staff, collectives=result.collectives, source="inbox")


def _decided(inputs: RoundInputs) -> YearEndResult:
    config, forms, registry = inputs.config, inputs.forms, inputs.registry
    rules = inputs.rules
    # The Sở's round hands its direct schools the khối part of its allocation.
    limits, allocation_findings = inputs.options["allocation"] \
        if "allocation" in inputs.options else load_allocation(config.allocation, forms)
    chosen, subs = inputs.inbox.chosen, inputs.inbox.submissions
    registration = _registration(inputs)
    if registration is None:
        rules = without_registration(rules)
    previous = inputs.previous / OFFICE_FILE if inputs.previous is not None else None
    units = _units_frame(registry.units)
    people = sheet_rows(chosen, "staff", PERSON_COLUMNS)
    groups = sheet_rows(chosen, "unit", COLLECTIVE_COLUMNS)
    criteria = sheet_rows(chosen, "criteria", ["criterion", "max_score", "self_score"])
    reg_people = registration.staff if registration else pd.DataFrame(
        columns=["unit_code", "full_name", "birth_date", "title", "commendation"])
    reg_groups = registration.collectives if registration else pd.DataFrame(
        columns=["unit_code", "collective_name", "collective_title", "commendation"])
    people = with_registration(people, reg_people, _person_key,
                               {"title": "registered_title",
                                "commendation": "registered_commendation"})
    groups = with_registration(groups, reg_groups, _collective_key,
                               {"collective_title": "registered_collective_title",
                                "commendation": "registered_commendation"})
    people = people.merge(units[["disadvantaged"]], left_on="unit_code", right_index=True,
                          how="left")
    people = with_months(people, rules)
    if inputs.store is not None:
        people = with_history(people, inputs.store, rules, config.school_year)
    # Persons first: the collectives' counts come from their decisions.
    person_decided = el.decisions(people, "person", rules, forms.vocabs)
    base = lao_dong_base(person_standing(people, person_decided, rules))
    person_decided = pd.concat(
        [person_decided, _quota_decisions(el.verdicts(person_decided), people, rules, base)],
        ignore_index=True)
    counts = unit_counts(people, person_standing(people, person_decided, rules), rules,
                         forms.vocabs)
    groups, count_findings = with_counts(groups, counts, chosen)
    office, score_findings = read_office_scores(previous, RANKING_SHEET) \
        if previous is not None else ({}, [])
    ranking = _ranking(groups, criteria, units, rules, office, counts)
    groups["leader"] = groups["unit_code"].map(ranking["leader"]).where(
        groups["collective_kind"] == UNIT_KIND, False).fillna(False).astype(bool)
    decided = pd.concat([person_decided,
                         el.decisions(groups, "collective", rules, forms.vocabs)],
                        ignore_index=True)
    first = el.verdicts(decided)
    decided = pd.concat([decided,
                         _allocation_decisions(first, people, groups, limits, rules, units)],
                        ignore_index=True)
    verdicts = el.verdicts(decided, {r.id: r.name for r in rules.rules.values()})
    table = _results_units(registry, chosen, inputs.inbox.submitted, verdicts)
    levels = forms.vocabs["levels"].codes
    findings = [*inputs.inbox.findings, *inputs.registry_findings, *allocation_findings,
                *count_findings, *score_findings]
    return YearEndResult(
        school_year=config.school_year, round=ROUND, office=config.office_for(),
        province=config.province_office, rules=rules, forms=forms, registry=registry,
        registry_file=config.registry.name, submissions=subs, chosen=chosen, units=table,
        by_level=totals_by(table, "level", levels), by_block=totals_by(table, "block", levels),
        staff=people, collectives=groups, findings=tuple(sorted_findings(findings)),
        run_date=inputs.run_date, decisions=decided, verdicts=verdicts,
        quotas=quota_table(verdicts, decided, limits, rules, registry.units, base),
        ranking=ranking,
        criteria=criteria, limits=limits,
        not_proposed=registered_not_proposed(reg_people, people, _person_key, "title"),
        eligible=eligible_not_proposed(people, verdicts, rules),
        registration_source=registration.source if registration else "")


def _results_units(registry: Registry, chosen: Mapping[str, Submission],
                   submitted: frozenset[str], verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per unit: status, and proposals and passes per title and form of commendation."""
    units = unit_frame(registry, chosen, submitted)
    for column in ("registered", "non_leader_registered", "cstd_quota", "cstd_counted",
                   "staff_listed"):
        units[column] = 0
    if not verdicts.empty:
        for (kind, proposal), group in verdicts.groupby(["kind", "proposal"]):
            units[f"proposed:{kind}:{proposal}"] = group.groupby("unit_code").size().reindex(
                units.index, fill_value=0)
            for result, prefix in ((el.PASS, "title"), (el.CHECK, "check")):
                chosen = group[group["result"] == result]
                units[f"{prefix}:{kind}:{proposal}"] = chosen.groupby("unit_code").size(
                ).reindex(units.index, fill_value=0)
    return units


register(ResultsRound())
