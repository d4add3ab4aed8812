"""Numbers, amounts, dates and digit strings as sequences of prompt fragments.

Asterisk's own zh rules are wrong (112 read as 一百十二, no 两) and SayMoney is
English-only, so the daemon builds every reading itself from recorded
fragments. Fragment ids are the same in every language (``num/100`` is 百 in
zh and "hundred" in en); Asterisk picks the file by the channel's language.

Mandarin rules followed here (standard practice for read-out amounts):

* 一百一十二: a 十 that is not the first word of the number keeps its 一;
  十二 and 十二万 drop it at the very start.
* 零 is read once for any run of zeros inside the number (一千零五,
  十万零一十, 一亿零一千) and never at the end.
* 两 only where it is the natural word: a 2 that opens the number and is
  followed directly by 千, 万 or 亿 (两千, 两千三百, 两万二千, 两亿, 两千万);
  二 everywhere else in amounts (一万二千, 二百, 十二, 二十二万, 二元, 二角,
  二分), which is also how banks read amounts out. A count before a measure
  word and the hour of a time say 两 for a lone 2: 两次, 两期, 两点
  (``count``; 十二次, 二十二点 keep 二).
* Amounts: 元, 角, 分; a whole amount ends 元整; a zero 角 before a non-zero
  分 is read 零 (一元零五分); below one yuan the 元 is left out (五分);
  zero is 零元.
* Years are read digit by digit with 〇 (二〇二六年); months and days as
  numbers (十一月二十六日).
* Digit strings (account tails, phone-style) read 1 as 幺 so it is not
  mistaken for 七 on a telephone line.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

LANGUAGES = ("zh", "en")
MAX_INTEGER = 10**12 - 1  # 九千九百九十九亿...; amounts up to 999,999,999,999.99

_ZH_DIGITS = "零一二三四五六七八九"
_ZH_UNITS = {3: ("千", "num/1000"), 2: ("百", "num/100"), 1: ("十", "num/10")}
_ZH_GROUPS = {1: ("万", "num/10000"), 2: ("亿", "num/100000000")}
_EN_SMALL = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_EN_TENS = {20: "twenty", 30: "thirty", 40: "forty", 50: "fifty", 60: "sixty",
            70: "seventy", 80: "eighty", 90: "ninety"}
_EN_SCALES = ((10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
_EN_MONTHS = ("January February March April May June July August September October "
              "November December").split()


class SpeechError(ValueError):
    """A value that cannot be read aloud (negative, too large, not a number)."""


@dataclass(frozen=True)
class Reading:
    """What a caller hears: the text (for logs and ``hotline say``) and the prompt files."""

    text: str
    prompts: tuple[str, ...]


class _Builder:
    def __init__(self, lang: str):
        if lang not in LANGUAGES:
            raise SpeechError(f"unknown language {lang!r}")
        self.lang = lang
        self.words: list[str] = []
        self.prompts: list[str] = []

    def add(self, word: str, prompt: str) -> None:
        self.words.append(word)
        self.prompts.append(prompt)

    def reading(self) -> Reading:
        sep = " " if self.lang == "en" else ""
        return Reading(sep.join(self.words), tuple(self.prompts))


# ---------------------------------------------------------------- integers

def integer(n: int, lang: str = "zh") -> Reading:
    """A whole number from 0 to MAX_INTEGER."""
    b = _Builder(lang)
    _integer(b, n)
    return b.reading()


def count(n: int, lang: str = "zh") -> Reading:
    """How many (times, periods) before a measure word: 两次, 两期, 十二次."""
    b = _Builder(lang)
    _count(b, n)
    return b.reading()


def _count(b: _Builder, n: int) -> None:
    if b.lang == "zh" and n == 2:
        b.add("两", "num/liang")
    else:
        _integer(b, n)


def _integer(b: _Builder, n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool):
        raise SpeechError(f"not an integer: {n!r}")
    if n < 0 or n > MAX_INTEGER:
        raise SpeechError(f"out of range 0..{MAX_INTEGER}: {n}")
    if b.lang == "zh":
        _zh_integer(b, n)
    else:
        _en_integer(b, n)


def _zh_integer(b: _Builder, n: int) -> None:
    if n == 0:
        b.add("零", "num/0")
        return
    groups = [(n // 10**8) % 10**4, (n // 10**4) % 10**4, n % 10**4]  # 亿, 万, units
    started = False
    gap = False  # a whole group of zeros since the last spoken group
    for level, g in zip((2, 1, 0), groups):
        if g == 0:
            gap = gap or started
            continue
        if started and (gap or g < 1000):
            b.add("零", "num/0")
        _zh_group(b, g, first=not started, before_unit=level > 0)
        if level:
            b.add(*_ZH_GROUPS[level])
        started, gap = True, False


def _zh_group(b: _Builder, g: int, *, first: bool, before_unit: bool) -> None:
    """One group of up to four digits (千百十个), zeros folded into one 零."""
    started = False
    zero = False
    for pos in (3, 2, 1, 0):
        d = (g // 10**pos) % 10
        if d == 0:
            zero = zero or started
            continue
        if zero:
            b.add("零", "num/0")
            zero = False
        if pos == 1 and d == 1 and first and not started:
            pass  # 十二, 十万: the leading 一 is not read
        elif d == 2 and first and not started and (pos == 3 or (pos == 0 and before_unit)):
            b.add("两", "num/liang")
        else:
            b.add(_ZH_DIGITS[d], f"num/{d}")
        if pos:
            b.add(*_ZH_UNITS[pos])
        started = True


def _en_integer(b: _Builder, n: int) -> None:
    if n == 0:
        b.add("zero", "num/0")
        return
    for scale, word in _EN_SCALES:
        if n >= scale:
            _en_below_1000(b, n // scale)
            b.add(word, f"num/{scale}")
            n %= scale
    if n:
        _en_below_1000(b, n)


def _en_below_1000(b: _Builder, n: int) -> None:
    if n >= 100:
        b.add(_EN_SMALL[n // 100], f"num/{n // 100}")
        b.add("hundred", "num/100")
        n %= 100
    if n >= 20:
        b.add(_EN_TENS[n - n % 10], f"num/{n - n % 10}")
        n %= 10
    if n:
        b.add(_EN_SMALL[n], f"num/{n}")


# ---------------------------------------------------------------- amounts

def to_cents(value: Decimal | int | str) -> int:
    """An amount in yuan, rounded half-up to the fen, as whole fen."""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise SpeechError(f"not an amount: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise SpeechError(f"not a readable amount: {value!r}")
    cents = int(amount * 100)
    if cents // 100 > MAX_INTEGER:
        raise SpeechError(f"amount too large: {value!r}")
    return cents


def amount(value: Decimal | int | str, lang: str = "zh") -> Reading:
    """Yuan and fen: 一万二千三百四十五元六角七分, 十元整, 一元零五分, 五分, 零元."""
    cents = to_cents(value)
    yuan, jiao, fen = cents // 100, (cents // 10) % 10, cents % 10
    b = _Builder(lang)
    if lang == "en":
        if yuan or cents == 0:
            _integer(b, yuan)
            b.add("yuan", "unit/yuan")
        if cents % 100:
            if yuan:
                b.add("and", "unit/and")
            _integer(b, cents % 100)
            b.add("cents", "unit/cents")
        return b.reading()
    if yuan:
        _integer(b, yuan)
        b.add("元", "unit/yuan")
    if jiao == 0 and fen == 0:
        if yuan:
            b.add("整", "unit/zheng")
        else:
            b.add("零", "num/0")
            b.add("元", "unit/yuan")
        return b.reading()
    if jiao:
        b.add(_ZH_DIGITS[jiao], f"num/{jiao}")
        b.add("角", "unit/jiao")
    elif yuan:
        b.add("零", "num/0")
    if fen:
        b.add(_ZH_DIGITS[fen], f"num/{fen}")
        b.add("分", "unit/fen")
    return b.reading()


# ---------------------------------------------------------------- dates and times

def _zh_year(b: _Builder, year: int) -> None:
    for c in str(year):
        b.add("〇" if c == "0" else _ZH_DIGITS[int(c)], f"num/{c}")
    b.add("年", "unit/nian")


def date(d: dt.date, lang: str = "zh") -> Reading:
    """二〇二六年十一月二十六日; in English "November twenty six two thousand twenty six"."""
    b = _Builder(lang)
    if lang == "en":
        b.add(_EN_MONTHS[d.month - 1], f"month/{d.month}")
        _integer(b, d.day)
        _integer(b, d.year)
        return b.reading()
    _zh_year(b, d.year)
    _integer(b, d.month)
    b.add("月", "unit/yue")
    _integer(b, d.day)
    b.add("日", "unit/ri")
    return b.reading()


def month(yyyymm: str, lang: str = "zh") -> Reading:
    """A paid-up-to month (缴至年月) written ``YYYYMM``: 二〇二六年十月."""
    try:
        year, mon = int(yyyymm[:4]), int(yyyymm[4:])
    except ValueError:
        raise SpeechError(f"not a YYYYMM month: {yyyymm!r}") from None
    if len(yyyymm) != 6 or not 1 <= mon <= 12:
        raise SpeechError(f"not a YYYYMM month: {yyyymm!r}")
    b = _Builder(lang)
    if lang == "en":
        b.add(_EN_MONTHS[mon - 1], f"month/{mon}")
        _integer(b, year)
        return b.reading()
    _zh_year(b, year)
    _integer(b, mon)
    b.add("月", "unit/yue")
    return b.reading()


def time_of_day(t: dt.time, lang: str = "zh") -> Reading:
    """十四点三十分, 九点零五分, 两点整; in English "fourteen thirty", "fourteen o'clock"."""
    b = _Builder(lang)
    _count(b, t.hour)  # 两点
    if lang == "en":
        if t.minute == 0:
            b.add("o'clock", "unit/oclock")
        else:
            if t.minute < 10:
                b.add("zero", "num/0")
            _integer(b, t.minute)
        return b.reading()
    b.add("点", "unit/dian")
    if t.minute == 0:
        b.add("整", "unit/zheng")
        return b.reading()
    if t.minute < 10:
        b.add("零", "num/0")
    _integer(b, t.minute)
    b.add("分", "unit/minute")
    return b.reading()


# ---------------------------------------------------------------- digit strings

def digits(s: str, lang: str = "zh") -> Reading:
    """Digit by digit, 1 read 幺 in Mandarin (phone style); X for an ID's last character."""
    b = _Builder(lang)
    for c in s:
        if c in "Xx*":
            b.add("X", "num/x")
        elif c.isdigit() and c.isascii():
            if lang == "zh":
                b.add("幺" if c == "1" else _ZH_DIGITS[int(c)],
                      "num/yao" if c == "1" else f"num/{c}")
            else:
                b.add(_EN_SMALL[int(c)], f"num/{c}")
        else:
            raise SpeechError("digit strings hold only 0-9 and X")
    return b.reading()


