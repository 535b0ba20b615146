"""Shared fixtures: the real schemas, the sample office, and readers for written workbooks."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from pipeline.config import load_config
from pipeline.engine import consolidate
from pipeline.forms.definitions import FormSet, load_forms
from pipeline.rounds.base import RoundResult as Consolidation

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "input_samples"
# What a copy of the sample office needs: its configuration, the office rule layer it names,
# the registry and the allocation.
OFFICE_FILES = ("tdkt.toml", "quy-tac-phong.yaml", "danh-muc-don-vi.xlsx",
                "phan-bo-khen-thuong.xlsx")


@pytest.fixture(scope="session")
def forms() -> FormSet:
    return load_forms()


@pytest.fixture(scope="session")
def expected() -> dict[str, Any]:
    return json.loads((SAMPLES / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> tuple[Consolidation, Path]:
    """The sample inbox consolidated once for the whole session."""
    out = tmp_path_factory.mktemp("out")
    result = consolidate(SAMPLES / "hop-thu", out, load_config(SAMPLES / "tdkt.toml"))
    return result, result.out_dir


def _inbox_state(inbox: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in inbox.iterdir()}


@pytest.fixture(scope="session")
def sample_rerun(sample_run, tmp_path_factory) -> tuple[Consolidation, dict, dict]:
    """The sample inbox consolidated a second time, on sample_run's date, into another folder
    (in one process, as sample_run): (result, inbox state before, inbox state after)."""
    before = _inbox_state(SAMPLES / "hop-thu")
    again = consolidate(SAMPLES / "hop-thu", tmp_path_factory.mktemp("rerun"),
                        load_config(SAMPLES / "tdkt.toml"), run_date=sample_run[0].run_date)
    return again, before, _inbox_state(SAMPLES / "hop-thu")


@pytest.fixture(scope="session")
def results_run(tmp_path_factory) -> tuple[Consolidation, Path]:
    """The sample results inbox consolidated once for the whole session (in one process)."""
    out = tmp_path_factory.mktemp("ket-qua")
    result = consolidate(SAMPLES / "hop-thu-ket-qua", out, load_config(SAMPLES / "tdkt.toml"),
                         round="ket-qua", registration_inbox=SAMPLES / "hop-thu")
    return result, result.out_dir


@pytest.fixture(scope="session")
def results_rerun(results_run, tmp_path_factory) -> Consolidation:
    """The sample results inbox consolidated a second time, on results_run's date."""
    return consolidate(SAMPLES / "hop-thu-ket-qua", tmp_path_factory.mktemp("ket-qua-rerun"),
                       load_config(SAMPLES / "tdkt.toml"), round="ket-qua",
                       registration_inbox=SAMPLES / "hop-thu", run_date=results_run[0].run_date)


@pytest.fixture(scope="session")
def sample_templates(tmp_path_factory):
    """`tdkt templates` run once through the CLI on a copy of the sample office:
    (click result, output folder). Read-only: copy a template before filling it."""
    from click.testing import CliRunner

    from pipeline.cli import main

    root = tmp_path_factory.mktemp("templates")
    for name in OFFICE_FILES:
        shutil.copy(SAMPLES / name, root / name)
    result = CliRunner().invoke(main, ["templates", "--out", str(root / "mau"), "--config",
                                       str(root / "tdkt.toml")])
    return result, root / "mau"


@pytest.fixture(scope="session")
def generated_registrations(tmp_path_factory):
    """The sample registrations generated once (tests.sample_inbox), with a cache of the blank
    results templates shared by the year-end builds below: (folder, Registrations, cache)."""
    from .sample_inbox import build_registrations

    root = tmp_path_factory.mktemp("generated")
    shutil.copy(SAMPLES / "tdkt.toml", root / "tdkt.toml")
    shutil.copy(SAMPLES / "quy-tac-phong.yaml", root / "quy-tac-phong.yaml")
    return root, build_registrations(root), {}


