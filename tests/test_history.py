"""Consecutive-year conditions decided from the store's records."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.store.history import consecutive_flags, earlier_years

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


def test_history_decided_titles_replace_proposals_of_their_year(tmp_path):
    from pipeline.store.database import RoundRecord, Store
    from pipeline.store.record import history_records

    with Store.open(tmp_path / "kho.sqlite") as connection:
        ids = [connection.add_person(n, n, None, "2024-2025") for n in ("x", "y")]
        connection.record_round(RoundRecord(
            school_year="2024-2025", round="ket-qua", run_at="2025-05-30T00:00:00",
            proposals=[{"person_id": i, "unit_code": "01", "subject": "person", "name": "n",
                        "kind": "title", "code": "cstd_co_so", "result": "pass"} for i in ids]))
        before = history_records(connection, "title", before="2025-2026")
        assert sorted(before["person_id"]) == sorted(ids)
        connection.add_awards([{"person_id": ids[1], "unit_code": "01",
                                "school_year": "2024-2025", "kind": "title",
                                "code": "cstd_co_so", "decision_no": "9/QĐ-UBND"}], "decision")
        after = history_records(connection, "title", before="2025-2026")
        assert after["person_id"].tolist() == [ids[1]]  # the authority granted only one
