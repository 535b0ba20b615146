"""Dòng lệnh tdkt: the thin client of the library. Help and messages are Vietnamese."""

from __future__ import annotations

import atexit
import contextlib
import gc
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipeline import console, settings
from pipeline import texts as wording
from pipeline.config import ConfigError, load_config, year_start
from pipeline.findings import DefinitionError, Severity, catalogue
from pipeline.status import FileStatus
from pipeline.store.database import Store, StoreError

if TYPE_CHECKING:
    from pipeline.findings import Finding
    from pipeline.forms.definitions import FormSet
    from pipeline.ingest.submission import Registry, Submission
    from pipeline.rounds.base import Round, RoundResult

# The consolidation's libraries (pandas, pandera, the workbook writers) are imported by the
# commands that use them: help, a wrong invocation and light commands answer at once.

console.vietnamese_click()  # before the commands below are built (their path types)

DEFAULT_CONFIG = Path("tdkt.toml")
DEFAULT_OUT = Path("output")

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _Vietnamese:
    """Help screens in Vietnamese: usage line, option and command sections, help option."""

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.help = "Hiện hướng dẫn này rồi thoát."
        return option

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        pieces = self.collect_usage_pieces(ctx)  # type: ignore[attr-defined]
        text = " ".join(pieces).replace("[OPTIONS]", "[TUỲ CHỌN]").replace(
            "COMMAND [ARGS]...", "LỆNH [ĐỐI SỐ]…")
        formatter.write_usage(ctx.command_path, text, prefix="Cách dùng: ")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [r for p in self.get_params(ctx)  # type: ignore[attr-defined]
                if not isinstance(p, click.Argument) and (r := p.get_help_record(ctx))]
        if rows:
            with formatter.section("Tuỳ chọn"):
                formatter.write_dl(rows)
        if isinstance(self, click.Group):
            commands = [(n, self.get_command(ctx, n)) for n in self.list_commands(ctx)]
            rows = [(n, c.get_short_help_str(60)) for n, c in commands if c and not c.hidden]
            if rows:
                with formatter.section("Lệnh"):
                    formatter.write_dl(rows)


class _Group(_Vietnamese, click.Group):
    def main(self, *args, **kwargs):  # type: ignore[override]
        """Run the command; a wrong invocation is explained in Vietnamese, exit code 2."""
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.Abort:  # Ctrl-C while Click was in charge
            console.stopped()
        except click.UsageError as exc:
            path = exc.ctx.command_path if exc.ctx is not None else "tdkt"
            _fail(_say("usage_error", message=_usage_message(exc), command=path))
        except OSError as exc:
            console.system_error(exc)
        sys.exit(code or 0)


def _usage_message(exc: click.UsageError) -> str:
    """A wrong invocation in Vietnamese: the missing or unknown name, the value expected."""
    if isinstance(exc, click.MissingParameter) and exc.param is not None:
        return _say("usage_missing", name=exc.param.human_readable_name)
    if isinstance(exc, click.NoSuchOption):
        return _say("usage_no_option", name=exc.option_name) + _close_to(exc.possibilities)
    command = getattr(exc, "command_name", None)  # click.exceptions.NoSuchCommand
    if command is not None:
        known = main.list_commands(exc.ctx) if exc.ctx is not None else []
        return _say("usage_no_command", name=command, commands=", ".join(known)) + _close_to(
            getattr(exc, "possibilities", None))
    if isinstance(exc, click.BadParameter) and exc.param is not None:
        name = exc.param.human_readable_name if isinstance(exc.param, click.Argument) \
            else exc.param.opts[0]
        value = _given(exc)
        if isinstance(exc.param.type, click.Choice):
            return _say("usage_choice", name=name, value=value,
                        choices=", ".join(map(str, exc.param.type.choices)))
        return _say("usage_bad_value", name=name, message=exc.message)
    return exc.format_message()


def _close_to(possibilities: list[str] | None) -> str:
    return _say("usage_close", names=", ".join(possibilities)) if possibilities else ""


def _given(exc: click.BadParameter) -> str:
    """The value typed, quoted “…” in Click's (Vietnamese) message; "" when it is not."""
    message = exc.message or ""
    start, end = message.find("“"), message.find("”")
    return message[start + 1:end] if 0 <= start < end else ""


class _Command(_Vietnamese, click.Command):
    pass


# Forms a Sở writes templates of (`tdkt templates --form`, with a Sở's configuration).
_PROVINCE_FORMS = ("danh-muc-so", "bao-cao-dang-ky", "bao-cao-ket-qua")


