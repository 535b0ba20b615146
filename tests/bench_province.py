"""`make bench`, the Sở's part: a generated province's registration round, timed against
python-calamine reading the same files.

    python -m tests.bench --only province [--communes 120] [--direct 150] [--keep DIR]
    (or python -m tests.bench_province with the same options)

Generates (seeded) the Sở's folder: its configuration, its registry (danh-muc-so) with
`communes` offices and `direct` units, and its inbox holding
  * one report per commune (bao-cao_X###.xlsx), written by tdkt itself: each commune gets a
    school inbox of 10–40 MN/TH/THCS schools (15–70 staff each; files written fast, as
    tests/province.py writes them) and `pipeline.engine.consolidate` writes its
    tong-hop-so.xlsx; the communes run in parallel, one process per core, each with its own
    store in its own folder, deleted once its report is copied;
  * one registration file per school the Sở manages itself (THPT 40–120 staff, specialised,
    inter-level, boarding, GDTX, special-needs).
The generation is timed apart and is not the measured figure. Then `tdkt consolidate` runs on
the Sở's inbox in its own process (wall time, peak memory of its process tree, stage times
from the run log), python-calamine reads every sheet of every inbox file, and the run is
checked against the generator's truth (every office's report valid, every direct school valid,
no error, the province's totals of schools and staff) so that a broken run cannot print a
fast time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from python_calamine import CalamineWorkbook

from pipeline import settings
from pipeline.config import Office, load_config
from pipeline.forms.definitions import FormSet, load_forms

from . import province as fast
from .sample_inbox import SCHOOL_YEAR, Unit, _collectives, _people, write_registry
from .sample_province import (
    BLOCKS,
    COMMUNE_CONFIG,
    COMMUNES,
    CONFIG,
    INBOX,
    REGISTRY,
    RUN_DATE,
    office_code,
)
from .sample_province_registry import PROVINCE, OfficeRow, UnitRow, write_province_registry

SEED = 20260415
COMMUNE_COUNT = 120
DIRECT_COUNT = 150
SCHOOLS_PER_COMMUNE = (10, 40)
TRUTH = "bench-truth.json"  # what the generator wrote: the figures the run is checked on
REPORT = f"{settings.PROVINCE_DIR}/tong-hop-tinh.xlsx"
VALID = "Hợp lệ"
# Commune schools: level, name stem, staff range, weight.
COMMUNE_LEVELS = (("MN", "Trường Mầm non", (15, 45), 10), ("TH", "Trường Tiểu học", (25, 60), 10),
                  ("THCS", "Trường THCS", (25, 60), 8),
                  ("TH&THCS", "Trường TH và THCS", (30, 70), 3))
# The Sở's own schools: unit type, level, khối, name stem, staff range, weight.
DIRECT_KINDS = (("THPT", "THPT", "K1", "Trường THPT", (40, 120), 12),
                ("THPT", "THPT", "K2", "Trường THPT", (40, 120), 12),
                ("chuyen", "THPT", "K1", "Trường THPT chuyên", (60, 110), 1),
                ("lien_cap_thpt", "TH-THCS-THPT", "K2", "Trường TH, THCS và THPT", (50, 100), 2),
                ("PTDTNT", "THCS", "C1", "Trường PTDTNT THCS", (25, 50), 2),
                ("GDTX", "GDTX", "C1", "Trung tâm GDTX", (15, 40), 3),
                ("chuyen_biet", "TH&THCS", "C1", "Trường Giáo dục chuyên biệt", (15, 40), 1))


# The generator's units


def _unit(rng: random.Random, code: str, name: str, level: str, block: str,
          staff: tuple[int, int], email: str) -> Unit:
    total = rng.randint(*staff)
    managers = rng.randint(2, 3)
    support = rng.randint(2, max(2, total // 12))
    unit = Unit(code=code, name=name, level=level, block=block,
                disadvantaged=rng.random() < 0.25, managers=managers,
                teachers=total - managers - support, support=support, email=email)
    unit.people = _people(rng, unit, fast.QUOTA_SHARE)
    unit.collectives = _collectives(rng, unit)
    return unit


def commune_place(n: int) -> str:
    """The commune of office n: the sample's names, numbered after the first fifteen."""
    name = COMMUNES[(n - 1) % len(COMMUNES)]
    return name if n <= len(COMMUNES) else f"{name} {(n - 1) // len(COMMUNES) + 1}"


