"""The feedback workbook of a school that gets no copy of its own file (no finding in it):
only the sheets tdkt adds, written straight as the XML parts of the package.

The parts are those openpyxl writes for the same sheets, byte for byte (tests compare the two),
so a school's feedback does not change with the way it was written; the month-end run mails
a feedback only when its bytes changed. Building and saving the same sheets with openpyxl
costs about 18 ms a workbook, most of it in its generic serialisation; this writer under 2
(mostly compressing). The stylesheet is still openpyxl's, made once per set of styles used.

Only plain values are written here (text, numbers, booleans): a sheet holding anything else
(a date) raises `Unsupported`, and the caller writes the workbook with openpyxl instead.
"""

from __future__ import annotations

import datetime as dt
import functools
import struct
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.packaging.extended import ExtendedProperties
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.styles.cell_style import StyleArray
from openpyxl.styles.numbers import BUILTIN_FORMATS_MAX_SIZE, BUILTIN_FORMATS_REVERSE
from openpyxl.styles.stylesheet import write_stylesheet
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.writer.theme import theme_xml
from openpyxl.xml.functions import tostring

from pipeline.reports.workbook import cell_value
from pipeline.settings import FONT_NAME
from pipeline.text import visible

ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip member can carry
_CELL_MAX = 32_767  # characters an Excel cell holds
_THIN = Side(style="thin")
BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_TYPE = "application/vnd.openxmlformats-officedocument"


class Unsupported(ValueError):
    """A value this writer does not write (a date): the workbook goes through openpyxl."""


@dataclass(frozen=True)
class Look:
    """How a cell of the sheets tdkt adds looks: Times New Roman, centred vertically and
    wrapped; the rest as given."""

    size: float = 12
    bold: bool = False
    italic: bool = False
    underline: str | None = None
    horizontal: str = "center"
    boxed: bool = False
    fill: str | None = None  # fgColor of a solid fill, ARGB or RGB
    number_format: str = "General"


@functools.lru_cache(maxsize=256)
def font(look: Look) -> Font:
    return Font(name=FONT_NAME, size=look.size, bold=look.bold, italic=look.italic,
                underline=look.underline)


@functools.lru_cache(maxsize=256)
def alignment(look: Look) -> Alignment:
    return Alignment(horizontal=look.horizontal, vertical="center", wrap_text=True)


@functools.lru_cache(maxsize=256)
def fill(look: Look) -> PatternFill | None:
    return PatternFill("solid", fgColor=look.fill) if look.fill else None


class _Indexed:
    """Values numbered in order of first use, after `start` defaults (openpyxl's lists)."""

    def __init__(self, start: int) -> None:
        self.ids: dict = {}
        self.start = start

    def add(self, key) -> int:
        found = self.ids.get(key)
        if found is None:
            found = self.ids[key] = self.start + len(self.ids)
        return found


@dataclass
class _Styles:
    """The workbook's styles, numbered as openpyxl numbers them: each kind in order of first
    assignment, the cell formats in order of first use in the written cells."""

    fonts: _Indexed = field(default_factory=lambda: _Indexed(1))
    fills: _Indexed = field(default_factory=lambda: _Indexed(2))
    aligns: _Indexed = field(default_factory=lambda: _Indexed(1))
    formats: _Indexed = field(default_factory=lambda: _Indexed(BUILTIN_FORMATS_MAX_SIZE))
    xfs: _Indexed = field(default_factory=lambda: _Indexed(1))
    looks: dict = field(default_factory=dict)  # Look -> (font, fill, border, format, align)

    def of(self, look: Look) -> tuple[int, int, int, int, int]:
        """The style ids of a look (numbered on its first use)."""
        ids = self.looks.get(look)
        if ids is None:
            number = BUILTIN_FORMATS_REVERSE.get(look.number_format)
            ids = self.looks[look] = (
                self.fonts.add((look.size, look.bold, look.italic, look.underline)),
                self.fills.add(look.fill if len(look.fill) == 8 else "00" + look.fill)
                if look.fill else 0,
                1 if look.boxed else 0,
                number if number is not None else self.formats.add(look.number_format),
                self.aligns.add(look.horizontal))
        return ids

    def xml(self) -> bytes:
        return _stylesheet(tuple(self.fonts.ids), tuple(self.fills.ids),
                           tuple(self.formats.ids), tuple(self.aligns.ids), tuple(self.xfs.ids))


