"""The round's reports: the Phòng workbook, the Sở workbook and one feedback workbook per school."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from pipeline.findings import Severity
from pipeline.forms.definitions import Vocabulary
from pipeline.parallel import chunks, resolved, run_jobs, worker_count
from pipeline.reports import official
from pipeline.reports.feedback import feedback_jobs, registration_feedback
from pipeline.reports.workbook import Col, Letterhead, ReportBook, txt
from pipeline.rounds.base import RoundResult
from pipeline.rules import eligibility as el
from pipeline.rules.aggregate import NOT_REGISTERED, sorted_people
from pipeline.rules.listing import numbers
from pipeline.rules.ruleset import STATUS_LABELS
from pipeline.status import FileStatus, UnitStatus, label

OFFICE_FILE = "tong-hop-phong.xlsx"
# Read back by tdkt confirm once the office has filled in the confirmation column.
MATCHES_SHEET = txt("sheet_matches")
PERSON_HEADER = txt("person_id")
CONFIRM_HEADER = txt("same_person")
PROVINCE_FILE = "tong-hop-so.xlsx"


# Columns shared by the summaries


def _count_cols(vocabs: dict[str, Vocabulary]) -> list[Col]:
    units = txt("unit")
    people = "Cá nhân đăng ký danh hiệu"
    groups = "Tập thể đăng ký"
    cols = [
        Col("expected", txt("expected"), 9, "int", True, group=units),
        Col("submitted", txt("submitted"), 8, "int", True, group=units),
        Col("valid", label(UnitStatus.VALID), 8, "int", True, group=units),
        Col("with_errors", label(UnitStatus.WITH_ERRORS), 8, "int", True, group=units),
        Col("invalid", label(UnitStatus.INVALID), 9, "int", True, group=units),
        Col("missing", label(UnitStatus.MISSING), 8, "int", True, group=units),
        Col("staff_registry", "Số CB-GV-NV", 9, "int", True, group=people),
        Col("registered", "Số đăng ký", 9, "int", True, group=people),
        Col("registration_share", "Tỉ lệ đăng ký", 9, "pct",
            total_from=("registered", "staff_registry"), group=people),
    ]
    for value in vocabs["individual_titles"].values:
        if value.code != "khong_dang_ky":
            cols.append(Col(f"title:{value.code}", value.abbr, 9, "int", True, group=people))
    cols.append(Col("non_leader_share", "Tỉ lệ không giữ chức vụ quản lý", 11, "pct",
                    total_from=("non_leader_registered", "registered"), group=people))
    for value in vocabs["collective_titles"].values:
        if value.code != "khong_dang_ky":
            cols.append(Col(f"collective:{value.code}", value.abbr, 9, "int", True, group=groups))
    return cols


def _labelled(frame: pd.DataFrame, vocabs: dict[str, Vocabulary],
              columns: dict[str, str]) -> pd.DataFrame:
    out = frame.copy()
    for column, vocab in columns.items():
        if column in out:
            labels = {v.code: v.label for v in vocabs[vocab].values}
            codes = out[column]  # a code's label; any other value as it is
            out[column] = codes.map(labels).where(codes.isin(list(labels)), codes)
    return out


def _policy_notes(result: RoundResult) -> list[str]:
    rules = result.rules
    target = rules.rule("policy.registration_target")
    leaders = rules.rule("policy.non_leader_share_target")
    quota = rules.rule("cstd_co_so.quota")
    return [
        f"Chỉ tiêu tỉ lệ CB-GV-NV đăng ký: {target.params['target']:.0%} ({target.basis}).",
        f"Chỉ tiêu tỉ lệ đăng ký của người không giữ chức vụ quản lý: "
        f"{leaders.params['target']:.0%} ({leaders.basis}).",
        f"Chiến sĩ thi đua cơ sở không quá {quota.params['share']:.0%} số Lao động tiên tiến "
        f"({quota.basis})." if quota.params.get("share") is not None else
        f"Không giới hạn tỉ lệ Chiến sĩ thi đua cơ sở trên số Lao động tiên tiến ({quota.basis}).",
        f"Quy tắc: {rules.version}; số liệu chỉ gồm các dòng không có lỗi.",
    ]


# The Phòng workbook


def _unit_frame(result: RoundResult) -> pd.DataFrame:
    units = result.units.reset_index()
    units["status"] = units["status"].map(label)
    units["level_name"] = units["level"]
    units["quota_text"] = [f"{c}/{'—' if pd.isna(q) else q}"
                           for c, q in zip(units["cstd_counted"], units["cstd_quota"],
                                                       strict=True)]
    return units


def _staff_frame(result: RoundResult) -> pd.DataFrame:
    staff = result.staff.merge(result.units[["unit_name", "level", "block"]], left_on="unit_code",
                               right_index=True, how="left")
    staff["title_code"] = staff["title"]
    staff = _labelled(staff, result.forms.vocabs, {
        "sex": "sexes", "position": "positions", "title": "individual_titles",
        "commendation": "commendations"})
    staff = sorted_people(staff.drop(columns="seq", errors="ignore"),
                          ["level", "block", "unit_code"])
    if "note" not in staff:  # older layouts have no note column
        staff["note"] = None
    return _numbered(staff)


def _numbered(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a fresh STT column 1…n."""
    out = frame.drop(columns="seq", errors="ignore").reset_index(drop=True)
    out.insert(0, "seq", range(1, len(out) + 1))
    return out


