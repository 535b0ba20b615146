"""Form definitions are data: they load, bad ones fail at load, and changes need no code."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import load_config
from pipeline.engine import consolidation
from pipeline.findings import DefinitionError, catalogue
from pipeline.forms.definitions import load_forms
from pipeline.forms.template import UnitInfo, write_template
from pipeline.forms.validate import build_schema
from pipeline.settings import FORMS_DIR, LISTS_SHEET, VOCAB_DIR

from .test_roundtrip import CODE, _fill_as_school, _unit

FILES = Path(__file__).parent / "files"


# General


def test_forms_every_definition_loads(forms):
    assert {f.key for f in forms.forms} >= {"dang-ky 2025.1", "dang-ky 2024.1", "dang-ky cu",
                                            "danh-muc 2025.1"}
    assert forms.current("dang-ky").version == "2025.1"
    for form in forms.forms:
        for sheet in form.sheets:
            assert sheet.columns
            schema = build_schema(sheet, forms.vocabs)
            assert set(schema.columns) == set(sheet.column_ids)
            for check in sheet.checks:
                assert check.code in catalogue()


def test_forms_every_vocabulary_value_is_reachable_by_its_label(forms):
    for vocab in forms.vocabs.values():
        for value in vocab.values:
            assert vocab.exact[value.label.lower()] == value.code


def _copy_schemas(tmp_path: Path) -> tuple[Path, Path]:
    forms_dir, vocab_dir = tmp_path / "forms", tmp_path / "vocab"
    shutil.copytree(FORMS_DIR, forms_dir)
    shutil.copytree(VOCAB_DIR, vocab_dir)
    return forms_dir, vocab_dir


@pytest.mark.parametrize(("old", "new", "message"), [
    ("type: choice, choices: sexes", "type: choice, choices: genders", "unknown choices"),
    ("{id: ethnicity, header: Dân tộc, type: text", "{id: ethnicity, header: Dân tộc, type: txt",
     "unknown column type"),
    ("check: required_if", "check: required_unless", "unknown check"),
    ("code: missing-initiative", "code: no-initiative", "not in the catalogue"),
    ("when_column: title", "when_column: titel", "unknown columns"),
])
def test_forms_unknown_names_fail_at_load(tmp_path, old, new, message):
    forms_dir, vocab_dir = _copy_schemas(tmp_path)
    path = forms_dir / "dang-ky" / "2025.1.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(DefinitionError, match=message):
        load_forms(forms_dir, vocab_dir)


# A new version, a new column and a new vocabulary value, by data only


@pytest.fixture
def changed_forms(tmp_path):
    forms_dir, vocab_dir = _copy_schemas(tmp_path)
    current = forms_dir / "dang-ky" / "2025.1.yaml"
    current.write_text(current.read_text(encoding="utf-8").replace("current: true",
                                                                   "current: false"),
                       encoding="utf-8")
    shutil.copy(FILES / "forms-2026" / "2026.1.yaml", forms_dir / "dang-ky" / "2026.1.yaml")
    shutil.copy(FILES / "forms-2026" / "unions.yaml", vocab_dir / "unions.yaml")
    titles_path = vocab_dir / "individual_titles.yaml"
    titles = yaml.safe_load(titles_path.read_text(encoding="utf-8"))
    titles["values"].insert(3, {"code": "cstd_bo", "label": "Chiến sĩ thi đua cấp bộ",
                                "abbr": "CSTĐ bộ", "rank": 3, "synonyms": ["CSTĐ cấp bộ"]})
    titles_path.write_text(yaml.safe_dump(titles, allow_unicode=True), encoding="utf-8")
    return load_forms(forms_dir, vocab_dir)


def test_forms_template_follows_a_data_change(changed_forms, tmp_path):
    form = changed_forms.current("dang-ky")
    assert form.version == "2026.1"
    config = load_config(Path(__file__).parent.parent / "input_samples" / "tdkt.toml")
    path = write_template(form, changed_forms.vocabs, UnitInfo(CODE, "Trường X", "TH", 20),
                          tmp_path / "t.xlsx", "2025-2026", config.office_for())
    wb = openpyxl.load_workbook(path)
    headers = [c.value for row in wb["Cá nhân"].iter_rows(max_row=10) for c in row]
    assert "Đoàn thể" in headers
    lists = [c.value for row in wb[LISTS_SHEET].iter_rows() for c in row]
    assert "Công đoàn" in lists and "Chiến sĩ thi đua cấp bộ" in lists
    assert wb["_tdkt"]["B1"].value == "2026.1"


def test_forms_reader_and_schema_follow_a_data_change(changed_forms, office, tmp_path):
    root = office()
    config = load_config(root / "tdkt.toml")
    form = changed_forms.current("dang-ky")
    path = root / "hop-thu" / "dang-ky.xlsx"
    write_template(form, changed_forms.vocabs, UnitInfo(CODE, "Trường X", "TH", 20), path,
                   "2025-2026", config.office_for())
    unit = _unit(changed_forms)
    _fill_as_school(path, unit, changed_forms)
    wb = openpyxl.load_workbook(path)
    ws = wb["Cá nhân"]
    header = next(r for r in range(1, 30) if ws.cell(r, 1).value == "STT")
    col = {ws.cell(header, c).value: c for c in range(1, ws.max_column + 1)}
    ws.cell(header + 1, col["Đoàn thể"]).value = "Công đoàn"
    ws.cell(header + 2, col["Danh hiệu thi đua đăng ký"]).value = "CSTĐ cấp bộ"
    wb.save(path)
    schema = build_schema(form.sheet("staff"), changed_forms.vocabs)
    assert "union" in schema.columns
    result = consolidation(root / "hop-thu", config, forms=changed_forms)
    assert [f.message for f in result.findings] == []
    assert result.units.loc[CODE, "title:cstd_bo"] == 1
    assert result.staff.loc[0, "union"] == "cong_doan"
    # The same file read with the definitions in schemas/: the new column and value are unknown.
    plain = consolidation(root / "hop-thu", config)
    codes = sorted((f.code, f.cell[0]) for f in plain.findings if f.cell)
    assert ("unknown-column", col_letter(col["Đoàn thể"])) in codes
    assert ("not-in-list", col_letter(col["Danh hiệu thi đua đăng ký"])) in codes


def col_letter(index: int) -> str:
    return openpyxl.utils.get_column_letter(index)


_VALUES = st.one_of(st.none(), st.integers(-5, 5), st.booleans(), st.floats(allow_nan=True),
                    st.text(max_size=3), st.dates(), st.datetimes(), st.sampled_from(
                        [pd.NaT, pd.NA, pd.Timestamp("2020-01-02"), np.int64(3)]))


@given(st.lists(_VALUES, max_size=12))
def test_forms_type_checks_judge_each_value_as_the_form_says(values):
    """The checks by column type (taken at once for a column of the right kinds): a date is a
    date, an integer an int but not a bool, a number an int or float but not a bool; an empty
    cell passes them all."""
    from pipeline.forms.validate import _is_date, _is_integer, _is_number

    series = pd.Series(values, dtype=object, index=range(10, 10 + len(values)))
    for check, valid in ((_is_date, lambda v: isinstance(v, dt.date)),
                         (_is_integer, lambda v: isinstance(v, int) and not isinstance(v, bool)),
                         (_is_number, lambda v: isinstance(v, (int, float))
                          and not isinstance(v, bool))):
        judged = check(series)
        assert list(judged.index) == list(series.index)
        assert judged.tolist() == [v is None or valid(v) for v in values]


def test_forms_cross_checks_pass_rows_with_every_cell_empty(forms):
    """A row whose every cell is empty gives no cross-check finding (Pandera is not asked to
    skip such rows: each check passes what it cannot judge)."""
    from pipeline.forms.validate import validation_findings
    from pipeline.ingest.frames import FrameParts

    sheets = [(f, s) for f in forms.forms for s in f.sheets if s.checks]
    assert {c.check for _, s in sheets for c in s.checks} == {"unique", "required_if",
                                                              "not_above"}
    for form, sheet in sheets:
        ids = sheet.column_ids
        frame = pd.DataFrame([[None] * len(ids)] * 2, columns=ids, index=[10, 11],
                             dtype=object)
        found = validation_findings(FrameParts.of_frame(frame), sheet, forms.vocabs,
                                    letters={c: "A" for c in ids}, file="t.xlsx",
                                    sheet_name=sheet.name, unit=None)
        codes = {c.code for c in sheet.checks}
        assert [f for f in found if f.code in codes] == [], (form.key, sheet.id)


def test_forms_validation_loads_without_hypothesis_and_still_finds_faults():
    """A run (a process that has not loaded hypothesis) loads Pandera's checks without its
    data synthesis: hypothesis is not imported, and a schema still finds a value outside its
    vocabulary and passes a good one; hypothesis can still be imported afterwards."""
    import subprocess
    import sys

    script = """
