"""Outputs change only on purpose: both rounds of the samples and of a generated 300-school
office are compared with committed golden copies, every workbook cell by cell and every
manifest (its time of writing aside). Regenerate with `make golden` and say why."""

from __future__ import annotations

import shutil

import pytest

from . import golden


def _assert_same(expected: dict, actual: dict) -> None:
    diff = golden.differences(expected, actual)
    assert not diff, "outputs differ from the golden copy (make golden if on purpose):\n" + \
        "\n".join(diff)


def test_sample_outputs_equal_the_golden_copy(tmp_path):
    """Both rounds as make consolidate runs them, the registration inbox (a copy) removed
    once its round is recorded: the year-end round reads the registrations from the history
    store, no registration file, and writes what the golden copy holds (issue 16)."""
    registrations = tmp_path / "hop-thu"
    shutil.copytree(golden.SAMPLES / "hop-thu", registrations)
    result = golden.run_samples(tmp_path / "out", registrations, forget=True)
    assert not registrations.exists() and result.registration_source == "store"
    snapshot = golden.snapshot(tmp_path / "out")
    assert len(snapshot) > 80  # both rounds: office, Sở, feedback workbooks, manifests
    _assert_same(golden.load(golden.SAMPLES_GOLDEN), snapshot)


@pytest.mark.slow
def test_province_outputs_equal_the_golden_copy(tmp_path):
    golden.run_province(tmp_path / "tinh", tmp_path / "out")
    snapshot = golden.snapshot(tmp_path / "out", compact=True)
    assert sum(name.endswith(".xlsx") for name in snapshot) > 300
    _assert_same(golden.load(golden.PROVINCE_GOLDEN), snapshot)


def test_differences_name_the_cell_that_changed():
    old = {"a.xlsx": {"Sheet": [["x", 1], ["y", 2]]}, "gone.xlsx": {}}
    new = {"a.xlsx": {"Sheet": [["x", 1], ["y", 3]]}, "new.xlsx": {}}
    assert golden.differences(old, new) == [
        "a.xlsx [Sheet] row 2: ['y', 2] → ['y', 3]", "gone.xlsx: no longer written",
        "new.xlsx: newly written"]
