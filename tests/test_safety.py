"""Nothing lost, nothing crashes (issue 13, defects 4–7 and 11): a results round with nothing
for the Sở, an empty or mistyped inbox over a round that had files, names alike but for their
Unicode form, Part 2 of the older list layout, lock files and hidden files in the inbox, and
one finding per uncalculated formula."""

from __future__ import annotations

import json
import shutil
import unicodedata
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from pipeline import cli
from pipeline.config import load_config
from pipeline.engine import InboxError, consolidate, consolidation
from pipeline.forms.definitions import load_forms
from pipeline.reports import registration as report
from pipeline.store.database import open_store
from pipeline.text import fold

from .conftest import SAMPLES, table_rows

# Codes these tests produce (the catalogue test checks every code is produced somewhere).
COVERED = {"formula-no-value-required", "error-cell-required", "section-not-read"}
RESULTS = SAMPLES / "hop-thu-ket-qua"
REGISTRATIONS = SAMPLES / "hop-thu"
# What the Sở decides on (law.yaml, rule province.decides), written out here from the law.
PROVINCE_LEVEL = {"title": ("individual_titles", ["cstd_tinh"]),
                  "collective_title": ("collective_titles",
                                       ["tt_lao_dong_xuat_sac", "co_thi_dua_tinh"]),
                  "commendation": ("commendations", ["bang_khen_tinh", "bang_khen_bo",
                                                     "bang_khen_ttg", "huan_chuong_ld3"])}


def _run(*args: str):
    return CliRunner().invoke(cli.main, list(args))


# 4. A results round with no province-level proposal


def _province_labels() -> set[str]:
    vocabs = load_forms().vocabs
    return {fold(text) for vocab, codes in PROVINCE_LEVEL.values() for code in codes
            for value in [vocabs[vocab].by_code(code)]
            for text in (value.label, value.abbr, *value.synonyms) if text}


def _without_province_proposals(source: Path, target: Path) -> None:
    """A copy of a results file with every province-level title or commendation cleared."""
    labels = _province_labels()
    wb = openpyxl.load_workbook(source)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and fold(cell.value) in labels:
                    cell.value = None
    wb.save(target)


def test_results_round_with_no_province_level_proposal_writes_every_output(office, tmp_path):
    root = office()
    inbox = root / "hop-thu-ket-qua"
    inbox.mkdir()
    for unit in ("01007", "02002"):  # two ordinary schools, nothing for the Sở
        name = f"ket-qua_{unit}.xlsx"
        _without_province_proposals(RESULTS / name, inbox / name)
    out = tmp_path / "out"
    result = _run("consolidate", str(inbox), "--round", "ket-qua", "--out", str(out),
                  "--config", str(root / "tdkt.toml"), "--registrations",
                  str(REGISTRATIONS))
    assert result.exit_code == 0, result.output
    folder = out / "2025-2026" / "ket-qua"
    people = table_rows(folder / "tong-hop-phong.xlsx", "Đề nghị cá nhân", "STT")
    groups = table_rows(folder / "tong-hop-phong.xlsx", "Đề nghị tập thể", "STT")
    assert people and groups  # the schools proposed titles, none of them the Sở's
    assert not {fold(r["Đề nghị"]) for r in people + groups} & _province_labels()
    so = openpyxl.load_workbook(folder / "tong-hop-so.xlsx", read_only=True)
    assert so.sheetnames == ["Tờ trình", "Đơn vị", "Cá nhân", "Tập thể", "_tdkt"]
    for sheet in ("Cá nhân", "Tập thể"):  # every list is empty
        listed = [list(r) for r in so[sheet].iter_rows(values_only=True)]
        assert not [r for r in listed if isinstance(r[0], int)]
        assert [r[0] for r in listed].count("Không có đề nghị") == 1
    assert (folder / "manifest.json").is_file()
    assert {p.name for p in (folder / "phan-hoi").glob("*.xlsx")} == {"01007.xlsx",
                                                                       "02002.xlsx"}


# 11. One finding per fault: a required cell holding a formula with no value, or an error


def _formula_file(path: Path) -> None:
    """The sample school file of 01001 with an uncalculated formula and an Excel error in
    required cells, and an uncalculated formula in an optional one."""
    wb = openpyxl.load_workbook(REGISTRATIONS / "dang-ky_01001.xlsx")
    staff = wb["Cá nhân"]
    staff["B9"] = '=A9&"x"'  # Họ và tên (required): openpyxl stores no cached value
    staff["D8"] = "#N/A"  # Giới tính (required): an error cell, as a failed lookup leaves
    staff["K10"] = "=1+1"  # Ghi chú (optional)
    wb.save(path)


