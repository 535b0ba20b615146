"""Writing a consolidated round to the history store, and reading earlier years back from it."""

from __future__ import annotations

import datetime as dt

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
    match_person,
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
        match = match_person(known, full_name, birth_date, unit_code)
        key = person_key(full_name, birth_date)
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


def record(store: Store, result: RoundResult, run_at: str) -> pd.DataFrame:
    """Write the round to the store in one transaction: person ids (new persons added) and the
    round's rows, replacing that round's earlier record. Returns the matches to confirm."""
    with store.transaction():
        ids, notes = assign_person_ids(store, result.staff, result.school_year)
        store.record_round(round_record(result, result.staff.assign(person_id=ids), run_at))
    return notes
