"""The office's unit registry: read and validated like any submission."""

from __future__ import annotations

from pathlib import Path

from pipeline.findings import Finding, has_errors
from pipeline.forms.definitions import FormSet
from pipeline.ingest.normalize import Context
from pipeline.ingest.read import read_workbook
from pipeline.ingest.submission import Registry, submission

REGISTRY_FORM = "danh-muc"


class RegistryError(Exception):
    """The registry cannot be used at all: the run cannot start."""


def load_registry(path: Path, forms: FormSet) -> tuple[Registry, list[Finding]]:
    """The registry's valid rows (index unit_code) and the problems found in it."""
    if not path.is_file():
        raise RegistryError(f"Không tìm thấy danh mục đơn vị “{path}”.")
    book, findings = read_workbook(path, path.name)
    if book is None or has_errors(findings):
        raise RegistryError(f"Không đọc được danh mục đơn vị “{path}”: "
                            + "; ".join(f.message for f in findings))
    form = forms.current(REGISTRY_FORM)
    context = Context(vocabs=forms.vocabs)
    sub = submission(book, forms, REGISTRY_FORM, None, context)
    sheet_id = form.sheets[0].id
    if sub.form is None or sheet_id not in sub.frames or sub.sheet_rejected(sheet_id):
        raise RegistryError(f"Danh mục đơn vị “{path}” không đúng mẫu: "
                            + "; ".join(f.message for f in sub.findings))
    rows = sub.valid_rows(sheet_id)  # the registry counts as a whole; rows with errors are out
    units = rows.drop(columns=[c for c in ("seq",) if c in rows]).set_index("unit_code")
    return Registry(units=units.sort_index()), [*findings, *sub.findings]
