"""Who is who across years: people have no national id in these files.

A person in a new file is matched to the people the store already knows, in this order:
1. confirmed by the office (a link kept in the store) — always wins;
2. same folded name, same birth date, same unit — the same person;
3. same folded name, same birth date, another unit — the person moved schools;
4. same birth date, same unit, a name one letter away (a typo) — the same person, reported
   for the office to confirm;
5. otherwise a new person. Whenever a step finds more than one candidate, nobody is guessed:
   the row is reported as ambiguous and recorded as a new person until the office confirms.
Without a birth date a name identifies nobody: such a row is only the person recorded under the
same name, in the same unit, in the same school year, without a birth date either (the same row
read again when a round is re-run, or the school's list at the year's other round); never a
person of another year or school.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline.text import fold

EXACT, MOVED, TYPO, NEW, AMBIGUOUS, CONFIRMED = (
    "exact", "moved", "typo", "new", "ambiguous", "confirmed")
MATCH_LABELS = {
    EXACT: "Trùng họ tên, ngày sinh, đơn vị",
    MOVED: "Chuyển trường: trùng họ tên, ngày sinh",
    TYPO: "Gần trùng họ tên (sai một chữ), trùng ngày sinh và đơn vị — Phòng xác nhận",
    NEW: "Người mới",
    AMBIGUOUS: "Có nhiều người phù hợp — Phòng xác nhận",
    CONFIRMED: "Phòng đã xác nhận",
}


@dataclass(frozen=True)
class Match:
    person_id: int | None
    how: str
    candidates: tuple[int, ...] = ()


def person_key(full_name: str, birth_date: object) -> tuple[str, str]:
    """(folded name, ISO birth date or ""): a missing date (None, NaN, NaT, blank) is "", so a
    person without one is never matched by name alone."""
    return fold(str(full_name)), iso_date(birth_date)


def iso_date(value: object) -> str:
    """An ISO date ("1985-03-12"), or "" when there is none."""
    if value is None or (not isinstance(value, str) and pd.isna(value) is True):
        return ""  # None, NaN, NaT, pd.NA
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    return "" if text.lower() in ("", "nan", "nat", "none", "<na>") else text


def one_edit_apart(a: str, b: str) -> bool:
    """Whether two strings differ by exactly one inserted, deleted or replaced character."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i + (len(a) == len(b)):] == b[i + 1:]


class KnownPeople:
    """The people a store knows, indexed by birth date with name and with unit (a province
    knows a few hundred thousand people: no step of a match scans more than one such set).
    A key held by one person keeps that person's entry itself, not a set of one (a set each
    would cost a province's matching ~100 MB and a tenth of its time); see `_put`, `_got`."""

    def __init__(self) -> None:
        self._by_name: dict[tuple[str, str], Any] = {}  # → (person_id, unit), or a set of them
        self._by_unit: dict[tuple[str, str], Any] = {}  # → (person_id, folded name), or a set
        self._undated: dict[tuple[str, str], Any] = {}  # → person_id, or a set; this year's

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> KnownPeople:
        """From rows of person_id, fold_name, birth_date, unit_code."""
        known = cls()
        for person, name, born, unit in zip(*(frame[c].tolist() for c in (
                "person_id", "fold_name", "birth_date", "unit_code")), strict=True):
            known.add(int(person), name, born, unit)
        return known

    def add(self, person_id: int, fold_name: str, birth_date: str | None,
            unit_code: str | None) -> None:
        """Remember a person seen in a unit."""
        if birth_date:
            unit = unit_code or ""
            _put(self._by_name, (birth_date, fold_name), (person_id, unit))
            _put(self._by_unit, (birth_date, unit), (person_id, fold_name))

    def add_undated(self, person_id: int, fold_name: str, unit_code: str | None) -> None:
        """Remember a person without a birth date seen in a unit this school year."""
        _put(self._undated, (fold_name, unit_code or ""), person_id)

    def undated(self, fold_name: str, unit_code: str) -> set[int]:
        """The persons without a birth date of that name seen in that unit this school year."""
        return _got(self._undated, (fold_name, unit_code))

    def unknown(self, fold_name: str, birth_date: str, unit_code: str) -> bool:
        """Whether nobody of that name, nor of that unit, was born that day: `match_key`
        finds nobody for a dated person (the check most rows of a first round end at)."""
        return (birth_date, fold_name) not in self._by_name \
            and (birth_date, unit_code) not in self._by_unit

    def add_if_unknown(self, person_id: int, fold_name: str, birth_date: str,
                       unit_code: str | None) -> bool:
        """`add` a dated person when `unknown` (nobody of that name, nor of that unit, born
        that day); whether it was. One look-up per index for most rows of a first round."""
        if not self.unknown(fold_name, birth_date, unit_code):
            return False
        self._by_name[(birth_date, fold_name)] = (person_id, unit_code or "")
        if unit_code:
            self._by_unit[(birth_date, unit_code)] = (person_id, fold_name)
        else:  # kept under "" (see add), which `unknown` did not look at
            _put(self._by_unit, (birth_date, ""), (person_id, fold_name))
        return True

    def named(self, birth_date: str, fold_name: str) -> set[tuple[int, str]]:
        """(person_id, unit) of everyone of that name born that day."""
        return _got(self._by_name, (birth_date, fold_name))

    def in_unit(self, birth_date: str, unit_code: str) -> set[tuple[int, str]]:
        """(person_id, folded name) of everyone of that unit born that day."""
        return _got(self._by_unit, (birth_date, unit_code))


def _put(index: dict, key: tuple, item: object) -> None:
    """Add `item` at `key`: the item itself while it is the only one there, a set of them
    from the second on (items are tuples or ints, never sets nor None)."""
    found = index.get(key)
    if found is None:
        index[key] = item
    elif type(found) is set:
        found.add(item)
    elif found != item:
        index[key] = {found, item}


def _got(index: dict, key: tuple) -> set:
    """The items at `key`, as a set (empty when none)."""
    found = index.get(key)
    if found is None:
        return set()
    return found if type(found) is set else {found}


def match_person(known: KnownPeople, full_name: str, birth_date: object, unit_code: str,
                 confirmed: dict[tuple[str, str, str], int] | None = None) -> Match:
    """Match one person against the people the store knows."""
    name, born = person_key(full_name, birth_date)
    return match_key(known, name, born, unit_code, confirmed)


def match_key(known: KnownPeople, name: str, born: str, unit_code: str,
              confirmed: dict[tuple[str, str, str], int] | None = None) -> Match:
    """Match a person given by their key (`person_key`: folded name, ISO birth date or "")
    and unit: the first step of the module's order that finds anyone decides."""
    if confirmed and (name, born, unit_code) in confirmed:
        return Match(confirmed[(name, born, unit_code)], CONFIRMED)
    if not born:
        same_row = known.undated(name, unit_code)
        return Match(next(iter(same_row)), EXACT) if len(same_row) == 1 else Match(None, NEW)
    same_name = known.named(born, name)
    if same_name:
        exact = {pid for pid, unit in same_name if unit == unit_code}
        return _found(exact, EXACT) if exact else _found({pid for pid, _ in same_name}, MOVED)
    typo = {pid for pid, other in known.in_unit(born, unit_code) if one_edit_apart(other, name)}
    return _found(typo, TYPO) if typo else Match(None, NEW)


def _found(ids: set[int], how: str) -> Match:
    """The one person found, or nobody when several are (ambiguous)."""
    if len(ids) == 1:
        return Match(next(iter(ids)), how)
    return Match(None, AMBIGUOUS, tuple(sorted(ids)))
