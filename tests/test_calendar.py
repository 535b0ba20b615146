"""The plan's calendar: defaults, rounds of a month, school-year boundaries, loading errors."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.monthly.calendar import (
    DEFAULT_CALENDAR,
    Deadline,
    due_date,
    load_calendar,
    previous_month,
    rounds_for_period,
    school_year_of,
)


def _by_round() -> dict[str, Deadline]:
    return {d.round: d for d in DEFAULT_CALENDAR}


def test_default_calendar_rounds():
    rounds = _by_round()
    assert list(rounds) == ["dang-ky", "hoc-ky-1", "ky-niem-chuong", "sang-kien", "ket-qua"]
    assert (rounds["dang-ky"].month, rounds["dang-ky"].day, rounds["dang-ky"].opens) == (10, 15, 9)
    assert (rounds["ket-qua"].month, rounds["ket-qua"].day, rounds["ket-qua"].opens) == (5, 25, 4)
    assert {r for r, d in rounds.items() if d.supported} == {"dang-ky", "ket-qua"}
    assert all(d.label for d in DEFAULT_CALENDAR)


@pytest.mark.parametrize("period, expected", [
    ("2025-09", [("dang-ky", "2025-2026", "open")]),
    ("2025-10", [("dang-ky", "2025-2026", "due")]),
    # Files that arrive in the two months after the deadline are still picked up.
    ("2025-11", [("dang-ky", "2025-2026", "after")]),
    ("2025-12", [("dang-ky", "2025-2026", "after")]),  # hoc-ky-1's form is not built yet
    ("2026-01", []),
    ("2026-02", []),
    ("2026-04", [("ket-qua", "2025-2026", "open")]),
    ("2026-05", [("ket-qua", "2025-2026", "due")]),
    ("2026-06", [("ket-qua", "2025-2026", "after")]),
    ("2026-07", [("ket-qua", "2025-2026", "after")]),
    ("2026-08", []),
    ("2026-09", [("dang-ky", "2026-2027", "open")]),
])
def test_rounds_for_period(period, expected):
    found = rounds_for_period(DEFAULT_CALENDAR, period)
    assert [(d.round, year, state) for d, year, state in found] == expected


def test_rounds_for_period_includes_supported_custom_rounds():
    calendar = load_calendar([
        {"round": "hoc-ky-1", "label": "Học kỳ I", "month": 12, "day": 31, "opens": 11},
        {"round": "ky-niem-chuong", "label": "KNC", "month": 2, "day": 28, "opens": 12},
    ])
    found = rounds_for_period(calendar, "2025-12")
    assert [(d.round, y, s) for d, y, s in found] == [("hoc-ky-1", "2025-2026", "due"),
                                                      ("ky-niem-chuong", "2025-2026", "open")]
    found = rounds_for_period(calendar, "2026-01")
    assert [(d.round, s) for d, _, s in found] == [("hoc-ky-1", "after"),
                                                   ("ky-niem-chuong", "open")]


def test_rounds_for_period_late_months_from_the_calendar():
    calendar = load_calendar([
        {"round": "dang-ky", "label": "Đăng ký", "month": 10, "day": 15, "opens": 9,
         "late_months": 0},
        {"round": "ket-qua", "label": "Kết quả", "month": 7, "day": 31, "late_months": 3},
    ])
    assert calendar[0].late_months == 0 and calendar[1].late_months == 3
    assert rounds_for_period(calendar, "2025-11") == []
    # Due in July: picked up in August, then in the next school year's September and October.
    for period in ("2026-08", "2026-09", "2026-10"):
        found = [(d.round, y, s) for d, y, s in rounds_for_period(calendar, period)]
        assert ("ket-qua", "2025-2026", "after") in found, period
    found = [(d.round, y, s) for d, y, s in rounds_for_period(calendar, "2026-10")]
    assert found == [("dang-ky", "2026-2027", "due"), ("ket-qua", "2025-2026", "after")]
    assert rounds_for_period(calendar, "2026-11") == []
    assert load_calendar(None)[0].late_months == 2  # the default


@pytest.mark.parametrize("period", ["2025-13", "2025-00", "2025/10", "10-2025", ""])
def test_rounds_for_period_rejects_bad_period(period):
    with pytest.raises(ValueError, match="YYYY-MM"):
        rounds_for_period(DEFAULT_CALENDAR, period)


@pytest.mark.parametrize("day, year", [
    (dt.date(2025, 8, 31), "2024-2025"),
    (dt.date(2025, 9, 1), "2025-2026"),
    (dt.date(2025, 10, 31), "2025-2026"),
    (dt.date(2025, 12, 31), "2025-2026"),
    (dt.date(2026, 1, 1), "2025-2026"),
    (dt.date(2026, 5, 31), "2025-2026"),
    (dt.date(2026, 8, 31), "2025-2026"),
    (dt.date(2026, 9, 1), "2026-2027"),
])
def test_school_year_of(day, year):
    assert school_year_of(day) == year


@pytest.mark.parametrize("round_, year, expected", [
    ("dang-ky", "2025-2026", dt.date(2025, 10, 15)),
    ("ket-qua", "2025-2026", dt.date(2026, 5, 25)),
    ("hoc-ky-1", "2025-2026", dt.date(2025, 12, 31)),
    ("ky-niem-chuong", "2025-2026", dt.date(2026, 2, 28)),
    ("sang-kien", "2024-2025", dt.date(2025, 4, 30)),
])
def test_due_date(round_, year, expected):
    assert due_date(_by_round()[round_], year) == expected


def test_due_date_29_february_outside_leap_years():
    deadline = Deadline("knc", "KNC", 2, 29)
    assert due_date(deadline, "2027-2028") == dt.date(2028, 2, 29)
    assert due_date(deadline, "2025-2026") == dt.date(2026, 2, 28)


@pytest.mark.parametrize("today, expected", [
    (dt.date(2025, 11, 1), "2025-10"),
    (dt.date(2025, 11, 30), "2025-10"),
    (dt.date(2026, 1, 5), "2025-12"),
    (dt.date(2026, 3, 1), "2026-02"),
])
def test_previous_month(today, expected):
    assert previous_month(today) == expected


@given(st.dates(min_value=dt.date(2001, 1, 1), max_value=dt.date(2098, 12, 31)))
def test_due_dates_fall_inside_their_school_year(day):
    year = school_year_of(day)
    for deadline in DEFAULT_CALENDAR:
        assert school_year_of(due_date(deadline, year)) == year


def test_load_calendar_none_is_default():
    assert load_calendar(None) is DEFAULT_CALENDAR


def test_load_calendar_reads_entries():
    calendar = load_calendar([
        {"round": "dang-ky", "label": "Đăng ký", "month": 10, "day": 20},
        {"round": "sang-kien", "label": "Sáng kiến", "month": 4, "day": 30, "opens": 3,
         "supported": False},
    ])
    assert calendar == (Deadline("dang-ky", "Đăng ký", 10, 20),
                        Deadline("sang-kien", "Sáng kiến", 4, 30, 3, False))


_GOOD = {"round": "dang-ky", "label": "Đăng ký", "month": 10, "day": 15}


@pytest.mark.parametrize("raw, message", [
    ([], "ít nhất một đợt"),
    ({"round": "x"}, "ít nhất một đợt"),
    (["dang-ky"], "bảng"),
    ([_GOOD | {"month": 13}], "tháng phải từ 1 đến 12"),
    ([_GOOD | {"month": 0}], "tháng phải từ 1 đến 12"),
    ([_GOOD | {"opens": 13}], "tháng phải từ 1 đến 12"),
    ([_GOOD | {"month": "10"}], "số nguyên"),
    ([_GOOD | {"day": True}], "số nguyên"),
    ([_GOOD | {"day": 32}], "không có trong tháng"),
    ([_GOOD | {"month": 4, "day": 31}], "không có trong tháng"),
    ([_GOOD | {"month": 2, "day": 30}], "không có trong tháng"),
    ([_GOOD | {"opens": 11}], "tháng mở đợt"),
    ([_GOOD | {"month": 5, "opens": 8}], "tháng mở đợt"),
    ([{k: v for k, v in _GOOD.items() if k != "label"}], "label"),
    ([_GOOD | {"round": "  "}], "round"),
    ([_GOOD | {"due": 5}], "không được hỗ trợ: due"),
    ([_GOOD | {"supported": "yes"}], "supported"),
    ([_GOOD | {"late_months": -1}], "late_months"),
    ([_GOOD | {"late_months": "2"}], "số nguyên"),
    # Opening to the last late month must stay within twelve months (no overlap next year).
    ([_GOOD | {"opens": 9, "late_months": 11}], "late_months"),
    ([_GOOD, _GOOD], "hai lần"),
])
def test_load_calendar_errors(raw, message):
    with pytest.raises(ValueError, match=message):
        load_calendar(raw)


def test_load_calendar_error_names_the_entry():
    with pytest.raises(ValueError, match="mục 2"):
        load_calendar([_GOOD, _GOOD | {"round": "ket-qua", "month": 14}])
