"""A template from `tdkt templates`, filled as a school would, consolidates with no findings."""

from __future__ import annotations

import datetime as dt
import random
import shutil
from pathlib import Path

import openpyxl
import pytest

from pipeline.config import load_config
from pipeline.engine import consolidation

from .conftest import convert, soffice
from .sample_inbox import Unit, _collectives, _people

CODE = "02001"


def _unit(forms) -> Unit:
    rng = random.Random(7)
    unit = Unit(code=CODE, name="Trường Tiểu học Hướng Dương", level="TH", block="Khối Tiểu học 1",
                disadvantaged=False, managers=2, teachers=15, support=3, email="x@y.vn")
    unit.people = _people(rng, unit, 0.15)
    unit.collectives = _collectives(rng, unit)
    return unit


def _fill_as_school(template: Path, unit: Unit, forms) -> None:
    """Type into the unlocked input cells only, choosing dropdown labels, as a secretary does."""
    form = forms.current("dang-ky")
    wb = openpyxl.load_workbook(template)
    for sheet in form.sheets:
        ws = wb[sheet.name]
        header = next(r for r in range(1, 40) if ws.cell(r, 1).value == sheet.columns[0].header)
        col = {ws.cell(header, c).value: c for c in range(1, ws.max_column + 1)}
        if sheet.id == "unit":
            rows = [dict(c, seq=i + 1) for i, c in enumerate(unit.collectives)]
            label = next(r for r in range(1, header) if ws.cell(r, 2).value == "Ngày lập")
            assert ws.cell(label, 3).protection.locked is False
            ws.cell(label, 3).value = dt.date(2025, 10, 12)
        else:
            rows = [{"seq": i + 1, "full_name": p.full_name, "birth_date": p.birth_date,
                     "sex": p.sex, "ethnicity": p.ethnicity, "position": p.position,
                     "staff_group": p.staff_group, "title": p.title,
                     "commendation": p.commendation, "initiative": p.initiative}
                    for i, p in enumerate(unit.people)]
        for i, row in enumerate(rows):
            for column in sheet.columns:
                value = row.get(column.id)
                if value is None:
                    continue
                if column.type == "choice":
                    value = forms.vocabs[column.choices].label_of(value)
                cell = ws.cell(header + 1 + i, col[column.header])
                assert cell.protection.locked is False, (sheet.name, cell.coordinate)
                if cell.value != value:
                    cell.value = value
    wb.save(template)


@pytest.fixture(scope="module")
def filled_template(forms, sample_templates, tmp_path_factory) -> Path:
    """One unit's template from `tdkt templates` (run once for the session on a copy of the
    sample office), filled as its school would."""
    result, out = sample_templates
    assert result.exit_code == 0, result.output
    templates = sorted(out.rglob("*.xlsx"))
    assert len(templates) == 46
    source = next(p for p in templates if CODE in p.name)
    template = tmp_path_factory.mktemp("mau") / source.name
    shutil.copy(source, template)
    _fill_as_school(template, _unit(forms), forms)
    return template


@pytest.fixture
def filled(office, filled_template) -> tuple[Path, Path]:
    """A copy of the sample office whose inbox holds the filled template (a fresh copy)."""
    root = office()
    target = root / "hop-thu" / filled_template.name
    shutil.copy(filled_template, target)
    return root, target


def test_roundtrip_filled_template_has_no_findings(filled, forms):
    root, _ = filled
    result = consolidation(root / "hop-thu", load_config(root / "tdkt.toml"))
    assert [f.message for f in result.findings] == []
    unit = _unit(forms)
    row = result.units.loc[CODE]
    assert row["status"] == "valid"
    assert row["staff_listed"] == len(unit.people)
    assert row["registered"] == sum(p.title != "khong_dang_ky" for p in unit.people)
    assert row["title:cstd_co_so"] == sum(p.title == "cstd_co_so" for p in unit.people)


@pytest.mark.libreoffice
def test_roundtrip_through_libreoffice_has_no_findings(filled, forms, tmp_path):
    if soffice() is None:
        pytest.skip("LibreOffice (soffice) is not installed; .ci/run installs it on Debian")
    root, path = filled
    work = tmp_path / "lo"
    work.mkdir()
    ods = convert(path, "ods", work)
    back_dir = work / "back"
    back_dir.mkdir()
    back = convert(ods, "xlsx", back_dir)
    path.unlink()
    shutil.copy(back, root / "hop-thu" / back.name)
    result = consolidation(root / "hop-thu", load_config(root / "tdkt.toml"))
    assert [f.message for f in result.findings] == []
    assert result.units.loc[CODE, "status"] == "valid"
    assert result.units.loc[CODE, "staff_listed"] == len(_unit(forms).people)
