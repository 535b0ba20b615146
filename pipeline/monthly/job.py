"""`tdkt run`: the month-end job — consolidate every round open, due or still picking up late
files, report who is late or missing, mail the Phòng its summary and each school its feedback,
and mail the Sở what the Phòng approved (`tdkt approve`), each message once.

With a Sở's configuration the job runs the Sở's round of each phase the calendar names
(`tinh-dang-ky`, `tinh-ket-qua`, as `tdkt consolidate` does), reports which offices and direct
schools sent on time, late, nothing or something invalid, mails the Sở its summary, each
commune office and each direct school with findings its feedback; nothing goes further up (the
Sở approves nothing for a higher office in tdkt)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from pipeline import settings
from pipeline.config import Config, ConfigError, Office
from pipeline.engine import append_run_log, consolidate, held_lock
from pipeline.findings import Severity
from pipeline.monthly.approval import Approval, approval_of
from pipeline.monthly.calendar import (
    AFTER,
    DUE,
    Deadline,
    due_date,
    load_calendar,
    rounds_for_period,
    school_year_of,
)
from pipeline.monthly.deliver import Outgoing, Report, deliver, smtp_settings
from pipeline.reports.completeness import (
    DIRECT_KIND,
    KIND,
    OFFICE_KIND,
    completeness,
    province_completeness,
    write_completeness,
)
from pipeline.reports.province import PROVINCE_SUMMARY
from pipeline.reports.registration import OFFICE_FILE, PROVINCE_FILE
from pipeline.rounds.base import RoundResult as Consolidation
from pipeline.rounds.province import ProvinceResult, round_for
from pipeline.status import Arrival, UnitStatus, label
from pipeline.store.archive import archive_inbox
from pipeline.store.database import Store
from pipeline.text import clean, fold

RUN_LOCK = ".tdkt-run.lock"
STATE_LABELS = {"open": "đang mở", DUE: "đến hạn", AFTER: "quá hạn, vẫn nhận tệp nộp muộn"}


@dataclass
class RoundRun:
    """One round consolidated by the month-end job."""

    round: str
    label: str
    state: str  # "open" | "due" | "after"
    due: dt.date
    result: Consolidation
    report: Path
    changes: dict[str, list[str]]
    moved: dict[str, tuple[int, int]]
    approval: Approval | None = None
    # Who sent what (pipeline.reports.completeness): the table the progress report shows.
    progress: pd.DataFrame | None = None


@dataclass(frozen=True)
class ProvinceMail:
    """An approved round whose approved copy goes to the Sở."""

    deadline: Deadline
    approval: Approval


@dataclass
class MonthRun:
    """Everything one `tdkt run` did."""

    period: str
    rounds: list[RoundRun] = field(default_factory=list)
    approved: list[ProvinceMail] = field(default_factory=list)
    delivery: Report | None = None
    log: Path | None = None
    province: bool = False  # a Sở's run: nothing awaits an approval for a higher office


def run_lock(out: Path) -> contextlib.AbstractContextManager[None]:
    """One month-end job at a time (a separate lock from the per-round output lock)."""
    return held_lock(out / RUN_LOCK)


def store_file(config: Config, out: Path, store: Path | None = None) -> Path:
    """The history store a run uses: the one given, else the configured one, else the default
    in the output folder (a Sở's own file, never mixed with a Phòng's: as the engine does)."""
    return store or config.store or Path(out) / config.store_name


def changes_since(before: dict[str, str], result: Consolidation) -> dict[str, list[str]]:
    """Submissions new, replaced (same name, new content) and withdrawn since the last run."""
    now = {s.file: s.sha256 for s in result.submissions}
    return {"new": sorted(set(now) - set(before)),
            "replaced": sorted(f for f in set(now) & set(before) if now[f] != before[f]),
            "withdrawn": sorted(set(before) - set(now))}


def _counts(result: Consolidation) -> dict[str, int]:
    return result.units["status"].value_counts().to_dict()


# Messages


def _office(config: Config, school_year: str) -> Office:
    """The office that consolidates the year (the configured year's office if none does)."""
    try:
        return config.office_for(school_year)
    except ConfigError:
        return config.office_for()


def signature(office: Office) -> list[str]:
    """The closing lines of every message: signed as the office."""
    return ["", "Trân trọng,", office.signer, f"{office.name} – {office.parent}", "",
            "(Thư gửi tự động từ chương trình tổng hợp thi đua tdkt.)"]


def _approval_line(run: RoundRun) -> str:
    approval = run.approval
    if approval is None:
        return ("- Chưa gửi Sở: chờ Phòng duyệt. Khi đã xem và đồng ý, chạy lệnh: "
                f"tdkt approve --round {run.round} --year {run.result.school_year}")
    when = f"ngày {approval.approved_at:%d/%m/%Y}" + (
        f" ({approval.approved_by})" if approval.approved_by else "")
    now = {s.file: s.sha256 for s in run.result.submissions}
    if approval.inputs() != now:
        return (f"- Phòng đã duyệt {when}; Sở nhận bản đã duyệt. Từ đó đến nay có tệp mới hoặc "
                "tệp thay đổi: nếu cần gửi Sở bản mới, hãy duyệt lại (tdkt approve --round "
                f"{run.round} --year {run.result.school_year}).")
    return f"- Phòng đã duyệt {when}; Sở nhận bản đã duyệt."


def _body(run: RoundRun, office: Office) -> str:
    units = run.result.units
    late = units.index[units["status"] == UnitStatus.MISSING].tolist()
    lines = [f"Kính gửi: Lãnh đạo {office.name},", "",
             f"{run.label} năm học {run.result.school_year} (hạn {run.due:%d/%m/%Y}, "
             f"{STATE_LABELS[run.state]}):",
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
    lines.append(_approval_line(run))
    lines += ["", "Bảng tổng hợp của Phòng và báo cáo tiến độ gửi kèm.", *signature(office)]
    return "\n".join(lines)


def _province_body(mail: ProvinceMail, office: Office, province: Office) -> str:
    approval = mail.approval
    lines = [f"Kính gửi: {province.name},", "",
             f"{office.name} gửi bảng tổng hợp {mail.deadline.label.lower()} năm học "
             f"{approval.school_year} của các đơn vị trực thuộc, đã được Phòng duyệt ngày "
             f"{approval.approved_at:%d/%m/%Y}.", "", "Bảng tổng hợp gửi kèm.",
             *signature(office)]
    return "\n".join(lines)


def _school_body(result: Consolidation, code: str, office: Office,
                 back_to: str = "Phòng") -> str:
    mine = [f for f in result.findings if f.unit == code]
    lines = [f"Kính gửi: {result.units.loc[code, 'unit_name']},", "",
             f"{office.name} đã nhận và kiểm tra tệp của đơn vị. {_tally(mine)}", "",
             *_finding_lines(mine),
             "", "Đơn vị sửa ngay trên tệp của mình (các ô lỗi được tô màu trong tệp phản hồi "
             f"gửi kèm) rồi gửi lại cho {back_to}.", *signature(office)]
    return "\n".join(lines)


def _tally(findings: list) -> str:
    errors = sum(f.severity is Severity.ERROR for f in findings)
    return f"Có {errors} lỗi cần sửa và {len(findings) - errors} cảnh báo:"


def _finding_lines(findings: list) -> list[str]:
    lines = [f"- {f.message} Cách sửa: {f.hint}" for f in findings[:50]]
    if len(findings) > 50:
        lines.append(f"- … và {len(findings) - 50} mục khác trong tệp phản hồi gửi kèm.")
    return lines


# Messages of a Sở's run

OFFICE_TITLE = "Phòng Văn hóa – Xã hội"
_PLACES = ("xa ", "phuong ", "dac khu ", "thi tran ")  # folded: a commune's kind


def _cleaned(value: object) -> str:
    return clean(value) if isinstance(value, str) else ""


def office_addressee(name: object, commune: object) -> str:
    """How the Sở addresses a commune's office: its name in the Sở's registry when that names
    the office ("Phòng Văn hóa – Xã hội xã Tân Lập"), else "Phòng Văn hóa – Xã hội" and its
    commune ("Xã Tân Lập" → "… xã Tân Lập"; a bare name is a xã's)."""
    name, commune = _cleaned(name), _cleaned(commune)
    if fold(name).startswith("phong "):
        return name
    place = commune or name
    if not place:
        return OFFICE_TITLE
    if fold(place).startswith(_PLACES):
        return f"{OFFICE_TITLE} {place[:1].lower()}{place[1:]}"
    return f"{OFFICE_TITLE} xã {place}"


def _listed(table: pd.DataFrame, kind: str, state: Arrival) -> list[str]:
    rows = table[(table[KIND] == kind) & (table["state"] == state)]
    return [f"{c} {n}" for c, n in zip(rows["unit_code"], rows["unit_name"], strict=True)]


def _state_counts(table: pd.DataFrame, kind: str) -> str:
    counts = table.loc[table[KIND] == kind, "state"].value_counts()
    return "; ".join(f"{label(state).lower()} {int(counts.get(state, 0))}" for state in Arrival)


def _province_summary_body(run: RoundRun, office: Office) -> str:
    """The Sở's own summary: who sent on time, late, nothing or something invalid (offices,
    then direct schools), findings, and what changed since the last run."""
    table, result = run.progress, run.result
    assert table is not None
    lines = [f"Kính gửi: Lãnh đạo {office.name},", "",
             f"Tổng hợp {run.label.lower()} toàn tỉnh năm học {result.school_year} (hạn "
             f"{run.due:%d/%m/%Y}, {STATE_LABELS[run.state]}):",
             f"- Báo cáo của {int((table[KIND] == OFFICE_KIND).sum())} {OFFICE_TITLE}: "
             f"{_state_counts(table, OFFICE_KIND)}.",
             f"- Hồ sơ của {int((table[KIND] == DIRECT_KIND).sum())} đơn vị trực thuộc Sở: "
             f"{_state_counts(table, DIRECT_KIND)}."]
    for kind, state, what in (
            (OFFICE_KIND, Arrival.MISSING, f"{OFFICE_TITLE} chưa gửi báo cáo"),
            (OFFICE_KIND, Arrival.INVALID, "Báo cáo không hợp lệ"),
            (DIRECT_KIND, Arrival.MISSING, "Đơn vị trực thuộc chưa nộp"),
            (DIRECT_KIND, Arrival.INVALID, "Đơn vị trực thuộc nộp tệp không hợp lệ")):
        names = _listed(table, kind, state)
        if names:
            lines.append(f"- {what}: " + "; ".join(names) + ".")
    lines.append(f"- Lỗi: {len(result.errors)}; cảnh báo: "
                 f"{len(result.findings) - len(result.errors)}.")
    changed = run.changes
    lines.append(f"- Từ lần chạy trước: {len(changed['new'])} tệp mới, "
                 f"{len(changed['replaced'])} tệp thay thế, {len(changed['withdrawn'])} tệp "
                 "rút khỏi hộp thư.")
    lines += ["", "Bảng tổng hợp toàn tỉnh, bảng tổng hợp các đơn vị trực thuộc Sở và báo cáo "
              "tiến độ gửi kèm.", *signature(office)]
    return "\n".join(lines)


def _office_body(run: RoundRun, code: str, office: Office, feedback: bool) -> str:
    """An office's feedback on its report: each finding and how to fix it."""
    result = run.result
    assert isinstance(result, ProvinceResult)
    row = result.offices.loc[code]
    mine = [f for f in result.findings if f.unit == code]
    files = sorted({f.file for f in mine if f.file})
    sent = f" (tệp {', '.join(f'“{f}”' for f in files)})" if files else ""
    lines = [f"Kính gửi: {office_addressee(row['office_name'], row.get('commune'))},", "",
             f"{office.name} đã nhận và kiểm tra báo cáo {run.label.lower()} năm học "
             f"{result.school_year} của Phòng{sent}. {_tally(mine)}", "",
             *_finding_lines(mine), ""]
    if feedback:
        lines.append("Phòng sửa ngay trên tệp phản hồi gửi kèm (các ô cần sửa được tô màu và có "
                     "ghi chú cách sửa), lưu lại rồi gửi lại chính tệp đó cho Sở làm báo cáo đã "
                     "sửa; không đổi tên, không xoá trang tính.")
    else:
        lines.append("Phòng sửa báo cáo theo hướng dẫn trên rồi gửi lại cho Sở.")
    return "\n".join([*lines, *signature(office)])


def _province_messages(month: MonthRun, run: RoundRun, config: Config) -> list[Outgoing]:
    """A Sở's round: its summary for the Sở (recipients `so`, else the Sở's own e-mail), each
    office with findings its feedback, each direct school with findings its feedback."""
    result, out_dir = run.result, run.result.out_dir
    assert isinstance(result, ProvinceResult) and out_dir is not None
    office = _office(config, result.school_year)
    items = []
    leaders = tuple(config.recipients.get("so", ())) or ((office.email,) if office.email else ())
    if leaders:
        attached = [out_dir / PROVINCE_SUMMARY, out_dir / OFFICE_FILE, run.report]
        items.append(Outgoing(
            f"{month.period}/{run.round}/so", leaders,
            f"[TĐKT] {run.label} năm học {result.school_year} — tổng hợp toàn tỉnh "
            f"{month.period}",
            _province_summary_body(run, office), tuple(p for p in attached if p.is_file())))
    feedback_dir = out_dir / settings.FEEDBACK_DIR
    with_findings = {f.unit for f in result.findings if f.unit}
    for code, row in result.offices.iterrows():
        address = _cleaned(row.get("email"))
        if code not in with_findings or not address:
            continue
        feedback = feedback_dir / f"{code}.xlsx"
        name = office_addressee(row["office_name"], row.get("commune"))
        items.append(Outgoing(
            f"{month.period}/{run.round}/phan-hoi/{code}", (address,),
            f"[TĐKT] Phản hồi báo cáo {run.label.lower()} — {name}",
            _office_body(run, code, office, feedback.is_file()),
            (feedback,) if feedback.is_file() else ()))
    emails = result.units.get("email")
    for code in sorted(with_findings & set(result.units.index)):
        address = _cleaned(emails.get(code)) if emails is not None else ""
        feedback = feedback_dir / f"{code}.xlsx"
        if address and feedback.is_file():
            items.append(Outgoing(
                f"{month.period}/{run.round}/phan-hoi/{code}", (address,),
                f"[TĐKT] Phản hồi {run.label.lower()} — {result.units.loc[code, 'unit_name']}",
                _school_body(result, code, office, back_to="Sở"), (feedback,)))
    return items


def messages(month: MonthRun, config: Config) -> list[Outgoing]:
    """The Phòng's summary of each round, each school's feedback when it has findings, and the
    approved copy of each approved round for the Sở; for a Sở's round, the Sở's summary and the
    feedback of each office and direct school with findings (`_province_messages`)."""
    items: list[Outgoing] = []
    phong = tuple(config.recipients.get("phong", ()))
    for run in month.rounds:
        result, out_dir = run.result, run.result.out_dir
        if isinstance(result, ProvinceResult):
            items += _province_messages(month, run, config)
            continue
        office = _office(config, result.school_year)
        if phong:
            items.append(Outgoing(
                f"{month.period}/{run.round}/phong", phong,
                f"[TĐKT] {run.label} năm học {result.school_year} — tổng hợp {month.period}",
                _body(run, office), (out_dir / OFFICE_FILE, run.report)))
        emails = result.units.get("email")
        for code in sorted({f.unit for f in result.findings if f.unit}):
            address = emails.get(code) if emails is not None else None
            feedback = out_dir / settings.FEEDBACK_DIR / f"{code}.xlsx"
            if isinstance(address, str) and address and feedback.is_file():
                items.append(Outgoing(
                    f"{month.period}/{run.round}/phan-hoi/{code}", (address,),
                    f"[TĐKT] Phản hồi {run.label.lower()} — {result.units.loc[code, 'unit_name']}",
                    _school_body(result, code, office), (feedback,)))
    so = tuple(config.recipients.get("so", ()))
    for mail in month.approved if so else ():
        approval = mail.approval
        office = _office(config, approval.school_year)
        items.append(Outgoing(
            f"{approval.school_year}/{approval.round}/so", so,
            f"[TĐKT] {office.name} gửi {mail.deadline.label.lower()} năm học "
            f"{approval.school_year}",
            _province_body(mail, office, config.province_office),
            (approval.folder / PROVINCE_FILE,)))
    return items


# The job


def _earlier_sightings(history: Store, school_year: str, round_name: str,
                       inputs: dict[str, str]) -> dict[str, dt.datetime]:
    """sha256 → when the last recorded consolidation of the round read that content."""
    runs = [r for r in history.round_runs(school_year) if r["round"] == round_name]
    if not runs:
        return {}
    at = dt.datetime.fromisoformat(runs[-1]["run_at"])
    at = at if at.tzinfo is not None else at.astimezone()
    return {sha: at for sha in inputs.values() if sha}


def _approved(out: Path, history: Store, calendar: tuple[Deadline, ...],
              period: str) -> list[ProvinceMail]:
    """The approved rounds of the period's school year and the one before."""
    first = dt.date.fromisoformat(f"{period}-01")
    years = (school_year_of(first.replace(year=first.year - 1)), school_year_of(first))
    found = []
    for deadline in calendar:
        for year in years:
            approval = approval_of(out, history, year, deadline.round)
            if approval is not None and (approval.folder / PROVINCE_FILE).is_file():
                found.append(ProvinceMail(deadline, approval))
    return found


def run_month(config: Config, out: Path, period: str, *, dry_run: bool = False,
              store: Path | None = None, now: dt.datetime | None = None,
              say: Callable[[str], object] = lambda _: None) -> MonthRun:
    """The whole job; the same consolidation as `tdkt consolidate` (a Sở's configuration: the
    Sở's rounds, `round_for`). `say` hears what the job is doing (one Vietnamese line per
    step)."""
    now = now or dt.datetime.now().astimezone()
    calendar = load_calendar(config.calendar)
    store_path = store_file(config, out, store)
    province = config.is_province
    month = MonthRun(period=period, province=province)
    with run_lock(out):
        for deadline, school_year, state in rounds_for_period(calendar, period):
            inbox = config.inboxes.get(deadline.round)
            if inbox is None or not inbox.is_dir():
                continue
            say(f"Đang tổng hợp: {deadline.label} năm học {school_year} "
                f"({STATE_LABELS[state]})…")
            name = round_for(config, deadline.round)
            year_config = config if school_year == config.school_year else \
                replace(config, school_year=school_year)
            with Store.open(store_path) as history:
                before = history.round_inputs(school_year, name)
                counts = history.unit_status_counts(school_year, name)  # codes
                earlier = _earlier_sightings(history, school_year, name, before)
                seen = archive_inbox(history, inbox, out / "luu-tru", now, earlier)
            result = consolidate(inbox, out, year_config, round=name,
                                 registration_inbox=config.inboxes.get("dang-ky"),
                                 store=store_path, run_date=now.date())
            due = due_date(deadline, school_year)
            table = province_completeness(result, due, seen) \
                if isinstance(result, ProvinceResult) else completeness(result, due, seen)
            report = out / school_year / "tien-do" / f"{period}_{name}.xlsx"
            report.parent.mkdir(parents=True, exist_ok=True)
            partial = report.with_name(report.stem + ".part.xlsx")
            write_completeness(table, result, due, partial, deadline.label)
            os.replace(partial, report)
            after = _counts(result)
            moved = {k: (counts.get(k, 0), after.get(k, 0)) for k in set(counts) | set(after)}
            approval = None
            if not province:  # a Sở sends nothing up: no approval to look for
                with Store.open(store_path) as history:
                    approval = approval_of(out, history, school_year, deadline.round)
            month.rounds.append(RoundRun(name, deadline.label, state, due, result, report,
                                         changes_since(before, result), moved, approval,
                                         progress=table))
        smtp = smtp_settings(config.smtp, config.path.parent if config.path else out) \
            if config.smtp else None
        with Store.open(store_path) as history:
            month.approved = [] if province else _approved(out, history, calendar, period)
            outbox = out / "thu-gui" / period if dry_run else None
            items = messages(month, config)
            say(f"Đang {'ghi' if dry_run else 'gửi'} {len(items)} thư…")
            month.delivery = deliver(items, smtp, history, dry_run_dir=outbox,
                                     sender_name=config.office_for().name)
        month.log = _log(out, month, dry_run, now)
    return month


def _log(out: Path, month: MonthRun, dry_run: bool, now: dt.datetime) -> Path:
    """One JSON line per run in the run log."""
    delivery = month.delivery
    entry = {"at": now.isoformat(timespec="seconds"), "command": "run", "period": month.period,
             "dry_run": dry_run,
             "rounds": [{"round": r.round, "school_year": r.result.school_year,
                         "state": r.state, "files": len(r.result.submissions),
                         "errors": len(r.result.errors), "changes": r.changes,
                         "approved": r.approval.manifest_sha256 if r.approval else None}
                        for r in month.rounds],
             "to_province": [f"{m.approval.school_year}/{m.approval.round}"
                             for m in month.approved],
             "sent": len(delivery.sent) if delivery else 0,
             "skipped": len(delivery.skipped) if delivery else 0,
             "failed": len(delivery.failed) if delivery else 0,
             "written": len(delivery.written) if delivery else 0,
             "stopped": delivery.stopped if delivery else None}
    return append_run_log(out, entry)
