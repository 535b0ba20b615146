"""consolidate(): the stages in order, then an atomic write of every output under a lock."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline import parallel, settings
from pipeline import texts as wording
from pipeline.config import Config
from pipeline.findings import Finding, has_errors
from pipeline.forms.definitions import FormSet, load_forms
from pipeline.heap import collections_paused
from pipeline.ingest import isolated
from pipeline.ingest.inbox import entry_name, ignored_entries, inbox_entries
from pipeline.ingest.normalize import Context
from pipeline.ingest.read import RawBook, UnreadableSheet, file_sha256, read_workbook, reader_died
from pipeline.ingest.submission import (
    Registry,
    Submission,
    submission,
    validated_submissions,
)
from pipeline.parallel import worker_count
from pipeline.rounds.base import CheckedInbox, Round, RoundInputs, RoundResult, round_named
from pipeline.rules.ruleset import RuleSet, load_rules
from pipeline.safeguard import (
    ShrinkingRoundError,
    accepted_units,
    almost_empty,
    backup_root,
    keep_backup,
    previous_run,
    shrinking_message,
)
from pipeline.settings import Limits
from pipeline.status import FileStatus, label
from pipeline.store.database import open_store
from pipeline.store.record import matched_round
from pipeline.text import nfc

# The round `consolidate` runs when none is named.
REGISTRATION = settings.DEFAULT_ROUND


class LockedError(Exception):
    """Another run is writing to the same output folder."""


class InboxError(Exception):
    """The inbox named does not exist or is not a folder (a mistyped path): nothing is run."""


def checked_folder(inbox: Path) -> Path:
    """The inbox folder, or InboxError saying in Vietnamese what is wrong with the path."""
    if not inbox.exists():
        raise InboxError(wording.render("inbox", "no_inbox", path=inbox))
    if not inbox.is_dir():
        raise InboxError(wording.render("inbox", "not_a_folder", path=inbox))
    return inbox


# Stages


def read_submission(path: Path, inbox: Path, forms: FormSet, registry: Registry,
                    context: Context, form_id: str | tuple[str, ...] = REGISTRATION, *,
                    validate: bool = True, limits: Limits | None = None,
                    form_sheets: frozenset[str] | None = None) -> Submission:
    """One inbox file → a submission of form `form_id` (of one of them, when several: its
    hidden id says which, else its headers), however broken the file is.

    With `validate=False` its sheets are left for `validated_submissions` (a whole batch).
    A file read with warnings only (macros ignored, a wrong extension, …) still counts.
    In a reader process the sheets the forms do not name are read only if looked at (a
    renamed sheet is searched for by its headers); `form_sheets`: forms.sheet_names(form_id),
    when the caller keeps it."""
    first = form_sheets if form_sheets is not None else forms.sheet_names(form_id)
    return submitted(read_file(path, inbox, first, limits), forms, registry, context, form_id,
                     validate=validate)


@dataclass(frozen=True)
class ReadFile:
    """A file read and judged (its bytes, its sheets), not yet made a submission: that needs
    the registry (read_submission's first half)."""

    name: str
    path: Path
    book: RawBook
    findings: tuple[Finding, ...]
    mtime_ns: int


def read_file(path: Path, inbox: Path, first: frozenset[str],
              limits: Limits | None = None) -> ReadFile | Submission:
    """A file read as read_submission reads it, up to where the registry is needed; or the
    submission already, for a file that is not a readable workbook."""
    name = entry_name(path, inbox)
    if path.is_symlink() or not path.is_file():
        what = "một liên kết (lối tắt)" if path.is_symlink() else "một thư mục"
        return Submission(file=name, path=path, intake=(
            Finding.make("not-a-file", name, value=what),))
    book, findings = read_workbook(path, name, limits, first=first)
    mtime = path.stat().st_mtime_ns
    if book is None or has_errors(findings):
        sha = book.sha256 if book else file_sha256(path)
        return Submission(file=name, path=path, sha256=sha, raw=book, intake=tuple(findings),
                          mtime_ns=mtime)
    return ReadFile(name, path, book, tuple(findings), mtime)


def submitted(read: ReadFile | Submission, forms: FormSet, registry: Registry,
              context: Context, form_id: str | tuple[str, ...] = REGISTRATION, *,
              validate: bool = True) -> Submission:
    """The submission of a file read (read_submission's second half)."""
    if isinstance(read, Submission):
        return read
    try:
        return submission(read.book, forms, form_id, registry, context, mtime_ns=read.mtime_ns,
                          validate=validate, read_findings=read.findings)
    except UnreadableSheet as broken:  # a sheet read on first use: as if read at once
        return Submission(file=read.name, path=read.path, sha256=read.book.sha256,
                          intake=(broken.finding,), mtime_ns=read.mtime_ns)


Progress = Callable[[Iterator[Submission], int], Iterator[Submission]]


def read_inbox(inbox: Path, forms: FormSet, registry: Registry | Callable[[], Registry],
               form_id: str | tuple[str, ...] = REGISTRATION, progress: Progress | None = None,
               *, workers: int | None = None, limits: Limits | None = None) -> list[Submission]:
    """Every file of the inbox as a validated submission of form `form_id`, in name order.

    Files are read, identified and normalised in `workers` reader processes (by default one
    per core when the inbox is large, else one; see pipeline.ingest.isolated): a file whose
    reader dies is unreadable, and the others go on. Each form sheet is validated over many
    files at once (settings.VALIDATION_BATCH), here, while the readers read the next ones
    (every check is within one file: the batches find what one run over all would).

    `registry` may be the function that loads it: the readers then start at once, reading
    their first files ahead (bytes judged, sheets parsed) while this process loads it, and
    go on with them once it has come (it is loaded, once, in any case).
    """
    files = inbox_entries(inbox)
    if workers is None:
        workers = worker_count(len(files))
    later = parallel.Later() if callable(registry) else None
    job = _ReadJob(inbox, forms, later if later is not None else registry, form_id, limits)
    submissions: list[Submission] = []
    try:
        with collections_paused():
            subs = isolated.imap(job.read, files, workers, job.died,
                                 [_size(p) for p in files], prepare=job.prepare,
                                 on_start=functools.partial(_hand_over, registry, later)
                                 if later is not None else None)
            batch: list[Submission] = []
            left = len(files)
            for sub in progress(subs, len(files)) if progress else subs:
                batch.append(sub)
                left -= 1
                if len(batch) >= _batch_size(left):
                    submissions += validated_submissions(batch, forms.vocabs)
                    batch = []
            return submissions + validated_submissions(batch, forms.vocabs)
    finally:
        if later is not None:
            later.close()


def _hand_over(load: Callable[[], Registry], later: parallel.Later) -> None:
    """Load the registry and hand it to the readers waiting for it."""
    later.set(load())


def _batch_size(left: int) -> int:
    """How many files to validate together, `left` files still to come: VALIDATION_BATCH,
    then, near the end, as many as are still to come (at least VALIDATION_TAIL). The batch
    validated after the last file is read keeps the run waiting: it stays small."""
    return min(settings.VALIDATION_BATCH, max(settings.VALIDATION_TAIL, left))


def _size(path: Path) -> int:
    """A file's size (0 for what is not a file, or is gone)."""
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


@dataclass(frozen=True)
class _ReadJob:
    """What a reader process needs, sent to it once. The registry may be on its way (a
    parallel.Later the parent sets once it has loaded it)."""

    inbox: Path
    forms: FormSet
    registry: Registry | parallel.Later
    form_id: str | tuple[str, ...]
    limits: Limits | None = None
    # Files read ahead in this reader while the registry was on its way, by path.
    _ahead: dict[Path, ReadFile | Submission] = field(default_factory=dict, init=False,
                                                      repr=False, compare=False)

    def read(self, path: Path) -> Submission:
        read = self._ahead.pop(path, None)
        if read is None:
            read = read_file(path, self.inbox, self.form_sheets, self.limits)
        sub = submitted(read, self.forms, self._registry, self._context, self.form_id,
                        validate=False)
        return _without_unused_grids(sub)

    def prepare(self, paths: list[Path]) -> None:
        """A run's files read ahead while the registry is on its way (until it comes)."""
        if not isinstance(self.registry, parallel.Later):
            return
        for path in paths:
            if self.registry.ready():
                return
            self._ahead[path] = read_file(path, self.inbox, self.form_sheets, self.limits)

    @functools.cached_property
    def form_sheets(self) -> frozenset[str]:
        """The folded names of the forms' sheets (worked out once per reader)."""
        return self.forms.sheet_names(self.form_id)

    @functools.cached_property
    def _registry(self) -> Registry:
        return parallel.resolved(self.registry)

    @functools.cached_property
    def _context(self) -> Context:
        return Context(vocabs=self.forms.vocabs, unit_codes=self._registry.codes)

    def died(self, path: Path, why: isolated.ReaderDied) -> Submission:
        """The submission of a file whose reader died (or gave up) on it: unreadable."""
        name = entry_name(path, self.inbox)
        finding = reader_died(nfc(name), why)
        try:
            sha, mtime = file_sha256(path), path.stat().st_mtime_ns
        except OSError:  # gone meanwhile
            sha, mtime = None, 0
        return Submission(file=name, path=path, sha256=sha, intake=(finding,), mtime_ns=mtime)


def _without_unused_grids(sub: Submission) -> Submission:
    """The submission without the cells of sheets no table was read from and no finding names
    (instructions, lists) and without the file's bytes: nothing later looks at them (a later
    scan of a sheet's XML reads the file again, when it is still the file read), and a
    province's worth would fill the memory."""
    if sub.raw is None:
        return sub
    kept = {t.raw.name for t in sub.tables.values()} | {f.sheet for f in sub.findings}
    sheets = [s if s.name in kept else replace(s, grid=[]) for s in sub.raw.sheets]
    return replace(sub, raw=replace(sub.raw, sheets=sheets, package=None))


def chosen_submissions(submissions: list[Submission]) -> CheckedInbox:
    """The newest usable submission of each unit; older ones come back superseded, with the
    finding that says so.

    Newest: the later "Ngày lập" written on the form, then the later file time, then the name.
    """
    by_unit: dict[str, list[Submission]] = {}
    for sub in submissions:
        if sub.unit_code and sub.form is not None:
            by_unit.setdefault(sub.unit_code, []).append(sub)
    newer: dict[int, Submission] = {}
    chosen: dict[str, Submission] = {}
    for code, subs in sorted(by_unit.items()):
        ordered = sorted(subs, key=lambda s: (s.report_date or dt.date.min, s.mtime_ns, s.file))
        newest = chosen[code] = ordered[-1]
        for old in ordered[:-1]:
            when = f"ngày lập {old.report_date:%d/%m/%Y}" if old.report_date else "gửi trước"
            newer[id(old)] = replace(old, superseded_by=newest.file, choice=(Finding.make(
                "superseded", old.file, unit=code, value=when, expected=newest.file),))
    final = tuple(newer.get(id(s), s) for s in submissions)
    return CheckedInbox(submissions=final, chosen=chosen)


# Writing


@contextlib.contextmanager
def held_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed); another holder → LockedError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        try:
            _lock(handle)
        except OSError as exc:
            raise LockedError(str(path.parent)) from exc
        yield
    finally:
        handle.close()