@functools.lru_cache(maxsize=64)
def _stylesheet(fonts: tuple, fills: tuple, formats: tuple, aligns: tuple, xfs: tuple) -> bytes:
    """openpyxl's styles part for these styles (a handful of sets in a whole run)."""
    book = Workbook()
    for size, bold, italic, underline in fonts:
        book._fonts.add(font(Look(size=size, bold=bold, italic=italic, underline=underline)))
    for color in fills:
        book._fills.add(fill(Look(fill=color)))
    if any(xf[2] for xf in xfs):
        book._borders.add(BOX)
    for value in formats:
        book._number_formats.add(value)
    for horizontal in aligns:
        book._alignments.add(alignment(Look(horizontal=horizontal)))
    for font_id, fill_id, border_id, format_id, align_id in xfs:
        book._cell_styles.add(StyleArray([font_id, fill_id, border_id, format_id, 0, align_id,
                                          0, 0, 0]))
    return tostring(write_stylesheet(book))


def clean(text: str) -> str:
    """Text as a cell may hold it: no control characters, within Excel's length."""
    return ILLEGAL_CHARACTERS_RE.sub("", visible(text))[:_CELL_MAX]


def plain(value: object) -> object:
    """A cell's value as the feedback writes it: None for nothing, text cleaned (always
    written as text, never as a formula), a number, a boolean, a date or a time."""
    value = cell_value(value)
    if value == "":
        return None
    if isinstance(value, str):
        return clean(value)
    if value is None or isinstance(value, bool | int | float | dt.date | dt.time):
        return value
    return clean(str(value))


def _text(value: str) -> str:
    """Text as ElementTree escapes it in an element."""
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    return value


def _attr(value: str) -> str:
    """Text as ElementTree escapes it in an attribute."""
    value = _text(value)
    for old, new in (('"', "&quot;"), ("\r", "&#13;"), ("\n", "&#10;"), ("\t", "&#09;")):
        if old in value:
            value = value.replace(old, new)
    return value


def _number(value: float) -> str:
    return f"{value:.16g}"  # as openpyxl writes numbers


