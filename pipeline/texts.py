"""The Vietnamese texts people read (workbooks, status labels, command-line messages), from
texts.yaml beside findings.yaml.

The file is read once; a missing section or key is a DefinitionError (our mistake, not a
school's), raised when the file is loaded (malformed entries) or when a text is looked up.
A text with {named} placeholders is filled with `render`.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import yaml

from pipeline import settings
from pipeline.findings import DefinitionError
from pipeline.yamlfile import read_yaml

# One text, or a list of texts (paragraphs, one cell each).
Text = str | tuple[str, ...]


@functools.cache
def load_texts(path: Path = settings.TEXTS_PATH) -> Mapping[str, Mapping[str, Text]]:
    """Every section of the texts file (section → key → text), checked and read-only."""
    try:
        raw = read_yaml(path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DefinitionError(f"{path}: cannot be read: {exc}") from exc
    if not isinstance(raw, dict) or not raw:
        raise DefinitionError(f"{path}: expected a mapping of sections")
    sections: dict[str, Mapping[str, Text]] = {}
    for section, entries in raw.items():
        if not isinstance(entries, dict) or not entries:
            raise DefinitionError(f"{path}: section {section!r} must map keys to texts")
        sections[str(section)] = MappingProxyType(
            {str(key): _checked(path, f"{section}.{key}", value) for key, value in entries.items()})
    return MappingProxyType(sections)


def _checked(path: Path, name: str, value: object) -> Text:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) and item for item in items):
        raise DefinitionError(f"{path}: {name} must be a non-empty text or a list of texts")
    if not all(unicodedata.is_normalized("NFC", item) for item in items):
        raise DefinitionError(f"{path}: {name} is not in Unicode NFC")
    return tuple(items) if isinstance(value, list) else items[0]


def texts(section: str) -> Mapping[str, Text]:
    """All texts of one section, by key."""
    try:
        return load_texts()[section]
    except KeyError:
        raise DefinitionError(f"{settings.TEXTS_PATH}: no section {section!r}") from None


def _entry(section: str, key: str) -> Text:
    try:
        return texts(section)[key]
    except KeyError:
        raise DefinitionError(f"{settings.TEXTS_PATH}: no text {section}.{key}") from None


def text(section: str, key: str) -> str:
    """One text, e.g. text("template", "nation")."""
    value = _entry(section, key)
    if not isinstance(value, str):
        raise DefinitionError(f"{settings.TEXTS_PATH}: {section}.{key} is a list, not one text")
    return value


def render(section: str, key: str, **values: object) -> str:
    """One text with its {named} placeholders filled by str.format, e.g.
    render("cli", "no_file", path=path); a placeholder without a value is a DefinitionError."""
    template = text(section, key)
    try:
        return template.format(**values)
    except KeyError as exc:
        raise DefinitionError(f"{settings.TEXTS_PATH}: {section}.{key} needs a value for "
                              f"{{{exc.args[0]}}}") from None
    except (IndexError, ValueError) as exc:  # {} or {0}, or a malformed placeholder
        raise DefinitionError(f"{settings.TEXTS_PATH}: {section}.{key}: {exc}") from None


def lines(section: str, key: str) -> tuple[str, ...]:
    """A list of texts (one per cell or paragraph), e.g. lines("template", "guide_steps")."""
    value = _entry(section, key)
    if isinstance(value, str):
        raise DefinitionError(f"{settings.TEXTS_PATH}: {section}.{key} is one text, not a list")
    return value
