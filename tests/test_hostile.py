"""Broken and hostile inbox entries: each ends in its finding; the batch goes on; nothing moves.

Every hostile file is generated here (seeded), from the sample files or from scratch.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import random
import subprocess
import sys
import threading
import tracemalloc
import unicodedata
import zipfile
from pathlib import Path

import openpyxl
import pytest

from pipeline import settings
from pipeline.config import ConfigError, load_config
from pipeline.engine import consolidate, consolidation
from pipeline.ingest import read
from pipeline.ingest.read import read_workbook
from pipeline.settings import Limits

from .conftest import ROOT, SAMPLES

GOOD = "dang-ky_01001.xlsx"
COVERED = {"not-a-file", "empty-file", "file-too-large", "zip-bomb", "not-a-workbook",
           "unreadable-workbook", "too-many-rows", "too-many-columns", "sheet-too-large",
           "xml-dtd", "macro-ignored", "external-link", "password-protected",
           "wrong-extension", "file-changing"}
SECRET = "MAT-KHAU-BI-MAT-7d41"  # planted in a file an XXE entity points to


def _sample(unit: str) -> bytes:
    """A correct sample registration of `unit` (01004, 01005, … are clean)."""
    return (SAMPLES / "hop-thu" / f"dang-ky_{unit}.xlsx").read_bytes()


def _state(inbox):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in inbox.iterdir()
            if p.is_file() and not p.is_symlink()}


_RUNS = itertools.count(1)


def _findings(root, name, out=None):
    """(code, message) of the findings on `name`, after checking that the inbox is untouched,
    the good file still consolidated and no written cell a formula (outputs under `out`, or
    a fresh folder beside the inbox)."""
    before = _state(root / "hop-thu")
    config = load_config(root / "tdkt.toml")
    out = out or root / f"ra-{next(_RUNS)}"  # every case writes its outputs and checks them
    result = consolidate(root / "hop-thu", out, config)
    _assert_no_formula(out)
    assert _state(root / "hop-thu") == before  # nothing changed, moved or lost
    assert result.units.loc["01001", "status"] == "valid"  # the rest of the batch went on
    return [(f.code, f.message) for f in result.findings if f.file == unicodedata.normalize(
        "NFC", name)]


def _assert_no_formula(out: Path) -> None:
    """No cell of any workbook written under `out` holds a formula."""
    books = sorted(out.rglob("*.xlsx"))
    assert books
    for path in books:
        book = openpyxl.load_workbook(path, read_only=True, data_only=False)
        try:
            for sheet in book.worksheets:
                for row in sheet.iter_rows():
                    for cell in row:
                        assert cell.data_type != "f", f"{path.name} {sheet.title} {cell.value}"
        finally:
            book.close()


def _all_output_text(out: Path) -> str:
    """Every cell value of every written workbook, and every other written text file."""
    texts = []
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        if path.suffix == ".xlsx":
            book = openpyxl.load_workbook(path, read_only=True)
            texts += [str(v) for s in book.worksheets for r in s.iter_rows(values_only=True)
                      for v in r if v is not None]
            book.close()
        elif path.suffix in (".json", ".txt", ".csv"):
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(texts)


def _rezip(data: bytes, add: dict[str, bytes] | None = None, change=None) -> bytes:
    """The zip `data` rebuilt with members changed (change(name, bytes) → bytes) or added."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info.filename)
            target.writestr(info.filename, change(info.filename, body) if change else body)
        for name, body in (add or {}).items():
            target.writestr(name, body)
    return out.getvalue()


