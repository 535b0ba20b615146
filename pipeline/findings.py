"""The one record every problem becomes, the code catalogue, and the table all reports show."""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import settings
from pipeline.cells import address_parts
from pipeline.text import clean
from pipeline.yamlfile import read_yaml

if TYPE_CHECKING:  # pandas is loaded by findings_frame only: `tdkt history` does without it
    import pandas as pd


class DefinitionError(Exception):
    """A form, vocabulary, rule or catalogue file of ours is wrong: our mistake, not a school's."""


class Severity(StrEnum):
    ERROR = "error"  # Lỗi: the row or file is left out of the totals
    WARNING = "warning"  # Cảnh báo: counted, but the Phòng should check it

    @property
    def label(self) -> str:
        """The Vietnamese word shown in reports."""
        return {"error": "Lỗi", "warning": "Cảnh báo"}[self.value]


@dataclass(frozen=True)
class CodeEntry:
    code: str
    severity: Severity
    scope: str
    message: str
    hint: str
    fix: str = ""  # what to do in the marked cell of the feedback copy (the hint when unset)


@functools.cache
def catalogue(path: Path = settings.CATALOGUE_PATH) -> dict[str, CodeEntry]:
    """The catalogue of finding codes, loaded from schemas/findings.yaml."""
    raw = read_yaml(path)
    entries: dict[str, CodeEntry] = {}
    for code, spec in raw.items():
        try:
            entries[code] = CodeEntry(
                code=code,
                severity=Severity(spec["severity"]),
                scope=spec["scope"],
                message=spec["message"],
                hint=spec["hint"],
                fix=spec.get("fix") or spec["hint"],
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise DefinitionError(f"{path}: entry {code!r} is incomplete: {exc}") from exc
    return entries


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


@dataclass(frozen=True)
class Finding:
    """One problem found in one place; the message is rendered from the catalogue when made."""

    code: str
    file: str
    sheet: str | None = None
    cell: str | None = None  # "E12"; "12" for a whole row, "E" for a whole column
    column: str | None = None  # the Vietnamese header, as the school sees it
    value: str | None = None  # what was found, as text
    expected: str | None = None
    unit: str | None = None  # unit code the finding belongs to, when known
    severity: Severity = field(default=Severity.ERROR)
    message: str = ""
    hint: str = ""

    @classmethod
    def make(cls, code: str, file: str, **where: str | None) -> Finding:
        """A finding for `code`, with severity, message and hint taken from the catalogue."""
        entry = catalogue().get(code)
        if entry is None:
            raise DefinitionError(f"finding code {code!r} is not in the catalogue")
        text = {k: "" if v is None else _shortened(clean(str(v))) for k, v in where.items()}
        text["file"] = file
        message = entry.message.format_map(_Blank(text))
        hint = entry.hint.format_map(_Blank(text))
        return cls(code=code, file=file, severity=entry.severity, message=message, hint=hint,
                   **{k: text.get(k) or None for k in _WHERE})

    def to_dict(self) -> dict[str, str | None]:
        """The finding as a plain object for the manifest."""
        out = asdict(self)
        out["severity"] = self.severity.value
        return out

    @property
    def fix(self) -> str:
        """What to do in the finding's cell of the feedback copy (catalogue `fix`, else the
        hint), filled from the finding's own place and values."""
        entry = catalogue().get(self.code)
        if entry is None:
            return self.hint
        text = {k: getattr(self, k) or "" for k in _WHERE} | {"file": self.file}
        return entry.fix.format_map(_Blank(text))

    @property
    def row(self) -> int | None:
        """The Excel row number of the finding's cell, when it has one."""
        return address_parts(self.cell)[1]


_WHERE = ("sheet", "cell", "column", "value", "expected", "unit")
# A value echoed in a message is cut here: a cell may hold 32,767 characters.
ECHO_MAX = 200


def _shortened(text: str) -> str:
    return text if len(text) <= ECHO_MAX else text[:ECHO_MAX - 1] + "…"
FINDING_COLUMNS = [f.name for f in fields(Finding)]

# Vietnamese headers of the findings table, in report order.
FINDING_HEADERS = {
    "unit": "Mã đơn vị",
    "file": "Tệp",
    "sheet": "Trang tính",
    "cell": "Ô",
    "severity": "Mức độ",
    "code": "Mã lỗi",
    "column": "Cột",
    "value": "Giá trị tìm thấy",
    "expected": "Cần",
    "message": "Nội dung",
    "hint": "Cách sửa",
}


def _cell_order(cell: str | None) -> tuple[int, str]:
    if not cell:
        return (0, "")
    letters, row = address_parts(cell)
    return (row or 0, f"{len(letters):02d}{letters}")


def has_errors(findings: list[Finding]) -> bool:
    """Whether any finding is an error (warnings alone let a file through)."""
    return any(f.severity is Severity.ERROR for f in findings)


def sorted_findings(findings: list[Finding]) -> list[Finding]:
    """Findings in a stable reading order: file, sheet, row, column, code."""
    return sorted(
        findings,
        key=lambda f: (f.unit or "", f.file, f.sheet or "", _cell_order(f.cell), f.code,
                       f.value or ""),
    )


def findings_frame(findings: list[Finding]) -> pd.DataFrame:
    """All findings as one table, one column per field, in reading order."""
    import pandas as pd

    rows = [f.to_dict() for f in sorted_findings(findings)]
    frame = pd.DataFrame(rows, columns=FINDING_COLUMNS)
    frame["severity_label"] = [Severity(s).label for s in frame["severity"]]
    return frame
