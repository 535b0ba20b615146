"""What runs on the office's Windows machine, checked where the tests run: the double-click
launchers (tong-hop.cmd, cuoi-thang.cmd) read as cmd.exe reads them, the schedule example, the
Makefile's venv layout, and the password file's owner-only check on Windows (its access list,
as icacls writes it)."""

from __future__ import annotations

import importlib
import os
import re
import shlex
import shutil
import subprocess
import tomllib
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path

import click
import pytest

from pipeline.cli import main as cli
from pipeline.config import load_config
from pipeline.monthly.deliver import (
    DeliveryError,
    FileAcl,
    check_password_file,
    other_readers,
    windows_acl,
)

ROOT = Path(__file__).resolve().parent.parent
LAUNCHERS = ("tong-hop.cmd", "cuoi-thang.cmd")
# Variables cmd.exe sets itself.
BUILT_IN = {"ERRORLEVEL", "CD"}


def _lines(name: str) -> list[str]:
    return (ROOT / name).read_bytes().decode("utf-8").split("\r\n")


def _variables(name: str) -> dict[str, str]:
    """The values the launcher gives its variables (set "NAME=value")."""
    return dict(re.findall(r'^set "([A-Z_]+)=([^"]*)"$', "\n".join(_lines(name)), re.M))


def _expanded(line: str, values: dict[str, str]) -> str:
    return re.sub(r"%([A-Z_]+)%", lambda m: values[m.group(1)], line)


def _tdkt_calls(name: str) -> list[list[str]]:
    """The arguments of every tdkt the launcher runs, its variables expanded."""
    values = _variables(name)
    calls = []
    for line in _lines(name):
        if line.startswith('"%TDKT%" '):
            command = re.split(r"\s(?:\|\||>>|%\*)", line)[0]
            calls.append(shlex.split(_expanded(command, values))[1:])
    return calls


# The launchers


@pytest.mark.parametrize("name", LAUNCHERS)
def test_windows_launcher_is_crlf_utf8_without_bom(name):
    data = (ROOT / name).read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")  # cmd.exe would run "\ufeff@echo" as a command
    assert data.endswith(b"\r\n")
    assert data.count(b"\n") == data.count(b"\r\n")  # labels and goto need CRLF everywhere
    assert b"\r" not in data.replace(b"\r\n", b"")
    text = data.decode("utf-8")
    assert unicodedata.is_normalized("NFC", text)
    # The code page is UTF-8 before the first line that is not ASCII is read.
    lines = _lines(name)
    first_vietnamese = next(i for i, line in enumerate(lines) if not line.isascii())
    assert lines.index("chcp 65001 >nul") < first_vietnamese
    assert lines[0] == "@echo off"
    # The git settings keep the CRLF line ends in every checkout and archive.
    assert "*.cmd -text" in (ROOT / ".gitattributes").read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("name", LAUNCHERS)
def test_windows_launcher_jumps_and_variables_resolve(name):
    lines = _lines(name)
    labels = {line[1:] for line in lines if line.startswith(":")}
    targets = set(re.findall(r"\bgoto ([a-z_]+)", "\n".join(lines)))
    assert targets and targets <= labels, targets - labels
    assert labels <= targets, labels - targets  # no label left unused
    defined = set(_variables(name)) | BUILT_IN
    used = set(re.findall(r"%([A-Z_]+)%", "\n".join(lines)))
    assert used <= defined, used - defined
    for line in lines:
        assert not line.rstrip().endswith("("), line  # no blocks: "(" ")" in texts stay plain
        if line.startswith("echo "):
            text = re.sub(r'>>"%LOG%"$', "", line[5:])
            text = re.sub(r"%[A-Z_]+%", "", text)
            assert not set(text) & set("&|<>^!%"), line  # would be read as cmd syntax


