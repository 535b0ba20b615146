"""The history store as an office uses it (issue 13, defect 8): confirmations checked and
undoable, every spelling of a person found, imports idempotent and checked against the
registry with a workbook of matches `tdkt confirm` reads, names in the unit view, a quick
`tdkt history`, nobody matched by name alone, and the schema 5 migration (approvals included).
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.store import database
from pipeline.store.database import SCHEMA_VERSION, RoundRecord, Store
from pipeline.store.identity import person_key
from pipeline.store.record import assign_person_ids

from .conftest import ROOT, SAMPLES
from .test_history_flow import _history_list, _label

COVERED = {"unit-not-in-registry", "unknown-person-id", "birth-dates-differ"}
CONFIG = SAMPLES / "tdkt.toml"
V3 = Path(__file__).parent / "files" / "store-v3"
MATCHES_SHEET = "Xác nhận trùng người"  # texts.yaml reports.sheet_matches
PERSON_HEADER = "Mã người trong kho"
CONFIRM_HEADER = "Là cùng người với mã"
HUONG = ("Nguyễn Thị Hương", dt.date(1985, 3, 4))


def _run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def _record_year(path: Path, year: str, rows: list[tuple[str, dt.date | None, str]],
                 round_: str = "dang-ky") -> tuple[list[int], pd.DataFrame]:
    """One round of `rows` (name, birth date, unit) recorded as `record` does: person ids
    assigned, then the round's rows, in one transaction."""
    staff = pd.DataFrame([{"unit_code": u, "full_name": n, "birth_date": b, "row": 7 + i}
                          for i, (n, b, u) in enumerate(rows)])
    with Store.open(path) as store, store.transaction():
        ids, notes = assign_person_ids(store, staff, year)
        store.record_round(RoundRecord(
            year, round_, f"{year[:4]}-10-20T09:00:00+07:00",
            people=[{"person_id": int(p), "unit_code": u, "row": 7 + i, "full_name": n,
                     "birth_date": b.isoformat() if isinstance(b, dt.date) else None,
                     "title": "lao_dong_tien_tien"}
                    for i, ((n, b, u), p) in enumerate(zip(rows, ids, strict=True))]))
    return [int(i) for i in ids], notes