def commune_sizes(count: int, seed: int = SEED) -> dict[int, int]:
    """How many schools each of the `count` communes has (10–40)."""
    rng = random.Random(seed)
    return {n: rng.randint(*SCHOOLS_PER_COMMUNE) for n in range(1, count + 1)}


def commune_units(n: int, size: int, seed: int = SEED) -> list[Unit]:
    """The `size` schools of commune n (codes NNNSS, unique province-wide), seeded per
    commune so that any process writes the same ones."""
    rng = random.Random(f"{seed}:{n}")
    place = commune_place(n)
    units = []
    for i in range(1, size + 1):
        level, stem, staff, _ = rng.choices(COMMUNE_LEVELS,
                                            weights=[w for *_, w in COMMUNE_LEVELS])[0]
        units.append(_unit(rng, f"{n:03d}{i:02d}", f"{stem} {place} {i}", level,
                           f"Khối {level} – {place}", staff, f"c{n:03d}{i:02d}@anphu.edu.vn"))
    return units


def direct_units(count: int, seed: int = SEED) -> list[tuple[UnitRow, Unit]]:
    """The Sở's `count` own schools (codes T0001…), each as its registry row and its unit."""
    rng = random.Random(f"{seed}:direct")
    out = []
    for i in range(1, count + 1):
        kind, level, block, stem, staff, _ = rng.choices(
            DIRECT_KINDS, weights=[k[-1] for k in DIRECT_KINDS])[0]
        code = f"T{i:04d}"
        unit = _unit(rng, code, f"{stem} số {i}", level, block, staff, f"t{i:04d}@anphu.edu.vn")
        out.append((UnitRow(code, unit.name, kind, level, block,
                            "yes" if unit.disadvantaged else "no", unit.managers, unit.teachers,
                            unit.support, unit.email), unit))
    return out


def offices(count: int) -> tuple[OfficeRow, ...]:
    """The Sở registry's rows of the `count` communes' offices (X001…)."""
    return tuple(OfficeRow(office_code(n), f"Phòng Văn hóa – Xã hội xã {commune_place(n)}",
                           f"Xã {commune_place(n)}", f"vhxh{n}@anphu.gov.vn")
                 for n in range(1, count + 1))


# Layouts of the school files: tests/province.py's, for the levels wanted here


def _layouts(forms: FormSet, office: Office, work: Path, levels: list[str]
             ) -> dict[str, fast.Layout]:
    """A layout per level, made in `work` (removed after)."""
    work.mkdir(parents=True, exist_ok=True)
    try:
        return fast.layouts_of(forms, office, work, levels=levels)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# Worker processes: each writes and consolidates whole communes

_WORKER: dict[str, Any] = {}


def _install(layouts: dict[str, dict[str, fast.Layout]]) -> None:
    _WORKER["layouts"], _WORKER["forms"] = layouts, load_forms()


def _school_date(unit: Unit) -> dt.date:
    return dt.date(2025, 10, 1 + int(unit.code[-2:]) % 14)  # before the 15/10 deadline


def _direct_file(unit: Unit, path: Path) -> None:
    fast._school_file((_WORKER["layouts"]["so"][unit.level], unit, _WORKER["forms"], path,
                       _school_date(unit)))


def _commune(n: int, size: int, seed: int, work: Path, inbox: Path) -> dict[str, Any]:
    """Commune n's school inbox written, consolidated by tdkt, its report copied into the Sở's
    inbox; the commune's folder removed. Returns its truth: schools, staff, seconds."""
    from pipeline.engine import consolidate

    started = time.perf_counter()
    forms, layouts = _WORKER["forms"], _WORKER["layouts"]["xa"]
    units = commune_units(n, size, seed)
    code = office_code(n)
    root = work / code
    shutil.rmtree(root, ignore_errors=True)
    schools = root / "hop-thu"
    schools.mkdir(parents=True)
    _commune_config(root, n)
    write_registry(units, forms, root / "danh-muc-don-vi.xlsx")
    for unit in units:
        fast._school_file((layouts[unit.level], unit, forms,
                           schools / f"dang-ky_{unit.code}.xlsx", _school_date(unit)))
    config = load_config(root / "tdkt.toml", SCHOOL_YEAR)
    consolidate(schools, root / "out", config, run_date=RUN_DATE, forms=forms,
                store=root / "out" / "store.sqlite")
    shutil.copy(root / "out" / SCHOOL_YEAR / "dang-ky" / "tong-hop-so.xlsx",
                inbox / f"bao-cao_{code}.xlsx")
    shutil.rmtree(root)
    return {"office": code, "schools": len(units), "staff": sum(u.headcount for u in units),
            "seconds": time.perf_counter() - started}


