"""Workbook files → raw cell grids → identified sheets with their tables and header fields.

Only cached cell values are read (python-calamine); nothing in a file is ever executed, and
the file is opened read-only and never written. The bytes are judged and parsed in a reader
process (pipeline.ingest.isolated): a parser that aborts or runs out of memory costs that file
an `unreadable-workbook` finding, never the run.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
import os
import pickle
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openpyxl
from python_calamine import CalamineWorkbook

from pipeline import settings
from pipeline.cells import column_letter, parse_address
from pipeline.findings import Finding
from pipeline.forms.definitions import Form, FormSet, Sheet
from pipeline.ingest import biff, isolated, sniff
from pipeline.settings import Limits
from pipeline.text import clean, fold, nfc

# Read


@dataclass
class RawSheet:
    """A sheet's cached values, row-major, grid[0][0] being A1; empty cells are None."""

    name: str
    grid: list[list[Any]]
    visible: bool = True

    def value(self, row0: int, col0: int) -> Any:
        """The value at 0-based (row, column), None outside the grid."""
        if row0 < len(self.grid) and col0 < len(self.grid[row0]):
            return self.grid[row0][col0]
        return None

    # Sent between processes, the grid travels as one pickled blob, unpacked where it is
    # first used: the parent of the reading workers rarely looks at a grid (a feedback copy
    # of a file it cannot load again), and a province's grids are millions of objects. An
    # unpacked grid keeps its blob (`_packed`: the grid and its blob; grids are never changed
    # in place) and is sent on with it, not pickled again.
    def __getstate__(self) -> dict[str, Any]:
        if "_load" in self.__dict__:  # a sheet read on first use, sent on: read it now
            try:
                self.grid  # noqa: B018 (reads it)
            except UnreadableSheet:
                self.__dict__["grid"] = []
        state = dict(self.__dict__)
        packed = state.pop("_packed", None)
        if "grid" in state:
            grid = state.pop("grid")
            state["_grid_blob"] = packed[1] if packed is not None and packed[0] is grid \
                else pickle.dumps(grid, protocol=pickle.HIGHEST_PROTOCOL)
        return state

    def __getattr__(self, name: str) -> Any:
        if name == "grid" and "_load" in self.__dict__:
            load = self.__dict__.pop("_load")
            grid = self.__dict__["grid"] = load()
            return grid
        blob = self.__dict__.get("_grid_blob") if name == "grid" else None
        if blob is None:
            raise AttributeError(name)
        grid = self.__dict__["grid"] = pickle.loads(blob)  # our own blob
        self.__dict__["_packed"] = (grid, self.__dict__.pop("_grid_blob"))
        return grid

    @classmethod
    def deferred(cls, name: str, visible: bool, load: Callable[[], list[list[Any]]]
                 ) -> RawSheet:
        """A sheet whose grid `load` reads when it is first used (it may raise
        UnreadableSheet then)."""
        sheet = cls.__new__(cls)
        sheet.__dict__.update(name=name, visible=visible, _load=load)
        return sheet

    @property
    def loaded(self) -> bool:
        """Whether the grid is at hand (not left to read on first use)."""
        return "_load" not in self.__dict__


class UnreadableSheet(Exception):
    """A sheet read on first use turned out broken: the file is unreadable (`finding`)."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.code)
        self.finding = finding


@dataclass
class RawBook:
    """A workbook as read: its sheets and the identity its hidden sheet declares, if any."""

    file: str
    path: Path
    sha256: str
    sheets: list[RawSheet]
    meta: dict[str, str] | None = None
    kind: str = ""  # what the bytes are: "xlsx", "xls" or "ods" (whatever the extension says)
    # The sheets whose XML holds formulas, error cells, hidden rows or columns or a filter
    # (None: not known, scan them all), and whether dates count from 1904.
    notable: frozenset[str] | None = None
    date1904: bool = False
    # The file's bytes as read, for the XML scan of notable sheets; dropped once the file is
    # identified and checked (None: the scan reads the file again if it is unchanged).
    package: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def visible_sheets(self) -> list[RawSheet]:
        """The sheets a person sees, less those tdkt added to a feedback copy (the list of
        findings): a school sends the corrected copy back as its submission."""
        added = set((self.meta or {}).get("added", "").split("\n")) - {""}
        return [s for s in self.sheets
                if s.visible and s.name != settings.META_SHEET and s.name not in added]


def file_sha256(path: Path) -> str:
    """The file's sha256, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


# What the file really is (pipeline.ingest.sniff judges the bytes; here they become findings)

_EXPECTED = "tệp bảng tính .xlsx (hoặc .xls, .ods)"


@dataclass
class _Inspection:
    """A file found to be a readable workbook: its kind, how far each sheet reaches, and
    the warnings found on the way (wrong extension, macros, external links)."""

    kind: str  # "xlsx" | "xls" | "ods"
    extents: dict[str, sniff.Extent]
    warnings: list[Finding]
    notable: frozenset[str] | None = frozenset()  # sheets the XML scan must read (None: all)
    date1904: bool = False


def _snapshot(path: Path, limit: int) -> bytes:
    """The file's bytes, read once and at most `limit` + 1 of them (in blocks: one read of
    `limit` bytes would reserve that much memory even for a small file)."""
    blocks: list[bytes] = []
    left = limit + 1
    with path.open("rb") as handle:
        while left > 0 and (block := handle.read(min(1 << 20, left))):
            blocks.append(block)
            left -= len(block)
    return b"".join(blocks)


