"""Cell addresses: one parser and one writer for every module (cases worked out by hand)."""

from __future__ import annotations

import pytest

from pipeline.cells import address_parts, cell_address, column_letter, column_number, parse_address


@pytest.mark.parametrize(("col0", "letters"), [(0, "A"), (25, "Z"), (26, "AA"), (51, "AZ"),
                                               (52, "BA"), (701, "ZZ"), (702, "AAA"),
                                               (16383, "XFD")])
def test_cells_column_letters_both_ways(col0, letters):
    assert column_letter(col0) == letters
    assert column_number(letters) == col0 + 1
    assert column_number(letters.lower().encode()) == col0 + 1


@pytest.mark.parametrize(("ref", "expected"), [
    ("A1", (0, 0)), ("F12", (11, 5)), ("$F$12", (11, 5)), ("f12", (11, 5)),
    ("XFD1048576", (1048575, 16383)), ("AAAA1", None), ("A", None), ("12", None),
    ("A12345678", None), ("", None), ("A1:B2", None)])
def test_cells_parse_address(ref, expected):
    assert parse_address(ref) == expected
    if expected is not None:
        assert parse_address(cell_address(*expected)) == expected


@pytest.mark.parametrize(("ref", "parts"), [("E12", ("E", 12)), ("12", ("", 12)),
                                            ("E", ("E", None)), (None, ("", None))])
def test_cells_address_parts_of_a_finding_s_place(ref, parts):
    assert address_parts(ref) == parts
