"""What an inbox file really is, and whether it is safe to hand to a reader — judged from bytes.

Magic bytes tell a zip (.xlsx, .xlsm, .ods) from an OLE2 compound file (.xls, or any Office
file encrypted with a password) and from anything else. A zip's members are streamed in
pieces, bounded by the sizes its directory declares (which the caller has checked), to refuse
DTDs and entity declarations, to notice macros and links to other files, and to measure how far
each sheet's values really reach. Nothing is executed, expanded or written.
"""

from __future__ import annotations

import codecs
import html
import io
import posixpath
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

import numpy as np
from defusedxml import ElementTree

from pipeline.cells import column_number

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
CFB_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")

# What each kind of content is called in a message (Vietnamese).
KIND_LABELS = {
    "xlsx": ".xlsx (Excel)",
    "xls": ".xls (Excel 97–2003)",
    "ods": ".ods (OpenDocument)",
    "xlsb": "bảng tính Excel nhị phân (.xlsb)",
    "encrypted": "tệp Office có mật khẩu",
    "docx": "văn bản Word (.docx)",
    "doc": "văn bản Word 97–2003 (.doc)",
    "pptx": "bản trình chiếu PowerPoint (.pptx)",
    "ppt": "bản trình chiếu PowerPoint 97–2003 (.ppt)",
    "opendocument": "tài liệu OpenDocument (văn bản hoặc trình chiếu)",
    "zip": "tệp nén ZIP",
    "cfb": "một loại tệp Office 97–2003 khác",
    "pdf": "tệp PDF",
    "html": "trang web (HTML), thường do phần mềm xuất ra rồi đặt đuôi bảng tính",
    "xml": "tệp XML (ví dụ bảng tính dạng Excel 2003 XML)",
    "text": "tệp văn bản thường (ví dụ CSV)",
    "unknown": "dữ liệu không rõ định dạng",
}
# The kinds the reader opens, and the kinds each extension may hold without a warning.
READABLE_KINDS = frozenset({"xlsx", "xls", "ods"})
EXTENSION_KINDS = {".xlsx": "xlsx", ".xlsm": "xlsx", ".xls": "xls", ".ods": "ods"}

_CHUNK = 1 << 20
_MAX_PIECE = 1 << 20
_TEXT_MEMBER = (".xml", ".rels", ".vml")
_DTD = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)


def magic_kind(head: bytes) -> str:
    """"zip", "cfb", "pdf", "html", "xml", "text" or "unknown", from a file's first bytes."""
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(CFB_MAGIC):
        return "cfb"
    if head.startswith(b"%PDF"):
        return "pdf"
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<!doctype html", b"<html", b"<table", b"mime-version")):
        return "html"
    if start.startswith(b"<?xml"):
        return "xml"
    sample = head[:4096]
    if sample and b"\0" not in sample:
        try:
            sample.decode("utf-8")
            return "text"
        except UnicodeDecodeError:
            if sum(b < 9 or 13 < b < 32 for b in sample) == 0:
                return "text"  # a legacy 8-bit encoding: still plain text
    return "unknown"


# OLE2 compound files (CFB)


_FREE = 0xFFFFFFFA  # sector ids from here on are markers (end of chain, free, FAT, DIFAT)
_STREAM = b"\x02"  # a directory entry's object type: a stream


@dataclass(frozen=True)
class _Compound:
    """A compound file's sectors, its allocation table and its directory entries (128 bytes)."""

    data: bytes
    size: int
    fat: list[int]
    entries: list[bytes]

    def sector(self, n: int) -> bytes:
        block = self.data[(n + 1) * self.size:(n + 2) * self.size]
        if len(block) < self.size:
            raise ValueError("sector beyond the end of the file")
        return block

    def chained(self, start: int, table: list[int] | None = None) -> Iterator[int]:
        """The sector ids of a chain, each once (a looping chain ends where it loops)."""
        table = self.fat if table is None else table
        current, seen = start, set()
        while current < _FREE and current not in seen:
            seen.add(current)
            yield current
            current = table[current] if current < len(table) else _FREE


