"""consolidate(): the stages in order, then an atomic write of every output under a lock."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import time
from builtins import round as round_
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from pipeline import settings
from pipeline.config import Config, Office
from pipeline.findings import Finding, Severity, has_errors, sorted_findings
from pipeline.forms.definitions import FormSet, load_forms
from pipeline.ingest.normalize import Context
from pipeline.ingest.read import file_sha256, read_workbook
from pipeline.ingest.registry import load_registry
from pipeline.ingest.submission import Registry, Submission, submission, validate_submissions
from pipeline.parallel import worker_count
from pipeline.rules.aggregate import (
    collective_rows,
    quota_findings,
    staff_rows,
    totals_by,
    unit_table,
)
from pipeline.rules.ruleset import RuleSet, load_rules
from pipeline.settings import Limits
from pipeline.text import nfc

ROUND = "dang-ky"


class LockedError(Exception):
    """Another run is writing to the same output folder."""


@dataclass
class Consolidation:
    """Everything one round's reports are made from."""

    school_year: str
    round: str
    office: Office
    province: Office
    rules: RuleSet
    forms: FormSet
    registry: Registry
    registry_file: str
    submissions: list[Submission]
    chosen: dict[str, Submission]
    units: pd.DataFrame
    by_level: pd.DataFrame
    by_block: pd.DataFrame
    staff: pd.DataFrame
    collectives: pd.DataFrame
    findings: list[Finding]
    run_date: dt.date
    outputs: list[Path] = field(default_factory=list)
    out_dir: Path | None = None
    # The year-end round only: every rule decision, one verdict per proposal, the ranking of
    # units per khối, self-score rows, quotas allocated per khối, registrations not proposed.
    decisions: pd.DataFrame | None = None
    verdicts: pd.DataFrame | None = None
    ranking: pd.DataFrame | None = None
    criteria: pd.DataFrame | None = None
    limits: dict | None = None
    not_proposed: pd.DataFrame | None = None
    # Person matches across years the office should confirm (set when the round is recorded).
    matches: pd.DataFrame | None = None
    # Year-end round: people whom the store shows eligible for a higher form, not proposed.
    eligible: pd.DataFrame | None = None

    @property
    def errors(self) -> list[Finding]:
        """Findings of severity lỗi."""
        return [f for f in self.findings if f.severity is Severity.ERROR]


# Stages


def inbox_files(inbox: Path) -> list[Path]:
    """The regular files in the inbox, in name order; folders and links are not followed."""
    return sorted((p for p in inbox.iterdir() if p.is_file() and not p.is_symlink()),
                  key=lambda p: p.name)


def inbox_entries(inbox: Path) -> list[Path]:
    """Everything in the inbox (files, folders, links), in name order: each is reported."""
    return sorted(inbox.iterdir(), key=lambda p: p.name)


def read_submission(path: Path, inbox: Path, forms: FormSet, registry: Registry,
                    context: Context, form_id: str = ROUND, *, validate: bool = True,
                    limits: Limits | None = None) -> Submission:
    """One inbox file → a submission of form `form_id`, however broken the file is.

    With `validate=False` its sheets are left for `validate_submissions` (a whole batch).
    A file read with warnings only (macros ignored, a wrong extension, …) still counts."""
    name = nfc(path.relative_to(inbox).as_posix())
    if path.is_symlink() or not path.is_file():
        what = "một liên kết (lối tắt)" if path.is_symlink() else "một thư mục"
        return Submission(file=name, path=path, findings=[
            Finding.make("not-a-file", name, value=what)])
    book, findings = read_workbook(path, name, limits)
    mtime = path.stat().st_mtime_ns
    if book is None or has_errors(findings):
        sha = book.sha256 if book else file_sha256(path)
        return Submission(file=name, path=path, sha256=sha, raw=book, findings=findings,
                          mtime_ns=mtime)
    sub = submission(book, forms, form_id, registry, context, mtime_ns=mtime,
                     validate=validate)
    unit = sub.unit_code
    sub.findings[:0] = [replace(f, unit=unit) if unit and not f.unit else f for f in findings]
    sub.unvalidated = {k: v + len(findings) for k, v in sub.unvalidated.items()}
    return sub


Progress = Callable[[Iterator[Submission], int], Iterator[Submission]]