class Sheet:
    """One sheet tdkt adds, kept as what the package needs of it."""

    def __init__(self, book: Package, title: str) -> None:
        self.book, self.title = book, title
        self.widths: dict[int, float] = {}
        self.cells: dict[tuple[int, int], tuple[str, tuple]] = {}
        self.merges: set[tuple[int, int, int, int]] = set()  # ordered as openpyxl's set
        self.heights: dict[int, float] = {}
        self.used: set[tuple[int, int]] = set()  # every cell openpyxl would hold
        self.header = 0
        self.filter = self.area = ""

    def width(self, col: int, width: float) -> None:
        self.widths[col] = width

    def put(self, row: int, col: int, value: object, look: Look) -> None:
        value = plain(value)
        kind = type(value)
        if value is None:
            content = ' t="n" />'
        elif kind is str:
            space = ' xml:space="preserve"' if value.strip() and value != value.strip() else ""
            content = f' t="inlineStr"><is><t{space}>{_text(value)}</t></is></c>'
        elif kind is bool:
            content = f' t="b"><v>{int(value)}</v></c>'
        elif kind is int or kind is float:
            content = f' t="n"><v>{_number(value)}</v></c>'
        else:
            raise Unsupported(kind.__name__)
        self.cells[row, col] = (content, self.book.styles.of(look))
        self.used.add((row, col))

    def merge(self, row: int, first: int, last: int) -> None:
        self.merges.add((row, first, row, last))
        self.used.update((row, c) for c in range(first, last + 1))

    def height(self, row: int) -> float | None:
        return self.heights.get(row)

    def set_height(self, row: int, height: float) -> None:
        self.heights[row] = height

    def frame(self, header: int) -> None:
        """Print titles and frozen panes above the body (the page setup is openpyxl's as the
        feedback sets it, written as it is)."""
        self.header = header
        self.used.add((header + 1, 1))

    def table(self, filter_ref: str, area: str) -> None:
        self.filter, self.area = filter_ref, area

    def xml(self, selected: bool) -> str:
        styles = self.book.styles
        rows: dict[int, list[str]] = {r: [] for r in self.heights}
        for (r, c), (content, ids) in sorted(self.cells.items()):
            xf = styles.xfs.add(ids)
            rows.setdefault(r, []).append(f'<c r="{get_column_letter(c)}{r}" s="{xf}"{content}')
        data = []
        for r in sorted(rows):
            height = self.heights.get(r)
            attrs = f' ht="{_number(height)}" customHeight="1"' if height is not None else ""
            data.append(f'<row r="{r}"{attrs}>{"".join(rows[r])}</row>' if rows[r]
                        else f'<row r="{r}"{attrs} />')
        used_rows = [r for r, _ in self.used]
        used_cols = [c for _, c in self.used]
        dimension = (f"{get_column_letter(min(used_cols))}{min(used_rows)}:"
                     f"{get_column_letter(max(used_cols))}{max(used_rows)}")
        cols = "".join(f'<col width="{_number(w)}" customWidth="1" min="{c}" max="{c}" />'
                       for c, w in sorted(self.widths.items()))
        merges = "".join(f'<mergeCell ref="{get_column_letter(c1)}{r1}:'
                         f'{get_column_letter(c2)}{r2}" />' for r1, c1, r2, c2 in self.merges)
        top = self.header + 1
        return "".join([
            f'<worksheet xmlns="{_MAIN}"><sheetPr><outlinePr summaryBelow="1" '
            'summaryRight="1" /><pageSetUpPr fitToPage="1" /></sheetPr>',
            f'<dimension ref="{dimension}" /><sheetViews><sheetView tabSelected='
            f'"{int(selected)}" workbookViewId="0"><pane ySplit="{self.header}" '
            f'topLeftCell="A{top}" activePane="bottomLeft" state="frozen" /><selection '
            'pane="bottomLeft" activeCell="A1" sqref="A1" /></sheetView></sheetViews>'
            '<sheetFormatPr baseColWidth="8" defaultRowHeight="15" />',
            f"<cols>{cols}</cols>" if cols else "",
            f"<sheetData>{''.join(data)}</sheetData>" if data else "<sheetData />",
            f'<autoFilter ref="{self.filter}" />' if self.filter else "",
            f'<mergeCells count="{len(self.merges)}">{merges}</mergeCells>' if merges else "",
            '<printOptions horizontalCentered="1" /><pageMargins left="0.6" right="0.4" '
            'top="1" bottom="1" header="0.5" footer="0.5" /><pageSetup orientation='
            '"landscape" paperSize="9" fitToHeight="0" fitToWidth="1" /><headerFooter>'
            f'<oddHeader /><oddFooter>&amp;C&amp;"{FONT_NAME},Regular"Trang &amp;P/&amp;N'
            '</oddFooter><evenHeader /><evenFooter /><firstHeader /><firstFooter />'
            '</headerFooter></worksheet>'])

    def names(self, index: int) -> str:
        """The sheet's defined names in workbook.xml: filter, print titles, print area."""
        quoted = _text(quote_sheetname(self.title))
        out = []
        if self.filter:
            out.append(f'<definedName name="_xlnm._FilterDatabase" localSheetId="{index}" '
                       f'hidden="1">{quoted}!{_absolute(self.filter)}</definedName>')
        out.append(f'<definedName name="_xlnm.Print_Titles" localSheetId="{index}">'
                   f'{quoted}!${self.header}:${self.header}</definedName>')
        if self.area:
            out.append(f'<definedName name="_xlnm.Print_Area" localSheetId="{index}">'
                       f'{quoted}!{_absolute(self.area)}</definedName>')
        return "".join(out)