def _ids(block: bytes) -> list[int]:
    return [int.from_bytes(block[i:i + 4], "little") for i in range(0, len(block), 4)]


def _u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "little")


def _compound(data: bytes) -> _Compound:
    """A compound file's structure; ValueError when it is broken (a cut or corrupt file)."""
    if len(data) < 512 or not data.startswith(CFB_MAGIC):
        raise ValueError("not a compound file")
    shift = int.from_bytes(data[30:32], "little")
    if shift not in (9, 12):
        raise ValueError("bad sector size")
    bare = _Compound(data, 1 << shift, [], [])
    difat = _ids(data[76:512])
    next_difat, seen = _u32(data, 68), set()
    while next_difat < _FREE and next_difat not in seen:
        seen.add(next_difat)
        entries = _ids(bare.sector(next_difat))
        difat += entries[:-1]
        next_difat = entries[-1]
    fat = [i for s in difat if s < _FREE for i in _ids(bare.sector(s))]
    compound = _Compound(data, bare.size, fat, [])
    entries = [block[at:at + 128] for n in compound.chained(_u32(data, 48))
               for block in (compound.sector(n),) for at in range(0, compound.size, 128)]
    return _Compound(data, bare.size, fat, entries)


def _entry_name(entry: bytes) -> str | None:
    length = int.from_bytes(entry[64:66], "little")
    return entry[:length - 2].decode("utf-16-le", "replace") if 2 <= length <= 64 else None


def cfb_names(data: bytes) -> set[str]:
    """The names of the streams and storages in a compound file's directory.

    Raises ValueError when the structure is broken (a cut or corrupt file)."""
    return {name for entry in _compound(data).entries
            if (name := _entry_name(entry)) is not None}


def cfb_stream(data: bytes, names: tuple[str, ...]) -> bytes:
    """The bytes of the first stream of a compound file named one of `names` (at most as many
    as the file holds). Raises ValueError when there is none or the structure is broken."""
    compound = _compound(data)
    streams = {_entry_name(e): e for e in reversed(compound.entries) if e[66:67] == _STREAM}
    entry = next((streams[n] for n in names if n in streams), None)
    if entry is None:
        raise ValueError("no such stream")
    start, size = _u32(entry, 116), min(_u32(entry, 120), len(data))
    if size >= _u32(data, 56):  # the mini-stream cutoff: larger streams use whole sectors
        return b"".join(compound.sector(n) for n in compound.chained(start))[:size]
    root = compound.entries[0] if compound.entries else bytes(128)
    mini = b"".join(compound.sector(n) for n in compound.chained(_u32(root, 116)))
    table = [i for n in compound.chained(_u32(data, 60)) for i in _ids(compound.sector(n))]
    step = 1 << int.from_bytes(data[32:34], "little")
    return b"".join(mini[n * step:(n + 1) * step] for n in compound.chained(start, table))[:size]


def cfb_kind(names: set[str]) -> str:
    """"encrypted", "xls", "doc", "ppt" or "cfb" from a compound file's directory names."""
    if names & {"EncryptionInfo", "EncryptedPackage"}:
        return "encrypted"
    if names & {"Workbook", "Book"}:
        return "xls"
    if "WordDocument" in names:
        return "doc"
    if "PowerPoint Document" in names:
        return "ppt"
    return "cfb"


def cfb_macros(names: set[str]) -> bool:
    """Whether a compound file carries a VBA project."""
    return bool(names & {"_VBA_PROJECT_CUR", "VBA", "_VBA_PROJECT"})


# Zip containers


