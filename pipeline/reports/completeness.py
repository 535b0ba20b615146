"""Who has sent the round's file, on time or late, and who has not: one row per registry unit.

When a file arrived: the date the unit wrote on its form ("Ngày lập", `report_date`) unless that
is after the first time tdkt saw the file's content (the input archive's first-seen time, or this
run when the content is new); never the file's modification time, which is when the office saved
it, not when the school sent it.

A Sở's round expects a file from each commune's office (its report, which has no form date: its
arrival is the archive's first sighting) and from each school the Sở manages itself: the table
then has one row per office, then per direct school, with its kind and e-mail
(`province_completeness`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import replace
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
COLUMNS = ["unit_code", "unit_name", "level", "block", "state", "arrived", "basis", "file",
           "days_late"]
# What an arrival time is based on.
FORM, SEEN = "form", "seen"
BASIS_LABELS = {FORM: "Ngày lập ghi trên biểu mẫu", SEEN: "Lần đầu thấy tệp trong hộp thư"}
# Who sends a Sở's round its file: a commune's office (its report) or a direct school.
KIND, EMAIL = "kind", "email"
OFFICE_KIND, DIRECT_KIND = "office", "direct"


def _form_date(sub: Any) -> dt.date | None:
    value = getattr(sub, "report_date", None)
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else None


def arrival(sub: Any, seen: Mapping[str, dt.datetime],
            first_look: dt.datetime | None = None) -> tuple[dt.datetime | None, str | None]:
    """When a file arrived and what says so: its form date ("form") unless that is after the
    first time its content was seen (`seen`, by inbox name or base name; `first_look` for a
    file not in it, normally this run), else that first sighting ("seen")."""
    first = next((seen[name] for name in (sub.file, Path(sub.file).name)
                  if seen.get(name) is not None), first_look)
    form = _form_date(sub)
    if form is not None and (first is None or form <= first.date()):
        return dt.datetime.combine(form, dt.time()), FORM
    return first, SEEN if first is not None else None


def _chosen(subs: list[Any], arrivals: Mapping[str, dt.datetime]) -> Any | None:
    """The unit's counted file, else its newest file not superseded, else its newest file."""
    if not subs:
        return None
    pool = ([s for s in subs if s.counted] or [s for s in subs if s.superseded_by is None]
            or subs)

    def newest(sub: Any) -> tuple:
        when = arrivals.get(sub.file) or arrivals.get(Path(sub.file).name)
        stamp = when.timestamp() if when is not None else float("inf")  # new in this run
        return (stamp, sub.file)

    return max(pool, key=newest)


def completeness(result, due: dt.date, arrivals: Mapping[str, dt.datetime]) -> pd.DataFrame:
    """One row per registry unit: on time, late, missing or invalid, with its file's arrival
    (see `arrival`; `arrivals` are the first-seen times of the inbox files, a file missing
    from it is seen for the first time on the run date).

    Invalid: the unit's file is not counted or the unit table marks it "Không hợp lệ".
    Late: it arrived after the due day. `days_late` counts days after `due`: of the arrival,
    or, for a unit that sent nothing, of the run date (0 when on time or not yet due).
    """
    by_unit: dict[str, list[Any]] = {}
    for sub in result.submissions:
        if sub.unit_code:
            by_unit.setdefault(sub.unit_code, []).append(sub)
    first_look = dt.datetime.combine(result.run_date, dt.time())
    overdue = max(0, (result.run_date - due).days)
    rows = []
    for code, unit in result.units.iterrows():
        sub = _chosen(by_unit.get(code, []), arrivals)
        arrived, basis = arrival(sub, arrivals, first_look) if sub is not None else (None, None)
        late = max(0, (arrived.date() - due).days) if arrived is not None else overdue
        if sub is None:
            state = MISSING
        elif not sub.counted or unit.get("status") == UnitStatus.INVALID:
            state = INVALID
        else:
            state = LATE if late else ON_TIME
        rows.append({"unit_code": code, "unit_name": unit.get("unit_name"),
                     "level": unit.get("level"), "block": unit.get("block"), "state": state,
                     "arrived": arrived, "basis": basis,
                     "file": sub.file if sub is not None else None, "days_late": late})
    table = pd.DataFrame(rows, columns=COLUMNS)
    for key in ("arrived", "basis", "file"):  # None stays None, not NaT / NaN
        table[key] = pd.Series([r[key] for r in rows], index=table.index, dtype=object)
    table["days_late"] = table["days_late"].astype(int)
    return table


def province_completeness(result, due: dt.date, arrivals: Mapping[str, dt.datetime]
                          ) -> pd.DataFrame:
    """`completeness` of a Sở's round: one row per office of the Sở's registry (its report),
    then per direct school (its file), each with its kind (OFFICE_KIND, DIRECT_KIND) and the
    e-mail the registry gives it (None when it gives none). An office's level and khối are
    empty; its state follows its report's status (another year or round: invalid)."""
    columns = ["unit_name", "level", "block", "status", EMAIL, KIND]
    offices = result.offices.rename(columns={"office_name": "unit_name"}).assign(
        level="", block="", **{KIND: OFFICE_KIND})
    direct = result.direct.units.assign(**{KIND: DIRECT_KIND})
    both = pd.concat([offices.reindex(columns=columns), direct.reindex(columns=columns)])
    table = completeness(replace(result, units=both), due, arrivals)
    table[KIND] = both[KIND].to_list()
    table[EMAIL] = pd.Series([e.strip() if isinstance(e, str) and e.strip() else None
                              for e in both[EMAIL]], index=table.index, dtype=object)
    return table


