"""The Sở's registry (danh-muc-so): written from its template as the Sở fills it, read back."""

from __future__ import annotations

from dataclasses import replace

import openpyxl
import pytest

from pipeline.findings import Severity
from pipeline.ingest.province_registry import as_registry, load_province_registry
from pipeline.ingest.registry import load_registry

from .conftest import SAMPLES
from .sample_province_registry import BLOCKS, OFFICES, UNITS, write_province_registry

# Codes the catalogue test must see produced (tests/test_catalogue.py).
COVERED = {"duplicate-code", "code-used-twice", "unknown-block", "commune-level-unit",
           "registry-not-found"}

OFFICE_SHEET, UNIT_SHEET, BLOCK_SHEET = "Phòng Văn hóa – Xã hội", "Đơn vị trực thuộc Sở", \
    "Khối thi đua"


@pytest.fixture(scope="module")
def clean(tmp_path_factory, forms):
    path = write_province_registry(tmp_path_factory.mktemp("so") / "danh-muc-so.xlsx",
                                   forms=forms)
    return load_province_registry(path, forms)


# Every fault the Sở may make, one per row, in one registry; each must give exactly its
# finding. Template layout: header on row 6, the n-th row of a table on row 6 + n.
_OFFICES = (*OFFICES[:2], replace(OFFICES[2], email="vhxh.anphu.gov.vn"),  # E9: no @
            replace(OFFICES[0], office_name="Phòng Văn hóa – Xã hội (trùng mã)"))  # B10
_UNITS = (
    replace(UNITS[0], level="THCS"),  # E7: a THPT school typed as THCS
    replace(UNITS[1], block="Khối các trường THPT"),  # the khối's name: accepted
    replace(UNITS[2], unit_code="X002"),  # B9: the code of an office (row 8 there)
    UNITS[3], replace(UNITS[4], block="K9"),  # F11: no such khối
    UNITS[5])


@pytest.fixture(scope="module")
def faulty(tmp_path_factory, forms):
    path = write_province_registry(tmp_path_factory.mktemp("so") / "danh-muc-so.xlsx",
                                   _OFFICES, _UNITS, BLOCKS, forms=forms)
    return load_province_registry(path, forms)


# General


def test_province_registry_sample_loads_with_no_findings(clean):
    registry, findings = clean
    assert findings == []
    assert registry.usable and registry.file == "danh-muc-so.xlsx"


def test_province_registry_offices_read_back(clean):
    offices = clean[0].offices[["office_name", "commune", "email"]]
    assert list(offices.itertuples(name=None)) == [
        ("X001", "Phòng Văn hóa – Xã hội xã Tân Lập", "Xã Tân Lập", "vhxh@tanlap.gov.vn"),
        ("X002", "Phòng Văn hóa – Xã hội xã Hòa Bình", "Xã Hòa Bình", "vhxh@hoabinh.gov.vn"),
        ("X003", "Phòng Văn hóa – Xã hội phường An Phú", "Phường An Phú", "vhxh@anphu.gov.vn")]
    assert clean[0].office_codes == {"X001", "X002", "X003"}


def test_province_registry_units_read_back(clean):
    units = clean[0].units
    columns = ["unit_name", "unit_type", "level", "block_code", "block", "disadvantaged",
               "managers", "teachers", "support_staff", "email"]
    assert list(units[columns].itertuples(name=None)) == [
        ("T0001", "Trường THPT Nguyễn Huệ", "THPT", "THPT", "K1", "Khối các trường THPT", "no",
         4, 62, 11, "thpt.nguyenhue@anphu.edu.vn"),
        ("T0002", "Trường THPT chuyên Lê Quý Đôn", "chuyen", "THPT", "K1",
         "Khối các trường THPT", "no", 4, 71, 12, "chuyen.lqd@anphu.edu.vn"),
        ("T0003", "Trường TH, THCS và THPT Hòa Bình", "lien_cap_thpt", "TH-THCS-THPT", "K1",
         "Khối các trường THPT", "yes", 3, 55, 8, "lc.hoabinh@anphu.edu.vn"),
        ("T0004", "Trường PTDTNT THCS Tân Lập", "PTDTNT", "THCS", "C1",
         "Cụm GDTX và trường chuyên biệt", "yes", 3, 30, 9, "dtnt.tanlap@anphu.edu.vn"),
        ("T0005", "Trung tâm GDTX tỉnh An Phú", "GDTX", "GDTX", "C1",
         "Cụm GDTX và trường chuyên biệt", "no", 2, 25, 6, "gdtx@anphu.edu.vn"),
        ("T0006", "Trường Giáo dục chuyên biệt An Phú", "chuyen_biet", "TH&THCS", "C1",
         "Cụm GDTX và trường chuyên biệt", "no", 2, 20, 7, None),
    ]


