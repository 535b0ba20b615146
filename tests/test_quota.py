"""Priority order and quotas: hand-computed cases, definition errors, and laws for any input."""

from __future__ import annotations

import unicodedata
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import load_config
from pipeline.rules.quota import PriorityKey, priority_keys, ranked_candidates, within_quota
from pipeline.rules.ruleset import load_rules, quota_limit

from .conftest import SAMPLES
from .sample_inbox import CSTD_SHARE_PERCENT, cstd_limit

KEYS = priority_keys([
    {"column": "grade", "order": ["HTXSNV", "HTTNV"], "label": "xếp loại"},
    {"column": "initiative_level", "order": ["toan_quoc", "tinh", "co_so"],
     "label": "cấp công nhận sáng kiến"},
    {"column": "staff_group", "order": ["GV", "NV", "CBQL"],
     "label": "người không giữ chức vụ quản lý"},
    {"column": "vote_share", "descending": True, "label": "tỉ lệ phiếu tín nhiệm"},
])
ORDER_TEXT = ("thứ tự ưu tiên: xếp loại, cấp công nhận sáng kiến, người không giữ chức vụ quản lý, "
              "tỉ lệ phiếu tín nhiệm, tên theo vần a, b, c")


def _candidates() -> pd.DataFrame:
    """Six CSTĐCS proposals from two units; priorities worked out by hand in the comments."""
    rows = [  # unit, name, grade, initiative, group, vote share  → priority in unit
        ("02001", "Nguyễn Văn An", "HTTNV", "toan_quoc", "GV", 0.90),  # 4: grade comes first
        ("02001", "Trần Thị Bình", "HTXSNV", "co_so", "GV", 0.95),  # 3: base-level initiative
        ("02001", "Lê Văn Cường", "HTXSNV", "tinh", "CBQL", 0.99),  # 2: a manager
        ("02001", "Phạm Thị Dung", "HTXSNV", "tinh", "GV", 0.80),  # 1
        ("02002", "Hoàng Văn Bảo", "HTXSNV", "tinh", "NV", 0.85),  # 2: tied, by given name
        ("02002", "Đỗ Thị Anh", "HTXSNV", "tinh", "NV", 0.85),  # 1
    ]
    return pd.DataFrame(rows, index=[11, 12, 13, 14, 15, 16],
                        columns=["unit_code", "full_name", "grade", "initiative_level",
                                 "staff_group", "vote_share"])


# The limit of a share, worked out by hand (base × share, then the rule's rounding, then the
# minimum; nobody at all when nobody reaches the base title)

LIMITS = [  # base, share, rounding, minimum → limit
    (0, 0.15, "floor", 0, 0),  # nobody reaches the base title
    (1, 0.15, "floor", 0, 0),  # 0.15
    (6, 0.15, "floor", 0, 0),  # 0.9: "không quá" 15 % — none
    (7, 0.15, "floor", 0, 1),  # 1.05
    (13, 0.15, "floor", 0, 1),  # 1.95
    (14, 0.15, "floor", 0, 2),  # 2.1
    (20, 0.15, "floor", 0, 3),  # 3 exactly (20 × 0.15 is 2.9999… in binary)
    (40, 0.15, "floor", 0, 6),  # 6 exactly
    (60, 0.15, "floor", 0, 9),  # 9 exactly (60 × 0.15 is 8.9999… in binary)
    (100, 0.15, "floor", 0, 15),  # 15 exactly
    (47, 0.15, "floor", 0, 7),  # 7.05
    (10, 0.15, None, 0, 1),  # 1.5: no rounding given means down
    (10, 0.0, "floor", 0, 0),  # a share of nothing
    (10, 1.0, "floor", 0, 10),  # everyone
    (3, 0.15, "nearest", 0, 0),  # 0.45
    (6, 0.15, "nearest", 0, 1),  # 0.9
    (7, 0.15, "nearest", 0, 1),  # 1.05
    (10, 0.15, "nearest", 0, 2),  # 1.5: a half goes up
    (30, 0.15, "nearest", 0, 5),  # 4.5: a half goes up (not to the even 4)
    (5, 0.5, "nearest", 0, 3),  # 2.5: up, not to the even 2
    (13, 0.15, "nearest", 0, 2),  # 1.95
    (20, 0.15, "nearest", 0, 3),  # 3 exactly
    (1, 0.15, "ceil", 0, 1),  # 0.15
    (7, 0.15, "ceil", 0, 2),  # 1.05
    (14, 0.15, "ceil", 0, 3),  # 2.1
    (0, 0.15, "ceil", 0, 0),  # nobody reaches the base title
    (20, 0.15, "ceil", 0, 3),  # 3 exactly: not pushed up by binary rounding
    (40, 0.15, "ceil", 0, 6),  # 6 exactly
    (10, 1.0, "ceil", 0, 10),  # everyone
    (3, 0.15, "floor", 1, 1),  # 0.45 → 0, raised to the minimum
    (6, 0.15, "floor", 1, 1),  # 0.9 → 0, raised to the minimum
    (20, 0.15, "floor", 1, 3),  # 3, above the minimum
    (7, 0.15, "floor", 2, 2),  # 1.05 → 1, raised to the minimum
    (0, 0.15, "floor", 1, 0),  # the minimum never applies to a unit with no base
    (3, 0.15, "nearest", 1, 1),  # 0.45 → 0, raised to the minimum
]


