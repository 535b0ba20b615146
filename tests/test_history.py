"""Consecutive-year conditions decided from the store's records."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.history import consecutive_flags, earlier_years

SPEC = {"kind": "title", "codes": ["cstd_co_so", "cstd_tinh"], "years": 3}
RECORDS = pd.DataFrame([
    (1, "2023-2024", "cstd_co_so"), (1, "2024-2025", "cstd_co_so"),
    (2, "2023-2024", "cstd_co_so"), (2, "2024-2025", "lao_dong_tien_tien"),
    (3, "2024-2025", "cstd_tinh"),
], columns=["person_id", "school_year", "code"])


def test_history_earlier_years():
    assert earlier_years("2025-2026", 2) == ["2023-2024", "2024-2025"]


@pytest.mark.parametrize(("years", "expected"), [
    (3, [True, False, None, None, None]),
    (2, [True, False, True, None, None]),
])
def test_history_consecutive_flags(years, expected):
    persons = pd.Series([1, 2, 3, 4, None])
    got = consecutive_flags(persons, RECORDS, "2025-2026", {**SPEC, "years": years}).tolist()
    assert got == expected
