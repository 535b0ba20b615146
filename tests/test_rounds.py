"""Rounds plug into the engine: a round defined only in the tests (one module and one form
file) is consolidated, recorded and written like the two rounds tdkt ships."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3

import openpyxl

from pipeline import settings
from pipeline.config import load_config
from pipeline.engine import consolidate
from pipeline.forms.definitions import load_forms
from pipeline.forms.template import UnitInfo, write_template
from pipeline.rounds.base import Round, round_named, rounds

from . import initiative_round
from .conftest import SAMPLES
from .sample_inbox import _fill_rows

FORM_DATA = SAMPLES.parent / "tests" / "files" / "round-sang-kien"
RUN_DATE = dt.date(2026, 3, 2)
TYPED = {"01001": [("Nguyễn Thị Lan", "Dạy học STEM ở lớp mẫu giáo lớn", "Khám phá")],
         "02001": [("Trần Văn Nam", "Rèn kỹ năng đọc hiểu cho học sinh lớp 3", "Tiếng Việt"),
                   ("Lê Thị Hoa", "Trò chơi học toán lớp 1", "Toán")]}


def _forms(tmp_path):
    forms_dir = tmp_path / "forms"
    shutil.copytree(settings.FORMS_DIR, forms_dir)
    shutil.copytree(FORM_DATA / "sang-kien", forms_dir / "sang-kien")
    return load_forms(forms_dir, settings.VOCAB_DIR)


def _inbox(tmp_path, forms, config):
    inbox = tmp_path / "hop-thu-sang-kien"
    inbox.mkdir()
    form = forms.current("sang-kien")
    registry = openpyxl.load_workbook(config.registry, read_only=True)
    names = {str(r[1]): r[2] for r in registry.worksheets[0].iter_rows(values_only=True)
             if r[1] in TYPED}
    for code, rows in TYPED.items():
        path = inbox / f"sang-kien_{code}.xlsx"
        write_template(form, forms.vocabs, UnitInfo(code=code, name=names[code], level="MN",
                                                    headcount=10),
                       path, config.school_year, config.office_for())
        _fill_rows(path, form, forms, "initiatives",
                   [{"seq": i, "full_name": n, "initiative": t, "subject": s}
                    for i, (n, t, s) in enumerate(rows, start=1)])
    return inbox


def test_rounds_a_test_only_round_plugs_in_without_an_engine_edit(tmp_path):
    assert isinstance(initiative_round.ROUND, Round)
    assert round_named("sang-kien-thu") is initiative_round.ROUND
    assert {"dang-ky", "ket-qua", "sang-kien-thu"} <= set(rounds())
    forms = _forms(tmp_path)
    config = load_config(SAMPLES / "tdkt.toml")
    inbox = _inbox(tmp_path, forms, config)
    out = tmp_path / "out"
    result = consolidate(inbox, out, config, round="sang-kien-thu", forms=forms,
                         run_date=RUN_DATE)
    folder = out / config.school_year / "sang-kien-thu"
    assert result.out_dir == folder
    assert not [f for f in result.findings if f.severity.value == "error"], result.findings
    # Its own workbook, read back: every initiative typed, with its unit's name.
    ws = openpyxl.load_workbook(folder / initiative_round.WORKBOOK).worksheets[0]
    rows = [r for r in ws.iter_rows(values_only=True) if isinstance(r[0], int)]
    typed = sorted((n, t) for rows_ in TYPED.values() for n, t, _ in rows_)
    assert sorted((r[1], r[2]) for r in rows) == typed
    # The engine's manifest, with what the round adds.
    manifest = json.loads((folder / settings.MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["round"] == "sang-kien-thu"
    assert manifest["initiatives"] == 3
    assert {i["file"]: i["classification"] for i in manifest["inputs"]} == {
        "sang-kien_01001.xlsx": "accepted", "sang-kien_02001.xlsx": "accepted"}
    assert sorted(manifest["outputs"]) == [initiative_round.WORKBOOK]
    # Recorded in the history store like any round.
    with sqlite3.connect(out / settings.STORE_FILE) as db:
        assert db.execute("SELECT school_year, round FROM runs").fetchall() == [
            (config.school_year, "sang-kien-thu")]
        assert db.execute("SELECT count(*) FROM inputs").fetchone()[0] == 2