@pytest.mark.parametrize(("base", "share", "rounding", "minimum", "limit"), LIMITS)
def test_quota_limit_hand_computed(base, share, rounding, minimum, limit):
    rule = load_rules("2025-2026").rule("cstd_co_so.quota")
    params = {**rule.params, "share": share, "minimum": minimum}
    if rounding is None:
        del params["rounding"]
    else:
        params["rounding"] = rounding
    assert quota_limit(base, replace(rule, params=params)) == limit


def test_quota_rule_of_the_year_is_the_one_the_samples_plant_against():
    # tests.sample_inbox writes 15 % rounded down out by hand; the sample office's rule (its
    # own layer: the law has no cap since 2024) must agree.
    config = load_config(SAMPLES / "tdkt.toml")
    params = load_rules("2025-2026", office=config.office_rules).rule("cstd_co_so.quota").params
    assert (params["share"], params["rounding"], params.get("minimum", 0)) == (
        CSTD_SHARE_PERCENT / 100, "floor", 0)
    floor_cases = [c for c in LIMITS if isinstance(c, tuple) and c[1:4] == (0.15, "floor", 0)]
    assert len(floor_cases) >= 8
    assert [cstd_limit(base) for base, *_ in floor_cases] == [c[-1] for c in floor_cases]


# Definitions


def test_quota_priority_keys_from_yaml():
    assert KEYS[0] == PriorityKey("grade", ("HTXSNV", "HTTNV"), False, "xếp loại")
    assert KEYS[3] == PriorityKey("vote_share", (), True, "tỉ lệ phiếu tín nhiệm")


@pytest.mark.parametrize("raw", [
    [{"column": "grade", "ordre": ["HTXSNV"]}],
    [{"order": ["HTXSNV"]}],
    [{"column": "vote_share", "order": ["x"], "descending": True}],
])
def test_quota_priority_keys_reject_bad_definitions(raw):
    with pytest.raises(ValueError):
        priority_keys(raw)


def test_quota_missing_priority_column_is_an_error():
    with pytest.raises(ValueError, match="initiative"):
        ranked_candidates(_candidates().drop(columns="initiative_level"), KEYS)


@pytest.mark.parametrize("limits", [{"02001": -1}, {"02001": 1.5}])
def test_quota_limits_must_be_whole_and_not_negative(limits):
    with pytest.raises(ValueError):
        within_quota(_candidates(), limits, KEYS, group="unit_code", quota_label="CSTĐCS")


# General


def test_quota_ranked_candidates_hand_computed():
    ranked = ranked_candidates(_candidates().rename(columns={"unit_code": "group"}), KEYS)
    # Sorted by the keys over all rows; "priority" restarts in each group.
    assert list(ranked.index) == [14, 16, 15, 13, 12, 11]
    assert dict(zip(ranked.index, ranked["priority"], strict=True)) == {
        14: 1, 13: 2, 12: 3, 11: 4, 16: 1, 15: 2}


def test_quota_ranked_candidates_without_group_counts_over_all():
    ranked = ranked_candidates(_candidates(), KEYS)
    # Across both units: HTXSNV + tỉnh + GV (14), then NV (16 Anh before 15 Bảo), then CBQL (13) …
    assert list(ranked.index) == [14, 16, 15, 13, 12, 11]
    assert list(ranked["priority"]) == [1, 2, 3, 4, 5, 6]


def test_quota_within_hand_computed():
    result = within_quota(_candidates(), {"02001": 2, "02002": 1}, KEYS, group="unit_code",
                          quota_label="Chiến sĩ thi đua cơ sở")
    assert list(result.index) == [11, 12, 13, 14, 15, 16]
    assert list(result["priority"]) == [4, 3, 2, 1, 2, 1]
    assert list(result["quota_limit"]) == [2, 2, 2, 2, 1, 1]
    assert list(result["within_quota"]) == [False, False, True, True, False, True]
    assert result.loc[12, "quota_reason"] == (
        f"Vượt hạn mức Chiến sĩ thi đua cơ sở: xếp thứ 3/4, hạn mức 2 ({ORDER_TEXT})")
    assert result.loc[15, "quota_reason"].startswith(
        "Vượt hạn mức Chiến sĩ thi đua cơ sở: xếp thứ 2/2, hạn mức 1 (")
    assert list(result.loc[[13, 14, 16], "quota_reason"]) == ["", "", ""]
    assert all(unicodedata.is_normalized("NFC", r) for r in result["quota_reason"])


