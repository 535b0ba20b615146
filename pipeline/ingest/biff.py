"""How far each sheet of an Excel 97–2003 workbook (.xls, BIFF records) reaches, before calamine
reads it.

calamine builds every sheet of an .xls when the file is opened: a dense grid from the first to
the last cell, after reserving room for as many cells as the sheet's DIMENSIONS record declares.
A 6 KB file with one cell at IV65536 costs a gigabyte that way, and a lying DIMENSIONS record
more than any machine has. Both are measured here from the record headers alone (row and column
of each cell record, the declared range), the way calamine 0.37 walks the records.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Iterator

from pipeline.ingest.sniff import Extent

_BOF, _EOF, _BOUNDSHEET, _CODEPAGE, _DIMENSIONS, _MULRK = (
    0x0809, 0x000A, 0x0085, 0x0042, 0x0200, 0x00BD)
# Records holding one cell, row and column first: FORMULA, NUMBER, LABEL, RSTRING, BOOLERR, RK,
# LABELSST (BLANK and MULBLANK hold no value: calamine leaves them out).
_CELLS = frozenset({0x0006, 0x0203, 0x0204, 0x00D6, 0x0205, 0x027E, 0x00FD})
_BIFF8 = 0x0600
_WORD = struct.Struct("<H")
_HEADER = struct.Struct("<HH")
_U32 = 1 << 32


def _records(stream: bytes, start: int) -> Iterator[tuple[int, int, int]]:
    """(type, offset of the body, length) of each record from `start` on, until the stream
    ends or a record is cut."""
    at, end = start, len(stream)
    while at + 4 <= end:
        kind, length = _HEADER.unpack_from(stream, at)
        if at + 4 + length > end:
            return
        yield kind, at + 4, length
        at += 4 + length


def _sheet_name(body: bytes, biff8: bool, encoding: str) -> str:
    """A BOUNDSHEET name: a short string, UTF-16 or one byte per character."""
    count = body[0] if body else 0
    if biff8 and len(body) > 1:
        wide = body[1] & 1
        raw = body[2:2 + count * (2 if wide else 1)]
        text = raw.decode("utf-16-le", "replace") if wide else raw.decode("latin-1")
    else:
        text = body[1:1 + count].decode(encoding, "replace")
    return text.replace("\0", "")


def _codec(codepage: int) -> str:
    try:
        return codecs.lookup(f"cp{codepage}").name
    except LookupError:
        return "latin-1"


def _declared(stream: bytes, at: int, length: int) -> Extent:
    """The rows and columns a DIMENSIONS record makes calamine reserve room for (its 32-bit
    arithmetic wraps as calamine's does)."""
    if length == 14:
        first_row, last_row = struct.unpack_from("<II", stream, at)
        first_col, last_col = struct.unpack_from("<HH", stream, at + 8)
    elif length == 10:
        first_row, last_row, first_col, last_col = struct.unpack_from("<HHHH", stream, at)
    else:
        return Extent()  # calamine refuses the file
    if first_col > 0xFF or last_col < first_col:
        first_col = 0
    if last_row >= 1 and last_col >= 1:
        end_row, end_col = last_row - 1, last_col - 1
    else:
        end_row, end_col = first_row, first_col
    return Extent((end_row - first_row + 1) % _U32, (end_col - first_col + 1) % _U32)


def _sheet_reach(stream: bytes, start: int) -> Extent:
    """How far one sheet's cell records reach, widened to the range its DIMENSIONS record
    declares; the records of embedded substreams (charts) count too."""
    extent = Extent()
    depth = -1
    for kind, at, length in _records(stream, start):
        if kind in _CELLS and length >= 4:
            row, col = _HEADER.unpack_from(stream, at)
            extent.add(row + 1, col + 1)
        elif kind == _MULRK and length >= 6:
            row, first = _HEADER.unpack_from(stream, at)
            extent.add(row + 1, max(first, *_WORD.unpack_from(stream, at + length - 2)) + 1)
        elif kind == _DIMENSIONS:
            declared = _declared(stream, at, length)
            extent.add(declared.rows, declared.cols)
        elif kind == _BOF:
            depth += 1
        elif kind == _EOF:
            if depth <= 0:
                break
            depth -= 1
    return extent


def xls_extents(stream: bytes) -> dict[str, Extent]:
    """How far each sheet of a BIFF workbook stream reaches (cells, or the range it declares,
    whichever is larger), keyed by sheet name."""
    sheets: list[tuple[int, str]] = []
    biff8, encoding, seen_bof = True, "latin-1", False
    for kind, at, length in _records(stream, 0):
        if kind == _BOF and not seen_bof and length >= 2:
            biff8, seen_bof = _WORD.unpack_from(stream, at)[0] == _BIFF8, True
        elif kind == _CODEPAGE and length >= 2:
            encoding = _codec(_WORD.unpack_from(stream, at)[0])
        elif kind == _BOUNDSHEET and length >= 7:
            position = int.from_bytes(stream[at:at + 4], "little")
            sheets.append((position, _sheet_name(stream[at + 6:at + length], biff8, encoding)))
        elif kind == _EOF:
            break
    extents: dict[str, Extent] = {}
    for position, name in sheets:
        reach = _sheet_reach(stream, position)
        extent = extents.setdefault(name, Extent())
        extent.add(reach.rows, reach.cols)
    return extents
