"""The Sở's round (issue 15): a Sở configuration consolidates the schools it manages itself as a
Phòng consolidates its schools, under OUT/<năm học>/<đợt>/tinh/, with each commune office's
report expected; the Phòng's outputs in the same folder and the Sở's never take each other."""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil

import openpyxl
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.forms.definitions import load_forms
from pipeline.rounds.base import round_named

from .conftest import OFFICE_FILES, SAMPLES, table_rows
from .sample_inbox import SCHOOL_YEAR, Unit, _collectives, _people, filled_template
from .sample_province import CONFIG as PROVINCE_CONFIG
from .sample_province_registry import OFFICES, PROVINCE, UNITS, write_province_registry

RUN_DATE = dt.date(2025, 10, 20)
# The Sở's configuration of the sample province (office level "tinh", registry
# danh-muc-so.xlsx).
CONFIG = PROVINCE_CONFIG
# The direct units that send their registration (T0006 sends nothing), and a file from a
# school of a commune, which the Sở does not manage.
SENDING = ("T0001", "T0002", "T0003", "T0004", "T0005")


def _unit(row, rng: random.Random) -> Unit:
    unit = Unit(code=row.unit_code, name=row.unit_name, level=row.level, block=row.block,
                disadvantaged=row.disadvantaged == "yes", managers=row.managers,
                teachers=row.teachers, support=row.support_staff, email=row.email or "")
    unit.people = _people(rng, unit, 0.15)
    unit.collectives = _collectives(rng, unit)
    return unit


@pytest.fixture(scope="module")
def province(tmp_path_factory):
    """A Sở's folder: its configuration, its registry, an inbox of direct schools' files."""
    root = tmp_path_factory.mktemp("so")
    (root / "tdkt.toml").write_text(CONFIG, encoding="utf-8")
    forms = load_forms()
    write_province_registry(root / "danh-muc-so.xlsx", forms=forms)
    inbox = root / "hop-thu"
    inbox.mkdir()
    rng = random.Random(15)
    people = {}
    for row in UNITS:
        unit = _unit(row, rng)
        if row.unit_code in SENDING:
            filled_template(forms.current("dang-ky"), forms, unit, inbox /
                            f"dang-ky_{row.unit_code}.xlsx", PROVINCE, RUN_DATE)
            people[row.unit_code] = sum(p.title != "khong_dang_ky" for p in unit.people)
    shutil.copy(SAMPLES / "hop-thu" / "dang-ky_01001.xlsx", inbox / "dang-ky_01001.xlsx")
    return root, people


def _consolidate(root, out, *args):
    return CliRunner().invoke(main, ["consolidate", str(root / "hop-thu"), "--out", str(out),
                                     "--config", str(root / "tdkt.toml"), *args])


def test_province_round_is_chosen_by_the_configuration():
    assert round_named("tinh-dang-ky").folder == "dang-ky/tinh"
    assert round_named("tinh-ket-qua").form_ids == ("ket-qua", "bao-cao-ket-qua")


def test_province_round_decides_the_direct_schools(province, tmp_path):
    root, people = province
    out = tmp_path / "out"
    result = _consolidate(root, out)
    assert result.exit_code == 0, result.output
    assert "Báo cáo của các Phòng Văn hóa – Xã hội: 0/3." in result.output
    folder = out / SCHOOL_YEAR / "dang-ky" / "tinh"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["round"] == "tinh-dang-ky"
    status = {u["unit"]: u["status"] for u in manifest["units"]}
    assert set(status) == {u.unit_code for u in UNITS}  # direct units only, no commune school
    assert status["T0006"] == "Chưa nộp" and all(status[c] != "Chưa nộp" for c in SENDING)
    assert {o["office"] for o in manifest["offices"]} == {o.office_code for o in OFFICES}
    assert {o["file"] for o in manifest["offices"]} == {None}
    # The commune school's file: not a unit of the Sở.
    stray = [f for f in manifest["findings"] if f["file"] == "dang-ky_01001.xlsx"]
    assert "unknown-unit" in {f["code"] for f in stray}
    # Each direct school counted with everyone who registered, read back from the workbook.
    rows = table_rows(folder / "tong-hop-phong.xlsx", "Theo đơn vị", "Mã đơn vị")
    assert {r["Mã đơn vị"]: r["Số đăng ký"] for r in rows if r["Mã đơn vị"] in people} == people
    feedback = sorted(p.stem for p in (folder / "phan-hoi").glob("*.xlsx"))
    assert feedback == sorted(SENDING)


def test_province_and_office_outputs_share_one_folder(province, tmp_path):
    """`make consolidate` writes a commune's round and the Sở's round into one output folder:
    re-running the commune's round keeps the Sở's outputs, and the Sở's keeps the commune's."""
    root, _ = province
    out = tmp_path / "out"
    assert _consolidate(root, out).exit_code == 0
    office = tmp_path / "phong"
    office.mkdir()
    for name in OFFICE_FILES:
        shutil.copy(SAMPLES / name, office / name)
    year = out / SCHOOL_YEAR / "dang-ky"
    before = (year / "tinh" / "manifest.json").read_bytes()
    again = CliRunner().invoke(main, ["consolidate", str(SAMPLES / "hop-thu"), "--out", str(out),
                                      "--config", str(office / "tdkt.toml")])
    assert again.exit_code == 0, again.output
    assert (year / "tong-hop-phong.xlsx").is_file()
    assert (year / "tinh" / "manifest.json").read_bytes() == before
    assert _consolidate(root, out).exit_code == 0
    assert (year / "tong-hop-phong.xlsx").is_file() and (year / "tinh").is_dir()


