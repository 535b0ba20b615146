"""What the inbox folder holds: its files, and every entry (folders and links are reported)."""

from __future__ import annotations

from pathlib import Path


def inbox_files(inbox: Path) -> list[Path]:
    """The regular files in the inbox, in name order; folders and links are not followed."""
    return sorted((p for p in inbox.iterdir() if p.is_file() and not p.is_symlink()),
                  key=lambda p: p.name)


def inbox_entries(inbox: Path) -> list[Path]:
    """Everything in the inbox (files, folders, links), in name order: each is reported."""
    return sorted(inbox.iterdir(), key=lambda p: p.name)
