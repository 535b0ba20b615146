"""What the office reads on its console, through the real `tdkt` process: no traceback in any
case a user can cause, Click's texts in Vietnamese, Ctrl-C, read-only and locked outputs, a
console that is not UTF-8, `tdkt check` on every kind of form, summaries that add up, and the
messages of a year typed as a date and of a word typed as an office score.

Every case runs `tdkt` as a separate process (as the office runs it); independent processes
run side by side to keep the file quick.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openpyxl
import pytest

from .conftest import OFFICE_FILES, SAMPLES

TDKT = Path(sys.executable).parent / ("tdkt.exe" if os.name == "nt" else "tdkt")
YEAR = "2025-2026"  # input_samples/tdkt.toml
COMMANDS = ("approve", "check", "codes", "confirm", "consolidate", "history", "import-history",
            "rules", "run", "templates", "unconfirm")
# Click's English, as it would show without the Vietnamese texts.
CLICK_ENGLISH = re.compile(
    r"Usage:|Options:|Commands:|Arguments:|Show this message|Show the version|\[default|"
    r"\[required\]|Error:|No such (command|option)|Invalid value|Missing (argument|option|"
    r"parameter)|Try '|for help|Aborted|does not exist|is not one of|is not a valid|"
    r"Did you mean|Got unexpected|requires an argument|\b(DIRECTORY|FILE|PATH|TEXT|INTEGER|"
    r"FLOAT)\b")
COVERED = {"bad-office-score"}

pytestmark = pytest.mark.skipif(not TDKT.exists(), reason="tdkt is not installed in this venv")


# Running tdkt


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "PYTHONUTF8")}
    return env | {"PYTHONIOENCODING": "utf-8"} | extra


def _tdkt(*args: str | Path, cwd: Path, encoding: str = "utf-8",
          **env: str) -> subprocess.CompletedProcess:
    """One `tdkt` run; stdout and stderr decoded as the console's encoding would show them."""
    done = subprocess.run([str(TDKT), *map(str, args)], cwd=cwd, capture_output=True,
                          env=_env(PYTHONIOENCODING=encoding, **env), timeout=120)
    return subprocess.CompletedProcess(
        done.args, done.returncode,
        unicodedata.normalize("NFC", done.stdout.decode(encoding)),
        unicodedata.normalize("NFC", done.stderr.decode(encoding)))


def _all(runs: dict[str, tuple]) -> dict[str, subprocess.CompletedProcess]:
    """Independent runs side by side: {name: (args, cwd)} → {name: result}."""
    with ThreadPoolExecutor(max_workers=(os.cpu_count() or 2) + 1) as pool:
        futures = {name: pool.submit(_tdkt, *args, cwd=cwd) for name, (args, cwd) in
                   runs.items()}
        return {name: f.result() for name, f in futures.items()}


def _no_traceback(result: subprocess.CompletedProcess) -> None:
    for text in (result.stdout, result.stderr):
        assert "Traceback" not in text and "Error:" not in text, text


# The office: its configuration and a small inbox


@pytest.fixture(scope="module")
def office(tmp_path_factory) -> Path:
    """The sample office with five inbox files: two clean ones, one with a year typed as a
    birth date (C7 = 1985), a second copy of one of them (superseded by the other) and a
    letter that is not a workbook; and three results files with the registrations."""
    root = tmp_path_factory.mktemp("messages") / "office"
    inbox = root / "hop-thu"
    inbox.mkdir(parents=True)
    for name in OFFICE_FILES:
        shutil.copy(SAMPLES / name, root / name)
    for name in ("dang-ky_01001.xlsx", "dang-ky_01002.xlsx", "Công văn gửi Phòng.docx"):
        shutil.copy(SAMPLES / "hop-thu" / name, inbox / name)
    shutil.copy(SAMPLES / "hop-thu" / "dang-ky_01001.xlsx", inbox / "ban-gui-lai_01001.xlsx")
    book = openpyxl.load_workbook(SAMPLES / "hop-thu" / "dang-ky_01003.xlsx")
    sheet = book["Cá nhân"]
    assert sheet["C6"].value == "Ngày sinh"
    sheet["C7"] = 1985
    sheet["C7"].number_format = "General"
    book.save(inbox / "dang-ky_01003.xlsx")
    results = root / "hop-thu-ket-qua"
    results.mkdir()
    for code in ("01001", "01002", "01003"):
        shutil.copy(SAMPLES / "hop-thu-ket-qua" / f"ket-qua_{code}.xlsx", results)
    return root


