"""Ranking inside each khối: hand-computed ties and notes, office scores, laws for any input."""

from __future__ import annotations

import math
import unicodedata

import numpy as np
import openpyxl
import pandas as pd
import pytest
import xlsxwriter
from hypothesis import given
from hypothesis import strategies as st

from pipeline.rules.rank import (
    SOURCE_OFFICE,
    SOURCE_SELF,
    TieBreak,
    block_ranking,
    office_scores,
    tie_breaks,
    verified_scores,
)

TIES = tie_breaks([
    {"column": "lao_dong_share", "label": "tỉ lệ Lao động tiên tiến"},
    {"column": "cstd_count", "label": "số Chiến sĩ thi đua cơ sở"},
])
LDTT = "tỉ lệ Lao động tiên tiến"


def _units() -> pd.DataFrame:
    """Two khối: TH with a tie broken by the LĐTT share and a tie left standing; MN all tied."""
    rows = {  # code: block, score, LĐTT share, CSTĐCS count  → rank
        "02001": ("TH", 92.0, 0.80, 3),  # 1
        "02002": ("TH", 88.0, 0.90, 2),  # 2: 88 like 02003/02004, higher LĐTT share
        "02003": ("TH", 88.0, 0.70, 2),  # 3
        "02004": ("TH", 88.0, 0.70, 2),  # 3: equal on everything with 02003
        "02005": ("TH", 75.0, 0.50, 1),  # 5
        "02006": ("TH", np.nan, 0.60, 0),  # no score: last, no rank
        "01002": ("MN", 80.0, 0.50, 1),  # 1
        "01001": ("MN", 80.0, 0.50, 1),  # 1
    }
    return pd.DataFrame.from_dict(rows, orient="index",
                                  columns=["block", "score", "lao_dong_share", "cstd_count"])


def _ranks(ranked: pd.DataFrame) -> list:
    return [None if pd.isna(r) else int(r) for r in ranked["rank"]]


# Definitions


def test_rank_tie_breaks_from_yaml():
    assert list(TIES) == [TieBreak("lao_dong_share", True, LDTT),
                          TieBreak("cstd_count", True, "số Chiến sĩ thi đua cơ sở")]
    assert tie_breaks([{"column": "violations", "descending": False}]) == (
        TieBreak("violations", False, ""),)


@pytest.mark.parametrize("raw", [[{"column": "x", "lable": "y"}], [{"label": "y"}]])
def test_rank_tie_breaks_reject_bad_definitions(raw):
    with pytest.raises(ValueError):
        tie_breaks(raw)


@pytest.mark.parametrize("kwargs", [{"leaders_per_block": -1},
                                    {"leaders_per_block": {"TH": -1}},
                                    {"tie_breaks": [TieBreak("no_such_column")]},
                                    {"score": "points"}])
def test_rank_bad_arguments_are_errors(kwargs):
    with pytest.raises(ValueError):
        block_ranking(_units(), **kwargs)


# General


def test_rank_hand_computed_blocks():
    ranked = block_ranking(_units(), tie_breaks=TIES)
    assert list(ranked.index) == ["01001", "01002", "02001", "02002", "02003", "02004", "02005",
                                  "02006"]
    assert _ranks(ranked) == [1, 1, 1, 2, 3, 3, 5, None]
    assert str(ranked["rank"].dtype) == "Int64"
    assert list(ranked["tied"]) == [True, True, False, False, True, True, False, False]
    assert list(ranked["tie_note"]) == [
        "Đồng hạng với 01002",
        "Đồng hạng với 01001",
        "",
        f"Bằng điểm với 02003, 02004; xếp trên nhờ {LDTT}",
        f"Đồng hạng với 02004. Bằng điểm với 02002; xếp dưới do {LDTT}",
        f"Đồng hạng với 02003. Bằng điểm với 02002; xếp dưới do {LDTT}",
        "",
        "",
    ]
    assert all(unicodedata.is_normalized("NFC", n) for n in ranked["tie_note"])


def test_rank_input_order_as_in_brief():
    th = _units().loc[["02001", "02002", "02003", "02004", "02005", "02006"]]
    ranked = block_ranking(th, tie_breaks=TIES).loc[th.index]
    assert _ranks(ranked) == [1, 2, 3, 3, 5, None]


