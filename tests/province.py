"""Seeded generator of a province-sized inbox: thousands of school registrations, fast.

Each school's file holds what the real template holds (the heading, the prefilled unit fields,
the header rows, the hidden identity sheet) with 30–120 staff rows and a few collectives. The
layout is copied from a template `tdkt templates` writes for each cấp học, so the reader sees
what it sees in a real inbox; the files are written with XlsxWriter (one process per core) so
that 3,000 of them take seconds, not minutes.

Used by `make bench` (tests/bench.py) and by the scale tests.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import xlsxwriter

from pipeline.config import load_config
from pipeline.forms.definitions import FormSet, load_forms
from pipeline.forms.template import UnitInfo, write_template

from .sample_inbox import (
    LEVELS,
    SCHOOL_YEAR,
    Unit,
    _collectives,
    _group_values,
    _label,
    _people,
    _result_values,
    person_values,
    write_registry,
)

SEED = 20260101
QUOTA_SHARE = 0.15
REGISTRY = "danh-muc-don-vi.xlsx"
CONFIG = "tdkt.toml"
OFFICE_RULES = "quy-tac-phong.yaml"  # the office layer the sample config names
INBOX = "hop-thu"
SAMPLES_CONFIG = Path(__file__).resolve().parent.parent / "input_samples" / "tdkt.toml"


def province_units(count: int, seed: int = SEED) -> list[Unit]:
    """`count` units over the cấp học of the sample office, 30–120 staff each."""
    rng = random.Random(seed)
    weights = [n for _, n, _, _ in LEVELS]
    units = []
    for i in range(count):
        n_level, (level, _, stem, blocks) = rng.choices(list(enumerate(LEVELS, start=1)),
                                                        weights=weights)[0]
        total = rng.randint(30, 120)
        managers = rng.randint(2, 3)
        support = rng.randint(2, 6)
        unit = Unit(code=f"{n_level}{i + 1:05d}", name=f"{stem} số {i + 1}", level=level,
                    block=f"{blocks[i % len(blocks)]} – cụm {i % 40 + 1}",
                    disadvantaged=rng.random() < 0.25, managers=managers,
                    teachers=total - managers - support, support=support,
                    email=f"truong{i + 1}@sogddt.anphu.edu.vn")
        unit.people = _people(rng, unit, QUOTA_SHARE)
        unit.collectives = _collectives(rng, unit)
        units.append(unit)
    return units


@dataclass
class Layout:
    """A template for one cấp học as openpyxl wrote it: cells with their styles, merged
    ranges, dropdowns and sheet settings; copied for each school with XlsxWriter."""

    sheets: list[dict[str, Any]]
    header: dict[str, tuple[int, dict[str, int]]]  # sheet id → (0-based header row, columns)
    unit_cells: list[tuple[str, int, int, str]]  # (sheet, row0, col0, "code"/"name")
    date_cell: tuple[str, int, int] | None


def _style(cell) -> dict[str, Any]:
    """The XlsxWriter format of an openpyxl cell's style."""
    font, fill, border, align = cell.font, cell.fill, cell.border, cell.alignment
    style: dict[str, Any] = {"font_name": font.name, "font_size": font.sz or 11,
                             "bold": bool(font.b), "italic": bool(font.i),
                             "num_format": cell.number_format, "locked": cell.protection.locked,
                             "text_wrap": bool(align.wrap_text)}
    if font.color is not None and isinstance(font.color.rgb, str):
        style["font_color"] = "#" + font.color.rgb[-6:]
    if fill.fill_type == "solid" and isinstance(fill.fgColor.rgb, str):
        style["bg_color"] = "#" + fill.fgColor.rgb[-6:]
    if align.horizontal:
        style["align"] = {"centerContinuous": "center_across"}.get(align.horizontal,
                                                                   align.horizontal)
    if align.vertical:
        style["valign"] = {"center": "vcenter"}.get(align.vertical, align.vertical)
    for side in ("left", "right", "top", "bottom"):
        if getattr(border, side).style:
            style[side] = 1
    return style


