"""Laws that hold for every input: text helpers, and totals that add up for any valid batch."""

from __future__ import annotations

import datetime as dt
import shutil
import unicodedata
from collections import Counter

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.config import load_config
from pipeline.engine import consolidation
from pipeline.forms.definitions import load_forms
from pipeline.ingest.normalize import Context, _normalized_column, normalized_text, normalized_value
from pipeline.ingest.read import CellProblem
from pipeline.rules.aggregate import COUNT_COLUMNS
from pipeline.text import fold, name_sort_key, nfc

from .conftest import SAMPLES
from .sample_inbox import SCHOOL_YEAR, Person, Unit, filled_template

FORMS = load_forms()
CONFIG = load_config(SAMPLES / "tdkt.toml")
REGISTRY_CODES = ["01001", "01002", "02001", "02005", "03001", "04001", "05001"]
VIETNAMESE = st.text(alphabet="aăâbcdđeêghiklmnoôơpqrstuưvxyáàảãạấầẩẫậéèẻẽẹếềểễệíìỉĩịóòỏõọ"
                     "ốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ AĂÂĐÊÔƠƯ", min_size=1, max_size=30)


# Text


@given(st.text())
def test_properties_nfc_and_fold_are_idempotent(text):
    assert nfc(nfc(text)) == nfc(text)
    assert fold(fold(text)) == fold(text)
    assert fold(unicodedata.normalize("NFD", text)) == fold(text)


@given(st.lists(VIETNAMESE.filter(str.strip), min_size=1, max_size=12))
def test_properties_name_sort_key_is_a_total_order(names):
    keys = [name_sort_key(n) for n in sorted(names, key=name_sort_key)]
    assert keys == sorted(keys)
    assert keys == [name_sort_key(n) for n in sorted(reversed(names), key=name_sort_key)]
    for name in names:
        assert name_sort_key(unicodedata.normalize("NFD", name)) == name_sort_key(name)


def test_properties_name_sort_key_orders_the_vietnamese_way():
    names = ["Trần Văn Bình", "Lê Thị Ánh", "Nguyễn Văn An", "Phạm Thị Ân", "Đỗ Văn Dũng",
             "Vũ Thị Đào", "Hồ Thị Ảnh"]
    assert sorted(names, key=name_sort_key) == [
        "Nguyễn Văn An", "Hồ Thị Ảnh", "Lê Thị Ánh", "Phạm Thị Ân", "Trần Văn Bình",
        "Đỗ Văn Dũng", "Vũ Thị Đào"]


@given(st.one_of(st.text(), VIETNAMESE))
def test_properties_normalising_twice_changes_nothing(text):
    once, _ = normalized_text(text)
    if once is not None:
        again, fix = normalized_text(once)
        assert again == once and fix is None


# Every column type of the forms once, with a form's vocabularies and a registry's codes.
COLUMNS = {c.type: c for f in FORMS.forms for sh in f.sheets for c in (*sh.columns, *sh.fields)}
CONTEXT = Context(vocabs=FORMS.vocabs, unit_codes=frozenset(REGISTRY_CODES))
CELL = st.one_of(
    st.none(), st.integers(-3, 50000), st.floats(allow_nan=True), st.booleans(),
    st.sampled_from([1, 1.0, 2.5, 1985, 31000.0, "1", "01001", "1.234", "85,5", "#REF!",
                     " #N/A ", "Giáo viên", "giao vien", "Nữ", "x" * 300, "y" * 1500, "12/03/1985",
                     "1985-03-12", "Nguye\u0302\u0303n", "A\u200bB"]),
    st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1)),
    st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2100, 1, 1)),
    st.builds(CellProblem, st.sampled_from(["error-cell", "formula-no-value"]),
              st.sampled_from(["#DIV/0!", "=A1"])),
    VIETNAMESE)


@settings(max_examples=300)
@example("integer", [3.0, None]).via("a whole number typed as a float")
@example("date", [dt.date(1900, 1, 1), dt.date(1985, 3, 12)]).via("a day out of range")
@example("date", [dt.datetime(1985, 3, 12, 8, 30)]).via("a date cell with a time")
@example("text", ["#REF!", "Lê Văn An"]).via("an error typed as text")
@example("text", ["z" * 1500]).via("a text longer than allowed")
@given(st.sampled_from(sorted(COLUMNS)),
       st.one_of(st.lists(CELL, max_size=12),
                 st.lists(st.one_of(st.none(), st.integers(-5, 10**6)), max_size=12),
                 st.lists(st.one_of(st.none(), st.integers(), st.floats(),
                                    st.integers(-100, 100).map(float)), max_size=12),
                 st.lists(st.one_of(st.none(), st.dates(dt.date(1930, 1, 1),
                                                        dt.date(2040, 1, 1))), max_size=12),
                 st.lists(st.one_of(st.none(), VIETNAMESE, st.sampled_from(
                     ["#REF!", "z" * 1500, "Lê Văn " * 20])), max_size=12)))
