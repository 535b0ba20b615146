"""The year-end round's reports: decisions, quotas, rankings, lists for the Sở, feedback."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from pipeline.findings import Finding
from pipeline.reports import official
from pipeline.reports.audit import AUDIT_FILE, rule_names, write_audit_workbook
from pipeline.reports.feedback import Table, feedback_jobs, write_feedback
from pipeline.reports.registration import (
    OFFICE_FILE,
    PROVINCE_FILE,
    _numbered,
    files_and_rules_sheets,
    write_all,
)
from pipeline.reports.workbook import Col, Letterhead, ReportBook, txt
from pipeline.rounds.base import RoundResult
from pipeline.rules import eligibility as el
from pipeline.rules.ruleset import LAYER_LABELS
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
    # Narrow count columns (their headers wrap): twenty of them still print at a readable size.
    cols = [Col("expected", txt("expected"), 7.5, "int", True, group=txt("unit")),
            Col("submitted", txt("submitted"), 7.5, "int", True, group=txt("unit")),
            Col("missing", label(UnitStatus.MISSING), 7.5, "int", True, group=txt("unit"))]
    for kind, vocab in KIND_VOCABS.items():
        for value in result.forms.vocabs[vocab].values:
            proposed = f"proposed:{kind}:{value.code}"
            if proposed not in table:
                continue
            group = f"{KIND_LABELS[kind]} {'tập thể' if kind == 'collective_title' else ''}"
            cols.append(Col(proposed, f"{value.abbr} đề nghị", 7.5, "int", True,
                            group=group.strip()))
            cols.append(Col(f"title:{kind}:{value.code}", f"{value.abbr} đạt", 7.5, "int", True,
                            group=group.strip()))
            checked = f"check:{kind}:{value.code}"
            if checked in table and table[checked].sum():
                cols.append(Col(checked, f"{value.abbr} cần kiểm tra", 7.5, "int", True,
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


def write_ranking_sheet(book: ReportBook, result: RoundResult, scores_note: str) -> None:
    """The units ranked inside each khối thi đua, the leaders marked (who may be proposed for
    the Cờ thi đua), with where the verified scores are typed and how ties are broken."""
    tie_break = result.rules.rule("ranking.tie_break")
    book.table_sheet(
        txt("sheet_ranking"),
        f"XẾP HẠNG CÁC ĐƠN VỊ TRONG KHỐI THI ĐUA NĂM HỌC {result.school_year}",
        _ranking_frame(result),
        [Col("block", txt("block"), 18), Col("rank", "Hạng", 6, "int"),
         Col("unit_code", txt("unit_code"), 9), Col("unit_name", txt("unit_name"), 28),
         Col("self_score", "Điểm tự chấm", 9, "number"),
         Col("office_score", txt("office_score"), 10, "number"),
         Col("score", "Điểm xếp hạng", 9, "number"), Col("score_source", "Nguồn điểm", 14),
         Col("lao_dong_share", "Tỉ lệ LĐTT", 8, "pct"),
         Col("cstd_total", "Số CSTĐCS", 8, "int"), Col("tie_note", "Ghi chú xếp hạng", 30),
         Col("leader_label", "Dẫn đầu", 12)],
        totals_label=None,
        notes=[scores_note, f"Bằng điểm: {tie_break.description} ({tie_break.basis})."])


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


# The proposal lists print one line per proposal (name, unit, proposal, result); the rules,
# reasons and citations behind each stay on screen, after the printed columns, and the few
# proposals that do not pass are printed with their reasons on the sheet "Cần xem lại".
_PRINTED_VERDICT = [Col("proposal_label", txt("proposal"), 35),
                    Col("result_label", txt("result"), 33)]
_SCREEN_VERDICT = [Col("kind_label", "Loại đề nghị", 12, printed=False),
                   Col("rule_names", txt("rules_deciding"), 40, printed=False),
                   Col("layers_label", "Cấp quy định", 14, printed=False),
                   Col("reasons", txt("reason"), 60, printed=False),
                   Col("citations", txt("basis"), 60, printed=False),
                   Col("authority", "Thẩm quyền quyết định", 20, printed=False),
                   Col("rules", txt("rule_id"), 30, printed=False)]


def _office_verdicts(result: RoundResult, subject: str) -> pd.DataFrame:
    """The verdicts of one subject as the Phòng lists them: rules by name, grade abbreviated."""
    frame = verdict_frame(result, subject)
    frame["rule_names"] = frame["rules"].map(lambda ids: rule_names(result, ids))
    if "grade" in frame:
        abbr = {v.label: v.abbr for v in result.forms.vocabs["grades"].values}
        frame["grade_abbr"] = frame["grade"].map(lambda v: abbr.get(v, v))
    return frame


def _unverified_note(result: RoundResult) -> list[str]:
    """The note under a proposal list naming the unverified rules that passes rest on."""
    decided = result.decisions
    shaky = decided[(decided["status"] == "unverified") & (decided["result"] == el.PASS)]
    names = list(dict.fromkeys(rule_names(result, r) for r in sorted(set(shaky["rule_id"]))))
    return [txt("unverified_note", rules="; ".join(names), file=AUDIT_FILE)] if names else []


def _review_sheet(book: ReportBook, result: RoundResult, frames: list[pd.DataFrame]) -> None:
    """The proposals that do not pass, go over a quota or wait for a check, with the rules
    and reasons behind each: the few rows the Phòng works on, printed in full."""
    both = pd.concat(frames, ignore_index=True)
    frame = _numbered(both[both["result"] != el.PASS])
    book.table_sheet(
        txt("to_review"), txt("to_review_title", year=result.school_year), frame,
        [Col("seq", txt("seq"), 5, "int"), Col("name", txt("name"), 22),
         Col("unit_name", txt("unit"), 24), Col("proposal_label", txt("proposal"), 24),
         Col("result_label", txt("result"), 16), Col("rule_names", txt("rules_deciding"), 26),
         Col("reasons", txt("reason"), 52), Col("citations", txt("basis"), 60, printed=False),
         Col("rules", txt("rule_id"), 30, printed=False)],
        totals_label=None, signature=False, max_lines=6)


def write_results_office(result: RoundResult, path: Path) -> Path:
    """The Phòng's workbook of the year-end round."""
    year = result.school_year
    letterhead = Letterhead.of(result.office, result.run_date)
    subtitle = txt("as_of", year=year, date=f"{result.run_date:%d/%m/%Y}")
    people = _office_verdicts(result, "person")
    groups = _office_verdicts(result, "collective")
    notes = [*_unverified_note(result), txt("review_note", file=AUDIT_FILE)]
    with ReportBook(path, letterhead, f"Tổng hợp kết quả bình xét năm học {year}",
                    big=True) as book:
        for key, name in (("level", txt("sheet_by_level")), ("block", txt("sheet_by_block"))):
            table, cols = _summary(result, key)
            book.table_sheet(name, f"TỔNG HỢP ĐỀ NGHỊ KHEN THƯỞNG {name.upper()} NĂM HỌC {year}",
                             table, [Col(key, txt(key), 16), *cols], subtitle=subtitle)
        book.table_sheet(
            "Đề nghị cá nhân", f"DANH SÁCH ĐỀ NGHỊ KHEN THƯỞNG CÁ NHÂN NĂM HỌC {year}", people,
            [Col("seq", txt("seq"), 5, "int"), Col("name", txt("full_name"), 25),
             Col("position", txt("position"), 21), Col("unit_name", txt("unit"), 33),
             Col("grade_abbr", "Xếp loại", 9), *_PRINTED_VERDICT,
             Col("level", txt("level"), 9, printed=False),
             Col("grade", "Xếp loại (đầy đủ)", 28, printed=False), *_SCREEN_VERDICT],
            totals_label=None, highlight=people["result"].isin([el.FAIL, el.OVER]),
            notes=notes, max_lines=1)
        book.table_sheet(
            "Đề nghị tập thể", f"DANH SÁCH ĐỀ NGHỊ KHEN THƯỞNG TẬP THỂ NĂM HỌC {year}", groups,
            [Col("seq", txt("seq"), 5, "int"), Col("name", txt("collective_name"), 30),
             Col("unit_name", txt("unit"), 33), *_PRINTED_VERDICT,
             Col("level", txt("level"), 9, printed=False),
             Col("block", txt("block"), 16, printed=False), *_SCREEN_VERDICT],
            totals_label=None, highlight=groups["result"].isin([el.FAIL, el.OVER]),
            notes=notes, max_lines=1)
        _review_sheet(book, result, [people, groups])
        write_waiting_sheet(book, result)  # proposals held back from the Sở
        book.table_sheet(
            "Hạn mức", f"HẠN MỨC KHEN THƯỞNG NĂM HỌC {year}", _quota_frame(result),
            [Col("seq", txt("seq"), 5, "int"), Col("scope", "Đơn vị / khối", 28),
             Col("what", "Danh hiệu, hình thức", 26), Col("base", "Số đạt LĐTT (cơ sở tính)", 12,
                                                        "int"),
             Col("limit", "Hạn mức", 9, "int"), Col("proposed", "Số đề nghị hợp lệ", 10, "int"),
             Col("beyond", "Vượt hạn mức", 9, "int", True), Col("basis", txt("basis"), 48)])
        write_ranking_sheet(
            book, result, f"Phòng nhập điểm thẩm định vào cột “{txt('office_score')}” rồi "
            "chạy lại: điểm này thay cho điểm tự chấm khi xếp hạng.")
        book.table_sheet(
            "Đăng ký – đề nghị", f"ĐỐI CHIẾU ĐĂNG KÝ ĐẦU NĂM VÀ ĐỀ NGHỊ CUỐI NĂM {year}",
            _registration_frame(result),
            [Col("seq", txt("seq"), 5, "int"), Col("unit_name", txt("unit"), 30),
             Col("name", txt("name"), 24), Col("what", txt("content"), 40),
             Col("proposal", txt("proposal"), 24), Col("registered", "Đã đăng ký", 24),
             Col("basis", txt("basis"), 60, printed=False)], totals_label=None, max_lines=1)
        eligible = result.eligible if result.eligible is not None else pd.DataFrame(
            columns=["unit_code", "name", "kind", "proposal", "rule_id", "reason"])
        eligible = _numbered(eligible.merge(result.units[["unit_name"]], left_on="unit_code",
                                            right_index=True, how="left").assign(
            proposal_label=[_label(result, k, p) for k, p in
                            zip(eligible["kind"], eligible["proposal"], strict=True)],
            rule_name=[rule_names(result, r) for r in eligible["rule_id"]]))
        book.table_sheet(
            "Đủ điều kiện cao hơn",
            f"NGƯỜI ĐỦ ĐIỀU KIỆN NHIỀU NĂM NHƯNG CHƯA ĐƯỢC ĐỀ NGHỊ NĂM HỌC {year}", eligible,
            [Col("seq", txt("seq"), 5, "int"), Col("name", txt("full_name"), 24),
             Col("unit_name", txt("unit"), 28), Col("proposal_label", "Có thể đề nghị", 28),
             Col("rule_name", txt("rule_name"), 28), Col("reason", "Căn cứ kho lịch sử", 50),
             Col("rule_id", txt("rule_id"), 24, printed=False)],
            totals_label=None)
        book.findings_sheet(txt("sheet_findings"), result.findings,
                            title=f"LỖI VÀ CẢNH BÁO TRONG CÁC TỆP KẾT QUẢ NĂM HỌC {year}")
        files_and_rules_sheets(book, result)
    return path