def test_quota_missing_limit_means_everyone_within():
    result = within_quota(_candidates(), {"02002": 1}, KEYS, group="unit_code",
                          quota_label="CSTĐCS")
    first = result[result["unit_code"] == "02001"]
    assert first["within_quota"].all()
    assert first["quota_limit"].isna().all()
    assert (first["quota_reason"] == "").all()
    assert list(result.loc[[15, 16], "within_quota"]) == [False, True]


def test_quota_limit_zero_means_everyone_beyond():
    result = within_quota(_candidates(), {"02001": 0, "02002": 0}, KEYS, group="unit_code",
                          quota_label="CSTĐCS")
    assert not result["within_quota"].any()
    assert result.loc[14, "quota_reason"].startswith("Vượt hạn mức CSTĐCS: xếp thứ 1/4, hạn mức 0")


@pytest.mark.parametrize(("values", "expected"), [
    (["HTTNV", "HTXSNV", "khác"], [2, 1, 3]),  # unlisted after listed
    (["khác", None, "HTXSNV"], [2, 3, 1]),  # missing after unlisted: by index label
])
def test_quota_unlisted_values_come_after_listed(values, expected):
    frame = pd.DataFrame({"grade": values, "group": "g"}, index=[1, 2, 3])
    key = PriorityKey("grade", ("HTXSNV", "HTTNV"))
    assert list(ranked_candidates(frame, [key]).sort_index()["priority"]) == expected


def test_quota_missing_vote_share_comes_last():
    frame = pd.DataFrame({"vote_share": [np.nan, 0.5, 0.9]}, index=["a", "b", "c"])
    ranked = ranked_candidates(frame, [PriorityKey("vote_share", descending=True)])
    assert list(ranked.index) == ["c", "b", "a"]


def test_quota_without_keys_or_names_uses_index_labels():
    result = within_quota(pd.DataFrame({"unit": ["x"] * 3}, index=[3, 1, 2]), {"x": 2}, [],
                          group="unit", quota_label="CSTĐCS")
    assert list(result["within_quota"]) == [False, True, True]
    assert result.loc[3, "quota_reason"] == "Vượt hạn mức CSTĐCS: xếp thứ 3/3, hạn mức 2"


# Laws

GROUPS = ["02001", "02002", "02003"]
NAMES = ["Nguyễn Văn An", "Trần Thị An", "Lê Bình", "Đỗ Thị Ánh", "Hoàng Anh", None]


@st.composite
def _quota_case(draw):
    n = draw(st.integers(0, 14))
    frame = pd.DataFrame({
        "unit_code": draw(st.lists(st.sampled_from(GROUPS), min_size=n, max_size=n)),
        "full_name": draw(st.lists(st.sampled_from(NAMES), min_size=n, max_size=n)),
        "grade": draw(st.lists(st.sampled_from(["HTXSNV", "HTTNV", "HTNV", None]),
                               min_size=n, max_size=n)),
        "initiative_level": draw(st.lists(st.sampled_from(["tinh", "co_so", None]),
                                          min_size=n, max_size=n)),
        "staff_group": draw(st.lists(st.sampled_from(["GV", "NV", "CBQL"]),
                                     min_size=n, max_size=n)),
        "vote_share": draw(st.lists(st.sampled_from([0.5, 0.8, 1.0, np.nan]),
                                    min_size=n, max_size=n)),
    }, index=draw(st.lists(st.integers(0, 999), min_size=n, max_size=n, unique=True)))
    limits = draw(st.dictionaries(st.sampled_from(GROUPS), st.integers(0, 5)))
    return frame, limits, draw(st.permutations(range(n)))


@given(_quota_case())
def test_quota_law_within_count_never_exceeds_limit_and_nobody_is_dropped(case):
    frame, limits, _ = case
    result = within_quota(frame, limits, KEYS, group="unit_code", quota_label="CSTĐCS")
    assert list(result.index) == list(frame.index)
    pd.testing.assert_frame_equal(result[frame.columns], frame)
    for unit, rows in result.groupby("unit_code"):
        assert sorted(rows["priority"]) == list(range(1, len(rows) + 1))
        if unit in limits:
            assert rows["within_quota"].sum() == min(limits[unit], len(rows))
        else:
            assert rows["within_quota"].all()
    assert ((result["quota_reason"] == "") == result["within_quota"]).all()


@given(_quota_case())
def test_quota_law_marks_do_not_depend_on_row_order(case):
    frame, limits, shuffle = case
    result = within_quota(frame, limits, KEYS, group="unit_code", quota_label="CSTĐCS")
    shuffled = within_quota(frame.iloc[list(shuffle)], limits, KEYS, group="unit_code",
                            quota_label="CSTĐCS")
    pd.testing.assert_frame_equal(shuffled.loc[result.index], result)