@pytest.fixture(scope="module")
def consolidated(office) -> subprocess.CompletedProcess:
    """`tdkt consolidate` of the small inbox on a cp1258 console (as many Windows set-ups)."""
    return _tdkt("consolidate", "hop-thu", "--out", "out", "--config", "tdkt.toml",
                 cwd=office, encoding="cp1258")


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


# Read-only and locked folders (root ignores permissions: an immutable folder refuses root too)


@contextlib.contextmanager
def _unwritable(folder: Path) -> Iterator[None]:
    """`folder` made unwritable: immutable for root (chattr +i), mode 0o500 otherwise."""
    if os.name == "nt":
        pytest.skip("folder permissions are set differently on Windows")
    if os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(0o700)
        return
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a file system without immutable folders")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


@contextlib.contextmanager
def _immutable(folder: Path) -> Iterator[None]:
    """A folder that cannot be renamed or replaced (as when Excel holds a file in it open)."""
    if os.name == "nt" or shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("needs root and a file system with immutable folders (chattr +i)")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


# Help and wrong invocations


def test_messages_help_and_usage_errors_are_vietnamese(office):
    runs = {name: ((name, "--help"), office) for name in COMMANDS}
    runs |= {
        "main": (("--help",), office),
        "unknown-command": (("consolidat", "hop-thu"), office),
        "bad-round": (("consolidate", "hop-thu", "--round", "cuoi-nam"), office),
        "missing-argument": (("check",), office),
        "unknown-option": (("templates", "--outt", "x"), office),
        "not-a-number": (("unconfirm", "mot", "2"), office),
    }
    results = _all(runs)
    for name, result in results.items():
        _no_traceback(result)
        assert not CLICK_ENGLISH.search(result.stdout + result.stderr), (name, result)
    for name in ("main", *COMMANDS):
        help_text = results[name].stdout
        assert results[name].returncode == 0, name
        assert help_text.startswith("Cách dùng: tdkt"), name
        assert "Tuỳ chọn:" in help_text and "Hiện hướng dẫn này rồi thoát." in help_text
    assert "[mặc định: tdkt.toml]" in results["consolidate"].stdout
    assert "--out THƯ_MỤC" in results["consolidate"].stdout
    assert "--store TỆP" in results["run"].stdout
    check_help = " ".join(results["check"].stdout.split())
    assert "Mã thoát: 0 — không có lỗi" in check_help and "1 — có tệp có lỗi" in check_help
    for name in ("unknown-command", "bad-round", "missing-argument", "unknown-option",
                 "not-a-number"):
        assert results[name].returncode == 2, name
        assert results[name].stderr.startswith("Lỗi: "), name
        assert "Xem hướng dẫn: tdkt" in results[name].stderr
    assert "không có lệnh “consolidat”" in results["unknown-command"].stderr
    assert "consolidate" in results["unknown-command"].stderr  # the commands there are
    assert "“cuoi-nam”" in results["bad-round"].stderr
    assert "dang-ky, ket-qua" in results["bad-round"].stderr
    assert "thiếu TỆP" in results["missing-argument"].stderr
    assert "--outt" in results["unknown-option"].stderr
    assert "“mot”" in results["not-a-number"].stderr


# A console that is not UTF-8; the summary; a year typed as a date


def test_messages_cp1258_console_consolidate_writes_and_reports(office, consolidated):
    _no_traceback(consolidated)
    assert consolidated.returncode == 0, consolidated.stderr
    assert "UnicodeEncodeError" not in consolidated.stderr
    target = office / "out" / YEAR / "dang-ky"
    assert (target / "tong-hop-phong.xlsx").is_file()
    assert _manifest(target)["counts"]["files"] == 5
    # cp1258 writes Vietnamese letters (some with a combining mark): read back, it is the text
    assert "Số tệp đã đọc: 5" in consolidated.stdout
    assert f"Kết quả: {Path('out') / YEAR / 'dang-ky'}" in consolidated.stdout


