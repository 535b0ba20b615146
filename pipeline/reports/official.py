"""What the office sends the Sở, laid out as an official document (Nghị định 30/2020/NĐ-CP,
Phụ lục I): the issuing body and its "Số: …/BC-VHXH" line, Quốc hiệu and tiêu ngữ, place and
date, the kind of document and its subject, "Kính gửi", the body with one table, "Nơi nhận"
and the signer's title and name; then the lists it announces, attached on their own sheet,
each with one line of legal basis.

Only what the Sở needs is written here: no rule ids, rule statuses, rule-set versions or error
columns (those stay in the Phòng workbook). The layout uses ReportBook's sheets, formats and
table parts, so page set-up (A4, fit to width, repeated header rows) is the same as elsewhere.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from xlsxwriter.worksheet import Worksheet

from pipeline.config import Office
from pipeline.reports.workbook import (
    MOTTO,
    NATION,
    ROW_MAX_LINES,
    Col,
    ReportBook,
    letterhead_split,
    line_height,
    table_widths,
    text_lines,
)
from pipeline.rules.ruleset import RuleSet
from pipeline.texts import render, text

# How far a basis citation is trusted: only texts read in the original or quoted with their
# article by an official source (rules.md, "Status values").
TRUSTED = ("verified", "secondary")
# A legal document's number: "06/2022/QH15", "152/2025/NĐ-CP", "86/2025/QĐ-UBND".
_NUMBER = re.compile(r"\d+/\d{4}/[\wĐđ-]+")
_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII")
# Words that do not give a letter to the office's symbol ("Phòng Văn hóa – Xã hội" → VHXH).
_NO_INITIAL = {"phòng", "và", "–", "-", "&"}
_PORTRAIT_WIDTH = 100  # characters of table that fit an A4 page upright at full size


def t(key: str, **values: object) -> str:
    """A text of the official documents (texts.yaml, section "official")."""
    return render("official", key, **values) if values else text("official", key)


# The parts of the document that come from the configuration


def office_symbol(office: Office) -> str:
    """The office's part of a document's reference: configured, or the initials of its name
    ("Phòng Văn hóa – Xã hội" → "VHXH", "Phòng Giáo dục và Đào tạo" → "GDĐT")."""
    if office.reference_symbol.strip():
        return office.reference_symbol.strip()
    words = [w for w in office.name.split() if w.casefold() not in _NO_INITIAL]
    return "".join(w[0].upper() for w in words if w[0].isalpha()) or "VT"


def locality(office: Office) -> str:
    """"xã Tân Lập", "tỉnh An Phú": the administrative unit of the office's parent (from
    "UBND XÃ TÂN LẬP") and its configured place name; empty without a place."""
    place = office.place.strip()
    if not place:
        return ""
    parent = re.sub(r"^\s*(UBND|ỦY BAN NHÂN DÂN|UỶ BAN NHÂN DÂN)\s+", "", office.parent,
                    flags=re.IGNORECASE)
    unit = parent.casefold()
    for word in ("thành phố", "tỉnh", "xã", "phường", "đặc khu", "thị trấn", "huyện", "quận",
                 "thị xã"):
        if unit.startswith(word):
            return t("locality", unit=word, place=place)
    return place


def addressee(province: Office) -> str:
    """"Sở Giáo dục và Đào tạo tỉnh An Phú", or the configured addressee."""
    if province.addressee.strip():
        return province.addressee.strip()
    return f"{province.name} {locality(province)}".strip()


def distribution(office: Office) -> tuple[str, ...]:
    """The "Nơi nhận" lines, each starting "- "."""
    items = office.distribution or (t("distribution_same"), t("distribution_archive"))
    return tuple(item if item.lstrip().startswith("-") else f"- {item.strip()}"
                 for item in items)


def legal_basis(rules: RuleSet, kind: str, code: str) -> str:
    """One short legal basis for a list: "Căn cứ: Luật …; Nghị định …; QĐ …/QĐ-UBND …".

    The texts are those of the period's legal basis (the law always, the others when a trusted
    rule deciding the proposal cites them) and the province's or office's own texts with a
    number cited by such a rule. Texts out of force, drafts and leads never appear: only
    rules in force on the round's date, of status verified or secondary, are read.
    """
    deciding = [r for r in rules.rules.values()
                if code in r.proposals.get(kind, ()) and r.status in TRUSTED]
    parts = [re.sub(r"\([^)]*\)", "", part).strip()
             for r in deciding for part in r.citation.split(";")]
    basis = rules.legal_basis
    names = [basis["law"]] if basis.get("law") else []
    for key in ("decree", "circular", "sector_circular"):
        number = _NUMBER.search(basis.get(key, ""))
        if number and any(number.group() in p for p in parts):
            names.append(basis[key])
    own = [r for r in deciding if r.layer in ("province", "office")]
    for r in own:
        for part in r.citation.split(";"):
            name = re.split(r"\s+Điều\s", re.sub(r"\([^)]*\)", "", part))[0].strip(" .,")
            if _NUMBER.search(name) and name not in names:
                names.append(name)
    return t("basis", texts="; ".join(names)) if names else ""


# The document


@dataclass(frozen=True)
class Document:
    """An official document of the office, addressed to the Sở."""

    office: Office
    province: Office
    date: dt.date | None
    kind: str  # "BÁO CÁO", "TỜ TRÌNH"
    code: str  # "BC", "TTr": the kind's part of the reference
    subject: str  # the trích yếu under the kind
    body: tuple[str, ...]  # paragraphs above the table
    closing: tuple[str, ...] = ()  # paragraphs under the table

    @property
    def number(self) -> str:
        """"Số:        /BC-VHXH": the number is left for the office's văn thư."""
        return t("number", kind=self.code, symbol=office_symbol(self.office))

    @property
    def attached(self) -> str:
        """"(Kèm theo Báo cáo số …/BC-VHXH ngày … của Phòng …)", under an attached list."""
        return t("attached", kind=self.kind.capitalize(), code=self.code,
                 symbol=office_symbol(self.office), office=self.office.name,
                 locality=locality(self.office))


