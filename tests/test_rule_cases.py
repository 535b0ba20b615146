"""The hand-made acceptance table (tests/rule_cases.yaml) against the engine, run by run.

Each run: the table's cases typed into templates made by `tdkt templates`, consolidated with
`tdkt consolidate --round ket-qua` and a fresh history store; every decision in manifest.json and
tong-hop-phong.xlsx must equal the table. All differences of a run are collected, then asserted.
"""

from __future__ import annotations

import pytest

from pipeline.forms.definitions import load_forms

from . import rule_cases_harness as h

TABLE = h.load_table()
RUNS = h.runs(TABLE)


def test_rule_cases_table_is_well_formed():
    assert h.table_problems(TABLE) == []


@pytest.fixture(scope="module")
def forms():
    return load_forms()


# Every run of the table in `make test-slow` (CI); `make test` keeps the current year and the
# amended law of the next (each run consolidates a whole office, ~10 s).
FAST_RUNS = {"2025-2026/mac-dinh", "2026-2027/mac-dinh/sua-doi-2026"}


@pytest.mark.parametrize("run", [pytest.param(r, id=r.id, marks=() if r.id in FAST_RUNS
                                              else pytest.mark.slow) for r in RUNS])
def test_rule_cases_decisions_equal_the_table(run, forms, tmp_path):
    office = h.build_office(tmp_path / "office", TABLE, run, forms)
    h.consolidate(office, run)
    written = h.read_written(office)
    mismatches = h.compare(TABLE, run, written, forms)
    assert not mismatches, f"{len(mismatches)} differences in {run.id}:\n" + "\n".join(mismatches)