def zip_directory_size(data: bytes) -> int:
    """The size a zip's central directory declares (read before the directory is parsed,
    which holds an object per member in memory); 0 when no end record is found."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0 or len(data) < end + 22:
        return 0
    size = int.from_bytes(data[end + 12:end + 16], "little")
    locator = end - 20
    if size == 0xFFFFFFFF and locator >= 0 and data[locator:locator + 4] == b"PK\x06\x07":
        offset = int.from_bytes(data[locator + 8:locator + 16], "little")
        if data[offset:offset + 4] == b"PK\x06\x06":
            size = int.from_bytes(data[offset + 40:offset + 48], "little")
    return size


def zip_kind(archive: zipfile.ZipFile) -> str:
    """"xlsx", "xlsb", "ods", "docx", "pptx", "opendocument" or "zip" from the members."""
    names = set(archive.namelist())
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "xl/workbook.bin" in names:
        return "xlsb"
    if "word/document.xml" in names:
        return "docx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    if "mimetype" in names and "content.xml" in names:
        with archive.open("mimetype") as stream:
            mimetype = stream.read(100)
        spreadsheet = b"application/vnd.oasis.opendocument.spreadsheet"
        return "ods" if mimetype.startswith(spreadsheet) else "opendocument"
    return "zip"


def zip_listing(archive: zipfile.ZipFile, most: int = 3) -> str:
    """The first few member names, for a message about a zip that is not a workbook."""
    names = [n for n in archive.namelist() if not n.endswith("/")]
    shown = ", ".join(f"“{n}”" for n in names[:most])
    more = f" và {len(names) - most} tệp khác" if len(names) > most else ""
    return f"chứa {shown}{more}" if names else "không chứa tệp nào"


def zip_macros(archive: zipfile.ZipFile) -> list[str]:
    """The kinds of macro a zip container carries (VBA, Excel 4.0 sheets, OpenDocument)."""
    kinds = []
    for name in archive.namelist():
        kind = ("VBA" if name.lower().endswith("vbaproject.bin")
                else "Excel 4.0 (XLM)" if name.startswith("xl/macrosheets/")
                else "Basic/Script" if name.startswith(("Basic/", "Scripts/")) else None)
        if kind and kind not in kinds:
            kinds.append(kind)
    return kinds


def external_links(archive: zipfile.ZipFile) -> list[str]:
    """The files an .xlsx links to (their targets), one entry per external link part."""
    parts = sorted(n for n in archive.namelist()
                   if n.startswith("xl/externalLinks/") and n.endswith(".xml"))
    targets = []
    for part in parts:
        folder, leaf = posixpath.split(part)
        rels = f"{folder}/_rels/{leaf}.rels"
        found = ""
        if rels in archive.namelist() and archive.getinfo(rels).file_size < _MAX_PIECE:
            root = ElementTree.fromstring(archive.read(rels))
            found = next((r.get("Target", "") for r in root
                          if r.get("TargetMode") == "External"), "")
        targets.append(found or leaf)
    return targets


def xml_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The members an XML parser would read."""
    return [i for i in archive.infolist() if i.filename.lower().endswith(_TEXT_MEMBER)
            or i.filename == "[Content_Types].xml"]


def xml_pieces(stream: IO[bytes]) -> Iterator[bytes]:
    """A member's text, UTF-8, in pieces that start at a '<' and never cut an ordinary tag.

    UTF-16 text (a byte-order mark or a NUL after the first '<') is re-encoded first."""
    head = stream.read(_CHUNK)
    decoder = None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or head[:2] in (b"<\0", b"\0<"):
        encoding = "utf-16" if head[:2] in (b"\xff\xfe", b"\xfe\xff") else (
            "utf-16-le" if head[:1] == b"<" else "utf-16-be")
        decoder = codecs.getincrementaldecoder(encoding)("replace")
    tail = b""
    chunk = head
    while chunk:
        if decoder is not None:
            chunk = decoder.decode(chunk).encode("utf-8")
        buffer = tail + chunk
        cut = buffer.rfind(b"<")
        if cut > 0:
            yield buffer[:cut]
            tail = buffer[cut:]
        elif len(buffer) > _MAX_PIECE:
            yield buffer
            tail = b""
        else:
            tail = buffer
        chunk = stream.read(_CHUNK)
    if tail:
        yield tail


