"""Earlier years, as the history store knows them: consecutive-year conditions, person ids."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from pipeline.config import year_start


def earlier_years(school_year: str, count: int) -> list[str]:
    """The `count` school years before `school_year`, oldest first: 2025-2026, 2 → 2023-2024,
    2024-2025."""
    start = year_start(school_year)
    return [f"{y}-{y + 1}" for y in range(start - count, start)]


def consecutive_flags(person_ids: pd.Series, records: pd.DataFrame, school_year: str,
                      spec: Mapping[str, Any]) -> pd.Series:
    """For each person: True when the store shows one of `spec["codes"]` in every one of the
    earlier years the rule needs (this year's proposal counting as the last), False when it
    shows the person with another title or grade of that kind in such a year, None (to check
    by hand) when it has nothing on the person for such a year (no record kept yet, or the
    person worked elsewhere).

    `records`: person_id, school_year, code — titles held or grades, of kind `spec["kind"]`.
    """
    needed = earlier_years(school_year, int(spec["years"]) - 1)
    held = records[records["code"].isin(list(spec["codes"]))]
    have = set(zip(held["person_id"], held["school_year"], strict=True))
    seen = set(zip(records["person_id"], records["school_year"], strict=True))

    def flag(person: Any) -> bool | None:
        if person is None or pd.isna(person):
            return None
        person = int(person)
        unknown = False
        for year in needed:
            if (person, year) in have:
                continue
            if (person, year) in seen:
                return False  # recorded that year with another title or grade
            unknown = True  # nothing recorded on the person that year: check by hand
        return None if unknown else True

    return person_ids.map(flag).astype(object)


def not_received_flags(person_ids: pd.Series, records: pd.DataFrame, school_year: str,
                       spec: Mapping[str, Any]) -> pd.Series:
    """For each person: False when the store shows one of `spec["codes"]` in an earlier year
    (within the last `spec["years"]` years when given); None otherwise — the store cannot prove
    that something was never received, so the office checks the file."""
    window = set(earlier_years(school_year, int(spec["years"]))) if spec.get("years") else None
    held = records[records["code"].isin(list(spec["codes"]))]
    if window is not None:
        held = held[held["school_year"].isin(window)]
    received = set(held["person_id"])

    def flag(person: Any) -> bool | None:
        if person is None or pd.isna(person):
            return None
        return False if int(person) in received else None

    return person_ids.map(flag).astype(object)