def test_messages_summary_parts_add_up(consolidated):
    line = next(ln for ln in consolidated.stdout.splitlines() if ln.startswith("Số tệp đã đọc"))
    files, counted, clean, partial, rejected, superseded = map(int, re.findall(r"\d+", line))
    # 5 files: 01001 and 01002 clean; 01003 counted without its row 7; one of the two copies
    # of 01001 superseded; the letter (.docx) rejected.
    assert (files, counted, clean, partial, rejected, superseded) == (5, 3, 2, 1, 1, 1)
    assert files == counted + rejected + superseded and counted == clean + partial


def test_messages_year_only_date_quotes_what_was_typed(office, consolidated):
    findings = _manifest(office / "out" / YEAR / "dang-ky")["findings"]
    at_c7 = [f for f in findings if f["file"] == "dang-ky_01003.xlsx" and f["cell"] == "C7"]
    assert [(f["code"], f["value"]) for f in at_c7] == [("bad-date", "1985")]
    assert "“1985”" in at_c7[0]["message"] and "dd/mm/yyyy" in at_c7[0]["message"]
    assert not any("1905" in f["message"] for f in findings)


# tdkt check on every kind of form


_BAD_CELL = {  # form → (file, sheet, header whose first data cell gets a wrong value, value)
    "dang-ky": (SAMPLES / "hop-thu" / "dang-ky_01001.xlsx", "Cá nhân", "Ngày sinh", "không rõ"),
    "ket-qua": (SAMPLES / "hop-thu-ket-qua" / "ket-qua_01001.xlsx", "Tự chấm điểm",
                "Điểm tự chấm", "cao"),
    "danh-muc": (SAMPLES / "danh-muc-don-vi.xlsx", "Danh mục đơn vị", "Số GV", "nhiều"),
    "phan-bo": (SAMPLES / "phan-bo-khen-thuong.xlsx", "Phân bổ", "Số lượng phân bổ", "vài"),
    "lich-su": (None, "Danh sách khen thưởng", "Ngày sinh", "không rõ"),
}
_TITLES = {"dang-ky": "Bản đăng ký", "ket-qua": "Kết quả bình xét", "danh-muc": "Danh mục",
           "phan-bo": "Phân bổ", "lich-su": "Danh sách danh hiệu"}


def _spoiled(path: Path, sheet_name: str, header: str, value: str, out: Path) -> Path:
    """A copy of `path` with `value` in the cell under the cell of `sheet_name` reading
    `header`."""
    book = openpyxl.load_workbook(path)
    for row in book[sheet_name].iter_rows():
        for cell in row:
            if isinstance(cell.value, str) and cell.value.strip() == header:
                book[sheet_name].cell(cell.row + 1, cell.column, value)
                book.save(out)
                return out
    raise AssertionError(f"no header {header!r} in {path} ({sheet_name})")


def _reports(stdout: str) -> list[tuple[str, int]]:
    """(first line, number of errors) of each file `tdkt check` reported, in order."""
    blocks = re.split(r"\n(?=Tệp: )", stdout.strip())
    return [(b.splitlines()[0], int(re.search(r"^Lỗi: (\d+);", b, re.M).group(1)))
            for b in blocks]


@pytest.mark.slow  # `make test-slow`, in CI
def test_messages_check_recognises_every_form_and_exits_1_on_errors(office, tmp_path):
    made = _tdkt("templates", "--form", "lich-su", "--out", tmp_path / "mau", "--config",
                 "tdkt.toml", cwd=office)
    assert made.returncode == 0, made.stderr
    good = {form: path or tmp_path / "mau" / YEAR / "mau-lich-su" / "lich-su_phong.xlsx"
            for form, (path, *_) in _BAD_CELL.items()}
    bad = {form: _spoiled(good[form], sheet, header, value, tmp_path / f"sai_{good[form].name}")
           for form, (_, sheet, header, value) in _BAD_CELL.items()}
    results = _all({
        "good": (("check", *good.values(), "--config", "tdkt.toml"), office),
        "bad": (("check", *bad.values(), "--config", "tdkt.toml"), office),
    })
    for result in results.values():
        _no_traceback(result)
    assert results["good"].returncode == 0, results["good"].stdout
    assert results["bad"].returncode == 1, results["bad"].stdout
    goods, bads = _reports(results["good"].stdout), _reports(results["bad"].stdout)
    assert len(goods) == len(bads) == len(_BAD_CELL)
    for form, (line, errors) in zip(_BAD_CELL, goods, strict=True):
        assert _TITLES[form] in line and errors == 0, (form, results["good"].stdout)
    for form, (line, errors) in zip(_BAD_CELL, bads, strict=True):
        assert _TITLES[form] in line and errors > 0, (form, results["bad"].stdout)
        assert f"“{_BAD_CELL[form][3]}”" in results["bad"].stdout, form
    assert "đơn vị: 01001" in goods[0][0]