def test_required_formula_cell_gives_one_finding(office):
    root = office()
    _formula_file(root / "hop-thu" / "dang-ky_01001.xlsx")
    result = consolidation(root / "hop-thu", load_config(root / "tdkt.toml"))
    found = sorted((f.cell, f.code, f.severity.value) for f in result.findings
                   if f.cell in ("B9", "D8", "K10") and f.sheet == "Cá nhân")
    assert found == [("B9", "formula-no-value-required", "error"),
                     ("D8", "error-cell-required", "error"),
                     ("K10", "formula-no-value", "warning")]
    by_cell = {f.cell: f for f in result.findings if f.sheet == "Cá nhân"}
    assert "=A9&\"x\"" in by_cell["B9"].message and "Họ và tên" in by_cell["B9"].message
    assert "#N/A" in by_cell["D8"].message and "chưa được tổng hợp" in by_cell["D8"].message
    counted = set(result.staff.loc[result.staff["unit_code"] == "01001", "row"])
    assert 8 not in counted and 9 not in counted and 10 in counted


# 5. An empty, almost empty or mistyped inbox never replaces a round that had files


YEAR_DIR = "2025-2026"


def _copy(root: Path, *units: str) -> None:
    """The inbox holds exactly the sample registrations of these units."""
    inbox = root / "hop-thu"
    for path in inbox.iterdir():
        path.unlink()
    for unit in units:
        shutil.copy(REGISTRATIONS / f"dang-ky_{unit}.xlsx", inbox / f"dang-ky_{unit}.xlsx")


def _consolidate_cli(root: Path, out: Path, *extra: str):
    return _run("consolidate", str(root / "hop-thu"), "--out", str(out), "--config",
                str(root / "tdkt.toml"), *extra)


def _outputs(out: Path) -> dict[str, bytes]:
    """Every file of the round's output folder, by relative path."""
    folder = out / YEAR_DIR / "dang-ky"
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _stored(out: Path) -> dict[str, str]:
    store = open_store(out / "tdkt-lich-su.sqlite")
    try:
        return store.round_inputs(YEAR_DIR, "dang-ky")
    finally:
        store.close()


def _backups(out: Path) -> list[Path]:
    folder = out / YEAR_DIR / "sao-luu" / "dang-ky"
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize("kept", [(), ("01001",)])
def test_emptied_inbox_is_refused_and_nothing_is_lost(office, tmp_path, kept):
    root = office()
    out = tmp_path / "out"
    _copy(root, "01001", "01002", "02001")
    assert _consolidate_cli(root, out).exit_code == 0
    before, stored = _outputs(out), _stored(out)
    assert "phan-hoi/01002.xlsx" in before and len(stored) == 3
    _copy(root, *kept)  # emptied (or all but one file moved away) by mistake
    result = _consolidate_cli(root, out)
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "3 đơn vị" in message and f"chỉ có {len(kept)} đơn vị" in message
    assert "--force" in message and "một nửa" in message
    assert _outputs(out) == before  # workbooks, feedback and manifest untouched
    assert _stored(out) == stored  # the round's rows kept in the history store
    assert _backups(out) == []


def test_half_the_units_is_not_almost_empty(office, tmp_path):
    root = office()
    out = tmp_path / "out"
    _copy(root, "01001", "01002")
    assert _consolidate_cli(root, out).exit_code == 0
    _copy(root, "01001")  # 1 of 2: half, not fewer than half
    result = _consolidate_cli(root, out)
    assert result.exit_code == 0, result.output
    assert list(_stored(out)) == ["dang-ky_01001.xlsx"]


def test_force_replaces_and_keeps_the_last_three_outputs_as_backups(office, tmp_path):
    root = office()
    out = tmp_path / "out"
    manifests = []
    for units in (("01001", "01002"), ("01001",), ("01002",), ("02001",)):
        _copy(root, *units)
        assert _consolidate_cli(root, out).exit_code == 0
        manifests.append(_outputs(out)["manifest.json"])
    _copy(root)
    assert _consolidate_cli(root, out, "--force").exit_code == 0
    assert _stored(out) == {}
    assert [n for n in _outputs(out) if n.startswith("phan-hoi/")] == []
    backups = _backups(out)
    assert len(backups) == 3  # the last three runs replaced, newest last
    assert [(b / "manifest.json").read_bytes() for b in backups] == manifests[1:]
    assert all((b / "tong-hop-phong.xlsx").is_file() for b in backups)


