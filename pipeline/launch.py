"""The `tdkt` program.

`tdkt history` is answered without loading the consolidation and its dataframe, validation and
workbook libraries: an office looks a person up while someone waits on the phone, and those
libraries take several times longer to load than the answer takes to find. Everything else —
every other command, `--help`, an option it does not know, a configuration or store that cannot
be read — goes to the full command line (pipeline.cli), which then says what it always says.
"""

from __future__ import annotations

import sys
from pathlib import Path

QUICK_OPTIONS = ("--config", "--store", "--out")
DEFAULT_CONFIG = Path("tdkt.toml")  # as pipeline.cli
DEFAULT_OUT = Path("output")


def main() -> None:
    """Run `tdkt` with the arguments of the command line.

    Nothing a user can cause ends in a traceback: Ctrl-C at any moment (even while the
    libraries load) prints "Đã dừng." and exits 130; a file or folder the system will not let
    us write (read-only, held open by Excel, disk full) is named with what to do, exit 2.
    """
    try:
        from pipeline import console

        console.safe_streams()
    except KeyboardInterrupt:  # before the handler below could be loaded
        sys.stderr.write("\n")
        sys.exit(130)
    console.guarded(_run)


def _run() -> None:
    args = sys.argv[1:]
    if args[:1] == ["history"]:
        lines = quick_history(args[1:])
        if lines is not None:
            import click

            for line in lines:
                click.echo(line)
            sys.exit(0)
    from pipeline.cli import main as full

    full()


def quick_history(args: list[str]) -> list[str] | None:
    """The lines `tdkt history ARGS` prints, or None when the full command line should answer
    (help, an unknown option, a configuration or store that cannot be used)."""
    parsed = _parsed(args)
    if parsed is None:
        return None
    who, options = parsed
    path = _store_path(options)
    if path is None or not path.is_file():
        return None
    from pipeline.store.database import Store, StoreError
    from pipeline.store.history_view import history_lines

    try:
        with Store.open(path) as store:
            return list(history_lines(store, who))
    except StoreError:
        return None


def _parsed(args: list[str]) -> tuple[str, dict[str, str]] | None:
    """(who, {option: value}) of `history`'s arguments; None for anything else."""
    who: list[str] = []
    options: dict[str, str] = {}
    rest = iter(args)
    for arg in rest:
        name, equals, value = arg.partition("=")
        if name in QUICK_OPTIONS:
            value = value if equals else next(rest, None)
            if value is None or name in options:
                return None
            options[name] = value
        elif arg.startswith("-") and arg != "-":
            return None  # --help, or an option the full command line explains
        else:
            who.append(arg)
    return (who[0], options) if len(who) == 1 else None


def _store_path(options: dict[str, str]) -> Path | None:
    """The store the command reads: --store, else the configuration's, else the output
    folder's (pipeline.cli._store_path); None when the configuration cannot be read."""
    if "--store" in options:
        return Path(options["--store"])
    out = Path(options["--out"]) if "--out" in options else None
    config_path = Path(options.get("--config", DEFAULT_CONFIG))
    config = None
    if config_path.is_file():
        from pipeline.config import ConfigError, load_config

        try:
            config = load_config(config_path, None)
        except ConfigError:
            return None
        if config.store:
            return config.store
    from pipeline.settings import STORE_FILE

    return (out or (config.output if config is not None and config.output else DEFAULT_OUT)) \
        / STORE_FILE