def _small_workbook(rows: int = 30, cols: int = 11, far: dict[str, object] | None = None,
                    dimension: str | None = None) -> bytes:
    """A one-sheet workbook ("Dữ liệu") of rows × cols values, plus cells far away."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Dữ liệu"
    for r in range(1, rows + 1):
        sheet.append([f"ô {r}-{c}" for c in range(1, cols + 1)])
    for address, value in (far or {}).items():
        sheet[address] = value
    buffer = io.BytesIO()
    book.save(buffer)
    data = buffer.getvalue()
    if dimension:
        declared = f'<dimension ref="{sheet.dimensions}"'.encode()
        data = _rezip(data, change=lambda n, b: b.replace(
            declared, f'<dimension ref="{dimension}"'.encode())
            if n.startswith("xl/worksheets/") else b)
    return data


def _cfb(streams: list[str]) -> bytes:
    """A minimal OLE2 compound file whose directory names `streams` (all empty)."""
    def u32(n: int) -> bytes:
        return n.to_bytes(4, "little")

    end, free, nostream = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFF
    header = (bytes.fromhex("d0cf11e0a1b11ae1") + bytes(16) + (0x3E).to_bytes(2, "little")
              + (3).to_bytes(2, "little") + b"\xfe\xff" + (9).to_bytes(2, "little")
              + (6).to_bytes(2, "little") + bytes(6) + u32(0) + u32(1) + u32(1) + u32(0)
              + u32(4096) + u32(end) + u32(0) + u32(end) + u32(0) + u32(0)
              + b"".join(u32(free) for _ in range(108)))
    fat = u32(0xFFFFFFFD) + u32(end) + b"".join(u32(free) for _ in range(126))
    entries = []
    names = ["Root Entry", *streams]
    for i, name in enumerate(names):
        encoded = name.encode("utf-16-le") + b"\0\0"
        right = i + 1 if 0 < i < len(names) - 1 else nostream
        child = 1 if i == 0 and len(names) > 1 else nostream
        entries.append(encoded.ljust(64, b"\0") + len(encoded).to_bytes(2, "little")
                       + bytes([5 if i == 0 else 2, 1]) + u32(nostream) + u32(right)
                       + u32(child) + bytes(36) + u32(end) + bytes(8))
    directory = b"".join(entries).ljust(512, b"\0")
    assert len(header) == 512
    return header + fat + directory


@pytest.fixture
def inbox_with_good_file(office):
    root = office()
    (root / "hop-thu" / GOOD).write_bytes((SAMPLES / "hop-thu" / GOOD).read_bytes())
    return root


def _limits_table(root: Path, **values: object) -> None:
    """Add a [limits] table to the office's tdkt.toml."""
    lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
    with (root / "tdkt.toml").open("a", encoding="utf-8") as handle:
        handle.write(f"\n[limits]\n{lines}")


# Inbox entries that are not files, and files that cannot be workbooks


def test_hostile_directory_in_inbox(inbox_with_good_file):
    root = inbox_with_good_file
    (root / "hop-thu" / "thu-muc-con").mkdir()
    (code, message), = _findings(root, "thu-muc-con")
    assert code == "not-a-file" and "thư mục" in message


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_hostile_symlink_in_inbox_is_not_followed(inbox_with_good_file, tmp_path):
    root = inbox_with_good_file
    secret = tmp_path / "bi-mat.xlsx"
    secret.write_bytes((SAMPLES / "hop-thu" / GOOD).read_bytes())
    (root / "hop-thu" / "lien-ket.xlsx").symlink_to(secret)
    (code, message), = _findings(root, "lien-ket.xlsx")
    assert code == "not-a-file" and "liên kết" in message


def test_hostile_empty_file(inbox_with_good_file):
    root = inbox_with_good_file
    (root / "hop-thu" / "dang-ky_02001.xlsx").write_bytes(b"")
    (code, message), = _findings(root, "dang-ky_02001.xlsx")
    assert code == "empty-file" and "0 byte" in message


def test_hostile_file_too_large(inbox_with_good_file, monkeypatch):
    root = inbox_with_good_file
    limit = (root / "hop-thu" / GOOD).stat().st_size + 100
    monkeypatch.setattr(settings, "MAX_FILE_BYTES", limit)
    (root / "hop-thu" / "lon.xlsx").write_bytes(b"x" * (limit + 1000))
    found = _findings(root, "lon.xlsx")
    assert [c for c, _ in found] == ["file-too-large"] and "giới hạn" in found[0][1]


