"""The rule engine: eligibility declarations (rule data) evaluated over whole DataFrames.

Every proposal (a title or a form of commendation proposed for a person or a collective) gets
one decision per rule that applies to it: pass, fail, or check (the rule needs earlier years'
records). Conditions are a fixed set written here; the rule files only choose and parameterise
them, so a threshold or a new rule is a data change.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import operator
from collections.abc import Mapping
from typing import Any

import pandas as pd

from pipeline.forms.definitions import Vocabulary
from pipeline.rules.ruleset import STATUS_LABELS, Rule, RuleSet
from pipeline.status import Verdict, label

PASS, FAIL, CHECK, OVER = Verdict.PASS, Verdict.FAIL, Verdict.CHECK, Verdict.OVER_QUOTA
RESULT_LABELS = {code: label(code) for code in Verdict}
NO_RULE = "no-rule"

# Proposal columns of each subject, and the vocabulary of each.
PROPOSAL_COLUMNS = {
    "person": {"title": "individual_titles", "commendation": "commendations"},
    "collective": {"collective_title": "collective_titles", "commendation": "commendations"},
}
NOT_PROPOSED = {"khong_dang_ky"}
DECISION_COLUMNS = ["unit_code", "subject", "row", "name", "kind", "proposal", "rule_id",
                    "result", "citation", "status", "layer", "reason"]
Period = tuple[dt.date, dt.date]  # the school year assessed: first and last day


# Conditions


def _blank(series: pd.Series) -> pd.Series:
    return series.isna() | series.map(lambda v: isinstance(v, str) and not v.strip())


def _numbers(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(float("nan"), index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce")


def condition_mask(condition: Mapping[str, Any], frame: pd.DataFrame,
                   ranks: Mapping[str, Mapping[str, int]],
                   period: Period | None = None) -> pd.Series:
    """Rows of `frame` where the condition holds (a boolean Series aligned on its index)."""
    if "any" in condition:
        parts = [condition_mask(c, frame, ranks, period) for c in condition["any"]]
        return functools.reduce(operator.or_, parts)
    if "all" in condition:
        parts = [condition_mask(c, frame, ranks, period) for c in condition["all"]]
        return functools.reduce(operator.and_, parts)
    if "discipline_clear" in condition:
        return discipline_clear(frame, condition["discipline_clear"], period)
    if "registered" in condition:
        return _registered(frame, condition["registered"], ranks)
    if "leader" in condition:
        leader = frame["leader"] if "leader" in frame else pd.Series(False, index=frame.index)
        return leader.fillna(False).astype(bool) == bool(condition["leader"])
    if "ratio" in condition:
        numerator, denominator = condition["ratio"]
        den = _numbers(frame, denominator)
        values = _numbers(frame, numerator) / den.where(den > 0)
        return _compare(values, condition).fillna(False).astype(bool)
    column = condition["column"]
    series = frame[column] if column in frame else pd.Series(None, index=frame.index,
                                                             dtype=object)
    blank = _blank(series)
    if "present" in condition:
        return ~blank if condition["present"] else blank
    if "in" in condition:
        mask = series.isin(list(condition["in"]))
    elif "not_in" in condition:
        mask = ~series.isin(list(condition["not_in"]))
    else:
        mask = _compare(_numbers(frame, column), condition).fillna(False).astype(bool)
    return mask | blank if condition.get("blank") == "pass" else mask & ~blank


def _compare(values: pd.Series, condition: Mapping[str, Any]) -> pd.Series:
    mask = pd.Series(True, index=values.index)
    if "min" in condition:
        mask &= values >= float(condition["min"])
    if "above" in condition:
        mask &= values > float(condition["above"])
    if "max" in condition:
        mask &= values <= float(condition["max"])
    return mask & values.notna()


def _months_later(day: dt.date, months: int) -> dt.date:
    """The day `months` after `day` (the 31st becomes the month's last day)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def discipline_clear(frame: pd.DataFrame, how: Any, period: Period | None) -> pd.Series:
    """Rows with no discipline that counts against the assessed school year.

    `how` is "in_year" (a discipline decided within the year, or undated, counts) or
    {discipline code: months} (NĐ 152/2025 Điều 4 k4: achievements count from the end of the
    discipline's period, so a discipline counts when its period reaches into the year).
    """
    if period is None:
        raise ValueError("discipline_clear needs the assessed period")
    start, end = period
    codes = frame["discipline"] if "discipline" in frame else pd.Series(None, index=frame.index)
    dates = frame["discipline_date"] if "discipline_date" in frame else pd.Series(
        None, index=frame.index)
    clear = []
    for code, day in zip(codes.tolist(), dates.tolist(), strict=True):
        if code is None or code != code or code == "khong" or (
                isinstance(code, str) and not code.strip()):
            clear.append(True)
            continue
        if isinstance(day, dt.datetime):
            day = day.date()
        if not isinstance(day, dt.date):
            clear.append(False)  # undated: taken as this year's
            continue
        if day > end:  # decided after the year: not this year's
            clear.append(True)
            continue
        if how == "in_year":
            clear.append(day < start)
            continue
        months = how.get(code) if isinstance(how, Mapping) else None
        clear.append(months is not None and _months_later(day, int(months)) <= start)
    return pd.Series(clear, index=frame.index, dtype=bool)


def _registered(frame: pd.DataFrame, column: str,
                ranks: Mapping[str, Mapping[str, int]]) -> pd.Series:
    """The registration made at the start of the year reaches at least the proposal."""
    rank = ranks[column]
    registered = f"registered_{column}"
    if registered not in frame:
        return pd.Series(False, index=frame.index)
    proposed = frame[column].map(rank)
    got = frame[registered].map(rank)
    return (got.notna() & proposed.notna() & (got >= proposed)).astype(bool)


# Proposals and decisions


def proposals(frame: pd.DataFrame, subject: str) -> pd.DataFrame:
    """One row per proposal of the subject's rows: (source row, kind, proposal code)."""
    parts = []
    for kind in PROPOSAL_COLUMNS[subject]:
        if kind not in frame:
            continue
        chosen = frame[frame[kind].notna() & ~frame[kind].isin(NOT_PROPOSED)]
        parts.append(chosen.assign(kind=kind, proposal=chosen[kind]))
    if not parts:
        return frame.iloc[0:0].assign(kind="", proposal="").reset_index(drop=True)
    return pd.concat(parts, ignore_index=True)


def _ranks(vocabs: Mapping[str, Vocabulary], subject: str) -> dict[str, dict[str, int]]:
    ranks = {}
    for column, name in PROPOSAL_COLUMNS[subject].items():
        ranks[column] = {v.code: int(v.attrs.get("rank", 0)) for v in vocabs[name].values
                         if v.code not in NOT_PROPOSED}
    return ranks


def _reason(rule: Rule, result: str, missing: bool = False) -> str:
    """Why a rule decided as it did, with its citation, status and the layer that set it."""
    basis = f"({rule.citation}; {STATUS_LABELS[rule.status]}; quy định của {rule.layer_label})"
    if rule.open_params:
        return (f"Cần kiểm tra: {rule.description} — chưa có quy định về "
                f"{', '.join(rule.open_params)}, cần đối chiếu văn bản {basis}.")
    if result == CHECK and missing:
        return f"Cần kiểm tra: thiếu số liệu để xét — {rule.description} {basis}."
    if result == CHECK and rule.otherwise and rule.history:
        return (f"Cần kiểm tra hồ sơ: chưa đủ {rule.history} theo kho lịch sử; có thể xét theo "
                f"{rule.otherwise} {basis}.")
    if result == CHECK:
        return f"Cần kiểm tra hồ sơ các năm trước: {rule.history} {basis}."
    verdict = "Đạt" if result == PASS else "Không đạt"
    what = f"{rule.history} (theo kho lịch sử)" if rule.history else rule.description
    return f"{verdict}: {what} {basis}."


def decisions(frame: pd.DataFrame, subject: str, rules: RuleSet,
              vocabs: Mapping[str, Vocabulary], only: set[str] | None = None) -> pd.DataFrame:
    """Every rule decision over the subject's proposals, one row per (proposal, rule);
    `only` limits them to some rule ids."""
    offers = proposals(frame, subject)
    ranks = _ranks(vocabs, subject)
    period = (rules.starts, rules.ends)
    out = []
    covered: set[int] = set()
    for rule in rules.rules.values():
        if not rule.decides or rule.subject not in (subject, "any") or (
                only is not None and rule.id not in only):
            continue
        for kind, codes in rule.proposals.items():
            rows = offers[(offers["kind"] == kind) & offers["proposal"].isin(codes)]
            if rule.when is not None and len(rows):
                rows = rows[condition_mask(rule.when, rows, ranks, period)]
            if rows.empty:
                continue
            missing = pd.Series(False, index=rows.index)
            if rule.open_params:
                results = pd.Series(CHECK, index=rows.index)
            elif rule.history is not None:
                results = _from_history(rows, rule)
            else:
                held = condition_mask(rule.require, rows, ranks, period)
                if rule.check_when is not None:
                    missing = ~held & condition_mask(rule.check_when, rows, ranks, period)
                results = held.map({True: PASS, False: FAIL}).where(~missing, CHECK)
            out.append(_decision_rows(rows, subject, rule, results, missing))
            covered.update(rows.index)
    missing = offers[~offers.index.isin(sorted(covered))]
    if not missing.empty:
        out.append(_undecided(missing, subject))
    if not out:
        return pd.DataFrame(columns=DECISION_COLUMNS)
    return pd.concat(out, ignore_index=True)[DECISION_COLUMNS]


def history_column(rule: Rule) -> str:
    """The column in which the history store answers a rule: True, False or None (unknown)."""
    return f"history:{rule.id}"


def _from_history(rows: pd.DataFrame, rule: Rule) -> pd.Series:
    """Pass or fail where the store's records decide; check where they do not reach back."""
    column = history_column(rule)
    if column not in rows:
        return pd.Series(CHECK, index=rows.index)
    known = rows[column]
    # With other routes than the records (rule.otherwise), "no" from the store is not a fail.
    no = CHECK if rule.otherwise else FAIL
    return known.map(lambda v: PASS if v is True else no if v is False else CHECK)


def _decision_rows(rows: pd.DataFrame, subject: str, rule: Rule, results: pd.Series,
                   missing: pd.Series) -> pd.DataFrame:
    name = "full_name" if subject == "person" else "collective_name"
    return pd.DataFrame({
        "unit_code": rows["unit_code"].to_numpy(), "subject": subject,
        "row": rows["row"].to_numpy(), "name": rows[name].to_numpy(),
        "kind": rows["kind"].to_numpy(), "proposal": rows["proposal"].to_numpy(),
        "rule_id": rule.id, "result": results.to_numpy(), "citation": rule.citation,
        "status": rule.status, "layer": rule.layer,
        "reason": [_reason(rule, r, m) for r, m in zip(results, missing, strict=True)],
    })


def _undecided(rows: pd.DataFrame, subject: str) -> pd.DataFrame:
    """A proposal no rule covers is never passed silently: it is left for the office to check."""
    name = "full_name" if subject == "person" else "collective_name"
    return pd.DataFrame({
        "unit_code": rows["unit_code"].to_numpy(), "subject": subject,
        "row": rows["row"].to_numpy(), "name": rows[name].to_numpy(),
        "kind": rows["kind"].to_numpy(), "proposal": rows["proposal"].to_numpy(),
        "rule_id": NO_RULE, "result": CHECK, "citation": "",
        "status": "unverified", "layer": "",
        "reason": "Chưa có quy tắc nào cho đề nghị này; cần đối chiếu văn bản.",
    })


def verdicts(decided: pd.DataFrame, names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per proposal: the overall result (fail > over-quota > check > pass), the rules
    that decided it and the reasons of those that did not pass. `names` gives the Vietnamese
    name of each rule id (`Rule.name`) for the texts a person reads."""
    names = names or {}
    keys = ["unit_code", "subject", "row", "name", "kind", "proposal"]
    if decided.empty:
        return pd.DataFrame(columns=[*keys, "result", "rules", "reasons", "citations", "layers"])
    order = {FAIL: 0, OVER: 1, CHECK: 2, PASS: 3}
    # One pass over plain tuples: a groupby.apply costs a frame per proposal (minutes at a
    # province's 80,000 proposals). Groups keep the order they first appear in.
    groups: dict[tuple, list[int]] = {}
    for position, key in enumerate(zip(*(decided[k].tolist() for k in keys), strict=True)):
        groups.setdefault(tuple(None if v != v else v for v in key), []).append(position)
    results, rule_ids = decided["result"].tolist(), decided["rule_id"].tolist()
    reasons, citations = decided["reason"].tolist(), decided["citation"].tolist()
    layers = decided["layer"].tolist() if "layer" in decided else [""] * len(decided)
    statuses = decided["status"].tolist()
    summary: dict[str, list[str]] = {"result": [], "rules": [], "reasons": [], "citations": [],
                                     "layers": []}
    for positions in groups.values():
        bad = [i for i in positions if results[i] != PASS]
        summary["result"].append(min((results[i] for i in positions), key=order.__getitem__))
        summary["rules"].append(", ".join(rule_ids[i] for i in (bad or positions)))
        summary["layers"].append(", ".join(dict.fromkeys(
            layers[i] for i in (bad or positions) if layers[i])))
        # A pass that rests on an unverified rule says so (the office checks the text).
        shaky = [] if bad else list(dict.fromkeys(
            rule_ids[i] for i in positions if statuses[i] == "unverified"))
        summary["reasons"].append(" ".join(reasons[i] for i in bad) or (
            "Đạt theo quy định chưa xác minh ("
            f"{', '.join(names.get(r, r) for r in shaky)}): cần đối chiếu văn bản."
            if shaky else ""))
        summary["citations"].append("; ".join(dict.fromkeys(
            citations[i] for i in positions if citations[i])))
    firsts = [positions[0] for positions in groups.values()]
    out = decided[keys].iloc[firsts].reset_index(drop=True)
    for column, values in summary.items():
        out[column] = values
    return out