@pytest.mark.parametrize(("leaders", "expected"), [
    (1, {"01001", "01002", "02001"}),  # MN: both tied at 1 lead
    (3, {"01001", "01002", "02001", "02002", "02003", "02004"}),  # TH: the tie at 3 both lead
    ({"TH": 2}, {"01001", "01002", "02001", "02002"}),  # MN not listed: one leader by default
    ({"TH": 0, "MN": 0}, set()),
    (10, {"01001", "01002", "02001", "02002", "02003", "02004", "02005"}),  # never unscored
])
def test_rank_leaders(leaders, expected):
    ranked = block_ranking(_units(), tie_breaks=TIES, leaders_per_block=leaders)
    assert set(ranked.index[ranked["leader"]]) == expected


def test_rank_second_tie_break_decides_and_is_named():
    units = _units()
    units.loc["02004", "cstd_count"] = 4
    ranked = block_ranking(units, tie_breaks=TIES)
    assert _ranks(ranked.loc[["02002", "02004", "02003"]]) == [2, 3, 4]
    assert ranked.loc["02004", "tie_note"] == (
        "Bằng điểm với 02003; xếp trên nhờ số Chiến sĩ thi đua cơ sở. "
        f"Bằng điểm với 02002; xếp dưới do {LDTT}")


def test_rank_ascending_tie_break_prefers_smaller():
    units = pd.DataFrame({"block": "THCS", "score": 90.0, "violations": [2, 0]},
                         index=["03001", "03002"])
    ranked = block_ranking(units, tie_breaks=[TieBreak("violations", False, "số vụ vi phạm")])
    assert list(ranked.index) == ["03002", "03001"]
    assert ranked.loc["03002", "tie_note"] == "Bằng điểm với 03001; xếp trên nhờ số vụ vi phạm"


def test_rank_float_sums_that_look_equal_are_tied():
    units = pd.DataFrame({"block": "MN", "score": [0.1 + 0.2, 0.3]}, index=["01001", "01002"])
    assert _ranks(block_ranking(units)) == [1, 1]


def test_rank_empty_and_unscored_blocks():
    assert block_ranking(_units().iloc[:0]).empty
    ranked = block_ranking(pd.DataFrame({"block": "MN", "score": [np.nan, np.nan]},
                                        index=["01002", "01001"]))
    assert list(ranked.index) == ["01001", "01002"]
    assert _ranks(ranked) == [None, None]
    assert not ranked["leader"].any() and not ranked["tied"].any()


# Scores


def _write_openpyxl(path, rows):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Xếp hạng khối"
    for row in rows:
        sheet.append(row)
    book.save(path)


def _write_xlsxwriter(path, rows):
    with xlsxwriter.Workbook(str(path)) as book:
        sheet = book.add_worksheet("Xếp hạng khối")
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is not None:
                    sheet.write(r, c, value)


ROWS = [
    ["PHÒNG VĂN HÓA – XÃ HỘI", None, None, None],
    ["BẢNG XẾP HẠNG THI ĐUA KHỐI TIỂU HỌC", None, None, None],
    [None, None, None, None],
    ["STT", "Mã đơn vị", "Điểm tự chấm", "Điểm thẩm định"],
    [1, "02001", 92, 90.5],
    [2, "02002", 88, "85,5"],  # comma decimal typed as text
    [3, "02003", 88, None],  # not yet checked
    [4, 2004, 88, 86],  # code typed as a number
    [5, "02005", 75, "chưa chấm"],  # not a number: skipped
    [6, "02006", 70, " 70 "],
    [None, None, None, None],  # the table ends here
    [None, "02009", None, 99],
]
EXPECTED = {"02001": 90.5, "02002": 85.5, "2004": 86.0, "02006": 70.0}


@pytest.mark.parametrize("write", [_write_openpyxl, _write_xlsxwriter])
def test_rank_office_scores_read_back(tmp_path, write):
    path = tmp_path / "xep-hang.xlsx"
    write(path, ROWS)
    assert office_scores(path, "Xếp hạng khối") == EXPECTED


def test_rank_office_scores_custom_headers(tmp_path):
    path = tmp_path / "xep-hang.xlsx"
    _write_openpyxl(path, [["Mã", "Điểm"], ["01001", "79,25"]])
    assert office_scores(path, "Xếp hạng khối", code_header="Mã", score_header="Điểm") == {
        "01001": 79.25}