def build(root: Path, communes: int = COMMUNE_COUNT, direct: int = DIRECT_COUNT,
          seed: int = SEED, workers: int | None = None) -> dict[str, Any]:
    """The Sở's folder under `root` (see the module's docstring); returns its truth, also
    written to root/bench-truth.json."""
    started = time.perf_counter()
    forms = load_forms()
    shutil.rmtree(root, ignore_errors=True)
    inbox = root / INBOX
    inbox.mkdir(parents=True)
    # The sample province's configuration, without an allocation (none is generated here).
    (root / "tdkt.toml").write_text("\n".join(
        line for line in CONFIG.splitlines() if not line.startswith("allocation")) + "\n",
        encoding="utf-8")
    own = direct_units(direct, seed)
    write_province_registry(root / REGISTRY, offices(communes), tuple(r for r, _ in own),
                            BLOCKS, forms=forms)
    work = root / ".xa"
    commune = load_config(_commune_config(work, 1), SCHOOL_YEAR).office_for()
    layouts = {  # the schools of a commune see its office; the Sở's own schools, the Sở
        "xa": _layouts(forms, commune, work / ".mau", [level for level, *_ in COMMUNE_LEVELS]),
        "so": _layouts(forms, PROVINCE, work / ".mau",
                       sorted({level for _, level, *_ in DIRECT_KINDS}))}
    sizes = commune_sizes(communes, seed)
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1,
                             initializer=_install, initargs=(layouts,)) as pool:
        # The largest communes first: the pool hands the jobs out in order.
        jobs = [pool.submit(_commune, n, sizes[n], seed, work, inbox)
                for n in sorted(sizes, key=lambda n: -sizes[n])]
        files = [pool.submit(_direct_file, u, inbox / f"dang-ky_{u.code}.xlsx") for _, u in own]
        reports = sorted((j.result() for j in jobs), key=lambda r: r["office"])
        for f in files:
            f.result()
    shutil.rmtree(work, ignore_errors=True)
    truth = {
        "seed": seed, "communes": communes, "direct": direct,
        "commune_schools": sum(r["schools"] for r in reports),
        "commune_staff": sum(r["staff"] for r in reports),
        "direct_staff": sum(u.headcount for _, u in own),
        "commune_seconds": round(sum(r["seconds"] for r in reports), 1),
        "seconds": round(time.perf_counter() - started, 1)}
    (root / TRUTH).write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    return truth


def _commune_config(folder: Path, n: int) -> Path:
    """Commune n's tdkt.toml, written in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    place = commune_place(n)
    path = folder / "tdkt.toml"
    path.write_text(COMMUNE_CONFIG.format(
        year=SCHOOL_YEAR, upper=place.upper(), place=place, code=office_code(n),
        so=PROVINCE.name, parent=PROVINCE.parent, so_place=PROVINCE.place), encoding="utf-8")
    return path


def kept(root: Path, communes: int, direct: int, seed: int) -> dict[str, Any] | None:
    """The truth of a province already generated under `root` with these sizes, if any."""
    try:
        truth = json.loads((root / TRUTH).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    same = (truth.get("communes"), truth.get("direct"), truth.get("seed")) == \
        (communes, direct, seed)
    return truth if same else None


# The check that the measured run decided what it should


def run_problems(out: Path, truth: dict[str, Any]) -> list[str]:
    """What the run got wrong against the generator's truth (empty: all as expected)."""
    folder = out / SCHOOL_YEAR / "dang-ky"
    problems = []
    manifest = json.loads((folder / settings.PROVINCE_DIR / settings.MANIFEST_FILE)
                          .read_text(encoding="utf-8"))
    valid = sum(o["status"] == VALID for o in manifest["offices"])
    if valid != truth["communes"]:
        problems.append(f"{valid} of {truth['communes']} offices' reports valid")
    direct = sum(u["status"] == VALID for u in manifest["units"])
    if direct != truth["direct"]:
        problems.append(f"{direct} of {truth['direct']} direct schools valid")
    if manifest["counts"]["errors"]:
        problems.append(f"{manifest['counts']['errors']} errors in the manifest")
    schools, staff = province_totals(folder / REPORT)
    want = (truth["commune_schools"] + truth["direct"],
            truth["commune_staff"] + truth["direct_staff"])
    if (schools, staff) != want:
        problems.append(f"tong-hop-tinh.xlsx: {schools} schools, {staff} staff; "
                        f"the generator wrote {want[0]}, {want[1]}")
    return problems