def test_windows_launchers_use_the_venv_layout_pip_makes_on_windows():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"]["scripts"]
    module, function = scripts["tdkt"].split(":")
    assert callable(getattr(importlib.import_module(module), function))
    # pip writes Scripts\tdkt.exe for the [project.scripts] entry, python.exe for the venv.
    consolidate = _variables("tong-hop.cmd")
    month_end = _variables("cuoi-thang.cmd")
    assert consolidate["TDKT"] == month_end["TDKT"] == r".venv\Scripts\tdkt.exe"
    assert consolidate["VENV_PYTHON"] == r".venv\Scripts\python.exe"
    assert consolidate["STAMP"].startswith(".venv\\")
    text = "\n".join(_lines("tong-hop.cmd"))
    assert '-m venv .venv' in text and '"%VENV_PYTHON%" -m pip install' in text
    assert (ROOT / "pyproject.toml").is_file()  # compared with the stamp; installed from "."
    # Both write into one output folder; the month-end log is inside it.
    assert consolidate["OUT"] == month_end["OUT"]
    assert month_end["LOG"].startswith(month_end["OUT"] + "\\")


def test_windows_launchers_run_commands_the_cli_accepts():
    calls = _tdkt_calls("tong-hop.cmd") + _tdkt_calls("cuoi-thang.cmd")
    assert [c[0] for c in calls] == ["consolidate", "consolidate", "consolidate", "run"]
    assert {c[c.index("--round") + 1] for c in calls if "--round" in c} == {"ket-qua"}
    for args in calls:
        with click.Context(cli, info_name="tdkt") as parent:
            name, command, rest = cli.resolve_command(parent, args)
            command.make_context(name, rest, parent=parent)  # an unknown option would raise


def test_windows_launcher_folders_are_those_of_the_sample_configuration(tmp_path):
    """An office starts from input_samples/tdkt.toml (the launcher says so): its inboxes must be
    the folders tong-hop.cmd consolidates, so the month-end run (tdkt run, which takes them from
    the configuration) reads the same folders."""
    values = _variables("tong-hop.cmd")
    assert "input_samples\\tdkt.toml" in "\n".join(_lines("tong-hop.cmd"))
    raw = tomllib.loads((ROOT / "input_samples" / "tdkt.toml").read_text(encoding="utf-8"))
    assert raw["inboxes"] == {"dang-ky": values["INBOX"], "ket-qua": values["RESULTS_INBOX"]}
    assert values["CONFIG"] == _variables("cuoi-thang.cmd")["CONFIG"] == "tdkt.toml"
    config = load_config(ROOT / "input_samples" / "tdkt.toml")
    assert config.inboxes["dang-ky"] == ROOT / "input_samples" / values["INBOX"]


def test_windows_schedule_example_runs_what_the_install_creates():
    task = ET.parse(ROOT / "input_samples" / "lap-lich" / "tdkt-run-windows.xml").getroot()
    ns = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    command = task.find(".//t:Exec/t:Command", ns).text
    folder = task.find(".//t:Exec/t:WorkingDirectory", ns).text
    assert command == folder + "\\" + _variables("tong-hop.cmd")["TDKT"]
    args = task.find(".//t:Exec/t:Arguments", ns).text.split()
    assert args[args.index("--out") + 1] == folder + "\\" + _variables("tong-hop.cmd")["OUT"]
    assert args[args.index("--config") + 1] == folder + "\\tdkt.toml"
    with click.Context(cli, info_name="tdkt") as parent:
        name, sub, rest = cli.resolve_command(parent, args)
        sub.make_context(name, rest, parent=parent)


