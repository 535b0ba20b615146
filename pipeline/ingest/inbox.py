"""What the inbox folder holds: its files, every entry (folders and links are reported), the
entries left alone (lock, system and hidden files), and the name each entry is known by."""

from __future__ import annotations

import functools
import os
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from pipeline import texts as wording
from pipeline.text import nfc

# Files Windows leaves in a folder by itself: never a school's submission.
_THUMBNAILS = {"thumbs.db", "ehthumbs.db", "ehthumbs_vista.db"}
_FOLDER_SETTINGS = {"desktop.ini"}


@dataclass(frozen=True)
class Ignored:
    """An inbox entry that is not read: not a submission, so neither counted nor faulty."""

    file: str    # its name as shown (NFC)
    reason: str  # why it is left alone, in Vietnamese


def ignored_reason(path: Path) -> str | None:
    """Why an inbox entry is left alone (an Excel/Word lock file "~$…", Thumbs.db,
    desktop.ini, a hidden file), or None when it is read."""
    name = path.name
    if name.startswith("~$"):
        return wording.text("inbox", "lock_file")
    if name.casefold() in _THUMBNAILS:
        return wording.text("inbox", "thumbnails")
    if name.casefold() in _FOLDER_SETTINGS:
        return wording.text("inbox", "folder_settings")
    if name.startswith(".") or _hidden_attribute(path):
        return wording.text("inbox", "hidden")
    return None


def _hidden_attribute(path: Path) -> bool:
    """Whether Windows marks the entry hidden (never on other systems)."""
    try:
        attributes = getattr(path.lstat(), "st_file_attributes", 0)
    except OSError:
        return False
    return bool(attributes & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0))


def inbox_files(inbox: Path) -> list[Path]:
    """The regular files in the inbox that are read, in name order; folders and links are not
    followed, ignored entries left out."""
    return [p for p in inbox_entries(inbox) if p.is_file() and not p.is_symlink()]


def inbox_entries(inbox: Path) -> list[Path]:
    """Every entry of the inbox that is read (files, folders, links: each is reported), in
    name order; lock, system and hidden files are left out (see `ignored_entries`)."""
    return sorted((p for p in inbox.iterdir() if ignored_reason(p) is None),
                  key=lambda p: p.name)


def ignored_entries(inbox: Path) -> list[Ignored]:
    """The inbox entries left alone, with why, in name order."""
    return [Ignored(file=entry_name(p, inbox), reason=reason)
            for p in sorted(inbox.iterdir(), key=lambda p: p.name)
            if (reason := ignored_reason(p)) is not None]


# Names


def entry_name(path: Path, inbox: Path) -> str:
    """The name an inbox entry is shown and known by: its name in NFC. When another entry of
    the folder has the same name once in NFC (one typed with composed, one with decomposed
    Vietnamese letters), each says which form it was typed in, so that the two stay apart."""
    relative = path.relative_to(inbox).as_posix()
    shown = nfc(relative)
    folder = path.parent
    try:
        version = folder.stat().st_mtime_ns
    except OSError:
        return shown
    alike = _alike_names(str(folder), version).get(shown)
    if not alike or len(alike) < 2:
        return shown
    prefix = nfc(Path(relative).parent.as_posix()) + "/" if "/" in relative else ""
    return prefix + marked_name(path.name, alike)


@functools.lru_cache(maxsize=8)
def _alike_names(folder: str, version: int) -> dict[str, tuple[str, ...]]:
    """The folder's names grouped by their NFC form (read once per state of the folder)."""
    del version  # part of the cache key only: a changed folder is listed again
    groups: dict[str, list[str]] = {}
    for name in os.listdir(folder):
        groups.setdefault(nfc(name), []).append(name)
    return {key: tuple(sorted(names)) for key, names in groups.items() if len(names) > 1}


def marked_name(name: str, alike: tuple[str, ...]) -> str:
    """`name` in NFC with the Unicode form it was typed in ("NFC", "NFD"), or, when that
    does not set it apart from the `alike` names, with its code points written out."""
    forms = [_form(n) for n in alike]
    form = _form(name)
    if form is not None and forms.count(form) == 1:
        told = wording.text("inbox", "form_nfc") if form == "NFC" else \
            wording.text("inbox", "form_nfd")
        return wording.render("inbox", "name_form", name=nfc(name), form=told)
    escaped = name.encode("ascii", "backslashreplace").decode("ascii")
    return wording.render("inbox", "name_escaped", name=nfc(name), escaped=escaped)


def _form(name: str) -> str | None:
    for form in ("NFC", "NFD"):
        if unicodedata.is_normalized(form, name):
            return form
    return None
