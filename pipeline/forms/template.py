"""Form definition → prefilled template workbook for one unit (I/O: write).

Every sheet, header, dropdown and hint comes from the form's YAML definition: a column or a
vocabulary value added there shows up in the next template without a change here.
"""

from __future__ import annotations

import importlib.metadata
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell import Cell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Protection, Side
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.utils.datetime import to_excel
from openpyxl.workbook.protection import WorkbookProtection
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.pagebreak import Break
from openpyxl.worksheet.worksheet import Worksheet

from pipeline import settings
from pipeline import texts as wording
from pipeline.config import Office
from pipeline.forms.definitions import Check, Column, Form, FormSet, Sheet, Vocabulary
from pipeline.text import fold, nfc


@dataclass(frozen=True)
class UnitInfo:
    """The unit a template is made for, as the registry knows it."""

    code: str
    name: str
    level: str  # a code of the levels vocabulary, e.g. "TH"
    headcount: int = 0  # staff in the registry: sizes the staff sheet
    # Rows written into a sheet's table (sheet id → rows of column id → value or vocab code),
    # e.g. the khối's criteria on the self-score sheet; such a table has exactly these rows.
    rows: dict[str, tuple[dict[str, object], ...]] = field(default_factory=dict, hash=False,
                                                           compare=False)
    # Rows carried over from the unit's registration of the same school year (sheet id → rows
    # of column id → value or vocab code, see pipeline.forms.prefill): written at the top of
    # the table, numbered, editable, with empty rows left below for staff added since.
    carried: dict[str, tuple[dict[str, object], ...]] = field(default_factory=dict, hash=False,
                                                              compare=False)
    # The authority above the unit in the heading ("UBND XÃ TÂN LẬP" above an office filling
    # its report to the Sở); empty: the parent of the office the template is sent from.
    parent: str = ""


# Header fields filled from the registry: field id → UnitInfo attribute.
_UNIT_FIELDS = {"unit_code": "code", "unit_name": "name", "level": "level"}
# The unit sheet's first table row describes the unit itself: column id → value or vocab code.
_SEQ, _UNIT_ROW_NAME, _UNIT_ROW_CODES = "seq", "collective_name", {"collective_kind": "don_vi"}

_TITLE_ROW, _FIELDS_ROW, _LEFT_SPAN, _MIN_SPAN, _RIGHT_MIN_WIDTH = 4, 6, 3, 5, 48
_NUMBER_FORMATS = {"date": "dd/mm/yyyy", "integer": "0", "number": "General"}
_THIN = Side(style="thin")
_BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_GREY = PatternFill("solid", fgColor="D9D9D9")
_LOCKED_FILL = PatternFill("solid", fgColor="F2F2F2")  # prefilled, locked cells
_CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
_LEFT = Alignment(horizontal="left", vertical="center", wrap_text=True)
_UNLOCKED = Protection(locked=False)

_UNSAFE = re.compile(r"[^\w.-]")  # characters kept out of file names


@dataclass(frozen=True)
class _Job:
    """What every part of one template is written from."""

    form: Form
    vocabs: dict[str, Vocabulary]
    unit: UnitInfo
    school_year: str
    office: Office
    lists: dict[str, tuple[str, list[str]]]  # vocabulary → (range on the lists sheet, labels)


def template_filename(form: Form, unit: UnitInfo) -> str:
    """File name of a unit's template, e.g. "dang-ky_03101.xlsx"."""
    return f"{form.form}_{_UNSAFE.sub('_', unit.code)}.xlsx"


