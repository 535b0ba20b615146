"""Excel cell addresses, parsed and written in one place: "F12" ↔ 0-based (row, column)."""

from __future__ import annotations

import re

# A cell reference as Excel writes it, with optional "$" anchors; up to column XFD (3 letters)
# and row 1,048,576 (7 digits).
_ADDRESS = re.compile(r"^\$?([A-Za-z]{1,3})\$?(\d{1,7})$")


def column_letter(col0: int) -> str:
    """"A" for 0, "AA" for 26."""
    letters = ""
    n = col0 + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def column_number(letters: str | bytes) -> int:
    """1 for "A" (or b"A"), 27 for "AA"."""
    text = letters.decode("ascii") if isinstance(letters, bytes) else letters
    number = 0
    for ch in text.upper():
        number = number * 26 + ord(ch) - 64
    return number


def cell_address(row0: int, col0: int) -> str:
    """"F12" for 0-based (11, 5)."""
    return f"{column_letter(col0)}{row0 + 1}"


def parse_address(ref: str) -> tuple[int, int] | None:
    """0-based (row, column) of a cell reference such as "F12" or "$F$12"; None otherwise."""
    match = _ADDRESS.match(ref)
    if match is None:
        return None
    return int(match.group(2)) - 1, column_number(match.group(1)) - 1


def address_parts(ref: str | None) -> tuple[str, int | None]:
    """The column letters and the 1-based row of a finding's place: "E12" → ("E", 12), a
    row-only "12" → ("", 12), a column-only "E" → ("E", None)."""
    text = ref or ""
    letters = "".join(ch for ch in text if ch.isalpha())
    digits = "".join(ch for ch in text if ch.isdigit())
    return letters, int(digits) if digits else None
