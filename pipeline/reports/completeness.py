"""Who has sent the round's file, on time or late, and who has not: one row per registry unit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.reports.workbook import Col, Letterhead, ReportBook, txt
from pipeline.status import Arrival, UnitStatus, label

ON_TIME, LATE, MISSING, INVALID = Arrival.ON_TIME, Arrival.LATE, Arrival.MISSING, Arrival.INVALID
STATES = tuple(Arrival)
# Summary column of each state: its code.
STATE_KEYS = {state: state.value for state in STATES}
PROGRESS_FILE = "bao-cao-tien-do.xlsx"
NO_GROUP = "(chưa xếp)"  # a unit without a level or block in the registry
COLUMNS = ["unit_code", "unit_name", "level", "block", "state", "arrived", "file", "days_late"]


def _mtime(sub: Any) -> dt.datetime | None:
    """The file's modification time, as local time."""
    ns = getattr(sub, "mtime_ns", 0)
    if ns:
        return dt.datetime.fromtimestamp(ns / 1e9)
    path = getattr(sub, "path", None)
    try:
        return dt.datetime.fromtimestamp(Path(path).stat().st_mtime) if path else None
    except OSError:
        return None


def arrival(sub: Any, arrivals: Mapping[str, dt.datetime]) -> dt.datetime | None:
    """When a file arrived: `arrivals` by its inbox name (or base name), else its mtime."""
    for name in (sub.file, Path(sub.file).name):
        if name in arrivals and arrivals[name] is not None:
            return arrivals[name]
    return _mtime(sub)


def _chosen(subs: list[Any], arrivals: Mapping[str, dt.datetime]) -> Any | None:
    """The unit's counted file, else its newest file not superseded, else its newest file."""
    if not subs:
        return None
    pool = ([s for s in subs if s.counted] or [s for s in subs if s.superseded_by is None]
            or subs)

    def newest(sub: Any) -> tuple:
        when = arrival(sub, arrivals)
        stamp = when.timestamp() if when is not None else float("-inf")
        return (stamp, sub.file)

    return max(pool, key=newest)


def completeness(result, due: dt.date, arrivals: Mapping[str, dt.datetime]) -> pd.DataFrame:
    """One row per registry unit: on time, late, missing or invalid, with its file's arrival.

    Invalid: the unit's file is not counted or the unit table marks it "Không hợp lệ".
    Late: it arrived after the due day. `days_late` counts days after `due` (0 when on time
    and when nothing arrived).
    """
    by_unit: dict[str, list[Any]] = {}
    for sub in result.submissions:
        if sub.unit_code:
            by_unit.setdefault(sub.unit_code, []).append(sub)
    rows = []
    for code, unit in result.units.iterrows():
        sub = _chosen(by_unit.get(code, []), arrivals)
        arrived = arrival(sub, arrivals) if sub is not None else None
        late = max(0, (arrived.date() - due).days) if arrived is not None else 0
        if sub is None:
            state = MISSING
        elif not sub.counted or unit.get("status") == UnitStatus.INVALID:
            state = INVALID
        else:
            state = LATE if late else ON_TIME
        rows.append({"unit_code": code, "unit_name": unit.get("unit_name"),
                     "level": unit.get("level"), "block": unit.get("block"), "state": state,
                     "arrived": arrived, "file": sub.file if sub is not None else None,
                     "days_late": late})
    table = pd.DataFrame(rows, columns=COLUMNS)
    for key in ("arrived", "file"):  # None stays None, not NaT / NaN
        table[key] = pd.Series([r[key] for r in rows], index=table.index, dtype=object)
    table["days_late"] = table["days_late"].astype(int)
    return table


def completeness_summary(table: pd.DataFrame, key: str) -> pd.DataFrame:
    """Units of each state per level or block (first-seen order), with a total and the
    share sent on time."""
    groups = table[key].where(table[key].notna() & (table[key] != ""), NO_GROUP)
    counts = pd.crosstab(groups, table["state"]).reindex(
        index=list(dict.fromkeys(groups)), columns=list(STATES), fill_value=0)
    summary = counts.rename(columns=STATE_KEYS).astype(int)
    summary["total"] = summary.sum(axis=1)
    summary["on_time_share"] = summary["on_time"] / summary["total"].where(summary["total"] > 0)
    summary.index.name, summary.columns.name = key, None
    return summary.reset_index()


def _summary_cols(key: str, header: str) -> list[Col]:
    return [Col(key, header, 18),
            *(Col(STATE_KEYS[s], label(s), 11, "int", total=True) for s in STATES),
            Col("total", "Tổng số đơn vị", 11, "int", total=True),
            Col("on_time_share", "Tỉ lệ đúng hạn", 11, "pct", total_from=("on_time", "total"))]


_UNIT_COLS = [Col("seq", txt("seq"), 5, "int"), Col("unit_code", txt("unit_code"), 10),
              Col("unit_name", txt("unit_name"), 30), Col("level", txt("level"), 9),
              Col("block", txt("block"), 15), Col("state", txt("status"), 13),
              Col("arrived", "Thời điểm nhận", 17, "date"), Col("file", "Tệp đã nhận", 24),
              Col("days_late", "Số ngày muộn", 9, "int")]


def write_completeness(table: pd.DataFrame, result, due: dt.date, path: Path,
                       round_label: str) -> Path:
    """The progress workbook (normally named PROGRESS_FILE): units, then counts per level
    and per khối; late rows in red. Returns `path`."""
    counts = table["state"].value_counts()
    subtitle = (f"Năm học {result.school_year} — hạn nộp {due:%d/%m/%Y} — số liệu đến ngày "
                f"{result.run_date:%d/%m/%Y}")
    notes = [f"Tổng số {len(table)} đơn vị: " + ", ".join(
        f"{label(s).lower()} {int(counts.get(s, 0))}" for s in STATES) + ".",
        "Thời điểm nhận là lúc tệp đến hộp thư; không có thông tin đó thì lấy thời điểm "
        "sửa tệp."]
    units = table.reset_index(drop=True)
    late = units["state"] == LATE
    units["state"] = units["state"].map(label)
    units.insert(0, "seq", range(1, len(units) + 1))
    title = f"TIẾN ĐỘ NỘP HỒ SƠ: {round_label.upper()}"
    letterhead = Letterhead.of(result.office, result.run_date)
    with ReportBook(path, letterhead, f"Tiến độ nộp hồ sơ: {round_label}") as book:
        book.table_sheet(txt("sheet_by_unit"), title, units, _UNIT_COLS, subtitle=subtitle,
                         notes=notes, highlight=late)
        for name, key in [(txt("sheet_by_level"), "level"), (txt("sheet_by_block"), "block")]:
            book.table_sheet(name, f"{title} — {name.upper()}",
                             completeness_summary(table, key), _summary_cols(key, txt(key)),
                             subtitle=subtitle)
    return Path(path)
