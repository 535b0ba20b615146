"""One inbox file → an identified, normalised and validated submission with its findings."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipeline.cells import cell_address
from pipeline.findings import Finding, Severity, catalogue
from pipeline.forms.definitions import Form, FormSet, Sheet, Vocabulary
from pipeline.ingest.frames import FrameParts, Frames, frame_parts
from pipeline.ingest.normalize import (
    Context,
    derived_frame,
    fix_finding,
    normalized_parts,
    normalized_value,
)
from pipeline.ingest.read import (
    RawBook,
    Table,
    find_tables,
    form_score,
    identify_form,
    table_cells,
)
from pipeline.ingest.sections import with_sections
from pipeline.status import FileStatus
from pipeline.text import clean, fold

if TYPE_CHECKING:
    from pipeline.forms.validate import Part

# Validation (Pandera, pipeline.forms.validate) is imported where it is first used: a reader
# process never validates, and the run starts its readers before this process needs it (it
# loads while they read: 0.15 s of a run's start).


@dataclass(frozen=True)
class Submission:
    """What one file became: its form, unit, clean tables (index = Excel row) and findings.

    Findings are kept by the stage that found them and read in one order through `findings`:
    reading and identification, then each sheet's layout and values, then its validation (done
    later over many files at once), then the choice among a unit's files.
    """

    file: str
    path: Path
    sha256: str | None = None
    form: Form | None = None
    unit_code: str | None = None
    frames: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    fields: Mapping[str, Any] = field(default_factory=dict)
    tables: Mapping[str, Table] = field(default_factory=dict)
    raw: RawBook | None = None
    mtime_ns: int = 0
    superseded_by: str | None = None
    intake: tuple[Finding, ...] = ()
    # Per sheet id, in the order the sheets were read: its layout and value findings.
    sheet_findings: Mapping[str, tuple[Finding, ...]] = field(default_factory=dict)
    # Per sheet id: its validation findings; a sheet absent here is not validated yet.
    validation: Mapping[str, tuple[Finding, ...]] = field(default_factory=dict)
    choice: tuple[Finding, ...] = ()

    @functools.cached_property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding of the file, in reading order."""
        per_sheet = [f for sheet_id, found in self.sheet_findings.items()
                     for f in (*found, *self.validation.get(sheet_id, ()))]
        return (*self.intake, *per_sheet, *self.choice)

    @property
    def unvalidated(self) -> tuple[str, ...]:
        """The sheets read but not validated yet (validation runs over many files at once)."""
        return tuple(i for i in self.frames if i not in self.validation)

    @property
    def rejected(self) -> bool:
        """Whether a file-level error keeps the whole file out of the totals."""
        return any(f.severity is Severity.ERROR and _scope(f) == "file" for f in self.findings)

    @property
    def counted(self) -> bool:
        """Whether this file's rows enter the totals."""
        return self.form is not None and self.unit_code is not None and not self.rejected \
            and self.superseded_by is None

    @property
    def status(self) -> FileStatus:
        """Accepted, rejected or superseded: what became of the file."""
        if self.superseded_by:
            return FileStatus.SUPERSEDED
        return FileStatus.ACCEPTED if self.counted else FileStatus.REJECTED

    def sheet_rejected(self, sheet_id: str) -> bool:
        """Whether a sheet-level error keeps a whole sheet out."""
        if sheet_id not in self.frames:  # a sheet the form lets a file leave out is not
            return not self._optional(sheet_id)  # rejected for being absent
        table = self.tables.get(sheet_id)
        name = table.raw.name if table else None
        return any(
            f.severity is Severity.ERROR and _scope(f) == "sheet" and f.sheet == name
            for f in self.findings)

    def _optional(self, sheet_id: str) -> bool:
        return self.form is not None and self.form.has_sheet(sheet_id) \
            and self.form.sheet(sheet_id).optional

    def error_rows(self, sheet_id: str) -> set[int]:
        """Excel rows of a sheet with a row-level error: left out of the totals."""
        table = self.tables.get(sheet_id)
        if table is None:
            return set()
        return {f.row for f in self.findings if f.severity is Severity.ERROR
                and _scope(f) == "row" and f.sheet == table.raw.name and f.row}

    def valid_rows(self, sheet_id: str) -> pd.DataFrame:
        """The rows of a sheet without a row-level error, whether or not the file is tied to a
        unit (an office's own list, such as the registry, is read this way)."""
        frame = self.frames.get(sheet_id)
        if frame is None or self.form is None or self.rejected or self.superseded_by \
                or self.sheet_rejected(sheet_id):
            return pd.DataFrame()
        dropped = self.error_rows(sheet_id) & set(frame.index)
        return frame.drop(index=list(dropped)) if dropped else frame

    def counted_rows(self, sheet_id: str) -> pd.DataFrame:
        """The rows of a sheet that enter the totals."""
        return self.valid_rows(sheet_id) if self.counted else pd.DataFrame()

    def counted_parts(self, sheet_id: str) -> FrameParts | None:
        """counted_rows as arrays (None for no frame): what many files' rows are stacked from
        (pipeline.ingest.frames.stacked)."""
        if not self.counted or sheet_id not in self.frames or self.form is None \
                or self.rejected or self.superseded_by or self.sheet_rejected(sheet_id):
            return None
        parts = frame_parts(self.frames, sheet_id)
        dropped = self.error_rows(sheet_id)
        return parts.without_rows(dropped) if dropped else parts

    @property
    def report_date(self) -> dt.date | None:
        """The date the unit wrote on its form, if any."""
        value = self.fields.get("report_date")
        return value if isinstance(value, dt.date) else None


