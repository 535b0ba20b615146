"""Each kind of problem in one school file ends in exactly its own finding, at its cell."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import openpyxl
import pytest

from pipeline.config import load_config
from pipeline.engine import consolidation
from pipeline.forms.definitions import load_forms
from pipeline.ingest.registry import RegistryError, load_registry

from .conftest import SAMPLES

CLEAN = SAMPLES / "hop-thu" / "dang-ky_01001.xlsx"  # a correct sample file (unit 01001)
STAFF, UNIT = "Cá nhân", "Đơn vị"

# Codes these tests produce (the catalogue test checks every code is produced somewhere).
COVERED = {"unreadable-workbook", "unknown-form", "missing-sheet", "missing-column",
           "ambiguous-column", "bad-date", "bad-number", "out-of-range", "bad-email",
           "duplicate-unit", "unreadable-layout", "unknown-unit", "not-in-list",
           "missing-value"}


def _findings(root: Path, name: str = "tep.xlsx") -> list[tuple[str, str | None, str | None]]:
    result = consolidation(root / "hop-thu", load_config(root / "tdkt.toml"))
    return sorted((f.code, f.sheet, f.cell) for f in result.findings if f.file == name)


def _edited(office, edits: dict[tuple[str, str], object], source: Path = CLEAN) -> Path:
    root = office()
    target = root / "hop-thu" / "tep.xlsx"
    shutil.copy(source, target)
    wb = openpyxl.load_workbook(target)
    for (sheet, cell), value in edits.items():
        wb[sheet][cell].value = value
        if isinstance(value, str) and value.startswith("="):
            wb[sheet][cell].data_type = "s"  # text that looks like a formula, as typed after '
    wb.save(target)
    return root


# Files


def test_read_corrupt_workbook(office):
    data = CLEAN.read_bytes()
    root = office({"tep.xlsx": data[: len(data) // 2]})
    assert _findings(root) == [("unreadable-workbook", None, None)]


def test_read_unknown_form(office):
    root = office()
    wb = openpyxl.Workbook()
    wb.active["A1"], wb.active["B1"] = "Danh sách học sinh", "Lớp"
    wb.save(root / "hop-thu" / "tep.xlsx")
    assert _findings(root) == [("unknown-form", None, None)]


def test_read_missing_sheet_and_column(office):
    root = _edited(office, {(STAFF, "B6"): "Tên gọi"})  # the "Họ và tên" header renamed
    wb = openpyxl.load_workbook(root / "hop-thu" / "tep.xlsx")
    del wb[UNIT]
    wb.save(root / "hop-thu" / "tep.xlsx")
    found = _findings(root)
    assert ("missing-sheet", None, None) in found
    assert ("missing-column", STAFF, None) in found
    assert ("unknown-column", STAFF, "B6") in found
    assert len(found) == 3


def test_read_ambiguous_column(office):
    root = _edited(office, {(STAFF, "K6"): "Họ và tên"})  # "Ghi chú" header made a 2nd name
    assert _findings(root) == [("ambiguous-column", STAFF, None)]


# Cells


def test_read_cell_problems_each_give_one_finding(office):
    root = _edited(office, {(STAFF, "C8"): "31/02/1985", (STAFF, "D9"): "Không rõ",
                            (STAFF, "H10"): None, (UNIT, "D13"): "năm", (UNIT, "D14"): 0})
    assert _findings(root) == [
        ("bad-date", STAFF, "C8"),
        ("bad-number", UNIT, "D13"),
        ("missing-value", STAFF, "H10"),
        ("not-in-list", STAFF, "D9"),
        ("out-of-range", UNIT, "D14"),
    ]


def test_read_true_and_one_in_one_column_stay_apart(office):
    """TRUE equals 1 in Python: a column holding both normalises each as itself (the number
    counted, the TRUE reported), not the first one met for both."""
    root = _edited(office, {(UNIT, "D13"): 1, (UNIT, "D14"): True})
    assert _findings(root) == [("bad-number", UNIT, "D14")]


def test_read_formula_like_text_stays_text(office, tmp_path):
    from pipeline.engine import consolidate

    # One wrong sex in the same sheet: feedback copies only the sheets with a marked cell.
    root = _edited(office, {(STAFF, "K7"): '=HYPERLINK("http://x.invalid","bấm")',
                            (STAFF, "J7"): "+cmd|' /C calc'!A0", (STAFF, "K8"): "@SUM(A1)",
                            (STAFF, "D9"): "Không rõ"})
    result = consolidate(root / "hop-thu", tmp_path, load_config(root / "tdkt.toml"))
    assert [(f.code, f.cell) for f in result.findings if f.file == "tep.xlsx"] == [
        ("not-in-list", "D9")]
    copy = openpyxl.load_workbook(result.out_dir / "phan-hoi" / "01001.xlsx")[STAFF]
    assert copy["K7"].value == '=HYPERLINK("http://x.invalid","bấm")'
    assert copy["K7"].data_type == "s" and copy["J7"].data_type == "s"
    office_book = openpyxl.load_workbook(result.out_dir / "tong-hop-phong.xlsx")
    texts = [c for name in ("Cá nhân đăng ký", "Cá nhân chưa đăng ký")
             for row in office_book[name].iter_rows() for c in row
             if c.value in ("+cmd|' /C calc'!A0", "@SUM(A1)")]
    assert texts and all(c.data_type == "s" for c in texts)


# The older list layout


def _legacy(root: Path, heading: str) -> None:
    from .sample_inbox import Person, Unit, write_legacy_list

    unit = Unit("x", heading, "MN", "x", False, 1, 1, 0, "")
    unit.people = [Person("Lê Thị Hoa", dt.date(1990, 1, 1), "nu", "Kinh", "giao_vien", "GV",
                          "lao_dong_tien_tien", None, None)]
    write_legacy_list(unit, load_forms(), root / "hop-thu" / "tep.xlsx", "Sheet")


def test_read_legacy_layout_with_no_known_unit(office):
    root = office()
    _legacy(root, "TRƯỜNG MẦM NON KHÔNG CÓ")
    assert _findings(root) == [("legacy-layout", "Sheet", "6"), ("unknown-unit", None, None)]


def test_read_legacy_layout_matching_two_units_is_refused(office):
    root = office()
    result = consolidation(root / "hop-thu", load_config(root / "tdkt.toml"))
    names = result.units["unit_name"].tolist()
    _legacy(root, f"{names[0]} và {names[1]}")
    found = _findings(root)
    assert ("unreadable-layout", "Sheet", None) in found
    assert len(found) == 2


# The registry


def test_read_registry_problems_are_findings(office, forms):
    root = office()
    path = root / "danh-muc-don-vi.xlsx"
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    ws["B5"] = ws["B4"].value  # a duplicated unit code
    ws["J6"] = "khong-phai-email"
    wb.save(path)
    registry, findings = load_registry(path, forms)
    assert sorted((f.code, f.cell) for f in findings) == [("bad-email", "J6"),
                                                          ("duplicate-unit", "B5")]
    assert len(registry.units) == 45


def test_read_unreadable_registry_stops_the_run(office, forms):
    root = office()
    (root / "danh-muc-don-vi.xlsx").write_bytes(b"")
    with pytest.raises(RegistryError):
        load_registry(root / "danh-muc-don-vi.xlsx", forms)


def test_read_raw_sheet_travels_with_its_grid_packed_until_used():
    import pickle

    from pipeline.ingest.read import RawSheet

    sheet = RawSheet("Cá nhân", [["STT", "Họ và tên"], [1, "Nguyễn Thị Lan"], [None, 2.5]])
    table = {"raw": sheet, "same": sheet}  # one sheet referred to twice: sent once
    received = pickle.loads(pickle.dumps(table))
    assert received["raw"] is received["same"]
    assert "grid" not in received["raw"].__dict__  # still packed: nothing built yet
    again = pickle.loads(pickle.dumps(received["raw"]))  # sent on without unpacking
    for copy in (received["raw"], again):
        assert copy.value(1, 1) == "Nguyễn Thị Lan" and copy.value(5, 5) is None
        assert copy == sheet and copy.grid == sheet.grid
    blob = received["raw"].__getstate__()["_grid_blob"]  # unpacked: sent on with its blob
    assert blob is received["raw"]._packed[1]
    received["raw"].grid = [["khác"]]  # a grid put in its place is packed anew
    assert pickle.loads(pickle.dumps(received["raw"])).grid == [["khác"]]
    with pytest.raises(AttributeError):
        _ = received["raw"].missing


def _zip_with(data: bytes, at: int, byte: int) -> bytes:
    return data[:at] + bytes([byte]) + data[at + 1:]


def test_read_small_members_unpacked_in_memory_as_zipfile_unpacks_them():
    """sniff unpacks a workbook's small members itself (not through zipfile's streams): the
    same bytes for each member, packed or stored, and each corruption zipfile refuses refused
    (with an error the scan turns into `unreadable-workbook`)."""
    import io
    import zipfile

    from pipeline.ingest import sniff

    stored = io.BytesIO()
    with zipfile.ZipFile(stored, "w") as archive:
        archive.writestr("a.xml", "<a>Tiếng Việt</a>", compress_type=zipfile.ZIP_STORED)
        archive.writestr("b/ĐƠN.xml", "<b/>" * 500, compress_type=zipfile.ZIP_DEFLATED)
    for data in (CLEAN.read_bytes(), stored.getvalue()):
        archive = zipfile.ZipFile(io.BytesIO(data))
        for info in archive.infolist():
            with sniff._opened(archive, info) as stream:
                assert stream.read() == archive.read(info.filename), info.filename
    data = CLEAN.read_bytes()
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("xl/worksheets/sheet3.xml")
    name_at = info.header_offset + 30
    extra = int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
    packed_at = name_at + len(info.filename.encode()) + extra + info.compress_size // 2
    broken = {
        "a byte of the packed data": _zip_with(data, packed_at, data[packed_at] ^ 0x55),
        "the name in the local header": _zip_with(data, name_at + 3, ord("X")),
        "the local header's signature": _zip_with(data, info.header_offset, 0),
        "the declared CRC-32": _zip_with(data, data.rfind(info.filename.encode()) - 30,
                                         data[data.rfind(info.filename.encode()) - 30] ^ 1),
    }
    for bad in broken.values():
        archive = zipfile.ZipFile(io.BytesIO(bad))
        member = archive.getinfo(info.filename)
        with pytest.raises(sniff._UNPACK_ERRORS):
            archive.read(member)
        with pytest.raises(sniff._UNPACK_ERRORS):
            sniff._opened(archive, member).read()


# Sheets no form names: read on first use (in a reader process)

_NO_STRING = (b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/'
              b'spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="s"><v>99</v></c>'
              b'</row></sheetData></worksheet>')  # a shared string the file does not have


def _rewritten(target: Path, *, broken: str | None = None,
               renamed: tuple[str, str] | None = None) -> Path:
    """CLEAN with the sheet `broken` made unreadable to calamine (its XML naming a missing
    shared string: whole, unpacked and measured without fault) and/or one sheet renamed."""
    import zipfile

    from pipeline.ingest import sniff

    with zipfile.ZipFile(CLEAN) as source:
        parts = sniff.sheet_parts(source)
        members = {i.filename: source.read(i) for i in source.infolist()}
    if broken is not None:
        members[parts[broken]] = _NO_STRING
    if renamed is not None:
        old, new = (f'name="{n}"'.encode() for n in renamed)
        assert old in members["xl/workbook.xml"]
        members["xl/workbook.xml"] = members["xl/workbook.xml"].replace(old, new)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in members.items():
            out.writestr(name, data)
    return target


def _read(path: Path, monkeypatch, *, in_reader: bool):
    """The submission of `path` as a reader process reads it (in place) or as any other
    caller does (every sheet read at once, in a reader started for it)."""
    from pipeline.engine import read_submission
    from pipeline.ingest import isolated
    from pipeline.ingest.normalize import Context
    from pipeline.rounds.base import round_named

    config = load_config(SAMPLES / "tdkt.toml")
    forms = load_forms()
    registry, _ = round_named("dang-ky").load_registry(config, forms)
    with monkeypatch.context() as patch:
        patch.setattr(isolated, "_IN_READER", in_reader)
        return read_submission(path, path.parent, forms, registry,
                               Context(vocabs=forms.vocabs, unit_codes=registry.codes),
                               "dang-ky", validate=False)


def _outcome(sub) -> tuple:
    return ([(f.code, f.sheet, f.cell, f.value) for f in sub.findings], sub.unit_code,
            {k: t.raw.name for k, t in sub.tables.items()},
            {k: f.to_dict("split") for k, f in sub.frames.items()})


def test_read_sheets_no_form_names_are_read_only_when_looked_at(tmp_path, monkeypatch):
    lazy = _read(CLEAN, monkeypatch, in_reader=True)
    eager = _read(CLEAN, monkeypatch, in_reader=False)
    assert _outcome(lazy) == _outcome(eager) and lazy.tables and not lazy.findings
    loaded = {s.name: s.loaded for s in lazy.raw.sheets}
    assert loaded == {"Hướng dẫn": False, "Đơn vị": True, "Cá nhân": True, "Danh mục": False,
                      "_tdkt": True}
    for sheet in lazy.raw.sheets:  # read when looked at: what reading at once gives
        assert sheet.grid == next(s.grid for s in eager.raw.sheets if s.name == sheet.name)
        assert sheet.loaded

    # A data sheet renamed: found by its headers, the sheets it is looked for in read then.
    renamed = _rewritten(tmp_path / "doi-ten.xlsx", renamed=(STAFF, "DS cán bộ"))
    lazy, eager = (_read(renamed, monkeypatch, in_reader=r) for r in (True, False))
    assert _outcome(lazy) == _outcome(eager)
    assert lazy.tables["staff"].raw.name == "DS cán bộ" and not lazy.findings

    # Broken, and read when looked for: unreadable, as when read at once.
    both = _rewritten(tmp_path / "hong.xlsx", renamed=(STAFF, "DS cán bộ"), broken=STAFF)
    lazy, eager = (_read(both, monkeypatch, in_reader=r) for r in (True, False))
    assert _outcome(lazy) == _outcome(eager)
    assert [f.code for f in lazy.findings] == ["unreadable-workbook"] and lazy.raw is None


def test_read_broken_sheet_no_form_names_is_never_read_in_a_reader(tmp_path, monkeypatch):
    """The instructions sheet broken: the inbox's readers never read it, and the school's
    data is consolidated; a caller reading every sheet at once finds the file unreadable."""
    broken = _rewritten(tmp_path / "huong-dan-hong.xlsx", broken="Hướng dẫn")
    lazy = _read(broken, monkeypatch, in_reader=True)
    assert _outcome(lazy)[1:] == _outcome(_read(CLEAN, monkeypatch, in_reader=True))[1:]
    assert not lazy.findings
    eager = _read(broken, monkeypatch, in_reader=False)
    assert [f.code for f in eager.findings] == ["unreadable-workbook"]
    import pickle  # sent to the parent: the broken sheet travels empty, the rest whole
    sent = pickle.loads(pickle.dumps(lazy.raw))
    assert [(s.name, bool(s.grid)) for s in sent.sheets] == [
        ("Hướng dẫn", False), ("Đơn vị", True), ("Cá nhân", True), ("Danh mục", True),
        ("_tdkt", True)]