def _absolute(ref: str) -> str:
    """"A1:J9" as "$A$1:$J$9"."""
    return ":".join("$" + "".join(c if c.isalpha() else "" for c in part) + "$"
                    + "".join(c for c in part if c.isdigit()) for part in ref.split(":"))


# The zip package, written as zipfile.ZipFile writes these members (each deflated at zlib's
# default level, dated ZIP_TIME, read-write for its owner), without its per-member work: a
# province's feedback is 3,000 packages of 9 members, most of them the same in every package
# (theme, styles, relationships), each deflated once here.
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # zipfile's structFileHeader
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # structCentralDir
_END = struct.Struct("<4s4H2LH")  # structEndArchive
_SYSTEM = zipfile.ZipInfo().create_system  # what zipfile writes here: 0 on Windows, else 3
_VERSION = 20  # zipfile's DEFAULT_VERSION: deflate, no zip64
_UTF8_NAME = 0x800
_OWNER_RW = 0o600 << 16
_DOS_DATE = (ZIP_TIME[0] - 1980) << 9 | ZIP_TIME[1] << 5 | ZIP_TIME[2]
_DOS_TIME = ZIP_TIME[3] << 11 | ZIP_TIME[4] << 5 | ZIP_TIME[5] // 2
_PACKED: dict[bytes, tuple[int, bytes]] = {}  # a member's bytes → (CRC-32, deflated)
_MAX_PACKED = 64


def _packed(data: bytes) -> tuple[int, bytes]:
    """A member's CRC-32 and its bytes deflated as zipfile deflates them (raw stream,
    zlib's default level); the same member is deflated once."""
    found = _PACKED.get(data)
    if found is None:
        packer = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        found = (zlib.crc32(data), packer.compress(data) + packer.flush())
        if len(_PACKED) >= _MAX_PACKED:
            del _PACKED[next(iter(_PACKED))]
        _PACKED[data] = found
    return found


def zip_package(parts: Sequence[tuple[str, str | bytes]]) -> bytes:
    """The package of `parts` (name, text or bytes), byte for byte what zipfile.ZipFile
    writes for them as Package.save did (tests/test_feedback_xml.py compares)."""
    body = bytearray()
    central = bytearray()
    for name, data in parts:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        crc, packed = _packed(raw)
        try:
            filename, flags = name.encode("ascii"), 0
        except UnicodeEncodeError:
            filename, flags = name.encode("utf-8"), _UTF8_NAME
        central += _CENTRAL.pack(b"PK\x01\x02", _VERSION, _SYSTEM, _VERSION, 0, flags,
                                 zipfile.ZIP_DEFLATED, _DOS_TIME, _DOS_DATE, crc, len(packed),
                                 len(raw), len(filename), 0, 0, 0, 0, _OWNER_RW, len(body))
        central += filename
        body += _LOCAL.pack(b"PK\x03\x04", _VERSION, 0, flags, zipfile.ZIP_DEFLATED, _DOS_TIME,
                            _DOS_DATE, crc, len(packed), len(raw), len(filename), 0)
        body += filename
        body += packed
    end = _END.pack(b"PK\x05\x06", 0, 0, len(parts), len(parts), len(central), len(body), 0)
    return bytes(body + central + end)