def test_windows_readme_examples_use_paths_of_their_system():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    windows = readme[readme.index("### Trên Windows"):readme.index("### Trên Linux")]
    linux = readme[readme.index("### Trên Linux"):readme.index("### Mỗi mùa làm gì")]
    assert "tong-hop.cmd" in windows and "cuoi-thang.cmd" in windows
    assert "schtasks /Create" in windows and "setx TDKT_SMTP_PASSWORD" in windows
    assert "icacls" in windows
    assert ".venv/bin" not in windows and "chmod" not in windows
    assert "\\Scripts\\" not in linux and not re.search(r"\b[A-Z]:[/\\]", linux)
    # Every C:\TDKT path is in tdkt's folder, or one the steps make: the office's files
    # (copied from input_samples), its inboxes, the venv tong-hop.cmd installs, the outputs.
    values = _variables("tong-hop.cmd")
    made = {values[k] for k in ("CONFIG", "INBOX", "RESULTS_INBOX", "OUT")} | {
        ".venv", "mat-khau.txt"} | {p.name for p in (ROOT / "input_samples").iterdir()}
    paths = re.findall(r"C:\\TDKT\\([\w.\\-]+)", windows)
    assert len(paths) > 10
    for relative in paths:
        first = relative.split("\\")[0]
        assert first in made or (ROOT / first).exists(), relative
        if first == ".venv" and relative != ".venv":
            assert relative.startswith(".venv\\Scripts\\"), relative
    assert "C:\\TDKT\\cuoi-thang.cmd" in windows and (ROOT / "cuoi-thang.cmd").is_file()


# The Makefile


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("system, bin_dir", [(None, "bin"), ("Windows_NT", "Scripts")])
def test_windows_makefile_runs_the_venv_programs_of_the_system(system, bin_dir):
    args = ["make", "-n", "-W", "pyproject.toml", "consolidate"]
    env = {k: v for k, v in os.environ.items() if k not in ("OS", "MAKEFLAGS", "MAKELEVEL")}
    if system:
        args.append(f"OS={system}")
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env, check=True,
                         timeout=60).stdout
    lines = out.splitlines()
    # The office's two rounds, then the Sở's two.
    assert sum(line.startswith(f".venv/{bin_dir}/tdkt consolidate") for line in lines) == 4
    assert any(line.startswith(f".venv/{bin_dir}/python -m pip install") for line in lines)
    assert not any(f".venv/{'bin' if bin_dir == 'Scripts' else 'Scripts'}/" in line
                   for line in lines)
    assert "-m venv .venv" in out  # PYTHON found: python3, python or py


# The password file on Windows


USER = "S-1-5-21-1004336348-1177238915-682003330-1001"
PROFILE = f"D:PAI(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;{USER})"  # a file in the user's own folder


def _saved(dacl: str, name: str = "mat-khau.txt") -> str:
    """A file's access list as `icacls FILE /save` writes it: its name, then its DACL."""
    return f"{name}\r\n{dacl}\r\n"


@pytest.mark.parametrize("dacl, readers", [
    (PROFILE, []),
    # A folder made at the root of a drive: every user of the machine may read.
    (f"D:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;FA;;;{USER})(A;ID;0x1200a9;;;BU)"
     "(A;ID;0x1301bf;;;AU)", [("Users", "*S-1-5-32-545", True),
                               ("Authenticated Users", "*S-1-5-11", True)]),
    # Shared by hand with everyone (not inherited: /inheritance:r leaves it).
    (f"D:P(A;;FR;;;WD)(A;;FA;;;{USER})", [("Everyone", "*S-1-1-0", False)]),
    # Another person's account, by its SID; the same SID in lower case is still the user.
    (f"D:P(A;;FA;;;{USER.lower()})(A;;0x120089;;;S-1-5-21-1-2-3-1002)",
     [("S-1-5-21-1-2-3-1002", "*S-1-5-21-1-2-3-1002", False)]),
    # A domain group in generic rights.
    (f"D:AI(A;;FA;;;{USER})(A;ID;GR;;;DU)", [("Domain Users", '"Domain Users"', True)]),
    # Write only, a denial, an entry only new files get, the owner: nobody else reads.
    (f"D:P(A;;FA;;;{USER})(A;;FW;;;BU)(D;;FA;;;WD)(A;OICIIO;GA;;;CO)(A;;FA;;;OW)", []),
    # Access list missing altogether: everyone.
    ("D:NO_ACCESS_CONTROL", [("Everyone", "*S-1-1-0", False)]),
])
def test_windows_other_readers_of_a_saved_access_list(dacl, readers):
    found = other_readers(_saved(dacl), USER)
    assert [(r.name, r.account, r.inherited) for r in found] == readers


