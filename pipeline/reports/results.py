"""The year-end round's reports: decisions, quotas, rankings, lists for the Sở, feedback."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pandas as pd

from pipeline.findings import Finding
from pipeline.reports.registration import (
    OFFICE_FILE,
    PROVINCE_FILE,
    _numbered,
    copy_marked_sheets,
    feedback_jobs,
    files_and_rules_sheets,
    write_all,
)
from pipeline.reports.workbook import Col, Letterhead, ReportBook, txt
from pipeline.rounds.base import RoundResult
from pipeline.rules import eligibility as el
from pipeline.rules.ruleset import LAYER_LABELS, STATUS_LABELS
from pipeline.status import UnitStatus, label

KIND_LABELS = {"title": "Danh hiệu", "collective_title": "Danh hiệu",
               "commendation": txt("commendation")}
KIND_VOCABS = {"title": "individual_titles", "collective_title": "collective_titles",
               "commendation": "commendations"}


def _label(result: RoundResult, kind: str, code: str) -> str:
    vocab = result.forms.vocabs[KIND_VOCABS[kind]]
    return vocab.label_of(code) if code in vocab.codes else str(code)


def deciding_authority(result: RoundResult, level: str, kind: str, proposal: str) -> str:
    """Who decides a proposal for a unit of this cấp học (rule authority.decides by the unit's
    manager, commune or province; the province's forms: province.decides)."""
    rules = result.rules.rules
    authority, upper = rules.get("authority.decides"), rules.get("province.decides")
    if upper is not None and proposal in upper.params.get(kind, ()):
        return authority.params["upper"]["decides"] if authority else ""
    if authority is None:
        return ""
    levels = result.forms.vocabs["levels"]
    manager = levels.by_code(level).attrs.get("manager", "commune") \
        if level in levels.codes else "commune"
    who = authority.params.get(manager) or {}
    return who.get("decides", "") if proposal in who.get("titles", ()) else ""


def verdict_frame(result: RoundResult, subject: str) -> pd.DataFrame:
    """The verdicts of one subject with unit names and labels, in list order."""
    verdicts = result.verdicts
    frame = verdicts[verdicts["subject"] == subject].merge(
        result.units[["unit_name", "level", "block"]], left_on="unit_code", right_index=True,
        how="left")
    source = result.staff if subject == "person" else result.collectives
    extra = ["position", "grade", "initiative", "initiative_level"] if subject == "person" \
        else ["collective_kind"]
    frame = frame.merge(source[["unit_code", "row", *[c for c in extra if c in source]]],
                        on=["unit_code", "row"], how="left")
    frame["kind_label"] = frame["kind"].map(KIND_LABELS)
    frame["proposal_label"] = [_label(result, k, p) for k, p in
                               zip(frame["kind"], frame["proposal"], strict=True)]
    frame["result_label"] = frame["result"].map(el.RESULT_LABELS)
    frame["layers_label"] = frame["layers"].map(
        lambda v: ", ".join(LAYER_LABELS.get(x.strip(), x) for x in str(v).split(",")
                            if x.strip()) if isinstance(v, str) else "")
    frame["authority"] = [deciding_authority(result, lvl, k, p) for lvl, k, p in
                          zip(frame["level"], frame["kind"], frame["proposal"], strict=True)]
    vocabs = result.forms.vocabs
    for column, vocab in (("position", "positions"), ("grade", "grades"),
                          ("initiative_level", "initiative_levels"),
                          ("collective_kind", "collective_kinds")):
        if column in frame:
            labels = {v.code: v.label for v in vocabs[vocab].values}
            frame[column] = frame[column].map(lambda v, labels=labels: labels.get(v, v))
    frame = frame.sort_values(["kind", "proposal", "level", "block", "unit_code", "row"])
    return _numbered(frame)


def _summary(result: RoundResult, key: str) -> tuple[pd.DataFrame, list[Col]]:
    table = result.by_level if key == "level" else result.by_block
    cols = [Col("expected", txt("expected"), 9, "int", True, group=txt("unit")),
            Col("submitted", txt("submitted"), 8, "int", True, group=txt("unit")),
            Col("missing", label(UnitStatus.MISSING), 8, "int", True, group=txt("unit"))]
    for kind, vocab in KIND_VOCABS.items():
        for value in result.forms.vocabs[vocab].values:
            proposed = f"proposed:{kind}:{value.code}"
            if proposed not in table:
                continue
            group = f"{KIND_LABELS[kind]} {'tập thể' if kind == 'collective_title' else ''}"
            cols.append(Col(proposed, f"{value.abbr} đề nghị", 9, "int", True,
                            group=group.strip()))
            cols.append(Col(f"title:{kind}:{value.code}", f"{value.abbr} đạt", 9, "int", True,
                            group=group.strip()))
            checked = f"check:{kind}:{value.code}"
            if checked in table and table[checked].sum():
                cols.append(Col(checked, f"{value.abbr} cần kiểm tra", 9, "int", True,
                                group=group.strip()))
    return table, cols


def _quota_frame(result: RoundResult) -> pd.DataFrame:
    """The round's quota table with the names people read."""
    quotas = result.quotas
    scope = [result.units.loc[s, "unit_name"] if k == "unit" else s
             for s, k in zip(quotas["scope"], quotas["kind"], strict=True)]
    what = ["Chiến sĩ thi đua cơ sở" if k == "unit" else _label(result, "commendation", c)
            for k, c in zip(quotas["kind"], quotas["code"], strict=True)]
    basis = [result.rules.rule(r).basis for r in quotas["rule_id"]]
    frame = quotas.assign(scope=scope, what=what, basis=basis)
    return _numbered(frame[["scope", "what", "base", "limit", "proposed", "beyond", "basis"]])


def _ranking_frame(result: RoundResult) -> pd.DataFrame:
    ranking = result.ranking.reset_index().rename(columns={"index": "unit_code"})
    if "unit_code" not in ranking:
        ranking = ranking.rename(columns={ranking.columns[0]: "unit_code"})
    ranking["leader_label"] = ranking["leader"].map({True: "Dẫn đầu khối", False: ""})
    ranking["rank"] = ranking["rank"].astype("Int64")
    return ranking


def _registration_frame(result: RoundResult) -> pd.DataFrame:
    decisions = result.decisions
    unregistered = decisions[decisions["rule_id"].str.startswith("registration.")
                             & (decisions["result"] == el.FAIL)]
    rows = [{"unit_name": result.units.loc[d.unit_code, "unit_name"], "name": d.name,
             "what": "Đề nghị nhưng chưa đăng ký đầu năm",
             "proposal": _label(result, d.kind, d.proposal), "registered": "",
             "basis": d.citation} for d in unregistered.itertuples()]
    for r in result.not_proposed.itertuples():
        proposed = r.proposed if isinstance(r.proposed, str) else None
        rows.append({"unit_name": result.units.loc[r.unit_code, "unit_name"],
                     "name": r.full_name, "what": "Đã đăng ký nhưng chưa đề nghị (Phòng xác nhận)",
                     "proposal": _label(result, "title", proposed) if proposed else "",
                     "registered": _label(result, "title", r.title), "basis": ""})
    frame = pd.DataFrame(rows, columns=["unit_name", "name", "what", "proposal", "registered",
                                        "basis"])
    return _numbered(frame)


_VERDICT_COLS = [Col("kind_label", "Loại đề nghị", 12), Col("proposal_label", txt("proposal"), 24),
                 Col("result_label", txt("result"), 14), Col("rules", "Quy tắc quyết định", 22),
                 Col("layers_label", "Cấp quy định", 14), Col("reasons", txt("reason"), 50),
                 Col("citations", txt("basis"), 40),
                 Col("authority", "Thẩm quyền quyết định", 18)]


def write_results_office(result: RoundResult, path: Path) -> Path:
    """The Phòng's workbook of the year-end round."""
    year = result.school_year
    letterhead = Letterhead.of(result.office, result.run_date)
    subtitle = txt("as_of", year=year, date=f"{result.run_date:%d/%m/%Y}")
    people = verdict_frame(result, "person")
    groups = verdict_frame(result, "collective")
    with ReportBook(path, letterhead, f"Tổng hợp kết quả bình xét năm học {year}",
                    big=True) as book:
        for key, name in (("level", txt("sheet_by_level")), ("block", txt("sheet_by_block"))):
            table, cols = _summary(result, key)
            book.table_sheet(name, f"TỔNG HỢP ĐỀ NGHỊ KHEN THƯỞNG {name.upper()} NĂM HỌC {year}",
                             table, [Col(key, txt(key), 16), *cols], subtitle=subtitle)
        book.table_sheet(
            "Đề nghị cá nhân", f"DANH SÁCH ĐỀ NGHỊ KHEN THƯỞNG CÁ NHÂN NĂM HỌC {year}", people,
            [Col("seq", txt("seq"), 5, "int"), Col("name", txt("full_name"), 22),
             Col("position", txt("position"), 16), Col("unit_name", txt("unit"), 26),
             Col("level", txt("level"), 8), Col("grade", "Xếp loại", 16), *_VERDICT_COLS],
            totals_label=None, highlight=people["result"].isin([el.FAIL, el.OVER]))
        book.table_sheet(
            "Đề nghị tập thể", f"DANH SÁCH ĐỀ NGHỊ KHEN THƯỞNG TẬP THỂ NĂM HỌC {year}", groups,
            [Col("seq", txt("seq"), 5, "int"), Col("name", txt("collective_name"), 26),
             Col("unit_name", txt("unit"), 26), Col("level", txt("level"), 8),
             Col("block", txt("block"), 16), *_VERDICT_COLS],
            totals_label=None, highlight=groups["result"].isin([el.FAIL, el.OVER]))
        book.table_sheet(
            "Hạn mức", f"HẠN MỨC KHEN THƯỞNG NĂM HỌC {year}", _quota_frame(result),
            [Col("seq", txt("seq"), 5, "int"), Col("scope", "Đơn vị / khối", 28),
             Col("what", "Danh hiệu, hình thức", 26), Col("base", "Số đạt LĐTT (cơ sở tính)", 12,
                                                        "int"),
             Col("limit", "Hạn mức", 9, "int"), Col("proposed", "Số đề nghị hợp lệ", 10, "int"),
             Col("beyond", "Vượt hạn mức", 9, "int", True), Col("basis", txt("basis"), 48)])
        ranking = _ranking_frame(result)
        book.table_sheet(
            txt("sheet_ranking"), f"XẾP HẠNG CÁC ĐƠN VỊ TRONG KHỐI THI ĐUA NĂM HỌC {year}", ranking,
            [Col("block", txt("block"), 18), Col("rank", "Hạng", 6, "int"),
             Col("unit_code", txt("unit_code"), 9), Col("unit_name", txt("unit_name"), 28),
             Col("self_score", "Điểm tự chấm", 9, "number"),
             Col("office_score", txt("office_score"), 10, "number"),
             Col("score", "Điểm xếp hạng", 9, "number"), Col("score_source", "Nguồn điểm", 14),
             Col("lao_dong_share", "Tỉ lệ LĐTT", 8, "pct"),
             Col("cstd_total", "Số CSTĐCS", 8, "number"), Col("tie_note", "Ghi chú xếp hạng", 30),
             Col("leader_label", "Dẫn đầu", 12)],
            totals_label=None,
            notes=[f"Phòng nhập điểm thẩm định vào cột “{txt('office_score')}” rồi chạy lại: "
                   "điểm này thay cho điểm tự chấm khi xếp hạng.",
                   f"Bằng điểm: {result.rules.rule('ranking.tie_break').description} "
                   f"({result.rules.rule('ranking.tie_break').basis})."])
        book.table_sheet(
            "Đăng ký – đề nghị", f"ĐỐI CHIẾU ĐĂNG KÝ ĐẦU NĂM VÀ ĐỀ NGHỊ CUỐI NĂM {year}",
            _registration_frame(result),
            [Col("seq", txt("seq"), 5, "int"), Col("unit_name", txt("unit"), 28),
             Col("name", txt("name"), 24), Col("what", txt("content"), 34),
             Col("proposal", txt("proposal"), 24), Col("registered", "Đã đăng ký", 24),
             Col("basis", txt("basis"), 40)], totals_label=None)
        eligible = result.eligible if result.eligible is not None else pd.DataFrame(
            columns=["unit_code", "name", "kind", "proposal", "rule_id", "reason"])
        eligible = _numbered(eligible.merge(result.units[["unit_name"]], left_on="unit_code",
                                            right_index=True, how="left").assign(
            proposal_label=[_label(result, k, p) for k, p in
                            zip(eligible["kind"], eligible["proposal"], strict=True)]))
        book.table_sheet(
            "Đủ điều kiện cao hơn",
            f"NGƯỜI ĐỦ ĐIỀU KIỆN NHIỀU NĂM NHƯNG CHƯA ĐƯỢC ĐỀ NGHỊ NĂM HỌC {year}", eligible,
            [Col("seq", txt("seq"), 5, "int"), Col("name", txt("full_name"), 24),
             Col("unit_name", txt("unit"), 28), Col("proposal_label", "Có thể đề nghị", 28),
             Col("rule_id", "Quy tắc", 20), Col("reason", "Căn cứ kho lịch sử", 50)],
            totals_label=None)
        decisions = result.decisions.assign(
            result_label=result.decisions["result"].map(el.RESULT_LABELS),
            status_label=result.decisions["status"].map(STATUS_LABELS),
            layer_label=result.decisions["rule_id"].map(
                lambda r: result.rules.rules[r].layer_label if r in result.rules.rules else ""),
            proposal_label=[_label(result, k, p) for k, p in
                            zip(result.decisions["kind"], result.decisions["proposal"],
                                strict=True)])
        book.table_sheet(
            "Quyết định theo quy tắc", "CÁC QUYẾT ĐỊNH THEO TỪNG QUY TẮC",
            _numbered(decisions.sort_values(["unit_code", "subject", "row", "kind", "rule_id"])),
            [Col("seq", txt("seq"), 6, "int"), Col("unit_code", txt("unit_code"), 9),
             Col("name", txt("name"), 22), Col("proposal_label", txt("proposal"), 22),
             Col("rule_id", txt("rule_id"), 24), Col("result_label", txt("result"), 12),
             Col("layer_label", "Cấp quy định", 16), Col("citation", txt("basis"), 40),
             Col("status_label", txt("verification"), 22)],
            totals_label=None, signature=False)
        book.findings_sheet(txt("sheet_findings"), result.findings,
                            title=f"LỖI VÀ CẢNH BÁO TRONG CÁC TỆP KẾT QUẢ NĂM HỌC {year}")
        files_and_rules_sheets(book, result)
    return path


def _achievement(row: pd.Series) -> str:
    parts = [str(row.get("proposal_label", ""))]
    for column in ("grade", "initiative"):
        value = row.get(column)
        if isinstance(value, str) and value:
            parts.append(value if column == "grade" else f"Sáng kiến: {value}"
                         + (f" ({row['initiative_level']})"
                            if isinstance(row.get("initiative_level"), str) else ""))
    return "; ".join(parts)


def write_results_province(result: RoundResult, path: Path) -> Path:
    """The Sở's proposal lists: what the province decides on, passing or to be checked."""
    year = result.school_year
    letterhead = Letterhead.of(result.office, result.run_date)
    frames = [verdict_frame(result, "person"), verdict_frame(result, "collective")]
    proposals = pd.concat(frames, ignore_index=True)
    cols = [Col("seq", txt("seq"), 5, "int"), Col("name", txt("name"), 26),
            Col("position", txt("position"), 18), Col("unit_name", txt("unit"), 28),
            Col("level", txt("level"), 9), Col("achievement", "Thành tích", 44),
            Col("citations", txt("basis"), 40), Col("result_label", "Kết quả xét của Phòng", 16)]
    with ReportBook(path, letterhead, f"Đề nghị khen thưởng năm học {year}") as book:
        # What the Sở decides on comes from the rule data (rule `province.decides`).
        for kind, codes in result.rules.rule("province.decides").params.items():
            for code in codes:
                chosen = proposals[(proposals["kind"] == kind) & (proposals["proposal"] == code)
                                   & proposals["result"].isin([el.PASS, el.CHECK])]
                if chosen.empty:
                    continue
                chosen = _numbered(chosen.assign(
                    achievement=chosen.apply(_achievement, axis=1),
                    position=chosen.get("position", "")))
                label = _label(result, kind, code)
                vocab = result.forms.vocabs[KIND_VOCABS[kind]]
                book.table_sheet(re.sub(r"[\[\]:*?/\\]", "-", vocab.by_code(code).abbr)[:31],
                                 f"DANH SÁCH ĐỀ NGHỊ {label.upper()} NĂM HỌC {year}", chosen,
                                 cols, subtitle=txt("addressee", office=result.province.name,
                                                    parent=result.province.parent),
                                 totals_label=None)
        if not book._names:  # nothing passes or waits at the Sở's level: an empty list
            empty = pd.DataFrame(columns=[c.key for c in cols])
            book.table_sheet("Danh sách đề nghị", f"DANH SÁCH ĐỀ NGHỊ NĂM HỌC {year}",
                             empty, cols, subtitle=txt("addressee", office=result.province.name,
                                                       parent=result.province.parent),
                             totals_label=None)
    return path


def proposals_by_unit(result: RoundResult) -> dict[str | None, pd.DataFrame]:
    """Each unit's verdicts (persons, then collectives), labelled once for every feedback;
    key None holds the empty frame for files of no known unit."""
    frame = pd.concat([verdict_frame(result, "person"), verdict_frame(result, "collective")],
                      ignore_index=True)
    return {None: frame.iloc[0:0], **dict(iter(frame.groupby("unit_code", sort=False)))}


def write_results_feedback(result: RoundResult, code: str | None, findings: list[Finding],
                           sub, title: str, path: Path, *,
                           proposals: dict[str | None, pd.DataFrame] | None = None) -> Path:
    """A school's feedback: which proposals pass and why not, its problems, its own sheets."""
    letterhead = Letterhead.of(result.office, result.run_date)
    proposals = proposals if proposals is not None else proposals_by_unit(result)
    mine = proposals.get(code, proposals[None]) if code else proposals[None]
    # What the school must act on first: not passed, over a quota, to be checked, then passed.
    order = {el.FAIL: 0, el.OVER: 1, el.CHECK: 2, el.PASS: 3}
    mine = _numbered(mine.assign(_order=mine["result"].map(order)).sort_values(
        ["_order", "kind", "proposal", "row"], kind="stable"))
    with ReportBook(path, letterhead, title) as book:
        book.table_sheet(txt("sheet_verdicts"), title.upper(), mine,
                         [Col("seq", txt("seq"), 5, "int"), Col("name", txt("name"), 24),
                          *_VERDICT_COLS], totals_label=None,
                         highlight=mine["result"].isin([el.FAIL, el.OVER]))
        book.findings_sheet(txt("sheet_to_fix"), findings, title="LỖI VÀ CẢNH BÁO TRONG TỆP",
                            include_unit=False)
        if sub is not None and sub.raw is not None:
            copy_marked_sheets(book, sub.raw, findings,
                               {txt("sheet_verdicts").lower(), txt("sheet_to_fix").lower()})
    return path


def write_results_reports(result: RoundResult, root: Path) -> list[Path]:
    """Every workbook of the year-end round under `root`."""
    summaries = [functools.partial(write_results_office, result, root / OFFICE_FILE),
                 functools.partial(write_results_province, result, root / PROVINCE_FILE)]
    feedback = functools.partial(write_results_feedback, proposals=proposals_by_unit(result))
    return write_all(summaries, feedback_jobs(result, root, feedback,
                                              txt("feedback_results")))