def _scope(finding: Finding) -> str:
    return catalogue()[finding.code].scope


@dataclass(frozen=True)
class Registry:
    """The units the office expects, keyed by unit code."""

    units: pd.DataFrame  # index unit_code; columns name, level, block, disadvantaged, …

    @functools.cached_property
    def codes(self) -> frozenset[str]:
        """Every unit code."""
        return frozenset(self.units.index)

    def by_name(self, text: str) -> list[str]:
        """Codes of the units whose folded name appears in the text."""
        key = f" {fold(text)} "
        return [code for code, name in self.units["unit_name"].items()
                if f" {fold(str(name))} " in key]


def _table_findings(table: Table, file: str, unit: str | None) -> list[Finding]:
    findings = []
    sheet, name = table.sheet, table.raw.name
    for column in sheet.columns:
        if column.required and column.id not in table.columns:
            findings.append(Finding.make("missing-column", file, sheet=name, column=column.header,
                                         unit=unit))
    for column_id, places in table.ambiguous.items():
        findings.append(Finding.make(
            "ambiguous-column", file, sheet=name, column=sheet.column(column_id).header,
            value=", ".join(cell_address(table.header_row0, c) for c in places), unit=unit))
    for col0, text in sorted(table.extra.items()):
        findings.append(Finding.make("unknown-column", file, sheet=name, value=text, unit=unit,
                                     cell=cell_address(table.data_row0 - 1,
                                                       col0)))
    return findings


def _field_values(table: Table, context: Context, file: str,
                  unit: str | None) -> tuple[dict[str, Any], list[Finding]]:
    values: dict[str, Any] = {}
    findings: list[Finding] = []
    for spec in table.sheet.fields:
        if spec.id not in table.fields:
            continue
        raw, row0, col0 = table.fields[spec.id]
        value, fix = normalized_value(raw, spec, context)
        values[spec.id] = value
        if fix is not None:
            findings.append(fix_finding(fix, file=file, sheet=table.raw.name,
                                        cell=cell_address(row0, col0), column=spec.header,
                                        unit=unit))
    return values, findings


def _heading_unit(table: Table, registry: Registry) -> tuple[str | None, str]:
    texts = [clean(str(v)) for row in table.raw.grid[: table.header_row0] for v in row
             if isinstance(v, str) and clean(v)]
    matches = sorted({code for text in texts for code in registry.by_name(text)})
    if len(matches) == 1:
        return matches[0], ""
    if matches:
        return None, f"tiêu đề khớp nhiều đơn vị ({', '.join(matches)})"
    return None, "; ".join(texts[:3]) or "không có tên đơn vị ở đầu trang"


def _unit_of(book: RawBook, tables: Mapping[str, Table], fields: Mapping[str, Any],
             registry: Registry) -> tuple[str | None, list[Finding]]:
    """The unit from the hidden sheet, the unit field or the heading; or why none."""
    file = book.file
    declared = (book.meta or {}).get("unit")
    code = declared or fields.get("unit_code")
    if code is None:
        legacy = [t for t in tables.values() if t.sheet.unit_from == "heading"]
        if legacy:
            found, reason = _heading_unit(legacy[0], registry)
            if found is None and reason.startswith("tiêu đề khớp nhiều"):
                return None, [Finding.make("unreadable-layout", file, sheet=legacy[0].raw.name,
                                           value=reason,
                                           expected="tên một đơn vị ở đầu danh sách")]
            code = found
            if code is None:
                return None, [Finding.make(
                    "unknown-unit", file, value=reason,
                    expected="tên một đơn vị có trong danh mục ở đầu danh sách")]
    if code is None:
        return None, [Finding.make("unknown-unit", file, value="(không ghi mã đơn vị)",
                                   expected="ô “Mã đơn vị” có mã do cơ quan tổng hợp cấp")]
    code = str(code)
    if code not in registry.codes:
        return None, [Finding.make("unknown-unit", file, value=code,
                                   expected="một mã đơn vị có trong danh mục")]
    return code, []


