"""Nothing a round had is lost by mistake: a run that would replace a round's consolidated
submissions with none or almost none (an emptied or mistyped inbox) is refused unless forced,
and the outputs a run replaces are kept as dated backups (the newest few)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import settings
from pipeline import texts as wording
from pipeline.status import FileStatus, UnitStatus

# Unit statuses of a round whose file was consolidated.
_COUNTED = (UnitStatus.VALID.value, UnitStatus.WITH_ERRORS.value)


class ShrinkingRoundError(Exception):
    """The run would replace a round's consolidated submissions with (almost) none."""


@dataclass(frozen=True)
class PreviousRun:
    """What the last recorded run of a round consolidated."""

    units: int  # units whose file was consolidated (one accepted file each)
    when: str   # when it ran, as people read it ("" when not known)
    feedback: int = 0  # feedback workbooks it wrote


def previous_run(folder: Path, store: Any, school_year: str, round_name: str
                 ) -> PreviousRun | None:
    """The round's last run: from the manifest of its outputs in `folder`, else from the
    history store; None when neither has it."""
    feedback = sum(1 for _ in (folder / settings.FEEDBACK_DIR).rglob("*.xlsx")) \
        if (folder / settings.FEEDBACK_DIR).is_dir() else 0
    try:
        data = json.loads((folder / settings.MANIFEST_FILE).read_text(encoding="utf-8"))
        units = {i.get("unit") for i in data["inputs"]
                 if i.get("classification") == FileStatus.ACCEPTED.value} - {None}
        return PreviousRun(len(units), _when(data.get("generated_at")), feedback)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    if store is None:
        return None
    counts = store.unit_status_counts(school_year, round_name)
    units = sum(counts.get(code, 0) for code in _COUNTED)
    runs = [r for r in store.round_runs(school_year) if r["round"] == round_name]
    return PreviousRun(units, _when(runs[-1]["run_at"]) if runs else "", feedback) \
        if units else None


def _when(stamp: object) -> str:
    """"10:15 ngày 03/12/2026" from an ISO time; "" when there is none."""
    try:
        moment = dt.datetime.fromisoformat(str(stamp))
    except ValueError:
        return ""
    return f"{moment:%H:%M} ngày {moment:%d/%m/%Y}"


def accepted_units(submissions: Any) -> int:
    """How many units a run consolidates: those with an accepted file."""
    return len({s.unit_code for s in submissions if s.status is FileStatus.ACCEPTED})


def almost_empty(before: int, now: int) -> bool:
    """Whether a run consolidating `now` units would replace one that consolidated `before`
    with almost nothing: fewer than settings.MIN_KEPT_SHARE of them (none included)."""
    return before > 0 and now < before * settings.MIN_KEPT_SHARE


def shrinking_message(previous: PreviousRun, now: int, files: int, *, round_label: str,
                      school_year: str, inbox: Path, backups: Path) -> str:
    """What a refused run would have lost, in Vietnamese."""
    return wording.render("inbox", "shrinking", round=round_label, year=school_year,
                          when=previous.when or "không rõ giờ", before=previous.units,
                          now=now, files=files, inbox=inbox, feedback=previous.feedback,
                          backups=backups)


# Backups


def backup_root(out: Path, school_year: str, round_name: str) -> Path:
    """Where a round's replaced outputs are kept: OUT/<năm học>/sao-luu/<round>/."""
    return out / school_year / settings.BACKUP_DIR / round_name


def keep_backup(retired: Path, root: Path, kept: int = settings.BACKUPS_KEPT) -> Path:
    """Move a round's replaced outputs into `root`, in a folder named by when they were
    written (YYYY-MM-DD_HH-MM-SS); only the newest `kept` backups stay."""
    root.mkdir(parents=True, exist_ok=True)
    stamp = _written_at(retired).strftime("%Y-%m-%d_%H-%M-%S")
    target, n = root / stamp, 2
    while target.exists():
        target, n = root / f"{stamp}-{n}", n + 1
    retired.rename(target)
    backups = sorted((p for p in root.iterdir() if p.is_dir()), key=_backup_order)
    for old in backups[:-kept] if kept > 0 else backups:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _written_at(folder: Path) -> dt.datetime:
    """When a round's outputs were written: their manifest says, else the folder's time."""
    try:
        data = json.loads((folder / settings.MANIFEST_FILE).read_text(encoding="utf-8"))
        return dt.datetime.fromisoformat(data["generated_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return dt.datetime.fromtimestamp(folder.stat().st_mtime)


def _backup_order(path: Path) -> tuple[str, int]:
    """Oldest first: by the time in the name, then by the number after it ("…-2")."""
    stamp, n = path.name[:19], path.name[20:]
    return stamp, int(n) if n.isdigit() else 1
