"""Golden copies of what tdkt writes: every output workbook cell by cell and every manifest.

Two inputs are kept: the sample office (`input_samples/`, both rounds; every cell is stored)
and a generated 300-school office (both rounds; each sheet is stored as digests of blocks of
rows, which keeps the file small and still names the sheet and rows that changed).

A change to an output is deliberate: regenerate with `make golden` (or
`python -m tests.golden --update`) and say why in the commit.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from python_calamine import CalamineWorkbook

from pipeline import settings
from pipeline.config import load_config
from pipeline.engine import consolidate

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "input_samples"
GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
SAMPLES_GOLDEN = GOLDEN_DIR / "samples.json.gz"
PROVINCE_GOLDEN = GOLDEN_DIR / "province-300.json.gz"
PROVINCE_UNITS = 300
# The date the office runs on, fixed so that the date lines of the outputs do not move.
RUN_DATE = dt.date(2026, 5, 25)
# Rows per digest in the compact (province) snapshot.
BLOCK_ROWS = 100
# Output files that are not reports: the run log holds timings, the store is tested apart.
_SKIPPED = {settings.RUN_LOG, settings.STORE_FILE, settings.LOCK_FILE}


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time | dt.timedelta):
        return f"{type(value).__name__}:{value}"
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def workbook_cells(path: Path) -> dict[str, list[list[Any]]]:
    """Every sheet of a workbook (hidden ones too) as rows of values, trailing blanks cut."""
    book = CalamineWorkbook.from_path(str(path))
    sheets = {}
    for name in book.sheet_names:
        rows = []
        for row in book.get_sheet_by_name(name).to_python(skip_empty_area=False):
            values = [_json_value(v) if v != "" else None for v in row]
            while values and values[-1] is None:
                values.pop()
            rows.append(values)
        while rows and not rows[-1]:
            rows.pop()
        sheets[name] = rows
    return sheets


def _digests(sheets: dict[str, list[list[Any]]]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, rows in sheets.items():
        blocks = [hashlib.sha256(json.dumps(rows[i:i + BLOCK_ROWS], ensure_ascii=False)
                                 .encode()).hexdigest()[:16]
                  for i in range(0, len(rows), BLOCK_ROWS)]
        out[name] = {"rows": len(rows), "blocks": blocks}
    return out


def manifest(path: Path) -> dict[str, Any]:
    """A manifest without the moment it was written."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data.pop("generated_at", None)
    return data


def snapshot(out: Path, *, compact: bool = False) -> dict[str, Any]:
    """Every output under `out` (both rounds): workbooks as cells (or digests), manifests."""
    files: dict[str, Any] = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        relative = path.relative_to(out).as_posix()
        if path.name in _SKIPPED:
            continue
        if path.suffix == ".xlsx":
            cells = workbook_cells(path)
            files[relative] = _digests(cells) if compact else cells
        elif path.name == settings.MANIFEST_FILE:
            files[relative] = manifest(path)
        else:
            files[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def differences(expected: dict[str, Any], actual: dict[str, Any], limit: int = 25) -> list[str]:
    """Where two snapshots differ: file, sheet, row and column, with both values."""
    found: list[str] = []
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            found.append(f"{name}: no longer written")
        elif name not in expected:
            found.append(f"{name}: newly written")
        elif expected[name] != actual[name]:
            found += _file_differences(name, expected[name], actual[name])
        if len(found) >= limit:
            break
    return found[:limit]


def _file_differences(name: str, old: Any, new: Any) -> list[str]:
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [f"{name}: {str(old)[:80]} → {str(new)[:80]}"]
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, list) and isinstance(b, list) and a and isinstance(a[0], list):
            for r in range(max(len(a), len(b))):
                ra = a[r] if r < len(a) else None
                rb = b[r] if r < len(b) else None
                if ra != rb:
                    out.append(f"{name} [{key}] row {r + 1}: {ra} → {rb}")
                    if len(out) > 10:
                        return out
        else:
            out.append(f"{name} [{key}]: {str(a)[:300]} → {str(b)[:300]}")
    return out


def run_samples(out: Path, registrations: Path = SAMPLES / "hop-thu",
                forget: bool = False) -> Any:
    """Both rounds of the sample office into `out`, as `make consolidate` runs them, the
    registrations read from `registrations` (a copy of the samples' inbox); with `forget`
    that folder is removed between the rounds. Returns the year-end round's result."""
    config = load_config(SAMPLES / "tdkt.toml")
    consolidate(registrations, out, config, run_date=RUN_DATE)
    if forget:
        shutil.rmtree(registrations)
    return consolidate(SAMPLES / "hop-thu-ket-qua", out, config, round="ket-qua",
                       registration_inbox=registrations, run_date=RUN_DATE)


def run_province(root: Path, out: Path) -> None:
    """Both rounds of a generated 300-school office into `out`."""
    from .province import CONFIG, INBOX, build_province, build_province_results

    units = build_province(root, PROVINCE_UNITS)
    results = build_province_results(root, units)
    config = load_config(root / CONFIG)
    consolidate(root / INBOX, out, config, run_date=RUN_DATE)
    consolidate(results, out, config, round="ket-qua", registration_inbox=root / INBOX,
                run_date=RUN_DATE)


def load(path: Path) -> dict[str, Any]:
    """A stored golden snapshot."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def save(path: Path, data: dict[str, Any]) -> None:
    """Store a golden snapshot (gzip without a timestamp: the same outputs, the same bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, ensure_ascii=False, indent=0, sort_keys=True)
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle:
        handle.write(text.encode("utf-8"))


def update() -> None:
    """Rewrite both golden snapshots from what the code writes today."""
    work = Path(tempfile.mkdtemp(prefix="tdkt-golden-"))
    try:
        run_samples(work / "samples")
        save(SAMPLES_GOLDEN, snapshot(work / "samples"))
        run_province(work / "tinh", work / "tinh-out")
        save(PROVINCE_GOLDEN, snapshot(work / "tinh-out", compact=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for path in (SAMPLES_GOLDEN, PROVINCE_GOLDEN):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    if "--update" not in sys.argv:
        sys.exit("usage: python -m tests.golden --update")
    update()
