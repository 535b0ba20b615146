"""The Sở's registry (form danh-muc-so): the communes' offices, the units the Sở manages directly
and the province's khối/cụm thi đua, read and validated like any input, then checked across its
sheets."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.findings import Finding, Severity
from pipeline.forms.definitions import Form, FormSet, Vocabulary
from pipeline.ingest.normalize import Context
from pipeline.ingest.read import read_workbook
from pipeline.ingest.submission import Registry, Submission, submission
from pipeline.settings import Limits
from pipeline.text import fold

PROVINCE_REGISTRY_FORM = "danh-muc-so"
OFFICES, UNITS, BLOCKS = "offices", "units", "blocks"

# Index column of each sheet's frame; the STT column is left out.
_KEYS = {OFFICES: "office_code", UNITS: "unit_code", BLOCKS: "block_code"}
_LEFT_OUT = ("seq",)


@dataclass(frozen=True)
class ProvinceRegistry:
    """What the Sở expects: the offices that report to it, its direct units, its khối/cụm.

    Only rows without an error are here. `usable` is False when the file is missing, not a
    workbook of this form, or lacks a sheet or a required column: the round cannot rely on it.
    """

    offices: pd.DataFrame  # index office_code; office_name, commune, email
    # index unit_code; unit_name, unit_type, level, block (the khối's name, as a Phòng's
    # registry holds it), block_code, disadvantaged, managers, teachers, support_staff, email
    units: pd.DataFrame
    blocks: pd.DataFrame  # index block_code; block_name, block_kind, note
    file: str = ""
    usable: bool = True

    @functools.cached_property
    def office_codes(self) -> frozenset[str]:
        """Every office code."""
        return frozenset(self.offices.index)

    @functools.cached_property
    def unit_codes(self) -> frozenset[str]:
        """Every direct unit's code."""
        return frozenset(self.units.index)


def as_registry(registry: ProvinceRegistry) -> Registry:
    """The direct units as a Phòng's registry, so that a round decides them as a Phòng decides
    its schools (same columns, plus unit_type and block_code)."""
    return Registry(units=registry.units)


def load_province_registry(path: Path, forms: FormSet, limits: Limits | None = None
                           ) -> tuple[ProvinceRegistry, list[Finding]]:
    """The Sở's registry and every problem found in it, each at its sheet and cell; a registry
    that cannot be used comes back empty, not usable, with the finding that says why."""
    form = forms.current(PROVINCE_REGISTRY_FORM)
    if not path.is_file():
        return _empty(form, path.name), [Finding.make(
            "registry-not-found", path.name, value=str(path),
            expected=f"tệp theo biểu mẫu “{form.title}”")]
    book, read_findings = read_workbook(path, path.name, limits)
    if book is None or any(f.severity is Severity.ERROR for f in read_findings):
        return _empty(form, path.name), read_findings
    sub = submission(book, forms, PROVINCE_REGISTRY_FORM, None, Context(vocabs=forms.vocabs),
                     read_findings=tuple(read_findings))
    if sub.form is None:
        return _empty(form, path.name), list(sub.findings)
    offices, units, blocks = (_rows(sub, sheet_id) for sheet_id in (OFFICES, UNITS, BLOCKS))
    clashes = list(_codes_used_twice(sub, offices, units))
    units = units.drop(index=[_row(f) for f in clashes])
    unknown: list[Finding] = []
    if _complete(sub, BLOCKS):  # without the khối sheet, every khối would be unknown
        unknown = list(_unknown_blocks(sub, units, blocks))
        units = units.drop(index=[_row(f) for f in unknown])
    levels = list(_commune_levels(sub, units, forms.vocabs))
    cross = sorted([*clashes, *unknown, *levels], key=lambda f: (f.row or 0, f.cell or ""))
    registry = ProvinceRegistry(
        offices=_indexed(offices, OFFICES),
        units=_indexed(_with_block_names(units, blocks), UNITS),
        blocks=_indexed(blocks, BLOCKS),
        file=sub.file,
        usable=not sub.rejected and all(_complete(sub, s) for s in (OFFICES, UNITS, BLOCKS)))
    return registry, [*sub.findings, *cross]


# Frames


def _empty(form: Form, file: str) -> ProvinceRegistry:
    """An empty registry with every column, not usable."""
    frames = {s.id: _indexed(pd.DataFrame(columns=s.column_ids, dtype=object), s.id)
              for s in form.sheets}
    frames[UNITS] = frames[UNITS].assign(block_code=pd.Series(dtype=object))
    return ProvinceRegistry(offices=frames[OFFICES], units=frames[UNITS], blocks=frames[BLOCKS],
                            file=file, usable=False)


def _complete(sub: Submission, sheet_id: str) -> bool:
    return sheet_id in sub.frames and not sub.sheet_rejected(sheet_id)


def _rows(sub: Submission, sheet_id: str) -> pd.DataFrame:
    """A sheet's rows without a row-level error (index = Excel row), with every form column."""
    columns = sub.form.sheet(sheet_id).column_ids
    rows = sub.valid_rows(sheet_id)
    if rows.empty:
        return pd.DataFrame(columns=columns, dtype=object)
    frame = rows.reindex(columns=columns).astype(object)  # a column the file left out: None
    return frame.where(frame.notna(), None)


