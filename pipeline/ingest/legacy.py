"""Detect and repair Vietnamese text typed in legacy 8-bit encodings.

Schools often paste text typed with TCVN3 (ABC, fonts ``.VnTime``/``.VnArial``) or
VNI-Windows (fonts ``VNI-Times``) into Excel.  Read by a modern reader, such text shows
up as Latin-1 "glyph soup": ``"Lao ®éng tiªn tiÕn"`` (TCVN3) or ``"Lao ñoäng tieân
tieán"`` (VNI) instead of ``"Lao động tiên tiến"``.

Tables
------
* ``TCVN3_TO_UNICODE``: the TCVN 5712:1993 "VN3" repertoire used by ABC fonts -- all 67
  lowercase modified/toned letters plus the 7 uppercase letters ``Ă Â Ê Ô Ơ Ư Đ``.  VN3
  has no codes for uppercase toned letters (the ``.VnTimeH`` capital fonts reuse the
  lowercase codes), so those decode to lowercase; see ``_decode_tcvn3_word`` for the
  all-caps heuristic.  Verified against GNU libiconv ``tcvn.h`` (0xA1-0xFE) and the
  tables of duydev/vietnamese-conversion.
* ``VNI_TO_UNICODE``: VNI-Windows, base letter followed by a mark glyph, 134 letters.
  Verified against duydev/vietnamese-conversion and becagis ``Att_FontConvert.py``.

Detection is conservative and word based: a candidate decoding is accepted only when it
turns more words into valid Vietnamese syllables than were valid before.
"""

from __future__ import annotations

import functools
import re
import unicodedata

__all__ = [
    "TCVN3_TO_UNICODE",
    "VNI_TO_UNICODE",
    "decode_legacy",
    "detect_legacy",
    "fix_legacy",
]

# fmt: off
TCVN3_TO_UNICODE: dict[str, str] = {
    "µ": "à", "¸": "á", "¶": "ả", "·": "ã", "¹": "ạ",
    "¨": "ă", "»": "ằ", "¾": "ắ", "¼": "ẳ", "½": "ẵ", "Æ": "ặ",
    "©": "â", "Ç": "ầ", "Ê": "ấ", "È": "ẩ", "É": "ẫ", "Ë": "ậ",
    "Ì": "è", "Ð": "é", "Î": "ẻ", "Ï": "ẽ", "Ñ": "ẹ",
    "ª": "ê", "Ò": "ề", "Õ": "ế", "Ó": "ể", "Ô": "ễ", "Ö": "ệ",
    "×": "ì", "Ý": "í", "Ø": "ỉ", "Ü": "ĩ", "Þ": "ị",
    "ß": "ò", "ã": "ó", "á": "ỏ", "â": "õ", "ä": "ọ",
    "«": "ô", "å": "ồ", "è": "ố", "æ": "ổ", "ç": "ỗ", "é": "ộ",
    "¬": "ơ", "ê": "ờ", "í": "ớ", "ë": "ở", "ì": "ỡ", "î": "ợ",
    "ï": "ù", "ó": "ú", "ñ": "ủ", "ò": "ũ", "ô": "ụ",
    "\xad": "ư", "õ": "ừ", "ø": "ứ", "ö": "ử", "÷": "ữ", "ù": "ự",  # ư is U+00AD soft hyphen
    "ú": "ỳ", "ý": "ý", "û": "ỷ", "ü": "ỹ", "þ": "ỵ",
    "®": "đ",
    "¡": "Ă", "¢": "Â", "£": "Ê", "¤": "Ô", "¥": "Ơ", "¦": "Ư", "§": "Đ",
}

