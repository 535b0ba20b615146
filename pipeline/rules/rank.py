"""Ranking of units inside each khối thi đua, and the scores it ranks by."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
from python_calamine import CalamineWorkbook

from pipeline import texts as wording
from pipeline.cells import cell_address
from pipeline.findings import Finding
from pipeline.text import clean

# Scores equal to this many decimals are equal: a sum of criteria in floating point
# (0.1 + 0.2) must not split a tie the office sees on paper.
SCORE_DECIMALS = 6
DEFAULT_LEADERS = 1  # a khối missing from a leaders_per_block mapping gets one leader
HEADER_SEARCH_ROWS = 30

SOURCE_OFFICE = "Phòng thẩm định"
SOURCE_SELF = "Đơn vị tự chấm"
SAME_RANK = "Đồng hạng với {units}"
RANKED_ABOVE = "Bằng điểm với {units}; xếp trên nhờ {label}"
RANKED_BELOW = "Bằng điểm với {units}; xếp dưới do {label}"


@dataclass(frozen=True)
class TieBreak:
    """A column that separates units with equal scores, e.g. tỉ lệ Lao động tiên tiến."""

    column: str
    descending: bool = True  # larger is better
    label: str = ""  # Vietnamese, named in the tie note


def tie_breaks(raw: list[dict]) -> tuple[TieBreak, ...]:
    """Tie-break columns from YAML-like dicts; an unknown or missing field is a definition error."""
    known = {f.name for f in fields(TieBreak)}
    result = []
    for i, entry in enumerate(raw):
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ValueError(f"tie-break {i}: unknown field(s) {', '.join(unknown)}")
        if not entry.get("column"):
            raise ValueError(f"tie-break {i}: 'column' is required")
        result.append(TieBreak(column=str(entry["column"]),
                               descending=bool(entry.get("descending", True)),
                               label=str(entry.get("label", ""))))
    return tuple(result)


def block_ranking(units: pd.DataFrame, *, score: str = "score", block: str = "block",
                  tie_breaks: Sequence[TieBreak] = (),
                  leaders_per_block: int | Mapping[str, int] = 1) -> pd.DataFrame:
    """Units ranked inside their khối, best first, with ties, tie notes and the leaders.

    Adds "rank" (nullable int, competition ranking 1224; none without a score), "tied",
    "tie_note" (Vietnamese) and "leader"; rows sorted by khối, rank, unit code.
    """
    missing = [c for c in (block, score, *(t.column for t in tie_breaks)) if c not in units]
    if missing:
        raise ValueError(f"ranking columns not in units: {', '.join(missing)}")
    counts = (leaders_per_block.values() if isinstance(leaders_per_block, Mapping)
              else [leaders_per_block])
    if any(n < 0 for n in counts):
        raise ValueError(f"leaders per block must be ≥ 0: {leaders_per_block}")
    # Smaller sorts first and NaN last, so "better" columns are negated.
    keys = pd.DataFrame({"block": units[block].to_numpy(), "score": -_comparable(units[score])},
                        index=pd.RangeIndex(len(units)))
    ties = [f"tie{i}" for i in range(len(tie_breaks))]
    for name, tie in zip(ties, tie_breaks, strict=True):
        values = _comparable(units[tie.column])
        keys[name] = -values if tie.descending else values
    keys.loc[keys["score"].isna(), ties] = np.nan  # units without a score: by code only
    keys["code"] = pd.factorize(units.index, sort=True)[0]
    keys = keys.sort_values(["block", "score", *ties, "code"], na_position="last")
    position = keys.groupby("block", dropna=False, sort=False).cumcount() + 1
    same = keys.assign(position=position).groupby(["block", "score", *ties], dropna=False,
                                                  sort=False)["position"]
    scored = keys["score"].notna()
    rank = same.transform("min").where(scored).astype("Int64")
    ranked = units.iloc[keys.index.to_numpy()].copy()
    ranked["rank"] = rank.array
    ranked["tied"] = (scored & (same.transform("size") > 1)).to_numpy()
    ranked["tie_note"] = _tie_notes(keys, ranked.index.astype(str), ties,
                                    [t.label or t.column for t in tie_breaks])
    limit = (keys["block"].map(dict(leaders_per_block)).fillna(DEFAULT_LEADERS)
             if isinstance(leaders_per_block, Mapping) else leaders_per_block)
    ranked["leader"] = (scored & (rank <= limit)).fillna(False).astype(bool).to_numpy()
    return ranked


def _comparable(values: pd.Series) -> np.ndarray:
    """Numbers rounded for equality; text that is not a number counts as missing."""
    return pd.to_numeric(values, errors="coerce").astype(float).round(SCORE_DECIMALS).to_numpy()


def _tie_notes(keys: pd.DataFrame, codes: pd.Index, ties: list[str],
               labels: list[str]) -> np.ndarray:
    """For units with equal scores in a khối: who shares the rank, and what decided the rest."""
    notes = np.full(len(keys), "", dtype=object)
    frame = keys.reset_index(drop=True).assign(code=list(codes))
    tied = frame[frame["score"].notna()].groupby(["block", "score"], dropna=False)
    for _, units in tied:
        if len(units) < 2:
            continue
        values = units[ties].to_numpy(dtype=float)
        for i, row in enumerate(units.index):
            same, outranks, outranked_by = [], {}, {}
            for j, other in enumerate(units["code"]):
                if j == i:
                    continue
                decided = _deciding(values[i], values[j])
                if decided is None:
                    same.append(other)
                else:  # units are in rank order, so j < i means the other unit ranks higher
                    (outranked_by if j < i else outranks).setdefault(decided, []).append(other)
            parts = [SAME_RANK.format(units=", ".join(same))] if same else []
            parts += [RANKED_ABOVE.format(units=", ".join(u), label=labels[d])
                      for d, u in sorted(outranks.items())]
            parts += [RANKED_BELOW.format(units=", ".join(u), label=labels[d])
                      for d, u in sorted(outranked_by.items())]
            notes[row] = ". ".join(parts)
    return notes


def _deciding(mine: np.ndarray, other: np.ndarray) -> int | None:
    """The first tie-break on which two units differ (missing equals missing); None if none."""
    differs = ~((mine == other) | (np.isnan(mine) & np.isnan(other)))
    return int(np.argmax(differs)) if differs.any() else None


# Scores


def office_scores(path: Path, sheet: str, code_header: str | None = None,
                  score_header: str | None = None) -> dict[str, float]:
    """Scores the office typed into an earlier output workbook, by unit code.

    The columns are found by their headers, by default those the reports write (texts.yaml:
    reports.unit_code, reports.office_score). Only cached cell values are read. A missing file,
    sheet or header row gives {}; a blank or non-numeric score is skipped; "85,5" reads as 85.5.
    """
    return read_office_scores(path, sheet, code_header, score_header)[0]


def read_office_scores(path: Path, sheet: str, code_header: str | None = None,
                       score_header: str | None = None) -> tuple[dict[str, float], list[Finding]]:
    """`office_scores`, and a `bad-office-score` finding (file, sheet, cell, the value typed)
    for each score cell holding something that is not a number: it is not used."""
    code_header = code_header or wording.text("reports", "unit_code")
    score_header = score_header or wording.text("reports", "office_score")
    if not path.is_file():
        return {}, []
    book = CalamineWorkbook.from_path(str(path))
    if sheet not in book.sheet_names:
        return {}, []
    rows = book.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
    found = _header(rows, code_header, score_header)
    if found is None:
        return {}, []
    header, code_col, score_col = found
    scores: dict[str, float] = {}
    findings: list[Finding] = []
    for offset, row in enumerate(rows[header + 1:]):
        code = _code(row[code_col] if code_col < len(row) else None)
        if not code:
            break
        typed = row[score_col] if score_col < len(row) else None
        value = _number(typed)
        if value is not None:
            scores[code] = value
        elif clean(str(typed)) if typed is not None else "":
            findings.append(Finding.make(
                "bad-office-score", path.name, sheet=sheet,
                cell=cell_address(header + 1 + offset, score_col), column=score_header,
                value=clean(str(typed))))
    return scores, findings


def _header(rows: list[list], *headers: str) -> tuple[int, ...] | None:
    """The first row (of the first 30) holding every header, and the headers' columns."""
    for r, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        texts = [clean(str(v)) if v is not None else "" for v in row]
        if all(h in texts for h in headers):
            return (r, *(texts.index(h) for h in headers))
    return None


def _code(value: object) -> str:
    """A unit code as text: 2003.0 → "2003", " 02003 " → "02003"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return clean(str(value)) if value is not None else ""


def _number(value: object) -> float | None:
    """A typed score as a number, accepting a comma decimal; None when it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        try:
            number = float(clean(str(value)).replace(",", "."))
        except ValueError:
            return None
    return number if math.isfinite(number) else None


def verified_scores(self_scores: pd.Series, office: Mapping[str, float]) -> pd.DataFrame:
    """Per unit: its own score, the office's, and the one that counts (the office's first)."""
    own = pd.to_numeric(self_scores, errors="coerce").astype(float)
    checked = pd.Series(self_scores.index.astype(str).map(dict(office)), index=own.index,
                        dtype=float)
    source = np.where(checked.notna(), SOURCE_OFFICE, np.where(own.notna(), SOURCE_SELF, ""))
    return pd.DataFrame({"self_score": own, "office_score": checked,
                         "score": checked.fillna(own), "score_source": source}, index=own.index)