def province_totals(path: Path) -> tuple[int, int]:
    """Schools and staff on the total line of the Sở workbook's first tab (by office)."""
    book = CalamineWorkbook.from_path(str(path))
    rows = book.get_sheet_by_name(book.sheet_names[0]).to_python()
    header = next(r for r in rows if "Số đơn vị" in r and "Số CB-GV-NV" in r)
    total = next(r for r in rows if r and r[0] == "Tổng cộng")
    return int(total[header.index("Số đơn vị")]), int(total[header.index("Số CB-GV-NV")])


def bench(work: Path, communes: int, direct: int, seed: int = SEED) -> dict[str, Any]:
    """Generate (or reuse) the province under `work`, run and time the Sở's round, print the
    figures; returns them. SystemExit when the run did not decide what it should."""
    from .bench import calamine_loop, run_consolidate

    root = work / "so"
    print(f"\ntdkt bench, the Sở's round: {communes} communes (reports by tdkt from 10–40-school "
          f"inboxes) + {direct} direct schools, {os.cpu_count() or 1} cores")
    truth = kept(root, communes, direct, seed)
    if truth is None:
        truth = build(root, communes, direct, seed)
        print(f"generated in {truth['seconds']:.1f} s (not measured: {truth['commune_schools']} "
              f"commune school files and {communes} commune consolidations, "
              f"{truth['commune_seconds']:.0f} s of worker time)")
    else:
        print(f"reusing the province generated in {root} ({truth['seconds']:.1f} s then)")
    files = sorted((root / INBOX).glob("*.xlsx"))
    size = sum(p.stat().st_size for p in files)
    print(f"  Sở inbox: {len(files)} files ({size / 2**20:.1f} MB), "
          f"{truth['commune_schools'] + direct} schools, "
          f"{truth['commune_staff'] + truth['direct_staff']} staff")
    run = run_consolidate(root, work / "out-so", inbox=INBOX)
    problems = run_problems(work / "out-so", truth)
    if problems:
        raise SystemExit("the Sở's round did not decide what it should: " + "; ".join(problems))
    floor = calamine_loop(files)
    ratio = run["seconds"] / floor
    peak = run["peak_bytes"] / 2**20
    print(f"  consolidate: {run['seconds']:7.2f} s (stages {run['stages']})")
    print(f"  calamine raw read: {floor:7.2f} s")
    print(f"\nSở's round, {communes} reports + {direct} direct schools ({len(files)} files): "
          f"{run['seconds']:.2f} s, peak {peak:.0f} MB")
    print(f"  {ratio:.1f}x the calamine read of the same files; "
          f"{communes / run['seconds']:.1f} reports/s, {len(files) / run['seconds']:.1f} files/s")
    print(f"  checked: {communes} reports and {direct} direct schools valid, no error, the "
          f"province's schools and staff equal to the generator's")
    return {"seconds": run["seconds"], "peak_mb": peak, "floor": floor, "ratio": ratio,
            "generated": truth["seconds"], "files": len(files)}


if __name__ == "__main__":  # the same as python -m tests.bench --only province …
    from .bench import main

    sys.exit(main(["--only", "province", *sys.argv[1:]]))
