"""The input archive: every file that reached the inbox, kept once by its sha256, with the
time it first arrived — so what a decision was based on can always be shown."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from pipeline.ingest.inbox import entry_name, inbox_files
from pipeline.ingest.read import file_sha256
from pipeline.store.database import Store


def archive_inbox(store: Store, inbox: Path, archive_dir: Path,
                  now: dt.datetime | None = None,
                  earlier: Mapping[str, dt.datetime] | None = None) -> dict[str, dt.datetime]:
    """Copy each new file of the inbox into the archive (never moving or changing the original)
    and return, for every inbox file name, when its content was first seen.

    A content seen for the first time is recorded as seen `now`, or at the time in `earlier`
    (sha256 → when an earlier tdkt run read it) when that is before; never at the file's
    modification time, which says when the office saved it, not when it arrived."""
    now = now or dt.datetime.now().astimezone()
    earlier = earlier or {}
    arrivals: dict[str, dt.datetime] = {}
    for path in inbox_files(inbox):
        name = entry_name(path, inbox)  # as the submissions know it (NFC, marked when alike)
        sha = file_sha256(path)
        seen = store.first_seen(sha)
        if seen is None:
            target = archive_dir / sha[:2] / f"{sha}{path.suffix.lower()}"
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                partial = target.with_name(target.name + ".part")
                shutil.copyfile(path, partial)
                os.replace(partial, target)
            first = min(now, earlier.get(sha, now))
            store.archive_file(sha, name, path.stat().st_size, first.isoformat(),
                               target.relative_to(archive_dir).as_posix())
            arrivals[name] = first
        else:
            arrivals[name] = dt.datetime.fromisoformat(seen)
    return arrivals
