"""Rule sets per school year: legal rules and local policy as data, with their citations."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from pipeline import settings
from pipeline.findings import DefinitionError, catalogue

STATUSES = ("verified", "secondary", "old-law", "local", "unverified")
STATUS_LABELS = {
    "verified": "đã đối chiếu văn bản",
    "secondary": "theo nguồn thứ cấp",
    "old-law": "theo văn bản cũ, cần đối chiếu văn bản mới",
    "local": "quy định của địa phương",
    "unverified": "chưa xác minh, cần đối chiếu văn bản",
}
# Rounding of an exact fraction: a half goes up ("nearest"), never to the even neighbour.
ROUNDINGS = {"floor": math.floor, "ceil": math.ceil,
             "nearest": lambda x: math.floor(x + Fraction(1, 2))}


# Conditions a rule's `require`/`when` may use; the rule data chooses among them, never code.
CONDITION_KEYS = {"column", "in", "not_in", "min", "above", "max", "present", "blank", "ratio",
                  "any", "all", "registered", "leader"}
SUBJECTS = ("person", "collective", "any")


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    citation: str
    status: str
    effective_from: dt.date
    applies: tuple[str, ...]
    finding: str | None = None
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    subject: str | None = None  # eligibility rules: person | collective | any
    proposals: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False,
                                                  compare=False)
    when: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    require: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    history: str | None = None  # what earlier years must show; decided "cần kiểm tra"
    # How the history store decides it: {kind: title|grade, codes: [...], years: N}
    consecutive: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    # ... or: not received in an earlier year ({kind, codes, years: N} — N omitted: ever)
    not_received: dict[str, Any] | None = field(default=None, hash=False, compare=False)

    @property
    def decides(self) -> bool:
        """Whether this is an eligibility rule deciding proposals."""
        return bool(self.proposals)

    @property
    def basis(self) -> str:
        """"NĐ 91/2017/NĐ-CP Điều 9 khoản 3 — theo văn bản cũ, cần đối chiếu văn bản mới"."""
        return f"{self.citation} — {STATUS_LABELS[self.status]}"


@dataclass(frozen=True)
class RuleSet:
    school_year: str
    version: str
    starts: dt.date
    ends: dt.date
    legal_basis: dict[str, str]
    office_level: str
    giay_khen_issuer: str
    rules: dict[str, Rule] = field(hash=False, compare=False)

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id; a missing one is a definition error."""
        try:
            return self.rules[rule_id]
        except KeyError as exc:
            raise DefinitionError(f"rule set {self.version} has no rule {rule_id!r}") from exc


def _check_condition(condition: Any, where: str) -> None:
    if not isinstance(condition, dict) or not condition:
        raise DefinitionError(f"{where}: a condition must be a mapping, got {condition!r}")
    unknown = set(condition) - CONDITION_KEYS
    if unknown:
        raise DefinitionError(f"{where}: unknown condition keys {sorted(unknown)}")
    for key in ("any", "all"):
        for part in condition.get(key, ()):
            _check_condition(part, where)
    if "ratio" in condition and len(condition["ratio"]) != 2:
        raise DefinitionError(f"{where}: ratio takes [numerator, denominator]")