def test_province_registry_blocks_read_back(clean):
    blocks = clean[0].blocks[["block_name", "block_kind", "note"]]
    assert list(blocks.itertuples(name=None)) == [
        ("C1", "Cụm GDTX và trường chuyên biệt", "cum", "PTDTNT, GDTX, chuyên biệt"),
        ("K1", "Khối các trường THPT", "khoi", None)]


def test_province_registry_direct_units_as_a_phong_registry(clean, forms):
    registry = as_registry(clean[0])
    assert registry.codes == {"T0001", "T0002", "T0003", "T0004", "T0005", "T0006"}
    assert registry.by_name("Kính gửi Trung tâm GDTX tỉnh An Phú") == ["T0005"]
    phong, _ = load_registry(SAMPLES / "danh-muc-don-vi.xlsx", forms)
    assert set(phong.units.columns) <= set(registry.units.columns)


# Faults


def test_province_registry_each_fault_gives_exactly_its_finding(faulty):
    _, findings = faulty
    sheets = [OFFICE_SHEET, UNIT_SHEET, BLOCK_SHEET]
    in_order = sorted(findings, key=lambda f: (sheets.index(f.sheet), f.row, f.cell))
    assert [(f.code, f.severity, f.sheet, f.cell, f.value) for f in in_order] == [
        ("bad-email", Severity.WARNING, OFFICE_SHEET, "E9", "vhxh.anphu.gov.vn"),
        ("duplicate-code", Severity.ERROR, OFFICE_SHEET, "B10", "X001"),
        ("commune-level-unit", Severity.WARNING, UNIT_SHEET, "E7", "THCS"),
        ("code-used-twice", Severity.ERROR, UNIT_SHEET, "B9", "X002"),
        ("unknown-block", Severity.ERROR, UNIT_SHEET, "F11", "K9"),
    ]


def test_province_registry_findings_say_what_is_expected(faulty):
    by_code = {f.code: f for f in faulty[1]}
    assert by_code["duplicate-code"].expected == "dòng 7"
    assert by_code["code-used-twice"].expected == f"ô B8 trang tính “{OFFICE_SHEET}”"
    assert by_code["code-used-twice"].column == "Mã đơn vị"
    assert by_code["unknown-block"].expected == f"mã một khối ở trang tính “{BLOCK_SHEET}” " \
                                                "(K1, C1)"
    assert "THPT" in by_code["commune-level-unit"].expected
    assert "PTDTNT" in by_code["commune-level-unit"].expected
    for finding in faulty[1]:
        assert finding.file == "danh-muc-so.xlsx" and finding.value in finding.message


def test_province_registry_errors_leave_their_rows_out_warnings_keep_them(faulty):
    registry, _ = faulty
    assert registry.usable
    assert sorted(registry.units.index) == ["T0001", "T0002", "T0004", "T0006"]
    assert registry.units.loc["T0001", "level"] == "THCS"
    assert registry.units.loc["T0002", "block_code"] == "K1"  # typed as the khối's name
    assert sorted(registry.offices.index) == ["X001", "X002", "X003"]
    assert registry.offices.loc["X001", "office_name"] == "Phòng Văn hóa – Xã hội xã Tân Lập"


def test_province_registry_missing_sheet_is_one_finding_and_not_usable(tmp_path, forms):
    path = write_province_registry(tmp_path / "danh-muc-so.xlsx", forms=forms)
    book = openpyxl.load_workbook(path)
    book.remove(book[BLOCK_SHEET])
    book.save(path)
    registry, findings = load_province_registry(path, forms)
    assert [(f.code, f.severity, f.sheet, f.cell, f.expected) for f in findings] == [
        ("missing-sheet", Severity.ERROR, None, None, BLOCK_SHEET)]
    assert not registry.usable
    assert len(registry.units) == 6 and registry.blocks.empty  # what could be read, flagged


def test_province_registry_missing_file_is_a_finding(tmp_path, forms):
    registry, findings = load_province_registry(tmp_path / "khong-co.xlsx", forms)
    assert [(f.code, f.file, f.value) for f in findings] == [
        ("registry-not-found", "khong-co.xlsx", str(tmp_path / "khong-co.xlsx"))]
    assert not registry.usable and registry.units.empty
    assert "unit_name" in registry.units.columns and registry.units.index.name == "unit_code"


def test_province_registry_a_phong_registry_is_not_usable(forms):
    registry, findings = load_province_registry(SAMPLES / "danh-muc-don-vi.xlsx", forms)
    assert not registry.usable
    assert ("missing-sheet", OFFICE_SHEET) in {(f.code, f.expected) for f in findings}


def test_province_registry_a_phong_registry_stays_a_phong_registry(forms):
    # A file without its hidden id is identified by its headers: the Phòng's registry must
    # match its own form better than the Sở's direct-units sheet.
    from pipeline.ingest.read import form_score, read_workbook

    book, _ = read_workbook(SAMPLES / "danh-muc-don-vi.xlsx", "danh-muc-don-vi.xlsx")
    assert form_score(forms.current("danh-muc"), book) > \
        form_score(forms.current("danh-muc-so"), book)
