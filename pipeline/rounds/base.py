"""What a round is to the engine, the frozen values passed between them, and the round registry.

The engine (pipeline.engine) locks the output folder, reads and checks the inbox, records the
round in the history store and writes its outputs atomically; it knows no concrete round. A
round says which form its inbox holds, decides from the checked submissions (and the store),
says what the store keeps, and writes its reports. A new round is one module that defines a
`Round` and calls `register` when imported, plus its form data.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from pipeline.config import Config, Office
from pipeline.findings import Finding, Severity
from pipeline.forms.definitions import FormSet
from pipeline.ingest.inbox import Ignored
from pipeline.ingest.submission import Registry, Submission
from pipeline.parallel import Later
from pipeline.rules.ruleset import RuleSet

# The modules of the rounds tdkt ships; importing one registers its round.
BUILT_IN_ROUNDS = ("pipeline.rounds.registration", "pipeline.rounds.results",
                   "pipeline.rounds.province")


@dataclass(frozen=True)
class CheckedInbox:
    """The inbox after reading, identification, validation and the choice of each unit's
    newest file: every submission (superseded ones marked) and the one chosen per unit."""

    submissions: tuple[Submission, ...]
    chosen: Mapping[str, Submission]
    # Entries not read (Excel lock files, Thumbs.db, hidden files): listed, neither counted
    # nor faulty.
    ignored: tuple[Ignored, ...] = ()

    @functools.cached_property
    def submitted(self) -> frozenset[str]:
        """Codes of the units that sent at least one file."""
        return frozenset(s.unit_code for s in self.submissions if s.unit_code)

    @functools.cached_property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding of every file, file by file."""
        return tuple(f for s in self.submissions for f in s.findings)


@dataclass(frozen=True)
class RoundInputs:
    """What the engine hands a round to decide from."""

    config: Config
    forms: FormSet
    rules: RuleSet
    registry: Registry
    registry_findings: tuple[Finding, ...]
    inbox: CheckedInbox
    run_date: dt.date
    # The history store (pipeline.store), open for reading; None when the round runs alone.
    store: Any
    # The round's own folder of earlier outputs (e.g. a Phòng workbook the office annotated).
    previous: Path | None = None
    # Options a client passes for this round (e.g. the registration inbox at year end).
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RoundResult:
    """What a round decided: the frozen value its reports, the store and the manifest read.

    Rounds with more to say extend it (a frozen subclass). `matches`, `out_dir`, `outputs`
    and `ignored` are filled by the engine in new values (dataclasses.replace), never assigned.
    """

    school_year: str
    round: str
    office: Office
    province: Office
    rules: RuleSet
    forms: FormSet
    registry: Registry
    registry_file: str
    submissions: tuple[Submission, ...]
    chosen: Mapping[str, Submission]
    units: pd.DataFrame
    by_level: pd.DataFrame
    by_block: pd.DataFrame
    staff: pd.DataFrame
    collectives: pd.DataFrame
    findings: tuple[Finding, ...]
    run_date: dt.date
    # Person matches across years the office should confirm (from recording the round; while
    # the workbooks are written, a parallel.Later of them: parallel.resolved gives them).
    matches: pd.DataFrame | Later[pd.DataFrame] | None = None
    out_dir: Path | None = None
    outputs: tuple[Path, ...] = ()
    # The inbox entries not read (lock, system and hidden files).
    ignored: tuple[Ignored, ...] = ()

    @functools.cached_property
    def errors(self) -> tuple[Finding, ...]:
        """Findings of severity lỗi."""
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)


@runtime_checkable
class Round(Protocol):
    """One kind of round: registration, year-end results, …"""

    name: str        # "dang-ky": the --round value and the history store's round name
    form_id: str     # the form the round's inbox holds (the first, when it holds several)
    form_ids: tuple[str, ...]  # every form its inbox may hold (identified file by file)
    folder: str      # its outputs' folder under the school year ("dang-ky", "dang-ky/tinh")
    label: str       # what people call it, in Vietnamese

    def load_registry(self, config: Config, forms: FormSet
                      ) -> tuple[Registry, list[Finding]]:
        """The units the round expects files from (the configured registry), and the
        problems found in it."""
        ...

    def decide(self, inputs: RoundInputs) -> RoundResult:
        """Totals, decisions and rankings from the checked inbox (no writing)."""
        ...

    def write(self, result: RoundResult, folder: Path) -> list[Path]:
        """Every report of the round, written under `folder`."""
        ...

    def manifest(self, result: RoundResult) -> dict[str, Any]:
        """What the round adds to the manifest (e.g. every decision); {} for nothing."""
        ...

    def summary(self, result: RoundResult) -> list[str]:
        """Lines the console shows after the common counts (Vietnamese); [] for none."""
        ...


_ROUNDS: dict[str, Round] = {}


def register(round_: Round) -> Round:
    """Make a round available by its name (a later registration of the same name replaces)."""
    _ROUNDS[round_.name] = round_
    return round_


def rounds() -> dict[str, Round]:
    """Every registered round by name, the built-in ones included."""
    for module in BUILT_IN_ROUNDS:  # plug-in discovery by name: importing registers them
        importlib.import_module(module)
    return dict(_ROUNDS)


def round_named(name: str) -> Round:
    """The round registered under `name`; KeyError for an unknown name."""
    return rounds()[name]


def office_registry(config: Config, forms: FormSet) -> tuple[Registry, list[Finding]]:
    """A Phòng's registry of schools (form danh-muc), for the rounds that read school files."""
    from pipeline.ingest.registry import load_registry

    return load_registry(config.registry, forms)