def test_failed_write_keeps_the_round_in_the_history_store(office, tmp_path, monkeypatch):
    root = office()
    out = tmp_path / "out"
    _copy(root, "01001", "01002")
    consolidate(root / "hop-thu", out, load_config(root / "tdkt.toml"))
    stored = _stored(out)

    def broken(result, path):
        raise OSError("đĩa đầy")

    monkeypatch.setattr(report, "write_province_workbook", broken)
    _copy(root, "01001", "02001")
    with pytest.raises(OSError):
        consolidate(root / "hop-thu", out, load_config(root / "tdkt.toml"))
    assert _stored(out) == stored  # recorded only once the outputs are in place
    monkeypatch.undo()
    consolidate(root / "hop-thu", out, load_config(root / "tdkt.toml"))
    assert sorted(_stored(out)) == ["dang-ky_01001.xlsx", "dang-ky_02001.xlsx"]


def test_mistyped_inbox_is_a_clear_error(office, tmp_path):
    root = office()
    with pytest.raises(InboxError, match="Không tìm thấy thư mục hộp thư"):
        consolidate(root / "hop-thư", tmp_path / "out", load_config(root / "tdkt.toml"))
    result = _run("consolidate", str(root / "hop-thư"), "--out", str(tmp_path / "out"),
                  "--config", str(root / "tdkt.toml"))
    assert result.exit_code == 2 and "Không tìm thấy thư mục hộp thư" in result.output
    assert not (tmp_path / "out" / YEAR_DIR).exists()


# 11. A registrations folder that does not exist


def test_missing_registrations_folder_is_refused(office, tmp_path):
    root = office()
    inbox = root / "hop-thu-ket-qua"
    inbox.mkdir()
    shutil.copy(RESULTS / "ket-qua_01001.xlsx", inbox / "ket-qua_01001.xlsx")
    result = _run("consolidate", str(inbox), "--round", "ket-qua", "--out",
                  str(tmp_path / "out"), "--config", str(root / "tdkt.toml"),
                  "--registrations", str(root / "hop-thu-dang-ky"))
    assert result.exit_code == 2
    assert "hop-thu-dang-ky" in result.output and "Không tìm thấy" in result.output
    assert not (tmp_path / "out" / YEAR_DIR).exists()
    # The registration inbox the configuration names is missing: said, and the round runs
    # with the registration rules left to the office to check.
    (root / "hop-thu").rmdir()
    result = _run("consolidate", str(inbox), "--round", "ket-qua", "--out",
                  str(tmp_path / "out"), "--config", str(root / "tdkt.toml"))
    assert result.exit_code == 0, result.output
    assert "Chú ý: không có thư mục hộp thư đăng ký" in result.output


# 6. Two names that differ only by their Unicode form


def test_names_alike_but_for_unicode_form_are_two_entries(office, tmp_path):
    root = office()
    inbox = root / "hop-thu"
    name = "Trường Hòa Bình.xlsx"
    nfc_name, nfd_name = (unicodedata.normalize(f, name) for f in ("NFC", "NFD"))
    assert nfc_name != nfd_name
    shutil.copy(REGISTRATIONS / "dang-ky_01001.xlsx", inbox / nfc_name)  # the same unit twice
    shutil.copy(REGISTRATIONS / "dang-ky_01001.xlsx", inbox / nfd_name)
    other = "Đăng ký Hòa Bình.xlsx"  # and two units under names alike
    shutil.copy(REGISTRATIONS / "dang-ky_01002.xlsx", inbox / unicodedata.normalize("NFC", other))
    shutil.copy(REGISTRATIONS / "dang-ky_02001.xlsx", inbox / unicodedata.normalize("NFD", other))
    out = tmp_path / "out"
    result = _run("consolidate", str(inbox), "--out", str(out), "--config",
                  str(root / "tdkt.toml"))
    assert result.exit_code == 0, result.output
    assert "được tổng hợp: 3" in result.output
    folder = out / YEAR_DIR / "dang-ky"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    inputs = manifest["inputs"]
    files = [i["file"] for i in inputs]
    assert len(set(files)) == 4 and all(unicodedata.is_normalized("NFC", f) for f in files)
    assert sorted(i["classification"] for i in inputs) == ["accepted"] * 3 + ["superseded"]
    assert manifest["counts"]["accepted"] == 3
    old = next(i for i in inputs if i["classification"] == "superseded")
    assert old["superseded_by"] in files and old["superseded_by"] != old["file"]
    assert {i["unit"] for i in inputs if i["classification"] == "accepted"} == {
        "01001", "01002", "02001"}
    listed = table_rows(folder / "tong-hop-phong.xlsx", "Tệp đã nhận", "STT")
    shown = [r["Tệp"] for r in listed]
    assert sorted(shown) == sorted(files)
    # Each name says which form it was typed in, so the office can tell the two apart.
    assert {f for f in shown if f.startswith("Trường Hòa Bình.xlsx")} and all(
        ("NFC" in f) != ("NFD" in f) for f in shown)
    superseded = [f for f in (manifest["findings"]) if f["code"] == "superseded"]
    assert len(superseded) == 1 and superseded[0]["file"] != superseded[0]["expected"]