def _change(before: os.stat_result, after: os.stat_result, read: int) -> str | None:
    """How the file changed while it was being read, or None when it did not."""
    if before.st_size != after.st_size or read != after.st_size:
        return f"kích thước đổi từ {before.st_size} sang {after.st_size} byte"
    if before.st_mtime_ns != after.st_mtime_ns:
        return "thời điểm sửa tệp thay đổi trong lúc đọc"
    return None


def _zip_bomb(archive: zipfile.ZipFile, limits: Limits) -> str | None:
    """What is wrong when a zip would expand too far (sizes its directory declares; nothing
    is decompressed), or None."""
    members = archive.infolist()
    total = sum(m.file_size for m in members)
    packed = max(1, sum(m.compress_size for m in members))
    if total > limits.max_uncompressed_bytes:
        return _megabytes(total)
    if total / packed > limits.max_compression_ratio and total > settings.ZIP_BOMB_MIN_BYTES:
        return f"{_megabytes(total)}, nén {total // packed} lần"
    return None


def _inspect_zip(data: bytes, name: str,
                 limits: Limits) -> tuple[_Inspection | None, list[Finding]]:
    directory = sniff.zip_directory_size(data)
    if directory > settings.MAX_ZIP_DIRECTORY_BYTES:
        return None, [Finding.make("zip-bomb", name,
                                   value=f"danh mục tệp con {_megabytes(directory)}",
                                   expected=_megabytes(settings.MAX_ZIP_DIRECTORY_BYTES))]
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None, [Finding.make("unreadable-workbook", name,
                                   value="tệp bị cắt cụt hoặc hỏng phần cuối")]
    with archive:
        bomb = _zip_bomb(archive, limits)
        if bomb is not None:
            return None, [Finding.make("zip-bomb", name, value=bomb,
                                       expected=_megabytes(limits.max_uncompressed_bytes))]
        kind = sniff.zip_kind(archive)
        if kind not in sniff.READABLE_KINDS:
            found = sniff.KIND_LABELS[kind]
            if kind == "zip":
                found = f"{found} ({sniff.zip_listing(archive)})"
            return None, [Finding.make("not-a-workbook", name, value=found, expected=_EXPECTED)]
        try:
            scan = sniff.scan_zip(archive, kind, (limits.max_rows, limits.max_columns))
        except sniff.CorruptMember as exc:
            return None, [Finding.make("unreadable-workbook", name,
                                       value=f"phần “{exc.member}” bên trong tệp bị hỏng")]
        if scan.dtd is not None:
            return None, [Finding.make("xml-dtd", name, value=scan.dtd)]
        warnings = []
        macros = sniff.zip_macros(archive)
        if macros:
            warnings.append(Finding.make("macro-ignored", name, value=", ".join(macros)))
        links = sniff.external_links(archive) if kind == "xlsx" else []
        if links:
            shown = ", ".join(f"“{t}”" for t in links[:3])
            more = f" và {len(links) - 3} liên kết khác" if len(links) > 3 else ""
            warnings.append(Finding.make("external-link", name, value=shown + more))
    notable = scan.notable if kind == "xlsx" else frozenset()
    return _Inspection(kind, scan.extents, warnings, notable, scan.date1904), []


def _inspect_cfb(data: bytes, name: str) -> tuple[_Inspection | None, list[Finding]]:
    try:
        names = sniff.cfb_names(data)
    except ValueError:
        return None, [Finding.make("unreadable-workbook", name,
                                   value="cấu trúc tệp Excel 97–2003 bị hỏng hoặc bị cắt cụt")]
    kind = sniff.cfb_kind(names)
    if kind == "encrypted":
        return None, [Finding.make("password-protected", name)]
    if kind != "xls":
        return None, [Finding.make("not-a-workbook", name, value=sniff.KIND_LABELS[kind],
                                   expected=_EXPECTED)]
    warnings = [Finding.make("macro-ignored", name, value="VBA")] if sniff.cfb_macros(names) \
        else []
    try:
        extents = biff.xls_extents(sniff.cfb_stream(data, ("Workbook", "Book")))
    except ValueError:
        return None, [Finding.make("unreadable-workbook", name,
                                   value="cấu trúc tệp Excel 97–2003 bị hỏng hoặc bị cắt cụt")]
    return _Inspection("xls", extents, warnings), []


def _inspect(data: bytes, suffix: str, name: str,
             limits: Limits) -> tuple[_Inspection | None, list[Finding]]:
    """What the bytes are; a file that is not a safe workbook of a readable kind → findings."""
    magic = sniff.magic_kind(data[:4096])
    if magic == "zip":
        inspection, errors = _inspect_zip(data, name, limits)
    elif magic == "cfb":
        inspection, errors = _inspect_cfb(data, name)
    else:
        return None, [Finding.make("not-a-workbook", name, value=sniff.KIND_LABELS[magic],
                                   expected=_EXPECTED)]
    if inspection is not None and sniff.EXTENSION_KINDS[suffix] != inspection.kind:
        inspection.warnings.insert(0, Finding.make(
            "wrong-extension", name, value=suffix, expected=sniff.KIND_LABELS[inspection.kind]))
    return inspection, errors


# Reading the cached values


def _too_far(extent: sniff.Extent | None, limits: Limits) -> bool:
    return extent is not None and (extent.rows > limits.max_rows
                                   or extent.cols > limits.max_columns)