def _indexed(rows: pd.DataFrame, sheet_id: str) -> pd.DataFrame:
    """Rows keyed by their code, in code order, without the STT column."""
    kept = rows.drop(columns=[c for c in _LEFT_OUT if c in rows])
    return kept.set_index(_KEYS[sheet_id]).sort_index()


def _with_block_names(units: pd.DataFrame, blocks: pd.DataFrame) -> pd.DataFrame:
    """The units with their khối's code in block_code and its name in block."""
    lookup = _block_lookup(blocks)
    codes = units["block"].map(lambda v: _block_code(lookup, v) or v)
    names = dict(zip(blocks["block_code"], blocks["block_name"], strict=True))
    return units.assign(block_code=codes, block=codes.map(lambda c: names.get(c, c)))


# Checks across sheets


def _key(value: object) -> str:
    return str(value).casefold()


def _row(finding: Finding) -> int:
    return int(finding.row or 0)


def _where(sub: Submission, sheet_id: str, column_id: str, row: int) -> tuple[str, str, str]:
    """Sheet name, cell and header of one column's cell in the file."""
    table = sub.tables[sheet_id]
    return table.raw.name, f"{table.letter(column_id)}{row}", table.sheet.column(column_id).header


def _codes_used_twice(sub: Submission, offices: pd.DataFrame,
                      units: pd.DataFrame) -> Iterator[Finding]:
    """A direct unit whose code is already an office's: a report and a school file would carry
    the same code, so the unit is left out (the office keeps it)."""
    if offices.empty or units.empty:
        return
    first = {}
    for row, code in offices["office_code"].items():
        first.setdefault(_key(code), int(row))
    for row, code in units["unit_code"].items():
        if _key(code) not in first:
            continue
        sheet, cell, header = _where(sub, UNITS, "unit_code", int(row))
        office_sheet, office_cell, _ = _where(sub, OFFICES, "office_code", first[_key(code)])
        yield Finding.make("code-used-twice", sub.file, sheet=sheet, cell=cell, column=header,
                           value=code, expected=f"ô {office_cell} trang tính “{office_sheet}”")


def _block_lookup(blocks: pd.DataFrame) -> dict[str, str]:
    """Each khối's code (any case) and folded name → its code."""
    lookup = {fold(str(name)): code for code, name in
              zip(blocks["block_code"], blocks["block_name"], strict=True)}
    return lookup | {_key(code): code for code in blocks["block_code"]}


def _block_code(lookup: dict[str, str], value: object) -> str | None:
    """The code of the khối a cell names by its code or its name; None when none."""
    return lookup.get(_key(value)) or lookup.get(fold(str(value)))


def _unknown_blocks(sub: Submission, units: pd.DataFrame,
                    blocks: pd.DataFrame) -> Iterator[Finding]:
    """A direct unit whose khối is neither a code nor a name on the khối sheet."""
    lookup = _block_lookup(blocks)
    codes = ", ".join(str(c) for c in blocks["block_code"]) or "chưa có khối nào"
    blocks_sheet = sub.tables[BLOCKS].raw.name
    for row, value in units["block"].items():
        if _block_code(lookup, value) is not None:
            continue
        sheet, cell, header = _where(sub, UNITS, "block", int(row))
        yield Finding.make("unknown-block", sub.file, sheet=sheet, cell=cell, column=header,
                           value=value,
                           expected=f"mã một khối ở trang tính “{blocks_sheet}” ({codes})")


def _commune_levels(sub: Submission, units: pd.DataFrame,
                    vocabs: dict[str, Vocabulary]) -> Iterator[Finding]:
    """A direct unit with a cấp học the commune manages (levels.yaml `manager`), unless its
    kind belongs to the Sở at any level (unit_types.yaml `any_level`: PTDTNT, chuyên biệt).

    A warning, not an error: `manager` is the national rule, and a province may give the Sở
    more units (rules.md); the registry is the province's word. Most often the cấp học is
    mistyped, or the school belongs to a commune and would be counted twice."""
    levels, kinds = vocabs["levels"], vocabs["unit_types"]
    province = [v.label for v in levels.values if v.attrs.get("manager") == "province"]
    any_level = [v.label for v in kinds.values if v.attrs.get("any_level")]
    expected = f"một cấp học do Sở quản lý ({', '.join(province)}) hoặc loại hình " \
               f"{', '.join(any_level)}"
    for row, level, kind in zip(units.index, units["level"], units["unit_type"], strict=True):
        if levels.by_code(level).attrs.get("manager") != "commune" \
                or kinds.by_code(kind).attrs.get("any_level"):
            continue
        sheet, cell, header = _where(sub, UNITS, "level", int(row))
        yield Finding.make("commune-level-unit", sub.file, sheet=sheet, cell=cell, column=header,
                           value=levels.label_of(level), expected=expected)
