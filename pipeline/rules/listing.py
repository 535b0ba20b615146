"""The rules in force as a table a person reads, and what changed from one school year to the
next (`tdkt rules`)."""

from __future__ import annotations

from typing import Any

from pipeline.rules.ruleset import STATUS_LABELS, Rule, RuleSet, param_label

LISTING_COLUMNS = ["id", "description", "numbers", "layer", "citation", "status", "window",
                   "changes"]


def number_text(value: Any) -> str:
    """A rule's number as an office reads it: 0.15 → "15%", None → "để ngỏ"."""
    if value is None:
        return "để ngỏ (không giới hạn)"
    if isinstance(value, bool):
        return "có" if value else "không"
    if isinstance(value, float) and 0 < value <= 1:
        return f"{value:.0%}"
    if isinstance(value, list | tuple):
        return ", ".join(number_text(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {number_text(v)}" for k, v in value.items())
    return str(value)


# Parameters that are lists of codes or of sort keys: the rule's machinery, not its numbers.
_PLUMBING = {"counted_titles", "base_titles", "counted_absences", "tie_breaks", "keys",
             "title", "collective_title", "commendation", "commune", "province", "upper"}


def numbers(rule: Rule) -> str:
    """The rule's numbers, e.g. "số tháng = 6; tỉ lệ = để ngỏ"."""
    return "; ".join(f"{param_label(k)} = {number_text(v)}" for k, v in rule.params.items()
                     if k not in _PLUMBING)


def listing(rules: RuleSet) -> list[dict[str, str]]:
    """One row per rule in force: id, what it requires, its numbers, layer, citation, status,
    dates, and what lower layers changed."""
    rows = []
    for rule in sorted(rules.rules.values(), key=lambda r: r.id):
        rows.append({"id": rule.id, "description": rule.description,
                     "numbers": numbers(rule), "layer": rule.layer_label,
                     "citation": rule.citation, "status": STATUS_LABELS[rule.status],
                     "window": rule.window,
                     "changes": "; ".join((*rule.overrides,
                                           *([f"tuỳ chọn “{rule.option}”"] if rule.option
                                             else ())))})
    return rows


def changes(before: RuleSet, after: RuleSet) -> list[dict[str, str]]:
    """What differs between the rules of two days (two school years): rules that came in,
    ended, or changed their numbers, conditions, layer, citation or status."""
    out = []
    for rule_id in sorted(set(before.rules) | set(after.rules)):
        old, new = before.rules.get(rule_id), after.rules.get(rule_id)
        if old is None:
            out.append({"id": rule_id, "change": "Quy định mới",
                        "before": "", "after": f"{new.description} ({new.citation})"})
            continue
        if new is None:
            out.append({"id": rule_id, "change": "Hết hiệu lực",
                        "before": f"{old.description} ({old.citation})", "after": ""})
            continue
        for key in sorted(set(old.params) | set(new.params)):
            a, b = old.params.get(key), new.params.get(key)
            if a != b:
                out.append({"id": rule_id, "change": f"Thay đổi {param_label(key)}",
                            "before": number_text(a) if key in old.params else "—",
                            "after": number_text(b) if key in new.params else "—"})
        if old.require != new.require or old.history != new.history \
                or old.proposals != new.proposals:
            out.append({"id": rule_id, "change": "Thay đổi điều kiện",
                        "before": old.description, "after": new.description})
        for key, label in (("layer_label", "Thay đổi cấp quy định"),
                           ("citation", "Thay đổi căn cứ"), ("status", "Thay đổi mức xác minh")):
            a, b = getattr(old, key), getattr(new, key)
            if a != b:
                if key == "status":
                    a, b = STATUS_LABELS[a], STATUS_LABELS[b]
                out.append({"id": rule_id, "change": label, "before": a, "after": b})
    return out


def previous_year(school_year: str) -> str:
    """"2024-2025" for "2025-2026"."""
    start = int(school_year[:4]) - 1
    return f"{start}-{start + 1}"