def test_province_templates_for_the_registry_the_offices_and_the_direct_units(province,
                                                                             tmp_path):
    root, _ = province
    out = tmp_path / "mau"
    written = {}
    for form in ("danh-muc-so", "bao-cao-ket-qua", "dang-ky", "ket-qua"):
        result = CliRunner().invoke(main, ["templates", "--form", form, "--out", str(out),
                                           "--config", str(root / "tdkt.toml")])
        assert result.exit_code == 0, result.output
        written[form] = sorted((out / SCHOOL_YEAR / f"mau-{form}").glob("*.xlsx"))
    assert len(written["danh-muc-so"]) == 1
    assert [len(written[f]) for f in ("dang-ky", "ket-qua")] == [len(UNITS)] * 2
    ids = []
    for path in written["bao-cao-ket-qua"]:
        meta = openpyxl.load_workbook(path)["_tdkt"]
        ids.append(tuple(meta.cell(1, c).value for c in (1, 3, 4, 5)))
    assert ids == [("bao-cao-ket-qua", o.office_code, SCHOOL_YEAR, "ket-qua") for o in OFFICES]
    # A Phòng has no Sở forms to write.
    refused = CliRunner().invoke(main, ["templates", "--form", "danh-muc-so", "--out",
                                        str(out), "--config", str(SAMPLES / "tdkt.toml")])
    assert refused.exit_code != 0 and "không phải cấu hình của Sở" in refused.output
    assert "Traceback" not in refused.output


def test_province_check_reads_reports_and_direct_schools_with_the_sos_registry():
    """`tdkt check` with the Sở's configuration: the sample province's files are checked
    against the Sở's registry (a report names its office, a direct school its unit), and a
    report gets the checks it can pass alone (its year; its lists against its rows); the same
    report checked with a Phòng's configuration gets those checks too."""
    folder = SAMPLES / "tinh"
    inbox = folder / "hop-thu-dang-ky"
    files = [inbox / f"{n}.xlsx" for n in ("bao-cao_X001", "dang-ky_T0001", "bao-cao_X003",
                                           "bao-cao_X004")]
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    result = CliRunner().invoke(main, ["check", *map(str, files),
                                       "--config", str(folder / "tdkt.toml")])
    assert result.exit_code == 1, result.output
    blocks = result.output.split("Tệp: ")[1:]
    assert [b.split(" — ")[-1].split("\n")[0] for b in blocks] == [
        "đơn vị: X001", "đơn vị: T0001", "đơn vị: X003", "đơn vị: X004"]
    assert blocks[0].endswith("Lỗi: 0; cảnh báo: 0.\n")
    assert blocks[1].endswith("Lỗi: 0; cảnh báo: 0.\n")
    planted = {name: entry["findings"] for name, entry in expected["files"].items()}
    assert [f[0] for f in planted["bao-cao_X003.xlsx"]] == ["report-wrong-year"]
    assert "năm học 2024-2025" in blocks[2] and blocks[2].endswith("Lỗi: 1; cảnh báo: 0.\n")
    ((code, sheet, cell),) = planted["bao-cao_X004.xlsx"]
    assert (code, sheet) == ("report-totals-differ", "Báo cáo")
    assert f"Ô {cell} trang tính “Báo cáo”" in blocks[3]
    office = CliRunner().invoke(main, ["check", str(files[3]),
                                       "--config", str(SAMPLES / "tdkt.toml")])
    assert office.exit_code == 1 and f"Ô {cell} trang tính “Báo cáo”" in office.output


def test_province_approve_is_refused_for_a_sos_configuration(tmp_path):
    """Approval is the Phòng's step before its report goes up; a Sở's configuration is told
    so, and nothing is written."""
    result = CliRunner().invoke(main, ["approve", "--round", "dang-ky", "--config",
                                       str(SAMPLES / "tinh" / "tdkt.toml"), "--out",
                                       str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "Cấu hình này là của Sở" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def _names(path, sheet_name: str) -> list[str]:
    """The persons' names listed on a school form's staff sheet."""
    rows = [list(r) for r in openpyxl.load_workbook(path, read_only=True)[sheet_name]
            .iter_rows(values_only=True)]
    top = next(i for i, r in enumerate(rows) if "Họ và tên" in r)
    col = rows[top].index("Họ và tên")
    return [r[col] for r in rows[top + 1:] if isinstance(r[0], int) and r[col]]


def test_province_results_templates_carry_the_direct_schools_registrations(province, tmp_path):
    """Once the Sở's registration round is in its store, each direct school's results form
    starts with the persons it registered, read from its own registration file."""
    root, _ = province
    out = tmp_path / "out"
    assert _consolidate(root, out).exit_code == 0
    made = CliRunner().invoke(main, ["templates", "--form", "ket-qua", "--out", str(out),
                                     "--config", str(root / "tdkt.toml")])
    assert made.exit_code == 0, made.output
    assert "kho lịch sử" in made.output and "tdkt-lich-su-tinh.sqlite" in made.output
    forms = load_forms()
    staff = forms.current("dang-ky").sheet("staff").name
    results = forms.current("ket-qua").sheet("staff").name
    for code in SENDING:
        sent = _names(root / "hop-thu" / f"dang-ky_{code}.xlsx", staff)
        (template,) = (out / SCHOOL_YEAR / "mau-ket-qua").glob(f"*{code}*.xlsx")
        assert sent and _names(template, results) == sent, code
