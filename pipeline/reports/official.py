"""What the office sends the Sở, laid out as an official document (Nghị định 30/2020/NĐ-CP,
Phụ lục I): the issuing body and its "Số: …/BC-VHXH" line, Quốc hiệu and tiêu ngữ, place and
date, the kind of document and its subject, "Kính gửi", the body with one table (one line per
list the province decides, with its legal basis), "Nơi nhận" and the signer's title and name;
then the tables attached on their own sheets: the schools, the persons and the collectives.

The workbook is also a form (schemas/forms/bao-cao-dang-ky, bao-cao-ket-qua): sheet names,
headers and column order come from the definition, and a very hidden sheet carries its id,
so that the Sở's round reads it back like any school file.

Only what the Sở needs is written here: no rule ids, rule statuses, rule-set versions or error
columns (those stay in the Phòng workbook). The layout uses ReportBook's sheets, formats and
table parts, so page set-up (A4, fit to width, repeated header rows) is the same as elsewhere.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from xlsxwriter.worksheet import Worksheet

from pipeline import settings
from pipeline.config import PROVINCE_LEVEL, Office
from pipeline.forms.definitions import Form, Sheet, Vocabulary
from pipeline.forms.template import tdkt_version
from pipeline.reports.workbook import (
    MOTTO,
    NATION,
    ROW_MAX_LINES,
    Col,
    Letterhead,
    ReportBook,
    _fitted,
    letterhead_split,
    line_height,
    table_widths,
    text_lines,
    txt,
)
from pipeline.rounds.base import RoundResult
from pipeline.rules.ruleset import RuleSet
from pipeline.texts import render, text

# How far a basis citation is trusted: only texts read in the original or quoted with their
# article by an official source (rules.md, "Status values").
TRUSTED = ("verified", "secondary")
# A legal document's number: "06/2022/QH15", "152/2025/NĐ-CP", "86/2025/QĐ-UBND".
_NUMBER = re.compile(r"\d+/\d{4}/[\wĐđ-]+")
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
    """One short legal basis for a list: "Căn cứ: Luật …; Nghị định …; QĐ …/QĐ-UBND …"."""
    names = basis_texts(rules, kind, code)
    return t("basis", texts=names) if names else ""


def basis_texts(rules: RuleSet, kind: str, code: str) -> str:
    """The texts a list rests on: "Luật …; Nghị định …; QĐ …/QĐ-UBND …" (the "Căn cứ" column).

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
    return "; ".join(names)


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


def form_sheet(book: ReportBook, sheet: Sheet, title: str, doc: Document, frame: pd.DataFrame,
               *, screen: frozenset[str] = frozenset()) -> None:
    """One table attached to the document, on its own sheet: its title, the line naming the
    document it goes with, the header and one row per record ("Không có đề nghị" when none).

    Columns in `screen` (the last ones of the definition) stay on screen after the printed
    ones, outside the print area: the inputs behind a proposal, read by the Sở's round."""
    cols = form_cols(sheet, screen=screen)
    # Printed text columns as wide as their longest text (up to a limit): one line per row.
    cols = [_fitted(c, frame[c.key]) if c.printed and len(frame) else c for c in cols]
    printed = [c for c in cols if c.printed]
    if cols[:len(printed)] != printed:
        raise ValueError(f"sheet {sheet.name!r}: on-screen columns must come last in the form")
    ws = book._sheet(sheet.name)
    layout = table_widths(printed)[:len(printed)]
    widths = layout + [c.width for c in cols[len(printed):]]
    for i, width in enumerate(widths):
        ws.set_column(i, i, width)
    if sum(layout) <= _PORTRAIT_WIDTH:
        ws.set_portrait()
    last = len(printed) - 1
    _line(book, ws, 0, layout, title, align="center", bold=True, font_size=13, span=last)
    _line(book, ws, 1, layout, doc.attached, align="center", italic=True, span=last)
    top = book._header(ws, 3, cols, widths)
    ws.repeat_rows(3, top - 1)
    ws.freeze_panes(top, 0)
    row = top
    if frame.empty:
        book._merge(ws, row, 0, last, t("no_proposals"), italic=True, align="center", border=1,
                    font_size=11)
        row += 1
    else:
        _rows(book, ws, row, frame[[c.key for c in cols]], cols, widths)
        row += len(frame)
    if screen:
        ws.print_area(0, 0, row, last)


# The report as a form: columns, values and the hidden id from the form definition

_KINDS = {"integer": "int", "number": "number", "date": "date"}
# The proposal columns of the persons and collectives tables, and the vocabulary of each kind.
KIND_VOCABS = {"title": "individual_titles", "collective_title": "collective_titles",
               "commendation": "commendations"}