def layouts_of(forms: FormSet, office, work: Path, form_id: str = "dang-ky",
               levels: list[str] | None = None) -> dict[str, Layout]:
    """A layout per cấp học (`levels`; the sample office's by default) of the form's template
    as `tdkt templates` writes it."""
    form = forms.current(form_id)
    layouts = {}
    prefill = {}
    if form_id == "ket-qua":  # province khối fall back to the default criteria
        from pipeline.rules.ruleset import block_criteria, load_criteria

        prefill = {"criteria": block_criteria(load_criteria(SCHOOL_YEAR), "default")}
    stems = {level: stem for level, _, stem, _ in LEVELS}
    for level in levels or list(stems):
        info = UnitInfo(code="99999", name=f"{stems.get(level, 'Trường')} Mẫu", level=level,
                        headcount=120, rows=prefill)
        path = write_template(form, forms.vocabs, info, work / f"{level}.xlsx", SCHOOL_YEAR,
                              office)
        wb = openpyxl.load_workbook(path)
        sheets = []
        for ws in wb.worksheets:
            cells = [(c.row - 1, c.column - 1, c.value, _style(c))
                     for row in ws.iter_rows() for c in row if c.has_style or c.value is not None]
            sheets.append({
                "name": ws.title, "state": ws.sheet_state, "cells": cells,
                "merged": [str(r) for r in ws.merged_cells.ranges],
                "widths": {k: d.width for k, d in ws.column_dimensions.items() if d.width},
                "validations": [
                    (str(dv.sqref), {"validate": dv.type or "any", "source" if dv.type == "list"
                                     else "value": dv.formula1, "criteria": "between",
                                     "maximum": dv.formula2, "input_title": dv.promptTitle,
                                     "input_message": dv.prompt, "error_title": dv.errorTitle,
                                     "error_message": dv.error})
                    for dv in ws.data_validations.dataValidation],
                "freeze": ws.freeze_panes, "protect": ws.protection.sheet})
            # Each cell's format key, worked out once here rather than once per school file.
            sheets[-1]["keys"] = [repr(sorted(style.items())) for *_, style in cells]
        grids = {s["name"]: {(r, c): v for r, c, v, _ in s["cells"]} for s in sheets}
        header: dict[str, tuple[int, dict[str, int]]] = {}
        for sheet in form.sheets:
            wanted = {c.header: c.id for c in sheet.columns}
            rows: dict[int, dict[str, int]] = {}
            for (r, c), v in grids[sheet.name].items():
                if v in wanted:
                    rows.setdefault(r, {})[wanted[v]] = c
            r = min(r for r, found in rows.items() if len(found) >= 3)
            header[sheet.id] = (r, rows[r])
        unit_cells = [(name, r, c, "code" if v == info.code else "name")
                      for name, grid in grids.items() for (r, c), v in grid.items()
                      if v in (info.code, info.name)]
        fields = {f.id: f for f in form.sheet("unit").fields}
        label = fields["report_date"].header if "report_date" in fields else None
        date_cell = next(((name, r, c + 1) for name, grid in grids.items()
                          for (r, c), v in grid.items() if label and v == label), None)
        layouts[level] = Layout(sheets, header, unit_cells, date_cell)
    return layouts


def _school_file(args: tuple[Layout, Unit, FormSet, Path, dt.date]) -> None:
    """One school's filled registration, written as the school's Excel would save it."""
    layout, unit, forms, path, report_date = args
    rows = {"unit": [dict(row, seq=i + 1) for i, row in enumerate(unit.collectives)],
            "staff": [person_values(p, i + 1) for i, p in enumerate(unit.people)]}
    _write_school_file(layout, unit, forms, forms.current("dang-ky"), rows, path, report_date)


def _results_file(args: tuple[Layout, Unit, FormSet, Path, int, int]) -> None:
    """One school's filled year-end results, written as the school's Excel would save it."""
    layout, unit, forms, path, seed, criteria_count = args
    rng = random.Random(seed)
    people = [_result_values(p, rng, i + 1) for i, p in enumerate(unit.people)]
    groups = [_group_values(c, i + 1) for i, c in enumerate(unit.collectives)]
    form = forms.current("ket-qua")
    criteria = [{"self_score": rng.randint(5, 9)} for _ in range(criteria_count)]
    rows = {"unit": groups, "staff": people, "criteria": criteria}
    _write_school_file(layout, unit, forms, form, rows, path, None)


