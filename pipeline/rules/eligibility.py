"""The rule engine: eligibility declarations (rule data) evaluated over whole DataFrames.

Every proposal (a title or a form of commendation proposed for a person or a collective) gets
one decision per rule that applies to it: pass, fail, or check (the rule needs earlier years'
records). Conditions are a fixed set written here; the rule files only choose and parameterise
them, so a threshold or a new rule is a data change.
"""

from __future__ import annotations

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
                    "result", "citation", "status", "reason"]


# Conditions


def _blank(series: pd.Series) -> pd.Series:
    return series.isna() | series.map(lambda v: isinstance(v, str) and not v.strip())


def _numbers(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(float("nan"), index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce")


def condition_mask(condition: Mapping[str, Any], frame: pd.DataFrame,
                   ranks: Mapping[str, Mapping[str, int]]) -> pd.Series:
    """Rows of `frame` where the condition holds (a boolean Series aligned on its index)."""
    if "any" in condition:
        parts = [condition_mask(c, frame, ranks) for c in condition["any"]]
        return functools.reduce(operator.or_, parts)
    if "all" in condition:
        parts = [condition_mask(c, frame, ranks) for c in condition["all"]]
        return functools.reduce(operator.and_, parts)
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


def _reason(rule: Rule, result: str) -> str:
    status = STATUS_LABELS[rule.status]
    if result == CHECK:
        return f"Cần kiểm tra hồ sơ các năm trước: {rule.history} ({rule.citation}; {status})."
    verdict = "Đạt" if result == PASS else "Không đạt"
    what = f"{rule.history} (theo kho lịch sử)" if rule.history else rule.description
    return f"{verdict}: {what} ({rule.citation}; {status})."


def decisions(frame: pd.DataFrame, subject: str, rules: RuleSet,
              vocabs: Mapping[str, Vocabulary]) -> pd.DataFrame:
    """Every rule decision over the subject's proposals, one row per (proposal, rule)."""
    offers = proposals(frame, subject)
    ranks = _ranks(vocabs, subject)
    out = []
    covered: set[int] = set()
    for rule in rules.rules.values():
        if not rule.decides or rule.subject not in (subject, "any"):
            continue
        for kind, codes in rule.proposals.items():
            rows = offers[(offers["kind"] == kind) & offers["proposal"].isin(codes)]
            if rule.when is not None and len(rows):
                rows = rows[condition_mask(rule.when, rows, ranks)]
            if rows.empty:
                continue
            if rule.history is not None:
                results = _from_history(rows, rule)
            else:
                held = condition_mask(rule.require, rows, ranks)
                results = held.map({True: PASS, False: FAIL})
            out.append(_decision_rows(rows, subject, rule, results))
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
    return known.map(lambda v: PASS if v is True else FAIL if v is False else CHECK)


def _decision_rows(rows: pd.DataFrame, subject: str, rule: Rule,
                   results: pd.Series) -> pd.DataFrame:
    name = "full_name" if subject == "person" else "collective_name"
    return pd.DataFrame({
        "unit_code": rows["unit_code"].to_numpy(), "subject": subject,
        "row": rows["row"].to_numpy(), "name": rows[name].to_numpy(),
        "kind": rows["kind"].to_numpy(), "proposal": rows["proposal"].to_numpy(),
        "rule_id": rule.id, "result": results.to_numpy(), "citation": rule.citation,
        "status": rule.status, "reason": [_reason(rule, r) for r in results],
    })


def _undecided(rows: pd.DataFrame, subject: str) -> pd.DataFrame:
    """A proposal no rule covers is never passed silently: it is left for the office to check."""
    name = "full_name" if subject == "person" else "collective_name"
    return pd.DataFrame({
        "unit_code": rows["unit_code"].to_numpy(), "subject": subject,
        "row": rows["row"].to_numpy(), "name": rows[name].to_numpy(),
        "kind": rows["kind"].to_numpy(), "proposal": rows["proposal"].to_numpy(),
        "rule_id": NO_RULE, "result": CHECK, "citation": "",
        "status": "unverified",
        "reason": "Chưa có quy tắc nào cho đề nghị này; cần đối chiếu văn bản.",
    })


def verdicts(decided: pd.DataFrame) -> pd.DataFrame:
    """One row per proposal: the overall result (fail > over-quota > check > pass), the rules
    that decided it and the reasons of those that did not pass."""
    keys = ["unit_code", "subject", "row", "name", "kind", "proposal"]
    if decided.empty:
        return pd.DataFrame(columns=[*keys, "result", "rules", "reasons", "citations"])
    order = {FAIL: 0, OVER: 1, CHECK: 2, PASS: 3}
    # One pass over plain tuples: a groupby.apply costs a frame per proposal (minutes at a
    # province's 80,000 proposals). Groups keep the order they first appear in.
    groups: dict[tuple, list[int]] = {}
    for position, key in enumerate(zip(*(decided[k].tolist() for k in keys), strict=True)):
        groups.setdefault(tuple(None if v != v else v for v in key), []).append(position)
    results, rule_ids = decided["result"].tolist(), decided["rule_id"].tolist()
    reasons, citations = decided["reason"].tolist(), decided["citation"].tolist()
    summary: dict[str, list[str]] = {"result": [], "rules": [], "reasons": [], "citations": []}
    for positions in groups.values():
        bad = [i for i in positions if results[i] != PASS]
        summary["result"].append(min((results[i] for i in positions), key=order.__getitem__))
        summary["rules"].append(", ".join(rule_ids[i] for i in (bad or positions)))
        summary["reasons"].append(" ".join(reasons[i] for i in bad))
        summary["citations"].append("; ".join(dict.fromkeys(
            citations[i] for i in positions if citations[i])))
    firsts = [positions[0] for positions in groups.values()]
    out = decided[keys].iloc[firsts].reset_index(drop=True)
    for column, values in summary.items():
        out[column] = values
    return out
