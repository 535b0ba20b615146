"""Progress of a round: on time, late, missing and invalid units, and the written workbook."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import openpyxl
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import Office
from pipeline.reports.completeness import (
    INVALID,
    LATE,
    MISSING,
    ON_TIME,
    PROGRESS_FILE,
    STATE_KEYS,
    STATES,
    completeness,
    completeness_summary,
    write_completeness,
)

DUE = dt.date(2025, 10, 15)
OFFICE = Office(name="Phòng Văn hóa – Xã hội", parent="UBND XÃ TÂN LẬP", level="xa",
                place="Tân Lập", signer="Trưởng phòng")

# unit, name, level, block, status in the unit table
UNITS = [
    ("A01", "Trường Mầm non Hoa Sen", "mn", "Khối Mầm non", "valid"),
    ("A02", "Trường Mầm non Sơn Ca", "mn", "Khối Mầm non", "valid"),
    ("A03", "Trường Tiểu học Kim Đồng", "th", "Khối Tiểu học", "with_errors"),
    ("A04", "Trường Tiểu học Lê Lợi", "th", None, "missing"),
    ("A05", "Trường THCS Tân Lập", "thcs", "Khối THCS", "invalid"),
    ("A06", "Trường THCS Nguyễn Du", "thcs", "Khối THCS", "valid"),
    ("A07", "Trường THCS Lý Tự Trọng", "thcs", "Khối THCS", "with_errors"),
    ("A08", "Trường Tiểu học Trần Phú", "th", "Khối Tiểu học", "invalid"),
]

# file, unit, counted, superseded_by, first seen in the inbox (None: never seen before this
# run), "Ngày lập" written on the form
FILES = [
    ("a01.xlsx", "A01", True, None, dt.datetime(2025, 10, 10, 8, 30), None),
    ("a02.xlsx", "A02", True, None, dt.datetime(2025, 10, 15, 23, 59), None),
    # First seen late, but the form was made (and sent) on 16/10: one day late, not three.
    ("a03.xlsx", "A03", True, None, dt.datetime(2025, 10, 18, 9, 0), dt.date(2025, 10, 16)),
    ("a05.xlsx", "A05", False, None, dt.datetime(2025, 10, 20, 7, 0), None),
    ("a06-cu.xlsx", "A06", False, "a06-moi.xlsx", dt.datetime(2025, 10, 1, 7, 0), None),
    # A form date after the file was already seen can't be its arrival.
    ("a06-moi.xlsx", "A06", True, None, dt.datetime(2025, 10, 17, 16, 45),
     dt.date(2025, 10, 20)),
    # Never seen before this run, no form date: its modification time (14/10) is not
    # evidence; this run (25/10) is the first time its content was seen.
    ("a07.xlsx", "A07", True, None, None, None),
    ("a08.xlsx", "A08", True, None, dt.datetime(2025, 10, 12, 10, 0), dt.date(2025, 10, 11)),
    ("khong-ro.xlsx", None, False, None, dt.datetime(2025, 10, 11, 10, 0), None),
]
A07_MTIME = dt.datetime(2025, 10, 14, 11, 0)
RUN_DATE = dt.date(2025, 10, 25)

# unit, state, arrival, file, days late (for a unit that sent nothing: days since the due day
# as of the run date), what the arrival is based on
EXPECTED = [
    ("A01", ON_TIME, dt.datetime(2025, 10, 10, 8, 30), "a01.xlsx", 0, "seen"),
    ("A02", ON_TIME, dt.datetime(2025, 10, 15, 23, 59), "a02.xlsx", 0, "seen"),
    ("A03", LATE, dt.datetime(2025, 10, 16), "a03.xlsx", 1, "form"),
    ("A04", MISSING, None, None, 10, None),
    ("A05", INVALID, dt.datetime(2025, 10, 20, 7, 0), "a05.xlsx", 5, "seen"),
    ("A06", LATE, dt.datetime(2025, 10, 17, 16, 45), "a06-moi.xlsx", 2, "seen"),
    ("A07", LATE, dt.datetime(2025, 10, 25), "a07.xlsx", 10, "seen"),
    ("A08", INVALID, dt.datetime(2025, 10, 11), "a08.xlsx", 0, "form"),
]


def _units(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["unit_code", "unit_name", "level", "block", "status"])
    return frame.set_index("unit_code")


def _result(units: pd.DataFrame, submissions: list) -> SimpleNamespace:
    return SimpleNamespace(units=units, submissions=submissions, office=OFFICE,
                           school_year="2025-2026", run_date=RUN_DATE)


@pytest.fixture
def sample(tmp_path) -> tuple[SimpleNamespace, dict[str, dt.datetime]]:
    """The fake consolidation and when each file was first seen (a07.xlsx: never before)."""
    submissions, arrivals = [], {}
    for name, unit, counted, newer, arrived, form_date in FILES:
        path = tmp_path / "hop-thu" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"")
        if arrived is None:
            os.utime(path, (A07_MTIME.timestamp(), A07_MTIME.timestamp()))
        else:
            arrivals[name] = arrived
        submissions.append(SimpleNamespace(file=name, path=path, unit_code=unit,
                                           counted=counted, superseded_by=newer,
                                           report_date=form_date,
                                           mtime_ns=int(A07_MTIME.timestamp() * 1e9)))
    return _result(_units(UNITS), submissions), arrivals


def test_completeness_columns_and_order(sample):
    table = completeness(sample[0], DUE, sample[1])
    assert list(table.columns) == ["unit_code", "unit_name", "level", "block", "state",
                                   "arrived", "basis", "file", "days_late"]
    assert table["unit_code"].tolist() == [u[0] for u in UNITS]
    assert table["unit_name"].tolist() == [u[1] for u in UNITS]


@pytest.mark.parametrize("unit, state, arrived, file, days_late, basis", EXPECTED)
def test_completeness_states(sample, unit, state, arrived, file, days_late, basis):
    result, arrivals = sample
    row = completeness(result, DUE, arrivals).set_index("unit_code").loc[unit]
    assert row["state"] == state
    assert row["arrived"] == arrived if arrived else row["arrived"] is None
    assert row["file"] == file if file else row["file"] is None
    assert isinstance(row["days_late"], int | np.integer)
    assert row["days_late"] == days_late
    assert row["basis"] == basis


def test_completeness_saved_a_week_late_is_not_late(sample):
    """E-mail attachments saved into the inbox a week after they came: the forms' dates
    decide, not when the files were saved or first seen."""
    result, _ = sample
    saved = {s.file: dt.datetime(2025, 10, 22, 9, 0) for s in result.submissions}
    for sub in result.submissions:
        sub.report_date = dt.date(2025, 10, 14)
    table = completeness(result, DUE, saved).set_index("unit_code")
    assert set(table["state"]) == {ON_TIME, MISSING, INVALID}
    assert (table.loc[table["state"] == ON_TIME, "days_late"] == 0).all()


def test_completeness_arrival_keyed_by_base_name(sample):
    result, arrivals = sample
    sub = next(s for s in result.submissions if s.unit_code == "A01")
    sub.file = "dot-1/a01.xlsx"
    table = completeness(result, DUE, arrivals).set_index("unit_code")
    assert table.loc["A01", "arrived"] == dt.datetime(2025, 10, 10, 8, 30)


def test_completeness_timezone_aware_arrivals(sample):
    result, _ = sample
    tz = dt.timezone(dt.timedelta(hours=7))
    arrivals = {"a01.xlsx": dt.datetime(2025, 10, 16, 0, 5, tzinfo=tz)}
    table = completeness(result, DUE, arrivals).set_index("unit_code")
    assert (table.loc["A01", "state"], table.loc["A01", "days_late"]) == (LATE, 1)


@pytest.mark.parametrize("key, expected", [
    ("level", {"mn": (2, 0, 0, 0), "th": (0, 1, 1, 1), "thcs": (0, 2, 0, 1)}),
    ("block", {"Khối Mầm non": (2, 0, 0, 0), "Khối Tiểu học": (0, 1, 0, 1),
               "(chưa xếp)": (0, 0, 1, 0), "Khối THCS": (0, 2, 0, 1)}),
])
def test_completeness_summary(sample, key, expected):
    table = completeness(sample[0], DUE, sample[1])
    summary = completeness_summary(table, key).set_index(key)
    assert list(summary.index) == list(expected)
    for group, counts in expected.items():
        row = summary.loc[group]
        assert tuple(row[STATE_KEYS[s]] for s in STATES) == counts
        assert row["total"] == sum(counts)
        assert row["on_time_share"] == pytest.approx(counts[0] / sum(counts))


def _table_rows(ws, first: set[str]) -> tuple[list[str], list[tuple], tuple | None]:
    """Header, body rows and totals row of a table sheet whose header starts with `first`."""
    rows = list(ws.iter_rows(values_only=True))
    head = next(i for i, r in enumerate(rows) if r[0] in first)
    body, totals = [], None
    for row in rows[head + 1:]:
        if row[0] is None:
            break
        if row[0] == "Tổng cộng":
            totals = row
            break
        body.append(row)
    return list(rows[head]), body, totals


def test_write_completeness_workbook(sample, tmp_path):
    result, arrivals = sample
    table = completeness(result, DUE, arrivals)
    path = write_completeness(table, result, DUE, tmp_path / PROGRESS_FILE, "Đăng ký thi đua")
    assert path == tmp_path / PROGRESS_FILE
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Theo đơn vị", "Theo cấp học", "Theo khối thi đua"]

    ws = book["Theo đơn vị"]
    assert "ĐĂNG KÝ THI ĐUA" in ws["A5"].value
    assert "15/10/2025" in ws["A6"].value and "2025-2026" in ws["A6"].value
    header, body, _ = _table_rows(ws, {"STT", "Mã đơn vị"})
    assert header[:2] == ["STT", "Mã đơn vị"]
    col = {name: i for i, name in enumerate(header)}
    assert [r[0] for r in body] == list(range(1, len(UNITS) + 1))
    got = [(r[col["Mã đơn vị"]], r[col["Tình trạng"]], r[col["Thời điểm nhận"]],
            r[col["Tệp đã nhận"]], r[col["Số ngày muộn"]], r[col["Căn cứ thời điểm nhận"]])
           for r in body]
    words = {ON_TIME: "Đúng hạn", LATE: "Nộp muộn", MISSING: "Chưa nộp", INVALID: "Không hợp lệ"}
    bases = {"form": "Ngày lập ghi trên biểu mẫu", "seen": "Lần đầu thấy tệp trong hộp thư",
             None: None}
    assert got == [(code, words[state], *rest, bases[basis])
                   for code, state, *rest, basis in EXPECTED]
    late_rows = [i for i, r in enumerate(body) if r[col["Tình trạng"]] == "Nộp muộn"]
    head_row = next(c.row for c in ws["A"] if c.value == "STT")
    for i, _ in enumerate(body):
        fill = ws.cell(head_row + 1 + i, 1).fill.fgColor.rgb
        assert (fill == "FFFFC7CE") == (i in late_rows)

    for sheet, key, label in [("Theo cấp học", "level", "Cấp học"),
                              ("Theo khối thi đua", "block", "Khối thi đua")]:
        ws = book[sheet]
        assert "15/10/2025" in ws["A6"].value
        header, body, totals = _table_rows(ws, {label})
        assert header == [label, "Đúng hạn", "Nộp muộn", "Chưa nộp", "Không hợp lệ",
                          "Tổng số đơn vị", "Tỉ lệ đúng hạn"]
        summary = completeness_summary(table, key)
        assert [r[:6] for r in body] == [
            (r[key], *(int(r[STATE_KEYS[s]]) for s in STATES), int(r["total"]))
            for _, r in summary.iterrows()]
        counts = table["state"].value_counts()
        assert list(totals[1:6]) == [int(counts.get(s, 0)) for s in STATES] + [len(UNITS)]
        assert totals[6] == pytest.approx(counts[ON_TIME] / len(UNITS))


def test_write_completeness_without_units(tmp_path):
    result = _result(_units([]), [])
    table = completeness(result, DUE, {})
    assert table.empty
    path = write_completeness(table, result, DUE, tmp_path / PROGRESS_FILE, "Kết quả")
    assert openpyxl.load_workbook(path).sheetnames[0] == "Theo đơn vị"


_LEVELS = ["mn", "th", "thcs"]
_KINDS = ["none", "on_time", "late", "rejected", "superseded"]


@given(st.lists(st.tuples(st.sampled_from(_LEVELS), st.sampled_from(_KINDS),
                          st.integers(-20, 20)), max_size=30))
def test_state_counts_add_up_to_registry_units(units):
    rows, submissions, arrivals = [], [], {}
    for i, (level, kind, offset) in enumerate(units):
        code = f"U{i:02d}"
        rows.append((code, f"Trường {i}", level, f"Khối {level}", "valid"))
        if kind == "none":
            continue
        when = dt.datetime.combine(DUE + dt.timedelta(days=offset), dt.time(9))
        name = f"{code}.xlsx"
        arrivals[name] = when
        submissions.append(SimpleNamespace(file=name, path=Path("/nonexistent") / name,
                                           unit_code=code, counted=kind != "rejected",
                                           superseded_by=None))
        if kind == "superseded":
            arrivals[f"{code}-cu.xlsx"] = when - dt.timedelta(days=30)
            submissions.append(SimpleNamespace(file=f"{code}-cu.xlsx", path=Path("/x"),
                                               unit_code=code, counted=False,
                                               superseded_by=name))
    table = completeness(_result(_units(rows), submissions), DUE, arrivals)
    assert len(table) == len(units)
    summary = completeness_summary(table, "level")
    assert summary["total"].sum() == len(units)
    assert (summary[[STATE_KEYS[s] for s in STATES]].sum(axis=1) == summary["total"]).all()
    for state in STATES:
        assert summary[STATE_KEYS[state]].sum() == (table["state"] == state).sum()
    assert (table["days_late"] >= 0).all()
    assert ((table["state"] == LATE) == (table["days_late"].gt(0)
                                         & table["state"].isin([ON_TIME, LATE]))).all()


def test_completeness_of_the_sample_consolidation(sample_run):
    result, _ = sample_run
    table = completeness(result, DUE, {}).set_index("unit_code")
    status = result.units["status"]
    assert list(table.index) == list(result.units.index)
    assert ((table["state"] == MISSING) == (status == "missing")).all()
    assert (table.loc[status == "invalid", "state"] == INVALID).all()
    for code, sub in result.chosen.items():
        assert table.loc[code, "file"] == sub.file
