"""The input archive keeps each file once by content, with when it first arrived."""

from __future__ import annotations

import datetime as dt
import hashlib
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
        # b.xlsx was read by an earlier run (a consolidation on 12/10); a.xlsx's old
        # modification time is not evidence of when it arrived: first seen now.
        consolidated = dt.datetime(2025, 10, 12, 9, 0).astimezone()
        sha_b = hashlib.sha256(b"other school").hexdigest()
        arrivals = archive_inbox(conn, inbox, tmp_path / "luu-tru", now,
                                 earlier={sha_b: consolidated})
        assert arrivals == {"a.xlsx": now, "b.xlsx": consolidated}
        assert old < now
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


def test_archive_knows_files_by_the_names_the_submissions_carry(tmp_path):
    """Names typed with decomposed letters (NFD, as macOS saves them) are known by their NFC
    form, and two names that differ only so stay apart — as in the manifest."""
    import unicodedata

    inbox = tmp_path / "hop-thu"
    inbox.mkdir()
    composed = unicodedata.normalize("NFC", "Đăng ký 01001.xlsx")
    decomposed = unicodedata.normalize("NFD", "Đăng ký 01002.xlsx")
    (inbox / decomposed).write_bytes(b"second school")
    conn = open_store(tmp_path / "kho.sqlite")
    try:
        now = dt.datetime(2025, 10, 31, 23, 0).astimezone()
        arrivals = archive_inbox(conn, inbox, tmp_path / "luu-tru", now)
        assert list(arrivals) == [unicodedata.normalize("NFC", decomposed)]
        (inbox / unicodedata.normalize("NFD", composed)).write_bytes(b"nfd copy")
        (inbox / composed).write_bytes(b"nfc copy")
        both = archive_inbox(conn, inbox, tmp_path / "luu-tru", now)
        alike = [name for name in both if "01001" in name]
        assert len(alike) == 2 and len(set(alike)) == 2
        assert all(unicodedata.is_normalized("NFC", name) for name in both)
    finally:
        conn.close()
