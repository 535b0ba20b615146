"""The Sở's workbook of a province round (tong-hop-tinh.xlsx): the province's totals by office
and by cấp học, who has sent what, the lists for the province's council (one row per person or
collective and title or form, with the office or the direct school it came from) and every
finding. The schools counted are those the offices' reports list and the Sở's direct schools,
each once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.forms.definitions import Sheet, Vocabulary
from pipeline.reports import official
from pipeline.reports.workbook import Col, Letterhead, ReportBook, txt
from pipeline.rounds.base import RoundResult
from pipeline.status import label

PROVINCE_SUMMARY = "tong-hop-tinh.xlsx"
OFFICE = "office_code"
DIRECT = ""  # the office code of the Sở's own schools in the province's tables


def count_columns(sheet: Sheet, vocabs: dict[str, Vocabulary]) -> list[str]:
    """The report's unit-table columns that count a title or form (named by its code)."""
    return [c for c in sheet.column_ids if official.count_kind(c, vocabs) is not None]


def direct_units(direct: RoundResult, sheet: Sheet, vocabs: dict[str, Vocabulary],
                 phase: str) -> pd.DataFrame:
    """The Sở's direct schools as rows of the report's unit table (codes, not labels)."""
    units = direct.units.reset_index()
    out = units[["unit_code", "unit_name", "level", "block"]].copy()
    out["submitted"] = ["yes" if n else "no" for n in units["submitted"]]
    out["staff_registry"] = units["staff_registry"].astype(int)
    for column in count_columns(sheet, vocabs):
        key = official.REPORT_COUNT_KEYS[phase](official.count_kind(column, vocabs) or "", column)
        out[column] = units[key].astype(int) if key in units else 0
    return out.assign(**{OFFICE: DIRECT})