def read_inbox(inbox: Path, forms: FormSet, registry: Registry, context: Context,
               form_id: str = ROUND, progress: Progress | None = None, *,
               workers: int | None = None, limits: Limits | None = None) -> list[Submission]:
    """Every file of the inbox as a validated submission of form `form_id`, in name order.

    Files are read, identified and normalised in `workers` processes (by default one per core
    when the inbox is large); then each form sheet is validated once over all files.
    """
    files = inbox_entries(inbox)
    if workers is None:
        workers = worker_count(len(files))
    job = _ReadJob(inbox, forms, registry, context, form_id, limits)
    if workers > 1 and len(files) > 1:
        chunk = max(1, min(64, len(files) // (workers * 8)))
        pool = ProcessPoolExecutor(max_workers=workers, initializer=_start_worker,
                                   initargs=(job,))
        with pool:
            subs: Iterator[Submission] = pool.map(_read_in_worker, files, chunksize=chunk)
            submissions = list(progress(subs, len(files)) if progress else subs)
    else:
        subs = (job.read(p) for p in files)
        submissions = list(progress(subs, len(files)) if progress else subs)
    validate_submissions(submissions, forms.vocabs)
    return submissions


@dataclass(frozen=True)
class _ReadJob:
    """What a reading process needs, sent to it once."""

    inbox: Path
    forms: FormSet
    registry: Registry
    context: Context
    form_id: str
    limits: Limits | None = None

    def read(self, path: Path) -> Submission:
        sub = read_submission(path, self.inbox, self.forms, self.registry, self.context,
                              self.form_id, validate=False, limits=self.limits)
        return _without_unused_grids(sub)


def _without_unused_grids(sub: Submission) -> Submission:
    """Drop the cells of sheets no table was read from and no finding names (instructions,
    lists): nothing later looks at them, and a province's worth would fill the memory."""
    if sub.raw is not None:
        kept = {t.raw.name for t in sub.tables.values()} | {f.sheet for f in sub.findings}
        for sheet in sub.raw.sheets:
            if sheet.name not in kept:
                sheet.grid = []
    return sub


_WORKER_JOB: _ReadJob | None = None


def _start_worker(job: _ReadJob) -> None:
    global _WORKER_JOB
    _WORKER_JOB = job


def _read_in_worker(path: Path) -> Submission:
    assert _WORKER_JOB is not None
    return _WORKER_JOB.read(path)


def chosen_submissions(submissions: list[Submission]) -> dict[str, Submission]:
    """The newest usable submission of each unit; older ones are marked superseded.

    Newest: the later "Ngày lập" written on the form, then the later file time, then the name.
    """
    by_unit: dict[str, list[Submission]] = {}
    for sub in submissions:
        if sub.unit_code and sub.form is not None:
            by_unit.setdefault(sub.unit_code, []).append(sub)
    chosen: dict[str, Submission] = {}
    for code, subs in sorted(by_unit.items()):
        ordered = sorted(subs, key=lambda s: (s.report_date or dt.date.min, s.mtime_ns, s.file))
        newest = ordered[-1]
        chosen[code] = newest
        for old in ordered[:-1]:
            old.superseded_by = newest.file
            when = f"ngày lập {old.report_date:%d/%m/%Y}" if old.report_date else "gửi trước"
            old.findings.append(Finding.make("superseded", old.file, unit=code, value=when,
                                             expected=newest.file))
    return chosen


def consolidation(inbox: Path, config: Config, *, run_date: dt.date | None = None,
                  progress: Progress | None = None,
                  forms: FormSet | None = None) -> Consolidation:
    """Read, normalise, validate and aggregate every file of the inbox (no writing).

    `forms` defaults to the definitions under schemas/.
    """
    forms = forms or load_forms()
    rules = load_rules(config.school_year)
    registry, registry_findings = load_registry(config.registry, forms)
    context = Context(vocabs=forms.vocabs, unit_codes=registry.codes)
    submissions = read_inbox(inbox, forms, registry, context, ROUND, progress,
                             limits=config.limits)
    chosen = chosen_submissions(submissions)
    submitted = {s.unit_code for s in submissions if s.unit_code}
    staff = staff_rows(chosen)
    collectives = collective_rows(chosen)
    units = unit_table(registry, chosen, submitted, staff, collectives, forms.vocabs, rules)
    findings = [f for s in submissions for f in s.findings] + registry_findings
    findings += quota_findings(units, chosen, rules, forms.vocabs)
    levels = forms.vocabs["levels"].codes
    return Consolidation(
        school_year=config.school_year, round=ROUND, office=config.office_for(),
        province=config.province_office, rules=rules, forms=forms, registry=registry,
        registry_file=config.registry.name, submissions=submissions, chosen=chosen,
        units=units, by_level=totals_by(units, "level", levels),
        by_block=totals_by(units, "block", levels),
        staff=staff, collectives=collectives, findings=sorted_findings(findings),
        run_date=run_date or dt.date.today())


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


def _swap_in(staging: Path, target: Path) -> None:
    """Replace target with staging; the old outputs stay until the new ones are in place."""
    retired = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired, ignore_errors=True)


def write_outputs(result: Consolidation, out: Path) -> list[Path]:
    """Every report of the round, written into a staging folder and swapped in at once."""
    from pipeline.reports.registration import (
        write_reports,  # the reports need xlsxwriter only when writing
    )
    from pipeline.reports.results import write_results_reports

    if result.decisions is not None:
        write_reports = write_results_reports  # the year-end round's reports

    target = out / result.school_year / settings.OUTPUT_ROUND_DIRS[result.round]
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        written = write_reports(result, staging)
        manifest = staging / settings.MANIFEST_FILE
        manifest.write_text(json.dumps(manifest_data(result, written, staging), ensure_ascii=False,
                                       indent=2), encoding="utf-8")
        _swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result.out_dir = target
    result.outputs = sorted(target / p.relative_to(staging) for p in [*written, manifest])
    return result.outputs


def manifest_data(result: Consolidation, written: list[Path], root: Path) -> dict:
    """The machine-readable record of the run."""
    classification = {}
    for sub in result.submissions:
        if sub.superseded_by:
            status = "superseded"
        elif sub.counted:
            status = "accepted"
        else:
            status = "rejected"
        classification[sub.file] = status
    return {
        "tool": "tdkt",
        "generated_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "run_date": result.run_date.isoformat(),
        "school_year": result.school_year,
        "round": result.round,
        "office": {"name": result.office.name, "parent": result.office.parent,
                   "level": result.office.level},
        "forms": sorted({s.form.key for s in result.submissions if s.form}),
        "current_form": result.forms.current(result.round).key,
        "rule_set": {"school_year": result.rules.school_year, "version": result.rules.version},
        "registry": result.registry_file,
        "inputs": [{"file": s.file, "sha256": s.sha256, "classification": classification[s.file],
                    "form": s.form.form if s.form else None,
                    "version": s.form.version if s.form else None, "unit": s.unit_code,
                    "superseded_by": s.superseded_by}
                   for s in sorted(result.submissions, key=lambda s: s.file)],
        "units": [{"unit": code, "name": row["unit_name"], "level": row["level"],
                   "block": row["block"], "status": row["status"], "file": row["file"] or None}
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
        **({"decisions": _decision_records(result.decisions)}
           if result.decisions is not None else {}),
    }


def _decision_records(decisions: pd.DataFrame) -> list[dict]:
    """Every rule decision as unit, person, proposal, rule_id, result, citation (+ status)."""
    return [{"unit": d.unit_code, "person": d.name, "subject": d.subject, "row": int(d.row),
             "proposal": f"{d.kind}:{d.proposal}", "rule_id": d.rule_id, "result": d.result,
             "citation": d.citation, "status": d.status}
            for d in decisions.sort_values(["unit_code", "subject", "row", "kind",
                                            "rule_id"]).itertuples()]


def consolidate(inbox: Path, out: Path, config: Config, *, run_date: dt.date | None = None,
                progress: Progress | None = None,
                forms: FormSet | None = None, round: str = ROUND,
                registration_inbox: Path | None = None, store: Path | None = None,
                ) -> Consolidation:
    """The whole job: consolidate the inbox, record the round in the history store, and write
    every output under `out/<year>/<round>/`.

    The year-end round (`round="ket-qua"`) also reads the registration inbox of the same year
    and the earlier years in the store. The store is written before the outputs: a run stopped
    while recording leaves the store as it was (one transaction) and the outputs untouched.
    """
    from pipeline.store.database import open_store
    from pipeline.store.record import record

    with output_lock(out):
        started = time.perf_counter()
        seconds: dict[str, float] = {}
        connection = open_store(store or out / settings.STORE_FILE)
        try:
            if round == ROUND:
                result = consolidation(inbox, config, run_date=run_date, progress=progress,
                                       forms=forms)
            else:
                from pipeline.rounds.results import results_consolidation

                previous = out / config.school_year / settings.OUTPUT_ROUND_DIRS[round] / \
                    "tong-hop-phong.xlsx"
                result = results_consolidation(
                    inbox, config, registration_inbox=registration_inbox, run_date=run_date,
                    previous=previous, progress=progress, forms=forms, store=connection)
            seconds["read_check"] = time.perf_counter() - started
            result.matches = record(connection, result,
                                    dt.datetime.now().astimezone().isoformat(timespec="seconds"))
            seconds["record"] = time.perf_counter() - started - sum(seconds.values())
        finally:
            connection.close()
        write_outputs(result, out)
        seconds["write"] = time.perf_counter() - started - sum(seconds.values())
        seconds["total"] = time.perf_counter() - started
        append_run_log(out, {
            "command": "consolidate", "round": result.round, "school_year": result.school_year,
            "files": len(result.submissions), "errors": len(result.errors),
            "seconds": {k: round_(v, 3) for k, v in seconds.items()}})
    return result


def append_run_log(out: Path, entry: dict) -> Path:
    """One JSON line in the run log of the output folder (time first)."""
    path = out / settings.RUN_LOG
    line = {"at": dt.datetime.now().astimezone().isoformat(timespec="seconds"), **entry}
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    return path
