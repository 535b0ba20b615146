"""The scheduling examples (cron, systemd, Windows) call a command line tdkt accepts."""

from __future__ import annotations

import re
import shlex
import xml.etree.ElementTree as ET

import click
import pytest

from pipeline.cli import main

from .conftest import SAMPLES

EXAMPLES = SAMPLES / "lap-lich"


def _accepts(args: list[str]) -> click.Context:
    """Parse a tdkt command line exactly as the console script would (nothing runs)."""
    parent = click.Context(main, info_name="tdkt")
    command = main.get_command(parent, args[0])
    assert command is not None, f"tdkt has no command {args[0]!r}"
    return command.make_context(args[0], list(args[1:]), parent=parent)


def _cron_args() -> list[str]:
    line = next(x for x in (EXAMPLES / "crontab.txt").read_text(encoding="utf-8").splitlines()
                if x.strip() and not x.startswith("#"))
    fields = line.split(None, 5)
    assert len(fields) == 6 and fields[:5] == ["30", "6", "1", "*", "*"]
    command = shlex.split(fields[5].split("&&", 1)[1].split(">>")[0])
    assert command[0].endswith("tdkt")
    return command[1:]


def _systemd_args() -> list[str]:
    text = (EXAMPLES / "tdkt-run.service").read_text(encoding="utf-8")
    command = shlex.split(re.search(r"^ExecStart=(.+)$", text, re.M).group(1))
    assert command[0].endswith("/tdkt")
    timer = (EXAMPLES / "tdkt-run.timer").read_text(encoding="utf-8")
    assert "OnCalendar=*-*-01 06:30:00" in timer and "Persistent=true" in timer
    return command[1:]


def _windows_args() -> list[str]:
    namespace = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    root = ET.fromstring((EXAMPLES / "tdkt-run-windows.xml").read_bytes())
    assert root.find(".//t:Command", namespace).text.endswith("tdkt.exe")
    assert root.find(".//t:MultipleInstancesPolicy", namespace).text == "IgnoreNew"
    return root.find(".//t:Arguments", namespace).text.split()


@pytest.mark.parametrize("args", [_cron_args, _systemd_args, _windows_args])
def test_schedule_example_calls_an_existing_command_line(args):
    ctx = _accepts(args())
    assert ctx.command.name == "run"
    # Windows paths are not split on this machine: compare the text's end.
    assert str(ctx.params["config_path"]).endswith("tdkt.toml")
    assert str(ctx.params["out"]).endswith("output")
