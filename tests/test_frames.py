"""A file's tables as arrays (pipeline.ingest.frames): the frames built from them, stacked from
them and pickled with them are the frames pandas makes, stacks and pickles."""

from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.ingest.frames import FrameParts, Frames, frame_parts, stacked

VALUES = st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=3),
                   st.dates(dt.date(2000, 1, 1), dt.date(2001, 1, 1)))
TABLES = st.integers(1, 4).flatmap(lambda width: st.lists(
    st.tuples(st.lists(VALUES, min_size=width, max_size=width), st.integers(1, 10_000)),
    max_size=6, unique_by=lambda row: row[1]))
IDS = ["seq", "full_name", "birth_date", "title"]


def _as_pandas_makes_it(rows: list[tuple[list, int]], ids: list[str]) -> pd.DataFrame:
    """The frame pandas makes of a table's rows: dtype object, index = Excel row ("row")."""
    frame = pd.DataFrame([values for values, _ in rows], columns=ids, dtype=object)
    frame.index = pd.Index([row for _, row in rows], name="row")
    return frame


def _parts(rows: list[tuple[list, int]], ids: list[str]) -> FrameParts:
    columns = [[values[j] for values, _ in rows] for j in range(len(ids))]
    return FrameParts.of_columns(columns, ids, [row for _, row in rows])


@given(TABLES)
def test_frames_a_table_built_from_arrays_is_the_frame_pandas_makes(rows):
    ids = IDS[:len(rows[0][0])] if rows else IDS[:2]
    built = _parts(rows, ids).frame()
    expected = _as_pandas_makes_it(rows, ids) if rows else pd.DataFrame(
        columns=ids, index=pd.Index([], name="row"), dtype=object)
    pd.testing.assert_frame_equal(built, expected)
    assert list(built.dtypes.astype(str)) == ["object"] * len(ids)
    again = FrameParts.of_frame(built)
    pd.testing.assert_frame_equal(again.frame(), built)


@given(st.lists(TABLES.filter(bool), min_size=1, max_size=5), st.booleans())
def test_frames_tables_stacked_as_arrays_are_what_pd_concat_stacks(tables, same_columns):
    """Tables of the same columns (and, for the fallback, of different widths): stacked()
    gives pd.concat's frame, with its Excel rows or with a fresh index."""
    parts, frames = [], []
    for rows in tables:
        ids = IDS[:len(rows[0][0])]
        if same_columns:  # every table cut or padded to two columns
            rows = [([*values, None, None][:2], row) for values, row in rows]
            ids = IDS[:2]
        parts.append(_parts(rows, ids))
        frames.append(_as_pandas_makes_it(rows, ids))
    pd.testing.assert_frame_equal(stacked(parts), pd.concat(frames))
    pd.testing.assert_frame_equal(stacked(parts, keep_rows=False),
                                  pd.concat(frames, ignore_index=True))


def test_frames_rows_left_out_by_excel_row():
    parts = _parts([([1, "An"], 7), ([2, "Bình"], 8), ([3, "Chi"], 10)], IDS[:2])
    kept = parts.without_rows({8, 99})
    assert kept.rows.tolist() == [7, 10]
    assert kept.values[:, 1].tolist() == ["An", "Chi"]
    assert len(parts) == 3  # the parts themselves unchanged


def test_frames_mapping_builds_each_frame_once_and_pickles_only_the_arrays():
    parts = _parts([([1, "An"], 7), ([2, None], 8)], IDS[:2])
    frames = Frames({"staff": parts})
    assert list(frames) == ["staff"] and len(frames) == 1 and "staff" in frames
    first = frames["staff"]
    assert frames["staff"] is first
    assert frame_parts(frames, "staff") is parts
    data = pickle.dumps(frames, protocol=5)
    assert b"pandas" not in data  # no frame travels, only the arrays
    back = pickle.loads(data)
    pd.testing.assert_frame_equal(back["staff"], first)
    plain = {"staff": first}  # a plain mapping of frames (built by hand, in tests)
    pd.testing.assert_frame_equal(frame_parts(plain, "staff").frame(), first)
    with pytest.raises(KeyError):
        frames["units"]


def test_frames_counted_rows_as_arrays_are_the_counted_frames(sample_run):
    """Every sample submission and sheet: the rows counted, as arrays, are counted_rows."""
    result, _ = sample_run
    seen = 0
    for sub in result.submissions:
        for sheet_id in sub.frames:
            counted = sub.counted_rows(sheet_id)
            parts = sub.counted_parts(sheet_id)
            if counted.empty:
                assert parts is None or not len(parts)
                continue
            seen += 1
            pd.testing.assert_frame_equal(parts.frame(), counted)
    assert seen > 10
    dropped = [s for s in result.submissions for i in s.frames
               if s.counted and s.error_rows(i)]
    assert dropped  # the samples have rows left out for their errors: compared above
    assert np.all([len(s.counted_parts(i) or ()) <= len(s.frames[i]) for s in dropped
                   for i in s.frames])