def _matches_book(path: Path, rows: list[tuple[object, object]]) -> Path:
    """A confirmation sheet as the office fills it: (person id, same as) per row."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = MATCHES_SHEET
    ws.append(["NGƯỜI CẦN PHÒNG XÁC NHẬN"])
    ws.append([])
    ws.append(["STT", "Họ và tên", PERSON_HEADER, CONFIRM_HEADER])
    for i, (person, same_as) in enumerate(rows, start=1):
        ws.append([i, "Nguyễn Thị Hương", person, same_as])
    wb.save(path)
    return path


def _links(path: Path) -> list[tuple[int, int]]:
    with Store.open(path) as store:
        return sorted(store.person_links())


def _contents(path: Path) -> dict[str, list[tuple]]:
    with Store.open(path) as store:
        tables = [r[0] for r in store.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(map(tuple, store.execute(f"SELECT * FROM {t}")), key=repr)
                for t in tables}


# Confirmations


def test_confirm_refuses_an_unknown_person_id(tmp_path):
    store = tmp_path / "kho.sqlite"
    (lan,), _ = _record_year(store, "2024-2025", [(*HUONG, "01001")])
    book = _matches_book(tmp_path / "xac-nhan.xlsx", [(lan, 999), ("mười", lan)])
    result = _run("confirm", book, "--store", store)
    assert result.exit_code == 2
    assert "Ô D4 trang tính “Xác nhận trùng người” (cột “Là cùng người với mã”): “999” không " \
        "phải mã người có trong kho lịch sử" in result.output
    assert "Ô C5 trang tính “Xác nhận trùng người” (cột “Mã người trong kho”): “mười” không " \
        "phải mã người" in result.output
    assert "Chưa lưu xác nhận nào" in result.output
    assert _links(store) == []


def test_confirm_refuses_people_born_on_different_days_unless_told(tmp_path):
    store = tmp_path / "kho.sqlite"
    (first, second), _ = _record_year(store, "2024-2025", [
        ("Nguyễn Thị Hương", dt.date(1985, 3, 4), "01001"),
        ("Nguyễn Thị Hương", dt.date(1990, 7, 1), "01002")])
    book = _matches_book(tmp_path / "xac-nhan.xlsx", [(second, first)])
    refused = _run("confirm", book, "--store", store)
    assert refused.exit_code == 2
    assert "Ô D4 trang tính “Xác nhận trùng người”" in refused.output
    assert f"mã {second} sinh 01/07/1990, mã {first} sinh 04/03/1985" in refused.output
    assert "--allow-different-birth-dates" in refused.output
    assert _links(store) == []
    told = _run("confirm", book, "--store", store, "--allow-different-birth-dates")
    assert told.exit_code == 0, told.output
    assert "Đã lưu 1 xác nhận" in told.output
    assert _links(store) == [(first, second)]


def test_confirm_link_is_undone_and_both_steps_are_kept(tmp_path):
    store = tmp_path / "kho.sqlite"
    (first, second), _ = _record_year(store, "2024-2025", [
        (*HUONG, "01001"), (*HUONG, "01002")])
    book = _matches_book(tmp_path / "tong-hop-phong.xlsx", [(second, first)])
    assert _run("confirm", book, "--store", store).exit_code == 0
    shown = _run("history", "Nguyen Thi Huong", "--store", store).output
    assert shown.count("Nguyễn Thị Hương (sinh 04/03/1985") == 1  # one person now
    assert f"cùng người với mã {second}" in shown

    undone = _run("unconfirm", second, first, "--store", store)
    assert undone.exit_code == 0, undone.output
    assert f"Đã bỏ xác nhận mã {second} và mã {first}" in undone.output
    assert _links(store) == []
    assert _run("history", "Nguyen Thi Huong", "--store", store).output.count(
        "Nguyễn Thị Hương (sinh 04/03/1985") == 2
    with Store.open(store) as opened:
        log = [(r["person_id"], r["other_id"], r["action"], r["done_by"])
               for r in opened.link_log()]
    assert log == [(first, second, "link", "tong-hop-phong.xlsx"),
                   (first, second, "unlink", "tdkt unconfirm")]
    again = _run("unconfirm", second, first, "--store", store)
    assert again.exit_code == 2 and "không có gì để bỏ" in again.output
    assert _run("unconfirm", first, 999, "--store", store).exit_code == 2


# Spellings


def test_history_finds_a_person_by_every_spelling(tmp_path):
    store = tmp_path / "kho.sqlite"
    (person,), _ = _record_year(store, "2024-2025", [(*HUONG, "01001")])
    (again,), notes = _record_year(store, "2025-2026", [("Nguyễn Thị Hưng", HUONG[1], "01001")])
    assert again == person and notes["how"].tolist() == ["typo"]
    for typed in ("Nguyễn Thị Hưng", "nguyen thi hung, 04/03/1985", "Nguyễn Thị Hương"):
        result = _run("history", typed, "--store", store)
        assert result.exit_code == 0
        lines = result.output.splitlines()
        assert lines[0] == (f"Nguyễn Thị Hương (sinh 04/03/1985, mã {person}; còn ghi là: "
                            "Nguyễn Thị Hưng):"), typed
        assert [line.split()[0] for line in lines[1:]] == ["2024-2025", "2025-2026"]


# Imports


def _import(path: Path, store: Path, *extra: object):
    return _run("import-history", path, "--store", store, "--config", CONFIG, *extra)


def test_import_history_twice_changes_nothing(tmp_path):
    store = tmp_path / "kho.sqlite"
    rows = [("2023-2024", *HUONG, "01001", "HTXSNV", _label("cstd_co_so"), None, "12/QĐ",
             dt.date(2024, 6, 1)),
            ("2023-2024", "Lê Văn Tám", dt.date(1980, 1, 1), "01002", None,
             _label("lao_dong_tien_tien"), None, None, None)]
    path = _history_list(tmp_path / "lich-su.xlsx", rows)
    first = _import(path, store)
    assert first.exit_code == 0, first.output
    assert "Đã nhập 3 dòng" in first.output
    before = _contents(store)
    again = _import(path, store)
    assert again.exit_code == 0, again.output
    assert "không nhập lại, kho lịch sử không thay đổi" in again.output
    assert _contents(store) == before
    # The same rows in another copy of the list (saved again: other bytes) add nothing either.
    copy = _history_list(tmp_path / "lich-su (ban sao).xlsx", rows)
    book = openpyxl.load_workbook(copy)
    book.properties.title = "Bản sao"  # saved in the same second, the bytes would be equal
    book.save(copy)
    assert copy.read_bytes() != path.read_bytes()
    third = _import(copy, store)
    assert "Đã nhập 0 dòng" in third.output and "3 dòng đã có trong kho" in third.output
    after = _contents(store)
    assert {t: rows for t, rows in after.items() if t != "imported_files"} == \
        {t: rows for t, rows in before.items() if t != "imported_files"}
    with Store.open(store) as opened:
        assert len(opened.awards_of(1)) + len(opened.awards_of(2)) == 3


def test_import_history_reports_unit_codes_not_in_the_registry(tmp_path):
    store = tmp_path / "kho.sqlite"
    path = _history_list(tmp_path / "lich-su.xlsx", [
        ("2023-2024", *HUONG, "01001", None, _label("lao_dong_tien_tien"), None, None, None),
        ("2023-2024", "Lê Văn Tám", dt.date(1980, 1, 1), "99999", None,
         _label("lao_dong_tien_tien"), None, None, None)])
    result = _import(path, store)
    assert result.exit_code == 0, result.output
    assert "Ô E3 trang tính “Danh sách khen thưởng” (cột “Mã đơn vị”): mã đơn vị “99999” không " \
        "có trong danh mục đơn vị của Phòng" in result.output
    assert "Đã nhập 1 dòng" in result.output
    with Store.open(store) as opened:
        assert {a["unit_code"] for p in opened.persons() for a in opened.awards_of(p["id"])} \
            == {"01001"}
        assert [p["full_name"] for p in opened.persons()] == ["Nguyễn Thị Hương"]


def test_import_history_writes_the_matches_confirm_reads(tmp_path):
    store = tmp_path / "kho.sqlite"
    (first, second), _ = _record_year(store, "2024-2025", [
        (*HUONG, "01001"), (*HUONG, "01002")])
    path = _history_list(tmp_path / "lich-su-2023.xlsx", [
        ("2023-2024", *HUONG, "01003", None, _label("lao_dong_tien_tien"), None, None, None)])
    result = _import(path, store)
    assert result.exit_code == 0, result.output
    sheet = tmp_path / "xac-nhan-trung-nguoi_lich-su-2023.xlsx"
    assert f"tdkt confirm {sheet}" in result.output
    wb = openpyxl.load_workbook(sheet)
    ws = wb[MATCHES_SHEET]
    header = next(r for r in range(1, 20) if ws.cell(r, 1).value == "STT")
    col = {ws.cell(header, c).value: c for c in range(1, ws.max_column + 1)}
    row = header + 1
    assert ws.cell(row, col["Họ và tên"]).value == "Nguyễn Thị Hương"
    assert ws.cell(row, col["Dòng trong tệp"]).value == 2
    assert ws.cell(row, col["Mã người có thể trùng"]).value == f"{first}, {second}"
    imported = ws.cell(row, col[PERSON_HEADER]).value
    assert imported not in (first, second)
    assert ws.cell(row + 1, col[PERSON_HEADER]).value is None  # one match only
    ws.cell(row, col[CONFIRM_HEADER]).value = first  # the office decides
    wb.save(sheet)
    confirmed = _run("confirm", sheet, "--store", store)
    assert confirmed.exit_code == 0, confirmed.output
    assert _links(store) == [(first, imported)]


def test_history_unit_view_names_imported_people(tmp_path):
    store = tmp_path / "kho.sqlite"
    with Store.open(store) as opened:  # the unit's round, as consolidate records it
        opened.record_round(RoundRecord(
            "2025-2026", "dang-ky", "2025-10-20T09:00:00+07:00",
            units=[{"unit_code": "01001", "unit_name": "Trường Mầm non Nguyễn Trãi",
                    "status": "valid"}]))
    path = _history_list(tmp_path / "lich-su.xlsx", [
        ("2023-2024", *HUONG, "01001", None, _label("lao_dong_tien_tien"), None, None, None),
        ("2023-2024", "Lê Văn Tám", dt.date(1980, 1, 1), "01002", None,
         _label("lao_dong_tien_tien"), None, None, None)])
    assert _import(path, store).exit_code == 0
    assert _run("history", "01001", "--store", store).output.splitlines() == [
        "Đơn vị 01001:", "  2023-2024  Nguyễn Thị Hương: Lao động tiên tiến: đã quyết định"]
    # A unit known from the imported list only is a unit too.
    assert _run("history", "01002", "--store", store).output.splitlines() == [
        "Đơn vị 01002:", "  2023-2024  Lê Văn Tám: Lao động tiên tiến: đã quyết định"]


# People without a birth date


@pytest.mark.parametrize("missing", [None, float("nan"), pd.NaT, pd.NA, "", "nan"])
def test_identity_missing_birth_date_is_empty(missing):
    assert person_key("Đỗ Minh Sơn", missing) == ("do minh son", "")


def test_identity_people_without_birth_date_never_match_by_name(tmp_path):
    store = tmp_path / "kho.sqlite"
    nan = float("nan")  # what pandas holds for an empty date cell
    (first,), _ = _record_year(store, "2024-2025", [("Đỗ Minh Sơn", nan, "01001")])
    (second,), _ = _record_year(store, "2025-2026", [("Đỗ Minh Sơn", nan, "01001")])
    (other,), _ = _record_year(store, "2025-2026", [("Đỗ Minh Sơn", None, "01002")],
                               round_="ket-qua")
    assert len({first, second, other}) == 3  # another year, another school: other people
    # The same school's list read again in the same year is the same row, not a new person.
    again, _ = _record_year(store, "2025-2026", [("Đỗ Minh Sơn", nan, "01001"),
                                                 ("Đỗ Minh Sơn", None, "01002")],
                            round_="ket-qua")
    assert again == [second, other]
    with Store.open(store) as opened:
        assert [p["birth_date"] for p in opened.persons()] == [None, None, None]


# Speed


HEAVY = {"pandas", "pandera", "numpy", "openpyxl", "xlsxwriter", "python_calamine"}


def _tdkt(*args: str, profile: bool = False) -> tuple[float, subprocess.CompletedProcess]:
    """One `tdkt` run in a fresh process, as an office starts it (the installed program when
    there is one, else python -m pipeline), and its wall time."""
    script = Path(sys.executable).parent / ("tdkt.exe" if os.name == "nt" else "tdkt")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "pipeline"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPROFILEIMPORTTIME"}
    if profile:
        env["PYTHONPROFILEIMPORTTIME"] = "1"
    start = time.perf_counter()
    child = subprocess.run([*command, *args], capture_output=True, text=True, timeout=60,
                           cwd=ROOT, env=env)
    return time.perf_counter() - start, child


def _loaded(stderr: str) -> set[str]:
    """The top-level packages a run imported (python -X importtime lines)."""
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def test_history_answers_in_under_a_second(tmp_path):
    """The 54 lines of 01001 from the store tdkt 0.1 wrote for both sample rounds."""
    path = tmp_path / "tdkt-lich-su.sqlite"
    with gzip.open(V3 / "tdkt-lich-su.sqlite.gz", "rb") as packed, path.open("wb") as plain:
        shutil.copyfileobj(packed, plain)
    Store.open(path).close()  # migrated once, as the first command after an update does
    args = ("history", "01001", "--store", str(path), "--config", str(CONFIG))
    _, profiled = _tdkt(*args, profile=True)
    assert profiled.returncode == 0, profiled.stderr[-2000:]
    assert _loaded(profiled.stderr) & HEAVY == set()
    runs = [_tdkt(*args) for _ in range(3)]
    elapsed, child = min(runs, key=lambda run: run[0])
    assert child.stdout == (V3 / "history-01001.txt").read_text(encoding="utf-8")
    assert elapsed < 1.0, elapsed


@pytest.mark.parametrize("extra", [
    ("--config", "{config}"),  # the store named by the output folder of the configuration
    ("--out", "{out}", "--config", "{config}"),
    ("--store", "{store}"),
])
@pytest.mark.parametrize("who", ["01001", "Đinh Đức Bình", "dinh duc binh, 28/11/1977",
                                 "Không Có Ai", "x, 31/02/1980"])
def test_history_quick_answer_is_the_full_command_line_answer(tmp_path, extra, who):
    from pipeline.launch import quick_history

    out = tmp_path / "out"
    out.mkdir()
    config = tmp_path / "tdkt.toml"
    config.write_text((CONFIG.read_text(encoding="utf-8")).replace(
        'registry = "', f'output = "{out.as_posix()}"\nregistry = "{SAMPLES.as_posix()}/'),
        encoding="utf-8")
    with gzip.open(V3 / "tdkt-lich-su.sqlite.gz", "rb") as packed, \
            (out / "tdkt-lich-su.sqlite").open("wb") as plain:
        shutil.copyfileobj(packed, plain)
    args = [a.format(config=config, out=out, store=out / "tdkt-lich-su.sqlite")
            for a in extra]
    quick = quick_history([who, *args])
    full = _run("history", who, *args)
    assert quick is not None and full.exit_code == 0
    assert "\n".join(quick) + "\n" == full.output


@pytest.mark.parametrize("args", [["--help"], [], ["a", "b"], ["01001", "--strict"],
                                  ["01001", "--store"], ["01001", "--store", "/khong/co.sqlite"],
                                  ["01001", "--config", "/khong/co.toml", "--store"]])
def test_history_anything_unusual_goes_to_the_full_command_line(args):
    from pipeline.launch import quick_history

    assert quick_history(args) is None


# Schema 5


def _v4_store(path: Path) -> None:
    """A store as tdkt wrote it at schema 4, with what its bugs left behind: a missing birth
    date kept as "nan", an award imported twice, a person seen under a second spelling."""
    conn = sqlite3.connect(path)
    for script in database.MIGRATIONS[:4]:
        conn.executescript(script)
    conn.executescript("""
        INSERT INTO persons VALUES (1, 'Đỗ Minh Sơn', 'do minh son', 'nan', '2024-2025');
        INSERT INTO persons VALUES (2, 'Đỗ Minh Sơn', 'do minh son', 'nan', '2025-2026');
        INSERT INTO persons VALUES (3, 'Trần Thị Lan', 'tran thi lan', '1980-01-02', '2024-2025');
        INSERT INTO runs VALUES (1, '2025-2026', 'dang-ky', '2025-10-20T09:00:00+07:00');
        INSERT INTO staff (run_id, person_id, unit_code, row, full_name)
            VALUES (1, 3, '02002', 7, 'Trần Thị Lam');
        INSERT INTO awards (person_id, unit_code, school_year, kind, code, source)
            VALUES (3, '02002', '2023-2024', 'title', 'cstd_co_so', 'import');
        INSERT INTO awards (person_id, unit_code, school_year, kind, code, source)
            VALUES (3, '02002', '2023-2024', 'title', 'cstd_co_so', 'import');
        INSERT INTO person_links VALUES (1, 2, 'tong-hop-phong.xlsx', '2025-11-01T08:00:00');
        PRAGMA user_version = 4;
    """)
    conn.close()


def test_store_migrates_schema_4_to_6(tmp_path):
    path = tmp_path / "kho.sqlite"
    _v4_store(path)
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 6
        assert store.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert [p["birth_date"] for p in store.persons()] == [None, None, "1980-01-02"]
        assert [(a["school_year"], a["code"]) for a in store.awards_of(3)] == [
            ("2023-2024", "cstd_co_so")]
        assert [p["id"] for p in store.persons_named("tran thi lam")] == [3]
        assert store.spellings(3) == ["Trần Thị Lan", "Trần Thị Lam"]
        assert [(r["person_id"], r["other_id"], r["action"]) for r in store.link_log()] == [
            (1, 2, "link")]
        assert store.round_approval("2025-2026", "ket-qua") is None


def test_store_migrates_the_v3_store_to_6_with_every_spelling(tmp_path):
    path = tmp_path / "tdkt-lich-su.sqlite"
    with gzip.open(V3 / "tdkt-lich-su.sqlite.gz", "rb") as packed, path.open("wb") as plain:
        shutil.copyfileobj(packed, plain)
    with sqlite3.connect(path) as old:
        persons = old.execute("SELECT count(*) FROM persons").fetchone()[0]
    with Store.open(path) as store:
        assert store.schema_version == 6
        spelled = store.execute("SELECT count(DISTINCT person_id) FROM person_names")
        assert spelled.fetchone()[0] == persons
        assert store.persons_named("dinh duc binh")[0]["full_name"] == "Đinh Đức Bình"


def test_store_keeps_the_round_approval(tmp_path):
    at = dt.datetime(2026, 5, 25, 16, 30, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    with Store.open(tmp_path / "kho.sqlite") as store:
        assert store.round_approval("2025-2026", "ket-qua") is None
        store.approve_round("2025-2026", "ket-qua", "Trưởng phòng", "ab" * 32, at)
        store.approve_round("2025-2026", "ket-qua", "Phó trưởng phòng", "cd" * 32,
                            at + dt.timedelta(days=1))
        store.approve_round("2025-2026", "dang-ky", "Trưởng phòng", "ef" * 32, at)
        assert store.round_approval("2025-2026", "ket-qua") == {
            "school_year": "2025-2026", "round": "ket-qua",
            "approved_at": "2026-05-26T16:30:00+07:00", "approved_by": "Phó trưởng phòng",
            "manifest_sha256": "cd" * 32}
        assert store.round_approval("2024-2025", "ket-qua") is None
