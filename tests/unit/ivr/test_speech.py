"""Number speech: every reading checked against a hand-written table."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr import speech

# value | expected Mandarin reading (written by hand, not generated)
AMOUNTS_ZH = """
0|零元
0.00|零元
0.01|一分
0.05|五分
0.1|一角
0.10|一角
0.2|二角
0.22|二角二分
0.5|五角
0.55|五角五分
0.99|九角九分
0.004|零元
0.005|一分
1|一元整
1.00|一元整
1.01|一元零一分
1.05|一元零五分
1.1|一元一角
1.5|一元五角
1.55|一元五角五分
2|二元整
2.02|二元零二分
2.22|二元二角二分
9.99|九元九角九分
10|十元整
10.5|十元五角
10.05|十元零五分
11|十一元整
12|十二元整
15.3|十五元三角
19.99|十九元九角九分
20|二十元整
21|二十一元整
22|二十二元整
30.07|三十元零七分
99|九十九元整
100|一百元整
101|一百零一元整
102|一百零二元整
105.5|一百零五元五角
110|一百一十元整
111|一百一十一元整
112|一百一十二元整
119|一百一十九元整
120|一百二十元整
122|一百二十二元整
200|二百元整
202|二百零二元整
210|二百一十元整
220|二百二十元整
222|二百二十二元整
250.25|二百五十元二角五分
300|三百元整
999|九百九十九元整
1000|一千元整
1001|一千零一元整
1010|一千零一十元整
1011|一千零一十一元整
1100|一千一百元整
1110|一千一百一十元整
1200|一千二百元整
1234|一千二百三十四元整
2000|两千元整
2002|两千零二元整
2020|两千零二十元整
2200|两千二百元整
2222|两千二百二十二元整
3000.5|三千元五角
4096|四千零九十六元整
5005|五千零五元整
9999|九千九百九十九元整
10000|一万元整
10001|一万零一元整
10010|一万零一十元整
10012|一万零一十二元整
10100|一万零一百元整
10200|一万零二百元整
11000|一万一千元整
12000|一万二千元整
12345.67|一万二千三百四十五元六角七分
12345|一万二千三百四十五元整
15000|一万五千元整
20000|两万元整
20002|两万零二元整
20200|两万零二百元整
22000|两万二千元整
22222|两万二千二百二十二元整
30000.01|三万元零一分
50505|五万零五百零五元整
99999|九万九千九百九十九元整
100000|十万元整
100001|十万零一元整
100010|十万零一十元整
100100|十万零一百元整
101000|十万一千元整
110000|十一万元整
111111|十一万一千一百一十一元整
120000|十二万元整
200000|二十万元整
220000|二十二万元整
250000.5|二十五万元五角
1000000|一百万元整
1000010|一百万零一十元整
1002000|一百万二千元整
1020000|一百零二万元整
1200000|一百二十万元整
2000000|二百万元整
10000000|一千万元整
10000001|一千万零一元整
12000000|一千二百万元整
20000000|两千万元整
22000000|两千二百万元整
100000000|一亿元整
100000001|一亿零一元整
100001000|一亿零一千元整
100010000|一亿零一万元整
100020000|一亿零二万元整
101000000|一亿零一百万元整
110000000|一亿一千万元整
120000000|一亿二千万元整
200000000|两亿元整
220000000|两亿二千万元整
1000000000|十亿元整
1200000000|十二亿元整
2000000000|二十亿元整
1002003004.5|十亿零二百万三千零四元五角
9999999999.99|九十九亿九千九百九十九万九千九百九十九元九角九分
100000000000|一千亿元整
200000000000|两千亿元整
999999999999.99|九千九百九十九亿九千九百九十九万九千九百九十九元九角九分
"""

INTEGERS_ZH = """
0|零
1|一
2|二
10|十
11|十一
12|十二
20|二十
100|一百
105|一百零五
110|一百一十
112|一百一十二
1000|一千
2000|两千
10000|一万
20000|两万
100000|十万
100010|十万零一十
100000000|一亿
"""

AMOUNTS_EN = """
0|zero yuan
0.05|five cents
0.5|fifty cents
1|one yuan
1.05|one yuan and five cents
10|ten yuan
12|twelve yuan
21|twenty one yuan
100|one hundred yuan
112|one hundred twelve yuan
1000|one thousand yuan
12345.67|twelve thousand three hundred forty five yuan and sixty seven cents
100000|one hundred thousand yuan
100010|one hundred thousand ten yuan
1000000|one million yuan
100000000|one hundred million yuan
2000000000|two billion yuan
"""

DATES = """
2026-11-26|二〇二六年十一月二十六日|November twenty six two thousand twenty six
2026-01-01|二〇二六年一月一日|January one two thousand twenty six
2000-10-10|二〇〇〇年十月十日|October ten two thousand
2019-12-31|二〇一九年十二月三十一日|December thirty one two thousand nineteen
2025-02-20|二〇二五年二月二十日|February twenty two thousand twenty five
1999-07-02|一九九九年七月二日|July two one thousand nine hundred ninety nine
"""

MONTHS = """
202610|二〇二六年十月|October two thousand twenty six
202601|二〇二六年一月|January two thousand twenty six
202612|二〇二六年十二月|December two thousand twenty six
201011|二〇一〇年十一月|November two thousand ten
"""

TIMES = """
09:00|九点整|nine o'clock
09:05|九点零五分|nine zero five
14:30|十四点三十分|fourteen thirty
00:10|零点十分|zero ten
12:12|十二点十二分|twelve twelve
02:00|两点整|two o'clock
02:02|两点零二分|two zero two
12:00|十二点整|twelve o'clock
20:41|二十点四十一分|twenty forty one
22:22|二十二点二十二分|twenty two twenty two
23:59|二十三点五十九分|twenty three fifty nine
"""

# how many times or periods | Mandarin with a measure word (两次, 两期) | English
COUNTS = """
1|一|one
2|两|two
3|三|three
10|十|ten
12|十二|twelve
20|二十|twenty
22|二十二|twenty two
200|二百|two hundred
2000|两千|two thousand
"""

DIGITS = """
0|零|zero
1|幺|one
1234|幺二三四|one two three four
9012|九零幺二|nine zero one two
11000|幺幺零零零|one one zero zero zero
1234X|幺二三四X|one two three four X
"""


def _rows(table: str) -> list[list[str]]:
    return [line.split("|") for line in table.strip().splitlines()]


ZH_CASES = _rows(AMOUNTS_ZH)


def test_table_has_at_least_200_cases():
    """The issue asks for a table of at least 200 readings."""
    total = sum(len(_rows(t)) * (len(_rows(t)[0]) - 1) for t in (
        AMOUNTS_ZH, INTEGERS_ZH, AMOUNTS_EN, DATES, MONTHS, TIMES, DIGITS, COUNTS))
    assert total >= 200


@pytest.mark.parametrize("value,expected", ZH_CASES)
def test_amount_zh(value, expected):
    """Mandarin amounts: 元/角/分, 元整, one 零 per zero run, 两 only where natural."""
    assert speech.amount(Decimal(value), "zh").text == expected


@pytest.mark.parametrize("value,expected", _rows(INTEGERS_ZH))
def test_integer_zh(value, expected):
    """Plain integers in Mandarin (counts, periods)."""
    assert speech.integer(int(value), "zh").text == expected


@pytest.mark.parametrize("value,expected", _rows(AMOUNTS_EN))
def test_amount_en(value, expected):
    """English fallback: yuan and cents, no 整."""
    assert speech.amount(value, "en").text == expected


@pytest.mark.parametrize("value,zh,en", _rows(DATES))
def test_date(value, zh, en):
    """Years digit by digit with 〇, month and day as numbers."""
    d = dt.date.fromisoformat(value)
    assert speech.date(d, "zh").text == zh
    assert speech.date(d, "en").text == en


@pytest.mark.parametrize("value,zh,en", _rows(MONTHS))
def test_month(value, zh, en):
    """Paid-up-to months (缴至年月) from the core's YYYYMM."""
    assert speech.month(value, "zh").text == zh
    assert speech.month(value, "en").text == en