@pytest.fixture(scope="session")
def generated_samples(generated_registrations) -> tuple[Path, dict[str, Any]]:
    """What `python -m tests.sample_inbox` writes, in a temporary folder: (folder, record)."""
    from .sample_inbox import build_year_end

    root, registrations, templates = generated_registrations
    return root, build_year_end(root, registrations, violations=True, templates=templates)


@pytest.fixture(scope="session")
def generated_all_valid(generated_registrations, tmp_path_factory
                        ) -> tuple[Path, dict[str, Any]]:
    """The generated samples with a year-end inbox that breaks no rule: (folder, record)."""
    from .sample_inbox import INBOX, REGISTRY, build_year_end

    source, registrations, templates = generated_registrations
    root = tmp_path_factory.mktemp("all-valid")
    for name in ("tdkt.toml", "quy-tac-phong.yaml", REGISTRY):
        shutil.copy(source / name, root / name)
    shutil.copytree(source / INBOX, root / INBOX)
    return root, build_year_end(root, registrations, violations=False, templates=templates)


@pytest.fixture
def office(tmp_path) -> Callable[..., Path]:
    """A copy of the sample office (config + registry) with an empty inbox; returns its folder."""

    def make(inbox_files: dict[str, bytes] | None = None) -> Path:
        root = tmp_path / "office"
        (root / "hop-thu").mkdir(parents=True)
        for name in OFFICE_FILES:
            shutil.copy(SAMPLES / name, root / name)
        for name, data in (inbox_files or {}).items():
            (root / "hop-thu" / name).write_bytes(data)
        return root

    return make


def table_rows(path: Path, sheet: str, first_header: str) -> list[dict[str, Any]]:
    """Rows of a report table read back with openpyxl, keyed by their (lowest) header text.

    The header row is the one whose first cell is `first_header`; a grouped header above it is
    skipped; reading stops at the totals row, a blank first cell or the end.
    """
    ws = openpyxl.load_workbook(path, read_only=True, data_only=True)[sheet]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    start = next(i for i, r in enumerate(rows) if r and r[0] == first_header)
    headers = list(rows[start])
    below = rows[start + 1] if start + 1 < len(rows) else []
    if below and below[0] is None and any(isinstance(v, str) for v in below):
        headers = [b if b is not None else h for h, b in zip(headers, below, strict=False)]
        start += 1
    out = []
    for row in rows[start + 1:]:
        if not row or row[0] in (None, "Tổng cộng"):
            break
        out.append({h: v for h, v in zip(headers, row, strict=False) if h is not None})
    return out


def totals_row(path: Path, sheet: str, first_header: str) -> dict[str, Any]:
    """The "Tổng cộng" row of a report table."""
    ws = openpyxl.load_workbook(path, read_only=True, data_only=True)[sheet]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    start = next(i for i, r in enumerate(rows) if r and r[0] == first_header)
    headers = list(rows[start])
    below = rows[start + 1]
    if below and below[0] is None:
        headers = [b if b is not None else h for h, b in zip(headers, below, strict=False)]
    total = next(r for r in rows[start:] if r and r[0] == "Tổng cộng")
    return {h: v for h, v in zip(headers, total, strict=False) if h is not None}


def workbook_cells(path: Path) -> dict[str, dict[str, Any]]:
    """Every non-empty cell of every sheet: {sheet: {address: value}}."""
    wb = openpyxl.load_workbook(path)
    return {ws.title: {c.coordinate: c.value for row in ws.iter_rows() for c in row
                       if c.value is not None} for ws in wb.worksheets}


def soffice() -> str | None:
    """LibreOffice's command, when installed."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def convert(path: Path, fmt: str, out_dir: Path) -> Path:
    """Convert with LibreOffice headless (own profile, so parallel runs do not collide)."""
    profile = out_dir / "lo-profile"
    subprocess.run([soffice(), f"-env:UserInstallation=file://{profile}", "--headless",
                    "--convert-to", fmt, "--outdir", str(out_dir), str(path)],
                   check=True, capture_output=True, timeout=240)
    target = out_dir / f"{path.stem}.{fmt.split(':')[0]}"
    assert target.exists(), f"LibreOffice did not write {target}"
    return target