def test_properties_a_column_normalised_at_once_is_each_cell_normalised(kind, values):
    """What a reader does to a whole column (each distinct value once, numbers and in-range
    dates kept as read, texts straight to the texts seen before) is normalized_value of each
    cell: the same values, the same corrections at the same places."""
    column = COLUMNS[kind]
    one_by_one = [normalized_value(v, column, CONTEXT) for v in values]
    out, fixes = _normalized_column(list(values), column, CONTEXT)
    assert out == [value for value, _ in one_by_one]
    assert [type(v) for v in out] == [type(value) for value, _ in one_by_one]
    assert fixes == [(n, fix) for n, (_, fix) in enumerate(one_by_one) if fix is not None]


# Totals


TITLES = FORMS.vocabs["individual_titles"].codes
GROUP_POSITIONS = {"CBQL": "pho_hieu_truong", "GV": "giao_vien", "NV": "van_thu"}
person = st.tuples(st.sampled_from(TITLES), st.sampled_from(sorted(GROUP_POSITIONS)),
                   st.sampled_from(["nam", "nu"]))
unit_plan = st.tuples(st.lists(person, min_size=1, max_size=8),
                      st.lists(st.sampled_from(FORMS.vocabs["collective_titles"].codes),
                               min_size=1, max_size=3))
batch = st.dictionaries(st.sampled_from(REGISTRY_CODES), unit_plan, min_size=1, max_size=4)


@pytest.mark.slow  # eight consolidations: `make test-slow`, in CI
@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=batch)
def test_properties_totals_add_up_for_any_valid_batch(plan, tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    inbox = root / "hop-thu"
    inbox.mkdir()
    for name in ("tdkt.toml", "quy-tac-phong.yaml", "danh-muc-don-vi.xlsx"):
        shutil.copy(SAMPLES / name, root / name)
    config = load_config(root / "tdkt.toml")
    registry = consolidation(inbox, config).units
    for code, (people, collectives) in plan.items():
        row = registry.loc[code]
        unit = Unit(code, row["unit_name"], row["level"], row["block"], False, 1, 1, 1, "")
        unit.people = [Person(f"Nguyễn Văn {chr(65 + i)}", dt.date(1980, 1, 1 + i), sex, "Kinh",
                              GROUP_POSITIONS[group], group, title, None,
                              "Sáng kiến" if title in ("cstd_co_so", "cstd_tinh") else None)
                       for i, (title, group, sex) in enumerate(people)]
        unit.collectives = [{"collective_name": f"Tổ {i + 1}", "collective_kind": "to_chuyen_mon",
                             "members": 5, "collective_title": t, "commendation": None}
                            for i, t in enumerate(collectives)]
        filled_template(FORMS.current("dang-ky"), FORMS, unit, inbox / f"{code}.xlsx",
                        config.office_for(SCHOOL_YEAR), dt.date(2025, 10, 1))
    result = consolidation(inbox, config)
    assert [f for f in result.findings if f.code != "quota-exceeded"] == []
    summed = [c for c in result.units.columns if c in COUNT_COLUMNS
              or c.startswith(("title:", "collective:"))]
    grand = result.units[summed].sum()
    for table in (result.by_level, result.by_block):
        assert (table[summed].sum() == grand).all()
    titles = Counter(t for people, _ in plan.values() for t, _, _ in people)
    for title in TITLES:
        assert grand[f"title:{title}"] == titles[title]
    assert grand["registered"] == sum(n for t, n in titles.items() if t != "khong_dang_ky")
    collectives = Counter(t for _, groups in plan.values() for t in groups)
    for title in FORMS.vocabs["collective_titles"].codes:
        assert grand[f"collective:{title}"] == collectives[title]
    assert grand["submitted"] == len(plan)
    assert grand["expected"] == len(registry)


_CODES = st.sampled_from(["lao_dong_tien_tien", "cstd_co_so", "khong_dang_ky", None, float("nan")])


@given(st.lists(st.tuples(st.sampled_from(["01001", "01002", "02001", None]), _CODES),
                min_size=1, max_size=40))
@settings(max_examples=60, deadline=None)
def test_properties_title_counts_are_pandas_crosstab_s(rows):
    """aggregate._counts (positions and bincount) counts what pd.crosstab counts on the unit
    table's units, missing values and units the table lacks left out; _per_unit what a
    groupby's sizes are."""
    import numpy as np
    import pandas as pd

    from pipeline.rules.aggregate import _counts, _per_unit, _positions

    frame = pd.DataFrame(rows, columns=["unit_code", "title"])
    units = pd.Index(["01001", "01002", "03003"])  # rows of 02001: a unit the table lacks
    codes = ["cstd_co_so", "lao_dong_tien_tien", "chien_si_thi_dua_cap_tinh"]
    expected = pd.crosstab(frame["unit_code"], frame["title"]).reindex(
        index=units, columns=codes, fill_value=0)
    at = _positions(frame["unit_code"], units)
    assert _counts(at, frame["title"], codes, len(units)).tolist() \
        == expected.to_numpy().tolist()
    sizes = frame.groupby("unit_code").size().reindex(units, fill_value=0)
    pd.testing.assert_series_equal(_per_unit(at, units), sizes, check_names=False)
    some = np.array([n % 2 == 0 for n in range(len(frame))])
    picked = frame[some].groupby("unit_code").size().reindex(units, fill_value=0)
    pd.testing.assert_series_equal(_per_unit(at, units, some), picked, check_names=False)