def _write_school_file(layout: Layout, unit: Unit, forms: FormSet, form, rows: dict,
                       path: Path, report_date: dt.date | None) -> None:
    values: dict[tuple[str, int, int], Any] = {}
    for sheet_name, r, c, what in layout.unit_cells:
        values[(sheet_name, r, c)] = unit.code if what == "code" else unit.name
    if layout.date_cell:
        values[layout.date_cell] = report_date
    for sheet in form.sheets:
        row0, columns = layout.header[sheet.id]
        for i, row in enumerate(rows[sheet.id], start=1):
            for cid, col0 in columns.items():
                value = _label(forms, sheet.column(cid), row.get(cid))
                if value is not None:
                    values[(sheet.name, row0 + i, col0)] = value
    book = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False,
                                           "strings_to_formulas": False,
                                           "strings_to_urls": False, "in_memory": True})
    # A fixed creation time: the same units give byte-identical files (and hashes).
    book.set_properties({"created": dt.datetime(2025, 10, 1)})
    formats: dict[str, Any] = {}
    for spec in layout.sheets:
        ws = book.add_worksheet(spec["name"])
        name = spec["name"]
        written: dict[tuple[int, int], tuple[Any, Any]] = {}
        for (r, c, value, style), key in zip(spec["cells"], spec["keys"], strict=True):
            fmt = formats.get(key) or formats.setdefault(key, book.add_format(style))
            value = values.get((name, r, c), value)
            written[(r, c)] = (value, fmt)
            _put(ws, r, c, value, fmt)
        for (sheet_name, r, c), value in values.items():
            if sheet_name == name and (r, c) not in written:
                _put(ws, r, c, value, None)
        for letter, width in spec["widths"].items():
            ws.set_column(f"{letter}:{letter}", width)
        for area in spec["merged"]:
            first = _rc(area.split(":")[0])
            value, fmt = written.get(first, (None, None))
            ws.merge_range(area, None, fmt)
            if value is not None:
                _put(ws, *first, value, fmt)
        for sqref, options in spec["validations"]:
            options = {k: v for k, v in options.items() if v is not None}
            for area in sqref.split():
                ws.data_validation(area, dict(options))
        if spec["freeze"]:
            ws.freeze_panes(spec["freeze"])
        if spec["protect"]:
            ws.protect()
        if spec["state"] == "hidden":
            ws.hide()
        elif spec["state"] == "veryHidden":
            ws.very_hidden()
    book.close()


def _rc(ref: str) -> tuple[int, int]:
    from xlsxwriter.utility import xl_cell_to_rowcol

    return xl_cell_to_rowcol(ref)


def _put(ws, r: int, c: int, value: Any, fmt) -> None:
    if value is None:
        ws.write_blank(r, c, None, fmt)
    elif isinstance(value, str):
        ws.write_string(r, c, value, fmt)
    elif isinstance(value, (dt.date, dt.datetime)):
        ws.write_datetime(r, c, value, fmt)
    else:
        ws.write_number(r, c, value, fmt)


def build_province(root: Path, count: int, seed: int = SEED,
                   workers: int | None = None) -> list[Unit]:
    """An office folder under `root`: tdkt.toml, a registry of `count` units and an inbox with
    one registration file per unit. Returns the units."""
    forms = load_forms()
    config = load_config(SAMPLES_CONFIG, SCHOOL_YEAR)
    units = province_units(count, seed)
    shutil.rmtree(root, ignore_errors=True)
    inbox = root / INBOX
    inbox.mkdir(parents=True)
    work = root / ".mau"
    work.mkdir()
    layouts = layouts_of(forms, config.office_for(), work)
    shutil.rmtree(work)
    write_registry(units, forms, root / REGISTRY)
    text = SAMPLES_CONFIG.read_text(encoding="utf-8")
    text = text.replace('allocation = "phan-bo-khen-thuong.xlsx"', "")
    (root / CONFIG).write_text(text, encoding="utf-8")
    shutil.copy(SAMPLES_CONFIG.parent / OFFICE_RULES, root / OFFICE_RULES)
    rng = random.Random(seed)
    jobs = [(layouts[u.level], u, forms, inbox / f"dang-ky_{u.code}.xlsx",
             dt.date(2025, 10, rng.randint(1, 15))) for u in units]
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        list(pool.map(_school_file, jobs, chunksize=32))
    return units



RESULTS_INBOX = "hop-thu-ket-qua"


def build_province_results(root: Path, units: list[Unit], seed: int = SEED,
                           workers: int | None = None) -> Path:
    """The year-end inbox of the office `build_province` made: one results file per unit, the
    staff it registered with seeded grades, months and proposals. Returns the inbox."""
    from pipeline.rules.ruleset import load_criteria

    forms = load_forms()
    config = load_config(SAMPLES_CONFIG, SCHOOL_YEAR)
    inbox = root / RESULTS_INBOX
    shutil.rmtree(inbox, ignore_errors=True)
    inbox.mkdir(parents=True)
    work = root / ".mau-ket-qua"
    work.mkdir()
    layouts = layouts_of(forms, config.office_for(), work, "ket-qua")
    shutil.rmtree(work)
    count = len(load_criteria(SCHOOL_YEAR)["default"])
    jobs = [(layouts[u.level], u, forms, inbox / f"ket-qua_{u.code}.xlsx", seed + i, count)
            for i, u in enumerate(units)]
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        list(pool.map(_results_file, jobs, chunksize=32))
    return inbox