def output_lock(out: Path) -> contextlib.AbstractContextManager[None]:
    """The output folder's lock: two consolidations never write at once."""
    return held_lock(out / settings.LOCK_FILE)


def _lock(handle) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _swap_in(staging: Path, target: Path, backups: Path | None = None) -> None:
    """Replace target with staging; the old outputs stay until the new ones are in place, then
    are kept as a backup under `backups` (removed when None)."""
    retired = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(retired)  # fails, changing nothing, while Excel holds a file inside open
    try:
        staging.rename(target)
    except BaseException:  # stopped (Ctrl-C) or failed between the two renames: put it back
        if retired.exists() and not target.exists():
            retired.rename(target)
        raise
    if backups is not None and retired.exists():
        # The new outputs are in place: a backup that cannot be kept must not undo the run.
        with contextlib.suppress(OSError):
            keep_backup(retired, backups)
    shutil.rmtree(retired, ignore_errors=True)


def write_outputs(round_: Round, result: RoundResult, out: Path,
                  alongside: Callable[[], object] | None = None) -> RoundResult:
    """Every report of the round, written into a staging folder and swapped in at once, with
    the manifest; the outputs replaced are kept as a dated backup (the newest few, under
    OUT/<năm học>/sao-luu/<round>/). Returns the result with where it was written.

    `alongside` runs in this process while worker processes write the reports (or after the
    reports when none do), before anything is swapped in: when it fails nothing is."""
    target = out / result.school_year / round_.folder
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        with parallel.alongside(alongside):
            written = round_.write(result, staging)
        manifest = staging / settings.MANIFEST_FILE
        data = {**manifest_data(result, round_.form_id, written, staging),
                **round_.manifest(result)}
        manifest.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
        _keep_nested(target, staging)
        _swap_in(staging, target, backup_root(out, result.school_year, round_.folder))
    except BaseException:
        _keep_nested(staging, target)  # a failed swap leaves the other round's outputs
        shutil.rmtree(staging, ignore_errors=True)
        raise
    outputs = tuple(sorted(target / p.relative_to(staging) for p in [*written, manifest]))
    return replace(result, out_dir=target, outputs=outputs)