def _cut_findings(name: str, sheet: str, extent: sniff.Extent,
                  limits: Limits) -> list[Finding]:
    found = []
    if extent.rows > limits.max_rows:
        found.append(Finding.make("too-many-rows", name, sheet=sheet, cell=str(extent.rows),
                                  value=f"dòng {extent.rows}",
                                  expected=f"{limits.max_rows} dòng"))
    if extent.cols > limits.max_columns:
        letter = column_letter(extent.cols - 1)
        found.append(Finding.make("too-many-columns", name, sheet=sheet, cell=letter,
                                  value=f"cột {letter} (cột thứ {extent.cols})",
                                  expected=f"{limits.max_columns} cột"))
    return found


def _placed(rows: Iterable[tuple[Any, ...]], limits: Limits) -> list[list[Any]]:
    """The values of streamed cells, each where its own reference puts it (a cell whose
    reference is far away, in a row written without a number, stays far away), within the
    limits; the grid ends at the last row and column holding a value."""
    lines: dict[int, list[Any]] = {}
    for row in rows:
        for cell in row:
            value = cell.value  # openpyxl's empty filler has no place
            if value is None or cell.row > limits.max_rows or cell.column > limits.max_columns:
                continue
            line = lines.setdefault(cell.row, [])
            line.extend([None] * (cell.column - len(line)))
            line[cell.column - 1] = _calamine_like(value)
    width = max(map(len, lines.values()), default=0)
    return [[*line, *[None] * (width - len(line))]
            for line in (lines.get(r, []) for r in range(1, max(lines, default=0) + 1))]


def _first_cells(data: bytes, names: list[str], limits: Limits) -> dict[str, list[list[Any]]]:
    """The first rows and columns (within the limits) of .xlsx sheets too large to load whole,
    streamed with openpyxl (cached values only); calamine would hold every cell in between."""
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True,
                                  keep_links=False)
    try:
        return {sheet: _placed(book[sheet].iter_rows(
            min_row=1, max_row=limits.max_rows, min_col=1, max_col=limits.max_columns),
            limits) for sheet in names}
    finally:
        book.close()


def _calamine_like(value: Any) -> Any:
    """A value as calamine gives it: a date without a time is a date."""
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date()
    return value


def _too_large(inspection: _Inspection, name: str, limits: Limits) -> Finding | None:
    """`sheet-too-large` for a workbook calamine would build whole, beyond what the limits
    allow: an .ods with a sheet beyond them (no streaming reader for it), an .ods or .xls whose
    sheets together span more cells than one sheet within them may (calamine builds every
    sheet of those at once, empty cells included); None when it may be read."""
    if inspection.kind not in ("ods", "xls") or not inspection.extents:
        return None
    far = [(s, e) for s, e in inspection.extents.items()
           if inspection.kind == "ods" and _too_far(e, limits)]
    area = sum(e.rows * e.cols for e in inspection.extents.values())
    if not far and area <= _built_cells(limits):
        return None
    sheet, extent = far[0] if far else max(inspection.extents.items(),
                                           key=lambda item: item[1].rows * item[1].cols)
    return Finding.make("sheet-too-large", name, sheet=sheet,
                        value=f"{extent.rows} dòng × {extent.cols} cột",
                        expected=f"tối đa {limits.max_rows} dòng × {limits.max_columns} cột")


def _built_cells(limits: Limits) -> int:
    """How many cells (empty ones included) calamine may build for one .ods or .xls: as many as
    one sheet within the limits spans, and never fewer than with the default limits (a lower
    row limit in tdkt.toml cuts sheets; it does not refuse them)."""
    return max(limits.max_rows * limits.max_columns, settings.MAX_ROWS * settings.MAX_COLUMNS)


def _calamine_grid(sheet: Any, limits: Limits,
                   texts: dict[str, str | None]) -> tuple[list[list[Any]], sniff.Extent | None]:
    """A calamine sheet's values within the limits (from A1), and how far it reaches when that
    is beyond them (None when it is not). `texts`: each text already met in the workbook, as
    _cell makes it (equal texts become one object: the answer carries each once)."""
    rows = sheet.to_python(skip_empty_area=False, nrows=limits.max_rows)
    width = limits.max_columns
    grid = [[texts[v] if v in texts else _new_cell(v, texts) for v in row[:width]]
            for row in rows]
    end = sheet.end
    reach = sniff.Extent(end[0] + 1, end[1] + 1) if end else sniff.Extent()
    return grid, reach if _too_far(reach, limits) else None