class Package:
    """A workbook of the sheets tdkt adds, written as openpyxl writes it."""

    def __init__(self) -> None:
        self.styles = _Styles()
        self.sheets: list[Sheet] = []

    def sheet(self, title: str) -> Sheet:
        self.sheets.append(Sheet(self, title))
        return self.sheets[-1]

    def save(self, path: Path, title: str, created: dt.datetime) -> None:
        """Write the package with fixed times: the same sheets, the same bytes."""
        stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
        n = len(self.sheets)
        parts = [
            ("docProps/app.xml", _app()),
            ("docProps/core.xml", _core(title, stamp)),
            ("xl/theme/theme1.xml", theme_xml),
            *((f"xl/worksheets/sheet{i}.xml", s.xml(i == 1))
              for i, s in enumerate(self.sheets, start=1)),
            ("xl/styles.xml", self.styles.xml()),  # after the sheets: they number the formats
            ("_rels/.rels", _ROOT_RELS),
            ("xl/workbook.xml", self._workbook()),
            ("xl/_rels/workbook.xml.rels", "".join([
                f'<Relationships xmlns="{_PKG_REL}">',
                *(f'<Relationship Type="{_REL}/worksheet" Target="/xl/worksheets/sheet{i}.xml"'
                  f' Id="rId{i}" />' for i in range(1, n + 1)),
                f'<Relationship Type="{_REL}/styles" Target="styles.xml" Id="rId{n + 1}" />'
                f'<Relationship Type="{_REL}/theme" Target="theme/theme1.xml" '
                f'Id="rId{n + 2}" /></Relationships>'])),
            ("[Content_Types].xml", _content_types(n)),
        ]
        path.write_bytes(zip_package(parts))

    def _workbook(self) -> str:
        sheets = "".join(f'<sheet name="{_attr(s.title)}" sheetId="{i}" state="visible" '
                         f'r:id="rId{i}" />' for i, s in enumerate(self.sheets, start=1))
        names = "".join(s.names(i) for i, s in enumerate(self.sheets))
        return (f'<workbook xmlns:r="{_REL}" xmlns="{_MAIN}"><workbookPr /><workbookProtection />'
                '<bookViews><workbookView visibility="visible" minimized="0" '
                'showHorizontalScroll="1" showVerticalScroll="1" showSheetTabs="1" '
                'tabRatio="600" firstSheet="0" activeTab="0" autoFilterDateGrouping="1" />'
                f'</bookViews><sheets>{sheets}</sheets><definedNames>{names}</definedNames>'
                '<calcPr calcId="124519" fullCalcOnLoad="1" /></workbook>')


@functools.cache
def _app() -> bytes:
    return tostring(ExtendedProperties().to_tree())


def _core(title: str, stamp: str) -> str:
    return ('<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
            'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f'<dc:creator>tdkt</dc:creator><dc:title>{_text(title)}</dc:title>'
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified>'
            '<cp:lastModifiedBy>tdkt</cp:lastModifiedBy></cp:coreProperties>')


_ROOT_RELS = (
    f'<Relationships xmlns="{_PKG_REL}"><Relationship Type="{_REL}/officeDocument" '
    'Target="xl/workbook.xml" Id="rId1" /><Relationship Type="http://schemas.openxmlformats'
    '.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml" '
    f'Id="rId2" /><Relationship Type="{_REL}/extended-properties" Target="docProps/app.xml" '
    'Id="rId3" /></Relationships>')


def _content_types(sheets: int) -> str:
    override = '<Override PartName="{}" ContentType="{}" />'.format
    return "".join([
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml" /><Default Extension="xml" ContentType="application/xml" />',
        override("/xl/styles.xml", f"{_TYPE}.spreadsheetml.styles+xml"),
        override("/xl/theme/theme1.xml", f"{_TYPE}.theme+xml"),
        override("/docProps/core.xml",
                 "application/vnd.openxmlformats-package.core-properties+xml"),
        override("/docProps/app.xml", f"{_TYPE}.extended-properties+xml"),
        *(override(f"/xl/worksheets/sheet{i}.xml", f"{_TYPE}.spreadsheetml.worksheet+xml")
          for i in range(1, sheets + 1)),
        override("/xl/workbook.xml", f"{_TYPE}.spreadsheetml.sheet.main+xml"),
        "</Types>"])
