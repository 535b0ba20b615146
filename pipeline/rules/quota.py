"""Candidates in a data-defined priority order, and who is within the quota of their group."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from pipeline.text import name_sort_key

QUOTA_REASON = "Vượt hạn mức {quota}: xếp thứ {priority}/{count}, hạn mức {limit}{order}"
NAME_ORDER_LABEL = "tên theo vần a, b, c"


@dataclass(frozen=True)
class PriorityKey:
    """One criterion of the priority order, e.g. xếp loại, cấp sáng kiến, tỉ lệ phiếu bầu."""

    column: str
    order: tuple[str, ...] = ()  # values earlier come first; unlisted values after all listed
    descending: bool = False  # numeric columns only (empty `order`): larger first
    label: str = ""  # Vietnamese, shown in the reason: "xếp loại", "cấp công nhận sáng kiến"

    @property
    def title(self) -> str:
        """The label a user reads; the column id when no label is given."""
        return self.label or self.column


def priority_keys(raw: list[dict]) -> tuple[PriorityKey, ...]:
    """Priority keys from YAML-like dicts; an unknown or missing field is a definition error."""
    known = {f.name for f in fields(PriorityKey)}
    keys = []
    for i, entry in enumerate(raw):
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ValueError(f"priority key {i}: unknown field(s) {', '.join(unknown)}")
        if not entry.get("column"):
            raise ValueError(f"priority key {i}: 'column' is required")
        if entry.get("order") and entry.get("descending"):
            raise ValueError(f"priority key {i}: give either 'order' or 'descending', not both")
        keys.append(PriorityKey(column=str(entry["column"]),
                                order=tuple(str(v) for v in entry.get("order") or ()),
                                descending=bool(entry.get("descending", False)),
                                label=str(entry.get("label", ""))))
    return tuple(keys)


def ranked_candidates(candidates: pd.DataFrame, keys: Sequence[PriorityKey],
                      tie_column: str = "full_name", group: str = "group") -> pd.DataFrame:
    """Candidates sorted by priority, with "priority" = 1..n inside each group (or overall).

    Ties are broken by Vietnamese name order on `tie_column` (when present), then by index label.
    """
    ranked = candidates.iloc[_order(candidates, keys, tie_column)].copy()
    ranked["priority"] = _priorities(ranked, group)
    return ranked


def within_quota(candidates: pd.DataFrame, limits: Mapping[Hashable, int],
                 keys: Sequence[PriorityKey], *, group: str, tie_column: str = "full_name",
                 quota_label: str) -> pd.DataFrame:
    """Candidates in their own order, marked within or beyond the limit of their group.

    Adds "priority", "quota_limit" (nullable int: no limit for a group missing from `limits`),
    "within_quota" and "quota_reason" (Vietnamese, empty when within).
    """
    if group not in candidates:
        raise ValueError(f"quota group column {group!r} not in candidates")
    bad = {g: v for g, v in limits.items() if int(v) != v or v < 0}
    if bad:
        raise ValueError(f"quota limits must be whole numbers ≥ 0: {bad}")
    order = _order(candidates, keys, tie_column)
    priority = np.empty(len(candidates), dtype=int)
    priority[order] = _priorities(candidates.iloc[order], group)
    result = candidates.copy()
    result["priority"] = priority
    limit = result[group].map(dict(limits)).astype("Int64")
    result["quota_limit"] = limit
    result["within_quota"] = (limit.isna() | (result["priority"] <= limit)).astype(bool)
    count = result.groupby(group, dropna=False, sort=False)[group].transform("size")
    explained = _order_label(keys, tie_column in candidates)
    beyond = ~result["within_quota"].to_numpy()
    reasons = np.full(len(result), "", dtype=object)
    reasons[beyond] = [
        QUOTA_REASON.format(quota=quota_label, priority=p, count=c, limit=int(lim),
                            order=explained)
        for p, c, lim in zip(priority[beyond], count.to_numpy()[beyond],
                             limit.to_numpy()[beyond], strict=True)]
    result["quota_reason"] = reasons
    return result


def _order(candidates: pd.DataFrame, keys: Sequence[PriorityKey], tie_column: str) -> np.ndarray:
    """Row positions in priority order; independent of the input's row order."""
    table = {f"key{i}": _key_values(candidates, key) for i, key in enumerate(keys)}
    if tie_column in candidates:
        table["name"] = _name_ranks(candidates[tie_column])
    # Sorting labels (not positions) keeps the order the same when the rows are shuffled.
    table["label"] = pd.factorize(candidates.index, sort=True)[0]
    frame = pd.DataFrame(table, index=pd.RangeIndex(len(candidates)))
    return frame.sort_values(list(frame.columns), kind="stable",
                             na_position="last").index.to_numpy()


def _key_values(candidates: pd.DataFrame, key: PriorityKey) -> np.ndarray:
    """Smaller sorts first; missing or unlisted values come last."""
    if key.column not in candidates:
        raise ValueError(f"priority column {key.column!r} not in candidates")
    values = candidates[key.column]
    if key.order:
        positions = {value: i for i, value in enumerate(key.order)}
        return values.map(positions).fillna(len(key.order)).to_numpy(dtype=float)
    numbers = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
    return -numbers if key.descending else numbers


def _name_ranks(names: pd.Series) -> np.ndarray:
    """Position of each name in Vietnamese list order; a blank name comes last."""
    sort_keys = [name_sort_key(n) if isinstance(n, str) and n.strip() else None for n in names]
    positions = {k: i for i, k in enumerate(sorted({k for k in sort_keys if k is not None}))}
    return np.array([np.nan if k is None else positions[k] for k in sort_keys], dtype=float)


def _priorities(ranked: pd.DataFrame, group: str) -> np.ndarray:
    """1..n down a frame already in priority order, restarting in each group."""
    if group not in ranked:
        return np.arange(1, len(ranked) + 1)
    return ranked.groupby(group, dropna=False, sort=False).cumcount().to_numpy() + 1


def _order_label(keys: Sequence[PriorityKey], by_name: bool) -> str:
    """" (thứ tự ưu tiên: xếp loại, …, tên theo vần a, b, c)", or "" with nothing to name."""
    parts = [k.title for k in keys] + ([NAME_ORDER_LABEL] if by_name else [])
    return f" (thứ tự ưu tiên: {', '.join(parts)})" if parts else ""