def _sheets(data: bytes, inspection: _Inspection, name: str, limits: Limits,
            first: frozenset[str] | None = None) -> tuple[list[RawSheet] | None, list[Finding]]:
    """Every sheet's cached values within the limits, a warning for each sheet cut; an .xlsx
    sheet reaching beyond them is streamed (calamine would hold every cell in between), an
    .ods or .xls too large to build whole refuses the file.

    `first`: the folded names of the sheets to read now (None: all). The others of an .xlsx
    (instructions, lists) are read on first use, most never: their reach is within the limits
    (sniff measured it), so reading one later cuts nothing."""
    refused = _too_large(inspection, name, limits)
    if refused is not None:
        return None, [refused]
    far = {s: e for s, e in inspection.extents.items()
           if inspection.kind == "xlsx" and _too_far(e, limits)}
    findings: list[Finding] = []
    texts: dict[str, str | None] = {}
    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        cut = _first_cells(data, list(far), limits) if far else {}
        sheets = []
        for meta in book.sheets_metadata:
            visible = str(meta.visible).endswith("Visible")
            if first is not None and inspection.kind == "xlsx" and meta.name not in cut \
                    and meta.name != settings.META_SHEET and fold(meta.name) not in first:
                sheets.append(RawSheet.deferred(meta.name, visible, functools.partial(
                    _later_grid, book, meta.name, name, limits, texts)))
                continue
            if meta.name in cut:
                grid = [[_cell(v) for v in row] for row in cut[meta.name]]
                findings += _cut_findings(name, meta.name, far[meta.name], limits)
            else:
                grid, reach = _calamine_grid(book.get_sheet_by_name(meta.name), limits,
                                             texts)
                if reach is not None:
                    findings += _cut_findings(name, meta.name, reach, limits)
            sheets.append(RawSheet(meta.name, grid, visible))
    except (KeyboardInterrupt, SystemExit):
        raise
    # calamine and openpyxl raise many error types for broken files, and calamine can even
    # panic (a pyo3 PanicException, not an Exception): one broken file never stops the batch.
    except BaseException as exc:
        return None, [_unreadable(name, exc)]
    return sheets, findings


def _unreadable(name: str, exc: BaseException) -> Finding:
    """The finding for a workbook calamine could not read (`exc`)."""
    if "password" in str(exc).lower() or "encrypt" in str(exc).lower():
        return Finding.make("password-protected", name)
    return Finding.make("unreadable-workbook", name,
                        value="cấu trúc bảng tính bên trong bị hỏng hoặc sai chuẩn")


def _later_grid(book: Any, sheet: str, name: str, limits: Limits,
                texts: dict[str, str | None]) -> list[list[Any]]:
    """A sheet's grid read on first use; UnreadableSheet when calamine cannot read it."""
    try:
        return _calamine_grid(book.get_sheet_by_name(sheet), limits, texts)[0]
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # as in _sheets
        raise UnreadableSheet(_unreadable(name, exc)) from None


def _new_cell(value: Any, texts: dict[str, str | None]) -> Any:
    """_cell of a value not in `texts`; a text is added to them. (The kinds calamine gives
    most, a text and a number, are told by their exact type first.)"""
    kind = type(value)
    if kind is float:
        return int(value) if value.is_integer() and -1e15 < value < 1e15 else value
    cell = _cell(value)
    if kind is str:
        texts[value] = cell
    return cell


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        # Blank, or only invisible characters (zero-width space, BOM, controls): an empty cell.
        # A text starting with a letter or digit is neither (and needs no cleaning to tell).
        return value if value[:1].isalnum() or clean(value) else None
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def _judged(data: bytes, suffix: str, name: str, limits: Limits,
            first: frozenset[str] | None = None,
            ) -> tuple[_Inspection | None, list[RawSheet] | None, list[Finding]]:
    """What the bytes are and, for a safe workbook of a readable kind, its sheets' values
    with the findings on the way (`first`: as in _sheets). Runs in the reader process
    (pipeline.ingest.isolated): the only code that hands a school's bytes to a parser."""
    inspection, findings = _inspect(data, suffix, name, limits)
    sheets: list[RawSheet] | None = None
    if inspection is not None:
        sheets, cut = _sheets(data, inspection, name, limits, first)
        findings = inspection.warnings + cut if sheets is not None else cut
    return inspection, sheets, findings


_JUDGED = f"{__name__}:_judged"  # what the reader process runs, looked up there by name


def reader_died(name: str, died: isolated.ReaderDied) -> Finding:
    """`unreadable-workbook` for a file whose reader process died or gave up."""
    if died.timeout is not None:
        why = f"đọc tệp quá {died.timeout:g} giây vẫn chưa xong"
    elif died.memory:
        why = "đọc tệp cần quá nhiều bộ nhớ (tệp có cấu trúc bất thường)"
    else:
        why = ("trình đọc bảng tính dừng đột ngột khi mở tệp (tệp có cấu trúc bất thường hoặc "
               "cần quá nhiều bộ nhớ)")
    return Finding.make("unreadable-workbook", name, value=why)


def _meta(sheets: list[RawSheet]) -> dict[str, str] | None:
    for sheet in sheets:
        if sheet.name == settings.META_SHEET and sheet.grid:
            row = [clean(str(v)) if v is not None else "" for v in sheet.grid[0]] + [""] * 6
            # Row 2 of a feedback copy: the sheets tdkt added (read as names, never as data).
            added = [str(v) for v in sheet.grid[1] if v is not None] if len(sheet.grid) > 1 \
                else []
            # Columns 5–6, in the reports an office sends the Sở: the round and the version
            # of tdkt that wrote it (empty in a school's file).
            return {"form": row[0], "version": row[1], "unit": row[2], "school_year": row[3],
                    "round": row[4], "tdkt_version": row[5], "added": "\n".join(added)}
    return None