# ---------------------------------------------------------------- the fragment set

def fragments() -> dict[str, dict[str, str]]:
    """Every fragment id these readings may use, with its zh and en text (for the catalog check)."""
    out: dict[str, dict[str, str]] = {}
    zh_small = {n: integer(n, "zh").text for n in range(0, 100)}
    for n in list(range(0, 20)) + list(_EN_TENS):
        out[f"num/{n}"] = {"zh": zh_small[n], "en": integer(n, "en").text}
    out["num/0"]["zh"] = "零"
    for scale, zh, en in ((100, "百", "hundred"), (1000, "千", "thousand"),
                          (10**4, "万", "ten thousand"), (10**6, "百万", "million"),
                          (10**8, "亿", "hundred million"), (10**9, "十亿", "billion")):
        out[f"num/{scale}"] = {"zh": zh, "en": en}
    out["num/10"] = {"zh": "十", "en": "ten"}
    out["num/liang"] = {"zh": "两", "en": "two"}
    out["num/yao"] = {"zh": "幺", "en": "one"}
    out["num/x"] = {"zh": "叉", "en": "X"}
    for m, name in enumerate(_EN_MONTHS, 1):
        out[f"month/{m}"] = {"zh": integer(m).text + "月", "en": name}
    units = {
        "unit/yuan": ("元", "yuan"), "unit/jiao": ("角", "ten cents"),
        "unit/fen": ("分", "cent"), "unit/zheng": ("整", "exactly"),
        "unit/and": ("和", "and"), "unit/cents": ("分", "cents"),
        "unit/nian": ("年", "year"), "unit/yue": ("月", "month"), "unit/ri": ("日", "day"),
        "unit/dian": ("点", "hour"), "unit/minute": ("分", "minutes"),
        "unit/oclock": ("点整", "o'clock"), "unit/qi": ("期", "periods"),
    }
    for pid, (zh, en) in units.items():
        out[pid] = {"zh": zh, "en": en}
    return out