def _sheet_stage(file: str, unit: str | None, table: Table, context: Context,
                 validate: bool) -> tuple[FrameParts, list[Finding], list[Finding] | None]:
    """One sheet's clean table, its normalisation findings, and its validation findings (None
    when validation is left for the batch)."""
    sheet = table.sheet
    cells = table_cells(table)
    letters = {c: table.letter(c) for c in table.columns}
    parts, fixes = normalized_parts(cells, sheet, letters, context, file=file,
                                    sheet_name=table.raw.name, unit=unit)
    if sheet.derive:
        parts = FrameParts.of_frame(derived_frame(parts.frame(), sheet.derive,
                                                  context.vocabs))
    checked = None
    if validate:
        from pipeline.forms.validate import validation_findings

        checked = validation_findings(parts, sheet, context.vocabs, letters=letters, file=file,
                                      sheet_name=table.raw.name, unit=unit)
    return parts, fixes, checked


class _Letters(Mapping[str, str]):
    """Column id → its letter in a table, worked out when asked (a finding names a cell)."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def __getitem__(self, column_id: str) -> str:
        if column_id not in self._table.columns:
            raise KeyError(column_id)
        return self._table.letter(column_id)

    def __iter__(self) -> Iterator[str]:
        return iter(self._table.columns)

    def __len__(self) -> int:
        return len(self._table.columns)


def _part(sub: Submission, sheet_id: str) -> Part:
    from pipeline.forms.validate import Part

    table = sub.tables[sheet_id]
    return Part(frame_parts(sub.frames, sheet_id), _Letters(table), sub.file, table.raw.name,
                sub.unit_code)


def validated_submissions(subs: list[Submission],
                          vocabs: dict[str, Vocabulary]) -> list[Submission]:
    """Every sheet left unvalidated, validated: one Pandera run per form sheet and column set
    over all files at once; each file comes back with its sheets' validation findings."""
    from pipeline.forms import validate

    batches: dict[tuple, list[tuple[int, str]]] = {}
    for index, sub in enumerate(subs):
        for sheet_id in sub.unvalidated:
            columns = frame_parts(sub.frames, sheet_id).columns
            batches.setdefault((sub.form.key, sheet_id, columns), []).append((index, sheet_id))
    found: dict[int, dict[str, tuple[Finding, ...]]] = {}
    for batch in batches.values():
        first, sheet_id = batch[0]
        sheet = subs[first].form.sheet(sheet_id)
        parts = [_part(subs[i], s) for i, s in batch]
        for (i, s), findings in zip(batch, validate.batch_validation_findings(parts, sheet,
                                                                               vocabs),
                                    strict=True):
            found.setdefault(i, {})[s] = tuple(findings)
    return [_with_validation(sub, found[i]) if i in found else sub
            for i, sub in enumerate(subs)]


def _with_validation(sub: Submission, found: Mapping[str, tuple[Finding, ...]]) -> Submission:
    """The submission with its sheets' validation findings, one finding per fault."""
    sheet_findings = dict(sub.sheet_findings)
    validation = dict(sub.validation)
    for sheet_id, checked in found.items():
        sheet_findings[sheet_id], validation[sheet_id] = one_per_fault(
            sheet_findings.get(sheet_id, ()), checked)
    return replace(sub, sheet_findings=sheet_findings, validation=validation)


# A cell read as empty because of its formula (no cached value, or an Excel error), and the
# finding that replaces both that warning and missing-value when the cell is required.
_EMPTIED = {"formula-no-value": "formula-no-value-required",
            "error-cell": "error-cell-required"}
_MISSING = "missing-value"


def one_per_fault(read: tuple[Finding, ...], checked: tuple[Finding, ...] | list[Finding]
                  ) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
    """A sheet's reading findings and validation findings, with one finding per fault: a
    required cell empty only because its formula has no value (or shows an Excel error) gets
    one error naming the formula, not that warning plus missing-value."""
    emptied = {(f.sheet, f.cell): f for f in read if f.code in _EMPTIED}
    missing = {(f.sheet, f.cell): f for f in checked
               if f.code == _MISSING and (f.sheet, f.cell) in emptied}
    if not missing:
        return tuple(read), tuple(checked)
    merged = {key: Finding.make(_EMPTIED[emptied[key].code], f.file, sheet=f.sheet,
                                cell=f.cell, column=f.column, value=emptied[key].value,
                                expected=f.expected, unit=f.unit or emptied[key].unit)
              for key, f in missing.items()}
    kept_read = tuple(merged.get((f.sheet, f.cell), f) if f.code in _EMPTIED else f
                      for f in read)
    kept_checked = tuple(f for f in checked
                         if not (f.code == _MISSING and (f.sheet, f.cell) in missing))
    return kept_read, kept_checked


