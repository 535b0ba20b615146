"""Writing a consolidated round to the history store, and reading earlier years back from it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from pipeline.heap import collections_paused
from pipeline.rounds.base import RoundResult
from pipeline.store.database import RoundRecord, Rows, Store
from pipeline.store.identity import (
    AMBIGUOUS,
    MATCH_LABELS,
    MOVED,
    NEW,
    TYPO,
    KnownPeople,
    Match,
    iso_date,
    match_key,
    person_key,
)
from pipeline.text import fold

REGISTRATION_ROUND = "dang-ky"
RESULTS_ROUND = "ket-qua"
# Matches the office should look at (a typo, a move, several candidates).
TO_CONFIRM = (TYPO, MOVED, AMBIGUOUS)


# People


def canonical_ids(store: Store) -> dict[int, int]:
    """Person id → the smallest id the office confirmed as the same person."""
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for a, b in store.person_links():
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: root(x) for x in parent}


def _canonical(frame: pd.DataFrame, store: Store) -> pd.DataFrame:
    links = canonical_ids(store)
    if links and not frame.empty:
        frame = frame.assign(person_id=frame["person_id"].map(lambda p: links.get(p, p)))
    return frame


def known_people(store: Store) -> pd.DataFrame:
    """Every person the store knows, once per unit they were seen in (confirmed links
    followed: a person the office merged appears under one id)."""
    return _canonical(pd.DataFrame(store.person_sightings(),
                                   columns=["person_id", "fold_name", "birth_date",
                                            "unit_code"]), store)


@dataclass(frozen=True)
class Matched:
    """A round's staff rows matched to the store's people, nothing written yet.

    `ids`: a person id for every row (new persons take the ids after the largest one);
    `notes`: the matches to confirm; `added`: the new persons, (id, full_name, fold_name,
    birth_date, created_year) each; `spellings`: (person_id, fold_name, full_name) of each row
    matched to a person already known (a new person's spelling is its `added` row)."""

    ids: pd.Series
    notes: pd.DataFrame
    added: list[tuple[int, str, str, str | None, str]]
    spellings: list[tuple[int, str, str]]


_NOTE_COLUMNS = ["unit_code", "full_name", "birth_date", "person_id", "how", "label",
                 "candidates"]


def match_persons(store: Store, staff: pd.DataFrame, school_year: str) -> Matched:
    """A person id for every staff row, matched in row order (`identity`'s steps; a row is
    matched against the store and the rows before it). Reads the store, writes nothing."""
    known = KnownPeople.from_frame(known_people(store))
    for person, full_name, unit_code in store.undated_staff(school_year):
        known.add_undated(person, person_key(full_name, None)[0], unit_code)
    next_id = store.next_person_id()
    names = staff["full_name"].tolist()
    births = staff["birth_date"].tolist()
    folds = _each_once(names, lambda name: fold(str(name)))
    isos = _each_once(births, iso_date)
    added: list[tuple[int, str, str, str | None, str]] = []
    spellings: list[tuple[int, str, str]] = []
    ids: list[int] = []
    notes = []
    taken: set[int] = set()  # ids given to earlier rows of this round
    add_if_unknown = known.add_if_unknown
    for unit_code, full_name, birth_date, name, born in zip(
            staff["unit_code"].tolist(), names, births, folds, isos, strict=True):
        if born and add_if_unknown(next_id, name, born, unit_code):
            # Nobody of this name, nor of this unit, born that day: a new person without
            # match_key's steps (most rows of a first round) and nothing to confirm.
            person, next_id = next_id, next_id + 1
            added.append((person, str(full_name), name, born, school_year))
            ids.append(person)
            taken.add(person)
            continue
        match = match_key(known, name, born, unit_code)
        person = match.person_id
        if person in taken:
            # Two rows of one round cannot be one person: same name and birth date in two
            # schools. Nobody is guessed; the office confirms.
            match, person = Match(None, AMBIGUOUS, (person,)), None
        if person is None:
            person, next_id = next_id, next_id + 1
            added.append((person, str(full_name), name, born or None, school_year))
        elif name and full_name is not None and full_name == full_name:  # not NULL in SQL
            spellings.append((person, name, full_name))
        known.add(person, name, born, unit_code)
        if not born:
            known.add_undated(person, name, unit_code)
        if match.how in TO_CONFIRM or (match.how == NEW and match.candidates):
            notes.append({"unit_code": unit_code, "full_name": full_name,
                          "birth_date": birth_date, "person_id": person, "how": match.how,
                          "label": MATCH_LABELS[match.how],
                          "candidates": ", ".join(map(str, match.candidates))})
        ids.append(person)
        taken.add(person)
    return Matched(pd.Series(ids, index=staff.index, dtype="Int64"),
                   pd.DataFrame(notes, columns=_NOTE_COLUMNS), added, spellings)


def _each_once(values: list, convert: Callable[[Any], Any]) -> list:
    """`convert` of every value, computed once per distinct value (names and birth dates
    repeat across a province's rows)."""
    if len(set(map(type, values)) - {type(None)}) <= 1:  # one kind: each value its own key
        try:
            known = {value: convert(value) for value in dict.fromkeys(values)}
        except TypeError:  # unhashable
            pass
        else:
            return [known[value] for value in values]
    done: dict[tuple[type, Any], Any] = {}  # by type too: 1 and 1.0 are one key otherwise
    out = []
    for value in values:
        key = (type(value), value)
        try:
            out.append(done[key])
        except KeyError:
            out.append(done.setdefault(key, convert(value)))
        except TypeError:  # unhashable
            out.append(convert(value))
    return out


def assign_person_ids(store: Store, staff: pd.DataFrame,
                      school_year: str) -> tuple[pd.Series, pd.DataFrame]:
    """A person id for every staff row (new persons added) and the matches to confirm.

    Runs inside the caller's transaction when one is open. New persons take the ids after the
    largest one and are inserted together."""
    matched = match_persons(store, staff, school_year)
    store.add_persons(matched.added)
    return matched.ids, matched.notes


# Earlier years


def history_records(store: Store, kind: str, before: str) -> pd.DataFrame:
    """(person_id, school_year, code) of the years before `before`: titles decided, imported or
    passed at the year-end round; or the evaluation grades recorded."""
    rows = store.grades_held(RESULTS_ROUND) if kind == "grade" else \
        store.titles_held(kind, RESULTS_ROUND)
    frame = pd.DataFrame(rows, columns=["person_id", "school_year", "code"])
    # School years sort as text: "2024-2025" < "2025-2026".
    return _canonical(frame[frame["school_year"] < before], store)


# Recording a round


def _iso(value: object) -> str | None:
    return value.isoformat() if isinstance(value, dt.date) else None


def round_record(result: RoundResult, staff: pd.DataFrame, run_at: str) -> RoundRecord:
    """What the store keeps of a consolidated round; `staff` is the result's staff with person ids.

    The year-end round's result also has `verdicts` and `decisions`."""
    verdicts = getattr(result, "verdicts", None)
    rule_decisions = getattr(result, "decisions", None)
    people = staff_rows(staff, with_proposals=rule_decisions is None)
    proposals: list[dict] = []
    decisions: list[dict] = []
    if verdicts is not None:
        keys = list(zip(staff["unit_code"], staff["row"], strict=True))
        person_of = dict(zip(keys, staff["person_id"], strict=True)) \
            if "person_id" in staff else {}
        for v in _records(verdicts):
            proposals.append({"person_id": _int(person_of.get((v["unit_code"], v["row"])))
                              if v["subject"] == "person" else None,
                              "unit_code": v["unit_code"], "subject": v["subject"],
                              "name": v["name"], "kind": v["kind"], "code": v["proposal"],
                              "result": v["result"]})
        for d in _records(rule_decisions):
            decisions.append({"unit_code": d["unit_code"], "person_id": _int(person_of.get(
                (d["unit_code"], d["row"]))) if d["subject"] == "person" else None,
                "name": d["name"], "kind": d["kind"], "code": d["proposal"],
                "rule_id": d["rule_id"], "result": d["result"], "citation": d["citation"]})
    else:
        for c in _records(result.collectives):
            for kind in ("collective_title", "commendation"):
                if c.get(kind) and c[kind] != "khong_dang_ky":
                    proposals.append({"person_id": None, "unit_code": c["unit_code"],
                                      "subject": "collective", "name": c["collective_name"],
                                      "kind": kind, "code": c[kind], "result": "registered"})
    inputs = [{"file": s.file, "sha256": s.sha256, "unit_code": s.unit_code,
               "classification": s.status.value} for s in result.submissions]
    names = ("unit_name", "level", "block", "status")
    units = [{"unit_code": code, **dict(zip(names, values, strict=True))}
             for code, *values in zip(result.units.index.tolist(),
                                      *(result.units[c].tolist() for c in names), strict=True)]
    return RoundRecord(school_year=result.school_year, round=result.round, run_at=run_at,
                       inputs=inputs, units=units, people=people, proposals=proposals,
                       decisions=decisions, findings=[f.to_dict() for f in result.findings])


def staff_rows(staff: pd.DataFrame, *, with_proposals: bool = True) -> Rows:
    """The staff table's rows as the store keeps them, as columns (a person's title and
    commendation only `with_proposals`)."""
    count = len(staff)

    def column(name: str) -> list:
        return staff[name].tolist() if name in staff else [None] * count

    ids = staff["person_id"].to_numpy(dtype=object, na_value=None) \
        if "person_id" in staff else [None] * count
    columns = {
        "person_id": [None if v is None else int(v) for v in ids],  # NA is None already
        "unit_code": staff["unit_code"].tolist(),
        "row": [int(v) for v in staff["row"].tolist()], "full_name": staff["full_name"].tolist(),
        "birth_date": _each_once(column("birth_date"), _iso),
        **{name: column(name) for name in ("sex", "position", "staff_group", "grade")},
        **{name: column(name) if with_proposals else [None] * count
           for name in ("title", "commendation")}}
    return Rows(columns)


def _records(frame: pd.DataFrame) -> list[dict]:
    """The frame's rows as plain dicts (column lists zipped: far quicker than to_dict)."""
    columns = list(frame.columns)
    values = [frame[c].tolist() for c in columns]
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def _int(value: object) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


# What the Sở's round read from the communes' reports (commune_reports.Reports): the office
# column of its rows, and the person columns kept.
OFFICE = "office_code"
_PERSON = ("unit_code", "full_name", "birth_date", "sex", "position", "staff_group", "grade")
_PROPOSAL_KINDS = {"person": ("title", "commendation"),
                   "collective": ("collective_title", "commendation")}


def reported_persons(staff: pd.DataFrame) -> pd.DataFrame:
    """The persons of the reports' staff tables, once per office and person (a report lists a
    person once per title or form), on the row they are first listed."""
    if staff.empty or "full_name" not in staff:
        return pd.DataFrame(columns=[OFFICE, "row", *_PERSON])
    people = staff.assign(**{c: staff.get(c) for c in _PERSON})
    return people.drop_duplicates([OFFICE, "unit_code", "full_name", "birth_date"])[
        [OFFICE, "row", *_PERSON]].reset_index(drop=True)


def _person_key(row: dict) -> tuple[str, str, str, str | None]:
    """A reported person's office, unit, name and birth date (a missing date as None)."""
    return (row[OFFICE], row["unit_code"], row["full_name"], _iso(row.get("birth_date")))


def _reported_proposals(reported: Any, person_of: dict, verdicts: pd.DataFrame,
                        registration: bool) -> list[dict]:
    """One proposal per report row and title or form, with the Sở's verdict on it at year end
    (its re-check), 'registered' in the registration round."""
    result_of = {} if verdicts.empty else {
        (getattr(v, OFFICE), v.subject, int(v.row), v.kind, v.proposal): v.result
        for v in verdicts.itertuples(index=False)}
    out = []
    for subject, frame in (("person", reported.staff), ("collective", reported.collectives)):
        name = "full_name" if subject == "person" else "collective_name"
        for r in _records(frame) if not frame.empty else []:
            for kind in _PROPOSAL_KINDS[subject]:
                code = r.get(kind)
                if not isinstance(code, str) or not code or code == "khong_dang_ky":
                    continue
                person = person_of.get(_person_key(r)) if subject == "person" else None
                result = "registered" if registration else result_of.get(
                    (r[OFFICE], subject, int(r["row"]), kind, code), "proposed")
                out.append({"person_id": _int(person), "unit_code": r["unit_code"],
                            "subject": subject, "name": r[name], "kind": kind, "code": code,
                            "result": result, "office": r[OFFICE]})
    return out


def province_record(result: Any, ids: pd.Series, run_at: str) -> RoundRecord:
    """What the store keeps of a Sở's round: its direct schools as a school round's record
    (`ids`: the person ids of their staff, then of the reports' persons), and every unit,
    person and proposal of the counted reports with the office that reported it."""
    direct = result.direct
    own = len(direct.staff)
    base = round_record(direct, direct.staff.assign(person_id=ids.iloc[:own].to_numpy()),
                        run_at)
    persons = reported_persons(result.reported.staff).assign(
        person_id=ids.iloc[own:].to_numpy())
    people = [{"person_id": _int(p["person_id"]), "unit_code": p["unit_code"],
               "row": int(p["row"]), "full_name": p["full_name"],
               "birth_date": _iso(p.get("birth_date")), "sex": p.get("sex"),
               "position": p.get("position"), "staff_group": p.get("staff_group"),
               "grade": p.get("grade"), "office": p[OFFICE]} for p in _records(persons)]
    person_of = {_person_key(p): p["person_id"] for p in _records(persons)}
    units = [{"unit_code": u["unit_code"], "unit_name": u.get("unit_name"),
              "level": u.get("level"), "block": u.get("block"), "status": None,
              "office": u[OFFICE]}
             for u in (_records(result.reported.units) if not result.reported.units.empty
                       else [])]
    registration = result.round.endswith(REGISTRATION_ROUND)
    proposals = _reported_proposals(result.reported, person_of, result.rechecked,
                                    registration)
    return replace(
        base, round=result.round, units=[*base.units, *units], people=[*base.people, *people],
        proposals=[*base.proposals, *proposals],
        inputs=[{"file": s.file, "sha256": s.sha256, "unit_code": s.unit_code,
                 "classification": s.status.value} for s in result.submissions],
        findings=[f.to_dict() for f in result.findings])


@dataclass(frozen=True)
class PendingRecord:
    """A round whose persons are matched to the store's, its rows not yet written."""

    store: Store
    result: RoundResult
    matched: Matched
    run_at: str

    @property
    def matches(self) -> pd.DataFrame:
        """The matches the office should confirm (the round's workbook lists them)."""
        return self.matched.notes

    def write(self) -> int:
        """Write the new persons and the round's rows, replacing that round's earlier record;
        the run id. Joins the caller's transaction when one is open."""
        result, matched = self.result, self.matched
        with collections_paused(), self.store.transaction():
            self.store.add_persons(matched.added)
            if hasattr(result, "reported"):
                run = province_record(result, matched.ids, self.run_at)
            else:
                run = round_record(result, result.staff.assign(person_id=matched.ids),
                                   self.run_at)
            return self.store.record_round(replace(run, spellings=matched.spellings))


def matched_round(store: Store, result: RoundResult, run_at: str) -> PendingRecord:
    """The round's persons matched to the store's people (read only; `PendingRecord.write`
    writes them). A Sở's round (one with `direct` schools and `reported` tables) matches its
    direct schools' staff and every person of the communes' reports together."""
    if hasattr(result, "reported"):
        staff = pd.concat([result.direct.staff[["unit_code", "full_name", "birth_date"]],
                           reported_persons(result.reported.staff)[
                               ["unit_code", "full_name", "birth_date"]]],
                          ignore_index=True)
    else:
        staff = result.staff
    with collections_paused():
        return PendingRecord(store, result, match_persons(store, staff, result.school_year),
                             run_at)


def record(store: Store, result: RoundResult, run_at: str) -> pd.DataFrame:
    """Write the round to the store in one transaction: person ids (new persons added) and the
    round's rows, replacing that round's earlier record. Returns the matches to confirm."""
    with store.transaction():
        pending = matched_round(store, result, run_at)
        pending.write()
    return pending.matches