VNI_TO_UNICODE: dict[str, str] = {
    "aø": "à", "aù": "á", "aû": "ả", "aõ": "ã", "aï": "ạ",
    "AØ": "À", "AÙ": "Á", "AÛ": "Ả", "AÕ": "Ã", "AÏ": "Ạ",
    "aê": "ă", "aè": "ằ", "aé": "ắ", "aú": "ẳ", "aü": "ẵ", "aë": "ặ",
    "AÊ": "Ă", "AÈ": "Ằ", "AÉ": "Ắ", "AÚ": "Ẳ", "AÜ": "Ẵ", "AË": "Ặ",
    "aâ": "â", "aà": "ầ", "aá": "ấ", "aå": "ẩ", "aã": "ẫ", "aä": "ậ",
    "AÂ": "Â", "AÀ": "Ầ", "AÁ": "Ấ", "AÅ": "Ẩ", "AÃ": "Ẫ", "AÄ": "Ậ",
    "eø": "è", "eù": "é", "eû": "ẻ", "eõ": "ẽ", "eï": "ẹ",
    "EØ": "È", "EÙ": "É", "EÛ": "Ẻ", "EÕ": "Ẽ", "EÏ": "Ẹ",
    "eâ": "ê", "eà": "ề", "eá": "ế", "eå": "ể", "eã": "ễ", "eä": "ệ",
    "EÂ": "Ê", "EÀ": "Ề", "EÁ": "Ế", "EÅ": "Ể", "EÃ": "Ễ", "EÄ": "Ệ",
    "ì": "ì", "í": "í", "æ": "ỉ", "ó": "ĩ", "ò": "ị",
    "Ì": "Ì", "Í": "Í", "Æ": "Ỉ", "Ó": "Ĩ", "Ò": "Ị",
    "oø": "ò", "où": "ó", "oû": "ỏ", "oõ": "õ", "oï": "ọ",
    "OØ": "Ò", "OÙ": "Ó", "OÛ": "Ỏ", "OÕ": "Õ", "OÏ": "Ọ",
    "oâ": "ô", "oà": "ồ", "oá": "ố", "oå": "ổ", "oã": "ỗ", "oä": "ộ",
    "OÂ": "Ô", "OÀ": "Ồ", "OÁ": "Ố", "OÅ": "Ổ", "OÃ": "Ỗ", "OÄ": "Ộ",
    "ô": "ơ", "ôø": "ờ", "ôù": "ớ", "ôû": "ở", "ôõ": "ỡ", "ôï": "ợ",
    "Ô": "Ơ", "ÔØ": "Ờ", "ÔÙ": "Ớ", "ÔÛ": "Ở", "ÔÕ": "Ỡ", "ÔÏ": "Ợ",
    "uø": "ù", "uù": "ú", "uû": "ủ", "uõ": "ũ", "uï": "ụ",
    "UØ": "Ù", "UÙ": "Ú", "UÛ": "Ủ", "UÕ": "Ũ", "UÏ": "Ụ",
    "ö": "ư", "öø": "ừ", "öù": "ứ", "öû": "ử", "öõ": "ữ", "öï": "ự",
    "Ö": "Ư", "ÖØ": "Ừ", "ÖÙ": "Ứ", "ÖÛ": "Ử", "ÖÕ": "Ữ", "ÖÏ": "Ự",
    "yø": "ỳ", "yù": "ý", "yû": "ỷ", "yõ": "ỹ", "î": "ỵ",
    "YØ": "Ỳ", "YÙ": "Ý", "YÛ": "Ỷ", "YÕ": "Ỹ", "Î": "Ỵ",
    "ñ": "đ", "Ñ": "Đ",
}

_ONSETS: tuple[str, ...] = (
    "ngh", "ng", "nh", "ch", "gh", "gi", "kh", "ph", "qu", "th", "tr", "b", "c", "d",
    "đ", "g", "h", "k", "l", "m", "n", "p", "q", "r", "s", "t", "v", "x",
)
_RHYMES: tuple[str, ...] = (
    "a", "ac", "ach", "ai", "am", "an", "ang", "anh", "ao", "ap", "at", "au", "ay", "ăc", "ăm",
    "ăn", "ăng", "ăp", "ăt", "âc", "âm", "ân", "âng", "âp", "ât", "âu", "ây", "e", "ec", "em",
    "en", "eng", "eo", "ep", "et", "ê", "êch", "êm", "ên", "ênh", "êp", "êt", "êu", "i", "ia",
    "ich", "im", "in", "inh", "ip", "it", "iu", "iêc", "iêm", "iên", "iêng", "iêp", "iêt",
    "iêu", "o", "oc", "oi", "om", "on", "ong", "op", "ot", "ooc", "oong", "oa", "oac", "oach",
    "oai", "oam", "oan", "oang", "oanh", "oao", "oap", "oat", "oay", "oăc", "oăm", "oăn",
    "oăng", "oăt", "oe", "oen", "oeo", "oet", "ô", "ôc", "ôi", "ôm", "ôn", "ông", "ôp", "ôt",
    "ơ", "ơi", "ơm", "ơn", "ơp", "ơt", "u", "uc", "ui", "um", "un", "ung", "up", "ut", "ua",
    "uân", "uâng", "uât", "uây", "uê", "uêch", "uênh", "uôc", "uôi", "uôm", "uôn", "uông",
    "uôt", "uơ", "uy", "uya", "uych", "uyên", "uyêt", "uynh", "uyt", "uyu", "ư", "ưa", "ưc",
    "ưi", "ưm", "ưng", "ưt", "ưu", "ươc", "ươi", "ươm", "ươn", "ương", "ươp", "ươt", "ươu",
    "y", "yêm", "yên", "yêng", "yêt", "yêu",
)
# fmt: on