class CorruptMember(Exception):
    """A zip member that cannot be unpacked or parsed (cut, corrupt, or packed oddly)."""

    def __init__(self, member: str) -> None:
        super().__init__(member)
        self.member = member


class _DtdFound(Exception):
    pass


def _without_dtd(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """The pieces, stopping with _DtdFound at a DTD or entity declaration."""
    for piece in pieces:
        if _DTD.search(piece):
            raise _DtdFound
        yield piece


# How far a sheet's values reach


@dataclass
class Extent:
    """The last row and column (1-based) holding a value; 0 for an empty sheet."""

    rows: int = 0
    cols: int = 0

    def add(self, row: int, col: int) -> None:
        """Widen the extent to a cell holding a value."""
        self.rows = max(self.rows, row)
        self.cols = max(self.cols, col)


# Row numbers and column letters are read whatever their length: calamine reads "0001048576"
# as row 1,048,576, and wraps a number too large for 32 bits to some other row (a reference of
# eleven digits made it allocate 194 GB). A number of more than 15 digits, or more than eight
# letters, is taken as BEYOND: past every limit, as far as the checks here are concerned.
BEYOND = 10**15


def reference_row(digits: bytes) -> int:
    """The row number written as `digits` (leading zeros and all); BEYOND when too long."""
    significant = digits.lstrip(b"0")
    return int(significant or b"0") if len(significant) <= 15 else BEYOND


def reference_column(letters: bytes) -> int:
    """The column number written as `letters` (1 for "A", either case); BEYOND when too long."""
    return column_number(letters) if len(letters) <= 8 else BEYOND


_PREFIX = rb"(?:[A-Za-z_][\w.-]*:)?"
_XLSX_TAG = re.compile(rb"<(/?)" + _PREFIX + rb"(row|c|v|is)(?=[\s/>])([^>]*)>")
_ROW_REF = re.compile(rb"(?:^|\s)r\s*=\s*[\"'](\d+)[\"']")
_CELL_REF = re.compile(rb"(?:^|\s)r\s*=\s*[\"']\$?([A-Za-z]+)\$?(\d*)[\"']")
_CELL_OPEN = re.compile(rb"<" + _PREFIX + rb"c[\s/>]")
_CELL_OPEN_REF = re.compile(
    rb"<" + _PREFIX + rb"c\s[^>]*?(?<![\w:.-])r\s*=\s*[\"']\$?([A-Za-z]+)\$?(\d+)[\"']")



def xlsx_bound(pieces: Iterator[bytes]) -> Extent | None:
    """A quick upper bound of a worksheet's reach: the farthest cell reference, empty cells
    included. None when some cell has no reference (only xlsx_extent can place it)."""
    bound: Extent | None = Extent()
    for piece in pieces:
        if bound is not None:
            bound = _piece_bound(piece, bound)
    return bound


def _piece_bound(piece: bytes, bound: Extent) -> Extent | None:
    """The bound widened to the cell references of one piece; None when a cell has none.

    Each reference is read inside its own tag: text such as ` r="A1"` between the tags of a
    cell written without one does not stand for it."""
    refs = _CELL_OPEN_REF.findall(piece)
    if len(refs) != len(_CELL_OPEN.findall(piece)):
        return None
    if refs:
        letters, digits = zip(*refs, strict=True)
        bound.add(max(map(reference_row, set(digits))),
                  max(map(reference_column, set(letters))))
    return bound


# A worksheet piece flattened for byte searches that stand in for patterns: spaces are " ",
# "/" is ">", ":" is "<" (a prefixed tag reads as unprefixed), quotes are '"', capital letters
# "A" and digits "0". `<c r="K104">` becomes `<c r="A000">`: counting a few such shapes
# measures every cell reference at once.
_FLAT = bytes.maketrans(
    b"\t\n\r\x0b\x0c/:'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    b"     ><\"" + b"A" * 26 + b"0" * 10)
# Every match of NOTABLE holds one of these, once flattened.
_FLAT_NOTABLE = tuple(m.translate(_FLAT) for m in (b"<f ", b"<f>", b'"e"', b"hidden",
                                                     b"autoFilter"))


def _flat_bound(flat: bytes, limits: tuple[int, int]) -> Extent | None:
    """An upper bound within `limits` when every cell of a flattened piece opens with a plain
    reference (`<c r="K104"`) of one letter and no more digits than the row limit has, less
    one; None when that is not shown (xlsx_bound then reads the references themselves)."""
    digits = len(str(limits[0] + 1)) - 1  # the most digits of a row number always allowed
    if limits[1] < 26 or digits < 1:
        return None
    cells = flat.count(b"<c ") + flat.count(b"<c>")
    shaped = longest = 0
    while shaped < cells and longest < digits:  # the shortest references first
        longest += 1
        shaped += flat.count(b'<c r="A' + b"0" * longest + b'"')
    if shaped != cells:
        return None
    return Extent(10 ** longest - 1 if longest else 0, 26 if cells else 0)


def _worksheet_scan(pieces: Iterator[bytes], limits: tuple[int, int]) -> tuple[Extent | None,
                                                                             bool]:
    """A worksheet's quick bound (as xlsx_bound, or a coarser one proven within `limits`)
    and whether its XML holds something NOTABLE, in one pass over its pieces."""
    bound: Extent | None = Extent()
    notable = False
    for piece in pieces:
        flat = piece.translate(_FLAT)
        scan = _array_scan if len(piece) >= ARRAY_PIECE else _bytes_scan
        hint, quick = scan(piece, flat, limits, hints=not notable, bounds=bound is not None)
        if hint and NOTABLE.search(piece):
            notable = True
        if bound is None:
            continue
        if quick is None:
            bound = _piece_bound(piece, bound)
        else:
            bound.add(quick.rows, quick.cols)
    return bound, notable


# A piece at least this long is scanned as an array (numpy): a few passes over it, then work on
# its tags only, where a dozen byte searches (each a pass) cost more (a 52 KB staff sheet:
# 330 -> 130 us). Shorter pieces are searched as bytes: numpy's cost per call dominates there.
ARRAY_PIECE = 12288
_PAD = bytes(32)  # after a piece's array: looking a few bytes past a tag near its end reads 0


def _bytes_scan(piece: bytes, flat: bytes, limits: tuple[int, int], *, hints: bool = True,
                bounds: bool = True) -> tuple[bool, Extent | None]:
    """Whether a piece may hold something NOTABLE (its flattened form holds a trace of it;
    False when not `hints`) and its quick bound as _flat_bound gives it (None: unknown, or
    when not `bounds`), by byte searches."""
    hint = hints and any(m in flat for m in _FLAT_NOTABLE)
    quick = None if not bounds or b":c" in piece else _flat_bound(flat, limits)
    return hint, quick


def _array_scan(piece: bytes, flat: bytes, limits: tuple[int, int], *, hints: bool = True,
                bounds: bool = True) -> tuple[bool, Extent | None]:
    """_bytes_scan's answer, found with numpy: the tags are found once (every '<' of the
    flattened piece) and the bytes after each are looked at together. The hint may be False
    where _bytes_scan's is True, never where NOTABLE matches (a filter tag, like a formula's,
    follows a '<': "autoFilter" elsewhere is not looked at)."""
    a = np.frombuffer(flat + _PAD, np.uint8)
    tags = np.flatnonzero(a[:len(flat)] == _LT)
    name, after = a[tags + 1], a[tags + 2]
    ends = (after == _SPACE) | (after == _GT)  # "<x " or "<x>" ("<x/" is flat "<x>")
    hint = hints and (
        bool(((name == ord("f")) & ends).any())
        or b"<autoAilter" in b"|".join(flat[t:t + 11] for t in tags[name == ord("a")].tolist())
        or bool(((a[:-2] == _QUOTE) & (a[1:-1] == ord("e")) & (a[2:] == _QUOTE)).any())
        or (bool(((a[:-1] == ord("h")) & (a[1:] == ord("i"))).any()) and b"hidden" in flat))
    if not bounds:
        return hint, None
    named_c = name == ord("c")
    # ":c" in the piece is a "<c" of the flattened piece that was ":c"
    if (np.frombuffer(piece, np.uint8)[tags[named_c]] == ord(":")).any():
        return hint, None
    return hint, _array_bound(a, tags[named_c & ends], limits)


def _array_bound(a: np.ndarray, cells: np.ndarray, limits: tuple[int, int]) -> Extent | None:
    """_flat_bound of a flattened piece as an array, `cells` the positions of its cell tags."""
    digits = len(str(limits[0] + 1)) - 1
    if limits[1] < 26 or not 1 <= digits <= len(_PAD) - 8:  # (else measured exactly)
        return None
    if not len(cells):
        return Extent(0, 0)
    at = cells[(a[cells + 2] == _SPACE) & (a[cells + 3] == ord("r")) & (a[cells + 4] == ord("="))
               & (a[cells + 5] == _QUOTE) & (a[cells + 6] == ord("A"))] + 7  # the digits
    shaped = longest = 0
    zeros = np.ones(len(at), dtype=bool)
    for length in range(1, digits + 1):  # the references of `length` digits, then a quote
        zeros &= a[at + length - 1] == ord("0")
        count = int((zeros & (a[at + length] == _QUOTE)).sum())
        if count:
            shaped, longest = shaped + count, length
    if shaped != len(cells):
        return None
    return Extent(10 ** longest - 1, 26)


_LT, _GT, _SPACE, _QUOTE = b"<> \""


def xlsx_extent(pieces: Iterator[bytes]) -> Extent:
    """How far a worksheet's values reach, as calamine would place them (empty cells ignored)."""
    extent = Extent()
    row = col = 0
    pending: tuple[int, int] | None = None
    for piece in pieces:
        for match in _XLSX_TAG.finditer(piece):
            closing, tag, attrs = match.groups()
            if closing:
                if tag == b"c":
                    pending = None
                continue
            if tag == b"row":
                ref = _ROW_REF.search(attrs)
                row, col = (reference_row(ref.group(1)) if ref else row + 1), 0
            elif tag == b"c":
                ref = _CELL_REF.search(attrs)
                col = reference_column(ref.group(1)) if ref else col + 1
                if ref and ref.group(2):
                    row = reference_row(ref.group(2))
                pending = None if attrs.rstrip().endswith(b"/") else (row, col)
            elif pending is not None and (tag == b"is" or piece[match.end():match.end() + 1]
                                          not in (b"", b"<")):
                extent.add(*pending)
                pending = None
    return extent


_ODS_TAG = re.compile(
    rb"<(/?)" + _PREFIX + rb"(table|table-row|table-cell|covered-table-cell)(?=[\s/>])([^>]*)>")
_ODS_NAME = re.compile(rb"(?:^|\s)" + _PREFIX + rb"name\s*=\s*\"([^\"]*)\"")
_ODS_REPEAT = re.compile(rb"number-(?:rows|columns)-repeated\s*=\s*[\"'](\d+)[\"']")


def _repeat(attrs: bytes) -> int:
    found = _ODS_REPEAT.search(attrs)
    return max(1, reference_row(found.group(1))) if found else 1


def ods_extents(pieces: Iterator[bytes]) -> dict[str, Extent]:
    """How far each sheet of an OpenDocument spreadsheet reaches, repeated rows and cells
    counted as the reader would expand them; keyed by sheet name."""
    extents: dict[str, Extent] = {}
    extent = Extent()
    depth = row = col = 0
    for piece in pieces:
        for match in _ODS_TAG.finditer(piece):
            closing, tag, attrs = match.groups()
            if tag == b"table":
                depth += -1 if closing else 1
                if not closing and depth == 1:
                    name = _ODS_NAME.search(attrs)
                    key = html.unescape(name.group(1).decode("utf-8", "replace")) \
                        if name else ""
                    extent = extents.setdefault(key, Extent())
                    row = 0
                continue
            if closing or depth != 1:
                continue
            if tag == b"table-row":
                row, col = row + _repeat(attrs), 0
            else:
                col += _repeat(attrs)
                valued = b"value-type" in attrs or not attrs.rstrip().endswith(b"/")
                if valued and row:
                    extent.add(row, col)
    return extents


# One pass over a zip container


@dataclass
class ZipScan:
    """What streaming every XML member of a zip container found."""

    dtd: str | None = None  # the first member declaring a DTD or an entity
    extents: dict[str, Extent] = field(default_factory=dict)  # sheet name → reach
    # Sheets whose XML holds what only the XML says (a formula, an error cell, a hidden row or
    # column, an autofilter): the reader scans those again; None when not known.
    notable: frozenset[str] | None = None
    date1904: bool = False  # the workbook counts dates from 1904


# What only a worksheet's XML tells: a formula, an error cell, a hidden row or column, a filter.
NOTABLE = re.compile(
    rb"<(?:[A-Za-z_][\w.-]*:)?(?:f|autoFilter)[\s>/]|\st\s*=\s*[\"']e[\"']|\shidden\s*=")
_DATE1904 = re.compile(rb"date1904\s*=\s*[\"'](?:1|true)[\"']", re.IGNORECASE)


def _noting(pieces: Iterator[bytes], pattern: re.Pattern[bytes], member: str,
            found: set[str]) -> Iterator[bytes]:
    """The pieces, adding `member` to `found` when one matches (pieces never cut a tag)."""
    for piece in pieces:
        if member not in found and pattern.search(piece):
            found.add(member)
        yield piece


_UNPACK_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
                  OSError, ValueError)
