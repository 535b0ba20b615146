"""The office's configuration (tdkt.toml): who consolidates, which year, which registry."""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline.findings import DefinitionError
from pipeline.settings import PROVINCE_STORE_FILE, STORE_FILE, Limits, default_limits

PROVINCE_LEVEL = "tinh"  # the office level of a Sở's configuration

_YEAR = re.compile(r"^(\d{4})-(\d{4})$")


class ConfigError(Exception):
    """The configuration file is missing or wrong: the run cannot start."""


@dataclass(frozen=True)
class Office:
    name: str
    parent: str
    level: str  # "huyen", "xa" (a Phòng) or "tinh" (the Sở: its rounds read communes' reports)
    place: str = ""
    # The office's code in the Sở's registry (danh-muc-so): written in the hidden form id of the
    # reports it sends the Sở, so that the Sở's round knows whose report it reads.
    code: str = ""
    email: str = ""
    signer: str = "Thủ trưởng đơn vị"  # the signer's title: "Trưởng phòng"
    from_year: str | None = None
    until_year: str | None = None
    # The official documents sent to the Sở (Nghị định 30/2020/NĐ-CP): the signer's name under
    # the signature, the office's part of the reference ("VHXH" in "Số: …/BC-VHXH"; default:
    # the initials of its name), the "Nơi nhận" lines (default "Như trên", "Lưu: VT") and, for
    # [province_office], how the addressee is written (default "<name> tỉnh <place>").
    signer_name: str = ""
    reference_symbol: str = ""
    distribution: tuple[str, ...] = ()
    addressee: str = ""

    def covers(self, school_year: str) -> bool:
        """Whether this office consolidates in the given school year."""
        start = year_start(school_year)
        return (self.from_year is None or year_start(self.from_year) <= start) and (
            self.until_year is None or start <= year_start(self.until_year)
        )


@dataclass(frozen=True)
class Config:
    school_year: str
    registry: Path
    offices: tuple[Office, ...]
    province_office: Office
    path: Path | None = None
    inboxes: dict[str, Path] = field(default_factory=dict, hash=False, compare=False)
    allocation: Path | None = None  # optional workbook of quotas per khối
    store: Path | None = None  # the history store (default: in the output folder)
    output: Path | None = None  # where results go when --out is not given
    # Month-end runs: [[calendar]], [recipients], [smtp] tables as written (checked where used).
    calendar: list[dict] | None = field(default=None, hash=False, compare=False)
    recipients: dict[str, list[str]] = field(default_factory=dict, hash=False, compare=False)
    smtp: dict | None = field(default=None, hash=False, compare=False)
    # What one inbox file may be ([limits]; defaults in settings).
    limits: Limits = field(default_factory=default_limits)
    # [rules]: the province layer (schemas/rules/provinces/<name>.yaml), the office's own layer
    # file, and the unverified entries the office switches on.
    province_rules: str | Path = "mac-dinh"
    office_rules: Path | None = None
    rule_options: tuple[str, ...] = ()

    def office_for(self, school_year: str | None = None) -> Office:
        """The consolidating office of a school year (the configured year by default)."""
        year = school_year or self.school_year
        matches = [o for o in self.offices if o.covers(year)]
        if len(matches) != 1:
            raise ConfigError(
                f"Cấu hình phải có đúng một cơ quan tổng hợp cho năm học {year} "
                f"(tìm thấy {len(matches)})."
            )
        return matches[0]

    @property
    def is_province(self) -> bool:
        """Whether this is a Sở's configuration (its office's level is "tinh")."""
        return self.office_for().level == PROVINCE_LEVEL

    @property
    def store_name(self) -> str:
        """The default history store's file name: a Sở's own, never mixed with a Phòng's."""
        return PROVINCE_STORE_FILE if self.is_province else STORE_FILE


def year_start(school_year: str) -> int:
    """2025 for "2025-2026"; raises on a malformed school year."""
    match = _YEAR.match(school_year.strip())
    if not match or int(match.group(2)) != int(match.group(1)) + 1:
        raise ConfigError(f"Năm học “{school_year}” không đúng dạng 2025-2026.")
    return int(match.group(1))


def _office(raw: dict, where: str) -> Office:
    lines = raw.get("distribution", ())
    if not isinstance(lines, list | tuple) or not all(isinstance(x, str) for x in lines):
        raise ConfigError(f"{where}: distribution phải là danh sách dòng “Nơi nhận”, ví dụ "
                          "[\"Như trên;\", \"Lưu: VT.\"].")
    try:
        return Office(**(raw | {"distribution": tuple(lines)}))
    except TypeError as exc:
        raise ConfigError(f"{where}: mục cơ quan không hợp lệ: {exc}") from exc


