"""The console the office reads: output that never fails on a console that is not UTF-8,
Click's own texts in Vietnamese, and what a user-caused stop or system error says.

Light by design: `pipeline.launch` uses it before anything heavy is imported, so a Ctrl-C or
an unwritable folder is explained whatever the command was doing.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import functools
import itertools
import signal
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TextIO

# Exit codes of a run stopped by the user (128 + SIGINT, as shells report it) and of a run
# the system would not let write (the same as a wrong invocation: the run did not complete).
EXIT_STOPPED = 130
EXIT_SYSTEM = 2

_ERROR_HANDLER = "tdkt-vietnamese"
# Letters with no base letter in NFD that a console without them should still show readably.
_PLAIN = {"đ": "d", "Đ": "D", "“": '"', "”": '"', "‘": "'", "’": "'", "–": "-", "—": "-",
          "…": "...", "→": "->", "≥": ">=", "≤": "<="}


# Output on any console


@functools.lru_cache(maxsize=4096)
def _shown(char: str, encoding: str) -> str:
    """How `char` is written on a console in `encoding` that cannot write it: its letter with
    the marks the encoding has (cp1258 writes "ế" as "ê" + a combining acute accent), else the
    letter without marks ("Đã dừng" → "Da dung" in ASCII), else "?"."""
    def fits(text: str) -> bool:
        try:
            text.encode(encoding)
        except UnicodeError:
            return False
        return True

    base, *marks = unicodedata.normalize("NFD", char)
    # As many marks composed onto the letter as the encoding has, the others combining:
    # "ộ" is "ô" + a combining dot below in cp1258, which has no "ộ" and no combining "^".
    for size in range(len(marks), -1, -1):
        for kept in itertools.combinations(range(len(marks)), size):
            head = unicodedata.normalize("NFC", base + "".join(marks[i] for i in kept))
            candidate = head + "".join(m for i, m in enumerate(marks) if i not in kept)
            if fits(candidate):
                return candidate
    for candidate in (_PLAIN.get(char, ""), base):
        if candidate and fits(candidate):
            return candidate
    return "?"


def error_handler(encoding: str) -> str:
    """The name of a codec error handler writing what `encoding` can show of a text (`_shown`);
    one per encoding, as a charmap codec reports its encoding only as "charmap"."""
    name = f"{_ERROR_HANDLER}-{codecs.lookup(encoding).name}"

    def replace(exc: UnicodeError) -> tuple[str, int]:
        if not isinstance(exc, UnicodeEncodeError):
            raise exc
        text = exc.object[exc.start:exc.end]
        return "".join(_shown(ch, encoding) for ch in text), exc.end

    codecs.register_error(name, replace)
    return name


def _is_utf(encoding: str | None) -> bool:
    try:
        return bool(encoding) and codecs.lookup(encoding).name.startswith("utf")
    except LookupError:
        return False


def safe_streams(*streams: TextIO) -> None:
    """Make stdout and stderr (or the streams given) write whatever their console can show of
    a Vietnamese text instead of failing with UnicodeEncodeError (PYTHONIOENCODING=cp1258, an
    old Windows console, output redirected to a file in the system's code page)."""
    for stream in streams or (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if stream is None or not hasattr(stream, "reconfigure") or _is_utf(encoding):
            continue
        try:
            stream.reconfigure(errors=error_handler(encoding))
        except (ValueError, OSError, LookupError):  # closed or detached: nothing to protect
            continue


# Stops and system errors


# What a Ctrl-C says when the texts cannot be read: the Ctrl-C itself may have cut short an
# import they need (a half-loaded PyYAML); texts.yaml "console.stopped" says the same.
STOPPED_FALLBACK = "Đã dừng. Kết quả của các lần chạy trước được giữ nguyên."


def stopped() -> NoReturn:
    """Ctrl-C: say so on stderr and exit 130; what was written before stays (outputs are
    swapped in whole, the store commits only after)."""
    try:
        message = _text("stopped")
    except Exception:  # any failure here must still end in the message
        message = STOPPED_FALLBACK
    _say_error(message)
    sys.exit(EXIT_STOPPED)


def system_error(exc: OSError) -> NoReturn:
    """A file or folder the system would not let us read or write: what and what to do."""
    _say_error(_render("error", message=os_error_message(exc)))
    sys.exit(EXIT_SYSTEM)


def os_error_message(exc: OSError) -> str:
    """The Vietnamese explanation of an OSError: the file or folder, and what to do."""
    if exc.filename is None:  # raised without a path (a library's own OSError)
        return _text("no_path")
    path = exc.filename
    target = exc.filename2
    code = exc.errno
    if target is not None and code in _LOCKED:  # a rename: a file inside is open
        return _render("output_in_use", path=path, open_files=_open_workbooks(Path(path)))
    folder = path if Path(str(path)).is_dir() else Path(str(path)).parent
    if code in _LOCKED and Path(str(path)).suffix.lower() in _WORKBOOKS:
        return _render("file_in_use", path=path, name=Path(str(path)).name, folder=folder)
    key = _BY_ERRNO.get(code, "os_error")
    return _render(key, path=path, folder=folder, code=code if code is not None else "?")


_WORKBOOKS = {".xlsx", ".xlsm", ".xls", ".ods", ".csv"}
# Windows reports a file held open by Excel as EACCES (WinError 5 or 32); Linux reports an
# immutable or busy folder as EPERM or EBUSY.
_LOCKED = {errno.EACCES, errno.EPERM, errno.EBUSY, getattr(errno, "ETXTBSY", errno.EBUSY)}
_BY_ERRNO = {
    errno.EACCES: "no_permission", errno.EPERM: "no_permission",
    errno.EROFS: "read_only", errno.ENOSPC: "disk_full",
    getattr(errno, "EDQUOT", errno.ENOSPC): "disk_full",  # not on every system
    errno.ENOENT: "not_found", errno.ENOTDIR: "not_a_folder", errno.EEXIST: "exists",
    errno.EISDIR: "is_a_folder", errno.ENAMETOOLONG: "name_too_long",
    errno.ENOTEMPTY: "not_empty",
}


def _open_workbooks(folder: Path) -> str:
    """The workbooks Excel holds open in `folder` (Excel writes "~$name.xlsx" beside each), or
    the workbooks in it when none is marked."""
    try:
        owners = sorted(p.name[2:] for p in folder.rglob("~$*"))
        names = owners or sorted(p.name for p in folder.rglob("*.xlsx"))[:5]
    except OSError:
        names = []
    return ", ".join(f"“{n}”" for n in names) if names else _text("any_workbook")


def _say_error(message: str) -> None:
    try:
        safe_streams(sys.stderr)
        print(message, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # no console left to tell
        pass


# Texts (texts.yaml, section "console"), read without the rest of the pipeline


def _text(key: str) -> str:
    from pipeline import texts

    return texts.text("console", key)


def _render(key: str, **values: Any) -> str:
    from pipeline import texts

    return texts.render("console", key, **values)


# Click's own texts


_CLICK_MODULES = ("core", "exceptions", "parser", "types", "formatting", "decorators", "termui",
                  "utils")


def vietnamese_click() -> None:
    """Give Click's own texts (usage errors, "[default: …]", "Usage:", the help option) in
    Vietnamese: Click asks gettext for each (`_` and `ngettext` of its modules); these answer
    from texts.yaml, section "click", keyed by Click's English text. Call before the commands
    are built: a path's kind ("file", "directory") is translated when its type is made."""
    import importlib

    from pipeline import texts

    table = dict(texts.texts("click"))

    def gettext(message: str) -> str:
        found = table.get(message)
        return found if isinstance(found, str) else message

    def ngettext(singular: str, plural: str, n: int) -> str:
        return gettext(singular if n == 1 else plural)

    for name in _CLICK_MODULES:
        module = importlib.import_module(f"click.{name}")
        if hasattr(module, "_"):
            module._ = gettext
        if hasattr(module, "ngettext"):
            module.ngettext = ngettext


def guarded(run: Callable[[], Any]) -> Any:
    """Run `run`; a Ctrl-C or an OSError the user can cause ends in a Vietnamese message."""
    try:
        result = run()
    except KeyboardInterrupt:
        stopped()
    except RuntimeError as exc:
        # A Ctrl-C while a class is being made (as a module loads): Python 3.11 wraps it.
        if isinstance(exc.__cause__, KeyboardInterrupt):
            stopped()
        raise
    except OSError as exc:
        system_error(exc)
    except SystemExit:
        _done()
        raise
    _done()
    return result


def _done() -> None:
    """The command has finished and said so: a Ctrl-C while the interpreter shuts down (its
    own handler already gone) would otherwise kill a run that completed."""
    with contextlib.suppress(ValueError, OSError):  # not the main thread
        signal.signal(signal.SIGINT, signal.SIG_IGN)
