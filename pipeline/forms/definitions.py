"""Form definitions and vocabularies: YAML under schemas/ → frozen dataclasses → Pandera schema."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import settings
from pipeline.findings import DefinitionError, catalogue
from pipeline.text import fold, loose
from pipeline.yamlfile import read_yaml

COLUMN_TYPES = ("text", "choice", "date", "integer", "number", "email", "unit_code")
CHECK_KINDS = ("required_if", "unique", "not_above")


# Vocabularies


@dataclass(frozen=True)
class VocabValue:
    code: str
    label: str
    synonyms: tuple[str, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def abbr(self) -> str:
        """Short label for report headers."""
        return str(self.attrs.get("abbr", self.label))


@dataclass(frozen=True)
class Vocabulary:
    name: str
    label: str
    values: tuple[VocabValue, ...]
    citation: str = ""

    @functools.cached_property
    def exact(self) -> dict[str, str]:
        """Loose key (case, spaces, NFC) of the label, code and every synonym → code."""
        keys: dict[str, str] = {}
        for v in self.values:
            for text in (v.label, v.code, *v.synonyms):
                keys.setdefault(loose(text), v.code)
        return keys

    @functools.cached_property
    def folded(self) -> dict[str, str]:
        """Folded key (no diacritics) → code; only keys that name a single value."""
        seen: dict[str, set[str]] = {}
        for v in self.values:
            for text in (v.label, v.code, *v.synonyms):
                seen.setdefault(fold(text), set()).add(v.code)
        return {k: next(iter(codes)) for k, codes in seen.items() if len(codes) == 1}

    def by_code(self, code: str) -> VocabValue:
        """The value with this code."""
        return self._codes[code]

    @functools.cached_property
    def _codes(self) -> dict[str, VocabValue]:
        return {v.code: v for v in self.values}

    @property
    def codes(self) -> list[str]:
        """Every code, in definition order."""
        return [v.code for v in self.values]

    @property
    def labels(self) -> list[str]:
        """Every label, in definition order: what a dropdown offers."""
        return [v.label for v in self.values]

    def label_of(self, code: str) -> str:
        """The label shown for a code."""
        return self._codes[code].label


def _vocabulary(path: Path) -> Vocabulary:
    raw = read_yaml(path)
    try:
        values = tuple(
            VocabValue(
                code=str(v["code"]),
                label=str(v["label"]),
                synonyms=tuple(str(s) for s in v.get("synonyms") or ()),
                attrs={k: x for k, x in v.items() if k not in ("code", "label", "synonyms")},
            )
            for v in raw["values"]
        )
        vocab = Vocabulary(name=raw["name"], label=raw["label"], values=values,
                           citation=raw.get("citation", ""))
    except (KeyError, TypeError) as exc:
        raise DefinitionError(f"{path}: vocabulary is incomplete: {exc}") from exc
    if vocab.name != path.stem:
        raise DefinitionError(f"{path}: name {vocab.name!r} differs from the file name")
    if len(set(vocab.codes)) != len(vocab.codes):
        raise DefinitionError(f"{path}: duplicate codes")
    return vocab


def load_vocabularies(directory: Path = settings.VOCAB_DIR) -> dict[str, Vocabulary]:
    """Every vocabulary under schemas/vocab/, by name."""
    return {p.stem: _vocabulary(p) for p in sorted(directory.glob("*.yaml"))}


# Forms


@dataclass(frozen=True)
class Column:
    id: str
    header: str
    type: str = "text"
    required: bool = False
    aliases: tuple[str, ...] = ()
    choices: str | None = None
    min: float | None = None
    max: float | None = None
    width: float = 14
    help: str = ""
    locked: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        """The header and every alias: what the reader accepts as this column's header."""
        return (self.header, *self.aliases)


