"""Vietnamese text helpers: NFC, folding for matching, name sort keys, safe cell text."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_SPACES = re.compile(r"\s+")
_CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)
_PUNCT = re.compile(r"[^\w&%/+-]+")

# Vietnamese alphabetical order; tones sort after letters.
_ALPHABET = "aăâbcdđeêghiklmnoôơpqrstuưvxy"
_LETTER_RANK = {ch: i for i, ch in enumerate(_ALPHABET)}
# Dictionary order of tones: ngang, huyền, hỏi, ngã, sắc, nặng.
_TONES = {"\u0300": 1, "\u0309": 2, "\u0303": 3, "\u0301": 4, "\u0323": 5}
_BASE_MARKS = {"\u0306", "\u0302", "\u031b"}  # breve, circumflex, horn are part of the letter


def nfc(text: str) -> str:
    """The text in Unicode NFC."""
    return unicodedata.normalize("NFC", text)


# The same few thousand strings (headers, labels, names) come back in every file: the pure
# text functions below remember their recent answers.
_CACHE = 1 << 16


@lru_cache(maxsize=_CACHE)
def clean(text: str) -> str:
    """NFC text without control or direction characters, spaces collapsed, trimmed."""
    return _SPACES.sub(" ", _CONTROL.sub("", nfc(text))).strip()


@lru_cache(maxsize=_CACHE)
def fold(text: str) -> str:
    """Matching key: lower case, no diacritics (đ → d), punctuation and spaces collapsed."""
    decomposed = unicodedata.normalize("NFD", clean(text).lower().replace("đ", "d"))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", _PUNCT.sub(" ", stripped)).strip()


@lru_cache(maxsize=_CACHE)
def loose(text: str) -> str:
    """Matching key that keeps diacritics: NFC, lower case, spaces collapsed."""
    return clean(text).lower()


def visible(text: str) -> str:
    """The text without control or direction characters (spacing and lines kept as typed)."""
    return _CONTROL.sub("", text)


def has_control(text: str) -> bool:
    """Whether the text holds control or direction characters."""
    return bool(_CONTROL.search(text))


def _letter_key(word: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    letters: list[int] = []
    tones: list[int] = []
    for ch in unicodedata.normalize("NFD", word.lower()):
        if ch in _TONES:
            tones.append(_TONES[ch])
            continue
        if ch in _BASE_MARKS and letters:
            base = unicodedata.normalize("NFC", _ALPHABET[letters[-1]] + ch)
            if base in _LETTER_RANK:
                letters[-1] = _LETTER_RANK[base]
            continue
        if unicodedata.combining(ch):
            continue
        letters.append(_LETTER_RANK.get(ch, 100 + ord(ch)))
    return tuple(letters), tuple(tones)


@lru_cache(maxsize=_CACHE)
def name_sort_key(full_name: str) -> tuple:
    """Vietnamese list order: by given name (last word), then the rest, letters before tones."""
    words = clean(full_name).split(" ")
    given, rest = words[-1], words[:-1]
    # The given name decides first (its letters, then its tones), then each other word.
    return tuple(_letter_key(w) for w in [given, *rest])


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet would take this text as a formula if written naively."""
    return text.startswith(_FORMULA_START)