def _keep_nested(target: Path, staging: Path) -> None:
    """Move the outputs of another round kept inside `target` (the Sở's "tinh/" inside a
    Phòng's round folder, when one output folder serves both) into the staging folder, so that
    replacing one round's outputs never takes another's."""
    nested = target / settings.PROVINCE_DIR
    if nested.is_dir() and staging.is_dir() and not (staging / settings.PROVINCE_DIR).exists():
        nested.rename(staging / settings.PROVINCE_DIR)


def manifest_data(result: RoundResult, form_id: str, written: list[Path],
                  root: Path) -> dict:
    """The machine-readable record of the run (what every round has; the round adds its own);
    `form_id` is the form the round's inbox holds."""
    classification = {sub.file: sub.status for sub in result.submissions}
    return {
        "tool": "tdkt",
        "generated_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "run_date": result.run_date.isoformat(),
        "school_year": result.school_year,
        "round": result.round,
        "office": {"name": result.office.name, "parent": result.office.parent,
                   "level": result.office.level},
        "forms": sorted({s.form.key for s in result.submissions if s.form}),
        "current_form": result.forms.current(form_id).key,
        "rule_set": {"school_year": result.rules.school_year, "version": result.rules.version,
                     "date": result.rules.date.isoformat(), "province": result.rules.province,
                     "layers": list(result.rules.sources),
                     "options": list(result.rules.options)},
        "registry": result.registry_file,
        "inputs": sorted([*({"file": s.file, "sha256": s.sha256,
                              "classification": classification[s.file],
                              "form": s.form.form if s.form else None,
                              "version": s.form.version if s.form else None,
                              "unit": s.unit_code, "superseded_by": s.superseded_by}
                             for s in result.submissions),
                           *({"file": i.file, "sha256": None,
                              "classification": FileStatus.IGNORED.value, "form": None,
                              "version": None, "unit": None, "superseded_by": None,
                              "reason": i.reason} for i in result.ignored)],
                          key=lambda entry: entry["file"]),
        "units": [{"unit": code, "name": row["unit_name"], "level": row["level"],
                   "block": row["block"], "status": label(row["status"]),
                   "file": row["file"] or None}
                  for code, row in result.units.iterrows()],
        "counts": {"files": len(result.submissions),
                   "accepted": sum(v == "accepted" for v in classification.values()),
                   "errors": len(result.errors),
                   "warnings": len(result.findings) - len(result.errors),
                   "units_expected": int(result.units["expected"].sum()),
                   "units_missing": int(result.units["missing"].sum())},
        "findings": [{k: f.to_dict()[k] for k in ("file", "sheet", "cell", "code", "severity",
                                                   "value", "expected", "message", "unit")}
                     for f in result.findings],
        "outputs": sorted(p.relative_to(root).as_posix() for p in written),
    }


