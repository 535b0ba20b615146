"""Reading and writing in worker processes gives exactly what one process gives."""

from __future__ import annotations

import functools
import json

import pytest

from pipeline import parallel, settings
from pipeline.config import load_config
from pipeline.engine import consolidate

from .conftest import SAMPLES, workbook_cells


def _manifest(out):
    data = json.loads((out / settings.MANIFEST_FILE).read_text(encoding="utf-8"))
    data.pop("generated_at")
    return data


@pytest.mark.skipif(not parallel.can_fork(), reason="workbooks are written in forked workers")
@pytest.mark.parametrize("inbox, round_", [
    # Both in `make test-slow` (CI runs it); the golden test checks the workers' outputs.
    pytest.param("hop-thu", "dang-ky", marks=pytest.mark.slow),
    pytest.param("hop-thu-ket-qua", "ket-qua", marks=pytest.mark.slow)])
def test_parallel_run_equals_serial_run(request, tmp_path, monkeypatch, inbox, round_):
    config = load_config(SAMPLES / "tdkt.toml")
    # The serial run: the session's consolidation of the same inbox (fewer files than
    # PARALLEL_MIN_FILES, so read and written in one process).
    first = request.getfixturevalue({"dang-ky": "sample_run", "ket-qua": "results_run"}[round_])[0]
    assert len(list((SAMPLES / inbox).iterdir())) < settings.PARALLEL_MIN_FILES
    monkeypatch.setattr(settings, "PARALLEL_MIN_FILES", 2)
    monkeypatch.setattr(settings, "MAX_WORKERS", 2)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    again = consolidate(SAMPLES / inbox, tmp_path / "parallel", config, round=round_,
                        registration_inbox=SAMPLES / "hop-thu", run_date=first.run_date)
    assert_same_run(first, again)


def assert_same_run(first, again) -> None:
    """Two consolidations of one inbox found and wrote exactly the same (cell by cell, and
    the manifests but for their times)."""
    assert [f.to_dict() for f in first.findings] == [f.to_dict() for f in again.findings]
    written = sorted(p.relative_to(first.out_dir) for p in first.out_dir.rglob("*.xlsx"))
    assert written == sorted(p.relative_to(again.out_dir) for p in again.out_dir.rglob("*.xlsx"))
    assert len(written) > 30
    for relative in written:
        assert workbook_cells(first.out_dir / relative) == \
            workbook_cells(again.out_dir / relative), relative
    assert _manifest(first.out_dir) == _manifest(again.out_dir)


def test_parallel_jobs_keep_their_order_and_chunks_cover_everything(monkeypatch):
    monkeypatch.setattr(settings, "PARALLEL_MIN_FILES", 2)
    jobs = [functools.partial(pow, i, 2) for i in range(25)]  # picklable: spawn runs them too
    assert parallel.run_jobs(jobs, 2) == [i * i for i in range(25)]
    pieces = parallel.chunks(list(range(25)), 4)
    assert [x for piece in pieces for x in piece] == list(range(25))
    assert all(pieces) and len(pieces) <= 4
    assert parallel.worker_count(1) == 1