@dataclass(frozen=True)
class Section:
    """One list of the attachment: its heading, its basis line and its rows."""

    heading: str
    basis: str
    frame: pd.DataFrame


def document_sheet(book: ReportBook, name: str, doc: Document, frame: pd.DataFrame,
                   cols: list[Col], *, totals_label: str | None = None) -> None:
    """The document itself on one sheet: header block, title, addressee, body, one table,
    closing, Nơi nhận and signature. The table's columns set the sheet's grid."""
    ws = book._sheet(name)
    widths = table_widths(cols)
    for i, width in enumerate(widths):
        ws.set_column(i, i, width)
    if sum(widths) <= _PORTRAIT_WIDTH:  # a narrow table: the document reads as a letter
        ws.set_portrait()
    split = letterhead_split(widths)
    lh = book.letterhead
    _pair(book, ws, 0, widths, split, (lh.parent.upper(), {}), (NATION, {"bold": True}))
    _pair(book, ws, 1, widths, split, (lh.office.upper(), {"bold": True, "underline": 1}),
          (MOTTO, {"bold": True, "underline": 1}))
    _pair(book, ws, 2, widths, split, (doc.number, {}), (lh.date_line, {"italic": True}))
    row = 4
    for line, props in ((doc.kind, {"bold": True, "font_size": 14}),
                        (doc.subject, {"bold": True})):
        _line(book, ws, row, widths, line, align="center", **props)
        row += 1
    row += 1
    _line(book, ws, row, widths, t("addressee", addressee=addressee(doc.province)),
          align="center")
    row += 2
    for paragraph in doc.body:
        _line(book, ws, row, widths, paragraph, align="justify", indent=1)
        row += 1
    row += 1
    head = row
    row = book._header(ws, row, cols, widths)
    top = row
    if frame.empty:
        book._merge(ws, row, 0, len(cols) - 1, t("no_proposals"), italic=True, align="center",
                    border=1, font_size=11)
        row += 1
    _rows(book, ws, row, frame, cols, widths)
    row += len(frame)
    if totals_label is not None and not frame.empty:
        book._totals(ws, row, frame, cols, totals_label)
        row += 1
    ws.repeat_rows(head, top - 1)
    row += 1
    for paragraph in doc.closing:
        _line(book, ws, row, widths, paragraph, align="justify", indent=1)
        row += 1
    _signature(book, ws, row + 1, widths, split, doc)