_CANONICAL = {
    "TCVN3": "TCVN3", "TCVN": "TCVN3", "ABC": "TCVN3",
    "VNI": "VNI", "VNI-WIN": "VNI", "VNI-WINDOWS": "VNI",
}  # fmt: skip

_TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")  # grave acute tilde hook dot
_STOP_FORBIDDEN_TONES = frozenset("\u0300\u0303\u0309")  # not allowed before -p -t -c -ch
_SYLLABLE_RE = re.compile(
    "(?:" + "|".join(sorted(_ONSETS, key=len, reverse=True)) + ")?"
    "(?:" + "|".join(sorted(_RHYMES, key=len, reverse=True)) + ")"
)
# A "word": letters plus every Latin-1 glyph (TCVN3 uses ® ¬ « × ÷ \xad ... as letters).
_TOKEN_RE = re.compile(r"(?:[^\W\d_]|[\u00a1-\u00ff])+")
_LATIN1_HIGH_RE = re.compile(r"[\u00a1-\u00ff]")
# Letters/marks that only genuine Unicode Vietnamese has: never produced by legacy glyphs.
_GENUINE_VI_RE = re.compile("[ĂăĐđĨĩŨũƠơƯư\u1ea0-\u1ef9\u0300-\u036f]")
_ASCII_LETTER_RE = re.compile("[A-Za-z]")
_ASCII_LOWER_RE = re.compile("[a-z]")

_TCVN3_TABLE = str.maketrans(TCVN3_TO_UNICODE)
_TCVN3_UPPER_CODES = frozenset("¡¢£¤¥¦§")
_VNI_RE = re.compile("|".join(re.escape(k) for k in sorted(VNI_TO_UNICODE, key=len, reverse=True)))
_VNI_GLYPHS = frozenset(ch for key in VNI_TO_UNICODE for ch in key if ord(ch) > 0x7F)
_TCVN3_ONLY = frozenset(TCVN3_TO_UNICODE) - _VNI_GLYPHS
_VNI_ONLY = _VNI_GLYPHS - frozenset(TCVN3_TO_UNICODE)


def _canonical_encoding(encoding: str) -> str:
    try:
        return _CANONICAL[encoding.strip().upper().replace("_", "-")]
    except KeyError:
        raise ValueError(f"unknown legacy encoding: {encoding!r} (use 'TCVN3' or 'VNI')") from None


def _is_syllable(word: str) -> bool:
    """True when ``word`` is a well-formed (toned) Vietnamese syllable."""
    decomposed = unicodedata.normalize("NFD", word.lower())
    tones = [ch for ch in decomposed if ch in _TONE_MARKS]
    if len(tones) > 1:
        return False
    base = unicodedata.normalize("NFC", "".join(ch for ch in decomposed if ch not in _TONE_MARKS))
    if _SYLLABLE_RE.fullmatch(base) is None:
        return False
    # Syllables closed by a stop consonant only take the sắc or nặng tone.
    stop_coda = base.endswith(("p", "t", "c", "ch"))
    return not (stop_coda and tones and tones[0] in _STOP_FORBIDDEN_TONES)