import sys
import pandas as pd
from pipeline.forms.definitions import load_forms
from pipeline.forms.validate import build_schema
from pandera.errors import SchemaErrors
assert "hypothesis" not in sys.modules
forms = load_forms()
sheet = forms.current("dang-ky").sheet("staff")
schema = build_schema(sheet, forms.vocabs)
column = next(c for c in sheet.columns if c.type == "choice")
good = forms.vocabs[column.choices].codes[0]
frame = pd.DataFrame({c.id: [None, None] for c in sheet.columns}, dtype=object)
frame[column.id] = pd.Series([good, "không có trong danh mục"], dtype=object)
try:
    schema.validate(frame, lazy=True)
    failed = []
except SchemaErrors as errors:
    failed = errors.failure_cases
    failed = failed[failed["column"] == column.id]["index"].tolist()
assert failed == [1], failed
assert "hypothesis" not in sys.modules
import hypothesis
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_forms_validation_library_loads_only_when_a_run_validates():
    """The engine, the command line and every round load without Pandera: the readers a run
    starts at once are forked without it (they never validate), and the run loads it while
    they read (the first validation: the registry's)."""
    import subprocess
    import sys

    script = ("import sys, pipeline.cli, pipeline.engine\n"
              "from pipeline.rounds.base import rounds\n"
              "rounds()\n"
              "assert 'pandera' not in sys.modules, 'pandera loaded'\n"
              "from pipeline.ingest.submission import validated_submissions\n"
              "validated_submissions([], {})\n"
              "assert 'pandera' in sys.modules\n"
              "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