def _collective_frame(result: RoundResult) -> pd.DataFrame:
    groups = result.collectives.merge(result.units[["unit_name", "level", "block"]],
                                      left_on="unit_code", right_index=True, how="left")
    groups = _labelled(groups, result.forms.vocabs, {
        "collective_kind": "collective_kinds", "collective_title": "collective_titles",
        "commendation": "commendations"})
    groups = groups.drop(columns="seq", errors="ignore").sort_values(
        ["level", "block", "unit_code", "row"]).reset_index(drop=True)
    groups.insert(0, "seq", range(1, len(groups) + 1))
    return groups


def _missing_frame(result: RoundResult) -> pd.DataFrame:
    units = result.units[result.units["status"].isin([UnitStatus.MISSING, UnitStatus.INVALID])]
    reasons = []
    for code in units.index:
        sub = result.chosen.get(code)
        errors = [f for f in (sub.findings if sub else []) if f.severity is Severity.ERROR]
        reasons.append(errors[0].message if errors else "Chưa nhận được tệp đăng ký.")
    frame = units.reset_index()[["unit_code", "unit_name", "level", "block", "status", "email"]]
    frame["status"] = frame["status"].map(label)
    frame["reason"] = reasons
    frame.insert(0, "seq", range(1, len(frame) + 1))
    return frame


def _files_frame(result: RoundResult) -> pd.DataFrame:
    rows = []
    for sub in sorted(result.submissions, key=lambda s: s.file):
        errors = sum(f.severity is Severity.ERROR for f in sub.findings)
        status = label(sub.status)
        if sub.status is FileStatus.SUPERSEDED:  # "… (đã có tệp mới hơn: <the newer file>)"
            status = f"{status[:-1]}: {sub.superseded_by})"
        rows.append({"file": sub.file, "unit_code": sub.unit_code or "",
                     "form": f"{sub.form.title} ({sub.form.version})" if sub.form else "",
                     "status": status, "errors": errors,
                     "warnings": len(sub.findings) - errors, "sha256": sub.sha256 or ""})
    for entry in result.ignored:  # lock, system and hidden files: listed, not read
        rows.append({"file": entry.file, "unit_code": "", "form": "",
                     "status": f"{label(FileStatus.IGNORED)} ({entry.reason})", "errors": 0,
                     "warnings": 0, "sha256": ""})
    rows.sort(key=lambda row: row["file"])
    frame = pd.DataFrame(rows, columns=["file", "unit_code", "form", "status", "errors",
                                        "warnings", "sha256"])
    frame.insert(0, "seq", range(1, len(frame) + 1))
    return frame


def _rules_frame(result: RoundResult) -> pd.DataFrame:
    return pd.DataFrame([{"id": r.id, "name": r.name, "description": r.description,
                          "citation": r.citation,
                          "status": STATUS_LABELS[r.status], "from": r.effective_from,
                          "params": numbers(r), "layer": r.layer_label,
                          "changes": "; ".join(r.overrides)}
                         for r in sorted(result.rules.rules.values(), key=lambda r: r.id)])