@pytest.mark.parametrize("value,zh,en", _rows(TIMES))
def test_time(value, zh, en):
    """Times of day, for 'locked until'."""
    t = dt.time.fromisoformat(value)
    assert speech.time_of_day(t, "zh").text == zh
    assert speech.time_of_day(t, "en").text == en


@pytest.mark.parametrize("value,zh,en", _rows(COUNTS))
def test_count(value, zh, en):
    """Counts before a measure word: 两次, 两期 (二次 is wrong), 十二次, 两千次."""
    assert speech.count(int(value), "zh").text == zh
    assert speech.count(int(value), "en").text == en


def test_count_of_two_plays_liang():
    """您还可以输入两次: the 2 of a count is the 两 recording."""
    assert speech.count(2, "zh").prompts == ("num/liang",)


@pytest.mark.parametrize("value,zh,en", _rows(DIGITS))
def test_digits(value, zh, en):
    """Digit strings: 1 is 幺 in Mandarin, X stays X."""
    assert speech.digits(value, "zh").text == zh
    assert speech.digits(value, "en").text == en


def test_amount_prompt_files():
    """12345.67 is played as exactly these fragment files, in order."""
    assert speech.amount("12345.67", "zh").prompts == (
        "num/1", "num/10000", "num/2", "num/1000", "num/3", "num/100", "num/4", "num/10",
        "num/5", "unit/yuan", "num/6", "unit/jiao", "num/7", "unit/fen")


def test_liang_prompt():
    """两 has its own recording."""
    assert speech.amount("2000", "zh").prompts == ("num/liang", "num/1000", "unit/yuan",
                                                   "unit/zheng")


@pytest.mark.parametrize("bad", ["-1", "abc", "1e20", "NaN"])
def test_unreadable_amounts_are_refused(bad):
    """Negative, non-numeric or too large amounts raise SpeechError, not a wrong reading."""
    with pytest.raises(speech.SpeechError):
        speech.amount(bad)


def test_say_dispatches_by_kind():
    """``hotline say KIND VALUE`` reads text values by kind and refuses unknown kinds."""
    assert speech.say("amount", "112").text == "一百一十二元整"
    assert speech.say("month", "2026-10").text == "二〇二六年十月"
    with pytest.raises(speech.SpeechError):
        speech.say("colour", "red")


FRAGMENTS = speech.fragments()


@given(st.integers(min_value=0, max_value=speech.MAX_INTEGER * 100 + 99))
def test_prompts_spell_the_text(cents):
    """For any amount the fragment files, read in order, say exactly the printed text."""
    value = Decimal(cents) / 100
    for lang, sep in (("zh", ""), ("en", " ")):
        r = speech.amount(value, lang)
        spoken = sep.join(FRAGMENTS[p][lang] for p in r.prompts)
        assert spoken == r.text


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31)))
def test_date_fragments_exist(d):
    """Every fragment a date reading uses is in the fragment set the catalog is checked against."""
    for lang in ("zh", "en"):
        assert set(speech.date(d, lang).prompts) <= set(FRAGMENTS)
