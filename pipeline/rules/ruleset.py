"""Rules as data, layered by authority and dated: what is in force for a round on its date.

The rule files under schemas/rules/ are layers: `law.yaml` (Luật, nghị định, thông tư of the
State), `sector.yaml` (the education sector), `provinces/<tỉnh>.yaml` (a province's quy chế; the
office picks one) and `office.yaml` (the Phòng/Sở plan; the office may add its own file).
Every entry carries the dates it is in force (`from`, optional `to`), its citation and how well
that citation was verified. A round is judged by the entries in force on its date (the round's
deadline in the school-year calendar), so every school year runs from the same files.

A lower layer may set a number a higher one leaves open (`set:`), or add a rule; it may replace
a rule of a province or office layer, never one of `law` or `sector`. Every such change is kept
on the rule (`overrides`) so that `tdkt rules` and the reports show it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from pipeline import settings
from pipeline.findings import DefinitionError, catalogue
from pipeline.yamlfile import read_yaml

LAYERS = ("law", "sector", "province", "office")
LAYER_LABELS = {"law": "Trung ương", "sector": "Ngành Giáo dục", "province": "Tỉnh",
                "office": "Phòng/Sở"}
# What a rule's numbers are called where an office reads them (`tdkt rules`, the notes on
# what a lower layer set); a number with no label here shows its key.
PARAM_LABELS = {
    "months": "số tháng", "period_months": "số tháng của thời hạn", "share": "tỉ lệ",
    "min_share": "tỉ lệ tối thiểu", "lao_dong_share": "tỉ lệ Lao động tiên tiến",
    "completed_share": "tỉ lệ hoàn thành", "women_share": "tỉ lệ nữ", "minimum": "mức tối thiểu",
    "target": "chỉ tiêu", "years": "số năm", "hardship_years": "số năm ở vùng khó khăn",
    "years_with_hardship": "số năm khi có năm ở vùng khó khăn", "cstd": "số CSTĐCS",
    "per_block": "số đơn vị mỗi khối", "rounding": "cách làm tròn",
}


def param_label(key: str) -> str:
    """A rule number's Vietnamese name ("months" → "số tháng")."""
    return PARAM_LABELS.get(key, key)


STATUSES = ("verified", "secondary", "old-law", "local", "unverified")
STATUS_LABELS = {
    "verified": "đã đối chiếu văn bản",
    "secondary": "theo nguồn thứ cấp",
    "old-law": "theo văn bản đã hết hiệu lực",
    "local": "quy định của địa phương",
    "unverified": "chưa xác minh, cần đối chiếu văn bản",
}
DEFAULT_PROVINCE = "mac-dinh"
PROVINCES_DIR = "provinces"
# Rounding of an exact fraction: a half goes up ("nearest"), never to the even neighbour.
ROUNDINGS = {"floor": math.floor, "ceil": math.ceil,
             "nearest": lambda x: math.floor(x + Fraction(1, 2))}
FOREVER = dt.date(9999, 12, 31)

# Conditions a rule's `require`/`when` may use; the rule data chooses among them, never code.
CONDITION_KEYS = {"column", "in", "not_in", "min", "above", "max", "present", "blank", "ratio",
                  "any", "all", "registered", "leader", "discipline_clear"}
SUBJECTS = ("person", "collective", "any")
# Keys of a rule entry, of an entry that only sets numbers, and of a layer file: anything else
# is refused (a key one level off would otherwise be ignored without a word).
RULE_KEYS = {"id", "label", "from", "to", "option", "applies", "subject", "description",
             "citation",
             "status", "finding", "params", "proposals", "when", "require", "history",
             "consecutive", "not_received", "otherwise", "check_when", "note"}
SET_KEYS = {"id", "from", "to", "option", "set", "citation", "status", "note"}
REMOVE_KEYS = {"id", "from", "to", "option", "removed", "citation", "status", "note"}
FILE_KEYS = {"layer", "name", "province", "inherits", "texts", "legal_basis", "options",
             "rules"}