class _RoundChoice(click.Choice):
    """The registered rounds' names, looked up when a value is checked (not when the command
    line is built, which would load every round and its libraries for `--help`)."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        from pipeline.rounds.province import PREFIX  # the Sở's: chosen by its configuration

        return tuple(sorted(n for n in _rounds() if not n.startswith(PREFIX)))

    @choices.setter
    def choices(self, value: object) -> None:
        pass


def load_registry(path: Path, forms: FormSet) -> tuple[Registry, list[Finding]]:
    """pipeline.ingest.registry.load_registry, imported when a command first needs it."""
    from pipeline.ingest.registry import load_registry as load

    return load(path, forms)


def _rounds() -> dict:
    from pipeline.rounds.base import rounds

    return rounds()


def _locked() -> type[Exception]:
    from pipeline.engine import LockedError

    return LockedError


def _user_errors() -> tuple[type[Exception], ...]:
    """What a wrong registry, configuration, store, inbox or form definition raises: each
    says in Vietnamese what is wrong, exit 2."""
    from pipeline.engine import InboxError, ShrinkingRoundError
    from pipeline.ingest.registry import RegistryError
    from pipeline.rounds.results import AllocationError

    return (RegistryError, DefinitionError, ConfigError, AllocationError, StoreError,
            InboxError, ShrinkingRoundError)


def _version() -> str:
    try:
        return metadata.version("tdkt")
    except metadata.PackageNotFoundError:  # run from a source tree
        return "0+source"


def _say(key: str, **values: object) -> str:
    """A message of the command line (texts.yaml, section "cli"), its placeholders filled."""
    return wording.render("cli", key, **values)


def _fail(message: str, code: int = settings.EXIT_USAGE) -> None:
    click.secho(f"Lỗi: {message}", fg="red", err=True)
    sys.exit(code)


def _config(path: Path, year: str | None):
    try:
        return load_config(path, year)
    except ConfigError as exc:
        _fail(str(exc))


def _progress(subs: Iterator[Submission], total: int) -> Iterator[Submission]:
    if total < settings.PROGRESS_MIN_FILES or not sys.stderr.isatty():
        yield from subs
        return
    with click.progressbar(subs, length=total, label="Đang đọc các tệp", file=sys.stderr,
                           item_show_func=lambda s: s.file if s else "") as bar:
        yield from bar


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(_version(), message="tdkt %(version)s", help="Hiện phiên bản rồi thoát.")
def main() -> None:
    """tdkt — tổng hợp thi đua, khen thưởng của các trường.

    Phòng đặt các tệp đăng ký của trường vào một thư mục (hộp thư) rồi chạy
    `tdkt consolidate`; chương trình đọc, kiểm tra, tổng hợp theo cấp học và khối thi đua,
    và ghi bảng tổng hợp cho Phòng, cho Sở và tệp phản hồi cho từng trường.
    """
    # At exit Python's last garbage collection would walk every object still alive (a
    # province's rounds: 0.12 s of a 3,000-file run, after the work is done): the objects
    # are left to be freed one by one as the interpreter ends, which it does in any case.
    atexit.register(gc.freeze)


_config_option = click.option(
    "--config", "config_path", type=click.Path(path_type=Path), default=DEFAULT_CONFIG,
    show_default=True, metavar="TỆP",
    help="Tệp cấu hình của cơ quan (tên cơ quan, năm học, danh mục đơn vị).")
_out_option = click.option(
    "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Thư mục kết quả, chứa cả kho lịch sử (mặc định: mục output trong cấu hình, nếu không "
         "có thì output/).")
_year_option = click.option("--year", "year", metavar="NĂM-HỌC",
                            help="Năm học, ví dụ 2025-2026 (mặc định: theo tệp cấu hình).")


@main.command(cls=_Command)
@click.argument("inbox", metavar="HỘP-THƯ", type=click.Path(path_type=Path))
@_out_option
@_config_option
@_year_option
@click.option("--strict", is_flag=True,
              help="Trả mã thoát 1 khi có bất kỳ lỗi nào trong tệp của trường.")
@click.option("--round", "round_", type=_RoundChoice(), metavar="ĐỢT",
              default=settings.DEFAULT_ROUND, show_default=True,
              help="Đợt: dang-ky (đăng ký đầu năm), ket-qua (kết quả bình xét cuối năm), …")
@click.option("--registrations", type=click.Path(path_type=Path), default=None,
              metavar="THƯ_MỤC",
              help="Hộp thư đăng ký đầu năm để đối chiếu (đợt ket-qua; mặc định theo cấu hình).")
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Kho lịch sử (mặc định: mục store trong cấu hình, nếu không có thì "
                   "OUT/tdkt-lich-su.sqlite).")
@click.option("--force", is_flag=True,
              help="Vẫn ghi khi hộp thư có ít hơn một nửa số đơn vị lần tổng hợp trước của "
                   "đợt này (hộp thư trống hoặc gõ nhầm đường dẫn thì lệnh dừng, không ghi gì).")
def consolidate_command(inbox: Path, out: Path, config_path: Path, year: str | None,
                        strict: bool, round_: str, registrations: Path | None,
                        store: Path | None, force: bool) -> None:
    """Tổng hợp bản đăng ký thi đua của các trường trong HỘP-THƯ.

    Tệp của trường không bao giờ bị sửa, di chuyển hay chạy; tệp lỗi được báo và giữ nguyên.
    Kết quả ghi vào OUT/<năm học>/dang-ky/; kết quả cũ của đợt được giữ trong
    OUT/<năm học>/sao-luu/<đợt>/ (3 lần gần nhất).

    Ví dụ: tdkt consolidate input_samples/hop-thu --out output --config input_samples/tdkt.toml
    """
    if not inbox.is_dir():
        _fail(_say("no_inbox", path=inbox))
    config = _config(config_path, year)
    out = _out(out, config)
    if registrations is not None and not registrations.is_dir():
        _fail(_say("no_registrations", path=registrations))
    missing = None  # the configuration's registration inbox, when it is not there
    if round_ == "ket-qua" and registrations is None:
        registrations = config.inboxes.get("dang-ky")
        if registrations is not None and not registrations.is_dir():
            missing, registrations = registrations, None
    from pipeline.engine import consolidate
    from pipeline.rounds.province import round_for

    round_ = round_for(config, round_)  # a Sở: its round of the phase
    round_chosen = _rounds()[round_]
    options = {"registration_inbox": registrations} if registrations is not None else {}
    try:
        result = consolidate(inbox, out, config, progress=_progress, round=round_chosen,
                             store=store or config.store, force=force, **options)
    except _locked():
        _fail(f"Một lần chạy khác đang ghi vào “{out}”; hãy chờ lần đó xong rồi chạy lại.",
              settings.EXIT_LOCKED)
    except _user_errors() as exc:
        _fail(str(exc))
    except OSError as exc:  # read-only folder, a workbook held open in Excel, disk full
        console.system_error(exc)
    decided = getattr(result, "direct", result)  # a Sở's round: its direct schools' round
    if missing is not None and not getattr(decided, "registration_source", ""):
        click.echo(_say("registrations_missing", path=missing), err=True)
    _summary(result, round_chosen)
    if strict and result.errors:
        sys.exit(settings.EXIT_STRICT_ERRORS)


consolidate_command.name = "consolidate"


def _summary(result: RoundResult, round_: Round) -> None:
    units = result.units
    click.echo(_say("summary_year", year=result.school_year, office=result.office.name,
                    parent=result.office.parent))
    click.echo(_say("summary_files", **file_counts(result.submissions)))
    click.echo(_say("summary_units", expected=int(units["expected"].sum()),
                    submitted=int(units["submitted"].sum()), missing=int(units["missing"].sum())))
    click.echo(_say("findings_count", errors=len(result.errors),
                    warnings=len(result.findings) - len(result.errors)))
    for line in round_.summary(result):
        click.echo(line)
    if result.ignored:
        click.echo(_say("summary_ignored", count=len(result.ignored),
                        files=", ".join(i.file for i in result.ignored)))
    if result.out_dir is not None:
        click.echo(_say("summary_out", path=result.out_dir))


def file_counts(subs: tuple[Submission, ...] | list[Submission]) -> dict[str, int]:
    """The files read, split so the parts add up: counted (clean, or with rows or sheets left
    out for errors), rejected as a whole, superseded by a newer file of the same unit."""
    status = [s.status for s in subs]
    partial = sum(s.counted and any(f.severity is Severity.ERROR for f in s.findings)
                  for s in subs)
    counted = status.count(FileStatus.ACCEPTED)
    return {"files": len(subs), "counted": counted, "clean": counted - partial,
            "partial": partial, "rejected": status.count(FileStatus.REJECTED),
            "superseded": status.count(FileStatus.SUPERSEDED)}


@main.command(cls=_Command)
@_out_option
@_config_option
@_year_option
@click.option("--form", "form_id", type=click.Choice(["dang-ky", "ket-qua", "lich-su",
                                                     *_PROVINCE_FORMS]),
              default="dang-ky", show_default=True,
              help="Biểu mẫu: dang-ky (bản đăng ký), ket-qua (kết quả bình xét, có sẵn tiêu chí "
                   "chấm điểm của khối và danh sách đã đăng ký đầu năm) hoặc lich-su (danh sách "
                   "khen thưởng các năm trước, một tệp cho Phòng). Với cấu hình của Sở: "
                   "danh-muc-so (danh mục của Sở), bao-cao-dang-ky, bao-cao-ket-qua (báo cáo "
                   "của từng Phòng Văn hóa – Xã hội chưa dùng tdkt); dang-ky, ket-qua cho các "
                   "đơn vị trực thuộc Sở.")
@click.option("--registrations", type=click.Path(path_type=Path), default=None,
              help="Hộp thư đăng ký đầu năm để điền sẵn biểu mẫu ket-qua (mặc định: đợt đăng ký "
                   "đã tổng hợp trong kho lịch sử, nếu không có thì hộp thư đăng ký của cấu "
                   "hình).")
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Kho lịch sử (mặc định: mục store trong cấu hình, nếu không có thì "
                   "OUT/tdkt-lich-su.sqlite).")
@click.option("--unit", "unit_codes", multiple=True, metavar="MÃ",
              help="Chỉ ghi biểu mẫu của đơn vị có mã này (ghi nhiều lần cho nhiều đơn vị).")
def templates(out: Path, config_path: Path, year: str | None, form_id: str,
              registrations: Path | None, store: Path | None,
              unit_codes: tuple[str, ...]) -> None:
    """Ghi cho mỗi đơn vị trong danh mục một biểu mẫu có sẵn mã và tên đơn vị.

    Biểu mẫu kết quả (ket-qua) có sẵn danh sách cá nhân, tập thể mà đơn vị đã đăng ký đầu năm
    học (họ tên, ngày sinh, chức vụ, danh hiệu đăng ký), các ô vẫn sửa được.
    Các tệp ghi vào OUT/<năm học>/mau-<biểu mẫu>/; gửi mỗi trường tệp của mình.

    Ví dụ: tdkt templates --form ket-qua --out output --config input_samples/tdkt.toml
    """
    from pipeline.forms.definitions import load_forms
    from pipeline.forms.template import UnitInfo, write_templates
    from pipeline.rules.ruleset import block_criteria, load_criteria

    config = _config(config_path, year)
    out = _out(out, config)
    if registrations is not None and not registrations.is_dir():
        _fail(_say("no_registrations", path=registrations))
    if config.is_province or form_id in _PROVINCE_FORMS:
        _province_templates(config, out, form_id, unit_codes, store, registrations)
        return
    try:
        forms = load_forms()
        forms.current(form_id)
        registry, _ = load_registry(config.registry, forms)
        criteria = load_criteria(config.school_year) if form_id == "ket-qua" else None
    except _user_errors() as exc:
        _fail(str(exc))
    codes = [str(code) for code in registry.units.index]
    unknown = sorted(set(unit_codes) - set(codes))
    if unknown:
        _fail(_say("unknown_units", codes=", ".join(unknown), path=config.registry))
    codes = [code for code in codes if not unit_codes or code in unit_codes]
    carried = _carried(config, forms, out, store, registrations, codes) \
        if form_id == "ket-qua" else {}
    units = [UnitInfo(code=code, name=str(row["unit_name"]), level=str(row["level"]),
                      headcount=int(row[["managers", "teachers", "support_staff"]].sum()),
                      rows={"criteria": block_criteria(criteria, str(row["block"]))}
                      if criteria else {}, carried=carried.get(code, {}))
             for code, row in registry.units.loc[codes].iterrows()]
    if form_id == "lich-su":  # one list for the office, not one per unit
        office = config.office_for()
        units = [UnitInfo(code="phong", name=office.name, level="", headcount=300)]
    target = out / config.school_year / f"mau-{form_id}"
    paths = write_templates(forms, form_id, units, target, config.school_year,
                            config.office_for())
    click.echo(f"Đã ghi {len(paths)} biểu mẫu vào {target}")


def _province_templates(config, out: Path, form_id: str, unit_codes: tuple[str, ...],
                        store: Path | None = None, registrations: Path | None = None) -> None:
    """A Sở's templates: its registry (one workbook), each office's report to fill, or the
    school forms for its direct units (the results forms prefilled with their registrations,
    as a Phòng's are)."""
    from pipeline.engine import rules_for
    from pipeline.forms.definitions import load_forms
    from pipeline.forms.template import (
        UnitInfo,
        template_filename,
        write_office_report_template,
        write_templates,
    )
    from pipeline.ingest.province_registry import as_registry, load_province_registry
    from pipeline.reports.official import KIND_VOCABS, decided_lists
    from pipeline.rounds.province import REPORT_FORMS
    from pipeline.rules.ruleset import block_criteria, load_criteria

    if not config.is_province:
        _fail(_say("province_form_only", form=form_id, path=config.path))
    office = config.office_for()
    target = out / config.school_year / f"mau-{form_id}"
    forms = load_forms()
    if form_id == "danh-muc-so":
        paths = write_templates(forms, form_id, [UnitInfo(code="so", name=office.name,
                                                          level="", headcount=200)],
                                target, config.school_year, office)
        click.echo(f"Đã ghi {len(paths)} biểu mẫu vào {target}")
        return
    province, findings = load_province_registry(config.registry, forms, config.limits)
    if not province.usable:
        _fail("; ".join(f.message for f in findings))
    wanted = set(unit_codes)
    if form_id in REPORT_FORMS.values():
        phase = next(p for p, f in REPORT_FORMS.items() if f == form_id)
        try:
            rules = rules_for(config, phase)
        except _user_errors() as exc:
            _fail(str(exc))
        labels = [forms.vocabs[KIND_VOCABS[kind]].label_of(code)
                  for kind, code in decided_lists(rules, forms.vocabs)]
        form = forms.current(form_id)
        paths = []
        for code, row in province.offices.iterrows():
            if wanted and code not in wanted:
                continue
            info = UnitInfo(code=str(code), name=str(row["office_name"]), level="", headcount=0)
            paths.append(write_office_report_template(
                form, str(code), str(row["office_name"]), config.school_year,
                target / template_filename(form, info), vocabs=forms.vocabs, province=office,
                parent=f"UBND {row['commune']}" if row["commune"] else "", lists=labels,
                units=40))
        click.echo(f"Đã ghi {len(paths)} biểu mẫu vào {target}")
        return
    units = as_registry(province).units
    known = set(units.index) | set(province.offices.index)
    if wanted - known:
        _fail(_say("unknown_units", codes=", ".join(sorted(wanted - known)),
                   path=config.registry))
    units = units[[not wanted or c in wanted for c in units.index]]
    criteria = load_criteria(config.school_year) if form_id == "ket-qua" else None
    carried = _carried(config, forms, out, store, registrations,
                       [str(c) for c in units.index]) if form_id == "ket-qua" else {}
    infos = [UnitInfo(code=str(code), name=str(row["unit_name"]), level=str(row["level"]),
                      headcount=int(row[["managers", "teachers", "support_staff"]].sum()),
                      rows={"criteria": block_criteria(criteria, str(row["block"]))}
                      if criteria else {}, carried=carried.get(str(code), {}))
             for code, row in units.iterrows()]
    paths = write_templates(forms, form_id, infos, target, config.school_year, office)
    click.echo(f"Đã ghi {len(paths)} biểu mẫu vào {target}")


def _carried(config, forms, out: Path, store: Path | None, registrations: Path | None,
             codes: list[str]) -> dict[str, dict]:
    """The rows each unit's results template starts with, from its registration of the same
    school year; says where they came from, or why the templates stay empty."""
    from pipeline.forms.prefill import carried_by_unit, find_registrations
    from pipeline.rounds.province import round_for

    store_path = store or config.store or out / config.store_name
    try:
        found = find_registrations(config, forms, store_path, registrations,
                                   round_for(config, "dang-ky"))
    except _user_errors() as exc:
        _fail(str(exc))
    if found is None:
        click.echo(_say("prefill_none", store=store_path, year=config.school_year))
        return {}
    registered = [code for code in codes if code in found.units]
    counts = {"year": found.school_year, "path": found.path, "units": len(registered),
              "people": found.people(registered)}
    if found.source == "store":
        click.echo(_say("prefill_store", **counts))
    else:
        click.echo(_say("prefill_inbox", **counts))
    missing = [code for code in codes if code not in found.units]
    if missing:
        click.echo(_say("prefill_missing", count=len(missing), units=", ".join(missing)))
    return carried_by_unit(forms, "ket-qua", found)


@main.command(cls=_Command)
@click.argument("files", metavar="TỆP…", nargs=-1, required=True,
                type=click.Path(path_type=Path))
@_config_option
@_year_option
def check(files: tuple[Path, ...], config_path: Path, year: str | None) -> None:
    """Kiểm tra một hoặc nhiều tệp và in các lỗi, cảnh báo của từng tệp (không ghi gì).

    TỆP là bất kỳ biểu mẫu nào: bản đăng ký, bản kết quả bình xét của trường, danh sách khen
    thưởng các năm trước, danh mục đơn vị hay bảng phân bổ hạn mức; biểu mẫu được nhận ra qua
    mã ẩn trong tệp, nếu không có thì qua các tiêu đề cột. Mã thoát: 0 — không có lỗi (có thể
    có cảnh báo); 1 — có tệp có lỗi; 2 — gọi sai lệnh, không có tệp hoặc cấu hình sai.

    Ví dụ: tdkt check hop-thu/dang-ky_01001.xlsx --config input_samples/tdkt.toml
    """
    from pipeline.forms.definitions import load_forms
    from pipeline.ingest.normalize import Context
    from pipeline.rounds.base import round_named
    from pipeline.rounds.province import REPORT_FORMS, round_for

    for file in files:
        if not file.is_file():
            _fail(_say("no_file", path=file))
    config = _config(config_path, year)
    province = config.is_province
    try:
        forms = load_forms()
        if province:  # the Sở's registry: its direct schools and the communes' offices
            registry, _ = round_named(round_for(config, "dang-ky")).load_registry(config,
                                                                                   forms)
        else:
            registry, _ = load_registry(config.registry, forms)
    except _user_errors() as exc:
        _fail(str(exc))
    context = Context(vocabs=forms.vocabs, unit_codes=registry.codes)
    school_forms = {r.form_id for r in _rounds().values()} | (
        set(REPORT_FORMS.values()) if province else set())
    errors = 0
    for file in files:
        errors += _checked(file, forms, registry, context, school_forms, config.school_year)
    if errors:
        sys.exit(settings.EXIT_STRICT_ERRORS)


def _report_checks(sub, forms, school_year: str) -> list[Finding]:
    """The Sở's checks that one commune report can pass alone: its school year and round,
    and each list's counts against the rows it lists."""
    from dataclasses import replace

    from pipeline.rounds.commune_reports import identity_findings, report_tables, totals_findings

    found = identity_findings(sub, school_year, sub.form.round)
    # Checked with a Phòng's configuration the office is not in its registry: its rows are
    # read all the same, under no code.
    sub = replace(sub, unit_code=sub.unit_code or "")
    chosen = {sub.unit_code: sub}
    return [*found, *totals_findings(chosen, report_tables(chosen), forms)]


def _checked(file: Path, forms, registry, context, school_forms: set[str],
             school_year: str) -> int:
    """Check one file of any form, print what was found; the number of errors."""
    from pipeline.ingest.read import read_workbook
    from pipeline.ingest.submission import Submission, submission
    from pipeline.rounds.province import REPORT_FORMS

    book, found = read_workbook(file.resolve(), file.name)
    if book is None or any(f.severity is Severity.ERROR for f in found):
        sub = Submission(file=file.name, path=file.resolve(), intake=tuple(found))
    else:
        form_id = _form_of(book, forms)
        sub = submission(book, forms, form_id, registry if form_id in school_forms else None,
                         context, read_findings=tuple(found))
    if sub.form is None:
        click.echo(_say("check_file", file=sub.file, form=_say("check_unknown_form"),
                        unit=_say("check_unknown_unit")))
    elif sub.form.form not in school_forms:
        click.echo(_say("check_office_file", file=sub.file,
                        form=f"{sub.form.title} ({sub.form.version})"))
    else:
        click.echo(_say("check_file", file=sub.file, form=f"{sub.form.title} ({sub.form.version})",
                        unit=sub.unit_code or _say("check_unknown_unit")))
    found = list(sub.findings)
    if sub.form is not None and sub.form.form in REPORT_FORMS.values() and not sub.rejected:
        found += _report_checks(sub, forms, school_year)
    for f in found:
        click.echo(_say("finding", severity=f.severity.label, message=f.message))
    errors = sum(f.severity is Severity.ERROR for f in found)
    click.echo(_say("findings_count", errors=errors, warnings=len(found) - errors))
    return errors


def _form_of(book, forms) -> str:
    """The form a workbook is: the id hidden in it, else the form whose headers it matches
    best, else the registration form (whose check then says the form is not recognised)."""
    from pipeline.ingest.read import form_score

    ids = list(dict.fromkeys(f.form for f in forms.forms))
    declared = (book.meta or {}).get("form")
    if declared in ids:
        return declared
    scores = {i: max(form_score(f, book) for f in forms.versions(i)) for i in ids}
    best = max(ids, key=lambda i: scores[i])
    return best if scores[best] > 0 else settings.DEFAULT_ROUND


def _out(out: Path | None, config) -> Path:
    """The output folder: the option, else the configuration's `output`, else output/."""
    return out or (config.output if config is not None and config.output else DEFAULT_OUT)


def _store_path(config_path: Path, store: Path | None, out: Path | None) -> Path:
    if store is not None:
        return store
    config = _config(config_path, None) if config_path.is_file() else None
    return config.store if config and config.store else _out(out, config) / settings.STORE_FILE


@contextlib.contextmanager
def _opened_store(path: Path) -> Iterator[Store]:
    """The history store, opened (and migrated) for one command; a bad store ends the run."""
    try:
        history = Store.open(path)
    except StoreError as exc:
        _fail(str(exc))
    with history:
        yield history


_store_option = click.option(
    "--store", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Kho lịch sử (mặc định theo cấu hình, nếu không có thì output/tdkt-lich-su.sqlite).")


@main.command(cls=_Command)
@click.argument("who", metavar="NGƯỜI-HOẶC-MÃ-ĐƠN-VỊ")
@_config_option
@_store_option
@_out_option
def history(who: str, config_path: Path, store: Path | None, out: Path) -> None:
    """In các danh hiệu, hình thức khen thưởng theo năm học của một người hoặc một đơn vị.

    NGƯỜI-HOẶC-MÃ-ĐƠN-VỊ là mã đơn vị, hoặc họ tên (không cần dấu), có thể kèm ngày sinh
    dạng "Họ tên, dd/mm/yyyy" khi có nhiều người trùng tên.

    Ví dụ: tdkt history "Nguyễn Văn An, 05/09/1985" --config input_samples/tdkt.toml
    """
    from pipeline.store.history_view import history_lines

    path = _store_path(config_path, store, out)
    if not path.is_file():
        _fail(f"Chưa có kho lịch sử “{path}”: hãy chạy tdkt consolidate trước.")
    with _opened_store(path) as history:
        for line in history_lines(history, who):
            click.echo(line)


@main.command("import-history", cls=_Command)
@click.argument("file", metavar="TỆP", type=click.Path(path_type=Path))
@_config_option
@_store_option
@_out_option
@click.option("--decisions", is_flag=True,
              help="Tệp là danh sách theo Quyết định khen thưởng (đã được cấp có thẩm quyền "
                   "quyết định), không phải danh sách cũ.")
def import_history(file: Path, config_path: Path, store: Path | None, out: Path,
                   decisions: bool) -> None:
    """Nhập danh sách danh hiệu, hình thức khen thưởng đã quyết định của các năm trước.

    Tệp theo mẫu “Danh sách khen thưởng” (tạo bằng tdkt templates --form lich-su). Mã đơn vị
    được đối chiếu với danh mục đơn vị; người trong danh sách được đối chiếu với kho theo họ
    tên, ngày sinh, đơn vị. Nhập lại cùng một tệp không thay đổi gì. Những người cần Phòng xác
    nhận được ghi vào tệp xac-nhan-trung-nguoi_<tên tệp>.xlsx cạnh kho, để chạy tdkt confirm.

    Ví dụ: tdkt import-history lich-su-2023-2024.xlsx --config input_samples/tdkt.toml
    """
    from pipeline.forms.definitions import load_forms
    from pipeline.reports.history_matches import import_matches_path, write_import_matches
    from pipeline.reports.workbook import Letterhead
    from pipeline.store.imports import import_awards

    if not file.is_file():
        _fail(_say("no_file", path=file))
    config = _config(config_path, None)
    try:
        registry, _ = load_registry(config.registry, load_forms())
        letterhead = Letterhead.of(config.office_for())
    except _user_errors() as exc:
        _fail(str(exc))
    path = _store_path(config_path, store, out)
    with _opened_store(path) as history:
        result = import_awards(history, file, "decision" if decisions else "import",
                               registry.codes)
    if result.earlier is not None:
        click.echo(f"Tệp “{file.name}” có cùng nội dung với tệp “{result.earlier['file']}” đã "
                   f"nhập lúc {result.earlier['imported_at']}: không nhập lại, kho lịch sử "
                   "không thay đổi.")
        return
    for f in result.findings:
        click.echo(_say("finding", severity=f.severity.label, message=f.message))
    for m in result.matches.itertuples():
        ids = f"mã {m.person_id}" + (f"; các mã có thể trùng: {m.candidates}"
                                     if m.candidates else "")
        click.echo(f"[Cần xác nhận] Dòng {m.row} “{m.full_name}”: {m.label} ({ids})")
    if len(result.matches):
        sheet = write_import_matches(import_matches_path(path, file), result.matches,
                                     file.name, letterhead)
        click.echo(f"Danh sách {len(result.matches)} người cần xác nhận: {sheet} (ghi mã người "
                   f"vào cột “Là cùng người với mã” rồi chạy tdkt confirm {sheet}).")
    already = (f" ({result.already_stored} dòng đã có trong kho, không nhập lại)"
               if result.already_stored else "")
    click.echo(f"Đã nhập {result.stored} dòng vào kho lịch sử {path}{already}.")


@main.command(cls=_Command)
@click.argument("file", metavar="TỆP", type=click.Path(path_type=Path))
@_config_option
@_store_option
@_out_option
@click.option("--allow-different-birth-dates", "allow_different", is_flag=True,
              help="Vẫn ghép hai mã người có ngày sinh khác nhau (chỉ khi Phòng chắc chắn ngày "
                   "sinh bị ghi sai).")
def confirm(file: Path, config_path: Path, store: Path | None, out: Path,
            allow_different: bool) -> None:
    """Ghi nhận các trường hợp Phòng xác nhận là cùng một người.

    TỆP là bảng tổng hợp của Phòng (tong-hop-phong.xlsx) hoặc tệp xac-nhan-trung-nguoi_….xlsx
    do tdkt import-history ghi, trong đó Phòng đã ghi mã người vào cột “Là cùng người với mã”
    của trang tính “Xác nhận trùng người”. Mỗi mã phải có trong kho và hai người phải cùng ngày
    sinh; nếu có ô sai, không lưu xác nhận nào. Xác nhận được lưu trong kho và dùng cho mọi
    lần chạy sau; bỏ một xác nhận nhầm bằng tdkt unconfirm.

    Ví dụ: tdkt confirm output/2025-2026/ket-qua/tong-hop-phong.xlsx --config tdkt.toml
    """
    from pipeline.store.confirmations import checked_links, confirmations, keep_links

    if not file.is_file():
        _fail(_say("no_file", path=file))
    rows, findings = confirmations(file)
    path = _store_path(config_path, store, out)
    if not path.is_file():
        _fail(f"Chưa có kho lịch sử “{path}”: hãy chạy tdkt consolidate trước.")
    with _opened_store(path) as history:
        links = []
        if not findings:
            links, findings = checked_links(history, rows, file.name, allow_different)
        if findings:
            for f in findings:
                click.echo(_say("finding", severity=f.severity.label, message=f.message))
            _fail(f"Chưa lưu xác nhận nào của tệp “{file.name}”: sửa các ô nêu trên rồi chạy "
                  "lại.")
        kept = keep_links(history, links, confirmed_by=file.name)
    click.echo(f"Đã lưu {kept} xác nhận cùng người vào kho lịch sử {path}.")


@main.command(cls=_Command)
@click.argument("person_id", metavar="MÃ-NGƯỜI", type=int)
@click.argument("other_id", metavar="MÃ-NGƯỜI-KIA", type=int)
@_config_option
@_store_option
@_out_option
def unconfirm(person_id: int, other_id: int, config_path: Path, store: Path | None,
              out: Path) -> None:
    """Bỏ một xác nhận cùng người mà Phòng đã lưu nhầm (tdkt confirm).

    Từ lần chạy sau, hai mã lại là hai người khác nhau. Việc bỏ được ghi lại trong kho cùng
    với xác nhận trước đó.

    Ví dụ: tdkt unconfirm 12 57 --config input_samples/tdkt.toml
    """
    from pipeline.store.confirmations import undo_link

    path = _store_path(config_path, store, out)
    if not path.is_file():
        _fail(f"Chưa có kho lịch sử “{path}”: hãy chạy tdkt consolidate trước.")
    with _opened_store(path) as history:
        problem = undo_link(history, person_id, other_id, undone_by="tdkt unconfirm")
    if problem:
        _fail(problem)
    click.echo(f"Đã bỏ xác nhận mã {person_id} và mã {other_id} là cùng một người (ghi lại "
               f"trong kho lịch sử {path}).")


@main.command("run", cls=_Command)
@click.option("--period", metavar="YYYY-MM", default=None,
              help="Tháng cần chạy (mặc định: tháng vừa kết thúc).")
@click.option("--dry-run", is_flag=True,
              help="Không gửi thư: ghi thư thành tệp .eml trong OUT/thu-gui/<tháng>/.")
@_config_option
@_store_option
@_out_option
def run_command(period: str | None, dry_run: bool, config_path: Path, store: Path | None,
                out: Path) -> None:
    """Chạy việc cuối tháng: tổng hợp các đợt đang mở, đến hạn hoặc vừa quá hạn (vẫn nhận tệp
    nộp muộn trong late_months tháng, mặc định 2) theo lịch, báo cáo tiến độ (đúng hạn, muộn,
    chưa nộp, không hợp lệ), gửi thư tổng hợp cho Phòng và phản hồi cho từng trường có lỗi.
    Sở chỉ nhận bản tổng hợp Phòng đã duyệt (tdkt approve). Với cấu hình của Sở: tổng hợp đợt
    của Sở, thư tổng hợp cho Sở, phản hồi cho từng Phòng Văn hóa – Xã hội và đơn vị trực thuộc
    có lỗi. Thư đã gửi không gửi lại trừ khi tệp đính kèm thay đổi.

    Máy chủ thư không trả lời: lần chạy dừng gửi sau chưa đầy một phút. Mã thoát: 0 — xong;
    4 — đã tổng hợp nhưng có thư không gửi được; 2 — gọi sai lệnh, cấu hình sai hoặc không
    ghi được thư mục kết quả; 3 — đang có một lần chạy khác; 130 — dừng bằng Ctrl-C.

    Ví dụ: tdkt run --period 2025-10 --dry-run --config input_samples/tdkt.toml
    """
    import datetime as dt

    from pipeline.monthly.calendar import previous_month
    from pipeline.monthly.deliver import DeliveryError
    from pipeline.monthly.job import STATE_LABELS, run_month

    config = _config(config_path, None)
    out = _out(out, config)
    period = period or previous_month(dt.date.today())
    try:
        month = run_month(config, out, period, dry_run=dry_run, store=store,
                          say=lambda line: click.echo(line, err=True))
    except _locked():
        _fail("Một lần chạy khác đang chạy; lần này dừng lại, không ghi gì.",
              settings.EXIT_LOCKED)
    except (*_user_errors(), DeliveryError, ValueError) as exc:
        _fail(str(exc))
    if not month.rounds:
        click.echo(f"Tháng {period}: không có đợt nào đang mở, đến hạn hoặc còn nhận tệp muộn.")
    for run in month.rounds:
        click.echo(f"{run.label} ({STATE_LABELS[run.state]}, hạn {run.due:%d/%m/%Y}): "
                   f"{len(run.result.submissions)} tệp; tiến độ: {run.report}")
        if run.approval is None and config.recipients.get("so") and not month.province:
            click.echo(f"  Chưa gửi Sở: chờ Phòng duyệt (tdkt approve --round {run.round} "
                       f"--year {run.result.school_year}).")
    report = month.delivery
    if report is not None:
        click.echo(f"Thư: gửi {len(report.sent)}, bỏ qua (đã gửi) {len(report.skipped)}, "
                   f"lỗi {len(report.failed)}, ghi tệp {len(report.written)}.")
        tried = [f for f in report.failed if f[2] != report.stopped]
        for key, recipient, error in tried:
            click.echo(_say("not_sent", message=key, recipient=recipient, error=error),
                       err=True)
        if report.stopped:
            click.echo(f"  {len(report.failed) - len(tried)} thư khác {report.stopped}.",
                       err=True)
        if report.failed:
            sys.exit(settings.EXIT_NOT_SENT)


@main.command(cls=_Command)
@click.option("--round", "round_", type=_RoundChoice(), metavar="ĐỢT", required=True,
              help="Đợt được duyệt: dang-ky, ket-qua, …")
@_year_option
@click.option("--by", "approved_by", default=None, metavar="TÊN",
              help="Người duyệt (mặc định: tên người dùng trên máy).")
@_config_option
@_store_option
@_out_option
def approve(round_: str, year: str | None, approved_by: str | None, config_path: Path,
            store: Path | None, out: Path) -> None:
    """Phòng duyệt bản tổng hợp hiện có của một đợt: giữ một bản sao đã duyệt
    (OUT/<năm học>/da-duyet/<đợt>/, manifest ghi người duyệt, thời điểm và mã băm) và ghi vào
    kho lịch sử. Chỉ bản đã duyệt được gửi Sở, ở lần chạy tdkt run kế tiếp; tổng hợp lại sau đó
    không thay bản đã duyệt, muốn gửi Sở bản mới thì duyệt lại.

    Ví dụ: tdkt approve --round dang-ky --year 2025-2026 --config input_samples/tdkt.toml
    """
    import datetime as dt
    import getpass

    from pipeline.engine import output_lock
    from pipeline.monthly.approval import ApprovalError
    from pipeline.monthly.approval import approve as approve_round

    config = _config(config_path, year)
    if config.is_province:  # the Sở sends nothing up through tdkt: nothing to approve
        _fail("Cấu hình này là của Sở: duyệt (tdkt approve) chỉ dành cho Phòng trước khi gửi "
              "Sở. Bản tổng hợp của Sở ở thư mục kết quả, gửi tỉnh theo quy trình của Sở.")
    out = _out(out, config)
    who = approved_by or getpass.getuser()
    path = store or config.store or out / config.store_name
    try:
        with output_lock(out), _opened_store(path) as history:
            done = approve_round(out, history, config.school_year, round_, who,
                                 dt.datetime.now().astimezone())
    except _locked():
        _fail("Một lần chạy khác đang ghi vào thư mục kết quả; hãy duyệt sau.",
              settings.EXIT_LOCKED)
    except (ApprovalError, StoreError) as exc:
        _fail(str(exc))
    click.echo(f"Đã duyệt đợt {round_} năm học {done.school_year} ({who}, "
               f"{done.approved_at:%d/%m/%Y %H:%M}); bản đã duyệt: {done.folder}. "
               "Sở nhận bản này ở lần chạy tdkt run kế tiếp.")


@main.command(cls=_Command)
def codes() -> None:
    """Liệt kê các mã lỗi/cảnh báo, mức độ và cách sửa."""
    for entry in catalogue().values():
        click.echo(f"{entry.code:20} {entry.severity.label:9} {entry.hint}")


@main.command("rules", cls=_Command)
@_config_option
@_year_option
@click.option("--round", "round_", type=_RoundChoice(), metavar="ĐỢT", default="ket-qua",
              show_default=True, help="Đợt: quy tắc có hiệu lực vào hạn nộp của đợt này.")
@click.option("--province", default=None, metavar="TỈNH",
              help="Bộ quy tắc của tỉnh (mặc định: theo cấu hình, nếu không có thì mac-dinh).")
@click.option("--compare", "compare", default=None, metavar="NĂM-HỌC",
              help="So sánh với năm học này (mặc định: năm học trước).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Ghi thêm bảng quy tắc ra tệp Excel (.xlsx).")
def rules_command(config_path: Path, year: str | None, round_: str, province: str | None,
                  compare: str | None, out: Path | None) -> None:
    """In các quy tắc có hiệu lực của một năm học: mã, yêu cầu, số liệu, cấp quy định, căn cứ,
    mức xác minh, ngày hiệu lực, và những gì thay đổi so với năm học trước.

    Ví dụ: tdkt rules --year 2026-2027 --config input_samples/tdkt.toml --out quy-tac.xlsx
    """
    import dataclasses

    from pipeline.engine import rules_for
    from pipeline.reports.rules import write_rules_workbook
    from pipeline.rules.listing import changes, listing, previous_year

    config = _config(config_path, year)
    if province is not None:
        config = dataclasses.replace(config, province_rules=province)
    try:
        other = compare or previous_year(config.school_year)
        year_start(other)
        current = rules_for(config, round_)
        earlier = rules_for(dataclasses.replace(config, school_year=other), round_)
    except _user_errors() as exc:
        _fail(str(exc))
    click.echo(f"Quy tắc xét năm học {current.school_year} — {current.province}; có hiệu lực "
               f"ngày {current.date:%d/%m/%Y} (hạn nộp đợt {round_}).")
    for row in listing(current):
        click.echo(f"\n{row['id']} — {row['description']}")
        if row["numbers"]:
            click.echo(f"  Số liệu: {row['numbers']}")
        click.echo(f"  Cấp quy định: {row['layer']}; hiệu lực {row['window']}")
        click.echo(f"  Căn cứ: {row['citation']} ({row['status']})")
        if row["changes"]:
            click.echo(f"  Tầng dưới thay đổi: {row['changes']}")
    for note in current.removed:
        click.echo(f"\n{note}")
    diff = changes(earlier, current)
    click.echo(f"\nThay đổi so với năm học {earlier.school_year}: "
               f"{len(diff) if diff else 'không có'}")
    for row in diff:
        arrow = f"{row['before'] or '—'} → {row['after'] or '—'}"
        click.echo(f"  {row['id']}: {row['change']}: {arrow}")
    if out is not None:
        try:
            write_rules_workbook(out, config.office_for(), current, earlier)
        except OSError as exc:
            console.system_error(exc)
        click.echo(f"\nĐã ghi {out}")


def _named_metavars(group: click.Group) -> None:
    """Vietnamese placeholders (THƯ_MỤC, TỆP…) for every option left without one; Click would
    show the type's English name (DIRECTORY, FILE, PATH, TEXT, INTEGER)."""
    for command in group.commands.values():
        for param in command.params:
            if param.metavar is not None or getattr(param, "is_flag", False) \
                    or isinstance(param.type, click.Choice):
                continue
            param.metavar = _metavar(param.type)


def _metavar(kind: click.ParamType) -> str:
    if isinstance(kind, click.Path):
        return "THƯ_MỤC" if not kind.file_okay else "TỆP" if not kind.dir_okay else \
            "ĐƯỜNG_DẪN"
    return "SỐ" if isinstance(kind, click.types.IntParamType | click.types.FloatParamType) \
        else "CHỮ"


_named_metavars(main)
