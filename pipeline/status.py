"""Statuses as codes. Logic and the history store compare and keep these codes; the Vietnamese
label of a code (texts.yaml, section status) is applied only where something is written for
people (`label`)."""

from __future__ import annotations

from enum import StrEnum

from pipeline import texts as wording


class FileStatus(StrEnum):
    """What became of one inbox file."""

    ACCEPTED = "accepted"      # its rows enter the totals
    REJECTED = "rejected"      # kept out: unreadable, unknown form or unit, a file-level error
    SUPERSEDED = "superseded"  # a newer file of the same unit was chosen
    IGNORED = "ignored"        # not a submission: a lock, system or hidden file (not read)


class UnitStatus(StrEnum):
    """A registry unit in one round, from the file chosen for it."""

    VALID = "valid"
    WITH_ERRORS = "with_errors"  # counted, with row-level errors left out
    INVALID = "invalid"          # sent, but nothing of it could be counted
    MISSING = "missing"          # sent nothing


class Verdict(StrEnum):
    """The result of a rule for one proposal, and of the proposal overall."""

    PASS = "pass"
    FAIL = "fail"
    CHECK = "check"            # the office must check (history the store does not reach, …)
    OVER_QUOTA = "over-quota"  # eligible, beyond the quota of its group


class Arrival(StrEnum):
    """Whether a unit's file for a round arrived, by the round's due date."""

    ON_TIME = "on_time"
    LATE = "late"
    MISSING = "missing"
    INVALID = "invalid"


# Every status code of these classes; its label is texts.yaml's status.<Class>.<code>.
STATUSES: tuple[type[StrEnum], ...] = (FileStatus, UnitStatus, Verdict, Arrival)


def label_key(code: StrEnum) -> str:
    """The key of a code's label in texts.yaml's status section, e.g. "UnitStatus.valid"."""
    return f"{type(code).__name__}.{code.value}"


def label(code: StrEnum) -> str:
    """The Vietnamese label people read for a status code."""
    return wording.text("status", label_key(code))