def read_workbook(path: Path, name: str, limits: Limits | None = None, *,
                  first: frozenset[str] | None = None) -> tuple[RawBook | None, list[Finding]]:
    """Open one inbox file read-only; a file that is not a safe, readable workbook becomes a
    finding, and so does anything read but worth a warning (macros, links, cut sheets).

    The file is read into memory once (within the size limit): every check and the reader see
    those same bytes, and a file that changed meanwhile (still being copied) is refused.
    `limits` default to the settings; the name in findings is NFC. In a reader process,
    the sheets whose folded names are not in `first` (when given) are read on first use: a
    sheet then found broken raises UnreadableSheet.
    """
    limits = limits or settings.default_limits()
    name = nfc(name)
    suffix = path.suffix.lower()
    if suffix not in settings.WORKBOOK_EXTENSIONS:
        return None, [Finding.make("not-a-workbook", name, value=suffix or "tệp không có đuôi",
                                   expected="tệp .xlsx (hoặc .xls, .ods)")]
    before = path.stat()
    if before.st_size == 0:
        return None, [Finding.make("empty-file", name)]
    if before.st_size > limits.max_file_bytes:
        return None, [Finding.make("file-too-large", name, value=_megabytes(before.st_size),
                                   expected=_megabytes(limits.max_file_bytes))]
    data = _snapshot(path, limits.max_file_bytes)
    try:
        inspection, sheets, findings = isolated.call(
            _JUDGED, data, suffix, name, limits, first if isolated.in_reader() else None)
    except isolated.ReaderDied as died:
        inspection, sheets, findings = None, None, [reader_died(name, died)]
    changed = _change(before, path.stat(), len(data))
    if changed is not None:
        return None, [Finding.make("file-changing", name, value=changed)]
    if sheets is None:
        return None, findings
    sha = hashlib.sha256(data).hexdigest()
    raw = RawBook(file=name, path=path, sha256=sha, sheets=sheets, package=data,
                  kind=inspection.kind if inspection is not None else "",
                  notable=inspection.notable if inspection is not None else None,
                  date1904=inspection.date1904 if inspection is not None else False,
                  meta=_meta(sheets))
    try:  # the sheets at hand first: those left for later are read only when these are empty
        empty = not any(any(v is not None for v in row)
                        for s in sorted(raw.visible_sheets, key=lambda s: not s.loaded)
                        for row in s.grid)
    except UnreadableSheet as broken:
        return None, [broken.finding]
    if empty:
        what = "mọi trang tính đều trống" if raw.sheets else "không có trang tính"
        return raw, [*findings, Finding.make("empty-workbook", name, value=what)]
    return raw, findings


# Cells the cached values leave out

# Excel's error values; a cell showing one of them holds no usable value.
EXCEL_ERRORS = frozenset({
    "#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#GETTING_DATA",
    "#SPILL!", "#CALC!", "#FIELD!", "#BLOCKED!", "#CONNECT!", "#BUSY!", "#UNKNOWN!",
})
# At most this many problem cells and hidden rows are remembered per sheet.
_MAX_MARKS = 10_000
_MAX_COLUMNS = 16_384
_SCAN_MARGIN = 5_000


def echo(text: str, limit: int = 60) -> str:
    """A value as findings repeat it: cut with "…" when long (a cell may hold 32,767
    characters; a message holding them would not fit in a report cell)."""
    return text if len(text) <= limit else f"{text[:limit]}…"


@dataclass(frozen=True)
class CellProblem:
    """A cell whose cached value cannot be used: an Excel error, or a formula never calculated.

    calamine reads both as empty; the reader puts this marker in their place instead, so that
    normalisation can report the cell. `text` is the error ("#REF!") or the formula ("=A1+1").
    """

    code: str  # "error-cell" | "formula-no-value"
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass
class SheetXml:
    """What a worksheet's XML says beyond the cached values."""

    hidden_rows: set[int] = field(default_factory=set)  # 1-based
    hidden_columns: set[int] = field(default_factory=set)  # 0-based
    filtered: bool = False  # an autofilter is switched on
    problems: dict[tuple[int, int], CellProblem] = field(default_factory=dict)  # 0-based
    date1904: bool = False


def _local(name: str) -> str:
    return name.rsplit(" ", 1)[-1].rsplit(":", 1)[-1]


def _parser(start: Any, end: Any = None, text: Any = None) -> Any:
    """An expat parser that refuses any DTD (no entities, no external references)."""
    from xml.parsers import expat

    def refuse(*_: Any) -> None:
        raise ValueError("DTD in workbook XML")

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = start
    if end is not None:
        parser.EndElementHandler = end
    if text is not None:
        parser.CharacterDataHandler = text
    return parser


def _parse_member(archive: zipfile.ZipFile, member: str, parser: Any) -> None:
    with archive.open(member) as handle:  # zipfile stops at the declared (checked) size
        for block in iter(lambda: handle.read(1 << 16), b""):
            parser.Parse(block, False)
    parser.Parse(b"", True)