SUBJECT_KINDS = {"person": ("title", "commendation"),
                 "collective": ("collective_title", "commendation")}


def form_cols(sheet: Sheet, *, totals: bool = False,
              screen: frozenset[str] = frozenset()) -> list[Col]:
    """The report columns of a form sheet: header, width and kind from its definition; counts
    summed in the totals row when `totals`."""
    return [Col(c.id, c.header, c.width, _KINDS.get(c.type, "text"),
                total=totals and c.type == "integer" and c.id != "seq",
                printed=c.id not in screen) for c in sheet.columns]


def form_frame(frame: pd.DataFrame, sheet: Sheet, vocabs: dict[str, Vocabulary]) -> pd.DataFrame:
    """The rows of a form sheet as written: its columns in order (absent ones empty), codes of
    choice columns as their labels, a fresh STT 1…n."""
    out = frame.reset_index(drop=True).reindex(columns=sheet.column_ids).astype(object)
    for column in sheet.columns:
        if column.type == "choice" and column.choices:
            labels = {v.code: v.label for v in vocabs[column.choices].values}
            out[column.id] = out[column.id].map(lambda v, labels=labels: labels.get(v, v))
    if "seq" in out:
        out["seq"] = range(1, len(out) + 1)
    return out.where(out.notna(), None)


def count_kind(code: str, vocabs: dict[str, Vocabulary]) -> str | None:
    """The kind (title, collective_title, commendation) whose vocabulary holds this code; a
    unit table's count columns are named by the code they count."""
    for kind, name in KIND_VOCABS.items():
        if code in vocabs[name].codes:
            return kind
    return None


def commune_units(units: pd.DataFrame, vocabs: dict[str, Vocabulary]) -> pd.DataFrame:
    """The office's units its report to the Sở holds: not those of a cấp học the Sở manages
    itself (levels.yaml `manager: province`: they send their files to the Sở, whose round
    finds them in an office's report)."""
    managed = {v.code for v in vocabs["levels"].values if v.attrs.get("manager") == "province"}
    return units[~units["level"].isin(managed)]


def province_managed_note(result: RoundResult) -> list[str]:
    """A line telling the Phòng which of its registry's schools its report to the Sở leaves
    out because the Sở manages their cấp học itself (none when there are none, and none for
    the Sở's own schools)."""
    units, vocabs = result.units, result.forms.vocabs
    left = units.index.difference(commune_units(units, vocabs).index)
    if left.empty or result.office.level == PROVINCE_LEVEL:
        return []
    levels = vocabs["levels"]
    names = sorted({levels.by_code(c).attrs.get("name", c) for c in units.loc[left, "level"]})
    return [f"Báo cáo gửi Sở không gồm {len(left)} trường thuộc cấp học do Sở quản lý trực "
            f"tiếp ({', '.join(names)}): {', '.join(sorted(left))}; các trường này gửi hồ sơ "
            "thẳng cho Sở."]


def commune_offers(offers: dict[str, pd.DataFrame], units: pd.DataFrame
                   ) -> dict[str, pd.DataFrame]:
    """The proposals (or registrations) of those units only."""
    return {subject: frame[frame["unit_code"].isin(units.index)]
            for subject, frame in offers.items()}


def units_frame(units: pd.DataFrame, sheet: Sheet, vocabs: dict[str, Vocabulary],
                count: Callable[[str, str], str]) -> pd.DataFrame:
    """Every school of the office, one row each: whether its file arrived, its staff, and per
    count column of the sheet the number in the round's unit table at `count(kind, code)`."""
    out = units.reset_index()
    out["submitted"] = ["yes" if n else "no" for n in out["submitted"]]
    for column in sheet.column_ids:
        kind = count_kind(column, vocabs)
        if kind is not None:
            key = count(kind, column)
            out[column] = out[key].astype(int) if key in out else 0
    return form_frame(out, sheet, vocabs)


def in_list_order(offers: pd.DataFrame, lists: Sequence[tuple[str, str]], subject: str,
                  units: pd.DataFrame) -> pd.DataFrame:
    """The proposals (columns kind, proposal) of the lists the province decides, list by list,
    then in the order of the office's units and rows; each row's proposal in its own column
    (title, collective_title or commendation), the others empty."""
    order = {key: i for i, key in enumerate(lists)}
    place = {code: i for i, code in enumerate(units.index)}
    keys = list(zip(offers["kind"], offers["proposal"], strict=True))
    chosen = offers.assign(_list=[order.get(k) for k in keys],
                           _unit=offers["unit_code"].map(place))
    chosen = chosen[chosen["_list"].notna()].sort_values(["_list", "_unit", "row"],
                                                         kind="stable")
    for kind in SUBJECT_KINDS[subject]:
        chosen[kind] = chosen["proposal"].where(chosen["kind"] == kind)
    chosen = chosen.merge(units[["unit_name", "level"]], left_on="unit_code", right_index=True,
                          how="left", suffixes=("_source", ""))
    return chosen.drop(columns=["_list", "_unit"])


