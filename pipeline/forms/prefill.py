"""A school year's registrations → the rows its results templates start with (I/O: read).

The results form of May starts with what each school registered in October: its staff (name,
date of birth, sex, position, staff group, the title and form of commendation registered) and
its collectives. The registrations come from the history store, where the registration round
was recorded when the office consolidated it, or from the registration inbox, read as the
results round reads it. Which columns are carried follows from the two form definitions: every
column of a results sheet whose id the registration sheet of the same id also has, except
those in NOT_CARRIED.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.config import Config
from pipeline.forms.definitions import Column, Form, FormSet, Vocabulary
from pipeline.store.database import Store
from pipeline.text import fold

REGISTRATION_ROUND = "dang-ky"
# Columns both forms have that are not carried over: the row number is the template's own; a
# note was about October; the registered initiative is only a plan (the results column names
# one a council recognised, with its level and decision); members are counted at year end.
NOT_CARRIED = frozenset({"seq", "note", "initiative", "members"})
# What the history store does not keep of a person: no title recorded means "không đăng ký"
# (the registration form requires a title; "không đăng ký" is not stored as a proposal).
NOT_REGISTERED = "khong_dang_ky"
# The registration round's tables (RoundResult attributes), by the sheet they are read from.
_TABLES = {"staff": "staff", "unit": "collectives"}
# The column of a collective's kind, which the store does not keep: told from the name.
_KIND = "collective_kind"

Rows = tuple[dict[str, object], ...]


@dataclass(frozen=True)
class Registrations:
    """The registration round of one school year, as consolidated: per unit, its rows."""

    school_year: str
    source: str  # "store" (the history store) or "inbox" (a registration inbox)
    path: Path
    units: Mapping[str, Mapping[str, Rows]]  # unit code → sheet id → rows (column id → value)

    def people(self, codes: Iterable[str]) -> int:
        """How many staff rows the units of `codes` registered."""
        return sum(len(self.units.get(code, {}).get("staff", ())) for code in codes)


# Which columns, which values


def carried_columns(target: Form, source: Form) -> dict[str, tuple[Column, ...]]:
    """Per sheet id of the target form, its columns the source form's sheet of the same id
    also has (by column id), NOT_CARRIED aside."""
    sources = {s.id: set(s.column_ids) for s in source.sheets}
    out = {}
    for sheet in target.sheets:
        shared = tuple(c for c in sheet.columns
                       if c.id in sources.get(sheet.id, ()) and c.id not in NOT_CARRIED)
        if shared:
            out[sheet.id] = shared
    return out


def carried_rows(columns: Mapping[str, tuple[Column, ...]], registered: Mapping[str, Rows],
                 vocabs: Mapping[str, Vocabulary]) -> dict[str, Rows]:
    """A unit's registered rows reduced to the carried columns, each value kept only when the
    column accepts it (a code of its list, a real date, a number in range, a text): a value
    the registration's checks refused is left for the school to type again."""
    out = {}
    for sheet_id, sheet_columns in columns.items():
        rows = tuple(kept for row in registered.get(sheet_id, ()) if (kept := {
            c.id: value for c in sheet_columns
            if (value := _accepted(row.get(c.id), c, vocabs)) is not None}))
        if rows:
            out[sheet_id] = rows
    return out