PROVINCE_FORM = "bao-cao-ket-qua"
# The inputs of the rules behind a proposal: in the Sở's lists, on screen after the printed
# columns (the Sở's round reads them to decide again).
_SCREEN = {"staff": frozenset({"staff_group", "grade", "months_worked", "absence",
                               "absence_months", "study_result", "discipline", "discipline_date",
                               "pending_case", "initiative", "initiative_level",
                               "initiative_decision", "years_in_sector", "years_hardship",
                               "vote_share", "history"}),
           "collectives": frozenset({"members", "completed_tasks", "lao_dong_count",
                                     "cstd_count", "disciplined", "vote_share"})}


def passed_offers(result: RoundResult) -> dict[str, pd.DataFrame]:
    """The proposals the Phòng passed, one row per person or collective and proposal (columns
    kind, proposal), with every column of the school's row; `history`: what the earlier
    years' records showed, by the rules that read them."""
    verdicts = result.verdicts[result.verdicts["result"] == el.PASS]
    out = {}
    for subject, source in (("person", result.staff), ("collective", result.collectives)):
        chosen = verdicts[verdicts["subject"] == subject].drop(columns=["subject", "result"])
        rows = chosen.merge(source.drop(columns=["kind", "proposal"], errors="ignore"),
                            on=["unit_code", "row"], how="left")
        rows["history"] = [_history(result, ids) for ids in rows["rules"]]
        out[subject] = rows
    return out