def matches_sheet(book: ReportBook, result: RoundResult) -> None:
    """People matched to earlier years by a near name or in another school, or not matched
    because several people fit: the office checks them (the history store keeps the ids)."""
    matches = resolved(result.matches)  # computed while the workbook is written: waits
    matches = matches if matches is not None else pd.DataFrame(
        columns=["unit_code", "full_name", "birth_date", "person_id", "label", "candidates"])
    frame = _numbered(matches.merge(result.units[["unit_name"]], left_on="unit_code",
                                    right_index=True, how="left")).assign(same_as=None)
    book.table_sheet(
        MATCHES_SHEET, "NGƯỜI CẦN PHÒNG XÁC NHẬN KHI ĐỐI CHIẾU VỚI CÁC NĂM TRƯỚC",
        frame,
        [Col("seq", txt("seq"), 5, "int"), Col("full_name", txt("full_name"), 24),
         Col("birth_date", txt("birth_date"), 11, "date"), Col("unit_name", txt("unit"), 28),
         Col("person_id", PERSON_HEADER, 10, "int"), Col("label", "Cách đối chiếu", 44),
         Col("candidates", "Mã người có thể trùng", 16),
         Col("same_as", CONFIRM_HEADER, 14, "int")],
        totals_label=None, signature=False,
        notes=["Kiểm tra bằng lệnh tdkt history “Họ tên, ngày sinh”; nếu là cùng một người, ghi "
               f"mã người đó vào cột “{CONFIRM_HEADER}” rồi chạy tdkt confirm <tệp này>."])


def files_and_rules_sheets(book: ReportBook, result: RoundResult) -> None:
    """The closing sheets of every Phòng workbook: matches to confirm, files, rules applied."""
    matches_sheet(book, result)
    book.table_sheet(
        "Tệp đã nhận", "CÁC TỆP ĐÃ NHẬN TRONG HỘP THƯ", _files_frame(result),
        [Col("seq", txt("seq"), 5, "int"), Col("file", "Tệp", 34),
         Col("unit_code", txt("unit_code"), 9), Col("form", "Biểu mẫu", 30),
         Col("status", txt("status"), 26), Col("errors", "Số lỗi", 7, "int", True),
         Col("warnings", "Số cảnh báo", 8, "int", True),
         Col("sha256", "Mã băm SHA-256", 30, printed=False)], signature=False)
    book.table_sheet(
        "Căn cứ", f"CÁC QUY TẮC ÁP DỤNG NĂM HỌC {result.school_year} (CÓ HIỆU LỰC NGÀY "
                  f"{result.rules.date:%d/%m/%Y}; {result.rules.province.upper()})",
        _rules_frame(result),
        [Col("name", txt("rule_name"), 24), Col("description", txt("content"), 50),
         Col("citation", txt("basis"), 40), Col("status", txt("verification"), 20),
         Col("from", "Hiệu lực từ", 11, "date"), Col("layer", "Cấp quy định", 14),
         Col("params", "Tham số", 30, printed=False),
         Col("changes", "Tầng dưới thay đổi", 40, printed=False),
         Col("id", txt("rule_id"), 26, printed=False)],
        totals_label=None, signature=False, notes=result.rules.removed, max_lines=8,
        uniform=False)