@dataclass(frozen=True)
class Check:
    check: str
    code: str
    column: str
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Derive:
    into: str
    source: str
    via: str | None = None
    attribute: str | None = None
    split: str | None = None
    choices: str | None = None


@dataclass(frozen=True)
class Sheet:
    id: str
    name: str
    columns: tuple[Column, ...]
    aliases: tuple[str, ...] = ()
    title: str = ""
    fields: tuple[Column, ...] = ()
    checks: tuple[Check, ...] = ()
    derive: tuple[Derive, ...] = ()
    header_rows: int = 1
    unit_from: str | None = None
    lacks: tuple[str, ...] = ()
    # A sheet a file may leave out (no missing-sheet finding).
    optional: bool = False
    # The sheet whose worksheet may also hold this one's table, as a part below or above it
    # (Part 2 "II. Tập thể" of the older list layout): see pipeline/ingest/sections.py.
    section_of: str | None = None

    def column(self, column_id: str) -> Column:
        """The column (or header field) with this id."""
        for c in (*self.columns, *self.fields):
            if c.id == column_id:
                return c
        raise KeyError(column_id)

    @property
    def column_ids(self) -> list[str]:
        """Ids of the table's columns, in template order."""
        return [c.id for c in self.columns]

    @property
    def names(self) -> tuple[str, ...]:
        """The sheet name and its aliases."""
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Form:
    form: str
    version: str
    title: str
    round: str
    sheets: tuple[Sheet, ...]
    current: bool = False
    layout: str = "template"
    path: str = ""

    def sheet(self, sheet_id: str) -> Sheet:
        """The sheet with this id."""
        for s in self.sheets:
            if s.id == sheet_id:
                return s
        raise KeyError(sheet_id)

    def has_sheet(self, sheet_id: str) -> bool:
        """Whether the form has a sheet with this id."""
        return any(s.id == sheet_id for s in self.sheets)

    @property
    def key(self) -> str:
        """"dang-ky 2025.1"."""
        return f"{self.form} {self.version}"


def _column(raw: dict[str, Any], where: str, vocabs: dict[str, Vocabulary]) -> Column:
    raw = dict(raw)
    if "label" in raw:  # header fields are written with `label`
        raw["header"] = raw.pop("label")
    unknown = set(raw) - set(Column.__dataclass_fields__)
    if unknown:
        raise DefinitionError(f"{where}: unknown keys {sorted(unknown)}")
    if raw.get("type", "text") not in COLUMN_TYPES:
        raise DefinitionError(f"{where}: unknown column type {raw.get('type')!r}")
    if raw.get("type") == "choice" and raw.get("choices") not in vocabs:
        raise DefinitionError(f"{where}: unknown choices list {raw.get('choices')!r}")
    raw["aliases"] = tuple(str(a) for a in raw.get("aliases") or ())
    return Column(**raw)


def _check(raw: dict[str, Any], where: str, column_ids: set[str]) -> Check:
    raw = dict(raw)
    kind, code, column = raw.pop("check", None), raw.pop("code", None), raw.pop("column", None)
    if kind not in CHECK_KINDS:
        raise DefinitionError(f"{where}: unknown check {kind!r}; known: {CHECK_KINDS}")
    if code not in catalogue():
        raise DefinitionError(f"{where}: finding code {code!r} is not in the catalogue")
    named = {column, raw.get("when_column"), raw.get("other"), *raw.get("columns", ())} - {None}
    if not named <= column_ids:
        raise DefinitionError(f"{where}: check names unknown columns {sorted(named - column_ids)}")
    return Check(check=kind, code=code, column=column, params=raw)


