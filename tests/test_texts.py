"""The texts people read (texts.yaml): complete, Vietnamese, each one used."""

from __future__ import annotations

import re
import string
import unicodedata
from pathlib import Path

import pytest

import pipeline
from pipeline import settings
from pipeline.findings import DefinitionError
from pipeline.forms import template
from pipeline.forms.definitions import COLUMN_TYPES
from pipeline.status import STATUSES, Arrival, UnitStatus, Verdict, label, label_key
from pipeline.texts import lines, load_texts, render, text, texts

TEMPLATE_SOURCE = Path(template.__file__).read_text(encoding="utf-8")
SOURCES = {path: path.read_text(encoding="utf-8")
           for path in sorted(Path(pipeline.__file__).parent.rglob("*.py"))}
# How the code asks for a text of each section looked up by literal keys.
Q = "[\"']"  # a key is quoted either way
LOOKUPS = {
    "document": rf"\btext\(\"document\", {Q}([\w-]+){Q}\)",
    "reports": rf"\b(?:txt\(|(?:text|render)\(\"reports\", ){Q}([\w-]+){Q}",
    "cli": rf"\b(?:_say\(|(?:text|render)\(\"cli\", ){Q}([\w-]+){Q}",
    "inbox": rf"\b(?:text|render)\(\"inbox\", {Q}([\w-]+){Q}",
    "official": rf"\b(?:t\(|(?:text|render|lines)\(\"official\", ){Q}([\w-]+){Q}",
}


def test_texts_file_sits_beside_the_finding_catalogue():
    assert settings.TEXTS_PATH.parent == settings.CATALOGUE_PATH.parent
    assert settings.TEXTS_PATH.is_file()


def test_every_text_is_vietnamese_nfc():
    for section in load_texts().values():
        for value in section.values():
            for item in (value,) if isinstance(value, str) else value:
                assert item and unicodedata.is_normalized("NFC", item)


def test_template_texts_are_each_used_and_each_use_exists():
    keys = set(texts("template"))
    used = set(re.findall(r'_(?:t|paragraphs)\("(\w+)"\)', TEMPLATE_SOURCE))
    assert used <= keys, f"texts the template asks for but texts.yaml lacks: {used - keys}"
    unused = {k for k in keys if f'"{k}"' not in TEMPLATE_SOURCE}
    assert not unused, f"texts in texts.yaml the template never uses: {unused}"
    assert set(texts("template_types")) <= set(COLUMN_TYPES)
    assert "text" in texts("template_types")  # the fallback of a type not listed


@pytest.mark.parametrize("section", [*LOOKUPS, "status"])
def test_sections_of_shared_texts_are_nfc(section):
    for key, value in texts(section).items():
        assert isinstance(value, str) and value, key
        assert unicodedata.is_normalized("NFC", value), key


@pytest.mark.parametrize("section", LOOKUPS)
def test_shared_texts_are_each_used_and_each_use_exists(section):
    keys = set(texts(section))
    used = {key for source in SOURCES.values()
            for key in re.findall(LOOKUPS[section], source)}
    assert used <= keys, f"texts the code asks for but texts.yaml lacks: {used - keys}"
    assert keys <= used, f"texts in texts.yaml the code never uses: {keys - used}"


@pytest.mark.parametrize("section", ["reports", "cli"])
def test_placeholders_are_named(section):
    for key, value in texts(section).items():
        fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
        assert all(f.isidentifier() for f in fields), f"{section}.{key}: {fields}"


def test_every_status_has_one_label_and_every_label_a_status():
    codes = {label_key(code) for kind in STATUSES for code in kind}
    assert set(texts("status")) == codes
    assert label(UnitStatus.VALID) == "Hợp lệ"
    assert label(Verdict.OVER_QUOTA) == "Vượt hạn mức"
    assert label(Arrival.MISSING) == label(UnitStatus.MISSING) == "Chưa nộp"


def test_render_fills_named_placeholders():
    assert render("cli", "no_file", path="a.xlsx") == "Không tìm thấy tệp “a.xlsx”."
    assert render("cli", "findings_count", errors=2, warnings=0) == "Lỗi: 2; cảnh báo: 0."
    assert render("reports", "totals") == "Tổng cộng"  # no placeholder: the text itself
    with pytest.raises(DefinitionError):
        render("cli", "no_file")  # {path} has no value
    with pytest.raises(DefinitionError):
        render("cli", "findings_count", errors=1)
    with pytest.raises(DefinitionError):
        render("cli", "no_such_key", path="a.xlsx")
    with pytest.raises(DefinitionError):
        render("no_such_section", "no_file", path="a.xlsx")


def test_lookups():
    assert text("document", "nation") == "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
    assert lines("template", "guide_head")[0] == "TT"
    with pytest.raises(DefinitionError):
        text("template", "no_such_key")
    for section in ("document", "reports", "status", "cli"):
        with pytest.raises(DefinitionError):
            text(section, "no_such_key")
    with pytest.raises(DefinitionError):
        text("status", "UnitStatus.no_such_code")
    with pytest.raises(DefinitionError):
        texts("no_such_section")
    with pytest.raises(DefinitionError):
        text("template", "guide_steps")  # a list, not one text
    with pytest.raises(DefinitionError):
        lines("document", "nation")  # one text, not a list


@pytest.mark.parametrize("content", [
    "",
    "- a list\n",
    "template: just text\n",
    "template:\n  key: 3\n",
    "template:\n  key: ['ok', '']\n",
    "template:\n  key: \"Vie\u0302\u0323t\"\n",  # decomposed: not NFC
    "template: [unclosed\n",
])
def test_malformed_texts_file_is_our_mistake(tmp_path, content):
    path = tmp_path / "texts.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DefinitionError):
        load_texts(path)


def test_missing_texts_file_is_our_mistake(tmp_path):
    with pytest.raises(DefinitionError):
        load_texts(tmp_path / "texts.yaml")