@pytest.mark.parametrize(("rows", "sheet"), [
    (ROWS, "Không có sheet này"),
    ([["Mã đơn vị", "Điểm tự chấm"], ["02001", 92]], "Xếp hạng khối"),  # no office column
    ([[None]] * 31 + ROWS[3:], "Xếp hạng khối"),  # header below row 30
])
def test_rank_office_scores_not_found(tmp_path, rows, sheet):
    path = tmp_path / "xep-hang.xlsx"
    _write_openpyxl(path, rows)
    assert office_scores(path, sheet) == {}


def test_rank_office_scores_missing_file(tmp_path):
    assert office_scores(tmp_path / "chua-co.xlsx", "Xếp hạng khối") == {}


def test_rank_verified_scores_office_overrides_self():
    own = pd.Series([92.0, 88.0, np.nan, np.nan], index=["02001", "02002", "02003", "02004"])
    table = verified_scores(own, {"02001": 90.5, "02004": 60.0, "09999": 1.0})
    assert list(table.index) == list(own.index)
    assert list(table["score"].fillna(-1)) == [90.5, 88.0, -1, 60.0]
    assert list(table["score_source"]) == [SOURCE_OFFICE, SOURCE_SELF, "", SOURCE_OFFICE]
    assert math.isnan(table.loc["02002", "office_score"])
    assert SOURCE_OFFICE == "Phòng thẩm định" and SOURCE_SELF == "Đơn vị tự chấm"


def test_rank_office_scores_feed_the_ranking(tmp_path):
    path = tmp_path / "xep-hang.xlsx"
    _write_xlsxwriter(path, ROWS)
    units = _units()
    units["score"] = verified_scores(units["score"], office_scores(path, "Xếp hạng khối"))["score"]
    ranked = block_ranking(units, tie_breaks=TIES).loc[["02001", "02003", "02004", "02002"]]
    assert _ranks(ranked) == [1, 2, 2, 4]


# Laws


@st.composite
def _units_case(draw):
    n = draw(st.integers(0, 12))
    codes = draw(st.lists(st.from_regex(r"0[1-3]00[1-9]", fullmatch=True), min_size=n,
                          max_size=n, unique=True))
    frame = pd.DataFrame({
        "block": draw(st.lists(st.sampled_from(["MN", "TH", "THCS"]), min_size=n, max_size=n)),
        "score": draw(st.lists(st.sampled_from([70.0, 85.5, 90.0, np.nan]), min_size=n,
                               max_size=n)),
        "lao_dong_share": draw(st.lists(st.sampled_from([0.5, 0.9, np.nan]), min_size=n,
                                        max_size=n)),
        "cstd_count": draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)),
    }, index=codes)
    return frame, draw(st.permutations(range(n))), draw(st.integers(0, 3))


def _better(a: pd.Series, b: pd.Series) -> bool:
    """Whether unit a is strictly ahead of b: score, then LĐTT share, then CSTĐCS count."""
    def key(u):
        return tuple(-math.inf if pd.isna(v) else v
                     for v in (u["score"], u["lao_dong_share"], u["cstd_count"]))
    return key(a) > key(b)


@given(_units_case())
def test_rank_law_competition_ranking_in_every_block(case):
    units, _, leaders = case
    ranked = block_ranking(units, tie_breaks=TIES, leaders_per_block=leaders)
    assert sorted(ranked.index) == sorted(units.index)
    for _, rows in ranked.groupby("block"):
        scored = rows[rows["score"].notna()]
        assert rows["rank"].isna().equals(rows["score"].isna())
        if scored.empty:
            continue
        assert scored["rank"].min() == 1
        assert scored["score"].is_monotonic_decreasing
        for code, unit in scored.iterrows():  # rank = 1 + number of units strictly ahead
            ahead = sum(_better(other, unit) for _, other in scored.iterrows())
            assert ranked.loc[code, "rank"] == 1 + ahead
            assert ranked.loc[code, "leader"] == (1 + ahead <= leaders)
        assert scored["tied"].equals(scored["rank"].duplicated(keep=False))


@given(_units_case())
def test_rank_law_result_does_not_depend_on_row_order(case):
    units, shuffle, leaders = case
    ranked = block_ranking(units, tie_breaks=TIES, leaders_per_block=leaders)
    shuffled = block_ranking(units.iloc[list(shuffle)], tie_breaks=TIES,
                             leaders_per_block=leaders)
    pd.testing.assert_frame_equal(shuffled, ranked)