def _scan_sheet(archive: zipfile.ZipFile, part: str, out: SheetXml, rows: int) -> None:
    """Hidden rows and columns, the autofilter, error cells and uncalculated formulas, over
    the first `rows` rows (rows come in order: the scan stops a margin after them, so that the
    autofilter written after the rows of a template's empty styled rows is still seen)."""
    row = [0]  # current 1-based row
    cell: dict[str, Any] = {}
    texts: dict[str, list[str]] = {}
    inside: list[str] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        name = _local(tag)
        if name == "row":
            r = attrs.get("r", "")
            row[0] = int(r) if r.isdigit() else row[0] + 1
            if row[0] > rows + _SCAN_MARGIN:
                raise _ScanDone
            cell["col"] = -1
            if attrs.get("hidden", "").lower() in ("1", "true") and \
                    len(out.hidden_rows) < _MAX_MARKS:
                out.hidden_rows.add(row[0])
        elif name == "col" and attrs.get("hidden", "").lower() in ("1", "true"):
            low, high = attrs.get("min", ""), attrs.get("max", "")
            if low.isdigit() and high.isdigit():
                out.hidden_columns.update(range(int(low) - 1, min(int(high), _MAX_COLUMNS)))
        elif name == "autoFilter" and not inside:
            out.filtered = True
        elif name == "c":
            where = parse_address(attrs.get("r", ""))
            col = where[1] if where else cell.get("col", -1) + 1
            cell.update(col=col, where=where or (row[0] - 1, col), type=attrs.get("t", "n"),
                        formula=False, value=False)
            texts.clear()
        elif name in ("f", "v", "is"):
            cell["formula" if name == "f" else "value"] = True
            texts.setdefault(name, [])
            inside.append(name)
        elif name in ("customSheetView", "customSheetViews"):
            inside.append(name)

    def end(tag: str) -> None:
        name = _local(tag)
        if inside and name == inside[-1]:
            inside.pop()
        if name != "c" or len(out.problems) >= _MAX_MARKS:
            return
        value = "".join(texts.get("v", [])).strip()
        if cell.get("type") == "e":
            out.problems[cell["where"]] = CellProblem("error-cell", value[:32] or "#N/A")
        elif cell.get("formula") and (not cell.get("value") or (
                not value and cell.get("type") not in ("str", "inlineStr", "s"))):
            formula = "".join(texts.get("f", [])).strip()[:200] or "…"  # "…": shared
            out.problems[cell["where"]] = CellProblem("formula-no-value", f"={formula}")

    def text(data: str) -> None:
        if inside and inside[-1] in texts:
            texts[inside[-1]].append(data)

    _parse_member(archive, part, _parser(start, end, text))


class _ScanDone(Exception):
    """The scan has passed the last row the reader kept."""


@functools.lru_cache(maxsize=2)
def _package(path: str, sha256: str) -> bytes | None:
    """The file's bytes when they are still those the reader read (same sha256), else None."""
    try:
        file = Path(path)
        if file.stat().st_size > settings.MAX_FILE_BYTES:
            return None
        data = file.read_bytes()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == sha256 else None


@functools.lru_cache(maxsize=32)
def _sheet_xml(package: bytes | None, path: str, sha256: str, sheet_name: str, rows: int,
               date1904: bool) -> SheetXml:
    """The scan of one worksheet's first `rows` rows (cached per file content); empty for a
    file that is not OOXML or is broken: the cached values alone describe it."""
    data = package if package is not None else _package(path, sha256)
    out = SheetXml(date1904=date1904)
    if data is None:
        return out
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            part = sniff.sheet_parts(archive).get(sheet_name)
            if part in archive.namelist():
                _scan_sheet(archive, part, out, rows)
    except _ScanDone:
        return out
    except Exception:  # a broken part: whatever calamine read stands, nothing is added
        return SheetXml(date1904=out.date1904)
    return out


def sheet_xml(book: RawBook | None, raw: RawSheet) -> SheetXml:
    """Hidden rows and columns, error cells and uncalculated formulas of one sheet, over the
    rows the reader kept."""
    if book is None:
        return SheetXml()
    if book.notable is not None and raw.name not in book.notable:
        return SheetXml(date1904=book.date1904)  # nothing the cached values leave out
    return _sheet_xml(book.package, str(book.path), book.sha256, raw.name, len(raw.grid),
                      book.date1904)


# Identify


@dataclass
class Table:
    """One form sheet found in a workbook: where its header is and which column is where."""

    sheet: Sheet
    raw: RawSheet
    header_row0: int
    columns: dict[str, int]  # column id → 0-based column index
    extra: dict[int, str]  # 0-based column index → header text not in the form
    ambiguous: dict[str, list[int]] = field(default_factory=dict)
    fields: dict[str, tuple[Any, int, int]] = field(default_factory=dict)
    # Rows the header spans in this file: one more than the form's when the school added a
    # group header above some columns (0: as the form says).
    header_rows: int = 0
    book: RawBook | None = None

    @property
    def data_row0(self) -> int:
        """First 0-based row below the header."""
        return self.header_row0 + (self.header_rows or self.sheet.header_rows)

    def letter(self, column_id: str) -> str:
        """The spreadsheet column letter of a column id in this file."""
        return column_letter(self.columns[column_id])


def header_keys(sheet: Sheet) -> dict[str, str]:
    """Each header name of the sheet's columns, folded, to its column id (first one wins)."""
    keys: dict[str, str] = {}
    for column in sheet.columns:
        for name in column.names:
            keys.setdefault(fold(name), column.id)
    return keys


class _TopRows:
    """The first rows of a sheet as cleaned text ("" for an empty cell) and, for each text,
    the column id it names (None for none): each row worked out when first looked at (the
    header is found within the first few; the rows below are names and dates)."""

    def __init__(self, raw: RawSheet, rows: int, keys: dict[str, str]) -> None:
        self._grid = raw.grid[:rows]
        self._keys = keys
        self._cleaned: dict[int, list[str]] = {}
        self._matched: dict[int, list[str | None]] = {}

    def __len__(self) -> int:
        return len(self._grid)

    def cleaned(self, row0: int) -> list[str]:
        row = self._cleaned.get(row0)
        if row is None:
            row = self._cleaned[row0] = [clean(str(v)) if v is not None else ""
                                         for v in self._grid[row0]]
        return row

    def matched(self, row0: int) -> list[str | None]:
        row = self._matched.get(row0)
        if row is None:
            keys = self._keys
            row = self._matched[row0] = [keys.get(fold(text)) if text else None
                                         for text in self.cleaned(row0)]
        return row