def test_hostile_zip_bomb_is_not_decompressed(inbox_with_good_file, monkeypatch):
    root = inbox_with_good_file
    monkeypatch.setattr(settings, "MAX_UNCOMPRESSED_BYTES", 5 * 1024 * 1024)
    with zipfile.ZipFile(root / "hop-thu" / "bom.xlsx", "w", zipfile.ZIP_DEFLATED) as bomb:
        bomb.writestr("[Content_Types].xml", "<Types/>")
        bomb.writestr("xl/worksheets/sheet1.xml", b"\0" * (20 * 1024 * 1024))
    assert (root / "hop-thu" / "bom.xlsx").stat().st_size < 100_000
    found = _findings(root, "bom.xlsx")
    assert [c for c, _ in found] == ["zip-bomb"] and "giải nén" in found[0][1]


def test_hostile_zip_with_a_huge_member_list_is_not_parsed(inbox_with_good_file, monkeypatch):
    root = inbox_with_good_file
    monkeypatch.setattr(settings, "MAX_ZIP_DIRECTORY_BYTES", 64 * 1024)
    with zipfile.ZipFile(root / "hop-thu" / "nhieu-tep.xlsx", "w") as many:
        for i in range(3000):
            many.writestr(f"xl/media/anh-{i:05d}.png", b"")
    (code, message), = _findings(root, "nhieu-tep.xlsx")
    assert code == "zip-bomb" and "danh mục tệp con" in message


# 1. Limits come from tdkt.toml


def test_limits_default_to_the_settings_and_come_from_tdkt_toml(office):
    root = office()
    assert load_config(root / "tdkt.toml").limits == settings.default_limits() == Limits()
    _limits_table(root, max_file_mb=0.5, max_uncompressed_mb=20, max_compression_ratio=50,
                  max_rows=500, max_columns=30)
    assert load_config(root / "tdkt.toml").limits == Limits(
        max_file_bytes=512 * 1024, max_uncompressed_bytes=20 * 1024 * 1024,
        max_compression_ratio=50, max_rows=500, max_columns=30)


@pytest.mark.parametrize(("values", "words"), [
    ({"max_rows": 0}, "số nguyên dương"),
    ({"max_rows": 10.5}, "số nguyên dương"),
    ({"max_file_mb": -1}, "số dương"),
    ({"max_file_mb": "50MB"}, "số dương"),
    ({"max_columns": True}, "số nguyên dương"),
    ({"max_cot": 10}, "không có khoá max_cot"),
])
def test_limits_bad_values_stop_the_run_in_vietnamese(office, values, words):
    root = office()
    _limits_table(root, **values)
    with pytest.raises(ConfigError, match=words):
        load_config(root / "tdkt.toml")


def test_limits_given_to_the_reader_are_used(tmp_path):
    path = tmp_path / "tep.xlsx"
    path.write_bytes(_sample("01004"))
    assert read_workbook(path, "tep.xlsx")[1] == []
    tiny = Limits(max_file_bytes=path.stat().st_size - 1)
    (finding,) = read_workbook(path, "tep.xlsx", tiny)[1]
    assert finding.code == "file-too-large"
    _, found = read_workbook(path, "tep.xlsx", Limits(max_rows=5, max_columns=3))
    assert {f.code for f in found} == {"too-many-rows", "too-many-columns"}


def test_limits_from_tdkt_toml_reach_the_inbox_reader(inbox_with_good_file):
    root = inbox_with_good_file
    _limits_table(root, max_file_mb=0.2)
    (root / "hop-thu" / "lon.xlsx").write_bytes(b"x" * 300_000)
    (code, _), = _findings(root, "lon.xlsx")
    assert code == "file-too-large"


# 2. A sheet declaring a million rows


