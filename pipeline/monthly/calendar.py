"""The plan's calendar: which round (form) is open or due in a month of the school year.

A school year runs from September to August ("2025-2026"): months 9–12 fall in the first
calendar year, months 1–8 in the second.
"""

from __future__ import annotations

import calendar as _cal
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.config import year_start
from pipeline.settings import LATE_MONTHS

# A round in a month: open (not yet due), due that month, or after its deadline (late files
# are still picked up for `late_months` months).
DUE, OPEN, AFTER = "due", "open", "after"
_FIRST_MONTH = 9  # September opens the school year
_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")
_KEYS = {"round", "label", "month", "day", "opens", "supported", "late_months"}


@dataclass(frozen=True)
class Deadline:
    """One round of the plan: the form schools send, when it opens and when it is due."""

    round: str  # a form id: "dang-ky", "ket-qua", …
    label: str  # Vietnamese, e.g. "Đăng ký thi đua"
    month: int  # 1..12
    day: int  # due day of that month (clamped to the month's last day)
    opens: int | None = None  # month the round opens (default: the due month)
    supported: bool = True  # False: the form is not built yet
    late_months: int = LATE_MONTHS  # months after the due month that still pick up files

    @property
    def opens_month(self) -> int:
        """The month the round opens."""
        return self.month if self.opens is None else self.opens


DEFAULT_CALENDAR: tuple[Deadline, ...] = (
    Deadline("dang-ky", "Đăng ký thi đua", 10, 15, opens=9),
    Deadline("hoc-ky-1", "Kết quả thi đua học kỳ I", 12, 31, supported=False),
    Deadline("ky-niem-chuong", "Hồ sơ đề nghị Kỷ niệm chương", 2, 28, supported=False),
    Deadline("sang-kien", "Kết quả công nhận sáng kiến", 4, 30, supported=False),
    Deadline("ket-qua", "Kết quả bình xét thi đua cuối năm", 5, 25, opens=4),
)


def _position(month: int) -> int:
    """0 for September … 11 for August: the month's place in the school year."""
    return (month - _FIRST_MONTH) % 12


def _deadline(raw: object, where: str) -> Deadline:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: mỗi mục [[calendar]] phải là một bảng khóa = giá trị.")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ValueError(f"{where}: khóa không được hỗ trợ: {', '.join(unknown)} "
                         f"(dùng: {', '.join(sorted(_KEYS))}).")
    for key in ("round", "label"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ValueError(f"{where}: thiếu “{key}” hoặc “{key}” không phải chuỗi ký tự.")
    for key in ("month", "day", "opens", "late_months"):
        value = raw.get(key)
        if value is None and key in ("opens", "late_months"):
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{where}: “{key}” phải là số nguyên (đang là {value!r}).")
    month, day, opens = raw["month"], raw["day"], raw.get("opens")
    if not 1 <= month <= 12 or (opens is not None and not 1 <= opens <= 12):
        raise ValueError(f"{where}: tháng phải từ 1 đến 12.")
    longest = _cal.monthrange(2024, month)[1]  # a leap year: 29/2 is allowed
    if not 1 <= day <= longest:
        raise ValueError(f"{where}: ngày {day} không có trong tháng {month}.")
    if opens is not None and _position(opens) > _position(month):
        raise ValueError(f"{where}: tháng mở đợt ({opens}) phải trước hoặc bằng tháng hạn "
                         f"nộp ({month}) trong cùng năm học (tháng 9 đến tháng 8).")
    supported = raw.get("supported", True)
    if not isinstance(supported, bool):
        raise ValueError(f"{where}: “supported” phải là true hoặc false.")
    late = raw.get("late_months", LATE_MONTHS)
    span = _position(month) - _position(month if opens is None else opens)
    if late < 0 or span + late > 11:
        raise ValueError(f"{where}: “late_months” = {late} không hợp lệ: cần từ 0 đến "
                         f"{11 - span} (từ tháng mở đợt đến tháng nhận muộn cuối cùng không quá "
                         "12 tháng, để không trùng đợt của năm học sau).")
    return Deadline(raw["round"].strip(), raw["label"].strip(), month, day, opens, supported,
                    late)


def load_calendar(raw: list[dict] | None) -> tuple[Deadline, ...]:
    """The calendar from a [[calendar]] TOML array; None gives DEFAULT_CALENDAR.

    Raises ValueError (Vietnamese message) on a wrong entry or a round given twice.
    """
    if raw is None:
        return DEFAULT_CALENDAR
    if not isinstance(raw, list) or not raw:
        raise ValueError("Mục [[calendar]] phải là một danh sách có ít nhất một đợt.")
    deadlines = tuple(_deadline(item, f"Lịch [[calendar]] mục {i}")
                      for i, item in enumerate(raw, start=1))
    seen: set[str] = set()
    for d in deadlines:
        if d.round in seen:
            raise ValueError(f"Lịch [[calendar]]: đợt “{d.round}” được khai báo hai lần.")
        seen.add(d.round)
    return deadlines


def _calendar_year(month: int, school_year: str) -> int:
    start = year_start(school_year)
    return start if month >= _FIRST_MONTH else start + 1


def due_date(deadline: Deadline, school_year: str) -> dt.date:
    """The due date of a round in a school year (29/2 becomes 28/2 outside leap years)."""
    year = _calendar_year(deadline.month, school_year)
    day = min(deadline.day, _cal.monthrange(year, deadline.month)[1])
    return dt.date(year, deadline.month, day)


def school_year_of(day: dt.date) -> str:
    """The school year a day belongs to: 2025-10-31 and 2026-05-31 → "2025-2026"."""
    start = day.year if day.month >= _FIRST_MONTH else day.year - 1
    return f"{start}-{start + 1}"


def previous_month(today: dt.date) -> str:
    """"YYYY-MM" of the month just ended."""
    last = today.replace(day=1) - dt.timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"


def _month_index(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def round_state(deadline: Deadline, school_year: str, period: dt.date) -> str | None:
    """"open", "due" or "after" when the round of that school year acts in the month of
    `period`, else None."""
    due = _month_index(due_date(deadline, school_year))
    opens = due - (_position(deadline.month) - _position(deadline.opens_month))
    here = _month_index(period)
    if opens <= here < due:
        return OPEN
    if here == due:
        return DUE
    if due < here <= due + deadline.late_months:
        return AFTER
    return None


def rounds_for_period(calendar: Iterable[Deadline], period: str,
                      ) -> list[tuple[Deadline, str, str]]:
    """The supported rounds that act in the month "YYYY-MM", in calendar order.

    Each comes with its school year and "open" (opened, not yet due), "due" (due that month)
    or "after" (past its deadline, still within its `late_months`: late files are picked up).
    A round of the previous school year can still be "after" in September.
    """
    match = _PERIOD.match(period.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"Kỳ báo cáo “{period}” không đúng dạng YYYY-MM (ví dụ 2025-10).")
    first = dt.date(int(match.group(1)), int(match.group(2)), 1)
    this_year = school_year_of(first)
    years = (school_year_of(first.replace(year=first.year - 1)), this_year)
    found = []
    for deadline in calendar:
        if not deadline.supported:
            continue
        for school_year in years:
            state = round_state(deadline, school_year, first)
            if state is not None:
                found.append((deadline, school_year, state))
    return found