def _history(result: RoundResult, ids: object) -> str | None:
    """The earlier years' records a passed proposal rests on ("3 năm liên tục đạt …")."""
    rules = [result.rules.rules.get(i.strip()) for i in str(ids or "").split(",")]
    said = [r.history for r in rules if r is not None and r.history]
    return "; ".join(dict.fromkeys(said)) or None


def write_results_province(result: RoundResult, path: Path) -> Path:
    """The Sở's workbook, an official submission (tờ trình) and a form (bao-cao-ket-qua): the
    count of each list the province decides, every school with what passed there, then the
    persons and collectives proposed — only proposals the Phòng passed (those waiting for
    earlier years' records stay on the Phòng's sheet "Cần bổ sung hồ sơ")."""
    vocabs = result.forms.vocabs
    form = result.forms.current(PROVINCE_FORM)
    year = result.school_year
    office, province = result.office, result.province
    decider = official.province_decider(result.rules, province)
    where = {"office": office.name, "locality": official.locality(office)}
    reported = official.commune_units(result.units, vocabs)
    offers = official.commune_offers(passed_offers(result), reported)
    doc = official.Document(
        office=office, province=province, date=result.run_date,
        kind=official.t("results_kind"), code=official.t("results_code"),
        subject=official.t("results_subject", year=year),
        body=(official.t("results_body", year=year, decider=decider,
                         province=official.addressee(province), **where),),
        closing=(official.t("results_closing", province=official.addressee(province),
                            **where),))
    return official.write_report(path, result, form, doc, offers, reported,
                                 f"Đề nghị khen thưởng năm học {year}", screen=_SCREEN)