# Folders that cannot be written


def test_messages_read_only_output_folder_names_it(office, tmp_path):
    folder = tmp_path / "chi-doc"
    folder.mkdir()
    with _unwritable(folder):
        results = _all({
            "templates": (("templates", "--out", folder, "--config", "tdkt.toml"), office),
            "run": (("run", "--period", "2025-10", "--dry-run", "--out", folder, "--config",
                     "tdkt.toml"), office),
        })
    for name, result in results.items():
        _no_traceback(result)
        assert result.returncode == 2, (name, result.stderr)
        assert f"Kiểm tra quyền ghi thư mục “{folder}”" in result.stderr, (name, result.stderr)
    assert list(folder.iterdir()) == []


def test_messages_locked_output_names_the_workbook_to_close(office, consolidated, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(office / "out", out)
    target = out / YEAR / "dang-ky"
    before = (target / "manifest.json").read_bytes()
    (target / "~$tong-hop-phong.xlsx").write_bytes(b"")  # Excel's mark of an open workbook
    with _immutable(target):
        result = _tdkt("consolidate", "hop-thu", "--out", out, "--config", "tdkt.toml",
                       cwd=office)
    _no_traceback(result)
    assert result.returncode == 2, result.stderr
    assert f"“{target}”" in result.stderr
    assert "Hãy đóng tệp “tong-hop-phong.xlsx” đang mở trong Excel rồi chạy lại" in result.stderr
    assert (target / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["dang-ky", "sao-luu"] or \
        sorted(p.name for p in target.parent.iterdir()) == ["dang-ky"]


# Ctrl-C


def _as_from_a_terminal() -> None:
    """A program started from a terminal gets Ctrl-C's default disposition; an earlier test of
    this pytest process may have left it ignored (an ignored SIGINT is inherited through exec,
    and Python then installs no handler for it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupted(args: list[str], cwd: Path, *, after: float = 0.0,
                 started: Path | None = None) -> subprocess.CompletedProcess:
    """`tdkt ARGS` sent Ctrl-C (SIGINT to its process group, as a terminal does) `after`
    seconds, or once `started` exists."""
    process = subprocess.Popen([str(TDKT), *args], cwd=cwd, env=_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True, preexec_fn=_as_from_a_terminal)
    deadline = time.monotonic() + 60
    while started is not None and not started.exists() and time.monotonic() < deadline \
            and process.poll() is None:
        time.sleep(0.02)
    time.sleep(after)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(args, process.returncode, stdout.decode(),
                                       stderr.decode())


@pytest.mark.skipif(os.name == "nt", reason="SIGINT to a process group is POSIX")
def test_messages_ctrl_c_stops_with_130_and_keeps_outputs(office, consolidated, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(office / "out", out)
    (out / ".tdkt.lock").unlink(missing_ok=True)
    target = out / YEAR / "dang-ky"
    before = (target / "manifest.json").read_bytes()
    args = ["consolidate", "hop-thu", "--out", str(out), "--config", "tdkt.toml"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        early = pool.submit(_interrupted, [*args[:3], str(tmp_path / "moi"), *args[4:]],
                            office, after=0.3)
        running = pool.submit(_interrupted, args, office, after=0.2,
                              started=out / ".tdkt.lock")
        results = {"early": early.result(), "running": running.result()}
    for name, result in results.items():
        assert result.returncode == 130, (name, result.stdout, result.stderr)
        assert "Đã dừng" in result.stderr, name
        assert "Traceback" not in result.stderr and "KeyboardInterrupt" not in result.stderr
    assert (target / "manifest.json").read_bytes() == before
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]


# Month-end run on a console that is not UTF-8


def test_messages_cp1258_console_month_end_dry_run(office, tmp_path):
    result = _tdkt("run", "--period", "2025-10", "--dry-run", "--out", tmp_path / "out",
                   "--config", "tdkt.toml", cwd=office, encoding="cp1258")
    _no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert "UnicodeEncodeError" not in result.stderr
    assert (tmp_path / "out" / YEAR / "dang-ky" / "manifest.json").is_file()
    assert list((tmp_path / "out" / "thu-gui").rglob("*.eml"))


# An office score that is not a number


def test_messages_office_score_not_a_number_is_a_finding(office, tmp_path):
    """The Phòng typed a word into "Điểm thẩm định" of its ranking sheet: the next run reports
    the cell and the value instead of skipping it silently."""
    previous = tmp_path / "out" / YEAR / "ket-qua"
    previous.mkdir(parents=True)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Xếp hạng khối"
    sheet.append(["STT", "Mã đơn vị", "Tên đơn vị", "Điểm thẩm định"])
    sheet.append([1, "01001", "Trường A", "tám mươi"])
    sheet.append([2, "01002", "Trường B", 85])
    book.save(previous / "tong-hop-phong.xlsx")
    result = _tdkt("consolidate", "hop-thu-ket-qua", "--round", "ket-qua", "--out",
                   tmp_path / "out", "--config", "tdkt.toml", cwd=office)
    _no_traceback(result)
    assert result.returncode == 0, result.stderr
    findings = _manifest(previous)["findings"]
    scores = [f for f in findings if f["code"] == "bad-office-score"]
    assert [(f["file"], f["sheet"], f["cell"], f["value"]) for f in scores] == [
        ("tong-hop-phong.xlsx", "Xếp hạng khối", "D2", "tám mươi")]
    assert "Điểm thẩm định" in scores[0]["message"] and "số" in scores[0]["message"]


# The texts behind the messages


def test_messages_click_texts_are_click_s_own_and_console_texts_are_used():
    """Each translated Click text is one Click asks for (an upgrade that rewords one would
    bring back English); each console text is asked for by pipeline/console.py."""
    import ast

    import click

    from pipeline import console, texts

    asked = set()
    for source in Path(click.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("_", "ngettext"):
                asked |= {a.value for a in node.args if isinstance(a, ast.Constant)}
    asked.add("required")  # Click passes this one through a variable
    assert set(texts.texts("click")) <= asked, set(texts.texts("click")) - asked
    source = Path(console.__file__).read_text(encoding="utf-8")
    unused = {key for key in texts.texts("console") if f'"{key}"' not in source}
    assert not unused, unused


def test_messages_ctrl_c_during_an_import_still_says_stopped(monkeypatch, capsys):
    """A Ctrl-C that lands while PyYAML is being imported leaves it half-loaded, and the texts
    cannot be read: the run still ends with the Vietnamese message and 130, no traceback."""
    from pipeline import console, texts

    def half_loaded(*args, **kwargs):
        raise AttributeError("partially initialized module 'yaml' has no attribute 'error'")

    monkeypatch.setattr(texts, "text", half_loaded)

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as stop:
        console.guarded(interrupted)
    assert stop.value.code == 130
    said = capsys.readouterr().err
    assert "Đã dừng. Kết quả của các lần chạy trước được giữ nguyên." in said
    assert "Traceback" not in said
    # The fallback says what the catalogue says.
    monkeypatch.undo()
    assert texts.text("console", "stopped") == console.STOPPED_FALLBACK


def test_messages_ctrl_c_while_a_class_is_made_still_says_stopped(capsys):
    """Python 3.11 wraps a Ctrl-C landing in a class's __set_name__ (a module loading) in a
    RuntimeError: it still ends with the message and 130; another RuntimeError is raised."""
    from pipeline import console

    def interrupted():
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("Error calling __set_name__ on 'cached_property'") from exc

    with pytest.raises(SystemExit) as stop:
        console.guarded(interrupted)
    assert stop.value.code == 130
    assert "Đã dừng." in capsys.readouterr().err

    def broken():
        raise RuntimeError("something else")

    with pytest.raises(RuntimeError, match="something else"):
        console.guarded(broken)
