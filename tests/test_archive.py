"""The input archive keeps each file once by content, with when it first arrived."""

from __future__ import annotations

import datetime as dt
import os

from pipeline.store.archive import archive_inbox
from pipeline.store.database import open_store


def test_archive_keeps_each_content_once_and_its_first_arrival(tmp_path):
    inbox = tmp_path / "hop-thu"
    inbox.mkdir()
    (inbox / "a.xlsx").write_bytes(b"first version")
    (inbox / "b.xlsx").write_bytes(b"other school")
    (inbox / "thu-muc").mkdir()  # folders are not files of the inbox
    old = dt.datetime(2025, 10, 10, 8, 0).astimezone()
    os.utime(inbox / "a.xlsx", (old.timestamp(), old.timestamp()))
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in inbox.iterdir()
              if p.is_file()}
    conn = open_store(tmp_path / "kho.sqlite")
    try:
        now = dt.datetime(2025, 10, 31, 23, 0).astimezone()
        arrivals = archive_inbox(conn, inbox, tmp_path / "luu-tru", now)
        assert arrivals["a.xlsx"] == old and arrivals["b.xlsx"] <= now
        stored = sorted(p.read_bytes() for p in (tmp_path / "luu-tru").rglob("*.xlsx"))
        assert stored == [b"first version", b"other school"]
        # A later run: the same contents are not copied again, their arrival is kept.
        again = archive_inbox(conn, inbox, tmp_path / "luu-tru", now + dt.timedelta(days=30))
        assert again == arrivals
        # A resubmission with new content is a new arrival, the old content stays archived.
        (inbox / "a.xlsx").write_bytes(b"corrected version")
        later = now + dt.timedelta(days=31)
        third = archive_inbox(conn, inbox, tmp_path / "luu-tru", later)
        assert third["a.xlsx"] == later
        assert len(list((tmp_path / "luu-tru").rglob("*.xlsx"))) == 3
        assert conn.execute("SELECT COUNT(*) FROM archive").fetchone()[0] == 3
    finally:
        conn.close()
    assert (inbox / "b.xlsx").read_bytes() == before["b.xlsx"][0]
    assert (inbox / "b.xlsx").stat().st_mtime_ns == before["b.xlsx"][1]