def write_template(form: Form, vocabs: dict[str, Vocabulary], unit: UnitInfo, path: Path,
                   school_year: str, office: Office, *, extra_meta: Sequence[str] = ()) -> Path:
    """Write the form's template for one unit, prefilled from the registry; returns the path.

    Tabs: instructions, one per form sheet, the hidden lists, the very hidden identity sheet
    (form, version, unit code, school year, then `extra_meta`).
    """
    wb = Workbook()
    guide = wb.active
    guide.title = settings.INSTRUCTIONS_SHEET
    pages = [wb.create_sheet(s.name) for s in form.sheets]
    lists = _write_lists(wb.create_sheet(settings.LISTS_SHEET), form, vocabs)
    job = _Job(form, vocabs, unit, school_year, office, lists)
    for ws, sheet in zip(pages, form.sheets, strict=True):
        _write_sheet(ws, sheet, job)
    _write_guide(guide, job)
    meta = wb.create_sheet(settings.META_SHEET)
    for col, value in enumerate((form.form, form.version, unit.code, school_year, *extra_meta),
                                start=1):
        _put(meta.cell(1, col), value, number_format="@")
    meta.sheet_state = "veryHidden"
    _protect(meta)
    landing = next((ws for ws, s in zip(pages, form.sheets, strict=True) if s.fields), pages[0])
    wb.active = wb.worksheets.index(landing)
    for ws in wb.worksheets:  # one selected tab only, or Excel opens the sheets grouped
        ws.sheet_view.tabSelected = ws is landing
    wb.security = WorkbookProtection(lockStructure=True)  # no renamed, deleted or unhidden sheets
    wb.properties.title = form.title
    wb.properties.creator = wb.properties.lastModifiedBy = "tdkt"
    wb.properties.subject = f"{form.key} {unit.code} {school_year}"
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def write_office_report_template(form: Form, office_code: str, office_name: str,
                                 school_year: str, path: Path, *, vocabs: dict[str, Vocabulary],
                                 province: Office, parent: str = "", lists: Sequence[str] = (),
                                 units: int = 0) -> Path:
    """The blank report to the Sở (bao-cao-dang-ky, bao-cao-ket-qua) for an office that does
    not use tdkt: its heading and hidden id carry the office's code and name from the Sở's
    registry (`parent`: its UBND xã), sent back to `province` (the Sở); `lists`: the labels
    of the lists the province decides, written one per line of the report's table; `units`:
    how many schools the office has (sizes the tables)."""
    rows = {"lists": tuple({"list": label} for label in lists)} if lists else {}
    unit = UnitInfo(code=office_code, name=office_name, level="", headcount=units, rows=rows,
                    parent=parent)
    return write_template(form, vocabs, unit, path, school_year, province,
                          extra_meta=(form.round, tdkt_version()))


def tdkt_version() -> str:
    """The installed version of tdkt, written in the hidden id of the reports to the Sở (""
    when it runs from a source tree that is not installed)."""
    try:
        return importlib.metadata.version("tdkt")
    except importlib.metadata.PackageNotFoundError:
        return ""