# 11. Lock files, system files and hidden files are ignored, not faulty

LOCK = b"\x0bThu Nguyen" + b"\x00" * 40 + b"\x0b\x00T\x00h\x00u\x00" + b"\x00" * 100


def test_lock_system_and_hidden_files_are_listed_as_ignored(office, tmp_path):
    root = office()
    inbox = root / "hop-thu"
    shutil.copy(REGISTRATIONS / "dang-ky_01001.xlsx", inbox / "dang-ky_01001.xlsx")
    junk = {"~$dang-ky_01001.xlsx": LOCK, "Thumbs.db": b"\xd0\xcf\x11\xe0" + b"\x00" * 60,
            "desktop.ini": b"[.ShellClassInfo]\r\nIconResource=x\r\n",
            ".DS_Store": b"\x00\x00\x00\x01Bud1", "._dang-ky_01001.xlsx": b"\x00\x05\x16\x07"}
    for name, data in junk.items():
        (inbox / name).write_bytes(data)
    out = tmp_path / "out"
    result = _run("consolidate", str(inbox), "--out", str(out), "--config",
                  str(root / "tdkt.toml"))
    assert result.exit_code == 0, result.output
    assert ("Số tệp đã đọc: 1 = được tổng hợp: 1 (không có lỗi: 1; có dòng hoặc trang tính lỗi "
            "không được tính: 0) + không được tổng hợp (lỗi cả tệp): 0 + bản cũ (đơn vị đã gửi bản "
            "mới hơn): 0." in result.output)
    assert "Bỏ qua 5 tệp" in result.output
    folder = out / YEAR_DIR / "dang-ky"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    ignored = {i["file"]: i for i in manifest["inputs"] if i["classification"] == "ignored"}
    assert set(ignored) == set(junk)
    assert all(i["reason"] and i["unit"] is None for i in ignored.values())
    assert "Excel" in ignored["~$dang-ky_01001.xlsx"]["reason"]
    assert not [f for f in manifest["findings"] if f["file"] in junk]
    assert manifest["counts"]["files"] == 1 and manifest["counts"]["accepted"] == 1
    listed = {r["Tệp"]: r for r in table_rows(folder / "tong-hop-phong.xlsx", "Tệp đã nhận",
                                                "STT")}
    assert set(listed) == {*junk, "dang-ky_01001.xlsx"}
    for name in junk:
        assert listed[name]["Tình trạng"].startswith("Bỏ qua (")
        assert listed[name]["Số lỗi"] == 0
    assert not (folder / "phan-hoi" / "khong-xac-dinh").exists()


# 7. Part 2 (the collectives) of the older list layout

LEGACY = "Danh sach dang ky thi dua 02006 (mau cu).xlsx"
PART2 = [("Trường Tiểu học Bình Minh", "Tập thể lao động xuất sắc", "Giấy khen"),
         ("Tổ chuyên môn Khối 1-2", "Tập thể lao động tiên tiến", None),
         ("Tổ văn phòng", "TTLĐTT", None)]