def write_office_workbook(result: RoundResult, path: Path) -> Path:
    """The Phòng's workbook: summaries, unit table, lists, problems, files, rules."""
    vocabs = result.forms.vocabs
    # Narrow count columns (their headers wrap), so that the summaries print at a readable size.
    counts = [replace(c, width=min(c.width, 8)) for c in _count_cols(vocabs)]
    year = result.school_year
    letterhead = Letterhead.of(result.office, result.run_date)
    subtitle = txt("as_of", year=year, date=f"{result.run_date:%d/%m/%Y}")
    notes = _policy_notes(result)
    with ReportBook(path, letterhead, f"Tổng hợp đăng ký thi đua năm học {year}",
                    big=True) as book:
        book.table_sheet(txt("sheet_by_level"),
                         f"TỔNG HỢP ĐĂNG KÝ THI ĐUA THEO CẤP HỌC NĂM HỌC {year}",
                         result.by_level, [Col("level", txt("level"), 14), *counts],
                         subtitle=subtitle, notes=notes)
        book.table_sheet(txt("sheet_by_block"),
                         f"TỔNG HỢP ĐĂNG KÝ THI ĐUA THEO KHỐI THI ĐUA NĂM HỌC {year}",
                         result.by_block, [Col("block", txt("block"), 20),
                                           Col("level", txt("level"), 12), *counts],
                         subtitle=subtitle, notes=notes)
        units = _unit_frame(result)
        book.table_sheet(
            txt("sheet_by_unit"), f"TỔNG HỢP ĐĂNG KÝ THI ĐUA THEO ĐƠN VỊ NĂM HỌC {year}", units,
            [Col("unit_code", txt("unit_code"), 9), Col("unit_name", txt("unit_name"), 28),
             Col("level", txt("level"), 10), Col("block", txt("block"), 13),
             Col("status", txt("status"), 12),
             *[c for c in counts if c.group != txt("unit")],
             Col("quota_text", "CSTĐCS đăng ký/tối đa", 11)],
            subtitle=subtitle, notes=notes,
            highlight=units["quota_exceeded"] | units["status"].isin([label(UnitStatus.INVALID)]))
        book.table_sheet(
            "Chưa nộp – không hợp lệ",
            f"ĐƠN VỊ CHƯA NỘP HOẶC BẢN ĐĂNG KÝ KHÔNG HỢP LỆ NĂM HỌC {year}",
            _missing_frame(result),
            [Col("seq", txt("seq"), 5, "int"), Col("unit_code", txt("unit_code"), 9),
             Col("unit_name", txt("unit_name"), 30), Col("level", txt("level"), 10),
             Col("block", txt("block"), 16), Col("status", txt("status"), 12),
             Col("reason", txt("reason"), 50), Col("email", "Email", 24)], totals_label=None)
        staff = _staff_frame(result)
        # One line per person on paper; the other columns stay on screen after the printed
        # ones, and the initiatives are printed in full on their own sheet.
        person_cols = [Col("seq", txt("seq"), 5, "int"), Col("full_name", txt("full_name"), 24),
                       Col("birth_date", txt("birth_date"), 11, "date"),
                       Col("position", txt("position"), 20), Col("unit_name", txt("unit"), 30)]
        screen_cols = [Col("sex", "Giới tính", 9, printed=False),
                       Col("staff_group", "Nhóm", 7, printed=False),
                       Col("level", txt("level"), 9, printed=False),
                       Col("block", txt("block"), 16, printed=False)]
        registered = _numbered(staff[staff["title_code"] != NOT_REGISTERED])
        book.table_sheet(
            "Cá nhân đăng ký", f"DANH SÁCH CÁ NHÂN ĐĂNG KÝ THI ĐUA NĂM HỌC {year}", registered,
            [*person_cols, Col("title", txt("registered_title"), 22),
             Col("commendation", txt("commendation"), 26), *screen_cols,
             Col("initiative", txt("planned_initiative"), 50, printed=False)],
            totals_label=None, max_lines=1)
        # A boolean mask even when empty (an empty object Series would select columns).
        with_initiative = registered[registered["initiative"].map(
            lambda v: isinstance(v, str) and bool(v.strip())).astype(bool)]
        book.table_sheet(
            "Sáng kiến đăng ký", f"DANH SÁCH ĐĂNG KÝ SÁNG KIẾN, ĐỀ TÀI NĂM HỌC {year}",
            _numbered(with_initiative),
            [Col("seq", txt("seq"), 5, "int"), Col("full_name", txt("full_name"), 24),
             Col("unit_name", txt("unit"), 30), Col("title", txt("registered_title"), 22),
             Col("initiative", txt("planned_initiative"), 60)],
            totals_label=None, max_lines=3)
        book.table_sheet(
            "Cá nhân chưa đăng ký",
            f"DANH SÁCH CB-GV-NV CHƯA ĐĂNG KÝ DANH HIỆU THI ĐUA NĂM HỌC {year}",
            _numbered(staff[staff["title_code"] == NOT_REGISTERED]),
            [*person_cols, Col("note", "Ghi chú", 30), *screen_cols], totals_label=None,
            max_lines=1)
        book.table_sheet(
            "Tập thể đăng ký", f"DANH SÁCH TẬP THỂ ĐĂNG KÝ THI ĐUA NĂM HỌC {year}",
            _collective_frame(result),
            [Col("seq", txt("seq"), 5, "int"), Col("collective_name", txt("collective_name"), 26),
             Col("members", "Số thành viên", 9, "int"), Col("unit_name", txt("unit"), 30),
             Col("collective_title", txt("registered_title"), 26),
             Col("commendation", txt("commendation"), 30),
             Col("collective_kind", "Loại tập thể", 14, printed=False),
             Col("level", txt("level"), 9, printed=False),
             Col("block", txt("block"), 16, printed=False)], totals_label=None, max_lines=1)
        book.findings_sheet(txt("sheet_findings"), result.findings,
                            title=f"LỖI VÀ CẢNH BÁO TRONG CÁC TỆP ĐĂNG KÝ NĂM HỌC {year}")
        files_and_rules_sheets(book, result)
    return path