def _accepted(value: object, column: Column, vocabs: Mapping[str, Vocabulary]) -> object:
    """The value as the column accepts it, or None."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if column.type == "choice":
        return value if column.choices and value in vocabs[column.choices].codes else None
    if column.type == "date":
        if isinstance(value, dt.datetime):
            return value.date()
        return value if isinstance(value, dt.date) else None
    if column.type in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        low = -math.inf if column.min is None else column.min
        high = math.inf if column.max is None else column.max
        return value if low <= value <= high else None
    return value if isinstance(value, str) and value.strip() else None


# Where the registrations come from


def find_registrations(config: Config, forms: FormSet, store_path: Path,
                       inbox: Path | None = None,
                       round_name: str = REGISTRATION_ROUND) -> Registrations | None:
    """The registration round of the configuration's school year: read from `inbox` when it
    is given; else from the history store at `store_path` when it recorded that round; else
    from the registration inbox of the configuration ([inboxes] dang-ky) when it exists;
    None when there is none. A store that cannot be opened is a StoreError. `round_name`: the
    registration round of the configuration (a Sở's is "tinh-dang-ky")."""
    if inbox is not None:
        return registrations_from_inbox(inbox, config, forms, round_name)
    if store_path.is_file():
        with contextlib.closing(Store.open(store_path)) as store:
            found = registrations_from_store(store, config.school_year, store_path,
                                             _kinds(forms), round_name)
        if found is not None:
            return found
    default = config.inboxes.get(REGISTRATION_ROUND)
    if default is not None and default.is_dir():
        return registrations_from_inbox(default, config, forms, round_name)
    return None


def registrations_from_store(store: Store, school_year: str, path: Path,
                             kinds: Vocabulary | None = None,
                             round_name: str = REGISTRATION_ROUND) -> Registrations | None:
    """The registration round the store recorded for the school year, or None. The store
    keeps each person's identity, position and group, the titles and forms registered (as
    proposals) and each collective's name and registrations; a collective's kind is told
    from its name by the `kinds` vocabulary. A Sở's round (`round_name` "tinh-dang-ky") also
    recorded the persons of the communes' reports: only its own schools' rows are read."""
    if not any(r["round"] == round_name for r in store.round_runs(school_year)):
        return None
    titles: dict[tuple[str, object], dict[str, object]] = {}
    groups: dict[str, dict[str, dict[str, object]]] = {}
    for p in store.round_proposals(school_year, round_name):
        if p.get("office"):
            continue
        if p["subject"] == "person":  # kinds are the column ids: title, commendation
            titles.setdefault((p["unit_code"], p["person_id"]), {}).setdefault(p["kind"],
                                                                               p["code"])
        elif p["subject"] == "collective":  # collective_title, commendation
            group = groups.setdefault(p["unit_code"], {}).setdefault(
                p["name"], {"collective_name": p["name"],
                            _KIND: kind_named(str(p["name"]), kinds) if kinds else None})
            group.setdefault(p["kind"], p["code"])
    units: dict[str, dict[str, list[dict[str, object]]]] = {}
    for s in store.round_staff(school_year, round_name):
        if s.get("office"):
            continue
        person = {"full_name": s["full_name"], "birth_date": _date(s["birth_date"]),
                  "sex": s["sex"], "position": s["position"], "staff_group": s["staff_group"],
                  "title": NOT_REGISTERED,
                  **titles.get((s["unit_code"], s["person_id"]), {})}
        units.setdefault(s["unit_code"], {}).setdefault("staff", []).append(person)
    for code, named in groups.items():
        units.setdefault(code, {})["unit"] = list(named.values())
    return Registrations(school_year, "store", path, _frozen(units))


def registrations_from_inbox(inbox: Path, config: Config, forms: FormSet,
                             round_name: str = REGISTRATION_ROUND) -> Registrations:
    """The registration inbox consolidated (nothing written), as the results round reads it
    to compare; its rows by unit, in the order of each unit's chosen file."""
    from pipeline.engine import consolidation  # the engine runs the registration round

    result = consolidation(inbox, config, round=round_name, forms=forms)
    units: dict[str, dict[str, list[dict[str, object]]]] = {}
    for sheet_id, table in _TABLES.items():
        frame = getattr(result, table)
        if frame.empty:
            continue
        for row in frame.sort_values(["unit_code", "row"], kind="stable").to_dict("records"):
            units.setdefault(str(row["unit_code"]), {}).setdefault(sheet_id, []).append(row)
    return Registrations(config.school_year, "inbox", inbox, _frozen(units))


def kind_named(name: str, kinds: Vocabulary) -> str | None:
    """The kind a collective's name begins with, by the kinds' labels and synonyms
    ("Tổ chuyên môn 1" → to_chuyen_mon, "Trường THCS …" → don_vi); None unless exactly one
    kind has the longest such beginning."""
    words = fold(name).split()
    fits: dict[int, set[str]] = {}
    for value in kinds.values:
        for text in (value.label, *value.synonyms):
            start = fold(text).split()
            if start and words[:len(start)] == start:
                fits.setdefault(len(start), set()).add(value.code)
    best = fits[max(fits)] if fits else set()
    return next(iter(best)) if len(best) == 1 else None


def _kinds(forms: FormSet) -> Vocabulary | None:
    """The vocabulary of the registration's collective kinds."""
    for sheet in forms.current(REGISTRATION_ROUND).sheets:
        for column in sheet.columns:
            if column.id == _KIND and column.choices:
                return forms.vocabs[column.choices]
    return None


def _date(iso: object) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(iso)) if iso else None
    except ValueError:
        return None


def _frozen(units: dict[str, dict[str, list[dict[str, object]]]]) -> dict[str, dict[str, Rows]]:
    return {code: {sheet: tuple(rows) for sheet, rows in sheets.items()}
            for code, sheets in units.items()}


def carried_by_unit(forms: FormSet, form_id: str,
                    registrations: Registrations) -> dict[str, dict[str, Rows]]:
    """Per unit code, the rows its template of `form_id` starts with (the current versions of
    that form and of the registration form decide the columns)."""
    columns = carried_columns(forms.current(form_id), forms.current(REGISTRATION_ROUND))
    return {code: carried_rows(columns, sheets, forms.vocabs)
            for code, sheets in registrations.units.items()}