def test_hostile_million_row_sheet_keeps_its_real_rows(tmp_path):
    path = tmp_path / "trieu-dong.xlsx"
    path.write_bytes(_small_workbook(far={"K1048576": "ô lạc", "KL5": "ô xa"},
                                     dimension="A1:XFD1048576"))
    raw, found = read_workbook(path, "trieu-dong.xlsx")
    (sheet,) = raw.sheets
    assert len(sheet.grid) == 30 and len(sheet.grid[0]) == 11
    assert sheet.grid[29][10] == "ô 30-11"
    assert [(f.code, f.sheet, f.value) for f in found] == [
        ("too-many-rows", "Dữ liệu", "dòng 1048576"),
        ("too-many-columns", "Dữ liệu", "cột KL (cột thứ 298)")]
    assert "vượt giới hạn 20000 dòng" in found[0].message


def test_hostile_far_cell_in_a_sheet_part_not_named_xml(tmp_path):
    def renamed(name: str, body: bytes) -> bytes:
        return body.replace(b"worksheets/sheet1.xml", b"worksheets/sheet1.dat")

    source = _small_workbook(far={"K1048576": "ô lạc"})
    parts = zipfile.ZipFile(io.BytesIO(source))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in parts.infolist():  # the reader follows the workbook's relationships
            target.writestr(renamed("", info.filename.encode()).decode(),
                            renamed(info.filename, parts.read(info.filename)))
    path = tmp_path / "phan-la.xlsx"
    path.write_bytes(out.getvalue())
    raw, found = read_workbook(path, path.name)
    assert len(raw.sheets[0].grid) == 30 and [f.code for f in found] == ["too-many-rows"]


def test_hostile_real_rows_beyond_the_limit_are_cut(tmp_path):
    path = tmp_path / "dai.xlsx"
    path.write_bytes(_small_workbook(rows=150, cols=4))
    raw, found = read_workbook(path, "dai.xlsx", Limits(max_rows=100))
    assert len(raw.sheets[0].grid) == 100 and raw.sheets[0].grid[99][0] == "ô 100-1"
    assert [(f.code, f.value) for f in found] == [("too-many-rows", "dòng 150")]


def test_hostile_far_away_cell_in_a_registration(inbox_with_good_file):
    root = inbox_with_good_file
    book = openpyxl.load_workbook(io.BytesIO(_sample("01004")))
    book["Cá nhân"]["K1048576"] = "=HYPERLINK(\"http://x.invalid\")"
    book["Cá nhân"]["K1048576"].data_type = "s"
    book.save(root / "hop-thu" / "xa.xlsx")
    found = _findings(root, "xa.xlsx", root / "ra")
    assert [c for c, _ in found if c.startswith("too-many")] == ["too-many-rows"]
    assert any("Cá nhân" in m and "dòng 1048576" in m for _, m in found)