# The members sheet_parts parses: kept from the scan, not unpacked twice.
_BOOK_PARTS = ("xl/_rels/workbook.xml.rels", "xl/workbook.xml")


def scan_zip(archive: zipfile.ZipFile, kind: str, limits: tuple[int, int]) -> ZipScan:
    """Stream each XML member once: refuse DTDs, measure sheets ("xlsx" or "ods"); a sheet
    whose quick bound passes `limits` (rows, columns) is measured again, cell by cell.

    Raises CorruptMember for a member that cannot be unpacked or, for the workbook part,
    parsed."""
    scan = ZipScan()
    reach: dict[str, Extent | None] = {}
    notable: set[str] = set()
    dated: set[str] = set()
    kept: dict[str, bytes] = {}
    for info in xml_members(archive):
        try:
            with _opened(archive, info) as stream:
                source: IO[bytes] = stream
                if info.filename in _BOOK_PARTS:
                    kept[info.filename] = stream.read()  # its size was checked: it is small
                    source = io.BytesIO(kept[info.filename])
                pieces = _without_dtd(xml_pieces(source))
                if kind == "ods" and info.filename == "content.xml":
                    scan.extents = ods_extents(pieces)
                elif "worksheets/" in info.filename.lower():
                    reach[info.filename], marked = _worksheet_scan(pieces, limits)
                    if marked:
                        notable.add(info.filename)
                elif info.filename.lower().endswith("workbook.xml"):  # and the 1904 flag
                    for _ in _noting(pieces, _DATE1904, info.filename, dated):
                        pass
                else:  # styles, strings, relationships: the DTD check
                    for _ in pieces:
                        pass
        except _DtdFound:
            scan.dtd = info.filename
            return scan
        except _UNPACK_ERRORS as exc:
            raise CorruptMember(info.filename) from exc
    if kind == "xlsx":
        try:
            parts = sheet_parts(archive, kept)
        except (ElementTree.ParseError, KeyError, *_UNPACK_ERRORS) as exc:
            raise CorruptMember("xl/workbook.xml") from exc
        names = set(archive.namelist())
        scan.date1904 = bool(dated)
        scan.notable = frozenset(sheet for sheet, part in parts.items()
                                 if part in notable or part not in reach)
        for sheet, part in parts.items():
            if part not in names:
                continue  # the reader reports the missing part
            try:  # a part not named .xml was not streamed yet: measured cell by cell
                scan.extents[sheet] = _reach(archive, part, reach.get(part), limits)
            except _DtdFound:
                scan.dtd = part
                return scan
            except _UNPACK_ERRORS as exc:
                raise CorruptMember(part) from exc
    return scan


