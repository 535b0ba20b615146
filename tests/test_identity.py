"""Matching people across years: exact, moved, typo, ambiguous, confirmed."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.store.identity import (
    AMBIGUOUS,
    CONFIRMED,
    EXACT,
    MOVED,
    NEW,
    TYPO,
    KnownPeople,
    Match,
    match_key,
    match_person,
    one_edit_apart,
    person_key,
)

BORN = dt.date(1985, 9, 5)
KNOWN_ROWS = pd.DataFrame([
    {"person_id": 1, "fold_name": "nguyen van an", "birth_date": "1985-09-05", "unit_code": "01"},
    {"person_id": 2, "fold_name": "le thi hoa", "birth_date": "1990-01-02", "unit_code": "01"},
    # Two people of the same name in one unit, told apart by their birth dates.
    {"person_id": 3, "fold_name": "tran thi lan", "birth_date": "1980-03-03", "unit_code": "02"},
    {"person_id": 4, "fold_name": "tran thi lan", "birth_date": "1992-07-07", "unit_code": "02"},
    # Two people who could both be a typo of a third name.
    {"person_id": 5, "fold_name": "pham van binh", "birth_date": "1975-05-05", "unit_code": "03"},
    {"person_id": 6, "fold_name": "pham van binh", "birth_date": "1975-05-05", "unit_code": "04"},
])
KNOWN = KnownPeople.from_frame(KNOWN_ROWS)


@pytest.mark.parametrize(("name", "born", "unit", "how", "person"), [
    ("Nguyễn Văn An", BORN, "01", EXACT, 1),
    ("NGUYỄN  VĂN AN", BORN, "01", EXACT, 1),  # case, spaces and diacritics do not matter
    ("Nguyễn Văn An", BORN, "07", MOVED, 1),
    ("Nguyễn Văn Ăn", BORN, "01", EXACT, 1),
    ("Nguyễn Văn Anh", BORN, "01", TYPO, 1),
    ("Trần Thị Lan", dt.date(1992, 7, 7), "02", EXACT, 4),
    ("Trần Thị Lan", dt.date(1980, 3, 3), "02", EXACT, 3),
    ("Phạm Văn Bình", dt.date(1975, 5, 5), "09", AMBIGUOUS, None),
    ("Lê Thị Hoa", dt.date(1991, 1, 2), "01", NEW, None),
    ("Lê Thị Hoa", None, "01", NEW, None),
])
def test_identity_matching_table(name, born, unit, how, person):
    match = match_person(KNOWN, name, born, unit)
    assert (match.how, match.person_id) == (how, person)
    if how == AMBIGUOUS:
        assert match.candidates == (5, 6)


def test_identity_office_confirmation_wins():
    key = (*person_key("Phạm Văn Bình", dt.date(1975, 5, 5)), "09")
    match = match_person(KNOWN, "Phạm Văn Bình", dt.date(1975, 5, 5), "09", {key: 6})
    assert (match.how, match.person_id) == (CONFIRMED, 6)


@given(st.text(alphabet="abcdeg ", max_size=12), st.text(alphabet="abcdeg ", max_size=12))
def test_identity_one_edit_apart_is_symmetric_and_exact(a, b):
    assert one_edit_apart(a, b) == one_edit_apart(b, a)
    if one_edit_apart(a, b):
        assert a != b and abs(len(a) - len(b)) <= 1


@given(st.sampled_from(["nguyen van an", "nguyen van anh", "tran thi lan", "pham van binh",
                        "le thi hoa", "le thi hoan"]),
       st.sampled_from(["1985-09-05", "1980-03-03", "1975-05-05", "1990-01-02", "1991-01-02"]),
       st.sampled_from(["01", "02", "03", "04", "09"]))
def test_identity_unknown_person_is_new_for_match_key(name, born, unit):
    """The shortcut a province's round takes for most rows finds what match_key finds."""
    if KNOWN.unknown(name, born, unit):
        assert match_key(KNOWN, name, born, unit) == Match(None, NEW)
    else:
        assert KNOWN.named(born, name) or KNOWN.in_unit(born, unit)


@given(st.lists(st.tuples(st.sampled_from(["an", "anh", "lan"]),
                          st.sampled_from(["1980-01-01", "1981-02-02"]),
                          st.sampled_from(["01", "02", "", None])), max_size=12))
def test_identity_add_if_unknown_is_unknown_then_add(rows):
    """The one-step form the matching takes for most rows answers as `unknown` and leaves
    the indexes as `add` does (a unit missing or blank included)."""
    one, two = KnownPeople(), KnownPeople()
    for person, (name, born, unit) in enumerate(rows):
        was_unknown = two.unknown(name, born, unit)
        assert one.add_if_unknown(person, name, born, unit) == was_unknown
        if not was_unknown:
            one.add(person, name, born, unit)
        two.add(person, name, born, unit)
        assert vars(one) == vars(two)


def test_identity_known_people_keep_one_entry_per_person_and_key():
    """A key held by one person, by two, by the same person seen twice: named, in_unit and
    undated answer the set of everyone recorded under it."""
    known = KnownPeople()
    known.add(1, "an", "1980-01-01", "01")
    assert known.named("1980-01-01", "an") == {(1, "01")}
    assert known.in_unit("1980-01-01", "01") == {(1, "an")}
    known.add(1, "an", "1980-01-01", "01")  # the same row read again
    assert known.named("1980-01-01", "an") == {(1, "01")}
    known.add(2, "an", "1980-01-01", "02")
    known.add(3, "an", "1980-01-01", "03")
    assert known.named("1980-01-01", "an") == {(1, "01"), (2, "02"), (3, "03")}
    assert known.in_unit("1980-01-01", "01") == {(1, "an")}
    assert known.named("1980-01-01", "binh") == set() and not known.unknown("an", "1980-01-01",
                                                                            "09")
    known.add_undated(4, "lan", "01")
    known.add_undated(5, "lan", "01")
    assert known.undated("lan", "01") == {4, 5} and known.undated("lan", "02") == set()


def test_identity_values_converted_once_each_keep_kinds_apart():
    """Names and birth dates are converted once per distinct value; values of kinds that
    compare equal (1, 1.0, True) are never taken for one another, unhashable ones still go."""
    from pipeline.store.record import _each_once

    seen: list[object] = []

    def converted(value: object) -> str:
        seen.append(value)
        return repr(value)

    dates = [dt.date(2020, 1, 1), None, dt.date(2020, 1, 1), dt.date(1985, 9, 5)]
    assert _each_once(dates, converted) == [repr(v) for v in dates]
    assert seen == [dt.date(2020, 1, 1), None, dt.date(1985, 9, 5)]
    assert _each_once([1, 1.0, True, None, 1], repr) == ["1", "1.0", "True", "None", "1"]
    assert _each_once([[1], [1]], repr) == ["[1]", "[1]"]
