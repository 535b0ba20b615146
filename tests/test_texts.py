"""The texts written into workbooks (texts.yaml): complete, Vietnamese, each one used."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from pipeline import settings
from pipeline.findings import DefinitionError
from pipeline.forms import template
from pipeline.forms.definitions import COLUMN_TYPES
from pipeline.texts import lines, load_texts, text, texts

TEMPLATE_SOURCE = Path(template.__file__).read_text(encoding="utf-8")


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


def test_lookups():
    assert text("template", "nation") == "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
    assert lines("template", "guide_head")[0] == "TT"
    with pytest.raises(DefinitionError):
        text("template", "no_such_key")
    with pytest.raises(DefinitionError):
        texts("no_such_section")
    with pytest.raises(DefinitionError):
        text("template", "guide_steps")  # a list, not one text
    with pytest.raises(DefinitionError):
        lines("template", "nation")  # one text, not a list


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
