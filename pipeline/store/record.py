"""Writing a consolidated round to the history store, and reading earlier years back from it."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pandas as pd

from pipeline.rounds.base import RoundResult
from pipeline.store.database import RoundRecord, Store
from pipeline.store.identity import (
    AMBIGUOUS,
    MATCH_LABELS,
    MOVED,
    NEW,
    TYPO,
    KnownPeople,
    Match,
    match_key,
    person_key,
)

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


def assign_person_ids(store: Store, staff: pd.DataFrame,
                      school_year: str) -> tuple[pd.Series, pd.DataFrame]:
    """A person id for every staff row (new persons added) and the matches to confirm.

    Runs inside the caller's transaction when one is open. New persons take the ids after the
    largest one and are inserted together.
    """
    known = KnownPeople.from_frame(known_people(store))
    for person, full_name, unit_code in store.undated_staff(school_year):
        known.add_undated(person, person_key(full_name, None)[0], unit_code)
    next_id = store.next_person_id()
    added: list[tuple[int, str, str, str | None, str]] = []
    ids: list[int] = []
    notes = []
    taken: set[int] = set()  # ids given to earlier rows of this round
    for unit_code, full_name, birth_date in zip(staff["unit_code"].tolist(),
                                                staff["full_name"].tolist(),
                                                staff["birth_date"].tolist(), strict=True):
        key = person_key(full_name, birth_date)
        match = match_key(known, key[0], key[1], unit_code)
        if match.person_id in taken:
            # Two rows of one round cannot be one person: same name and birth date in two
            # schools. Nobody is guessed; the office confirms.
            match = Match(None, AMBIGUOUS, (match.person_id,))
        person = match.person_id
        if person is None:
            person, next_id = next_id, next_id + 1
            added.append((person, str(full_name), key[0], key[1] or None, school_year))
        known.add(person, key[0], key[1], unit_code)
        if not key[1]:
            known.add_undated(person, key[0], unit_code)
        if match.how in TO_CONFIRM or (match.how == NEW and match.candidates):
            notes.append({"unit_code": unit_code, "full_name": full_name,
                          "birth_date": birth_date, "person_id": person, "how": match.how,
                          "label": MATCH_LABELS[match.how],
                          "candidates": ", ".join(map(str, match.candidates))})
        ids.append(person)
        taken.add(person)
    store.add_persons(added)
    columns = ["unit_code", "full_name", "birth_date", "person_id", "how", "label", "candidates"]
    return pd.Series(ids, index=staff.index, dtype="Int64"), pd.DataFrame(notes, columns=columns)


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
    people = [{"person_id": _int(r.get("person_id")), "unit_code": r["unit_code"],
               "row": int(r["row"]), "full_name": r["full_name"],
               "birth_date": _iso(r.get("birth_date")), "sex": r.get("sex"),
               "position": r.get("position"), "staff_group": r.get("staff_group"),
               "grade": r.get("grade"),
               "title": r.get("title") if rule_decisions is None else None,
               "commendation": r.get("commendation") if rule_decisions is None else None}
              for r in _records(staff)]
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
    units = [{"unit_code": code, "unit_name": u["unit_name"], "level": u["level"],
              "block": u["block"], "status": u["status"]}
             for code, u in result.units.iterrows()]
    return RoundRecord(school_year=result.school_year, round=result.round, run_at=run_at,
                       inputs=inputs, units=units, people=people, proposals=proposals,
                       decisions=decisions, findings=[f.to_dict() for f in result.findings])


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


def record(store: Store, result: RoundResult, run_at: str) -> pd.DataFrame:
    """Write the round to the store in one transaction: person ids (new persons added) and the
    round's rows, replacing that round's earlier record. Returns the matches to confirm.

    A Sở's round (one with `direct` schools and `reported` tables) records its direct schools
    and every person of the communes' reports, matched against the store together."""
    with store.transaction():
        if hasattr(result, "reported"):
            staff = pd.concat([result.direct.staff[["unit_code", "full_name", "birth_date"]],
                               reported_persons(result.reported.staff)[
                                   ["unit_code", "full_name", "birth_date"]]],
                              ignore_index=True)
            ids, notes = assign_person_ids(store, staff, result.school_year)
            store.record_round(province_record(result, ids, run_at))
        else:
            ids, notes = assign_person_ids(store, result.staff, result.school_year)
            store.record_round(round_record(result, result.staff.assign(person_id=ids),
                                            run_at))
    return notes