KINDS = {
    "amount": lambda v, lang: amount(v, lang),
    "integer": lambda v, lang: integer(_parse_int(v), lang),
    "count": lambda v, lang: count(_parse_int(v), lang),
    "date": lambda v, lang: date(_parse_date(v), lang),
    "month": lambda v, lang: month(v.replace("-", ""), lang),
    "time": lambda v, lang: time_of_day(_parse_time(v), lang),
    "digits": lambda v, lang: digits(v, lang),
}


def say(kind: str, value: str, lang: str = "zh") -> Reading:
    """The reading of a value given as text, for ``hotline say KIND VALUE``."""
    if kind not in KINDS:
        raise SpeechError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    return KINDS[kind](value, lang)


def _parse_int(v: str) -> int:
    try:
        return int(v.replace(",", ""))
    except ValueError:
        raise SpeechError(f"not an integer: {v!r}") from None


def _parse_date(v: str) -> dt.date:
    try:
        return dt.date.fromisoformat(v)
    except ValueError:
        raise SpeechError(f"not a YYYY-MM-DD date: {v!r}") from None


def _parse_time(v: str) -> dt.time:
    try:
        return dt.time.fromisoformat(v)
    except ValueError:
        raise SpeechError(f"not an HH:MM time: {v!r}") from None