TEXT_KEYS = {"name", "cites", "from", "to", "cite_only_in_force"}


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    citation: str
    status: str
    effective_from: dt.date
    applies: tuple[str, ...]
    finding: str | None = None
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    subject: str | None = None  # eligibility rules: person | collective | any
    proposals: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False,
                                                  compare=False)
    when: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    require: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    history: str | None = None  # what earlier years must show; decided "cần kiểm tra"
    # How the history store decides it: {kind: title|grade, codes: [...], years: N}
    consecutive: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    # ... or: not received in an earlier year ({kind, codes, years: N} — N omitted: ever)
    not_received: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    # A history rule the store answers "no" is left to check when other routes exist
    # (e.g. Bằng khen for a notable achievement): the text says which.
    otherwise: str | None = None
    # Rows that fail `require` but meet this condition are left to check (data missing).
    check_when: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    effective_to: dt.date | None = None
    layer: str = "law"  # the layer whose entry decides (it set the numbers in force)
    source: str = ""  # the layer file's name, e.g. "Tỉnh Bắc Ninh"
    option: str | None = None  # an entry in force only when the office switches it on
    overrides: tuple[str, ...] = ()  # what lower layers changed, in Vietnamese
    open_params: tuple[str, ...] = ()  # numbers no layer has set: the rule cannot decide
    label: str = ""  # a short Vietnamese name, shown wherever a person reads (never the id)

    @property
    def decides(self) -> bool:
        """Whether this is an eligibility rule deciding proposals."""
        return bool(self.proposals)

    @property
    def name(self) -> str:
        """What a person reads for the rule: its label, else the first clause of its
        description ("Xếp loại trong năm từ Hoàn thành tốt nhiệm vụ trở lên")."""
        if self.label:
            return self.label
        first = re.split(r"\s+—\s+|;|\. |\.$|\s\(", self.description, maxsplit=1)[0]
        return first.strip() or self.description

    @property
    def basis(self) -> str:
        """"Luật 06/2022/QH15 Điều 23 — theo nguồn thứ cấp"."""
        return f"{self.citation} — {STATUS_LABELS[self.status]}"

    @property
    def layer_label(self) -> str:
        """"Trung ương", "Tỉnh Bắc Ninh", "Phòng/Sở": who set the rule in force."""
        return self.source or LAYER_LABELS[self.layer]

    @property
    def window(self) -> str:
        """"từ 01/01/2024" or "01/01/2024 – 30/06/2025"."""
        start = f"{self.effective_from:%d/%m/%Y}"
        return f"{start} – {self.effective_to:%d/%m/%Y}" if self.effective_to else f"từ {start}"


@dataclass(frozen=True)
class LegalText:
    """A legal text named in citations, with the dates it was in force."""

    name: str
    cites: tuple[str, ...]  # how citations name it
    start: dt.date
    end: dt.date
    cite_only_in_force: bool  # a citation of it outside its dates is a definition error


