"""`tdkt history`: a person's or a unit's titles by school year, as plain Vietnamese lines."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Iterator

from pipeline.forms.definitions import load_forms
from pipeline.store.database import person_titles, unit_titles
from pipeline.text import fold

_BIRTH = re.compile(r"^(.*?)[,;]\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*$")
RESULT_WORDS = {"registered": "đăng ký", "proposed": "đề nghị", "pass": "đạt",
                "fail": "không đạt", "check": "cần kiểm tra", "over-quota": "vượt hạn mức",
                "awarded": "đã quyết định"}
SOURCE_WORDS = {"import": "nhập từ danh sách cũ", "decision": "theo quyết định",
                "proposal": ""}


def _label(kind: str, code: str) -> str:
    vocab = {"title": "individual_titles", "collective_title": "collective_titles",
             "commendation": "commendations", "grade": "grades"}.get(kind)
    vocabs = load_forms().vocabs
    if vocab and code in vocabs[vocab].codes:
        return vocabs[vocab].label_of(code)
    return code


def _line(row: dict) -> str:
    what = _label(row["kind"], row["code"])
    result = RESULT_WORDS.get(row["result"], row["result"] or "")
    source = SOURCE_WORDS.get(row["source"], "")
    tail = f" ({source})" if source else ""
    return f"  {row['school_year']}  {what}: {result}{tail} — đơn vị {row['unit_code']}"


def history_lines(conn: sqlite3.Connection, who: str) -> Iterator[str]:
    """Lines describing the record of a unit code or of the people matching a name."""
    who = who.strip()
    if conn.execute("SELECT 1 FROM units WHERE unit_code = ? LIMIT 1", (who,)).fetchone():
        yield f"Đơn vị {who}:"
        rows = unit_titles(conn, who)
        for row in rows:
            what = _label(row["kind"], row["code"])
            result = RESULT_WORDS.get(row["result"], row["result"] or "")
            yield f"  {row['school_year']}  {row.get('name') or ''}: {what}: {result}"
        if not rows:
            yield "  (chưa có dữ liệu)"
        return
    match = _BIRTH.match(who)
    name, born = (match.group(1), dt.date(int(match.group(4)), int(match.group(3)),
                                          int(match.group(2))).isoformat()) if match else (who,
                                                                                         None)
    people = conn.execute("SELECT id, full_name, birth_date FROM persons WHERE fold_name = ? "
                          "AND (? IS NULL OR birth_date = ?) ORDER BY id",
                          (fold(name), born, born)).fetchall()
    if not people:
        yield f"Không tìm thấy “{who}” trong kho lịch sử."
        return
    for person in people:
        born_text = dt.date.fromisoformat(person[2]).strftime("%d/%m/%Y") if person[2] else "?"
        yield f"{person[1]} (sinh {born_text}, mã {person[0]}):"
        rows = person_titles(conn, person[0])
        for row in rows:
            yield _line(row)
        if not rows:
            yield "  (chưa có dữ liệu)"
