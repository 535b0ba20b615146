"""The year-end round: planted violations, no valid proposal rejected, rules as data, ranks."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import load_config
from pipeline.engine import consolidate, consolidation
from pipeline.rounds.results import _quota_decisions
from pipeline.rules import eligibility as el
from pipeline.rules.ruleset import load_rules
from pipeline.settings import RULES_DIR

from .conftest import SAMPLES, table_rows
from .sample_inbox import cstd_limit

RESULTS = SAMPLES / "hop-thu-ket-qua"
REGISTRATIONS = SAMPLES / "hop-thu"
COVERED = {"score-above-max", "count-above-members", "count-differs"}


# results_run (the sample results inbox consolidated once) and results_rerun are in conftest.


@pytest.fixture(scope="module")
def planted(expected):
    return expected["results"]["planted"]


def test_results_each_planted_violation_is_found_with_rule_and_citation(results_run, planted):
    result, out = results_run
    rules = result.rules
    people = table_rows(out / "tong-hop-phong.xlsx", "Đề nghị cá nhân", "STT")
    groups = table_rows(out / "tong-hop-phong.xlsx", "Đề nghị tập thể", "STT")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for case in planted:
        if case["result"] == "over-quota":
            over = [d for d in manifest["decisions"] if d["unit"] == case["unit"]
                    and d["rule_id"] == case["rule_id"] and d["result"] == "over-quota"]
            assert len(over) == case["count"], case
            continue
        rows = people if case["subject"] == "person" else groups
        name = "Họ và tên" if case["subject"] == "person" else "Tên tập thể"
        label = result.forms.vocabs[{"title": "individual_titles", "collective_title":
                                     "collective_titles", "commendation": "commendations"}[
            case["kind"]]].label_of(case["proposal"])
        unit = result.units.loc[case["unit"], "unit_name"]
        found = [r for r in rows if r[name] == case["name"] and r["Đề nghị"] == label
                 and r["Đơn vị"] == unit]
        assert len(found) == 1, case
        row = found[0]
        assert row["Kết quả"] == "Không đạt"
        assert case["rule_id"] in row["Mã quy tắc"]
        assert rules.rule(case["rule_id"]).name in row["Quy tắc quyết định"]
        assert rules.rule(case["rule_id"]).citation in row["Lý do"]
        assert any(d["rule_id"] == case["rule_id"] and d["result"] == "fail"
                   and d["citation"] == rules.rule(case["rule_id"]).citation
                   for d in manifest["decisions"]
                   if d["person"] == case["name"] and d["unit"] == case["unit"])


def test_results_no_valid_proposal_is_rejected(results_run, planted, expected):
    result, _ = results_run
    failing = result.verdicts[result.verdicts["result"] == el.FAIL]
    planted_names = {(c["unit"], c["name"]) for c in planted if c["result"] == "fail"}
    assert set(zip(failing["unit_code"], failing["name"], strict=True)) == planted_names
    over = result.decisions[result.decisions["result"] == el.OVER]
    quota_units = {c["unit"] for c in planted if c["result"] == "over-quota"}
    assert set(over[over["rule_id"] == "cstd_co_so.quota"]["unit_code"]) == quota_units
    assert set(over["rule_id"]) <= {"cstd_co_so.quota", "quota.allocation"}
    # The only finding: the unit sheet planted with more LĐTT than its person rows give.
    assert [(f.code, f.file, f.column) for f in result.findings] == [
        ("count-differs", c["file"], "Số đạt Lao động tiên tiến")
        for c in expected["results"]["count_differs"]]
    differs = next(f for f in result.findings if f.code == "count-differs")
    assert f"ghi {expected['results']['count_differs'][0]['typed']}," in differs.message
    assert f"là {expected['results']['count_differs'][0]['computed']}." in differs.message


def test_results_every_proposal_cites_a_rule(results_run):
    result, _ = results_run
    assert (result.verdicts["rules"].str.len() > 0).all()
    assert (result.decisions["rule_id"] != el.NO_RULE).all()
    checks = result.decisions[result.decisions["result"] == el.CHECK]
    assert checks["reason"].str.startswith("Cần kiểm tra hồ sơ các năm trước").all()


def test_results_allocation_is_respected(results_run, expected):
    _, out = results_run
    rows = table_rows(out / "tong-hop-phong.xlsx", "Hạn mức", "STT")
    blocks = [r for r in rows if r["Đơn vị / khối"] in expected["results"]["allocation"]]
    assert len(blocks) == len(expected["results"]["allocation"])
    for row in blocks:
        assert row["Hạn mức"] == expected["results"]["allocation"][row["Đơn vị / khối"]]
        assert row["Số đề nghị hợp lệ"] - row["Vượt hạn mức"] <= row["Hạn mức"]


def _yaml_edit(path: Path, edit) -> None:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(raw)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_results_changing_rule_data_changes_decisions(tmp_path, results_run):
    base, _ = results_run
    rules_dir = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules_dir)
    office = tmp_path / "quy-tac-phong.yaml"
    shutil.copy(SAMPLES / "quy-tac-phong.yaml", office)

    def months(raw):  # the default province's months for LĐTT: 6 → 10
        next(r for r in raw["rules"] if r["id"] == "lao_dong_tien_tien.min_months"
             and str(r["from"]) == "2024-09-01")["set"] = {"months": 10}

    def share(raw):  # the office's CSTĐCS share: 15 % → 5 %
        raw["rules"][0]["set"] = {"share": 0.05}

    _yaml_edit(rules_dir / "provinces" / "mac-dinh.yaml", months)
    _yaml_edit(office, share)
    rules = load_rules("2025-2026", office=office, directory=rules_dir)
    result = consolidation(RESULTS, load_config(SAMPLES / "tdkt.toml"), round="ket-qua",
                                   registration_inbox=REGISTRATIONS, rules=rules)
    months = result.decisions[result.decisions["rule_id"] == "lao_dong_tien_tien.min_months"]
    before = base.decisions[base.decisions["rule_id"] == "lao_dong_tien_tien.min_months"]
    assert (months["result"] == el.FAIL).sum() > (before["result"] == el.FAIL).sum()
    over = result.decisions[(result.decisions["rule_id"] == "cstd_co_so.quota")]
    assert len(over) > len(base.decisions[base.decisions["rule_id"] == "cstd_co_so.quota"])


def test_results_ranking_matches_a_hand_computed_ranking(results_run, expected):
    _, out = results_run
    rows = table_rows(out / "tong-hop-phong.xlsx", "Xếp hạng khối", "Khối thi đua")
    truth = expected["results"]["units"]
    for block in {u["block"] for u in truth.values()}:
        units = sorted((c for c, u in truth.items() if u["block"] == block),
                       key=lambda c: (-truth[c]["score"], -truth[c]["lao_dong_share"],
                                      -truth[c]["cstd_count"], c))
        ranks, previous, previous_key = {}, None, None
        for position, code in enumerate(units, start=1):
            key = (truth[code]["score"], truth[code]["lao_dong_share"], truth[code]["cstd_count"])
            ranks[code] = ranks[previous] if previous and key == previous_key else position
            previous, previous_key = code, key
        written = {r["Mã đơn vị"]: r for r in rows if r["Khối thi đua"] == block}
        assert {c: written[c]["Hạng"] for c in units} == ranks, block
        assert [c for c in units if written[c]["Dẫn đầu"]] == [c for c in units if ranks[c] == 1]
    tie = [r for r in rows if r["Ghi chú xếp hạng"] and "Bằng điểm" in r["Ghi chú xếp hạng"]]
    assert tie


def test_results_rerun_gives_identical_workbooks(results_run, results_rerun):
    from .conftest import workbook_cells

    _, out = results_run
    again = results_rerun  # the same inbox again, on the same date, into another folder
    for path in sorted(out.rglob("*.xlsx")):
        assert workbook_cells(path) == workbook_cells(again.out_dir / path.relative_to(out))
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    other = json.loads((again.out_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["decisions"] == other["decisions"]
    assert {"unit", "person", "proposal", "rule_id", "result", "citation"} <= set(
        manifest["decisions"][0])


def test_results_office_score_takes_precedence_on_rerun(results_run, tmp_path):
    config = load_config(SAMPLES / "tdkt.toml")
    first, out = results_run  # a first run: its whole output folder (store included) copied
    shutil.copytree(out.parents[1], tmp_path, dirs_exist_ok=True)
    path = tmp_path / out.relative_to(out.parents[1]) / "tong-hop-phong.xlsx"
    assert path.is_file() and first.out_dir == out
    wb = openpyxl.load_workbook(path)
    ws = wb["Xếp hạng khối"]
    header = next(r for r in ws.iter_rows() if r[0].value == "Khối thi đua")
    col = {c.value: c.column for c in header}
    last = max(r for r in range(header[0].row + 1, ws.max_row + 1)
               if ws.cell(r, col["Mã đơn vị"]).value and ws.cell(r, col["Hạng"]).value)
    code = ws.cell(last, col["Mã đơn vị"]).value
    ws.cell(last, col["Điểm thẩm định"]).value = 100
    wb.save(path)
    again = consolidate(RESULTS, tmp_path, config, round="ket-qua",
                        registration_inbox=REGISTRATIONS)
    assert again.ranking.loc[code, "rank"] == 1
    assert again.ranking.loc[code, "score_source"] == "Phòng thẩm định"


def test_results_form_checks_give_one_finding_each(office, tmp_path):
    root = office()
    source = sorted(RESULTS.glob("*.xlsx"))[0]
    target = root / "hop-thu" / source.name
    shutil.copy(source, target)
    wb = openpyxl.load_workbook(target)
    crit = wb["Tự chấm điểm"]
    crit["D7"].value = crit["C7"].value + 5
    unit = wb["Đơn vị"]
    unit["E12"].value = unit["D12"].value + 1
    wb.save(target)
    result = consolidation(root / "hop-thu", load_config(root / "tdkt.toml"), round="ket-qua",
                                   registration_inbox=None)
    assert sorted((f.code, f.sheet, f.cell) for f in result.findings) == [
        ("count-above-members", "Đơn vị", "E12"), ("score-above-max", "Tự chấm điểm", "D7")]


# Laws over random proposals


RULES = load_rules("2025-2026")
people_rows = st.lists(st.tuples(st.sampled_from(["u1", "u2"]),
                                 st.sampled_from(["lao_dong_tien_tien", "cstd_co_so",
                                                  "cstd_tinh", "khong_dang_ky"]),
                                 st.sampled_from(["HTXSNV", "HTTNV", "HTNV"]),
                                 st.sampled_from([None, "co_so", "tinh"]),
                                 st.integers(0, 12), st.sampled_from(["GV", "NV", "CBQL"])),
                       min_size=1, max_size=40)


# 30 examples: the per-unit count within the quota is also a law of within_quota over any
# input (test_quota); here it is checked through the eligibility decisions.
@settings(max_examples=30, deadline=None)
@given(rows=people_rows)
def test_results_quota_and_citations_hold_for_random_proposals(rows):
    from pipeline.forms.definitions import load_forms

    vocabs = load_forms().vocabs
    people = pd.DataFrame([{
        "unit_code": unit, "row": i + 7, "full_name": f"Người {i}", "title": title,
        "registered_title": "cstd_tinh", "grade": grade, "initiative_level": level,
        "initiative": "SK" if level else None, "months_worked": months, "absence": "khong",
        "discipline": "khong", "staff_group": group, "disadvantaged": "no", "vote_share": 90,
        "commendation": None} for i, (unit, title, grade, level, months, group)
        in enumerate(rows)])
    decided = el.decisions(people, "person", RULES, vocabs)
    verdicts = el.verdicts(decided)
    proposals = people[people["title"] != "khong_dang_ky"]
    assert len(verdicts) == len(proposals)
    assert (verdicts["rules"].str.len() > 0).all() and decided["rule_id"].notna().all()
    over = _quota_decisions(verdicts, people, RULES, pd.DataFrame())
    quota = RULES.rule("cstd_co_so.quota")
    viable = verdicts[verdicts["result"].isin([el.PASS, el.CHECK])]
    for unit, group in viable.groupby("unit_code"):
        base = group["proposal"].isin(quota.params["base_titles"]).sum()
        capped = group["proposal"].isin(quota.params["counted_titles"]).sum()
        beyond = (over["unit_code"] == unit).sum()
        assert capped - beyond <= cstd_limit(int(base))  # 15 % rounded down, worked by hand
        assert beyond == max(0, capped - cstd_limit(int(base)))
    assert Counter(over["result"]) <= Counter({el.OVER: len(over)})


@pytest.mark.slow  # generates and decides a whole all-valid year end (~25 s): make test-slow
def test_results_all_valid_inbox_rejects_nothing(generated_all_valid):
    from .sample_inbox import RESULTS_INBOX

    root, record = generated_all_valid  # the sample inbox generated with violations=False
    assert record["results"]["planted"] == []
    result = consolidation(root / RESULTS_INBOX, load_config(root / "tdkt.toml"),
                           round="ket-qua", registration_inbox=root / "hop-thu")
    assert set(result.verdicts["result"]) <= {el.PASS, el.CHECK}
    assert (result.verdicts["result"] == el.PASS).sum() > 1000
    checks = result.decisions[result.decisions["result"] == el.CHECK]
    assert set(checks["rule_id"]) <= {r.id for r in result.rules.rules.values() if r.history}


def test_results_school_feedback_says_which_proposals_pass_and_why_not(results_run, planted):
    _, out = results_run
    for case in planted:
        rows = table_rows(out / "phan-hoi" / f"{case['unit']}.xlsx", "Kết quả xét", "STT")
        if case["result"] == "over-quota":
            assert sum(r["Kết quả"] == "Vượt hạn mức" for r in rows) == case["count"]
            continue
        mine = [r for r in rows if r["Họ và tên / tập thể"] == case["name"]
                and case["rule_id"] in (r["Quy tắc (để tra cứu)"] or "")]
        assert mine and mine[0]["Kết quả"] == "Không đạt", case
        assert rows[0]["Kết quả"] in ("Không đạt", "Vượt hạn mức")  # what to act on comes first
    one = table_rows(out / "phan-hoi" / "01001.xlsx", "Kết quả xét", "STT")
    assert one and {r["Kết quả"] for r in one} <= {"Đạt", "Cần kiểm tra hồ sơ các năm trước",
                                                  "Không đạt", "Vượt hạn mức"}


def test_results_without_registration_data_leave_registration_to_check(tmp_path):
    result = consolidation(RESULTS, load_config(SAMPLES / "tdkt.toml"), round="ket-qua",
                                   registration_inbox=tmp_path / "khong-co")
    registration = result.decisions[result.decisions["rule_id"].str.startswith("registration.")]
    assert len(registration) and (registration["result"] == el.CHECK).all()
    assert registration["reason"].str.contains("chưa có dữ liệu đăng ký").all()


def test_results_province_lists_hold_what_the_so_decides(results_run):
    """Only what the Phòng passed goes to the Sở, one list per title or form the province
    decides (tests/test_official.py checks each list against the manifest)."""
    result, out = results_run
    decides = result.rules.rule("province.decides").params
    book = openpyxl.load_workbook(out / "tong-hop-so.xlsx", read_only=True)
    listed = [list(r) for sheet in ("Cá nhân", "Tập thể")
              for r in book[sheet].iter_rows(values_only=True) if isinstance(r[0], int)]
    passed = result.verdicts[result.verdicts["result"] == el.PASS]
    viable = sum(((passed["kind"] == kind) & passed["proposal"].isin(codes)).sum()
                 for kind, codes in decides.items())
    assert len(listed) == viable > 10
    assert all(r[1] for r in listed)
    lines = table_rows(out / "tong-hop-so.xlsx", "Tờ trình", "STT")
    assert len(lines) == sum(len(codes) for codes in decides.values())
    assert sum(r["Cộng"] for r in lines) == viable


def test_results_registrations_come_from_the_inbox_when_the_store_lacks_them(results_run):
    """A results round run into a folder whose store has not recorded the registration round
    reads the registration inbox given, and says so."""
    from pipeline.rounds.base import round_named

    result, _ = results_run
    assert result.registration_source == "inbox"
    assert "Đối chiếu với bản đăng ký đầu năm đọc từ hộp thư đăng ký." in \
        round_named("ket-qua").summary(result)