def _header_texts(top: _TopRows, row0: int, rows: int) -> list[str]:
    """Each column's header text over `rows` rows from row0 (the lowest text wins)."""
    block = [top.cleaned(r) for r in range(row0, min(row0 + rows, len(top)))]
    width = max((len(r) for r in block), default=0)
    texts = []
    for col0 in range(width):
        text = ""
        for row in reversed(block):  # the lowest header row wins
            if col0 < len(row) and row[col0]:
                text = row[col0]
                break
        texts.append(text)
    return texts


def _match_header(sheet: Sheet, raw: RawSheet) -> Table | None:
    """The header row matching most columns; a header one row taller than the form's (a group
    header merged over some columns, their own headers below) only when it matches more."""
    keys = header_keys(sheet)
    top = _TopRows(raw, settings.HEADER_SCAN_ROWS + sheet.header_rows + 1, keys)
    best, score = _best_header(sheet, raw, sheet.header_rows, keys, top)
    if score < len(set(keys.values())):  # else every column matched: nothing matches more
        taller, taller_score = _best_header(sheet, raw, sheet.header_rows + 1, keys, top)
        if taller is not None and taller_score > score:
            taller.header_rows = sheet.header_rows + 1
            best, score = taller, taller_score
    needed = min(settings.MIN_HEADER_MATCHES, len(sheet.columns))
    return best if best is not None and score >= needed else None


def _best_header(sheet: Sheet, raw: RawSheet, rows: int, keys: dict[str, str],
                 top: _TopRows) -> tuple[Table | None, int]:
    """The first header of `rows` rows matching most columns, and how many it matches."""
    best_row0, best_score = -1, 0
    most = len(set(keys.values()))
    for row0 in range(min(settings.HEADER_SCAN_ROWS, len(raw.grid))):
        block = range(min(row0 + rows, len(top)) - 1, row0 - 1, -1)  # the lowest first
        if not any(any(top.matched(r)) for r in block):
            continue  # no header text here: no match
        score = len(_found_ids(top, block))
        if score > best_score:
            best_row0, best_score = row0, score
            if score == most:
                break  # every column matched: no later header matches more
    if best_row0 < 0:
        return None, 0
    found: dict[str, list[int]] = {}
    extra: dict[int, str] = {}
    for col0, text in enumerate(_header_texts(top, best_row0, rows)):
        if not text:
            continue
        column_id = keys.get(fold(text))
        if column_id:
            found.setdefault(column_id, []).append(col0)
        else:
            extra[col0] = echo(text)
    return Table(sheet=sheet, raw=raw, header_row0=best_row0,
                 columns={k: v[0] for k, v in found.items()}, extra=extra,
                 ambiguous={k: v for k, v in found.items() if len(v) > 1}), best_score


def _found_ids(top: _TopRows, block: range) -> set[str]:
    """The column ids a header over the rows of `block` (the lowest first) matches: each
    column's lowest text decides."""
    width = max(len(top.cleaned(r)) for r in block)
    found = set()
    for col0 in range(width):
        for r in block:
            cleaned = top.cleaned(r)
            if col0 < len(cleaned) and cleaned[col0]:
                matched = top.matched(r)[col0]
                if matched:
                    found.add(matched)
                break
    return found


def _match_fields(table: Table) -> None:
    wanted = {fold(f.header): f for f in table.sheet.fields}
    xml = sheet_xml(table.book, table.raw)
    for row0 in range(min(table.header_row0, len(table.raw.grid))):
        row = table.raw.grid[row0]
        for col0, value in enumerate(row):
            if value is None:
                continue
            spec = wanted.get(fold(str(value)))
            if spec is None or spec.id in table.fields:
                continue
            for right in range(col0 + 1, min(col0 + 5, len(row))):
                found = _file_value(table, xml, row0, right, spec)
                if found is not None:
                    table.fields[spec.id] = (found, row0, right)
                    break
            else:
                table.fields[spec.id] = (None, row0, col0 + 1)


def find_table(sheet: Sheet, book: RawBook, taken: set[str], *, by_name: bool) -> Table | None:
    """The workbook sheet holding a form sheet.

    By name (or alias) when `by_name`; otherwise the untaken sheet whose header row matches at
    least half of the form sheet's columns (a renamed sheet).
    """
    names = {fold(n) for n in sheet.names}
    candidates = [s for s in book.visible_sheets if s.name not in taken
                  and (fold(s.name) in names) == by_name]
    for raw in candidates:
        table = _match_header(sheet, raw)
        if table is not None and (by_name or 2 * len(table.columns) >= len(sheet.columns)):
            table.book = book
            _match_fields(table)
            return table
    return None


def find_tables(form: Form, book: RawBook) -> dict[str, Table]:
    """Each form sheet's table: sheets found by name first, then renamed ones by their headers."""
    tables: dict[str, Table] = {}
    taken: set[str] = set()
    for by_name in (True, False):
        for sheet in form.sheets:
            if sheet.id in tables:
                continue
            table = find_table(sheet, book, taken, by_name=by_name)
            if table is not None:
                tables[sheet.id] = table
                taken.add(table.raw.name)
    return {s.id: tables[s.id] for s in form.sheets if s.id in tables}