def _decode_tcvn3_word(word: str) -> str:
    """Decode one TCVN3 word, restoring capitals in all-caps words.

    VN3 has no uppercase toned letters, so "TRƯỜNG" typed in TCVN3 becomes ``"TR¦êNG"``.
    A word with no ASCII lowercase letter and at least two capitals (ASCII or one of the
    seven VN3 capitals) is treated as all-caps and upper-cased after decoding.
    """
    decoded = word.translate(_TCVN3_TABLE)
    capitals = sum(1 for ch in word if "A" <= ch <= "Z" or ch in _TCVN3_UPPER_CODES)
    if capitals >= 2 and _ASCII_LOWER_RE.search(word) is None:
        decoded = decoded.upper()
    return decoded


def _decode_vni(text: str) -> str:
    # The alternation lists longer keys first, so "ôø" (ờ) wins over "ô" (ơ) + "ø".
    return _VNI_RE.sub(lambda match: VNI_TO_UNICODE[match.group()], text)


def decode_legacy(text: str, encoding: str) -> str:
    """Convert legacy glyph text to Unicode NFC Vietnamese.

    ``encoding`` is ``"TCVN3"`` (aliases ``"ABC"``, ``"TCVN"``) or ``"VNI"`` (aliases
    ``"VNI-WIN"``, ``"VNI-Windows"``), case-insensitive.  Characters that are not part of
    the legacy table are left untouched.  Raises ``ValueError`` for other encodings.
    """
    if _canonical_encoding(encoding) == "TCVN3":
        decoded = _TOKEN_RE.sub(lambda match: _decode_tcvn3_word(match.group()), text)
    else:
        decoded = _decode_vni(text)
    return unicodedata.normalize("NFC", decoded)


def _score(text: str, encoding: str) -> tuple[int, int, int]:
    """Return ``(changed, valid_before, valid_after)`` over words the decoding changes.

    Only words containing an ASCII letter count: lone glyphs such as ``«`` or ``©``
    are too weak to be evidence either way.
    """
    changed = valid_before = valid_after = 0
    for match in _TOKEN_RE.finditer(text):
        word = match.group()
        if _ASCII_LETTER_RE.search(word) is None:
            continue
        decoded = _decode_tcvn3_word(word) if encoding == "TCVN3" else _decode_vni(word)
        if decoded == word:
            continue
        changed += 1
        valid_before += _is_syllable(word)
        valid_after += _is_syllable(decoded)
    return changed, valid_before, valid_after


def detect_legacy(text: str) -> str | None:
    """Return "TCVN3" or "VNI" when the text looks like legacy-encoded Vietnamese, else None.

    Conservative by design:

    * text without Latin-1 glyphs (U+00A1-U+00FF), or containing any letter or combining
      mark that only genuine Unicode Vietnamese uses (``ạ ấ ơ ư đ`` ...), is never flagged;
    * each encoding is tried on every word it would change; it is a candidate only if the
      decoded words contain strictly more valid Vietnamese syllables than the originals,
      and at least half of the changed words decode to valid syllables.  Correct Unicode
      Vietnamese is already all-valid, so it can never gain;
    * the candidate with the larger gain wins; on a tie, characters that only one table
      uses decide, otherwise the text is ambiguous and None is returned.
    """
    if not text or _LATIN1_HIGH_RE.search(text) is None or _GENUINE_VI_RE.search(text):
        return None
    gains: dict[str, int] = {}
    for encoding in ("TCVN3", "VNI"):
        changed, valid_before, valid_after = _score(text, encoding)
        if valid_after > valid_before and 2 * valid_after >= changed:
            gains[encoding] = valid_after - valid_before
    if len(gains) < 2:
        return next(iter(gains), None)
    if gains["TCVN3"] != gains["VNI"]:
        return max(gains, key=gains.__getitem__)
    tcvn3_only = sum(ch in _TCVN3_ONLY for ch in text)
    vni_only = sum(ch in _VNI_ONLY for ch in text)
    if tcvn3_only == vni_only:
        return None
    return "TCVN3" if tcvn3_only > vni_only else "VNI"


@functools.lru_cache(maxsize=1 << 16)
def fix_legacy(text: str) -> tuple[str, str | None]:
    """Return (converted_text_NFC, encoding_name) or (text, None) when nothing to convert."""
    encoding = detect_legacy(text)
    if encoding is None:
        return text, None
    return decode_legacy(text, encoding), encoding