def checked_inbox(inbox: Path, round_: Round, forms: FormSet,
                  registry: Registry | Callable[[], Registry], limits: Limits | None = None,
                  progress: Progress | None = None) -> CheckedInbox:
    """Every file of the inbox read, identified, checked, and the newest of each unit chosen;
    lock, system and hidden files listed as ignored. A missing inbox is an InboxError.
    `registry`: as read_inbox takes it."""
    checked_folder(inbox)
    checked = chosen_submissions(read_inbox(inbox, forms, registry, round_.form_ids,
                                            progress, limits=limits))
    return replace(checked, ignored=tuple(ignored_entries(inbox)))


def _round(round_: Round | str) -> Round:
    return round_named(round_) if isinstance(round_, str) else round_


def rules_date(config: Config, round_name: str) -> dt.date:
    """The day a round of the configured school year is judged on: its deadline in the
    office's calendar (the year-end deadline for a round the calendar does not list)."""
    from pipeline.monthly.calendar import due_date, load_calendar

    try:
        calendar = load_calendar(config.calendar)
    except ValueError:  # a wrong [[calendar]] is reported by the month-end run
        calendar = load_calendar(None)
    deadline = next((d for d in calendar if d.round == round_name), None)
    if deadline is None:
        deadline = next(d for d in load_calendar(None) if d.round == "ket-qua")
    return due_date(deadline, config.school_year)


