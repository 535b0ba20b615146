"""`tdkt run`: the month-end job — consolidate every round due or open, report who is late or
missing, and email the summaries and each school's feedback, once."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import settings
from pipeline.config import Config
from pipeline.engine import append_run_log, consolidate, held_lock
from pipeline.findings import Severity
from pipeline.monthly.calendar import due_date, load_calendar, rounds_for_period
from pipeline.monthly.deliver import Outgoing, Report, deliver, smtp_settings
from pipeline.reports.completeness import completeness, write_completeness
from pipeline.rounds.base import RoundResult as Consolidation
from pipeline.status import UnitStatus, label
from pipeline.store.archive import archive_inbox
from pipeline.store.database import Store

RUN_LOCK = ".tdkt-run.lock"


@dataclass
class RoundRun:
    """One round consolidated by the month-end job."""

    round: str
    label: str
    state: str  # "due" | "open"
    due: dt.date
    result: Consolidation
    report: Path
    changes: dict[str, list[str]]
    moved: dict[str, tuple[int, int]]


@dataclass
class MonthRun:
    """Everything one `tdkt run` did."""

    period: str
    rounds: list[RoundRun] = field(default_factory=list)
    delivery: Report | None = None
    log: Path | None = None


def run_lock(out: Path) -> contextlib.AbstractContextManager[None]:
    """One month-end job at a time (a separate lock from the per-round output lock)."""
    return held_lock(out / RUN_LOCK)


def changes_since(before: dict[str, str], result: Consolidation) -> dict[str, list[str]]:
    """Submissions new, replaced (same name, new content) and withdrawn since the last run."""
    now = {s.file: s.sha256 for s in result.submissions}
    return {"new": sorted(set(now) - set(before)),
            "replaced": sorted(f for f in set(now) & set(before) if now[f] != before[f]),
            "withdrawn": sorted(set(before) - set(now))}


def _counts(result: Consolidation) -> dict[str, int]:
    return result.units["status"].value_counts().to_dict()


def _body(run: RoundRun) -> str:
    units = run.result.units
    late = run.result.units.index[units["status"] == UnitStatus.MISSING].tolist()
    lines = ["Kính gửi,", "",
             f"{run.label} năm học {run.result.school_year} (hạn {run.due:%d/%m/%Y}):",
             f"- Đơn vị trong danh mục: {len(units)}; đã nộp: {int(units['submitted'].sum())}; "
             f"chưa nộp: {len(late)}.",
             f"- Lỗi: {len(run.result.errors)}; cảnh báo: "
             f"{len(run.result.findings) - len(run.result.errors)}."]
    if late:
        names = [f"{c} {units.loc[c, 'unit_name']}" for c in late]
        lines.append("- Chưa nộp: " + "; ".join(names) + ".")
    changed = run.changes
    lines.append(f"- Từ lần chạy trước: {len(changed['new'])} tệp mới, "
                 f"{len(changed['replaced'])} tệp thay thế, {len(changed['withdrawn'])} tệp "
                 "rút khỏi hộp thư.")
    moved = {label(UnitStatus(status)): counts for status, counts in run.moved.items()}
    for status, (old, new) in sorted(moved.items()):
        if old != new:
            lines.append(f"- {status}: {old} → {new}.")
    lines += ["", "Bảng tổng hợp và báo cáo tiến độ gửi kèm.", "", "tdkt"]
    return "\n".join(lines)


def _school_body(result: Consolidation, code: str) -> str:
    mine = [f for f in result.findings if f.unit == code]
    errors = [f for f in mine if f.severity is Severity.ERROR]
    lines = [f"Kính gửi {result.units.loc[code, 'unit_name']},", "",
             f"Phòng đã nhận và kiểm tra tệp của đơn vị. Có {len(errors)} lỗi cần sửa và "
             f"{len(mine) - len(errors)} cảnh báo:", ""]
    lines += [f"- {f.message} Cách sửa: {f.hint}" for f in mine[:50]]
    if len(mine) > 50:
        lines.append(f"- … và {len(mine) - 50} mục khác trong tệp phản hồi gửi kèm.")
    lines += ["", "Đơn vị sửa ngay trên tệp của mình (các ô lỗi được tô màu trong tệp phản hồi "
              "gửi kèm) rồi gửi lại cho Phòng.", "", "tdkt"]
    return "\n".join(lines)


def messages(month: MonthRun, config: Config) -> list[Outgoing]:
    """The summaries for the Phòng and the Sở, and each school's feedback when it has findings."""
    items: list[Outgoing] = []
    for run in month.rounds:
        result, out_dir = run.result, run.result.out_dir
        subject = f"[TĐKT] {run.label} năm học {result.school_year} — tổng hợp {month.period}"
        body = _body(run)
        for who, files in (("phong", ("tong-hop-phong.xlsx",)), ("so", ("tong-hop-so.xlsx",))):
            to = tuple(config.recipients.get(who, ()))
            if to:
                attachments = (*(out_dir / f for f in files), run.report)
                items.append(Outgoing(f"{month.period}/{run.round}/{who}", to, subject, body,
                                      attachments))
        emails = result.units.get("email")
        for code in sorted({f.unit for f in result.findings if f.unit}):
            address = emails.get(code) if emails is not None else None
            feedback = out_dir / settings.FEEDBACK_DIR / f"{code}.xlsx"
            if isinstance(address, str) and address and feedback.is_file():
                items.append(Outgoing(
                    f"{month.period}/{run.round}/phan-hoi/{code}", (address,),
                    f"[TĐKT] Phản hồi {run.label.lower()} — {result.units.loc[code, 'unit_name']}",
                    _school_body(result, code), (feedback,)))
    return items


