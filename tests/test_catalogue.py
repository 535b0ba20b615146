"""The finding catalogue: complete, Vietnamese, and every code produced by some test."""

from __future__ import annotations

import re
import unicodedata

import pytest

from pipeline.findings import Finding, Severity, catalogue

from .test_history_flow import COVERED as HISTORY_COVERED
from .test_history_store import COVERED as STORE_COVERED
from .test_hostile import COVERED as HOSTILE_COVERED
from .test_hostile_sheets import COVERED as SHEETS_COVERED
from .test_messages import COVERED as MESSAGES_COVERED
from .test_province_registry import COVERED as PROVINCE_REGISTRY_COVERED
from .test_province_reports import COVERED as PROVINCE_REPORTS_COVERED
from .test_read import COVERED
from .test_results import COVERED as RESULTS_COVERED
from .test_safety import COVERED as SAFETY_COVERED

CODES = sorted(catalogue())


@pytest.mark.parametrize("code", CODES)
def test_catalogue_entry_is_complete_and_vietnamese(code):
    entry = catalogue()[code]
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", code)
    assert entry.severity in set(Severity)
    assert entry.scope in {"file", "sheet", "row", "unit"}
    for text in (entry.message, entry.hint):
        assert text and unicodedata.is_normalized("NFC", text)
    finding = Finding.make(code, "tệp.xlsx", sheet="Cá nhân", cell="F12", column="Cột",
                           value="giá trị", expected="cần")
    assert "{" not in finding.message and "{" not in finding.hint


def test_catalogue_every_code_is_produced_by_a_test(expected):
    planted = {f[0] for spec in expected["files"].values() for f in spec["findings"]}
    covered = COVERED | RESULTS_COVERED | HISTORY_COVERED | HOSTILE_COVERED | SHEETS_COVERED \
        | SAFETY_COVERED
    covered |= STORE_COVERED | MESSAGES_COVERED | PROVINCE_REGISTRY_COVERED
    covered |= PROVINCE_REPORTS_COVERED
    assert set(CODES) - planted - covered == set()


def test_catalogue_unknown_code_is_our_mistake():
    from pipeline.findings import DefinitionError

    with pytest.raises(DefinitionError):
        Finding.make("no-such-code", "x.xlsx")


def test_catalogue_every_code_a_school_fixes_in_a_cell_says_how(expected):
    # the feedback copy marks these cells; the comment tells what to do there (issue 14)
    in_cells = {f[0] for spec in expected["files"].values() for f in spec["findings"]
                if f[2] and not f[2].isdigit()}
    assert in_cells and all(catalogue()[code].fix != catalogue()[code].hint
                            for code in in_cells), in_cells
    for code, entry in catalogue().items():
        assert unicodedata.is_normalized("NFC", entry.fix), code
        finding = Finding.make(code, "tệp.xlsx", sheet="Cá nhân", cell="F12", column="Cột",
                               value="giá trị", expected="cần")
        assert "{" not in finding.fix and finding.fix, code
