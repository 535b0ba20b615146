"""Broken and hostile inbox entries: each ends in its finding; the batch goes on; nothing moves."""

from __future__ import annotations

import os
import zipfile

import pytest

from pipeline import settings
from pipeline.config import load_config
from pipeline.run import consolidation

from .conftest import SAMPLES

GOOD = "dang-ky_01001.xlsx"
COVERED = {"not-a-file", "empty-file", "file-too-large", "zip-bomb"}


def _state(inbox):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in inbox.iterdir()
            if p.is_file() and not p.is_symlink()}


def _findings(root, name):
    before = _state(root / "hop-thu")
    result = consolidation(root / "hop-thu", load_config(root / "tdkt.toml"))
    assert _state(root / "hop-thu") == before  # nothing changed, moved or lost
    assert result.units.loc["01001", "status"] == "Hợp lệ"  # the rest of the batch went on
    return [(f.code, f.message) for f in result.findings if f.file == name]


@pytest.fixture
def inbox_with_good_file(office):
    root = office()
    (root / "hop-thu" / GOOD).write_bytes((SAMPLES / "hop-thu" / GOOD).read_bytes())
    return root


def test_hostile_directory_in_inbox(inbox_with_good_file):
    root = inbox_with_good_file
    (root / "hop-thu" / "thu-muc-con").mkdir()
    (code, message), = _findings(root, "thu-muc-con")
    assert code == "not-a-file" and "thư mục" in message


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_hostile_symlink_in_inbox_is_not_followed(inbox_with_good_file, tmp_path):
    root = inbox_with_good_file
    secret = tmp_path / "bi-mat.xlsx"
    secret.write_bytes((SAMPLES / "hop-thu" / GOOD).read_bytes())
    (root / "hop-thu" / "lien-ket.xlsx").symlink_to(secret)
    (code, message), = _findings(root, "lien-ket.xlsx")
    assert code == "not-a-file" and "liên kết" in message


def test_hostile_empty_file(inbox_with_good_file):
    root = inbox_with_good_file
    (root / "hop-thu" / "dang-ky_02001.xlsx").write_bytes(b"")
    (code, message), = _findings(root, "dang-ky_02001.xlsx")
    assert code == "empty-file" and "0 byte" in message


def test_hostile_file_too_large(inbox_with_good_file, monkeypatch):
    root = inbox_with_good_file
    limit = (root / "hop-thu" / GOOD).stat().st_size + 100
    monkeypatch.setattr(settings, "MAX_FILE_BYTES", limit)
    (root / "hop-thu" / "lon.xlsx").write_bytes(b"x" * (limit + 1000))
    found = _findings(root, "lon.xlsx")
    assert [c for c, _ in found] == ["file-too-large"] and "giới hạn" in found[0][1]


def test_hostile_zip_bomb_is_not_decompressed(inbox_with_good_file, monkeypatch):
    root = inbox_with_good_file
    monkeypatch.setattr(settings, "MAX_UNCOMPRESSED_BYTES", 5 * 1024 * 1024)
    with zipfile.ZipFile(root / "hop-thu" / "bom.xlsx", "w", zipfile.ZIP_DEFLATED) as bomb:
        bomb.writestr("[Content_Types].xml", "<Types/>")
        bomb.writestr("xl/worksheets/sheet1.xml", b"\0" * (20 * 1024 * 1024))
    assert (root / "hop-thu" / "bom.xlsx").stat().st_size < 100_000
    found = _findings(root, "bom.xlsx")
    assert [c for c, _ in found] == ["zip-bomb"] and "giải nén" in found[0][1]
