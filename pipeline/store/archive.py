"""The input archive: every file that reached the inbox, kept once by its sha256, with the
time it first arrived — so what a decision was based on can always be shown."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

from pipeline.ingest.inbox import inbox_files
from pipeline.ingest.read import file_sha256
from pipeline.store.database import Store


def archive_inbox(store: Store, inbox: Path, archive_dir: Path,
                  now: dt.datetime | None = None) -> dict[str, dt.datetime]:
    """Copy each new file of the inbox into the archive (never moving or changing the original)
    and return, for every inbox file name, when its content first arrived."""
    now = now or dt.datetime.now().astimezone()
    arrivals: dict[str, dt.datetime] = {}
    for path in inbox_files(inbox):
        sha = file_sha256(path)
        seen = store.first_seen(sha)
        if seen is None:
            target = archive_dir / sha[:2] / f"{sha}{path.suffix.lower()}"
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                partial = target.with_name(target.name + ".part")
                shutil.copyfile(path, partial)
                os.replace(partial, target)
            # The file's own time when it is older than this run: it arrived before.
            mtime = dt.datetime.fromtimestamp(path.stat().st_mtime).astimezone()
            first = min(mtime, now)
            store.archive_file(sha, path.name, path.stat().st_size, first.isoformat(),
                               target.relative_to(archive_dir).as_posix())
            arrivals[path.name] = first
        else:
            arrivals[path.name] = dt.datetime.fromisoformat(seen)
    return arrivals