def first_sightings(store: Any, submissions: Iterable[Any]) -> dict[str, dt.datetime]:
    """File name → when the input archive first saw its content, for the submissions whose
    content it holds (`store`: the history store; a file it never archived is left out, so
    `completeness` takes the run date for it)."""
    found = {}
    for sub in submissions:
        seen = store.first_seen(sub.sha256) if getattr(sub, "sha256", None) else None
        if seen is not None:
            when = dt.datetime.fromisoformat(seen)
            found[sub.file] = when if when.tzinfo is not None else when.astimezone()
    return found


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
              Col("arrived", "Thời điểm nhận", 17, "date"),
              Col("basis", "Căn cứ thời điểm nhận", 22), Col("file", "Tệp đã nhận", 24),
              Col("days_late", "Số ngày muộn", 9, "int")]


def _kind_labels() -> dict[str, str]:
    return {OFFICE_KIND: txt("offices_kind"), DIRECT_KIND: txt("direct_units")}


def _province_unit_cols() -> list[Col]:
    """The unit table of a Sở's progress workbook: who sent (office or direct school), its
    e-mail from the Sở's registry."""
    cols = [Col("seq", txt("seq"), 5, "int"), Col("unit_code", txt("office_code"), 9),
            Col("unit_name", txt("office_name"), 32), Col(KIND, txt("sender_kind"), 14),
            *(c for c in _UNIT_COLS if c.key in ("level", "block", "state", "arrived", "basis",
                                                  "file", "days_late")),
            Col(EMAIL, "Thư điện tử", 26, printed=False)]
    return cols


def write_completeness(table: pd.DataFrame, result, due: dt.date, path: Path,
                       round_label: str) -> Path:
    """The progress workbook (normally named PROGRESS_FILE): units, then counts per level
    and per khối; late rows in red. A Sở's table (`province_completeness`) adds each row's
    kind and e-mail and a count per kind; its level and khối counts are the direct
    schools'. Returns `path`."""
    province = KIND in table.columns
    counts = table["state"].value_counts()
    subtitle = (f"Năm học {result.school_year} — hạn nộp {due:%d/%m/%Y} — số liệu đến ngày "
                f"{result.run_date:%d/%m/%Y}")
    notes = [f"Tổng số {len(table)} đơn vị: " + ", ".join(
        f"{label(s).lower()} {int(counts.get(s, 0))}" for s in STATES) + ".",
        "Thời điểm nhận là ngày lập ghi trên biểu mẫu, trừ khi ngày đó sau lần đầu chương "
        "trình thấy tệp trong hộp thư (khi đó lấy lần đầu thấy tệp); không dùng thời điểm "
        "sửa tệp.",
        f"Số ngày muộn của đơn vị chưa nộp tính đến ngày {result.run_date:%d/%m/%Y}."]
    if province:
        notes.insert(2, "Báo cáo của Phòng Văn hóa – Xã hội không có ngày lập: thời điểm nhận "
                        "là lần đầu chương trình thấy tệp.")
    units = table.reset_index(drop=True)
    late = units["state"] == LATE
    units["state"] = units["state"].map(label)
    units["basis"] = units["basis"].map(lambda b: BASIS_LABELS.get(b) if b else None)
    units.insert(0, "seq", range(1, len(units) + 1))
    summaries = [(txt("sheet_by_level"), "level", table), (txt("sheet_by_block"), "block", table)]
    cols = _UNIT_COLS
    if province:
        kinds = _kind_labels()
        units[KIND] = units[KIND].map(kinds)
        direct = table[table[KIND] == DIRECT_KIND]
        summaries = [("Theo loại", KIND, table.assign(**{KIND: table[KIND].map(kinds)})),
                     *((name, key, direct) for name, key, _ in summaries if len(direct))]
        cols = _province_unit_cols()
    what = "BÁO CÁO, HỒ SƠ" if province else "HỒ SƠ"
    title = f"TIẾN ĐỘ NỘP {what}: {round_label.upper()}"
    letterhead = Letterhead.of(result.office, result.run_date)
    with ReportBook(path, letterhead, f"Tiến độ nộp {what.lower()}: {round_label}") as book:
        book.table_sheet(txt("sheet_by_unit"), title, units, cols, subtitle=subtitle,
                         notes=notes, highlight=late)
        for name, key, rows in summaries:
            header = txt("sender_kind") if key == KIND else txt(key)
            book.table_sheet(name, f"{title} — {name.upper()}",
                             completeness_summary(rows, key), _summary_cols(key, header),
                             subtitle=subtitle)
    return Path(path)
