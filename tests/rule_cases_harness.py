"""Harness for the hand-made acceptance table tests/rule_cases.yaml.

It only *types* the table's cases into real templates written by `tdkt templates` (openpyxl,
input cells only), runs `tdkt consolidate --round ket-qua` through the CLI, and reads back what
the engine wrote (manifest.json, tong-hop-phong.xlsx). No expected value is computed here: every
expectation comes from the table, which was written by hand from rules.md.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openpyxl
import yaml
from click.testing import CliRunner

from pipeline.cli import main as cli_main
from pipeline.forms.definitions import FormSet

from .conftest import table_rows
from .sample_inbox import Unit as RegistryUnit
from .sample_inbox import _field_cell, _header, write_registry, write_rows

TABLE = Path(__file__).with_name("rule_cases.yaml")
RESULTS = ("pass", "fail", "check", "over-quota")
PROVINCES = ("mac-dinh", "bac-ninh")
PERSON_KINDS = ("title", "commendation")
COLLECTIVE_KINDS = ("collective_title", "commendation")
COUNT_KEYS = ("members", "completed_tasks", "lao_dong_count", "cstd_count", "disciplined")
VOCAB_OF_KIND = {"title": "individual_titles", "commendation": "commendations",
                 "collective_title": "collective_titles"}
# Labels of Verdict codes as texts.yaml (section status) words them, typed here from that file.
VERDICT_LABELS = {"pass": "Đạt", "fail": "Không đạt",
                  "check": "Cần kiểm tra hồ sơ các năm trước", "over-quota": "Vượt hạn mức"}
# Every rule the brief asks the table to cover as a deciding rule.
REQUIRED_RULES = (
    "registration.title", "registration.commendation", "registration.collective_title",
    "lao_dong_tien_tien.grade", "lao_dong_tien_tien.min_months", "lao_dong_tien_tien.discipline",
    "principles.pending_case", "cstd_co_so.base", "cstd_co_so.quota", "vote.cstd_co_so",
    "vote.cstd_tinh", "vote.co_thi_dua", "cstd_tinh.initiative", "cstd_tinh.base",
    "bang_khen_tinh.grade", "bang_khen_tinh.base", "giay_khen.base",
    "ky_niem_chuong_vsngd.years", "ky_niem_chuong_vsngd.once", "tt_lao_dong_tien_tien.base",
    "tt_lao_dong_xuat_sac.base", "co_thi_dua.khoi_leader")


# The table


def load_table(path: Path = TABLE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Run:
    year: str
    province: str
    options: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return "/".join([self.year, self.province, *self.options])

    @property
    def main(self) -> bool:
        """One of the six runs the brief asks for (no office option)."""
        return not self.options

    def matches(self, token: str) -> bool:
        return token in (self.year, self.province, *self.options)


def runs(table: dict[str, Any]) -> list[Run]:
    return [Run(str(r["year"]), r["province"], tuple(r.get("options") or ()))
            for r in table["runs"]]


def select(spec: dict[str, Any], run: Run, what: str = "") -> Any:
    """The value of the most specific selector of `spec` matching `run` (see the table's head)."""
    best: list[tuple[int, Any]] = []
    for key, value in spec.items():
        for selector in str(key).split(","):
            selector = selector.strip()
            tokens = [] if selector == "all" else selector.split("/")
            if all(run.matches(t) for t in tokens):
                best.append((len(tokens), value))
    if not best:
        raise KeyError(f"{what}: no selector matches {run.id}")
    top = max(n for n, _ in best)
    values = [v for n, v in best if n == top]
    if any(v != values[0] for v in values):
        raise ValueError(f"{what}: selectors of equal weight disagree for {run.id}")
    return values[0]


@dataclass
class Person:
    id: str
    unit: str
    name: str
    sex: str
    born: dt.date
    position: str
    staff_group: str
    typed: dict[str, Any]
    typed_in: dict[str, dict[str, Any]]  # selector → values typed instead in those runs
    registered: dict[str, Any] | None  # None: not on the October list at all
    expect: dict[str, dict[str, Any]]
    why: str


def persons(table: dict[str, Any]) -> list[Person]:
    defaults = table["person_defaults"]
    out = []
    for raw in table["persons"]:
        typed = {k: v for k, v in defaults.items() if k not in ("position", "staff_group")}
        typed.update(raw.get("typed") or {})
        registered = raw.get("registered")
        if registered == "absent":
            registered = None
        elif registered is None:  # registered in October exactly what is proposed now
            registered = {"title": typed.get("title"), "commendation": typed.get("commendation"),
                          "initiative": typed.get("initiative")}
        else:
            registered = {"title": "khong_dang_ky", "commendation": None, **registered}
        out.append(Person(id=raw["id"], unit=str(raw["unit"]), name=raw["name"], sex=raw["sex"],
                          born=raw["born"], position=raw.get("position", defaults["position"]),
                          staff_group=raw.get("staff_group", defaults["staff_group"]),
                          typed=typed, typed_in=raw.get("typed_in") or {},
                          registered=registered, expect=raw["expect"],
                          why=raw["why"]))
    return out


def person_proposals(p: Person) -> dict[str, str]:
    """kind → proposed code, for the proposals the person makes."""
    out = {}
    if p.typed.get("title") not in (None, "khong_dang_ky"):
        out["title"] = p.typed["title"]
    if p.typed.get("commendation") not in (None, "khong_dang_ky"):
        out["commendation"] = p.typed["commendation"]
    return out


def collective_proposals(unit: dict[str, Any]) -> dict[str, str]:
    proposed = unit["collective"]["proposed"]
    return {k: proposed[k] for k in COLLECTIVE_KINDS
            if proposed.get(k) not in (None, "khong_dang_ky")}


def table_problems(table: dict[str, Any]) -> list[str]:
    """Checks of the table itself (no engine involved)."""
    problems = []
    people = persons(table)
    units = {u["code"]: u for u in table["units"]}
    all_runs = runs(table)
    deciding: set[str] = set()
    ids = [p.id for p in people] + [u["collective"]["id"] for u in table["units"]]
    if len(ids) != len(set(ids)):
        problems.append("duplicate case ids")
    for p in people:
        if p.unit not in units:
            problems.append(f"{p.id}: unknown unit {p.unit}")
        if not p.why:
            problems.append(f"{p.id}: no why")
        proposals = person_proposals(p)
        if set(p.expect) != set(proposals):
            problems.append(f"{p.id}: expectations {sorted(p.expect)} ≠ proposals "
                            f"{sorted(proposals)}")
        for kind, spec in p.expect.items():
            for run in all_runs:
                result, rule = select(spec, run, f"{p.id} {kind}")
                if result not in RESULTS:
                    problems.append(f"{p.id}: unknown result {result}")
                deciding.add(rule)
    for code, u in units.items():
        mine = [p for p in people if p.unit == code]
        groups = {"CBQL": 0, "GV": 0, "NV": 0}
        for p in mine:
            groups[p.staff_group] += 1
        if (u["managers"], u["teachers"], u["support"]) != (groups["CBQL"], groups["GV"],
                                                            groups["NV"]):
            problems.append(f"{code}: registry headcounts differ from the person rows {groups}")
        c = u["collective"]
        if not c.get("why"):
            problems.append(f"{c['id']}: no why")
        if set(c["expect"]) != set(collective_proposals(u)):
            problems.append(f"{c['id']}: expectations ≠ proposals")
        for run in all_runs:
            counts = select(c["counts"], run, f"{c['id']} counts")
            if counts["members"] != len(mine):
                problems.append(f"{c['id']}: members {counts['members']} ≠ {len(mine)} rows")
            for spec in c["expect"].values():
                result, rule = select(spec, run, c["id"])
                if result not in RESULTS:
                    problems.append(f"{c['id']}: unknown result {result}")
                deciding.add(rule)
    missing = [r for r in REQUIRED_RULES if r not in deciding]
    if missing:
        problems.append(f"rules no case decides: {missing}")
    years = {r.year for r in all_runs if r.main}
    if years != {"2023-2024", "2025-2026", "2026-2027"} or \
            {(r.year, r.province) for r in all_runs if r.main} != \
            {(y, p) for y in years for p in PROVINCES}:
        problems.append("the six (year, province) runs are not all there")
    if len(people) < 30 or len(units) < 6:
        problems.append("fewer than 30 persons or 6 collectives")
    return problems


# Building an office for one run


@dataclass
class Office:
    root: Path
    config: Path
    registrations: Path
    results: Path
    out: Path
    store: Path
    cli_output: list[str] = field(default_factory=list)


CONFIG = """\
school_year = "{year}"
registry = "danh-muc-don-vi.xlsx"

[inboxes]
dang-ky = "hop-thu"
ket-qua = "hop-thu-ket-qua"

[province_office]
name = "Sở Giáo dục và Đào tạo"
parent = "UBND TỈNH AN PHÚ"
place = "An Phú"

[[offices]]
until_year = "2024-2025"
name = "Phòng Giáo dục và Đào tạo"
parent = "UBND HUYỆN TÂN LẬP"
level = "huyen"
place = "Tân Lập"
signer = "Trưởng phòng"

[[offices]]
from_year = "2025-2026"
name = "Phòng Văn hóa – Xã hội"
parent = "UBND XÃ TÂN LẬP"
level = "xa"
place = "Tân Lập"
signer = "Trưởng phòng"
"""


def config_text(run: Run) -> str:
    text = CONFIG.format(year=run.year)
    if run.province != "mac-dinh" or run.options:  # mac-dinh alone: the default, left unsaid
        text += f'\n[rules]\nprovince = "{run.province}"\n'
        if run.options:
            text += "options = [" + ", ".join(f'"{o}"' for o in run.options) + "]\n"
    return text


def invoke(args: list[str], office: Office) -> None:
    result = CliRunner().invoke(cli_main, args, catch_exceptions=True)
    office.cli_output.append(f"$ tdkt {' '.join(args)}\n{result.output}")
    if result.exit_code != 0:
        detail = repr(result.exception) if result.exception else ""
        raise RuntimeError(f"tdkt {args[0]} exited {result.exit_code}: {result.output}\n{detail}")


def build_office(root: Path, table: dict[str, Any], run: Run, forms: FormSet) -> Office:
    """Registry, tdkt.toml and both inboxes typed into `tdkt templates` output; no consolidation."""
    root.mkdir(parents=True, exist_ok=True)
    office = Office(root=root, config=root / "tdkt.toml", registrations=root / "hop-thu",
                    results=root / "hop-thu-ket-qua", out=root / "ket-qua",
                    store=root / "lich-su-moi.sqlite")
    units = table["units"]
    write_registry([RegistryUnit(code=u["code"], name=u["name"], level=u["level"],
                                 block=u["block"], disadvantaged=bool(u["disadvantaged"]),
                                 managers=u["managers"], teachers=u["teachers"],
                                 support=u["support"], email=f"c{u['code']}@tanlap.edu.vn")
                    for u in units], forms, root / "danh-muc-don-vi.xlsx")
    office.config.write_text(config_text(run), encoding="utf-8")
    dates = table["dates"][run.year]
    people = persons(table)
    for form_id, inbox in (("dang-ky", office.registrations), ("ket-qua", office.results)):
        made = root / "mau"
        invoke(["templates", "--out", str(made), "--config", str(office.config), "--year",
                run.year, "--form", form_id], office)
        inbox.mkdir()
        for u in units:
            source = next((made / run.year / f"mau-{form_id}").glob(f"{form_id}_{u['code']}.xlsx"))
            target = inbox / source.name
            shutil.copy(source, target)
            mine = [p for p in people if p.unit == u["code"]]
            if form_id == "dang-ky":
                _fill_registration(target, forms, u, mine, dates["registration"])
            else:
                _fill_results(target, forms, u, mine, dates["results"], run, run.year)
    return office


def _table(wb, form, sheet_id: str):
    sheet = form.sheet(sheet_id)
    ws = wb[sheet.name]
    header, columns = _header(ws, sheet)
    return sheet, ws, header, columns


def _set_date(ws, sheet, when: dt.date) -> None:
    r, c = _field_cell(ws, sheet.column("report_date").header)
    ws.cell(row=r, column=c, value=when).number_format = "dd/mm/yyyy"


def _fill_registration(path: Path, forms: FormSet, unit: dict[str, Any], people: list[Person],
                       when: dt.date) -> None:
    form = forms.current("dang-ky")
    wb = openpyxl.load_workbook(path)
    sheet, ws, header, columns = _table(wb, form, "unit")
    _set_date(ws, sheet, when)
    reg = unit["collective"]["registered"]
    write_rows(ws, sheet, forms, header, columns, [{
        "seq": 1, "collective_name": unit["name"], "collective_kind": "don_vi",
        "members": len(people), "collective_title": reg["collective_title"],
        "commendation": reg.get("commendation")}])
    sheet, ws, header, columns = _table(wb, form, "staff")
    rows = [{"full_name": p.name, "birth_date": p.born, "sex": p.sex, "ethnicity": "Kinh",
             "position": p.position, "staff_group": p.staff_group,
             "title": p.registered["title"], "commendation": p.registered.get("commendation"),
             "initiative": p.registered.get("initiative")}
            for p in people if p.registered is not None]
    write_rows(ws, sheet, forms, header, columns,
               [dict(r, seq=i + 1) for i, r in enumerate(rows)])
    wb.save(path)


def _fill_results(path: Path, forms: FormSet, unit: dict[str, Any], people: list[Person],
                  when: dt.date, run: Run, year: str) -> None:
    form = forms.current("ket-qua")
    wb = openpyxl.load_workbook(path)
    sheet, ws, header, columns = _table(wb, form, "unit")
    _set_date(ws, sheet, when)
    c = unit["collective"]
    counts = c.get("typed_counts") or select(c["counts"], run, c["id"])
    proposed = c["proposed"]
    write_rows(ws, sheet, forms, header, columns, [{
        "seq": 1, "collective_name": unit["name"], "collective_kind": "don_vi", **counts,
        "collective_title": proposed["collective_title"],
        "commendation": proposed.get("commendation"), "vote_share": proposed.get("vote_share")}])
    sheet, ws, header, columns = _table(wb, form, "staff")
    decision = f"Số 12/QĐ-HĐSK ngày 15/4/{year[-4:]}"
    rows = []
    for i, p in enumerate(people):
        t = dict(p.typed)
        if p.typed_in:
            t.update(select({"all": {}, **p.typed_in}, run, p.id))
        row = {"seq": i + 1, "full_name": p.name, "birth_date": p.born, "sex": p.sex,
               "position": p.position, "staff_group": p.staff_group,
               "initiative_decision": decision if t.get("initiative_level") else None}
        row.update({k: v for k, v in t.items() if k in {col.id for col in sheet.columns}})
        rows.append(row)
    write_rows(ws, sheet, forms, header, columns, rows)
    _fill_scores(wb, form, unit["self_score"])
    wb.save(path)


def _fill_scores(wb, form, total: int) -> None:
    """Self-scores on the prefilled criteria rows, adding up to `total`, none above its maximum."""
    _, ws, header, columns = _table(wb, form, "criteria")
    rows, maxima = [], []
    r = header + 1
    while isinstance(ws.cell(r, columns["max_score"]).value, int | float):
        rows.append(r)
        maxima.append(ws.cell(r, columns["max_score"]).value)
        r += 1
    assert rows and sum(maxima) >= total, "no criteria rows to score"
    scores = [int(m * total // sum(maxima)) for m in maxima]
    i = 0
    while sum(scores) < total:
        if scores[i % len(scores)] < maxima[i % len(scores)]:
            scores[i % len(scores)] += 1
        i += 1
    for row, score in zip(rows, scores, strict=True):
        ws.cell(row, columns["self_score"]).value = score


def consolidate(office: Office, run: Run) -> None:
    invoke(["consolidate", str(office.results), "--round", "ket-qua", "--config",
            str(office.config), "--year", run.year, "--out", str(office.out),
            "--registrations", str(office.registrations), "--store", str(office.store)], office)


# Reading back what the engine wrote


@dataclass
class Written:
    manifest: dict[str, Any]
    people_rows: list[dict[str, Any]]
    group_rows: list[dict[str, Any]]
    rule_rows: list[dict[str, Any]]  # doi-chieu-quy-tac.xlsx: one row per decision
    phong: Path


def read_written(office: Office) -> Written:
    manifests = sorted(office.out.rglob("manifest.json"))
    phongs = sorted(office.out.rglob("tong-hop-phong.xlsx"))
    if len(manifests) != 1 or len(phongs) != 1:
        raise AssertionError(f"expected one manifest and one Phòng workbook, found "
                             f"{manifests} {phongs}")
    manifest = json.loads(manifests[0].read_text(encoding="utf-8"))
    return Written(manifest=manifest,
                   people_rows=table_rows(phongs[0], "Đề nghị cá nhân", "STT"),
                   group_rows=table_rows(phongs[0], "Đề nghị tập thể", "STT"),
                   rule_rows=table_rows(phongs[0].with_name("doi-chieu-quy-tac.xlsx"),
                                        "Quyết định theo quy tắc", "STT"),
                   phong=phongs[0])


def overall(results: list[str]) -> str:
    """A proposal's result from its rule decisions: any fail, else over-quota, else check."""
    for r in ("fail", "over-quota", "check"):
        if r in results:
            return r
    return "pass"


def compare(table: dict[str, Any], run: Run, written: Written, forms: FormSet) -> list[str]:
    """Every difference between the table and what was written, one line each."""
    out: list[str] = []
    decisions = written.manifest.get("decisions", [])
    units = {u["code"]: u for u in table["units"]}

    def label(kind: str, code: str) -> str:
        return forms.vocabs[VOCAB_OF_KIND[kind]].label_of(code)

    def check(case: str, unit: str, subject: str, name: str, kind: str, code: str,
              expected: list[str], rows: list[dict[str, Any]], name_header: str) -> None:
        want, rule = expected
        proposal = f"{kind}:{code}"
        mine = [d for d in decisions if str(d.get("unit")) == unit and d.get("person") == name
                and d.get("proposal") == proposal and d.get("subject", subject) == subject]
        where = f"{case} {name} [{proposal}] in {run.id}"
        if not mine:
            out.append(f"{where}: no decision in manifest.json (expected {want} by {rule})")
        else:
            results = [d["result"] for d in mine]
            got = overall(results)
            by_rule = [d["result"] for d in mine if d["rule_id"] == rule]
            summary = ", ".join(f"{d['rule_id']}={d['result']}" for d in mine)
            if got != want:
                out.append(f"{where}: manifest gives {got}, table says {want} by {rule} "
                           f"(decisions: {summary})")
            elif want not in by_rule:
                out.append(f"{where}: manifest has no {rule}={want} (decisions: {summary})")
            for d in mine:
                if not d.get("citation"):
                    out.append(f"{where}: decision {d['rule_id']} has no citation")
                layer = table["layers"].get(d["rule_id"])
                if run.main and layer and d.get("layer") != layer:
                    out.append(f"{where}: {d['rule_id']} decided by layer {d.get('layer')!r}, "
                               f"table says {layer!r}")
        by_rule_rows = [r for r in written.rule_rows if str(r.get("Mã đơn vị")) == unit
                        and r.get("Họ và tên / tập thể") == name
                        and r.get("Đề nghị") == label(kind, code)]
        mine_rule = [r for r in by_rule_rows if r.get("Mã quy tắc") == rule]
        if [r.get("Kết quả") for r in mine_rule] != [VERDICT_LABELS[want]]:
            out.append(f"{where}: sheet “Quyết định theo quy tắc” has {rule} = "
                       f"{[r.get('Kết quả') for r in mine_rule]}, table says "
                       f"{VERDICT_LABELS[want]!r}")
        if mine and sorted((d["rule_id"], VERDICT_LABELS.get(d["result"])) for d in mine) != \
                sorted((r.get("Mã quy tắc"), r.get("Kết quả")) for r in by_rule_rows):
            out.append(f"{where}: sheet “Quyết định theo quy tắc” and manifest.json disagree")
        unit_name = units[unit]["name"]
        found = [r for r in rows if r.get(name_header) == name and r.get("Đơn vị") == unit_name
                 and r.get("Đề nghị") == label(kind, code)]
        if len(found) != 1:
            out.append(f"{where}: {len(found)} rows in tong-hop-phong.xlsx (expected 1)")
            return
        row = found[0]
        if row.get("Kết quả") != VERDICT_LABELS[want]:
            out.append(f"{where}: tong-hop-phong.xlsx says {row.get('Kết quả')!r}, table says "
                       f"{VERDICT_LABELS[want]!r} ({rule}; rules there: "
                       f"{row.get('Mã quy tắc')!r})")
        elif want != "pass" and rule not in str(row.get("Mã quy tắc") or ""):
            out.append(f"{where}: tong-hop-phong.xlsx names {row.get('Mã quy tắc')!r}, "
                       f"not {rule}")

    for p in persons(table):
        for kind, code in person_proposals(p).items():
            check(p.id, p.unit, "person", p.name, kind, code,
                  select(p.expect[kind], run, p.id), written.people_rows, "Họ và tên")
    findings = written.manifest.get("findings", [])
    for code, u in units.items():
        c = u["collective"]
        for kind, proposal in collective_proposals(u).items():
            check(c["id"], code, "collective", u["name"], kind, proposal,
                  select(c["expect"][kind], run, c["id"]), written.group_rows, "Tên tập thể")
        differs = [f for f in findings if f.get("code") == "count-differs"
                   and str(f.get("file", "")).startswith(f"ket-qua_{code}")]
        if c.get("count_differs") is True and not differs:
            out.append(f"{c['id']} ({code}) in {run.id}: no count-differs finding for the "
                       f"deliberately wrong typed counts")
        if c.get("count_differs") is False and differs:
            out.append(f"{c['id']} ({code}) in {run.id}: count-differs where the typed counts are "
                       f"the hand-computed ones {select(c['counts'], run, c['id'])}: "
                       + "; ".join(f"{f.get('cell')} {f.get('value')!r}→{f.get('expected')!r}"
                                   for f in differs))
    return out