def counts_frame(offers: dict[str, pd.DataFrame], lists: Sequence[tuple[str, str]],
                 rules: RuleSet, vocabs: dict[str, Vocabulary]) -> pd.DataFrame:
    """One line per list the province decides: its label, how many persons and collectives it
    holds, their sum and the texts it rests on."""
    rows = []
    for kind, code in lists:
        n = {subject: int(((f["kind"] == kind) & (f["proposal"] == code)).sum())
             for subject, f in offers.items()}
        rows.append({"list": vocabs[KIND_VOCABS[kind]].label_of(code), "persons": n["person"],
                     "collectives": n["collective"], "total": n["person"] + n["collective"],
                     "basis": basis_texts(rules, kind, code)})
    return pd.DataFrame(rows, columns=["list", "persons", "collectives", "total", "basis"])


def meta_values(form: Form, office: Office, school_year: str, round_name: str) -> list[str]:
    """Row 1 of the hidden sheet: form id, version, the office's code in the Sở's registry,
    school year, round, the version of tdkt that wrote it."""
    return [form.form, form.version, office.code, school_year, round_name, tdkt_version()]


def write_meta(book: ReportBook, values: Sequence[str]) -> None:
    """The very hidden sheet that identifies the workbook as a form (read.py `_meta`)."""
    ws = book._book.add_worksheet(settings.META_SHEET)
    for col, value in enumerate(values):
        ws.write_string(0, col, str(value))
    ws.very_hidden()


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


def decided_lists(rules: RuleSet, vocabs: dict[str, Vocabulary]) -> list[tuple[str, str]]:
    """The lists of the Sở's report: what the province decides, less codes no vocabulary
    knows."""
    return [(kind, code) for kind, code in province_lists(rules)
            if code in vocabs[KIND_VOCABS[kind]].codes]


def province_lists(rules: RuleSet) -> list[tuple[str, str]]:
    """The (kind, code) of every title and form the province decides, in the order of the
    rule province.decides (kind: title, collective_title, commendation)."""
    rule = rules.rules.get("province.decides")
    params = rule.params if rule is not None else {}
    return [(kind, code) for kind, codes in params.items() for code in codes]


# The count column of a round's unit table holding a report column's code (kind, code), per
# round: registrations in October, passes at year end.
REPORT_COUNT_KEYS: dict[str, Callable[[str, str], str]] = {
    "dang-ky": lambda kind, code: {"title": f"title:{code}",
                                   "collective_title": f"collective:{code}"}.get(kind, ""),
    "ket-qua": "title:{}:{}".format,
}


def write_report(path: Path, result, form: Form, doc: Document, offers: dict[str, pd.DataFrame],
                 units: pd.DataFrame, title: str,
                 screen: Mapping[str, frozenset[str]] | None = None) -> Path:
    """The report an office sends the Sở (form bao-cao-*): the document with one line per
    list the province decides, every school of `units`, the persons and the collectives of
    `offers` list by list, and the hidden id. `screen`: per table, the columns shown on screen
    only."""
    vocabs, year, screen = result.forms.vocabs, result.school_year, screen or {}
    lists = decided_lists(result.rules, vocabs)
    counts, schools, staff, groups = (form.sheet(i) for i in ("lists", "units", "staff",
                                                               "collectives"))
    people = in_list_order(offers["person"], lists, "person", units)
    chosen = in_list_order(offers["collective"], lists, "collective", units)
    with ReportBook(path, Letterhead.of(result.office, result.run_date), title) as book:
        document_sheet(book, counts.name, doc,
                       form_frame(counts_frame(offers, lists, result.rules, vocabs), counts,
                                  vocabs),
                       form_cols(counts, totals=True), totals_label=txt("totals"))
        form_sheet(book, schools, t("sheet_title", title=schools.title, year=year), doc,
                   units_frame(units, schools, vocabs, REPORT_COUNT_KEYS[result.round]))
        for sheet, frame in ((staff, people), (groups, chosen)):
            form_sheet(book, sheet, t("sheet_title", title=sheet.title, year=year), doc,
                       form_frame(frame, sheet, vocabs),
                       screen=screen.get(sheet.id, frozenset()))
        write_meta(book, meta_values(form, result.office, year, result.round))
    return path