def lists_sheet(book: ReportBook, name: str, title: str, doc: Document, cols: list[Col],
                sections: Sequence[Section]) -> None:
    """The lists attached to the document, on one sheet under one repeated header: per list
    a heading with its count, its legal basis and its rows ("Không có đề nghị" when empty)."""
    ws = book._sheet(name)
    widths = table_widths(cols)
    for i, width in enumerate(widths):
        ws.set_column(i, i, width)
    last = len(cols) - 1
    _line(book, ws, 0, widths, title, align="center", bold=True, font_size=13, span=last)
    _line(book, ws, 1, widths, doc.attached, align="center", italic=True, span=last)
    top = book._header(ws, 3, cols, widths)
    ws.repeat_rows(3, top - 1)
    ws.freeze_panes(top, 0)
    row = top
    for section in sections:
        book._merge(ws, row, 0, last, section.heading, fit=widths[:last + 1], bold=True,
                    align="left", border=1, bg_color="#F2F2F2", pattern=1)
        row += 1
        if section.basis:
            book._merge(ws, row, 0, last, section.basis, fit=widths[:last + 1], italic=True,
                        align="left", border=1, font_size=11)
            row += 1
        if section.frame.empty:
            book._merge(ws, row, 0, last, t("no_proposals"), italic=True, align="center",
                        border=1, font_size=11)
            row += 1
            continue
        _rows(book, ws, row, section.frame, cols, widths)
        row += len(section.frame)


# Layout


def _line(book: ReportBook, ws: Worksheet, row: int, widths: list[float], value: str, *,
          span: int | None = None, **props: object) -> None:
    """A paragraph over the whole width (or columns 0..span), its row as tall as its text."""
    last = len(widths) - 1 if span is None else span
    book._merge(ws, row, 0, last, value, fit=widths, **{"valign": "top", **props})


def _pair(book: ReportBook, ws: Worksheet, row: int, widths: list[float], split: int,
          left: tuple[str, dict], right: tuple[str, dict]) -> None:
    """One row of the header block: the office's side and the Quốc hiệu's side."""
    book._merge(ws, row, 0, split - 1, left[0], align="center", **left[1])
    book._merge(ws, row, split, len(widths) - 1, right[0], align="center", **right[1])
    need = max(text_lines(left[0], sum(widths[:split]), bold=bool(left[1].get("bold"))),
               text_lines(right[0], sum(widths[split:]), bold=bool(right[1].get("bold"))))
    ws.set_row(row, line_height(need))


def _rows(book: ReportBook, ws: Worksheet, row: int, frame: pd.DataFrame, cols: list[Col],
          widths: list[float]) -> None:
    """The body rows of one table (or one list), each as tall as its own text: one long unit
    name does not double the height of a whole list."""
    book._body(ws, row, frame, cols, widths, [None] * len(frame), ROW_MAX_LINES, False)


def _signature(book: ReportBook, ws: Worksheet, row: int, widths: list[float], split: int,
               doc: Document) -> None:
    """Nơi nhận (left) and the signer's title, room to sign, the signer's name (right)."""
    right = len(widths) - 1
    book._merge(ws, row, 0, split - 1, t("distribution_head"), bold=True, italic=True,
                align="left", font_size=12)
    book._merge(ws, row, split, right, doc.office.signer.upper(), bold=True, align="center")
    for i, item in enumerate(distribution(doc.office), start=1):
        book._merge(ws, row + i, 0, split - 1, item, align="left", font_size=11)
    name_row = row + max(5, len(distribution(doc.office)) + 1)
    if doc.office.signer_name.strip():
        book._merge(ws, name_row, split, right, doc.office.signer_name.strip(), bold=True,
                    align="center")


def province_decider(rules: RuleSet, province: Office) -> str:
    """Who decides the province's titles and forms ("Chủ tịch UBND tỉnh"), from the rule
    authority.decides; the province's parent when the rule set does not say."""
    rule = rules.rules.get("authority.decides")
    upper = (rule.params.get("upper") or {}) if rule is not None else {}
    return str(upper.get("decides") or province.parent)


def province_lists(rules: RuleSet) -> list[tuple[str, str]]:
    """The (kind, code) of every title and form the province decides, in the order of the
    rule province.decides (kind: title, collective_title, commendation)."""
    rule = rules.rules.get("province.decides")
    params = rule.params if rule is not None else {}
    return [(kind, code) for kind, codes in params.items() for code in codes]


def section_heading(number: int, label: str, kind: str, persons: int,
                    collectives: int) -> str:
    """"II. TẬP THỂ LAO ĐỘNG XUẤT SẮC (52 tập thể)"; a form of commendation counts both."""
    parts = []
    if kind != "collective_title" and (persons or kind == "title" or not collectives):
        parts.append(t("persons", n=persons))
    if kind == "collective_title" or collectives:
        parts.append(t("collectives", n=collectives))
    roman = _ROMAN[number - 1] if number <= len(_ROMAN) else str(number)
    if not persons + collectives:  # the row under it says "Không có đề nghị"
        return t("section_empty", number=roman, label=label.upper())
    return t("section", number=roman, label=label.upper(), count=", ".join(parts))
