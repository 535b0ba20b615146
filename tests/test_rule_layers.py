"""Rules layered by authority (law, sector, province, office) and dated: what is in force on a
round's date decides; a lower layer sets open numbers or adds rules, visibly; any school year
runs from the same files."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.engine import consolidation, rules_date
from pipeline.findings import DefinitionError
from pipeline.rules.ruleset import load_rules, read_layers
from pipeline.settings import RULES_DIR

from .conftest import OFFICE_FILES, SAMPLES, table_rows

REGISTRATIONS = SAMPLES / "hop-thu"
RESULTS = SAMPLES / "hop-thu-ket-qua"


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    return target


def _edit(path: Path, edit) -> None:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(raw)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _office(tmp_path: Path, rules: str) -> Path:
    """A copy of the sample office whose tdkt.toml has the given [rules] table."""
    root = tmp_path / "office"
    root.mkdir()
    for name in OFFICE_FILES:
        shutil.copy(SAMPLES / name, root / name)
    text = (root / "tdkt.toml").read_text(encoding="utf-8")
    start = text.index("[rules]")
    end = text.index("[inboxes]")
    (root / "tdkt.toml").write_text(text[:start] + rules + "\n\n" + text[end:],
                                    encoding="utf-8")
    return root


# Dates and years


@pytest.mark.parametrize("year", [f"{y}-{y + 1}" for y in range(2018, 2031)])
@pytest.mark.parametrize("province", ["mac-dinh", "bac-ninh"])
def test_rule_layers_every_school_year_runs_from_the_same_files(year, province):
    rules = load_rules(year, province=province)
    assert rules.school_year == year
    # The year-end decides: LĐTT, CSTĐCS and the collective titles always have a rule.
    for rule_id in ("lao_dong_tien_tien.grade", "lao_dong_tien_tien.min_months",
                    "cstd_co_so.base", "cstd_co_so.quota", "tt_lao_dong_tien_tien.base",
                    "tt_lao_dong_xuat_sac.base", "quota.priority", "ranking.tie_break"):
        assert rule_id in rules.rules, (year, rule_id)
    assert not (rules.date.year > 2024 and "2003" in rules.legal_basis.get("law", ""))


def test_rule_layers_round_dates_come_from_the_calendar():
    config = load_config(SAMPLES / "tdkt.toml", "2026-2027")
    assert rules_date(config, "dang-ky") == dt.date(2026, 10, 15)
    assert rules_date(config, "ket-qua") == dt.date(2027, 5, 25)


def test_rule_layers_the_law_in_force_on_each_date():
    # Luật 2003 and NĐ 91/2017 until 31/12/2023: 15 % CSTĐCS cap, 10 months, sáng kiến required.
    october_2023 = load_rules("2023-2024", dt.date(2023, 10, 15))
    assert october_2023.rule("cstd_co_so.quota").params["share"] == 0.15
    assert october_2023.rule("cstd_co_so.quota").layer == "law"
    assert "91/2017" in october_2023.rule("cstd_co_so.quota").citation
    # From 1/1/2024 the law sets no cap; the default province kept 15 % and 10 months for
    # school year 2023-2024 only (its regulation under the old decree), as local numbers.
    may_2024 = load_rules("2023-2024", dt.date(2024, 5, 25))
    assert may_2024.rule("cstd_co_so.quota").layer == "province"
    assert may_2024.rule("cstd_co_so.quota").status == "local"
    assert may_2024.rule("lao_dong_tien_tien.min_months").params["months"] == 10
    may_2026 = load_rules("2025-2026")
    assert may_2026.rule("cstd_co_so.quota").params["share"] is None
    assert may_2026.rule("lao_dong_tien_tien.min_months").params["months"] == 6
    assert may_2026.rule("lao_dong_tien_tien.min_months").status == "unverified"
    # CSTĐCS: one of HTXSNV, a sáng kiến, a đề tài (Luật 06/2022 Điều 23).
    assert "any" in may_2026.rule("cstd_co_so.base").require
    for rules in (may_2024, may_2026):
        for rule in rules.rules.values():
            assert "2003" not in rule.citation and "91/2017" not in rule.citation, rule.id


def test_rule_layers_the_2026_amendment_is_off_unless_switched_on():
    default = load_rules("2026-2027")
    switched = load_rules("2026-2027", options=["sua-doi-2026"])
    assert "any" in default.rule("cstd_co_so.base").require
    amended = switched.rule("cstd_co_so.base")
    assert amended.status == "unverified" and "any" not in amended.require
    # Before 1/10/2026 the option changes nothing.
    assert "any" in load_rules("2025-2026", options=["sua-doi-2026"]).rule(
        "cstd_co_so.base").require
    with pytest.raises(DefinitionError, match="khong-co"):
        load_rules("2026-2027", options=["khong-co"])


def test_rule_layers_bac_ninh_from_its_decision_and_the_default_before():
    before = load_rules("2024-2025", province="bac-ninh")
    after = load_rules("2025-2026", province="bac-ninh")
    assert before.rule("tt_lao_dong_tien_tien.base").source == "Tỉnh (mặc định)"
    rule = after.rule("tt_lao_dong_tien_tien.base")
    assert rule.source == "Tỉnh Bắc Ninh" and "86/2025" in rule.citation
    assert rule.params["lao_dong_share"] == 0.7
    assert any("Tỉnh Bắc Ninh thay" in o for o in rule.overrides)
    assert "bang_khen_tinh.grade" not in after.rules
    # The note a person reads names the rule removed, never by its id.
    removed = before.rule("bang_khen_tinh.grade").name
    assert any(f"bỏ quy định “{removed}”" in note for note in after.removed)
    assert not any("bang_khen_tinh.grade" in note for note in after.removed)
    # What QĐ 86/2025 does not set comes from the default province, marked as such.
    assert after.rule("lao_dong_tien_tien.min_months").source == "Tỉnh (mặc định)"


# What a layer may and may not do


def _law_rule(raw: dict, rule_id: str, start: str | None = None) -> dict:
    return next(r for r in raw["rules"] if r["id"] == rule_id
                and (start is None or str(r["from"]) == start))


def test_rule_layers_an_unknown_key_is_refused(tmp_path):
    rules = _copy(tmp_path)
    # A key one level off ("min_months" under params instead of "months") must not be ignored.
    _edit(rules / "law.yaml", lambda raw: _law_rule(raw, "vote.cstd_co_so").update(
        threshold=80))
    with pytest.raises(DefinitionError, match="unknown key"):
        read_layers(directory=rules)
    rules = _copy(tmp_path / "2")
    _edit(rules / "provinces" / "mac-dinh.yaml", lambda raw: raw["rules"][0].update(
        set={"month": 7}))
    with pytest.raises(DefinitionError, match="does not have"):
        load_rules("2023-2024", directory=rules)


def test_rule_layers_a_repealed_text_is_cited_only_in_its_years(tmp_path):
    rules = _copy(tmp_path)
    _edit(rules / "law.yaml", lambda raw: _law_rule(raw, "cstd_tinh.base").update(
        citation="Luật TĐKT 2003 Điều 22"))
    with pytest.raises(DefinitionError, match="in force only"):
        read_layers(directory=rules)


def test_rule_layers_a_lower_layer_cannot_change_or_remove_the_law(tmp_path):
    rules = _copy(tmp_path)
    office = tmp_path / "phong.yaml"
    office.write_text(yaml.safe_dump({"layer": "office", "name": "Phòng", "rules": [
        {"id": "vote.cstd_co_so", "from": dt.date(2024, 1, 1), "set": {"min_share": 60},
         "citation": "Kế hoạch", "status": "local"}]}, allow_unicode=True), encoding="utf-8")
    with pytest.raises(DefinitionError, match="sets only open numbers"):
        load_rules("2025-2026", office=office, directory=rules)
    office.write_text(yaml.safe_dump({"layer": "office", "name": "Phòng", "rules": [
        {"id": "lao_dong_tien_tien.grade", "from": dt.date(2024, 1, 1), "removed": True,
         "citation": "Kế hoạch", "status": "local"}]}, allow_unicode=True), encoding="utf-8")
    with pytest.raises(DefinitionError, match="only province and office rules"):
        load_rules("2025-2026", office=office, directory=rules)


# Consolidations


def _decisions(result, rule_id: str):
    return result.decisions[result.decisions["rule_id"] == rule_id]


def test_rule_layers_a_copied_province_layer_changes_the_decisions(tmp_path, results_run):
    base, _ = results_run
    root = _office(tmp_path, '[rules]\nprovince = "tinh-cua-toi.yaml"\n'
                             'office = "quy-tac-phong.yaml"')
    copy = root / "tinh-cua-toi.yaml"
    shutil.copy(RULES_DIR / "provinces" / "mac-dinh.yaml", copy)

    def stricter(raw):  # the province's months for LĐTT: 6 → 11
        entry = next(r for r in raw["rules"] if r["id"] == "lao_dong_tien_tien.min_months"
                     and str(r["from"]) == "2024-09-01")
        entry["set"] = {"months": 11}
        entry["citation"] = "Quy chế thi đua, khen thưởng của tỉnh (bản sao của Phòng)"
        entry["status"] = "local"

    _edit(copy, stricter)
    config = load_config(root / "tdkt.toml")
    result = consolidation(RESULTS, config, round="ket-qua", registration_inbox=REGISTRATIONS)
    months = _decisions(result, "lao_dong_tien_tien.min_months")
    before = _decisions(base, "lao_dong_tien_tien.min_months")
    assert (months["result"] == "fail").sum() > (before["result"] == "fail").sum()
    assert set(months["layer"]) == {"province"}
    assert result.rules.rule("lao_dong_tien_tien.min_months").status == "local"


def test_rule_layers_an_office_adds_a_rule_without_code(tmp_path, results_run):
    base, _ = results_run
    root = _office(tmp_path, '[rules]\noffice = "them-quy-tac.yaml"')
    shutil.copy(SAMPLES / "quy-tac-phong.yaml", root / "them-quy-tac.yaml")

    def add(raw):
        raw["rules"].append({
            "id": "office.giay_khen_vote", "from": dt.date(2025, 9, 1), "applies": ["ket-qua"],
            "subject": "person", "description": "Giấy khen cần từ 96% số phiếu đồng ý.",
            "citation": "Kế hoạch thi đua năm học 2025-2026 của Phòng", "status": "local",
            "proposals": {"commendation": ["giay_khen"]},
            "require": {"column": "vote_share", "min": 96}})

    _edit(root / "them-quy-tac.yaml", add)
    result = consolidation(RESULTS, load_config(root / "tdkt.toml"), round="ket-qua",
                           registration_inbox=REGISTRATIONS)
    added = _decisions(result, "office.giay_khen_vote")
    persons = base.verdicts[(base.verdicts["subject"] == "person")
                            & (base.verdicts["proposal"] == "giay_khen")]
    assert len(added) == len(persons) > 0
    assert set(added["layer"]) == {"office"}
    people = result.staff.set_index(["unit_code", "row"])["vote_share"]
    for d in added.itertuples():
        assert (d.result == "pass") == (people[(d.unit_code, d.row)] >= 96)
    assert not len(_decisions(base, "office.giay_khen_vote"))


def test_rule_layers_every_decision_names_its_layer(results_run):
    result, out = results_run
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    layers = {d["rule_id"]: d["layer"] for d in manifest["decisions"]}
    assert layers["lao_dong_tien_tien.grade"] == "law"
    assert layers["registration.title"] == "office"
    assert layers["lao_dong_tien_tien.min_months"] == "province"
    assert layers["cstd_co_so.quota"] == "office"  # the sample office's 15 %
    unverified = result.decisions[result.decisions["status"] == "unverified"]
    assert len(unverified) and unverified["reason"].str.contains("cần đối chiếu văn bản").all()
    # A pass resting on the unverified 6 months says so in the verdict lists too.
    passed = result.verdicts[(result.verdicts["result"] == "pass")
                             & (result.verdicts["proposal"] == "lao_dong_tien_tien")]
    months = result.rules.rule("lao_dong_tien_tien.min_months").name
    assert passed["reasons"].str.contains(
        f"chưa xác minh ({months}): cần đối chiếu văn bản", regex=False).all()
    rows = table_rows(out / "doi-chieu-quy-tac.xlsx", "Quyết định theo quy tắc", "STT")
    written = {(r["Mã quy tắc"], r["Cấp quy định"]) for r in rows}
    assert ("lao_dong_tien_tien.grade", "Trung ương") in written
    assert ("lao_dong_tien_tien.min_months", "Tỉnh (mặc định)") in written
    assert ("registration.title", "Phòng/Sở (kế hoạch năm học)") in written


@pytest.mark.slow  # `make test-slow`, in CI
def test_rule_layers_the_current_school_year_consolidates_the_samples(tmp_path):
    out = tmp_path / "out"
    runner = CliRunner()
    config = str(SAMPLES / "tdkt.toml")
    first = runner.invoke(main, ["consolidate", str(REGISTRATIONS), "--out", str(out),
                                 "--config", config, "--year", "2026-2027"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(main, ["consolidate", str(RESULTS), "--round", "ket-qua",
                                  "--registrations", str(REGISTRATIONS), "--out", str(out),
                                  "--config", config, "--year", "2026-2027"])
    assert second.exit_code == 0, second.output
    manifest = json.loads((out / "2026-2027" / "ket-qua" / "manifest.json").read_text(
        encoding="utf-8"))
    assert manifest["school_year"] == "2026-2027"
    assert manifest["rule_set"]["date"] == "2027-05-25"
    assert manifest["decisions"]
    registration = json.loads((out / "2026-2027" / "dang-ky" / "manifest.json").read_text(
        encoding="utf-8"))
    assert registration["rule_set"]["date"] == "2026-10-15"


# tdkt rules


def test_rule_layers_rules_command_lists_and_compares(tmp_path):
    import openpyxl

    root = _office(tmp_path, '[rules]\nprovince = "mac-dinh"')
    config = str(root / "tdkt.toml")
    runner = CliRunner()
    for year in ("2025-2026", "2026-2027"):
        result = runner.invoke(main, ["rules", "--config", config, "--year", year])
        assert result.exit_code == 0, result.output
        assert "cstd_co_so.base" in result.output and "Trung ương" in result.output
    out = tmp_path / "quy-tac.xlsx"
    result = runner.invoke(main, ["rules", "--config", config, "--year", "2025-2026",
                                  "--compare", "2023-2024", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "lao_dong_tien_tien.min_months: Thay đổi số tháng: 10 → 6" in result.output
    assert "cstd_co_so.quota: Thay đổi tỉ lệ: 15% → để ngỏ (không giới hạn)" in result.output
    book = openpyxl.load_workbook(out, read_only=True)
    rows = [[c for c in row if c is not None] for row in book["Thay đổi"].values]
    assert ["lao_dong_tien_tien.min_months", "Thay đổi số tháng", "10", "6"] in [
        r[1:] for r in rows if len(r) == 5]
    listed = [row[1] for row in book["Quy tắc"].values if row and isinstance(row[0], int)]
    assert "principles.pending_case" in listed and "cstd_co_so.base" in listed
    wrong = runner.invoke(main, ["rules", "--config", config, "--province", "khong-co"])
    assert wrong.exit_code == 2 and "khong-co" in wrong.output


# Who decides; women between equals


def test_rule_layers_who_decides_depends_on_the_unit_and_the_year():
    from types import SimpleNamespace

    from pipeline.forms.definitions import load_forms
    from pipeline.reports.results import deciding_authority

    forms = load_forms()

    def who(year: str, level: str, kind: str, proposal: str) -> str:
        return deciding_authority(SimpleNamespace(rules=load_rules(year), forms=forms),
                                  level, kind, proposal)

    assert who("2025-2026", "MN", "title", "lao_dong_tien_tien") == "Chủ tịch UBND xã"
    assert who("2025-2026", "TH&THCS", "commendation", "giay_khen") == "Chủ tịch UBND xã"
    assert who("2024-2025", "TH", "title", "cstd_co_so") == "Chủ tịch UBND huyện"
    assert who("2025-2026", "TH-THCS-THPT", "commendation", "giay_khen") == \
        "Giám đốc Sở Giáo dục và Đào tạo"
    assert who("2025-2026", "THCS", "title", "cstd_tinh") == "Chủ tịch UBND tỉnh"
    assert who("2025-2026", "MN", "collective_title", "tt_lao_dong_xuat_sac") == \
        "Chủ tịch UBND tỉnh"


def test_rule_layers_women_first_between_equal_candidates_from_july_2025():
    import pandas as pd

    from pipeline.rounds.results import quota_priority
    from pipeline.rules.quota import within_quota

    # Two CSTĐCS candidates equal on every key of the plan; the man's name sorts first.
    candidates = pd.DataFrame({
        "unit_code": ["01001", "01001"], "full_name": ["Nguyễn Văn An", "Trần Thị Bình"],
        "sex": ["nam", "nu"], "grade": ["HTXSNV", "HTXSNV"], "initiative_level": ["co_so"] * 2,
        "staff_group": ["GV", "GV"], "disadvantaged": ["no", "no"], "vote_share": [90, 90]})
    for year, kept in (("2023-2024", "Nguyễn Văn An"), ("2025-2026", "Trần Thị Bình")):
        marked = within_quota(candidates, {"01001": 1}, quota_priority(load_rules(year)),
                              group="unit_code", quota_label="CSTĐCS")
        assert marked.loc[marked["within_quota"], "full_name"].tolist() == [kept], year
