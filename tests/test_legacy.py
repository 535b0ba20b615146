"""Tests for pipeline.ingest.legacy: TCVN3 (ABC) / VNI-Windows glyph soup → Unicode NFC."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.ingest.legacy import (
    TCVN3_TO_UNICODE,
    VNI_TO_UNICODE,
    decode_legacy,
    detect_legacy,
    fix_legacy,
)

UNICODE_TO_TCVN3 = {uni: code for code, uni in TCVN3_TO_UNICODE.items()}
UNICODE_TO_VNI = {uni: code for code, uni in VNI_TO_UNICODE.items()}

# The 67 lowercase letters with a diacritic; with their capitals and đ/Đ: 134 letters.
LOWER_DIACRITIC = "àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ"


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def to_tcvn3(text: str) -> str:
    return "".join(UNICODE_TO_TCVN3.get(ch, ch) for ch in nfc(text))


def to_vni(text: str) -> str:
    return "".join(UNICODE_TO_VNI.get(ch, ch) for ch in nfc(text))


# --- tables -------------------------------------------------------------------------------


def test_tcvn3_table_is_the_vn3_repertoire() -> None:
    assert len(TCVN3_TO_UNICODE) == 74
    assert set(TCVN3_TO_UNICODE.values()) == set(LOWER_DIACRITIC) | set("ĂÂÊÔƠƯĐ")
    assert all(0xA1 <= ord(code) <= 0xFE for code in TCVN3_TO_UNICODE)
    assert TCVN3_TO_UNICODE["\xad"] == "ư"  # U+00AD soft hyphen carries ư


def test_vni_table_covers_all_134_letters() -> None:
    letters = set(LOWER_DIACRITIC) | set(LOWER_DIACRITIC.upper())
    assert len(letters) == 134
    assert len(VNI_TO_UNICODE) == 134
    assert set(VNI_TO_UNICODE.values()) == letters


@pytest.mark.parametrize(
    ("legacy", "unicode"),
    [("µ¸¶·¹", "àáảãạ"), ("¨»¾¼½Æ", "ăằắẳẵặ"), ("©ÇÊÈÉË", "âầấẩẫậ"), ("ÌÐÎÏÑ", "èéẻẽẹ"),
     ("ªÒÕÓÔÖ", "êềếểễệ"), ("×ÝØÜÞ", "ìíỉĩị"), ("ßãáâä", "òóỏõọ"), ("«åèæçé", "ôồốổỗộ"),
     ("¬êíëìî", "ơờớởỡợ"), ("ïóñòô", "ùúủũụ"), ("\xadõøö÷ù", "ưừứửữự"), ("úýûüþ", "ỳýỷỹỵ"),
     ("® ¡¢£¤¥¦§", "đ ĂÂÊÔƠƯĐ")],
)  # fmt: skip
def test_tcvn3_rows(legacy: str, unicode: str) -> None:
    assert decode_legacy(legacy, "TCVN3") == unicode


@pytest.mark.parametrize(
    ("legacy", "unicode"),
    [("aø aù aû aõ aï", "à á ả ã ạ"), ("aê aè aé aú aü aë", "ă ằ ắ ẳ ẵ ặ"),
     ("eâ eà eá eå eã eä", "ê ề ế ể ễ ệ"), ("ì í æ ó ò î", "ì í ỉ ĩ ị ỵ"),
     ("ô ôø ôù ôû ôõ ôï", "ơ ờ ớ ở ỡ ợ"), ("ö öø öù öû öõ öï", "ư ừ ứ ử ữ ự"),
     ("OÂ OÀ OÁ OÅ OÃ OÄ", "Ô Ồ Ố Ổ Ỗ Ộ"), ("ñ Ñ Ô Ö Î", "đ Đ Ơ Ư Ỵ")],
)  # fmt: skip
def test_vni_rows(legacy: str, unicode: str) -> None:
    assert decode_legacy(legacy, "VNI") == unicode


# --- hand-checked literal strings ---------------------------------------------------------

TCVN3_LITERALS = [
    ("Lao ®éng tiªn tiÕn", "Lao động tiên tiến"),
    ("ChiÕn sÜ thi ®ua c¬ së", "Chiến sĩ thi đua cơ sở"),
    ("Gi¸o viªn", "Giáo viên"),
    ("HiÖu tr\xadëng", "Hiệu trưởng"),
    ("Phã HiÖu tr\xadëng", "Phó Hiệu trưởng"),
    ("Tr\xadêng TiÓu häc", "Trường Tiểu học"),
    ("NguyÔn ThÞ H\xad¬ng", "Nguyễn Thị Hương"),
    ("§oµn Thanh niªn", "Đoàn Thanh niên"),
    ("T«i ®i häc", "Tôi đi học"),
    ("Xin chµo c¸c b¹n", "Xin chào các bạn"),
    ("TiÕng ViÖt rÊt hay", "Tiếng Việt rất hay"),
    ("Thµnh phè Hå ChÝ Minh", "Thành phố Hồ Chí Minh"),
    ("B¶o Th¾ng, M\xadêng Kh\xad¬ng, B¸t X¸t", "Bảo Thắng, Mường Khương, Bát Xát"),
    ("TR¦êNG TIÓU HäC", "TRƯỜNG TIỂU HỌC"),  # all caps: VN3 has no capital toned letters
]

VNI_LITERALS = [
    ("Lao ñoäng tieân tieán", "Lao động tiên tiến"),
    ("Chieán só thi ñua cô sôû", "Chiến sĩ thi đua cơ sở"),
    ("Giaùo vieân", "Giáo viên"),
    ("Hieäu tröôûng", "Hiệu trưởng"),
    ("Phoù Hieäu tröôûng", "Phó Hiệu trưởng"),
    ("Tröôøng Tieåu hoïc", "Trường Tiểu học"),
    ("Nguyeãn Thò Höông", "Nguyễn Thị Hương"),
    ("Ñoaøn Thanh nieân", "Đoàn Thanh niên"),
    ("Toâi ñi hoïc", "Tôi đi học"),
    ("Xin chaøo caùc baïn", "Xin chào các bạn"),
    ("Tieáng Vieät raát hay", "Tiếng Việt rất hay"),
    ("TRÖÔØNG TIEÅU HOÏC", "TRƯỜNG TIỂU HỌC"),
]


@pytest.mark.parametrize(("legacy", "expected"), TCVN3_LITERALS)
def test_tcvn3_literals(legacy: str, expected: str) -> None:
    assert detect_legacy(legacy) == "TCVN3"
    assert decode_legacy(legacy, "TCVN3") == expected
    assert fix_legacy(legacy) == (expected, "TCVN3")


@pytest.mark.parametrize(("legacy", "expected"), VNI_LITERALS)
def test_vni_literals(legacy: str, expected: str) -> None:
    assert detect_legacy(legacy) == "VNI"
    assert decode_legacy(legacy, "VNI") == expected
    assert fix_legacy(legacy) == (expected, "VNI")


# --- round trips through the inverted tables ----------------------------------------------

# Capitals are ASCII or one of Ă Â Ê Ô Ơ Ư Đ, so every phrase is representable in TCVN3.
PHRASES = [
    "Lao động tiên tiến",
    "Chiến sĩ thi đua cơ sở",
    "Giáo viên dạy giỏi cấp huyện",
    "Hiệu trưởng",
    "Phó Hiệu trưởng",
    "Trường Tiểu học Nguyễn Trãi",
    "Trường Trung học cơ sở Lê Quý Đôn",
    "Nguyễn Thị Hương",
    "Trần Văn Đức",
    "Hoàn thành tốt nhiệm vụ",
    "Hoàn thành xuất sắc nhiệm vụ",
    "Bằng khen của Bộ trưởng",
    "Giấy khen của Chủ tịch",
    "Tổ trưởng chuyên môn",
    "Đoàn Thanh niên Cộng sản Hồ Chí Minh",
    "Công đoàn cơ sở",
    "Tập thể lao động xuất sắc",
    "Ông Phạm Ngọc Thạch",
    "Ưu tiên xét duyệt",
    "Đạt chuẩn quốc gia mức độ hai",
    "Thành phố Hồ Chí Minh",
    "Mường Khương",
    "Âm nhạc và Mỹ thuật",
    "Ăn uống hợp vệ sinh",
    "Sáng kiến kinh nghiệm cấp tỉnh",
    "Ơn thầy cô",
]


@pytest.mark.parametrize("phrase", PHRASES)
def test_round_trip_tcvn3(phrase: str) -> None:
    legacy = to_tcvn3(phrase)
    assert legacy != phrase
    assert fix_legacy(legacy) == (phrase, "TCVN3")


@pytest.mark.parametrize("phrase", PHRASES)
def test_round_trip_vni(phrase: str) -> None:
    legacy = to_vni(phrase)
    assert legacy != phrase
    assert fix_legacy(legacy) == (phrase, "VNI")


# --- things that must be left alone -------------------------------------------------------

NEGATIVES = [
    "Lao động tiên tiến",
    "Chiến sĩ thi đua cơ sở",
    "Nguyễn Thị Hương",
    "Phó Hiệu trưởng",
    "LDTT",
    "Nguyen Van A",
    "CSTD co so",
    "TH&THCS",
    "50%",
    "(ghi chú)",
    "Tổ Toán – Tin",
    "Hòa Bình",
    "HÒA BÌNH",
    "Tiên Lãng",
    "Tân Châu",
    "Hoàn thành tốt nhiệm vụ",
    "Tôi là giáo viên",
    "Ông Tô",
    "cô giáo",
    "Ho\u0300a Bi\u0300nh",  # decomposed (NFD) Unicode
    "Excellent teacher of the year",
    "",
    "   ",
    "12345",
    "3,5",
    "nguyen.van.a@gmail.com",
    "Café São Paulo, José Müller",
    "« Bonjour »",
    "25°C",
    "© 2024",
    "µg/ml",
    "Krông Búk",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_negatives_are_not_flagged(text: str) -> None:
    assert detect_legacy(text) is None
    assert fix_legacy(text) == (text, None)


# --- API details --------------------------------------------------------------------------


def test_encoding_names_select_the_table() -> None:
    assert decode_legacy("ñ", "tcvn3") == decode_legacy("ñ", "ABC") == "ủ"
    assert decode_legacy("ñ", "vni") == decode_legacy("ñ", "VNI-Windows") == "đ"


def test_unknown_encoding_raises() -> None:
    with pytest.raises(ValueError, match="unknown legacy encoding"):
        decode_legacy("abc", "VIQR")


def test_other_characters_pass_through() -> None:
    assert decode_legacy("Lao ®éng (LDTT) 2024-2025: 50%", "TCVN3") == (
        "Lao động (LDTT) 2024-2025: 50%"
    )
    assert decode_legacy("Lao ñoäng (LDTT) 50%", "VNI") == "Lao động (LDTT) 50%"


def test_ambiguous_single_word_is_left_alone() -> None:
    # "tö" is tử in TCVN3 but tư in VNI: no glyph tells them apart.
    assert fix_legacy("tö") == ("tö", None)


# --- properties ---------------------------------------------------------------------------

ONSETS = ["", "b", "c", "ch", "d", "đ", "g", "gi", "h", "kh", "l", "m", "n", "ng", "nh",
          "ph", "qu", "r", "s", "t", "th", "tr", "v", "x"]  # fmt: skip
FRONT_ONSETS = ["", "b", "ch", "d", "đ", "gh", "h", "k", "kh", "l", "m", "n", "ngh", "nh",
                "ph", "r", "s", "t", "th", "tr", "v", "x"]  # fmt: skip
# Rhymes with the tone-bearing vowel marked by "*" after it.
RHYMES = ["a*", "a*c", "a*ch", "a*i", "a*m", "a*n", "a*ng", "a*nh", "a*o", "a*p", "a*t", "a*u",
          "a*y", "ă*c", "ă*m", "ă*n", "ă*ng", "ă*t", "â*m", "â*n", "â*ng", "â*t", "â*u", "â*y",
          "o*", "o*c", "o*i", "o*n", "o*ng", "o*t", "oa*", "oa*n", "oa*ng", "oa*nh", "oa*t",
          "oă*n", "ô*", "ô*c", "ô*i", "ô*m", "ô*n", "ô*ng", "ô*t", "ơ*", "ơ*i", "ơ*m", "ơ*n",
          "ơ*p", "ơ*t", "u*", "u*c", "u*i", "u*n", "u*ng", "u*t", "u*a", "uô*c", "uô*i",
          "uô*n", "uô*ng", "uâ*n", "uâ*t", "ư*", "ư*a", "ư*c", "ư*ng", "ư*u", "ươ*c", "ươ*i",
          "ươ*m", "ươ*n", "ươ*ng", "ươ*t", "ươ*u"]  # fmt: skip
FRONT_RHYMES = ["e*", "e*m", "e*n", "e*o", "e*t", "ê*", "ê*ch", "ê*m", "ê*n", "ê*nh", "ê*t",
                "ê*u", "i*", "i*a", "i*ch", "i*m", "i*n", "i*nh", "i*t", "i*u", "iê*m", "iê*n",
                "iê*ng", "iê*t", "iê*u"]  # fmt: skip
TONES = ["", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323"]  # ngang huyền sắc ngã hỏi nặng


@st.composite
def syllables(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        onset, rhyme = draw(st.sampled_from(ONSETS)), draw(st.sampled_from(RHYMES))
    else:
        onset, rhyme = draw(st.sampled_from(FRONT_ONSETS)), draw(st.sampled_from(FRONT_RHYMES))
    if onset == "qu" and rhyme.startswith(("u", "ư", "o")):
        onset = "h"
    stop = rhyme.endswith(("c", "ch", "p", "t"))
    tone = draw(st.sampled_from(["\u0301", "\u0323"] if stop else TONES))
    return nfc(onset + rhyme.replace("*", tone))


def words(case: str) -> st.SearchStrategy[str]:
    def style(word: str, flag: int) -> str:
        if case == "any":
            return [word, word.capitalize(), word.upper()][flag]
        # TCVN3 has capitals only for ASCII letters and Ă Â Ê Ô Ơ Ư Đ.
        if flag and (word[0].isascii() or word[0] in "ăâêôơưđ"):
            return word.capitalize()
        return word

    return st.builds(style, syllables(), st.integers(0, 2))


def texts(case: str) -> st.SearchStrategy[str]:
    return st.lists(words(case), min_size=1, max_size=8).map(" ".join)


STRONG_TCVN3 = set("®¬ª«¨©\xadµ¸¹¶·")  # glyphs of đ ơ ê ô ă â ư à á ạ ả ã; never used by VNI


@settings(max_examples=300)
@given(texts("any"))
def test_property_valid_unicode_is_never_flagged(text: str) -> None:
    assert detect_legacy(text) is None
    assert fix_legacy(text) == (text, None)


@settings(max_examples=300)
@given(texts("tcvn3"))
def test_property_tcvn3_round_trip(text: str) -> None:
    legacy = to_tcvn3(text)
    assert decode_legacy(legacy, "TCVN3") == text
    fixed = fix_legacy(legacy)
    strong = any(
        any(ch in STRONG_TCVN3 for ch in word) and any(ch.isascii() for ch in word)
        for word in legacy.split()
    )
    if strong:
        assert fixed == (text, "TCVN3")
    else:  # may be too ambiguous to flag, but never converted wrongly
        assert fixed in {(text, "TCVN3"), (legacy, None)}


@settings(max_examples=300)
@given(texts("any"))
def test_property_vni_round_trip(text: str) -> None:
    legacy = to_vni(text)
    assert decode_legacy(legacy, "VNI") == text
    assert fix_legacy(legacy) in {(text, "VNI"), (legacy, None)}


@settings(max_examples=300)
@given(st.text())
def test_property_arbitrary_text_is_safe(text: str) -> None:
    fixed, encoding = fix_legacy(text)
    if encoding is None:
        assert fixed == text
    else:
        assert encoding in {"TCVN3", "VNI"}
        assert fixed == nfc(fixed)