def _legacy_with_part2(path: Path, where: str, header: bool = True) -> None:
    """The sample older list of 02006 with a Part 2 "II. TẬP THỂ": below the persons before the
    signature ("before"), after the signature ("after") or on a sheet of its own ("sheet");
    with its two-row header, or (header=False) with no header tdkt knows."""
    wb = openpyxl.load_workbook(REGISTRATIONS / LEGACY)
    ws = wb.worksheets[0]
    last = max(r for r in range(1, ws.max_row + 1) if isinstance(ws[f"A{r}"].value, int))
    signature = [ws[f"E{r}"].value for r in (last + 2, last + 3)]
    for r in (last + 2, last + 3):
        ws[f"E{r}"] = None
    target, row = ws, last + 2
    if where == "after":
        ws[f"E{last + 2}"], ws[f"E{last + 3}"] = signature
        row = last + 5
    elif where == "sheet":
        target, row = wb.create_sheet("Tập thể"), 1
    target[f"A{row}"] = "II. TẬP THỂ"
    if header:
        for col, text in zip("ABC", ["Stt", "Tên tập thể", "Đăng ký thi đua, khen thưởng"],
                             strict=True):
            target[f"{col}{row + 1}"] = text
        target[f"C{row + 2}"], target[f"D{row + 2}"] = "Thi đua", "Khen thưởng"
        target.merge_cells(f"C{row + 1}:D{row + 1}")
    else:
        target[f"B{row + 1}"], target[f"C{row + 1}"] = "Đơn vị, tổ", "Nội dung đăng ký"
    for i, (name, title, commendation) in enumerate(PART2):
        r = row + 3 + i
        target[f"A{r}"], target[f"B{r}"], target[f"C{r}"] = i + 1, name, title
        target[f"D{r}"] = commendation
    if where == "before":
        end = row + 3 + len(PART2) + 1
        ws[f"E{end}"], ws[f"E{end + 1}"] = signature
    wb.save(path)


def _persons_in_sample_legacy() -> int:
    ws = openpyxl.load_workbook(REGISTRATIONS / LEGACY).worksheets[0]
    return sum(isinstance(ws[f"A{r}"].value, int) for r in range(1, ws.max_row + 1))


@pytest.mark.parametrize("where", ["before", "after", "sheet"])
def test_older_list_part2_collectives_are_read(office, tmp_path, where):
    root = office()
    _legacy_with_part2(root / "hop-thu" / LEGACY, where)
    result = consolidate(root / "hop-thu", tmp_path / "out", load_config(root / "tdkt.toml"))
    groups = result.collectives[result.collectives["unit_code"] == "02006"]
    assert list(zip(groups["collective_name"], groups["collective_title"],
                    groups["commendation"].where(groups["commendation"].notna(), None),
                    strict=True)) == [
        ("Trường Tiểu học Bình Minh", "tt_lao_dong_xuat_sac", "giay_khen"),
        ("Tổ chuyên môn Khối 1-2", "tt_lao_dong_tien_tien", None),
        ("Tổ văn phòng", "tt_lao_dong_tien_tien", None)]
    staff = result.staff[result.staff["unit_code"] == "02006"]
    assert len(staff) == _persons_in_sample_legacy()  # no Part 2 row read as a person
    assert not {"Tên tập thể", *(n for n, _, _ in PART2)} & set(staff["full_name"])
    assert result.units.loc["02006", "collective:tt_lao_dong_tien_tien"] == 2
    assert result.units.loc["02006", "collective:tt_lao_dong_xuat_sac"] == 1
    assert not [f for f in result.findings if f.file == LEGACY and f.severity.value == "error"]
    listed = table_rows(result.out_dir / "tong-hop-phong.xlsx", "Tập thể đăng ký", "STT")
    assert [r["Tên tập thể"] for r in listed if r["Đơn vị"] == "Trường Tiểu học Bình Minh"] \
        == [n for n, _, _ in PART2]


def test_older_list_part2_without_a_header_is_reported(office, tmp_path):
    root = office()
    _legacy_with_part2(root / "hop-thu" / LEGACY, "before", header=False)
    result = consolidation(root / "hop-thu", load_config(root / "tdkt.toml"))
    found = [(f.code, f.sheet, f.cell, f.value) for f in result.findings
             if f.code == "section-not-read"]
    last = _persons_in_sample_legacy() + 7  # the persons start on row 8
    assert found == [("section-not-read", "Danh sách", str(last + 2), "II. TẬP THỂ")]
    staff = result.staff[result.staff["unit_code"] == "02006"]
    assert len(staff) == _persons_in_sample_legacy()
    assert result.units.loc["02006", "status"] == "with_errors"