# The Sở workbook


PROVINCE_FORM = "bao-cao-dang-ky"


def registered_offers(result: RoundResult) -> dict[str, pd.DataFrame]:
    """Every title and form registered, one row per person or collective and proposal
    (columns kind, proposal), with the registration's own columns."""
    return {"person": el.proposals(result.staff, "person"),
            "collective": el.proposals(result.collectives, "collective")}


def write_province_workbook(result: RoundResult, path: Path) -> Path:
    """The Sở's workbook, an official report and a form (bao-cao-dang-ky): per title or form the
    province decides, how many registered it; then every school, and the persons and
    collectives who registered such a title or form."""
    vocabs = result.forms.vocabs
    form = result.forms.current(PROVINCE_FORM)
    year = result.school_year
    reported = official.commune_units(result.units, vocabs)
    offers = official.commune_offers(registered_offers(result), reported)
    office, province = result.office, result.province
    decider = official.province_decider(result.rules, province)
    where = {"office": office.name, "locality": official.locality(office)}
    doc = official.Document(
        office=office, province=province, date=result.run_date,
        kind=official.t("registration_kind"), code=official.t("registration_code"),
        subject=official.t("registration_subject", year=year),
        body=(official.t("registration_body", year=year, **where,
                         submitted=int(reported["submitted"].sum()),
                         expected=int(reported["expected"].sum())),),
        closing=(official.t("registration_closing", decider=decider,
                            province=official.addressee(province), **where),))
    return official.write_report(path, result, form, doc, offers, reported,
                                 f"Báo cáo đăng ký thi đua năm học {year}")


def write_all(jobs: list[Callable[[], Path]], feedback: list[Callable[[], Path]]) -> list[Path]:
    """Run the summary jobs and the feedback jobs, in worker processes for a large round;
    returns the paths written, summaries first."""
    workers = worker_count(len(feedback))
    batches = chunks(feedback, workers * 4) if feedback else []
    tasks: list[Callable[[], list[Path]]] = [functools.partial(_one, job) for job in jobs]
    tasks += [functools.partial(_each, batch) for batch in batches]
    return [path for paths in run_jobs(tasks, workers) for path in paths]


def _one(job: Callable[[], Path]) -> list[Path]:
    return [job()]


def _each(batch: Sequence[Callable[[], Path]]) -> list[Path]:
    return [job() for job in batch]


def write_reports(result: RoundResult, root: Path, *, with_report: bool = True) -> list[Path]:
    """Every workbook of the registration round under `root`; returns their paths. Without
    `with_report`, no report to the Sở (the Sở's own round writes its direct schools')."""
    summaries = [functools.partial(write_office_workbook, result, root / OFFICE_FILE),
                 *([functools.partial(write_province_workbook, result, root / PROVINCE_FILE)]
                   if with_report else [])]
    return write_all(summaries, feedback_jobs(result, root, registration_feedback,
                                              txt("feedback_registration")))