def province_units(reported: pd.DataFrame, direct: pd.DataFrame) -> pd.DataFrame:
    """Every school of the province once: those the offices' reports list (a school two
    offices report under the first, in office code order; a school the Sở manages as the
    Sở's own), then the Sở's. Both cases are findings for the offices to settle."""
    if len(reported):
        reported = reported[~reported["unit_code"].isin(direct["unit_code"])]
        reported = reported.drop_duplicates("unit_code", keep="first")
    frames = [f for f in (reported, direct) if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else direct


def totals(units: pd.DataFrame, key: str, counts: list[str]) -> pd.DataFrame:
    """Schools, schools that sent their file, staff and each count, per value of `key`."""
    frame = units.assign(schools=1, sent=(units["submitted"] == "yes").astype(int))
    numbers = ["schools", "sent", "staff_registry", *counts]
    for column in numbers:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(0).astype(int)
    return frame.groupby(key, sort=False)[numbers].sum()


def _count_cols(sheet: Sheet, counts: list[str]) -> list[Col]:
    return [Col("schools", "Số đơn vị", 8, "int", True), Col("sent", "Đã nộp", 8, "int", True),
            Col("staff_registry", "Số CB-GV-NV", 9, "int", True),
            *[Col(c, sheet.column(c).header, 8, "int", True) for c in counts]]


def by_office(result, units: pd.DataFrame, counts: list[str]) -> pd.DataFrame:
    """One row per office (its report's status) and one for the Sở's direct schools."""
    sums = totals(units, OFFICE, counts)
    rows = []
    for code, office in result.offices.iterrows():
        rows.append({"code": code, "name": office["office_name"],
                     "status": label(office["status"]), **_sums(sums, code, counts)})
    rows.append({"code": "", "name": txt("direct_units"), "status": "",
                 **_sums(sums, DIRECT, counts)})
    return pd.DataFrame(rows)


def _sums(sums: pd.DataFrame, key: str, counts: list[str]) -> dict[str, int]:
    if key in sums.index:
        return {k: int(v) for k, v in sums.loc[key].items()}
    return dict.fromkeys(["schools", "sent", "staff_registry", *counts], 0)


def by_level(units: pd.DataFrame, counts: list[str], levels: Vocabulary) -> pd.DataFrame:
    """One row per cấp học, in the vocabulary's order."""
    sums = totals(units, "level", counts)
    return pd.DataFrame([{"level": levels.by_code(code).attrs.get("name", code),
                          **_sums(sums, code, counts)} for code in levels.codes])


def arrivals(result) -> pd.DataFrame:
    """Who has sent what, offices then direct schools: on time, late (after the round's
    deadline, the day its rules are read on), missing or invalid, as the month-end progress
    report tells it (pipeline/reports/completeness.py), arrivals from the input archive."""
    from pipeline.reports.completeness import (
        DIRECT_KIND,
        KIND,
        OFFICE_KIND,
        province_completeness,
    )

    table = province_completeness(result, result.rules.date, result.arrivals)
    table["block"] = table[KIND].map({OFFICE_KIND: txt("offices_kind"),
                                      DIRECT_KIND: txt("direct_units")})
    table["state"] = table["state"].map(label)
    table.insert(0, "seq", range(1, len(table) + 1))
    return table


def council_lists(result, direct_offers: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Per subject (person, collective): the offices' rows and the direct schools' offers for
    a title or form the province decides, list by list, with who sent each."""
    vocabs = result.forms.vocabs
    lists = official.decided_lists(result.rules, vocabs)
    names = result.offices["office_name"].to_dict()
    out = {}
    for subject, table, name in (("person", "staff", "full_name"),
                                 ("collective", "collectives", "collective_name")):
        mine = official.in_list_order(direct_offers[subject], lists, subject,
                                      result.direct.units)
        mine = mine.assign(**{OFFICE: DIRECT})
        theirs = getattr(result.reported, table)
        rows = pd.concat([theirs, mine], ignore_index=True) if len(theirs) else mine
        rows = rows.reindex(columns=list(dict.fromkeys(
            [name, "birth_date", "position", "unit_code", "row", "unit_name", "level", "title",
             "collective_title", "commendation", OFFICE])))
        rows["sender"] = [names.get(c, txt("direct_units")) for c in rows[OFFICE]]
        proposal = []
        for row in rows.itertuples(index=False):
            for kind in ("title", "collective_title", "commendation"):
                code = getattr(row, kind, None)
                if isinstance(code, str) and code:
                    proposal.append(vocabs[official.KIND_VOCABS[kind]].label_of(code))
                    break
            else:
                proposal.append("")
        rows["proposal"] = proposal
        verdicts = result.rechecked
        if len(verdicts):  # a person's and a collective's row may share office, unit and row
            verdicts = verdicts[verdicts["subject"] == subject]
            said = {(o, u, r): label(v) for o, u, r, v in zip(
                verdicts[OFFICE], verdicts["unit_code"], verdicts["row"], verdicts["result"],
                strict=True)}
            rows["recheck"] = [said.get((o, u, r), "") for o, u, r in zip(
                rows[OFFICE], rows["unit_code"], rows["row"], strict=True)]
        else:
            rows["recheck"] = ""
        order = {vocabs[official.KIND_VOCABS[k]].label_of(c): i for i, (k, c) in
                 enumerate(lists)}
        rows = rows.assign(_order=rows["proposal"].map(order)).sort_values(
            ["_order", OFFICE], kind="stable").drop(columns="_order")
        rows.insert(0, "seq", range(1, len(rows) + 1))
        out[subject] = rows.rename(columns={name: "name"})
    return out


def allocation_table(result) -> pd.DataFrame:
    """The Sở's allocation at year end: each office's number of each commendation (its report's
    standing proposals against it), then each khối's of the direct schools; empty when the Sở
    allocated nothing."""
    vocab = result.forms.vocabs["commendations"]
    names = result.offices["office_name"].to_dict()
    offices = result.office_quotas.assign(
        scope=lambda f: [names.get(c, c) for c in f["scope"]])
    quotas = getattr(result.direct, "quotas", None)
    blocks = quotas[quotas["kind"] == "block"] if quotas is not None else offices.iloc[:0]
    frame = pd.concat([f for f in (offices, blocks) if len(f)] or [offices],
                      ignore_index=True)
    frame["what"] = [vocab.label_of(c) for c in frame["code"]]
    frame["basis"] = [result.rules.rule(r).basis for r in frame["rule_id"]]
    frame.insert(0, "seq", range(1, len(frame) + 1))
    return frame


def write_province_summary(result, direct_offers: dict[str, pd.DataFrame], phase: str,
                           path: Path) -> Path:
    """The Sở's workbook of the round (see the module's docstring)."""
    vocabs = result.forms.vocabs
    sheet = result.forms.current(official_form(phase)).sheet("units")
    counts = count_columns(sheet, vocabs)
    direct = direct_units(result.direct, sheet, vocabs, phase)
    units = province_units(result.reported.units, direct)
    year = result.school_year
    lists = council_lists(result, direct_offers)
    with ReportBook(path, Letterhead.of(result.office, result.run_date),
                    f"Tổng hợp thi đua, khen thưởng toàn tỉnh năm học {year}") as book:
        book.table_sheet(txt("sheet_by_office"), txt("title_by_office", year=year),
                         by_office(result, units, counts),
                         [Col("code", txt("office_code"), 9),
                          Col("name", txt("office_name"), 36),
                          Col("status", txt("report_status"), 14),
                          *_count_cols(sheet, counts)])
        book.table_sheet(txt("sheet_by_level"), txt("title_province_level", year=year),
                         by_level(units, counts, vocabs["levels"]),
                         [Col("level", txt("level"), 26), *_count_cols(sheet, counts)])
        for subject, name, title in (
                ("person", txt("sheet_council_persons"),
                 txt("title_sheet_council_persons", year=year)),
                ("collective", txt("sheet_council_collectives"),
                 txt("title_sheet_council_collectives", year=year))):
            book.table_sheet(name, title, lists[subject],
                             [Col("seq", txt("seq"), 5, "int"), Col("name", txt("name"), 28),
                              Col("unit_name", txt("unit"), 32),
                              Col("proposal", txt("proposal"), 30),
                              Col("sender", txt("sender"), 30),
                              Col("recheck", txt("recheck"), 14)], totals_label=None)
        book.table_sheet(txt("sheet_arrivals"), txt("title_arrivals", year=year,
                                                    due=f"{result.rules.date:%d/%m/%Y}"),
                         arrivals(result),
                         [Col("seq", txt("seq"), 5, "int"), Col("unit_code", txt("office_code"), 9),
                          Col("unit_name", txt("office_name"), 34),
                          Col("block", txt("sender_kind"), 16), Col("state", txt("status"), 13),
                          Col("arrived", "Thời điểm nhận", 14, "date"),
                          Col("file", "Tệp đã nhận", 26),
                          Col("days_late", "Số ngày muộn", 9, "int")], totals_label=None)
        allocation = allocation_table(result) if phase == "ket-qua" else pd.DataFrame()
        if len(allocation):
            book.table_sheet(
                txt("sheet_allocation"), txt("title_allocation", year=year), allocation,
                [Col("seq", txt("seq"), 5, "int"), Col("scope", txt("allocation_scope"), 34),
                 Col("what", txt("proposal"), 26), Col("limit", txt("allocated"), 9, "int"),
                 Col("proposed", txt("proposed_standing"), 10, "int"),
                 Col("beyond", txt("beyond_allocation"), 9, "int", True),
                 Col("basis", txt("basis"), 40)])
        if phase == "ket-qua" and len(getattr(result.direct, "ranking", ())):
            from pipeline.reports.results import OFFICE_FILE, write_ranking_sheet

            write_ranking_sheet(book, result.direct,
                                txt("province_scores_note", file=OFFICE_FILE))
        book.findings_sheet(txt("sheet_findings"), list(result.findings),
                            title=txt("title_province_findings", year=year))
    return path


def official_form(phase: str) -> str:
    """The report form of a phase (bao-cao-dang-ky, bao-cao-ket-qua)."""
    return f"bao-cao-{phase}"