@dataclass(frozen=True)
class Layer:
    """One rule file: its layer, who issued it and its entries (all dates)."""

    layer: str
    name: str
    path: Path
    entries: tuple[dict[str, Any], ...]
    legal_basis: tuple[dict[str, Any], ...] = ()
    texts: tuple[LegalText, ...] = ()
    options: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class RuleSet:
    school_year: str
    date: dt.date  # the rules in force on this day decide
    province: str  # the province layer's name
    version: str
    legal_basis: dict[str, str]
    rules: dict[str, Rule] = field(hash=False, compare=False)
    options: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # the layer files read, top to bottom
    removed: tuple[str, ...] = ()  # rules a lower layer took out on this day, in Vietnamese

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id; a missing one is a definition error."""
        try:
            return self.rules[rule_id]
        except KeyError as exc:
            raise DefinitionError(f"rule set {self.version} has no rule {rule_id!r}") from exc

    @property
    def starts(self) -> dt.date:
        """The first day of the school year (the assessment period)."""
        return dt.date(int(self.school_year[:4]), 9, 1)

    @property
    def ends(self) -> dt.date:
        """The last day of the school year."""
        return dt.date(int(self.school_year[:4]) + 1, 8, 31)


# Reading the layer files


def _date(value: Any, where: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    raise DefinitionError(f"{where}: expected a date YYYY-MM-DD, got {value!r}")


def _unknown(raw: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise DefinitionError(f"{where}: unknown key(s) {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(known))})")


def _window(raw: Mapping[str, Any], where: str) -> tuple[dt.date, dt.date]:
    start = _date(raw.get("from"), f"{where}: from")
    end = _date(raw["to"], f"{where}: to") if raw.get("to") is not None else FOREVER
    if end < start:
        raise DefinitionError(f"{where}: ends ({end}) before it starts ({start})")
    return start, end


def _texts(raw: Iterable[Mapping[str, Any]], where: str) -> tuple[LegalText, ...]:
    texts = []
    for item in raw or ():
        _unknown(item, TEXT_KEYS, f"{where}: text {item.get('name')}")
        start, end = _window(item, f"{where}: text {item.get('name')}")
        texts.append(LegalText(name=str(item["name"]), cites=tuple(item["cites"]), start=start,
                               end=end, cite_only_in_force=bool(item.get("cite_only_in_force"))))
    return tuple(texts)


def read_layer(path: Path, expected: str | None = None) -> Layer:
    """One layer file, checked key by key (an unknown key is refused)."""
    if not path.is_file():
        raise DefinitionError(f"Không tìm thấy tệp quy tắc “{path}”.")
    try:
        raw = read_yaml(path)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DefinitionError(f"Tệp quy tắc “{path.name}” sai cú pháp: {exc}") from exc
    where = path.name
    if not isinstance(raw, dict):
        raise DefinitionError(f"{where}: a rule file is a mapping (layer, name, rules)")
    _unknown(raw, FILE_KEYS, where)
    layer = raw.get("layer")
    if layer not in LAYERS or (expected is not None and layer != expected):
        raise DefinitionError(f"{where}: layer must be {expected or ' | '.join(LAYERS)}, "
                              f"got {layer!r}")
    entries = []
    for i, entry in enumerate(raw.get("rules") or (), start=1):
        if not isinstance(entry, dict) or "id" not in entry:
            raise DefinitionError(f"{where}: rule entry {i} needs an id")
        here = f"{where}: rule {entry['id']}"
        _unknown(entry, SET_KEYS if "set" in entry else REMOVE_KEYS if "removed" in entry
                 else RULE_KEYS, here)
        _window(entry, here)
        for key in ("citation", "status"):
            if not entry.get(key):
                raise DefinitionError(f"{here}: needs {key}")
        if entry["status"] not in STATUSES:
            raise DefinitionError(f"{here}: unknown status {entry['status']!r}")
        if entry.get("option") is not None and entry["option"] not in (raw.get("options") or {}):
            raise DefinitionError(f"{here}: option {entry['option']!r} is not declared in "
                                  "the file's options")
        entries.append(dict(entry))
    basis = tuple(dict(b) for b in raw.get("legal_basis") or ())
    for b in basis:
        _window(b, f"{where}: legal_basis")
    name = str(raw.get("name") or raw.get("province") or LAYER_LABELS[layer])
    return Layer(layer=layer, name=name, path=path, entries=tuple(entries), legal_basis=basis,
                 texts=_texts(raw.get("texts"), where),
                 options={str(k): str(v) for k, v in (raw.get("options") or {}).items()})


def province_path(province: str | Path, directory: Path) -> Path:
    """A shipped province's file by name ("bac-ninh"), or an office's own copy by path."""
    if isinstance(province, Path) or str(province).endswith((".yaml", ".yml")):
        return Path(province)
    return directory / PROVINCES_DIR / f"{province}.yaml"


def province_chain(province: str | Path, directory: Path) -> list[Layer]:
    """The province layer and the ones it inherits from (shipped provinces, by name), most
    general first."""
    chain: list[Layer] = []
    seen: set[Path] = set()
    name: str | Path | None = province
    while name is not None:
        path = province_path(name, directory)
        if path in seen:
            raise DefinitionError(f"{path.name}: inherits itself")
        seen.add(path)
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in (directory / PROVINCES_DIR).glob("*.yaml")))
            raise DefinitionError(f"Chưa có quy tắc của tỉnh “{name}” (có: {known}; hoặc ghi "
                                  "đường dẫn tệp .yaml của tỉnh).")
        layer = read_layer(path, "province")
        chain.insert(0, layer)
        raw = read_yaml(path)
        name = raw.get("inherits")
    return chain


def read_layers(province: str | Path = DEFAULT_PROVINCE, office: Path | None = None,
                directory: Path = settings.RULES_DIR) -> list[Layer]:
    """Every layer file an office uses, top to bottom: law, sector, province, office."""
    layers = [read_layer(directory / "law.yaml", "law"),
              read_layer(directory / "sector.yaml", "sector"),
              *province_chain(province, directory),
              read_layer(directory / "office.yaml", "office")]
    if office is not None:
        layers.append(read_layer(office, "office"))
    _check_citations(layers)
    return layers


def _check_citations(layers: Sequence[Layer]) -> None:
    """A text that stopped being in force is cited only by entries of its own dates."""
    texts = [t for layer in layers for t in layer.texts if t.cite_only_in_force]
    for layer in layers:
        for entry in layer.entries:
            start, end = _window(entry, layer.path.name)
            for text in texts:
                named = any(c in str(entry.get("citation", "")) for c in text.cites)
                if named and (end < text.start or start > text.end):
                    raise DefinitionError(
                        f"{layer.path.name}: rule {entry['id']} ({start} – {end}) cites "
                        f"{text.name}, in force only {text.start} – {text.end}")


# Choosing the entries in force


def _in_force(layer: Layer, day: dt.date, options: Sequence[str]) -> dict[str, dict[str, Any]]:
    chosen: dict[str, list[dict[str, Any]]] = {}
    for entry in layer.entries:
        start, end = _window(entry, layer.path.name)
        option = entry.get("option")
        if start <= day <= end and (option is None or option in options):
            chosen.setdefault(entry["id"], []).append(entry)
    out = {}
    for rule_id, entries in chosen.items():
        switched = [e for e in entries if e.get("option")]
        entries = switched or entries  # an option switched on wins over the default entry
        if len(entries) > 1:
            raise DefinitionError(f"{layer.path.name}: {len(entries)} entries of rule "
                                  f"{rule_id} are in force on {day}")
        out[rule_id] = entries[0]
    return out


def _number(value: Any) -> str:
    if isinstance(value, float) and 0 < value < 1:
        return f"{value:.0%}"
    return "để ngỏ" if value is None else str(value)


def _set_numbers(base: Rule, entry: Mapping[str, Any], layer: Layer) -> Rule:
    where = f"{layer.path.name}: rule {base.id}"
    params = dict(base.params)
    notes = list(base.overrides)
    for key, value in (entry["set"] or {}).items():
        if key not in params:
            raise DefinitionError(f"{where}: sets {key!r}, which the rule does not have "
                                  f"(has: {', '.join(params)})")
        if params[key] is not None and base.layer in ("law", "sector"):
            raise DefinitionError(f"{where}: {key} is set by the {base.layer} layer "
                                  f"({base.citation}); a lower layer sets only open numbers")
        before = "tầng trên để ngỏ" if params[key] is None else f"trước đó {_number(params[key])}"
        notes.append(f"{layer.name} đặt {param_label(key)} = {_number(value)} ({before}, "
                     f"{base.layer_label})")
        params[key] = value
    start, end = _window(entry, where)
    last = min(end, base.effective_to or FOREVER)
    return replace(base, params=params, overrides=tuple(notes), layer=layer.layer,
                   source=layer.name, status=entry["status"],
                   citation=f"{entry['citation']} (quy tắc: {base.citation})",
                   effective_from=max(start, base.effective_from),
                   effective_to=None if last == FOREVER else last)


def _new_rule(entry: Mapping[str, Any], layer: Layer) -> Rule:
    start, end = _window(entry, layer.path.name)
    return Rule(id=entry["id"], description=str(entry.get("description", "")),
                label=str(entry.get("label") or ""),
                citation=str(entry["citation"]), status=entry["status"],
                effective_from=start, effective_to=None if end == FOREVER else end,
                applies=tuple(entry.get("applies", ())), finding=entry.get("finding"),
                params=dict(entry.get("params") or {}), subject=entry.get("subject"),
                proposals={k: tuple(v) for k, v in (entry.get("proposals") or {}).items()},
                when=entry.get("when"), require=entry.get("require"),
                history=entry.get("history"), consecutive=entry.get("consecutive"),
                not_received=entry.get("not_received"), otherwise=entry.get("otherwise"),
                check_when=entry.get("check_when"),
                layer=layer.layer, source=layer.name, option=entry.get("option"))


def rules_in_force(layers: Sequence[Layer], day: dt.date, options: Sequence[str] = ()
                   ) -> tuple[dict[str, Rule], tuple[str, ...]]:
    """The rules in force on a day (each layer's entries of that day over the layers above),
    and what lower layers took out."""
    merged: dict[str, Rule] = {}
    removed: list[str] = []
    for layer in layers:
        for rule_id, entry in _in_force(layer, day, options).items():
            base = merged.get(rule_id)
            if entry.get("removed"):
                if base is None or base.layer in ("law", "sector"):
                    raise DefinitionError(
                        f"{layer.path.name}: rule {rule_id} removes "
                        f"{'a rule not in force' if base is None else 'a ' + base.layer + ' rule'}"
                        f" on {day}; only province and office rules can be removed")
                del merged[rule_id]
                removed.append(f"{layer.name} bỏ quy định “{base.name}” của {base.layer_label} "
                               f"({entry['citation']})")
                continue
            if "set" in entry:
                if base is None:
                    raise DefinitionError(f"{layer.path.name}: rule {rule_id} sets numbers of "
                                          f"a rule not in force on {day}")
                merged[rule_id] = _set_numbers(base, entry, layer)
                continue
            rule = _new_rule(entry, layer)
            if base is not None:
                if base.layer in ("law", "sector") and base.layer != layer.layer:
                    raise DefinitionError(
                        f"{layer.path.name}: rule {rule_id} replaces a rule of the {base.layer} "
                        "layer; a lower layer may only set its open numbers (set:)")
                if base.layer != layer.layer or base.source != layer.name:
                    rule = replace(rule, overrides=(*base.overrides,
                                                    f"{layer.name} thay quy định của "
                                                    f"{base.layer_label} ({base.citation})"))
            merged[rule_id] = rule
    return {rid: _checked(_resolved(rule)) for rid, rule in merged.items()}, tuple(removed)


def _resolved(rule: Rule) -> Rule:
    """Conditions with `{param: name}` values replaced by the numbers in force."""
    missing: list[str] = []

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"param"}:
                name = value["param"]
                if name not in rule.params:
                    raise DefinitionError(f"rule {rule.id}: refers to param {name!r} it lacks")
                if rule.params[name] is None:
                    missing.append(name)
                return rule.params[name]
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    require, when = walk(rule.require), walk(rule.when)
    return replace(rule, require=require, when=when,
                   open_params=tuple(dict.fromkeys([*missing, *(
                       k for k, v in rule.params.items() if v is None)])))


def _check_condition(condition: Any, where: str) -> None:
    if not isinstance(condition, dict) or not condition:
        raise DefinitionError(f"{where}: a condition must be a mapping, got {condition!r}")
    unknown = set(condition) - CONDITION_KEYS
    if unknown:
        raise DefinitionError(f"{where}: unknown condition keys {sorted(unknown)}")
    for key in ("any", "all"):
        for part in condition.get(key, ()):
            _check_condition(part, where)
    if "ratio" in condition and len(condition["ratio"]) != 2:
        raise DefinitionError(f"{where}: ratio takes [numerator, denominator]")


def _checked(rule: Rule) -> Rule:
    where = f"rule {rule.id}"
    if rule.decides:
        if rule.subject not in SUBJECTS:
            raise DefinitionError(f"{where}: subject must be one of {SUBJECTS}")
        if (rule.require is None) == (rule.history is None):
            raise DefinitionError(f"{where}: give exactly one of require or history")
        for condition in (rule.require, rule.when, rule.check_when):
            if condition is not None:
                _check_condition(condition, where)
        spec = rule.consecutive
        if spec is not None and (rule.history is None or set(spec) != {"kind", "codes", "years"}
                                 or spec["kind"] not in ("title", "grade")
                                 or int(spec["years"]) < 2):
            raise DefinitionError(f"{where}: consecutive needs history and kind (title|grade), "
                                  "codes, years ≥ 2")
        spec = rule.not_received
        if spec is not None and (rule.history is None or rule.consecutive is not None
                                 or not {"kind", "codes"} <= set(spec) <= {"kind", "codes",
                                                                          "years"}
                                 or spec["kind"] not in ("title", "commendation")):
            raise DefinitionError(f"{where}: not_received needs history and kind "
                                  "(title|commendation), codes, optional years")
    if rule.finding and rule.finding not in catalogue():
        raise DefinitionError(f"{where}: unknown finding {rule.finding!r}")
    rounding = rule.params.get("rounding")
    if rounding is not None and rounding not in ROUNDINGS:
        raise DefinitionError(f"{where}: unknown rounding {rounding!r}")
    return rule


def _legal_basis(layers: Sequence[Layer], day: dt.date) -> dict[str, str]:
    for layer in layers:
        for basis in layer.legal_basis:
            start, end = _window(basis, layer.path.name)
            if start <= day <= end:
                return {k: str(v) for k, v in basis.items() if k not in ("from", "to")}
    return {}


def year_end(school_year: str) -> dt.date:
    """The default date a school year is judged on: 25 May of its second calendar year."""
    return dt.date(int(school_year[:4]) + 1, 5, 25)


def load_rules(school_year: str, day: dt.date | None = None, *,
               province: str | Path = DEFAULT_PROVINCE, office: Path | None = None,
               options: Sequence[str] = (), directory: Path = settings.RULES_DIR) -> RuleSet:
    """The rules in force for a round of a school year on `day` (default: the year-end)."""
    day = day or year_end(school_year)
    layers = read_layers(province, office, directory)
    declared = {name for layer in layers for name in layer.options}
    unknown = sorted(set(options) - declared)
    if unknown:
        raise DefinitionError(f"Không có lựa chọn quy tắc {', '.join(unknown)} "
                              f"(có: {', '.join(sorted(declared)) or 'không'}).")
    rules, removed = rules_in_force(layers, day, options)
    provinces = [layer for layer in layers if layer.layer == "province"]
    name = provinces[-1].name
    version = f"{school_year}, quy định có hiệu lực ngày {day:%d/%m/%Y}, {name}"
    return RuleSet(school_year=school_year, date=day, province=name, version=version,
                   legal_basis=_legal_basis(layers, day), rules=rules,
                   options=tuple(options), sources=tuple(layer.name for layer in layers),
                   removed=removed)


def quota_limit(base: int, rule: Rule) -> int | None:
    """How many may hold the capped title, given how many reach the base title; None when no
    layer sets a share (no cap)."""
    if rule.params.get("share") is None:
        return None
    # Exact arithmetic: 20 × 15 % is 3, not 2.9999… or 3.0000…1 as in binary floating point.
    share = Fraction(str(rule.params["share"]))
    rounded = ROUNDINGS[rule.params.get("rounding") or "floor"](base * share)
    return max(int(rounded), int(rule.params.get("minimum") or 0)) if base else 0


_YEAR_FILE = re.compile(r"^(\d{4})-(\d{4})$")


def load_criteria(school_year: str, directory: Path = settings.CRITERIA_DIR
                  ) -> dict[str, list[dict[str, Any]]]:
    """The self-score criteria of each khối (key "default" for khối not listed): the file of
    the school year, or of the latest year before it (criteria stay until replaced)."""
    years = sorted(p.stem for p in directory.glob("*.yaml") if _YEAR_FILE.match(p.stem))
    usable = [y for y in years if y <= school_year]
    if not usable:
        raise DefinitionError(f"Chưa có tiêu chí thi đua cho năm học {school_year}.")
    path = directory / f"{usable[-1]}.yaml"
    raw = read_yaml(path)
    blocks = raw.get("blocks") or {}
    if "default" not in blocks:
        raise DefinitionError(f"{path.name}: needs a `default` list of criteria")
    return {str(block): [{"criterion": str(c["criterion"]), "max_score": c["max"]}
                         for c in items] for block, items in blocks.items()}


def block_criteria(criteria: dict[str, list[dict[str, Any]]], block: str
                   ) -> tuple[dict[str, Any], ...]:
    """The criteria rows of one khối, numbered, for a template."""
    rows = criteria.get(block, criteria["default"])
    return tuple({"seq": i, **row} for i, row in enumerate(rows, start=1))