def _relative(config: Path, value: str) -> Path:
    target = Path(value)
    return target if target.is_absolute() else config.parent / target


_MB = 1024 * 1024
# [limits] keys as written in tdkt.toml → (Limits field, factor, whole number only).
_LIMIT_KEYS = {
    "max_file_mb": ("max_file_bytes", _MB, False),
    "max_uncompressed_mb": ("max_uncompressed_bytes", _MB, False),
    "max_compression_ratio": ("max_compression_ratio", 1, False),
    "max_rows": ("max_rows", 1, True),
    "max_columns": ("max_columns", 1, True),
}


def _limit_value(key: str, value: object, where: str) -> int | float:
    name, factor, whole = _LIMIT_KEYS[key]
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or number <= 0 or (
            whole and number != int(number)):
        kind = "một số nguyên dương" if whole else "một số dương"
        raise ConfigError(f"{where}: mục [limits] “{key} = {value!r}” không hợp lệ; cần {kind}.")
    return number if name == "max_compression_ratio" else int(number * factor)


def _table(raw: object, name: str, known: Iterable[str], where: str, shape: str) -> dict:
    """A TOML table whose keys are all known (an unknown key stops the run)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [{name}] phải là một bảng ({shape}).")
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{where}: mục [{name}] không có khoá {', '.join(unknown)}; "
                          f"các khoá dùng được: {', '.join(known)}.")
    return raw


def limits_from(raw: object, where: str) -> Limits:
    """The [limits] table over the default limits; an unknown key or a bad value stops the run."""
    if raw is None:
        return default_limits()
    raw = _table(raw, "limits", _LIMIT_KEYS, where, "các dòng “khoá = số”")
    changes = {_LIMIT_KEYS[k][0]: _limit_value(k, v, where) for k, v in raw.items()}
    return replace(default_limits(), **changes)


_RULE_KEYS = ("province", "office", "options")


def rules_from(raw: object, path: Path) -> dict:
    """The [rules] table: province layer name, office layer file, options switched on."""
    if raw is None:
        return {}
    where = str(path)
    raw = _table(raw, "rules", _RULE_KEYS, where, "province, office, options")
    out: dict = {}
    if "province" in raw:
        value = raw["province"]
        if isinstance(value, str) and value.endswith((".yaml", ".yml")):
            out["province_rules"] = _relative(path, value)  # the office's own copy
        elif isinstance(value, str) and re.fullmatch(r"[a-z0-9-]+", value):
            out["province_rules"] = value
        else:
            raise ConfigError(f"{where}: [rules] province = {value!r} không hợp lệ; ghi tên bộ "
                              "quy tắc của tỉnh (ví dụ \"bac-ninh\") hoặc đường dẫn tệp .yaml.")
    if "office" in raw:
        if not isinstance(raw["office"], str) or not raw["office"].strip():
            raise ConfigError(f"{where}: [rules] office phải là đường dẫn tệp quy tắc của Phòng.")
        out["office_rules"] = _relative(path, raw["office"])
    if "options" in raw:
        options = raw["options"]
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise ConfigError(f"{where}: [rules] options phải là danh sách tên, ví dụ "
                              "[\"sua-doi-2026\"].")
        out["rule_options"] = tuple(options)
    return out


def load_config(path: Path, school_year: str | None = None) -> Config:
    """Read tdkt.toml; relative paths are taken from the file's folder."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"Không tìm thấy tệp cấu hình “{path}”.") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Tệp cấu hình “{path}” sai cú pháp: {exc}") from exc
    try:
        year = school_year or raw["school_year"]
        year_start(year)
        registry = _relative(path, raw["registry"])
        offices = tuple(_office(o, str(path)) for o in raw["offices"])
        province = _office(raw["province_office"] | {"level": PROVINCE_LEVEL}, str(path))
    except KeyError as exc:
        raise ConfigError(f"Tệp cấu hình “{path}” thiếu mục {exc}.") from exc
    except DefinitionError as exc:
        raise ConfigError(str(exc)) from exc
    inboxes = {name: _relative(path, p) for name, p in (raw.get("inboxes") or {}).items()}
    allocation = _relative(path, raw["allocation"]) if raw.get("allocation") else None
    store = _relative(path, raw["store"]) if raw.get("store") else None
    output = _relative(path, raw["output"]) if raw.get("output") else None
    config = Config(school_year=year, registry=registry, offices=offices,
                    province_office=province, path=path, inboxes=inboxes,
                    allocation=allocation, store=store, output=output,
                    calendar=raw.get("calendar"),
                    recipients={k: list(v) for k, v in (raw.get("recipients") or {}).items()},
                    smtp=raw.get("smtp"), limits=limits_from(raw.get("limits"), str(path)),
                    **rules_from(raw.get("rules"), path))
    config.office_for(year)
    return config