def test_windows_other_readers_unknown_when_no_access_list_is_saved():
    assert other_readers("", USER) is None
    assert other_readers("mat-khau.txt\r\nO:BAG:SY\r\n", USER) is None
    assert other_readers(_saved("D:(A;;FA)"), USER) is None  # a cut entry


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "mat-khau.txt"
    path.write_text("bí-mật\n", encoding="utf-8")
    os.chmod(path, 0o644)  # mode bits mean nothing on Windows
    return path


def test_windows_password_file_private_by_its_access_list_passes(secret):
    check_password_file(secret, platform="win32", read_acl=lambda p: FileAcl(_saved(PROFILE),
                                                                               USER))
    with pytest.raises(DeliveryError, match="chmod 600"):  # the same file elsewhere
        check_password_file(secret, platform="linux")


def test_windows_password_file_readable_by_others_names_them_and_the_fix(secret):
    dacl = f"D:AI(A;;FR;;;WD)(A;ID;FA;;;{USER})(A;ID;0x1200a9;;;BU)"
    with pytest.raises(DeliveryError) as refused:
        check_password_file(secret, platform="win32",
                            read_acl=lambda p: FileAcl(_saved(dacl), USER))
    message = str(refused.value)
    assert "(Everyone, Users)" in message
    assert f'icacls "{secret}" /inheritance:r /grant:r "%USERNAME%:F"' in message
    assert f'icacls "{secret}" /remove:g *S-1-1-0 (' in message  # only the explicit grant
    assert "chmod" not in message


def test_windows_password_file_that_cannot_be_checked_says_what_to_do(secret):
    with pytest.raises(DeliveryError, match=r"Không kiểm tra được .* setx TDKT_SMTP_PASSWORD"):
        check_password_file(secret, platform="win32", read_acl=lambda p: None)
    # Here there is no icacls: the real reader answers None instead of failing.
    assert shutil.which("icacls") is None
    assert windows_acl(secret) is None
    with pytest.raises(DeliveryError, match="Không kiểm tra được"):
        check_password_file(secret, platform="win32")


@pytest.fixture
def windows_commands(tmp_path, monkeypatch):
    """Stand-ins for icacls and whoami on PATH that answer as Windows does (icacls /save writes
    UTF-16 with its byte order mark); returns a function setting the DACL icacls reports."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    dacl_file = tmp_path / "dacl.txt"
    (bin_dir / "icacls").write_text(
        "#!/bin/sh\n"
        '[ "$2" = /save ] && [ "$4" = /q ] || exit 87\n'
        f'python3 -c \'import sys; open(sys.argv[1], "wb").write(("\\ufeff" + '
        f'sys.argv[2] + "\\r\\n" + open(sys.argv[3]).read() + "\\r\\n").encode("utf-16-le"))\' '
        f'"$3" "$(basename "$1")" "{dacl_file}"\n')
    (bin_dir / "whoami").write_text(
        "#!/bin/sh\n"
        '[ "$*" = "/user /fo csv /nh" ] || exit 1\n'
        f'echo \'"may-phong\\\\chuyen-vien","{USER}"\'\n')
    for command in ("icacls", "whoami"):
        (bin_dir / command).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return lambda dacl: dacl_file.write_text(dacl, encoding="utf-8")


def test_windows_acl_read_through_icacls_and_whoami(secret, windows_commands):
    windows_commands(PROFILE)
    assert windows_acl(secret) == FileAcl(f"mat-khau.txt\r\n{PROFILE}\r\n", USER)
    check_password_file(secret, platform="win32")
    windows_commands(PROFILE + "(A;ID;0x1200a9;;;BU)")
    with pytest.raises(DeliveryError, match=r"đọc được \(Users\)"):
        check_password_file(secret, platform="win32")