def form_score(form: Form, book: RawBook) -> int:
    """How many of the form's columns the workbook's headers match (for identification)."""
    return sum(len(t.columns) for t in find_tables(form, book).values())


def identify_form(book: RawBook, forms: FormSet, form_id: str) -> tuple[Form | None, str]:
    """Which version of `form_id` the workbook is: its hidden sheet first, then its headers.

    Returns the form (or None) and, when None, the reason in Vietnamese.
    """
    if book.meta and book.meta.get("form"):
        declared = forms.get(book.meta["form"], book.meta.get("version", ""))
        if declared is not None and declared.form == form_id:
            return declared, ""
        if book.meta["form"] != form_id:
            declared_id = echo(book.meta["form"])
            return None, f"tệp khai báo biểu mẫu “{declared_id}”, không phải “{form_id}”"
    scored = sorted(((form_score(f, book), not f.current, f.version, f)
                     for f in forms.versions(form_id)), key=lambda t: (-t[0], t[1], t[2]))
    if not scored or scored[0][0] == 0:
        return None, "không tìm thấy dòng tiêu đề cột nào của biểu mẫu"
    return scored[0][3], ""


@dataclass(frozen=True)
class Serial1904:
    """A plain number in a date column of a workbook counting days from 1904 (old Mac Excel).

    calamine converts cells formatted as dates itself; a number typed into a date column is
    left as a number, and only the reader knows which day it counts from."""

    number: int | float

    def __str__(self) -> str:
        return str(self.number)


def _file_value(table: Table, xml: SheetXml, row0: int, col0: int, column: Any) -> Any:
    """A cell as the file holds it: the cached value; the marker of an error cell or of a formula
    with no cached value; a plain number in a date column of a 1904 workbook, marked so."""
    value = table.raw.value(row0, col0)
    problem = xml.problems.get((row0, col0))
    if problem is not None and (value is None or problem.code == "error-cell"):
        return problem
    if xml.date1904 and getattr(column, "type", None) == "date" and \
            isinstance(value, (int, float)) and not isinstance(value, bool):
        return Serial1904(value)
    return value


@dataclass(frozen=True)
class TableCells:
    """A table's cells as the file holds them, by column: `columns[j]` holds the values of
    column id `ids[j]`, `rows` each value's Excel row. Rows and columns hidden in the file are
    read like the others (they are data); what the cached values do not show comes with them:
    `hidden_rows` (Excel rows of the table hidden in the file), `hidden_columns` (column ids),
    `filtered` (an autofilter is on). Normalisation reports them."""

    ids: list[str]
    columns: list[list[Any]]
    rows: list[int]
    hidden_rows: list[int]
    hidden_columns: list[str]
    filtered: bool


def table_cells(table: Table) -> TableCells:
    """The table's rows as text-or-value cells, by column, up to its end (a signature block
    or a totals row); rows with no value but their number are left out."""
    xml = sheet_xml(table.book, table.raw)
    ids = list(table.columns)
    specs = [table.sheet.column(i) for i in ids]
    places = [table.columns[i] for i in ids]
    content = [n for n, i in enumerate(ids) if i != "seq"]
    # No problem cell and no 1904 date: every value is the cached one (_file_value's answer).
    plain = not xml.problems and not xml.date1904
    grid = table.raw.grid
    rows: list[list[Any]] = []
    index: list[int] = []
    for row0 in range(table.data_row0, len(grid)):
        line = grid[row0]
        if _is_footer(line) or _is_totals(line):
            break  # the signature block or the totals row: the table has ended
        if plain:
            width = len(line)
            values = [line[c] if c < width else None for c in places]
        else:
            values = [_file_value(table, xml, row0, c, spec)
                      for c, spec in zip(places, specs, strict=True)]
        if all(values[n] is None for n in content):
            continue
        rows.append(values)
        index.append(row0 + 1)
    return TableCells(
        ids=ids,
        columns=[list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in ids],
        rows=index, hidden_rows=[r for r in index if r in xml.hidden_rows],
        hidden_columns=[i for i in ids if table.columns[i] in xml.hidden_columns],
        filtered=xml.filtered)


_DATE_LINE = re.compile(r"(^|\s)ngay(\s.*)?\sthang(\s.*)?\snam(\s|$)")


_TOTALS = frozenset({"tong cong", "tong so", "cong"})


def _is_totals(row: list[Any]) -> bool:
    """A totals row under a table ("Tổng cộng" and numbers): a sum, not a record."""
    texts = False
    for v in row:
        if isinstance(v, str):
            if fold(v) not in _TOTALS:
                return False
            texts = True
    return texts


def _is_footer(row: list[Any]) -> bool:
    """A signature-block row: every text is a closing phrase or a "…, ngày … tháng … năm …" line."""
    texts = False
    for v in row:
        if v is not None:
            if not _closing(fold(str(v))):
                return False
            texts = True
    return texts


@functools.lru_cache(maxsize=1 << 12)
def _closing(text: str) -> bool:
    """Whether a folded text belongs to a signature block."""
    return text.startswith(settings.FOOTER_PREFIXES) or bool(_DATE_LINE.search(text))
