"""Worker processes started the Windows way (spawn: a fresh interpreter that receives its jobs
pickled) write exactly what one process writes, for both rounds of the sample office."""

from __future__ import annotations

import pytest

from pipeline import parallel, settings
from pipeline.config import load_config
from pipeline.engine import consolidate

from .conftest import SAMPLES
from .test_parallel import assert_same_run


def _force_spawn(monkeypatch) -> list[str]:
    """Two spawned worker processes for reading and for writing, whatever the inbox's size;
    returns the start method of every reader process and writers' pool started from now on."""
    monkeypatch.setenv(settings.START_METHOD_ENV, "spawn")
    monkeypatch.setattr(settings, "PARALLEL_MIN_FILES", 2)
    monkeypatch.setattr(settings, "MAX_WORKERS", 2)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    started: list[str] = []
    real = parallel.worker_context

    def spy():
        context = real()
        started.append(context.get_start_method())
        return context

    monkeypatch.setattr(parallel, "worker_context", spy)
    return started


@pytest.mark.parametrize("inbox, round_", [("hop-thu", "dang-ky"),
                                            ("hop-thu-ket-qua", "ket-qua")])
@pytest.mark.slow  # both rounds twice with spawned workers (~35 s): `make test-slow`, in CI
def test_spawn_run_equals_serial_run(request, tmp_path, monkeypatch, inbox, round_):
    # The serial run: the session's consolidation of the same inbox (fewer files than
    # PARALLEL_MIN_FILES, so read and written in one process).
    first = request.getfixturevalue({"dang-ky": "sample_run", "ket-qua": "results_run"}[round_])[0]
    spawned = _force_spawn(monkeypatch)
    again = consolidate(SAMPLES / inbox, tmp_path / "spawn", load_config(SAMPLES / "tdkt.toml"),
                        round=round_, registration_inbox=SAMPLES / "hop-thu",
                        run_date=first.run_date)
    # Read by two spawned readers per inbox (this round's, and the registrations for the
    # results round: the store is new) and written by a pool of spawned workers; each
    # registry workbook is read by a spawned reader of its own.
    assert set(spawned) == {"spawn"}
    assert len(spawned) >= {"dang-ky": 2 + 1, "ket-qua": 2 + 2 + 1}[round_]
    assert_same_run(first, again)


def test_spawn_start_method_is_forced_only_to_one_the_platform_has(monkeypatch):
    monkeypatch.setenv(settings.START_METHOD_ENV, " Spawn ")
    assert parallel.start_method() == "spawn"
    assert not parallel.can_fork()
    monkeypatch.setenv(settings.START_METHOD_ENV, "no-such-method")
    assert parallel.start_method() == "fork"  # Linux: the platform's own
    monkeypatch.delenv(settings.START_METHOD_ENV)
    assert parallel.start_method() == "fork" and parallel.can_fork()