def write_waiting_sheet(book: ReportBook, result: RoundResult) -> None:
    """The Phòng's sheet of proposals the province decides that wait for earlier years'
    records: not sent to the Sở until the records are in."""
    decides = set(official.province_lists(result.rules))
    frame = pd.concat([verdict_frame(result, "person"), verdict_frame(result, "collective")],
                      ignore_index=True)
    columns = ["name", "unit_name", "level", "proposal_label", "reasons"]
    keep = [(k, p) in decides and r == el.CHECK for k, p, r in
            zip(frame.get("kind", ()), frame.get("proposal", ()), frame.get("result", ()),
                strict=True)]
    book.table_sheet(
        official.t("waiting_sheet"), official.t("waiting_title", year=result.school_year),
        _numbered(frame[keep].reindex(columns=columns) if len(frame) else
                  pd.DataFrame(columns=columns)),
        [Col("seq", txt("seq"), 5, "int"), Col("name", txt("name"), 24),
         Col("unit_name", txt("unit"), 28), Col("level", txt("level"), 9),
         Col("proposal_label", txt("proposal"), 26), Col("reasons", txt("reason"), 60)],
        totals_label=None, signature=False, notes=[official.t("waiting_note")])


def proposals_by_unit(result: RoundResult) -> dict[str | None, pd.DataFrame]:
    """Each unit's verdicts (persons, then collectives), labelled once for every feedback;
    key None holds the empty frame for files of no known unit."""
    frame = pd.concat([verdict_frame(result, "person"), verdict_frame(result, "collective")],
                      ignore_index=True)
    return {None: frame.iloc[0:0], **dict(iter(frame.groupby("unit_code", sort=False)))}


# What a school reads of its verdicts: the rules that decided only in the last column.
_SCHOOL_VERDICT_COLS = [
    Col("seq", txt("seq"), 5, "int"), Col("name", txt("name"), 22),
    Col("kind_label", "Loại đề nghị", 11), Col("proposal_label", txt("proposal"), 20),
    Col("result_label", txt("result"), 13), Col("reasons", txt("reason"), 34),
    Col("citations", txt("basis"), 44), Col("authority", "Thẩm quyền quyết định", 16),
    Col("rules", txt("rule_lookup"), 18)]


def write_results_feedback(result: RoundResult, code: str | None, findings: list[Finding],
                           sub, title: str, path: Path, *,
                           proposals: dict[str | None, pd.DataFrame] | None = None) -> Path:
    """A school's feedback: which proposals pass and why not, its problems, its own sheets
    with the faulty cells marked (corrected in place and sent back)."""
    proposals = proposals if proposals is not None else proposals_by_unit(result)
    mine = proposals.get(code, proposals[None]) if code else proposals[None]
    # What the school must act on first: not passed, over a quota, to be checked, then passed.
    order = {el.FAIL: 0, el.OVER: 1, el.CHECK: 2, el.PASS: 3}
    mine = _numbered(mine.assign(_order=mine["result"].map(order)).sort_values(
        ["_order", "kind", "proposal", "row"], kind="stable"))
    verdicts = Table(txt("sheet_verdicts"), title.upper(), mine, _SCHOOL_VERDICT_COLS,
                     mine["result"].isin([el.FAIL, el.OVER]).tolist())
    return write_feedback(result, findings, sub, title, path, tables=[verdicts])


def write_results_reports(result: RoundResult, root: Path, *,
                          with_report: bool = True) -> list[Path]:
    """Every workbook of the year-end round under `root`. Without `with_report`, no report to
    the Sở (the Sở's own round writes its direct schools')."""
    summaries = [functools.partial(write_results_office, result, root / OFFICE_FILE),
                 *([functools.partial(write_results_province, result, root / PROVINCE_FILE)]
                   if with_report else []),
                 functools.partial(write_audit_workbook, result, root / AUDIT_FILE,
                                   functools.partial(_label, result))]
    feedback = functools.partial(write_results_feedback, proposals=proposals_by_unit(result))
    return write_all(summaries, feedback_jobs(result, root, feedback,
                                              txt("feedback_results")))