def rules_for(config: Config, round_name: str) -> RuleSet:
    """The rules in force for a round: the layers the office chose, on the round's date."""
    return load_rules(config.school_year, rules_date(config, round_name),
                      province=config.province_rules, office=config.office_rules,
                      options=config.rule_options)


def consolidation(inbox: Path, config: Config, *, round: Round | str = REGISTRATION,
                  run_date: dt.date | None = None, progress: Progress | None = None,
                  forms: FormSet | None = None, rules: RuleSet | None = None,
                  store: Any = None, previous: Path | None = None,
                  **options: Any) -> RoundResult:
    """Read and check every file of the inbox and let the round decide (nothing written).

    `forms` and `rules` default to the definitions shipped with tdkt for the year; `options`
    are the round's own (e.g. `registration_inbox` at year end).
    """
    round_ = _round(round)
    forms = forms or load_forms()
    # The Sở's round of a phase is judged on the date of that phase in the calendar.
    rules = rules or rules_for(config, getattr(round_, "phase", round_.name))
    loaded: list[tuple[Registry, list[Finding]]] = []

    def load() -> Registry:  # while the readers start on the inbox (read_inbox)
        loaded.append(round_.load_registry(config, forms))
        return loaded[0][0]

    checked = checked_inbox(inbox, round_, forms, load, config.limits, progress)
    registry, registry_findings = loaded[0]
    inputs = RoundInputs(
        config=config, forms=forms, rules=rules, registry=registry,
        registry_findings=tuple(registry_findings), inbox=checked,
        run_date=run_date or dt.date.today(), store=store, previous=previous,
        options=options)
    return replace(round_.decide(inputs), ignored=inputs.inbox.ignored)