def _rule(raw: dict[str, Any], where: str) -> Rule:
    try:
        rule = Rule(id=raw["id"], description=raw["description"], citation=raw["citation"],
                    status=raw["status"], effective_from=raw["effective_from"],
                    applies=tuple(raw.get("applies", ())), finding=raw.get("finding"),
                    params=dict(raw.get("params") or {}), subject=raw.get("subject"),
                    proposals={k: tuple(v) for k, v in (raw.get("proposals") or {}).items()},
                    when=raw.get("when"), require=raw.get("require"),
                    history=raw.get("history"), consecutive=raw.get("consecutive"),
                    not_received=raw.get("not_received"))
    except KeyError as exc:
        raise DefinitionError(f"{where}: rule lacks {exc}") from exc
    where = f"{where}: rule {rule.id}"
    if rule.decides:
        if rule.subject not in SUBJECTS:
            raise DefinitionError(f"{where}: subject must be one of {SUBJECTS}")
        if (rule.require is None) == (rule.history is None):
            raise DefinitionError(f"{where}: give exactly one of require or history")
        for condition in (rule.require, rule.when):
            if condition is not None:
                _check_condition(condition, where)
        spec = rule.consecutive
        if spec is not None and (rule.history is None or set(spec) != {"kind", "codes", "years"}
                                 or spec["kind"] not in ("title", "grade")
                                 or int(spec["years"]) < 2):
            raise DefinitionError(f"{where}: consecutive needs history and kind (title|grade), "
                                  "codes, years ≥ 2")
        spec = rule.not_received
        if spec is not None and (rule.history is None or rule.consecutive is not None
                                 or not {"kind", "codes"} <= set(spec) <= {"kind", "codes",
                                                                          "years"}
                                 or spec["kind"] not in ("title", "commendation")):
            raise DefinitionError(f"{where}: not_received needs history and kind "
                                  "(title|commendation), codes, optional years")
    if rule.status not in STATUSES:
        raise DefinitionError(f"{where}: rule {rule.id}: unknown status {rule.status!r}")
    if rule.finding and rule.finding not in catalogue():
        raise DefinitionError(f"{where}: rule {rule.id}: unknown finding {rule.finding!r}")
    rounding = rule.params.get("rounding")
    if rounding is not None and rounding not in ROUNDINGS:
        raise DefinitionError(f"{where}: rule {rule.id}: unknown rounding {rounding!r}")
    return rule


def load_rules(school_year: str, directory: Path = settings.RULES_DIR) -> RuleSet:
    """The rule set of a school year, from schemas/rules/<school year>.yaml."""
    path = directory / f"{school_year}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.yaml")))
        raise DefinitionError(f"Chưa có bộ quy tắc cho năm học {school_year} (có: {known}).")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    rules = [_rule(r, path.name) for r in raw["rules"]]
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise DefinitionError(f"{path.name}: duplicate rule ids")
    return RuleSet(school_year=str(raw["school_year"]), version=str(raw["version"]),
                   starts=raw["starts"], ends=raw["ends"], legal_basis=raw["legal_basis"],
                   office_level=raw["office_level"], giay_khen_issuer=raw["giay_khen_issuer"],
                   rules={r.id: r for r in rules})


def quota_limit(base: int, rule: Rule) -> int:
    """How many may hold the capped title, given how many reach the base title."""
    # Exact arithmetic: 20 × 15 % is 3, not 2.9999… or 3.0000…1 as in binary floating point.
    share = Fraction(str(rule.params["share"]))
    rounded = ROUNDINGS[rule.params.get("rounding") or "floor"](base * share)
    return max(int(rounded), int(rule.params.get("minimum", 0))) if base else 0


def load_criteria(school_year: str, directory: Path = settings.CRITERIA_DIR
                  ) -> dict[str, list[dict[str, Any]]]:
    """The self-score criteria of each khối (key "default" for khối not listed)."""
    path = directory / f"{school_year}.yaml"
    if not path.is_file():
        raise DefinitionError(f"Chưa có tiêu chí thi đua cho năm học {school_year}.")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    blocks = raw.get("blocks") or {}
    if "default" not in blocks:
        raise DefinitionError(f"{path.name}: needs a `default` list of criteria")
    return {str(block): [{"criterion": str(c["criterion"]), "max_score": c["max"]}
                         for c in items] for block, items in blocks.items()}


def block_criteria(criteria: dict[str, list[dict[str, Any]]], block: str
                   ) -> tuple[dict[str, Any], ...]:
    """The criteria rows of one khối, numbered, for a template."""
    rows = criteria.get(block, criteria["default"])
    return tuple({"seq": i, **row} for i, row in enumerate(rows, start=1))
