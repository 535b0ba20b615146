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
from pipeline.engine import Consolidation, consolidate
from pipeline.forms.definitions import FormSet, load_forms

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "input_samples"


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


@pytest.fixture
def office(tmp_path) -> Callable[..., Path]:
    """A copy of the sample office (config + registry) with an empty inbox; returns its folder."""

    def make(inbox_files: dict[str, bytes] | None = None) -> Path:
        root = tmp_path / "office"
        (root / "hop-thu").mkdir(parents=True)
        for name in ("tdkt.toml", "danh-muc-don-vi.xlsx", "phan-bo-khen-thuong.xlsx"):
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