def submission(book: RawBook, forms: FormSet, form_id: str | tuple[str, ...],
               registry: Registry | None, context: Context, mtime_ns: int = 0, *,
               validate: bool = True, read_findings: tuple[Finding, ...] = ()) -> Submission:
    """Identify, normalise and validate one readable workbook.

    `form_id` may name several forms (an inbox holding two kinds of file): the workbook's
    hidden id says which, else the form whose headers it matches best (the first on a tie).
    With no registry (reading the registry itself) the file is not tied to a unit. With
    `validate=False` the sheets are left for `validated_submissions` (many files at once).
    `read_findings`: what the reader found in the file (they come first).
    """
    base = Submission(file=book.file, path=book.path, sha256=book.sha256, raw=book,
                      mtime_ns=mtime_ns)
    form_id = likely_form_id(book, forms, form_id)
    form, reason = identify_form(book, forms, form_id)
    if form is None:
        expected = f"biểu mẫu “{forms.current(form_id).title}”"
        return replace(base, intake=(*read_findings, Finding.make(
            "unknown-form", book.file, value=reason, expected=expected)))
    tables, section_findings = with_sections(form, book, find_tables(form, book))
    missing = [s for s in form.sheets if s.id not in tables and not s.optional]
    unit_table = next((t for t in tables.values() if t.sheet.fields), None)
    fields: dict[str, Any] = {}
    field_findings: list[Finding] = []
    if unit_table is not None:
        fields, field_findings = _field_values(unit_table, context, book.file, None)
    unit, unit_findings = _unit_of(book, tables, fields, registry) if registry is not None \
        else (None, [])
    intake = [*read_findings, *unit_findings, *field_findings,
              *_form_findings(book, form, forms, form_id, tables, missing), *section_findings]
    frames: dict[str, FrameParts] = {}
    sheet_findings: dict[str, tuple[Finding, ...]] = {}
    validation: dict[str, tuple[Finding, ...]] = {}
    for sheet_id, table in tables.items():
        frame, fixes, checked = _sheet_stage(book.file, unit, table, context, validate)
        frames[sheet_id] = frame
        sheet_findings[sheet_id] = tuple(_with_unit(f, unit) for f in
                                         (*_table_findings(table, book.file, unit), *fixes))
        if checked is not None:
            sheet_findings[sheet_id], validation[sheet_id] = one_per_fault(
                sheet_findings[sheet_id], tuple(_with_unit(f, unit) for f in checked))
    # The tables' link to the whole book (its bytes, every sheet) served reading only: a
    # submission travels between processes and is kept for the whole run without it.
    tables = {sheet_id: replace(table, book=None) for sheet_id, table in tables.items()}
    return replace(base, form=form, unit_code=unit, frames=Frames(frames), fields=fields,
                   tables=tables,
                   intake=tuple(_with_unit(f, unit) for f in intake),
                   sheet_findings=sheet_findings, validation=validation)


def likely_form_id(book: RawBook, forms: FormSet, form_ids: str | tuple[str, ...]) -> str:
    """Which of the forms a workbook is meant to be: the one its hidden id declares, else the
    one whose headers it matches best (the first named on a tie or no match)."""
    if isinstance(form_ids, str):
        return form_ids
    declared = (book.meta or {}).get("form")
    if declared in form_ids or len(form_ids) == 1:
        return declared if declared in form_ids else form_ids[0]
    scores = {f: max((form_score(v, book) for v in forms.versions(f)), default=0)
              for f in form_ids}
    return max(form_ids, key=lambda f: (scores[f], -form_ids.index(f)))


def _with_unit(finding: Finding, unit: str | None) -> Finding:
    if finding.unit or not unit:
        return finding
    return replace(finding, unit=unit)


def _form_findings(book: RawBook, form: Form, forms: FormSet, form_id: str,
                   tables: Mapping[str, Table], missing: list[Sheet]) -> list[Finding]:
    file = book.file
    findings = []
    names = ", ".join(s.name for s in book.visible_sheets)
    for sheet in missing:
        findings.append(Finding.make("missing-sheet", file, expected=sheet.name, value=names))
    current = forms.current(form_id)
    if form.layout == "legacy":
        for table in tables.values():
            findings.append(Finding.make(
                "legacy-layout", file, sheet=table.raw.name, cell=str(table.header_row0 + 1),
                value=", ".join(table.sheet.lacks)))
    elif not form.current:
        findings.append(Finding.make("old-form-version", file, column=form.title,
                                     value=form.version, expected=current.version))
    kind = book.kind or book.path.suffix.lower().lstrip(".")
    if kind == "xls":
        findings.append(Finding.make("old-file-format", file, value=".xls (Excel 97–2003)"))
    return findings