def consolidate(inbox: Path, out: Path, config: Config, *, round: Round | str = REGISTRATION,
                run_date: dt.date | None = None, progress: Progress | None = None,
                forms: FormSet | None = None, store: Path | None = None, force: bool = False,
                **options: Any) -> RoundResult:
    """The whole job: consolidate the inbox, record the round in the history store, and write
    every output under `out/<year>/<round>/`.

    A missing inbox is an InboxError, before anything is written. A run that would replace a
    round's consolidated units with fewer than half of them (an emptied or mistyped inbox) is
    a ShrinkingRoundError, nothing written, unless `force`. The round is recorded in one
    transaction that commits only once the outputs are in place: a run stopped or failing
    before that leaves the store and the outputs as they were; the replaced outputs are kept
    as a dated backup. The round is recorded (its persons matched, then its rows written) in
    this process while worker processes write the workbooks. The run log gives each stage's
    seconds, and within "write" the recording's: "record" (matching), "record_rows".
    """
    round_ = _round(round)
    checked_folder(inbox)
    target = out / config.school_year / round_.folder
    with output_lock(out):
        clock = _StageClock()
        with contextlib.closing(open_store(store or out / config.store_name)) as history, \
                _unfrozen_after():
            # Bulk work that makes little cyclic garbage: each full collection would walk a
            # province's objects. What the round holds is then set aside from the collector
            # (the workbooks' workers share it untouched; handed back when they are done).
            with collections_paused(freeze_survivors=True):
                result = consolidation(
                    inbox, config, round=round_, run_date=run_date, progress=progress,
                    forms=forms, store=history, previous=target, **options)
            clock.lap("read_check")
            if not force:
                _refuse_shrinking(result, round_, target, history, inbox, out)
            with history.transaction():  # commits once the outputs are swapped in
                # The round is recorded here while the worker processes write the workbooks:
                # its persons matched, then its rows written, before the outputs are swapped
                # in. The office workbook lists the matches to confirm: it waits for them at
                # its closing sheets only.
                recording = _Recording(history, result, dt.datetime.now().astimezone(
                ).isoformat(timespec="seconds"))
                try:
                    written = write_outputs(round_, replace(result, matches=recording.matches),
                                            out, alongside=recording)
                finally:
                    recording.matches.close()
                clock.lap("write")
                clock.add("record", recording.match_seconds)
                clock.add("record_rows", recording.rows_seconds)
                result = replace(written, matches=recording.matches.get())
        append_run_log(out, {
            "command": "consolidate", "round": result.round, "school_year": result.school_year,
            "files": len(result.submissions), "errors": len(result.errors),
            "seconds": clock.seconds()})
    return result


@contextlib.contextmanager
def _unfrozen_after() -> Iterator[None]:
    """gc.unfreeze() on leaving: objects set aside from the collector inside go back to it."""
    try:
        yield
    finally:
        gc.unfreeze()


def _refuse_shrinking(result: RoundResult, round_: Round, target: Path, history: Any,
                      inbox: Path, out: Path) -> None:
    """ShrinkingRoundError when the run would replace the round's last run with almost
    nothing (see safeguard.almost_empty)."""
    previous = previous_run(target, history, result.school_year, round_.name)
    now = accepted_units(result.submissions)
    if previous is not None and almost_empty(previous.units, now):
        raise ShrinkingRoundError(shrinking_message(
            previous, now, len(result.submissions), round_label=f"“{round_.label}”",
            school_year=result.school_year, inbox=inbox,
            backups=backup_root(out, result.school_year, round_.folder)))


class _StageClock:
    """Seconds spent per stage, and in total."""

    def __init__(self) -> None:
        self._start = self._last = time.perf_counter()
        self._laps: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self._laps[stage] = now - self._last
        self._last = now

    def add(self, part: str, seconds: float) -> None:
        """The seconds of work done during another stage (not counted in the total twice)."""
        self._laps[part] = seconds

    def seconds(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in
                {**self._laps, "total": time.perf_counter() - self._start}.items()}


class _Recording:
    """The task that records a round in the history store: its persons matched (the matches
    to confirm given to the jobs waiting for them), then its rows written; it remembers how
    long each part took."""

    def __init__(self, store: Any, result: RoundResult, run_at: str) -> None:
        self.store, self.result, self.run_at = store, result, run_at
        self.matches: parallel.Later = parallel.Later()
        self.match_seconds = self.rows_seconds = 0.0

    def __call__(self) -> None:
        started = time.perf_counter()
        try:
            pending = matched_round(self.store, self.result, self.run_at)
        except BaseException:
            self.matches.fail()
            raise
        self.matches.set(pending.matches)
        self.match_seconds = time.perf_counter() - started
        started = time.perf_counter()
        try:
            pending.write()
        finally:
            self.rows_seconds = time.perf_counter() - started


def append_run_log(out: Path, entry: dict) -> Path:
    """One JSON line in the run log of the output folder (time first)."""
    path = out / settings.RUN_LOG
    line = {"at": dt.datetime.now().astimezone().isoformat(timespec="seconds"), **entry}
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    return path