def _sheet(raw: dict[str, Any], where: str, vocabs: dict[str, Vocabulary]) -> Sheet:
    where = f"{where} sheet {raw.get('id')!r}"
    columns = tuple(_column(c, where, vocabs) for c in raw.get("columns", ()))
    fields_ = tuple(_column(c, where, vocabs) for c in raw.get("fields", ()))
    ids = [c.id for c in columns] + [f.id for f in fields_]
    if len(set(ids)) != len(ids):
        raise DefinitionError(f"{where}: duplicate column ids")
    derive = tuple(Derive(**d) for d in raw.get("derive", ()))
    for d in derive:
        for name in (d.via, d.choices):
            if name and name not in vocabs:
                raise DefinitionError(f"{where}: derive uses unknown list {name!r}")
    known = set(ids) | {d.into for d in derive}
    checks = tuple(_check(c, where, known) for c in raw.get("checks", ()))
    return Sheet(
        id=raw["id"], name=raw["name"], columns=columns, fields=fields_, checks=checks,
        aliases=tuple(raw.get("aliases", ())), title=raw.get("title", ""), derive=derive,
        header_rows=int(raw.get("header_rows", 1)), unit_from=raw.get("unit_from"),
        lacks=tuple(raw.get("lacks", ())), optional=bool(raw.get("optional", False)),
        section_of=raw.get("section_of"),
    )


def load_form(path: Path, vocabs: dict[str, Vocabulary]) -> Form:
    """One form definition, checked against the vocabularies and the finding catalogue."""
    raw = read_yaml(path)
    where = str(path.name)
    try:
        sheets = tuple(_sheet(s, where, vocabs) for s in raw["sheets"])
        return Form(form=raw["form"], version=str(raw["version"]), title=raw["title"],
                    round=raw["round"], sheets=sheets, current=bool(raw.get("current")),
                    layout=raw.get("layout", "template"), path=str(path))
    except (KeyError, TypeError) as exc:
        raise DefinitionError(f"{path}: form definition is incomplete: {exc}") from exc


@dataclass(frozen=True)
class FormSet:
    """Every form version and the vocabularies they draw on."""

    forms: tuple[Form, ...]
    vocabs: dict[str, Vocabulary] = field(hash=False, compare=False)

    def get(self, form: str, version: str) -> Form | None:
        """The form with this id and version, if defined."""
        return next((f for f in self.forms if f.form == form and f.version == version), None)

    def current(self, form: str) -> Form:
        """The version schools should use now."""
        for f in self.forms:
            if f.form == form and f.current:
                return f
        raise DefinitionError(f"no current version of form {form!r}")

    def versions(self, form: str) -> list[Form]:
        """Every version of a form, the current one first."""
        return sorted((f for f in self.forms if f.form == form), key=lambda f: not f.current)

    def sheet_names(self, form_ids: str | tuple[str, ...]) -> frozenset[str]:
        """The folded names and aliases of every sheet of every version of these forms."""
        ids = (form_ids,) if isinstance(form_ids, str) else form_ids
        return frozenset(fold(name) for f in self.forms if f.form in ids
                         for sheet in f.sheets for name in sheet.names)


def load_forms(forms_dir: Path = settings.FORMS_DIR,
               vocab_dir: Path = settings.VOCAB_DIR) -> FormSet:
    """Every form under schemas/forms/<form>/<version>.yaml, checked at load time."""
    vocabs = load_vocabularies(vocab_dir)
    forms = tuple(load_form(p, vocabs) for p in sorted(forms_dir.glob("*/*.yaml")))
    for f in forms:
        if Path(f.path).parent.name != f.form:
            raise DefinitionError(f"{f.path}: form {f.form!r} is not in a folder of that name")
        ids = {sheet.id for sheet in f.sheets}
        for sheet in f.sheets:
            if sheet.section_of is not None and sheet.section_of not in ids - {sheet.id}:
                raise DefinitionError(f"{f.path}: sheet {sheet.id!r} is a section of an "
                                      f"unknown sheet {sheet.section_of!r}")
    currents = [f.form for f in forms if f.current]
    if len(currents) != len(set(currents)):
        raise DefinitionError("a form has more than one current version")
    return FormSet(forms=forms, vocabs=vocabs)
