"""The Phòng's approval of a round: nothing goes to the Sở before it.

`tdkt approve` takes the round's outputs as they are (`<out>/<năm học>/<đợt>/`), keeps a copy
in `<out>/<năm học>/da-duyet/<đợt>/` whose manifest carries the approval (who, when, and the
sha256 of the manifest approved), and records the same in the history store. `tdkt run` mails
the Sở that copy, once per approval, whatever later runs consolidate; later changes go to the
Sở only when the Phòng approves again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline import settings
from pipeline.store.database import Store

APPROVED_DIR = "da-duyet"


class ApprovalError(Exception):
    """The round can't be approved (not consolidated yet): a Vietnamese message."""


@dataclass(frozen=True)
class Approval:
    """One approval: the round, who approved it and when, the manifest approved, its copy."""

    school_year: str
    round: str
    approved_by: str
    approved_at: dt.datetime
    manifest_sha256: str
    folder: Path  # the approved copy of the outputs

    def inputs(self) -> dict[str, str]:
        """File name → sha256 of the inputs the approved consolidation read."""
        data = json.loads((self.folder / settings.MANIFEST_FILE).read_text(encoding="utf-8"))
        return {i["file"]: i["sha256"] for i in data.get("inputs", [])}


def approved_folder(out: Path, school_year: str, round_name: str) -> Path:
    """Where the approved copy of a round's outputs is kept."""
    return Path(out) / school_year / APPROVED_DIR / round_name


def approve(out: Path, store: Store, school_year: str, round_name: str, approved_by: str,
            at: dt.datetime) -> Approval:
    """Approve the round's current outputs: copy them (manifest with the approval) and record
    the approval in the store. Raises ApprovalError when the round has no outputs yet."""
    source = Path(out) / school_year / round_name
    manifest = source / settings.MANIFEST_FILE
    if not manifest.is_file():
        raise ApprovalError(
            f"Đợt “{round_name}” năm học {school_year} chưa được tổng hợp (không có "
            f"{manifest}). Hãy chạy tdkt consolidate hoặc tdkt run rồi duyệt.")
    raw = manifest.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    data = json.loads(raw)
    data["approval"] = {"approved_by": approved_by,
                        "approved_at": at.isoformat(timespec="seconds"),
                        "manifest_sha256": sha}
    target = approved_folder(out, school_year, round_name)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(source, staging, ignore=shutil.ignore_patterns(".*"))
        (staging / settings.MANIFEST_FILE).write_text(
            json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
        retired = target.with_name(f".{target.name}.old-{os.getpid()}")
        if target.exists():
            target.rename(retired)
        staging.rename(target)
        shutil.rmtree(retired, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    store.approve_round(school_year, round_name, approved_by, sha, at)
    return Approval(school_year, round_name, approved_by, at, sha, target)


def approval_of(out: Path, store: Store, school_year: str, round_name: str) -> Approval | None:
    """The round's approval when the store records one and its approved copy is the one the
    store names (same manifest sha256); None otherwise."""
    row = store.round_approval(school_year, round_name)
    folder = approved_folder(out, school_year, round_name)
    manifest = folder / settings.MANIFEST_FILE
    if row is None or not manifest.is_file():
        return None
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8")).get("approval") or {}
    except (OSError, ValueError):
        return None
    if recorded.get("manifest_sha256") != row["manifest_sha256"]:
        return None
    return Approval(school_year, round_name, row["approved_by"] or "",
                    dt.datetime.fromisoformat(row["approved_at"]), row["manifest_sha256"],
                    folder)
