"""The input archive: every file that reached the inbox, kept once by its sha256, with the
time it first arrived — so what a decision was based on can always be shown."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
from pathlib import Path

from pipeline.engine import inbox_files
from pipeline.ingest.read import file_sha256


def archive_inbox(conn: sqlite3.Connection, inbox: Path, archive_dir: Path,
                  now: dt.datetime | None = None) -> dict[str, dt.datetime]:
    """Copy each new file of the inbox into the archive (never moving or changing the original)
    and return, for every inbox file name, when its content first arrived."""
    now = now or dt.datetime.now().astimezone()
    arrivals: dict[str, dt.datetime] = {}
    for path in inbox_files(inbox):
        sha = file_sha256(path)
        row = conn.execute("SELECT first_seen FROM archive WHERE sha256 = ?", (sha,)).fetchone()
        if row is None:
            target = archive_dir / sha[:2] / f"{sha}{path.suffix.lower()}"
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                partial = target.with_name(target.name + ".part")
                shutil.copyfile(path, partial)
                os.replace(partial, target)
            # The file's own time when it is older than this run: it arrived before.
            mtime = dt.datetime.fromtimestamp(path.stat().st_mtime).astimezone()
            first = min(mtime, now)
            conn.execute("INSERT OR IGNORE INTO archive (sha256, file, size, first_seen, "
                         "stored_as) VALUES (?, ?, ?, ?, ?)",
                         (sha, path.name, path.stat().st_size, first.isoformat(),
                          target.relative_to(archive_dir).as_posix()))
            arrivals[path.name] = first
        else:
            arrivals[path.name] = dt.datetime.fromisoformat(row[0])
    return arrivals