def run_month(config: Config, out: Path, period: str, *, dry_run: bool = False,
              store: Path | None = None, now: dt.datetime | None = None) -> MonthRun:
    """The whole month-end job; the same consolidation as `tdkt consolidate`."""
    now = now or dt.datetime.now().astimezone()
    calendar = load_calendar(config.calendar)
    store_path = store or config.store or out / settings.STORE_FILE
    month = MonthRun(period=period)
    with run_lock(out):
        for deadline, school_year, state in rounds_for_period(calendar, period):
            inbox = config.inboxes.get(deadline.round)
            if inbox is None or not inbox.is_dir():
                continue
            year_config = config if school_year == config.school_year else \
                _with_year(config, school_year)
            with Store.open(store_path) as history:
                before = history.round_inputs(school_year, deadline.round)
                counts = history.unit_status_counts(school_year, deadline.round)  # codes
                arrivals = archive_inbox(history, inbox, out / "luu-tru", now)
            result = consolidate(inbox, out, year_config, round=deadline.round,
                                 registration_inbox=config.inboxes.get("dang-ky"),
                                 store=store_path)
            due = due_date(deadline, school_year)
            table = completeness(result, due, arrivals)
            report = out / school_year / "tien-do" / f"{period}_{deadline.round}.xlsx"
            report.parent.mkdir(parents=True, exist_ok=True)
            partial = report.with_name(report.stem + ".part.xlsx")
            write_completeness(table, result, due, partial, deadline.label)
            os.replace(partial, report)
            after = _counts(result)
            moved = {k: (counts.get(k, 0), after.get(k, 0)) for k in set(counts) | set(after)}
            month.rounds.append(RoundRun(deadline.round, deadline.label, state, due, result,
                                         report, changes_since(before, result), moved))
        smtp = smtp_settings(config.smtp, config.path.parent if config.path else out) \
            if config.smtp and not dry_run else None
        with Store.open(store_path) as history:
            outbox = out / "thu-gui" / period if dry_run else None
            month.delivery = deliver(messages(month, config), smtp, history, dry_run_dir=outbox)
        month.log = _log(out, month, dry_run, now)
    return month


def _with_year(config: Config, school_year: str) -> Config:
    from dataclasses import replace
    return replace(config, school_year=school_year)


def _log(out: Path, month: MonthRun, dry_run: bool, now: dt.datetime) -> Path:
    """One JSON line per run in the run log."""
    delivery = month.delivery
    entry = {"at": now.isoformat(timespec="seconds"), "command": "run", "period": month.period,
             "dry_run": dry_run,
             "rounds": [{"round": r.round, "school_year": r.result.school_year,
                         "state": r.state, "files": len(r.result.submissions),
                         "errors": len(r.result.errors), "changes": r.changes}
                        for r in month.rounds],
             "sent": len(delivery.sent) if delivery else 0,
             "skipped": len(delivery.skipped) if delivery else 0,
             "failed": len(delivery.failed) if delivery else 0,
             "written": len(delivery.written) if delivery else 0}
    return append_run_log(out, entry)