def _opened(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> IO[bytes]:
    """A member's bytes as a stream: a small member of a zip held in memory unpacked at once
    (what zipfile does, without its machinery per read: a workbook has a dozen members), any
    other as zipfile streams it. Raises what zipfile raises for a member it cannot unpack."""
    data = getattr(archive.fp, "getbuffer", None)
    if data is None or info.file_size > _CHUNK or info.flag_bits & 1 \
            or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return archive.open(info)
    return io.BytesIO(_unpacked(data(), info))


def _unpacked(data: memoryview, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes from the zip's bytes, checked as zipfile checks them (its local header
    and name, its declared size and CRC-32); never more than its declared size is unpacked."""
    at = info.header_offset
    header = bytes(data[at:at + 30])
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header: {info.filename}")
    named = int.from_bytes(header[26:28], "little")
    name = bytes(data[at + 30:at + 30 + named])
    flags = int.from_bytes(header[6:8], "little")
    if name.decode("utf-8" if flags & 0x800 else "cp437", "replace") != info.orig_filename:
        raise zipfile.BadZipFile(f"names in directory and header differ: {info.filename}")
    start = at + 30 + named + int.from_bytes(header[28:30], "little")
    packed = data[start:start + info.compress_size]
    if len(packed) < info.compress_size:
        raise EOFError(info.filename)
    if info.compress_type == zipfile.ZIP_STORED:
        out = bytes(packed)
    else:
        out = zlib.decompressobj(-15).decompress(packed, info.file_size + 1)
    if len(out) != info.file_size or zlib.crc32(out) != info.CRC:
        raise zipfile.BadZipFile(f"bad CRC-32 or size: {info.filename}")
    return out


def _reach(archive: zipfile.ZipFile, part: str, bound: Extent | None,
           limits: tuple[int, int]) -> Extent:
    """A sheet's reach: its quick bound when within the limits, else measured cell by cell."""
    if bound is not None and bound.rows <= limits[0] and bound.cols <= limits[1]:
        return bound
    with archive.open(part) as stream:
        return xlsx_extent(_without_dtd(xml_pieces(stream)))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def sheet_parts(archive: zipfile.ZipFile, kept: dict[str, bytes] | None = None) -> dict[str, str]:
    """Sheet name → worksheet member of an .xlsx (parsed with defusedxml, DTDs refused);
    `kept`: the bytes of its members already unpacked, by name."""
    kept = kept or {}

    def member(name: str) -> bytes:
        return kept[name] if name in kept else archive.read(name)

    rels = ElementTree.fromstring(member("xl/_rels/workbook.xml.rels"))
    targets = {}
    for rel in rels:
        target = rel.get("Target", "")
        joined = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        targets[rel.get("Id")] = posixpath.normpath(joined)
    book = ElementTree.fromstring(member("xl/workbook.xml"))
    parts = {}
    for sheet in book.iter():
        if _local(sheet.tag) != "sheet":
            continue
        rid = next((v for k, v in sheet.attrib.items() if _local(k) == "id"), None)
        if sheet.get("name") and rid in targets:
            parts[sheet.get("name")] = targets[rid]
    return parts
