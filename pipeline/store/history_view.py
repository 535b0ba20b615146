"""`tdkt history`: a person's or a unit's titles by school year, as plain Vietnamese lines."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from pipeline.forms.definitions import load_vocabularies
from pipeline.store.database import Store
from pipeline.text import fold

_BIRTH = re.compile(r"^(.*?)[,;]\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*$")
RESULT_WORDS = {"registered": "đăng ký", "proposed": "đề nghị", "pass": "đạt",
                "fail": "không đạt", "check": "cần kiểm tra", "over-quota": "vượt hạn mức",
                "awarded": "đã quyết định"}
SOURCE_WORDS = {"import": "nhập từ danh sách cũ", "decision": "theo quyết định",
                "proposal": ""}


class _Labels:
    """The label of a title, form or grade code, from the vocabularies read once when needed
    (the vocabularies only: the forms are not needed to print a history)."""

    def __init__(self) -> None:
        self._vocabs = None

    def __call__(self, kind: str, code: str) -> str:
        vocab = {"title": "individual_titles", "collective_title": "collective_titles",
                 "commendation": "commendations", "grade": "grades"}.get(kind)
        if self._vocabs is None:
            self._vocabs = load_vocabularies()
        if vocab and code in self._vocabs[vocab].codes:
            return self._vocabs[vocab].label_of(code)
        return code


def _line(row: dict, label: _Labels) -> str:
    what = label(row["kind"], row["code"])
    result = RESULT_WORDS.get(row["result"], row["result"] or "")
    source = SOURCE_WORDS.get(row["source"], "")
    tail = f" ({source})" if source else ""
    return f"  {row['school_year']}  {what}: {result}{tail} — đơn vị {row['unit_code']}"


def history_lines(store: Store, who: str) -> Iterator[str]:
    """Lines describing the record of a unit code or of the people matching a name."""
    who = who.strip()
    label = _Labels()
    if store.has_unit(who):
        yield f"Đơn vị {who}:"
        rows = store.unit_titles(who)
        for row in rows:
            what = label(row["kind"], row["code"])
            result = RESULT_WORDS.get(row["result"], row["result"] or "")
            yield f"  {row['school_year']}  {row.get('name') or ''}: {what}: {result}"
        if not rows:
            yield "  (chưa có dữ liệu)"
        return
    match = _BIRTH.match(who)
    name, born = (match.group(1), _born(match)) if match else (who, None)
    if match and born is None:
        yield (f"Ngày sinh “{match.group(2)}/{match.group(3)}/{match.group(4)}” không có thật; "
               "cần dạng dd/mm/yyyy, ví dụ “Nguyễn Văn An, 05/09/1985”.")
        return
    people = store.persons_named(fold(name), born)
    if not people:
        yield f"Không tìm thấy “{who}” trong kho lịch sử."
        return
    shown: set[int] = set()
    for person in people:
        if person["id"] in shown:  # confirmed as a person already shown
            continue
        group = store.same_person_ids(person["id"])
        shown.update(group)
        yield from _person_lines(store, person, group, label)


def _born(match: re.Match) -> str | None:
    """The ISO birth date typed after the name; None when no such day exists."""
    try:
        return dt.date(int(match.group(4)), int(match.group(3)), int(match.group(2))).isoformat()
    except ValueError:
        return None


def _person_lines(store: Store, person: dict, group: list[int], label: _Labels
                  ) -> Iterator[str]:
    """A person's heading (every spelling, every id confirmed as them) and titles."""
    born = person["birth_date"]
    born_text = dt.date.fromisoformat(born).strftime("%d/%m/%Y") if born else "?"
    others = [n for n in store.spellings(person["id"]) if fold(n) != fold(person["full_name"])]
    also = f"; còn ghi là: {', '.join(others)}" if others else ""
    yield f"{person['full_name']} (sinh {born_text}, mã {person['id']}{also}):"
    for other in (i for i in group if i != person["id"]):
        yield f"  Phòng đã xác nhận là cùng người với mã {other}."
    rows = store.person_titles(person["id"])
    for row in rows:
        yield _line(row, label)
    if not rows:
        yield "  (chưa có dữ liệu)"
