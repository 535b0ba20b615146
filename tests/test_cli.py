"""The command line: Vietnamese help, exit codes, the lock, atomic outputs, CLI = library."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import cli
from pipeline.config import load_config
from pipeline.engine import consolidate, output_lock
from pipeline.findings import catalogue
from pipeline.reports import registration as report
from pipeline.status import UnitStatus

from .conftest import SAMPLES, workbook_cells

COMMANDS = sorted(cli.main.commands)


def _run(*args: str):
    return CliRunner().invoke(cli.main, list(args))


def _args(root: Path, out: Path, *extra: str) -> list[str]:
    return ["consolidate", str(root / "hop-thu"), "--out", str(out), "--config",
            str(root / "tdkt.toml"), *extra]


# Help


@pytest.mark.parametrize("command", [[], *[[c] for c in COMMANDS]])
def test_cli_help_is_vietnamese(command):
    result = _run(*command, "--help")
    assert result.exit_code == 0
    text = result.output
    assert "Cách dùng:" in text
    assert unicodedata.is_normalized("NFC", text)
    assert any(ch in text for ch in "ạảấầẩẫậắằẳẵặẹẻẽếềểễệịỉọỏốồổỗộớờởỡợụủứừửữựỳỷỹđ")
    for english in ("Usage:", "Options:", "Show this message"):
        assert english not in text


def test_cli_every_command_has_an_example_or_is_trivial():
    for name in COMMANDS:
        doc = cli.main.commands[name].help or ""
        assert doc.strip(), name
        assert "Ví dụ:" in doc or name == "codes", name


def test_cli_codes_lists_the_catalogue():
    result = _run("codes")
    assert result.exit_code == 0
    for code in catalogue():
        assert code in result.output


# Exit codes


def test_cli_consolidate_completes_with_school_errors(office, tmp_path):
    root = office({"rac.txt": b"hello"})
    result = _run(*_args(root, tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "Số tệp đã đọc: 1" in result.output
    assert "Đơn vị: 46 trong danh mục, 0 đã nộp, 46 chưa nộp." in result.output
    strict = _run(*_args(root, tmp_path / "out", "--strict"))
    assert strict.exit_code == 1


def test_cli_wrong_invocation_exits_2(office, tmp_path):
    root = office()
    assert _run("consolidate").exit_code == 2
    assert _run("consolidate", str(tmp_path / "khong-co")).exit_code == 2
    (root / "danh-muc-don-vi.xlsx").write_bytes(b"not a workbook")
    result = _run(*_args(root, tmp_path / "out"))
    assert result.exit_code == 2
    assert "Không đọc được danh mục đơn vị" in result.output
    bad = root / "tdkt.toml"
    bad.write_text('school_year = "2025"\n', encoding="utf-8")
    assert _run(*_args(root, tmp_path / "out")).exit_code == 2


def test_cli_second_run_is_refused_with_code_3(office, tmp_path):
    root = office()
    out = tmp_path / "out"
    with output_lock(out):
        child = subprocess.run([sys.executable, "-m", "pipeline", *_args(root, out)],
                               capture_output=True, text=True, timeout=120)
    assert child.returncode == 3
    assert "Một lần chạy khác đang ghi" in child.stderr
    assert not (out / "2025-2026").exists()


# Atomic outputs


def test_cli_failed_run_leaves_previous_outputs_intact(office, tmp_path, monkeypatch):
    root = office()
    out = tmp_path / "out"
    config = load_config(root / "tdkt.toml")
    shutil_copy = (SAMPLES / "hop-thu" / "dang-ky_01001.xlsx").read_bytes()
    (root / "hop-thu" / "dang-ky_01001.xlsx").write_bytes(shutil_copy)
    first = consolidate(root / "hop-thu", out, config)
    outputs = out / "2025-2026"  # the workbooks and manifest (the store is not an output)
    before = {p.relative_to(out): p.read_bytes() for p in outputs.rglob("*") if p.is_file()}

    def broken(result, path):
        path.write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(report, "write_province_workbook", broken)
    (root / "hop-thu" / "dang-ky_01001.xlsx").unlink()
    result = _run(*_args(root, out, "--force"))  # past the emptied-inbox guard, to the write
    assert result.exit_code == 2
    assert "Không ghi được kết quả" in result.output
    after = {p.relative_to(out): p.read_bytes() for p in outputs.rglob("*") if p.is_file()}
    assert after == before
    assert first.units.loc["01001", "status"] == UnitStatus.VALID
    assert not [p for p in (out / "2025-2026").iterdir() if p.name.startswith(".")]


# The CLI is a thin client


def test_cli_writes_what_the_library_writes(office, tmp_path):
    root = office()
    for name in ("dang-ky_01001.xlsx", "03004.xls", "Công văn gửi Phòng.docx"):
        (root / "hop-thu" / name).write_bytes((SAMPLES / "hop-thu" / name).read_bytes())
    result = _run(*_args(root, tmp_path / "cli"))
    assert result.exit_code == 0, result.output
    library = consolidate(root / "hop-thu", tmp_path / "lib", load_config(root / "tdkt.toml"))
    cli_dir = tmp_path / "cli" / "2025-2026" / "dang-ky"
    for path in sorted(library.out_dir.rglob("*.xlsx")):
        assert workbook_cells(path) == workbook_cells(cli_dir / path.relative_to(
            library.out_dir))
    lib_manifest = json.loads((library.out_dir / "manifest.json").read_text(encoding="utf-8"))
    cli_manifest = json.loads((cli_dir / "manifest.json").read_text(encoding="utf-8"))
    for key in ("inputs", "units", "findings", "outputs", "counts", "rule_set"):
        assert lib_manifest[key] == cli_manifest[key]
    assert f"Lỗi: {len(library.errors)};" in result.output


def test_cli_templates_writes_one_per_unit(sample_templates):
    result, out = sample_templates  # `tdkt templates` on a copy of the sample office
    assert result.exit_code == 0, result.output
    files = sorted((out / "2025-2026" / "mau-dang-ky").glob("*.xlsx"))
    assert len(files) == 46
    assert "Đã ghi 46 biểu mẫu" in result.output


def test_cli_check_prints_one_file_s_findings(office):
    root = office()
    name = "dang-ky_02001.xlsx"
    (root / "hop-thu" / name).write_bytes((SAMPLES / "hop-thu" / name).read_bytes())
    result = _run("check", str(root / "hop-thu" / name), "--config", str(root / "tdkt.toml"))
    assert result.exit_code == 0, result.output
    assert "đơn vị: 02001" in result.output
    assert result.output.count("[Cảnh báo]") == 2
    assert "Lỗi: 0; cảnh báo: 2." in result.output


@pytest.mark.slow  # `make test-slow`, in CI
def test_cli_results_templates_carry_the_khoi_criteria(office, tmp_path):
    import openpyxl

    from pipeline.rules.ruleset import load_criteria

    root = office()
    result = _run("templates", "--form", "ket-qua", "--out", str(tmp_path), "--config",
                  str(root / "tdkt.toml"))
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "2025-2026" / "mau-ket-qua").glob("*.xlsx"))
    assert len(files) == 46
    criteria = load_criteria("2025-2026")
    wb = openpyxl.load_workbook(files[0])  # 01001, Khối Mầm non 1
    ws = wb["Tự chấm điểm"]
    texts = [ws.cell(r, 2).value for r in range(1, ws.max_row + 1)]
    expected = [c["criterion"] for c in criteria["Khối Mầm non 1"]]
    start = texts.index(expected[0])
    assert texts[start:start + len(expected)] == expected
    assert ws.cell(start + 1, 2).protection.locked and not ws.cell(start + 1, 4).protection.locked
    assert wb["_tdkt"]["A1"].value == "ket-qua"


def test_cli_output_folder_from_the_configuration(office):
    root = office()
    (root / "hop-thu" / "dang-ky_01001.xlsx").write_bytes(
        (SAMPLES / "hop-thu" / "dang-ky_01001.xlsx").read_bytes())
    config = root / "tdkt.toml"
    config.write_text('output = "ket-qua-phong"\n' + config.read_text(encoding="utf-8"),
                      encoding="utf-8")
    result = _run("consolidate", str(root / "hop-thu"), "--config", str(config))
    assert result.exit_code == 0, result.output
    written = root / "ket-qua-phong" / "2025-2026" / "dang-ky" / "tong-hop-phong.xlsx"
    assert written.is_file()
    assert (root / "ket-qua-phong" / "tdkt-lich-su.sqlite").is_file()


def test_cli_an_unknown_round_is_refused_in_vietnamese():
    result = CliRunner().invoke(cli.main, ["consolidate", str(SAMPLES / "hop-thu"), "--round",
                                           "khong-co", "--config", str(SAMPLES / "tdkt.toml")])
    assert result.exit_code == 2
    assert ("giá trị “khong-co” của --round không hợp lệ; cần một trong: dang-ky, ket-qua."
            in result.output)
    assert "Invalid" not in result.output and "round_" not in result.output