def write_templates(forms: FormSet, form_id: str, units: list[UnitInfo], out_dir: Path,
                    school_year: str, office: Office) -> list[Path]:
    """Write the current version of a form for every unit into out_dir; returns sorted paths."""
    form = forms.current(form_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [write_template(form, forms.vocabs, u, out_dir / template_filename(form, u),
                            school_year, office) for u in units]
    return sorted(paths)


# Form sheets


def _write_sheet(ws: Worksheet, sheet: Sheet, job: _Job) -> None:
    widths = [c.width for c in sheet.columns]
    widths += [settings.TEMPLATE_DEFAULT_WIDTH] * (_MIN_SPAN - len(widths))
    for col, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = width
    right = _right_start(widths)
    _write_heading(ws, sheet, widths, right, job)
    for row, spec in enumerate(sheet.fields, start=_FIELDS_ROW):
        _write_field(ws, row, spec, job)
    prefill = job.unit.rows.get(sheet.id, ())
    carried = job.unit.carried.get(sheet.id, ())
    if sheet.fields:  # the unit sheet: fields, then a short table of collectives
        carried = _unit_first(carried, job) if carried else ()
        header = _FIELDS_ROW + len(sheet.fields) + 1
        rows = max(settings.TEMPLATE_COLLECTIVE_ROWS,
                   len(carried) + settings.TEMPLATE_SPARE_COLLECTIVE_ROWS)
    else:
        header = _FIELDS_ROW
        rows = max(settings.TEMPLATE_MIN_ROWS, job.unit.headcount + settings.TEMPLATE_SPARE_ROWS,
                   len(carried) + settings.TEMPLATE_SPARE_ROWS)
    rows = len(prefill) or rows
    last = _write_table(ws, sheet, header, rows, job)
    if sheet.fields:
        if not carried:
            _prefill_unit_row(ws, sheet, header + 1, job)
        last = _write_signature(ws, last + 2, right, len(widths))
    _prefill_rows(ws, sheet, header + 1, prefill or _numbered(carried, sheet), job)
    _setup_page(ws, f"A1:{get_column_letter(len(widths))}{last}", header)
    ws.freeze_panes = f"A{header + 1}"
    _protect(ws)


def _right_start(widths: list[float]) -> int:
    """First column of the right-hand block (Quốc hiệu, signature): wide enough for its text."""
    start = len(widths)
    while start > _LEFT_SPAN + 1 and sum(widths[start - 1:]) < _RIGHT_MIN_WIDTH:
        start -= 1
    return start


def _write_heading(ws: Worksheet, sheet: Sheet, widths: list[float], right: int,
                   job: _Job) -> None:
    """Parent authority and unit at the left, Quốc hiệu and tiêu ngữ at the right, the title."""
    span, left_width = len(widths), sum(widths[:_LEFT_SPAN])
    parent = job.unit.parent or job.office.parent
    left = [(parent.upper(), _font()), (job.unit.name.upper(), _font(bold=True))]
    nation = [(wording.text("document", "nation"), _font(bold=True)),
              (wording.text("document", "motto"), _font(bold=True, under=True))]
    for row, ((text, font), (motto, motto_font)) in enumerate(zip(left, nation, strict=True), 1):
        _merged(ws, row, 1, _LEFT_SPAN, text, font, _CENTER)
        _merged(ws, row, right, span, motto, motto_font, _CENTER)
        ws.row_dimensions[row].height = 16 * _lines(text, left_width, 1.25)
    title = _t("year").format(title=sheet.title or sheet.name.upper(), year=job.school_year)
    _merged(ws, _TITLE_ROW, 1, span, title, _font(13, bold=True), _CENTER)
    ws.row_dimensions[_TITLE_ROW].height = 18 * _lines(title, sum(widths), 1.3)


def _write_field(ws: Worksheet, row: int, spec: Column, job: _Job) -> None:
    """Label in B, value in C:E: prefilled from the registry, or an input cell."""
    _put(ws.cell(row, 2), spec.header, _font(bold=True), alignment=_LEFT)
    value = getattr(job.unit, _UNIT_FIELDS[spec.id]) if spec.id in _UNIT_FIELDS else None
    if value is not None and spec.choices and value in job.vocabs[spec.choices].codes:
        value = job.vocabs[spec.choices].label_of(value)
    cell = _merged(ws, row, 3, 5, value, _font(bold=spec.locked), _LEFT)
    for col in range(3, 6):
        ws.cell(row, col).border = _BOX
    cell.number_format = _NUMBER_FORMATS.get(spec.type, "@")
    if not spec.locked:
        cell.protection = _UNLOCKED
    _validate(ws, spec, job, cell.coordinate)


def _write_table(ws: Worksheet, sheet: Sheet, header: int, rows: int, job: _Job) -> int:
    """Header row and empty input rows; returns the last table row."""
    last = header + rows
    for col, spec in enumerate(sheet.columns, start=1):
        _put(ws.cell(header, col), spec.header, _font(11, bold=True), alignment=_CENTER,
             border=_BOX, fill=_GREY)
        align = _CENTER if spec.type in _NUMBER_FORMATS else _LEFT
        for row in range(header + 1, last + 1):
            cell = ws.cell(row, col)
            cell.font, cell.border, cell.alignment = _font(), _BOX, align
            cell.number_format = _NUMBER_FORMATS.get(spec.type, "@")
            if not spec.locked:
                cell.protection = _UNLOCKED
        letter = get_column_letter(col)
        _validate(ws, spec, job, f"{letter}{header + 1}:{letter}{last}")
    tallest = max((_lines(c.header, c.width, 1.2) for c in sheet.columns), default=1)
    ws.row_dimensions[header].height = max(32, 15 * tallest + 2)
    return last


def _prefill_unit_row(ws: Worksheet, sheet: Sheet, row: int, job: _Job) -> None:
    """The unit itself is the first collective: STT 1, its name, kind "đơn vị"."""
    for col, spec in enumerate(sheet.columns, start=1):
        code = _UNIT_ROW_CODES.get(spec.id)
        if spec.id == _SEQ:
            ws.cell(row, col).value = 1
        elif spec.id == _UNIT_ROW_NAME:
            _put(ws.cell(row, col), job.unit.name, alignment=_LEFT)
        elif code and spec.choices and code in job.vocabs[spec.choices].codes:
            _put(ws.cell(row, col), job.vocabs[spec.choices].label_of(code), alignment=_LEFT)


def _unit_first(rows: tuple[dict[str, object], ...],
                job: _Job) -> tuple[dict[str, object], ...]:
    """Carried collectives with the unit itself first, of kind "đơn vị": the row of that kind,
    else the one named as the unit, else a new row for the unit (as in an empty template)."""
    def is_unit(row: dict[str, object]) -> bool:
        return all(row.get(k) == v for k, v in _UNIT_ROW_CODES.items())

    name = fold(job.unit.name)
    own = next((r for r in rows if is_unit(r)), None) or next(
        (r for r in rows if fold(str(r.get(_UNIT_ROW_NAME) or "")) == name), None)
    others = tuple(r for r in rows if r is not own)
    return ({_UNIT_ROW_NAME: job.unit.name, **(own or {}), **_UNIT_ROW_CODES}, *others)


def _numbered(rows: tuple[dict[str, object], ...],
              sheet: Sheet) -> tuple[dict[str, object], ...]:
    """Carried rows numbered 1, 2, … in the STT column (when the sheet has one)."""
    if _SEQ not in sheet.column_ids:
        return rows
    return tuple({**row, _SEQ: number} for number, row in enumerate(rows, start=1))


def _prefill_rows(ws: Worksheet, sheet: Sheet, first: int,
                  rows: tuple[dict[str, object], ...], job: _Job) -> None:
    """Rows given with the unit (e.g. criteria) or carried over from its registration:
    vocabulary codes written as their labels."""
    for offset, values in enumerate(rows):
        for col, spec in enumerate(sheet.columns, start=1):
            value = values.get(spec.id)
            if value is None:
                continue
            if spec.choices and value in job.vocabs[spec.choices].codes:
                value = job.vocabs[spec.choices].label_of(value)
            _put(ws.cell(first + offset, col), value,
                 alignment=_CENTER if spec.type in _NUMBER_FORMATS else _LEFT, border=_BOX)
            if spec.locked:
                ws.cell(first + offset, col).fill = _LOCKED_FILL


def _write_signature(ws: Worksheet, row: int, right: int, span: int) -> int:
    """The date line and the head of unit's signature; returns the last row used."""
    lines = [(_t("date_line"), _font(italic=True)), (_t("signer"), _font(bold=True)),
             (_t("sign_note"), _font(italic=True))]
    for offset, (text, font) in enumerate(lines):
        _merged(ws, row + offset, right, span, text, font, _CENTER)
    return row + len(lines) - 1


def _setup_page(ws: Worksheet, area: str, title_row: int | None) -> None:
    """A4 landscape, one page wide, the table header repeated on every page."""
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = ws.ORIENTATION_LANDSCAPE
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_margins = PageMargins(left=0.5, right=0.5, top=0.5, bottom=0.5, header=0.3, footer=0.3)
    ws.print_options.horizontalCentered = True
    ws.print_area = area
    if title_row:
        ws.print_title_rows = f"{title_row}:{title_row}"
    ws.oddFooter.center.text = "&P/&N"


def _protect(ws: Worksheet) -> None:
    """Protect without a password; columns and rows may be resized, sorting stays off."""
    p = ws.protection
    p.sheet = True
    p.formatColumns = p.formatRows = False  # False means allowed
    p.selectLockedCells = p.selectUnlockedCells = False
    p.sort = p.autoFilter = True


# Dropdowns and input hints


def _write_lists(ws: Worksheet, form: Form,
                 vocabs: dict[str, Vocabulary]) -> dict[str, tuple[str, list[str]]]:
    """One column per vocabulary the form uses; returns each one's range and labels."""
    names = [c.choices for s in form.sheets for c in (*s.fields, *s.columns)
             if c.type == "choice" and c.choices]
    lists = {}
    for col, name in enumerate(dict.fromkeys(names), start=1):
        vocab, letter = vocabs[name], get_column_letter(col)
        _put(ws.cell(1, col), vocab.label, _font(bold=True))
        for row, label in enumerate(vocab.labels, start=2):
            _put(ws.cell(row, col), label, number_format="@")
        ws.column_dimensions[letter].width = max(map(len, (vocab.label, *vocab.labels))) + 2
        end = len(vocab.labels) + 1
        lists[name] = (f"{quote_sheetname(ws.title)}!${letter}$2:${letter}${end}", vocab.labels)
    ws.sheet_state = "hidden"
    _protect(ws)
    return lists


def _validate(ws: Worksheet, spec: Column, job: _Job, cells: str) -> None:
    """Dropdown, date or number check with a Vietnamese hint; a bare hint for helped text."""
    low, high = (date.fromisoformat(d) for d in settings.TEMPLATE_DATE_RANGE)
    if spec.type == "choice":
        ref, labels = job.lists[spec.choices]
        dv = DataValidation(type="list", formula1=ref, showDropDown=False)  # False: arrow shown
        hint, error = _t("list_hint").format(values=", ".join(labels)), _t("list_error")
        title = _t("list_title")
    elif spec.type == "date":
        dv = DataValidation(type="date", operator="between", formula1=str(int(to_excel(low))),
                            formula2=str(int(to_excel(high))))
        hint, title = _t("date_hint"), _t("date_title")
        error = _t("date_error").format(low=f"{low:%d/%m/%Y}", high=f"{high:%d/%m/%Y}")
    elif spec.type in ("integer", "number") and (spec.min is not None or spec.max is not None):
        operator, bounds, text = _bounds(spec)
        kind = "whole" if spec.type == "integer" else "decimal"
        dv = DataValidation(type=kind, operator=operator, formula1=bounds[0],
                            formula2=bounds[1] if len(bounds) > 1 else None)
        message = "number_error" if spec.type == "integer" else "decimal_error"
        hint = error = _t(message).format(range=text)
        title = _t("number_title")
    elif spec.help:
        dv, hint, title, error = DataValidation(), "", "", ""
    else:
        return
    dv.allow_blank, dv.errorStyle = True, "stop"
    dv.showErrorMessage, dv.showInputMessage = bool(error), True
    dv.errorTitle, dv.error = title[:32], _clip(error, 225)
    dv.promptTitle, dv.prompt = _clip(spec.header, 32), _clip(spec.help or hint, 255)
    dv.add(cells)
    ws.add_data_validation(dv)


def _bounds(spec: Column) -> tuple[str, list[str], str]:
    """Excel operator, its operands and the Vietnamese wording of a number column's range."""
    low = None if spec.min is None else _plain_number(spec.min)
    high = None if spec.max is None else _plain_number(spec.max)
    if low is not None and high is not None:
        return "between", [str(low), str(high)], _t("range").format(low=low, high=high)
    if low is not None:
        return "greaterThanOrEqual", [str(low)], _t("range_low").format(low=low)
    return "lessThanOrEqual", [str(high)], _t("range_high").format(high=high)


def _plain_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


# Instructions


def _write_guide(ws: Worksheet, job: _Job) -> None:
    """What the form is and how to fill it, then a table of every sheet's columns."""
    form, unit, office = job.form, job.unit, job.office
    widths = (6, 32, 11, 60, 42)
    for col, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = width
    span, text_width = len(widths), sum(widths[1:])
    heads = [(_t("guide_title"), _font(14, bold=True)),
             (_t("guide_form").format(title=form.title, year=job.school_year), _font(bold=True)),
             (_t("guide_unit").format(unit=unit.name, code=unit.code, office=office.name,
                                         parent=office.parent), _font(italic=True))]
    for row, (text, font) in enumerate(heads, start=1):
        _merged(ws, row, 1, span, text, font, _CENTER)
    row = len(heads) + 2
    for number, step in enumerate(_guide_steps(job), 1):
        _put(ws.cell(row, 1), f"{number}.", alignment=_CENTER)
        _merged(ws, row, 2, span, step, _font(), _LEFT)
        ws.row_dimensions[row].height = 16 * _lines(step, text_width)
        row += 1
    for index, sheet in enumerate(form.sheets):
        if index:  # each later sheet's table starts a printed page
            ws.row_breaks.append(Break(id=row))
        row += 1
        text = _t("guide_sheet").format(name=sheet.name, title=sheet.title or sheet.name)
        _merged(ws, row, 1, span, text, _font(bold=True), _LEFT)
        row += 1
        for col, head in enumerate(_paragraphs("guide_head"), start=1):
            _put(ws.cell(row, col), head, _font(11, bold=True), alignment=_CENTER, border=_BOX,
                 fill=_GREY)
        for number, spec in enumerate((*sheet.fields, *sheet.columns), start=1):
            row += 1
            cells = _guide_row(spec, job.vocabs, is_field=spec in sheet.fields)
            for col, value in enumerate((number, *cells), start=1):
                _put(ws.cell(row, col), value, alignment=_CENTER if col in (1, 3) else _LEFT,
                     border=_BOX)
            ws.row_dimensions[row].height = 16 * max(
                _lines(str(v), w) for v, w in zip(cells, widths[1:], strict=True))
    _setup_page(ws, f"A1:{get_column_letter(span)}{row}", None)
    _protect(ws)


def _guide_steps(job: _Job) -> list[str]:
    """The numbered instructions, from the form's sheets, locked fields and checks."""
    locked = [f"“{f.header}”" for s in job.form.sheets for f in s.fields if f.locked]
    words = {"title": job.form.title, "year": job.school_year, "unit": job.unit.name,
             "office": job.office.name, "file": template_filename(job.form, job.unit),
             "sheets": ", ".join(f"“{s.name}”" for s in job.form.sheets),
             "fields": ", ".join(locked)}
    steps = [text.format(**words) for text in _paragraphs("guide_steps")]
    if locked:
        steps.append(_t("guide_locked").format(**words))
    carried = [f"“{s.name}”" for s in job.form.sheets if job.unit.carried.get(s.id)]
    if carried:
        steps.append(_t("guide_carried").format(**{**words, "sheets": ", ".join(carried)}))
    steps += [step for s in job.form.sheets for c in s.checks for step in _check_step(s, c, job)]
    return steps + [text.format(**words) for text in _paragraphs("guide_last")]


def _check_step(sheet: Sheet, check: Check, job: _Job) -> list[str]:
    """A cross-column check, told as an instruction."""
    params = check.params
    if check.check == "required_if" and params.get("when_column"):
        when = sheet.column(params["when_column"])
        vocab = job.vocabs[when.choices] if when.choices else None
        values = [vocab.label_of(c) if vocab and c in vocab.codes else str(c)
                  for c in params.get("when_in", ())]
        return [_t("guide_required_if").format(
            when=when.header, values=_t("or").join(f"“{v}”" for v in values),
            column=sheet.column(check.column).header)]
    if check.check == "unique" and params.get("columns"):
        names = " + ".join(sheet.column(c).header for c in params["columns"])
        return [_t("guide_unique").format(columns=names)]
    return []


def _guide_row(spec: Column, vocabs: dict[str, Vocabulary], is_field: bool) -> tuple[str, ...]:
    """Header, required, allowed values and note of one column or header field."""
    if spec.type == "choice" and spec.choices:
        allowed = ", ".join(vocabs[spec.choices].labels)
    elif spec.type in ("integer", "number") and (spec.min is not None or spec.max is not None):
        allowed = f"{_type_text(spec.type)} {_bounds(spec)[2]}"
    else:
        allowed = _type_text(spec.type)
    notes = [_t("field_note")] if is_field else []
    notes += [_t("locked_note")] if spec.locked else []
    notes += [spec.help] if spec.help else []
    required = _t("yes") if spec.required else _t("no")
    return spec.header, required, allowed, " ".join(notes)


# Texts: everything the school reads is in texts.yaml (sections "template", "template_types";
# Quốc hiệu and tiêu ngữ in "document").


def _t(key: str) -> str:
    """One text of the template."""
    return wording.text("template", key)


def _paragraphs(key: str) -> tuple[str, ...]:
    """A list of texts of the template, one per cell or paragraph."""
    return wording.lines("template", key)


def _type_text(kind: str) -> str:
    """What a column of this type accepts, in words; a type not listed is told as text."""
    return wording.texts("template_types").get(kind) or wording.text("template_types", "text")


# Cells


def _font(size: int = 12, bold: bool = False, italic: bool = False, under: bool = False) -> Font:
    return Font(name=settings.FONT_NAME, size=size, bold=bold, italic=italic,
                underline="single" if under else None)


def _put(cell: Cell, value: object, font: Font | None = None, **style: object) -> None:
    """Write a value as a constant (text in NFC, never a formula) with the given style."""
    if isinstance(value, str):
        value = nfc(value)
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"  # "=…" from a registry name stays text: no formulas anywhere
    cell.font = font or _font()
    for name, setting in style.items():
        setattr(cell, name, setting)


def _merged(ws: Worksheet, row: int, first: int, last: int, value: object, font: Font,
            alignment: Alignment) -> Cell:
    """Merge a row's cells first..last and write the value into the first; returns it."""
    if last > first:
        ws.merge_cells(start_row=row, start_column=first, end_row=row, end_column=last)
    cell = ws.cell(row, first)
    _put(cell, value, font, alignment=alignment)
    return cell


def _lines(text: str, width: float, factor: float = 1.0) -> int:
    """Rough count of wrapped lines of text in a cell `width` characters wide."""
    return max(1, math.ceil(len(text) * factor / max(width - 1, 1)))


def _clip(text: str, limit: int) -> str:
    """Text cut to Excel's limit for validation titles and messages."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