@pytest.mark.skipif(sys.platform == "win32", reason="resource is POSIX only")
def test_hostile_million_row_sheet_memory_stays_small(tmp_path):
    path = tmp_path / "trieu-dong.xlsx"
    path.write_bytes(_small_workbook(far={"XFD1048576": "ô lạc"}, dimension="A1:XFD1048576"))
    code = (
        "import json, resource, sys\n"
        "from pathlib import Path\n"
        "from pipeline.ingest.read import read_workbook\n"
        "kb = lambda: max(resource.getrusage(who).ru_maxrss for who in\n"
        "                 (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))\n"
        "base = kb()\n"
        "raw, found = read_workbook(Path(sys.argv[1]), 'x.xlsx')  # in a reader process\n"
        "scale = 1024 if sys.platform == 'darwin' else 1\n"
        "print(json.dumps({'rows': len(raw.sheets[0].grid), 'codes': [f.code for f in found],\n"
        "                  'grown_mb': (kb() - base) / scale / 1024}))\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["rows"] == 30 and report["codes"] == ["too-many-rows", "too-many-columns"]
    assert report["grown_mb"] < 30  # calamine alone would hold 16384 × 1048576 cells


def test_hostile_huge_opendocument_sheet_is_refused(inbox_with_good_file):
    root = inbox_with_good_file

    def far(name: str, body: bytes) -> bytes:
        if name != "content.xml":
            return body
        rows = (b'<table:table-row table:number-rows-repeated="1000000"><table:table-cell/>'
                b'</table:table-row><table:table-row><table:table-cell office:value-type='
                b'"string"><text:p>xa</text:p></table:table-cell></table:table-row>')
        cut = body.index(b"</table:table>")
        return body[:cut] + rows + body[cut:]

    source = (SAMPLES / "hop-thu" / "03005.ods").read_bytes()
    (root / "hop-thu" / "lon.ods").write_bytes(_rezip(source, change=far))
    (code, message), = _findings(root, "lon.ods")
    assert code == "sheet-too-large" and "1000042 dòng" in message


# 3. Cut and corrupt files


def test_hostile_truncated_workbook(inbox_with_good_file):
    root = inbox_with_good_file
    data = _sample("01004")
    (root / "hop-thu" / "cat.xlsx").write_bytes(data[: len(data) // 2])
    (code, message), = _findings(root, "cat.xlsx")
    assert code == "unreadable-workbook" and "cắt cụt" in message and "chép" in message


def test_hostile_corrupt_bytes_inside_a_workbook(inbox_with_good_file):
    root = inbox_with_good_file
    data = bytearray(_sample("01004"))
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("xl/worksheets/sheet3.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + int.from_bytes(
        data[info.header_offset + 28:info.header_offset + 30], "little")
    rng = random.Random(7)
    for _ in range(16):
        data[start + rng.randrange(info.compress_size // 4, info.compress_size)] ^= 0xFF
    (root / "hop-thu" / "hong.xlsx").write_bytes(bytes(data))
    (code, message), = _findings(root, "hong.xlsx")
    assert code == "unreadable-workbook" and "xl/worksheets/sheet3.xml" in message


# 4 and 8. What the bytes really are


def test_hostile_zip_that_is_not_a_workbook(inbox_with_good_file):
    root = inbox_with_good_file
    with zipfile.ZipFile(root / "hop-thu" / "nen.xlsx", "w") as archive:
        archive.writestr("ghi-chu.txt", "=cmd|' /C calc'!A0")
    (code, message), = _findings(root, "nen.xlsx", root / "ra")
    assert code == "not-a-workbook" and "tệp nén ZIP" in message and "ghi-chu.txt" in message


@pytest.mark.parametrize(("name", "data", "words"), [
    ("bao-cao.xlsx", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "tệp PDF"),
    ("danh-sach.xlsx", "STT,Họ và tên\n1,=1+2\n2,\"+cmd|' /C calc'!A0\"\n".encode(),
     "văn bản thường (ví dụ CSV)"),
    ("xuat-tu-phan-mem.xls", b"<html><body><table><tr><td>1</td></tr></table></body></html>",
     "trang web (HTML)"),
    ("cong-van.xlsx", None, "văn bản Word (.docx)"),
    ("cong-van-cu.xlsx", _cfb(["WordDocument", "1Table"]), "Word 97–2003"),
])
def test_hostile_other_files_named_as_workbooks(inbox_with_good_file, name, data, words):
    root = inbox_with_good_file
    if data is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as docx:
            docx.writestr("[Content_Types].xml", "<Types/>")
            docx.writestr("word/document.xml", "<w:document/>")
        data = buffer.getvalue()
    (root / "hop-thu" / name).write_bytes(data)
    (code, message), = _findings(root, name, root / "ra")
    assert code == "not-a-workbook" and words in message


def test_hostile_workbooks_with_the_wrong_extension_are_read(inbox_with_good_file):
    root = inbox_with_good_file
    inbox = root / "hop-thu"
    (inbox / "that-ra-la-xlsx.xls").write_bytes(_sample("01004"))
    (inbox / "that-ra-la-xls.xlsx").write_bytes((SAMPLES / "hop-thu" / "03004.xls").read_bytes())
    (inbox / "DANG-KY_01005.XLSX").write_bytes(_sample("01005"))
    for path in inbox.iterdir():
        raw, _ = read_workbook(path, path.name)
        assert raw is not None and {s.name for s in raw.sheets} >= {"Đơn vị", "Cá nhân"}
    (code, message), = _findings(root, "that-ra-la-xlsx.xls")
    assert code == "wrong-extension" and "thực chất là tệp .xlsx (Excel)" in message
    found = dict(_findings(root, "that-ra-la-xls.xlsx"))  # an .xls is also an old format
    assert set(found) == {"wrong-extension", "old-file-format"}
    assert "Excel 97–2003" in found["wrong-extension"]
    assert _findings(root, "DANG-KY_01005.XLSX") == []  # upper case: an ordinary .xlsx
    assert consolidation(inbox, load_config(root / "tdkt.toml")).units.loc[
        "01005", "status"] == "valid"


# 5. DTDs: billion laughs and external entities


def _with_dtd(member: str, dtd: str, body: str) -> bytes:
    """A sample registration whose `member` starts with `dtd` and has `body` added."""
    def change(name: str, data: bytes) -> bytes:
        if name != member:
            return data
        text = data.decode("utf-8")
        start = text.index("?>") + 2 if text.startswith("<?xml") else 0
        return (text[:start] + dtd + text[start:]).replace("</sheetData>", body
                                                           + "</sheetData>").encode()
    return _rezip(_sample("01004"), change=change)


_LAUGHS = "<!DOCTYPE l [<!ENTITY l0 \"ha\">" + "".join(
    f"<!ENTITY l{i} \"{('&l' + str(i - 1) + ';') * 10}\">" for i in range(1, 10)) + "]>"


@pytest.mark.parametrize("member", ["xl/workbook.xml", "xl/worksheets/sheet3.xml",
                                    "[Content_Types].xml"])
def test_hostile_billion_laughs_is_refused_unexpanded(inbox_with_good_file, member):
    root = inbox_with_good_file
    path = root / "hop-thu" / "cuoi.xlsx"
    path.write_bytes(_with_dtd(member, _LAUGHS, '<row r="99"><c r="A99" t="inlineStr">'
                                                '<is><t>&amp;l9;</t></is></c></row>'))
    tracemalloc.start()
    try:
        raw, _ = read_workbook(path, "cuoi.xlsx")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert raw is None and peak < 20 * 1024 * 1024
    (code, message), = _findings(root, "cuoi.xlsx")
    assert code == "xml-dtd" and member in message and "DTD" in message


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_hostile_external_entity_is_never_read(inbox_with_good_file, tmp_path, encoding):
    root = inbox_with_good_file
    secret = tmp_path / "bi-mat.txt"
    secret.write_text(SECRET, encoding="utf-8")
    dtd = f'<!DOCTYPE x [<!ENTITY e SYSTEM "{secret.as_uri()}">]>'
    data = _with_dtd("xl/worksheets/sheet3.xml", dtd,
                     '<row r="99"><c r="A99" t="inlineStr"><is><t>&e;</t></is></c>'
                     '<c r="B99" t="inlineStr"><is><t>=1+1</t></is></c></row>')
    if encoding == "utf-16":
        data = _rezip(data, change=lambda n, b: b.decode().replace(
            'encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
            if n == "xl/worksheets/sheet3.xml" else b)
    (root / "hop-thu" / "xxe.xlsx").write_bytes(data)
    (code, message), = _findings(root, "xxe.xlsx", root / "ra")
    assert code == "xml-dtd" and SECRET not in message
    assert SECRET not in _all_output_text(root / "ra")


def test_openpyxl_parses_with_defusedxml():
    from openpyxl.xml import DEFUSEDXML

    assert DEFUSEDXML  # the registry, templates and earlier outputs are parsed safely


# 6. Macros and links to other files


_VBA_TYPES = (b'<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>'
              b"</Types>")


def _with_macros(data: bytes) -> bytes:
    def change(name: str, body: bytes) -> bytes:
        if name == "[Content_Types].xml":
            return body.replace(b"</Types>", _VBA_TYPES).replace(
                b"sheet.main+xml", b"sheet.macroEnabled.main+xml")
        return body
    vba = bytes(random.Random(6).randrange(256) for _ in range(2048))
    return _rezip(data, add={"xl/vbaProject.bin": vba}, change=change)


def _formula_cells(data: bytes) -> bytes:
    """A sample registration with a real formula and formula-like text on its first sheet."""
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book.worksheets[0]
    sheet["H1"] = "=1+1"
    sheet["H2"] = "=HYPERLINK(\"http://x.invalid\",\"bấm\")"
    sheet["H2"].data_type = "s"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_hostile_macros_are_never_run_and_values_are_read(inbox_with_good_file):
    root = inbox_with_good_file
    path = root / "hop-thu" / "macro.xlsm"
    path.write_bytes(_with_macros(_formula_cells(_sample("01004"))))
    raw, found = read_workbook(path, "macro.xlsm")
    assert raw is not None and "Cá nhân" in {s.name for s in raw.sheets}
    assert [f.code for f in found] == ["macro-ignored"]
    (code, message), = _findings(root, "macro.xlsm", root / "ra")
    assert code == "macro-ignored" and "không được chạy" in message and "VBA" in message


def test_hostile_external_links_use_the_cached_values(inbox_with_good_file):
    root = inbox_with_good_file
    link = (b'<externalLink xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            b'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            b'<externalBook r:id="rId1"><sheetNames><sheetName val="Luong"/></sheetNames>'
            b"</externalBook></externalLink>")
    rels = (b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            b'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
            b'officeDocument/2006/relationships/externalLinkPath" '
            b'Target="file:///C:/Users/ke-toan/Bang-luong.xlsx" TargetMode="External"/>'
            b"</Relationships>")
    data = _rezip(_formula_cells(_sample("01004")), add={
        "xl/externalLinks/externalLink1.xml": link,
        "xl/externalLinks/_rels/externalLink1.xml.rels": rels})
    (root / "hop-thu" / "lien-ket.xlsx").write_bytes(data)
    (code, message), = _findings(root, "lien-ket.xlsx", root / "ra")
    assert code == "external-link" and "Bang-luong.xlsx" in message
    assert "giá trị đã lưu" in message


# 7. Password-protected workbooks


def test_hostile_password_protected_workbook(inbox_with_good_file):
    ooxml = pytest.importorskip("msoffcrypto.format.ooxml")  # a dev dependency
    root = inbox_with_good_file
    encrypted = io.BytesIO()
    ooxml.OOXMLFile(io.BytesIO(_sample("01004"))).encrypt("mat-khau", encrypted)
    (root / "hop-thu" / "mat-khau.xlsx").write_bytes(encrypted.getvalue())
    (code, message), = _findings(root, "mat-khau.xlsx")
    assert code == "password-protected" and "mật khẩu" in message
    hint = next(f.hint for f in consolidation(root / "hop-thu", load_config(
        root / "tdkt.toml")).findings if f.code == "password-protected")
    assert "Mã hoá bằng mật khẩu" in hint


def test_hostile_encrypted_container_is_recognised_by_its_directory(inbox_with_good_file):
    root = inbox_with_good_file
    (root / "hop-thu" / "ma-hoa.xls").write_bytes(_cfb(["EncryptionInfo", "EncryptedPackage"]))
    (code, message), = _findings(root, "ma-hoa.xls")
    assert code == "password-protected" and "mã hoá" in message


# 9. File names


def test_hostile_file_names_are_read_and_reported_in_nfc(inbox_with_good_file):
    root = inbox_with_good_file
    inbox = root / "hop-thu"
    school = "Trường Tiểu học Hòa Bình.xlsx"
    long_name = "Bản đăng ký thi đua " + "x" * 200 + ".xlsx"
    names = {unicodedata.normalize("NFC", school): "01004",
             unicodedata.normalize("NFD", "Trường Tiểu học Hòa Bình (gửi lại).xlsx"): "01005",
             long_name: "01007",
             "Bản sao (2) [cuối]  {mới}.xlsx": "01008"}
    assert len(long_name) > 200 and len(long_name.encode()) < 255
    for name, unit in names.items():
        (inbox / name).write_bytes(_sample(unit))
    nfd_bad = unicodedata.normalize("NFD", "Bảng hỏng (bản cũ).xlsx")
    (inbox / nfd_bad).write_bytes(b"khong phai bang tinh")
    (inbox / "..\\..\\thoat-ra.xlsx").write_bytes(b"")
    out = root / "ra"
    result = consolidate(inbox, out, load_config(root / "tdkt.toml"))
    for unit in names.values():
        assert result.units.loc[unit, "status"] == "valid"
    assert all(unicodedata.is_normalized("NFC", f.file) for f in result.findings)
    (code, message), = _findings(root, nfd_bad)
    assert code == "not-a-workbook" and unicodedata.normalize("NFC", nfd_bad) in message
    readable = {s.file for s in result.submissions if s.unit_code} - {GOOD}
    assert readable == {unicodedata.normalize("NFC", n) for n in names}
    written = [p.resolve() for p in out.rglob("*") if p.is_file()]
    assert all(p.is_relative_to(out.resolve()) for p in written)
    assert all(len(p.name.encode()) < 255 for p in written)
    feedback = result.out_dir / "phan-hoi"
    assert {p.name for p in feedback.glob("*.xlsx")} >= {f"{u}.xlsx" for u in names.values()}


# 10. A file still being copied


def test_hostile_file_changing_while_read_is_not_counted(inbox_with_good_file, monkeypatch):
    root = inbox_with_good_file
    path = root / "hop-thu" / "dang-chep.xlsx"
    data = _sample("01004")
    path.write_bytes(data[: len(data) // 2])
    snapshot = read._snapshot

    def copier_still_writing(target: Path, limit: int) -> bytes:
        seen = snapshot(target, limit)
        if target.name == path.name:
            with target.open("ab") as handle:  # the copy goes on while tdkt reads
                handle.write(data[len(data) // 2:])
        return seen

    monkeypatch.setattr(read, "_snapshot", copier_still_writing)
    result = consolidation(root / "hop-thu", load_config(root / "tdkt.toml"))
    (finding,) = [f for f in result.findings if f.file == path.name]
    assert finding.code == "file-changing" and "đang được chép" in finding.message
    assert result.units.loc["01004", "status"] != "Hợp lệ"  # not counted this time
    assert result.units.loc["01001", "status"] == "valid"
    assert path.read_bytes() == data  # finished copying: the next run reads it


def test_hostile_file_changing_from_another_thread(tmp_path):
    path = tmp_path / "dang-chep.xlsx"
    data = _sample("01004")
    path.write_bytes(data)
    reading = threading.Event()
    snapshot = read._snapshot

    def slow(target: Path, limit: int) -> bytes:
        seen = snapshot(target, limit)
        reading.set()
        writer.join()
        return seen

    def copy_more() -> None:
        reading.wait(5)
        with path.open("ab") as handle:
            handle.write(b"\0" * 10)

    writer = threading.Thread(target=copy_more)
    writer.start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(read, "_snapshot", slow)
        raw, found = read_workbook(path, path.name)
    assert raw is None and [f.code for f in found] == ["file-changing"]


# Warnings leave the file counted


def test_hostile_files_with_warnings_only_are_still_counted(inbox_with_good_file):
    root = inbox_with_good_file
    inbox = root / "hop-thu"
    (inbox / "macro.xlsm").write_bytes(_with_macros(_sample("01004")))
    (inbox / "that-ra-la-xlsx.xls").write_bytes(_sample("01005"))
    (inbox / unicodedata.normalize("NFD", "Bảng hỏng.xlsx")).write_bytes(b"")
    result = consolidation(inbox, load_config(root / "tdkt.toml"))
    assert result.units.loc["01004", "status"] == "valid"
    assert result.units.loc["01005", "status"] == "valid"
    assert all(unicodedata.is_normalized("NFC", s.file) for s in result.submissions)
