"""Chinese: Arabic (and full-width) numerals in Chinese readings, in context.

"2024年" -> "二零二四年" (four digits before 年 are a year, read digit by digit), "3月5日" -> "三月五日",
"105" -> "一百零五", "10000" -> "一万", "3.5" -> "三点五", "50%" -> "百分之五十", "¥20" -> "二十元",
"第3" -> "第三", "10:30" -> "十点三十分". Chinese numerals already in the text ("一九一九年三月") are left alone.
"""

from __future__ import annotations

import re

from stages.normalize.edits import Context, Rule

DIGITS = "零一二三四五六七八九"
GROUP_UNITS = ("", "万", "亿", "万亿")  # every four digits
PLACE_UNITS = ("千", "百", "十", "")
LONGEST_NUMBER_DIGITS = 10  # longer digit strings (phone and id numbers) are read digit by digit
CURRENCIES = {"¥": "元", "￥": "元", "$": "美元", "€": "欧元", "£": "英镑"}
LEFT = r"(?<![A-Za-z0-9.,:/\-])"  # Han characters may touch a number: "第3", "共15人"
RIGHT = r"(?![A-Za-z0-9]|[.,:]\d)"
NUM = r"\d{1,3}(?:,\d{3})+|\d+"


def digit_string(text: str) -> str:
    """Return each digit read alone: "2024" -> "二零二四"."""
    return "".join(DIGITS[int(c)] for c in text if c.isdigit())


def _group(n: int) -> str:
    """Return 1..9999 read with 千百十, zeros inside said once: 1005 -> "一千零五"."""
    out, zero, started = "", False, False
    for d, unit in zip(f"{n:04d}", PLACE_UNITS):
        if d == "0":
            zero = zero or started
            continue
        if zero:
            out += "零"
            zero = False
        out += DIGITS[int(d)] + unit
        started = True
    return out


def cardinal(n: int) -> str:
    """Return `n` in Chinese: 15 -> "十五", 105 -> "一百零五", 10000 -> "一万", 2000 -> "两千"."""
    if n < 0:
        return "负" + cardinal(-n)
    if n == 0:
        return "零"
    if n >= 10 ** (4 * len(GROUP_UNITS)):
        return digit_string(str(n))
    groups = []
    while n:
        n, g = divmod(n, 10000)
        groups.append(g)
    out, gap = "", False
    for i in range(len(groups) - 1, -1, -1):
        g = groups[i]
        if g == 0:
            gap = gap or bool(out)
            continue
        if out and (gap or g < 1000):
            out += "零"
        out += _group(g) + GROUP_UNITS[i]
        gap = False
    if out.startswith("一十"):
        out = out[1:]  # 15 -> 十五, 100000 -> 十万
    if out.startswith("二") and out[1:2] in ("千", "万", "亿"):
        out = "两" + out[1:]  # 2000 -> 两千
    return out


def number(whole: str, fraction: str | None = None) -> str:
    """Return a number as written ("1,234", "3.5", "007") in Chinese."""
    plain = whole.replace(",", "")
    if (len(plain) > 1 and plain.startswith("0")) or len(plain) > LONGEST_NUMBER_DIGITS:
        words = digit_string(plain)
    else:
        words = cardinal(int(plain))
    return words + ("点" + digit_string(fraction) if fraction else "")


def _signed(m: re.Match) -> str:
    return ("负" if m.group("neg") else "") + number(m.group("int"), m.group("frac"))


def _percent(m: re.Match, ctx: Context) -> str:
    return "百分之" + _signed(m)


def _currency(m: re.Match, ctx: Context) -> str:
    unit = CURRENCIES[m.group("sym")]
    frac = (m.group("frac") or "").rstrip("0") or None
    tail = ctx.after(m.end(), 1)
    return number(m.group("int"), frac) + ("" if tail == unit[-1] or tail == "元" else unit)


def _time(m: re.Match, ctx: Context) -> str | None:
    hour, minute = int(m.group("h")), int(m.group("m"))
    if hour > 24 or minute > 59:
        return None
    say = ("两" if hour == 2 else cardinal(hour)) + "点"
    if minute:
        say += ("零" if minute < 10 else "") + cardinal(minute) + "分"
    return say


def _year(m: re.Match, ctx: Context) -> str:
    return digit_string(m.group("y"))


def _range(m: re.Match, ctx: Context) -> str | None:
    a, b = m.group("a"), m.group("b")
    if ctx.after(m.end(), 1) == "年" and len(a) == 4 and len(b) == 4:
        return digit_string(a) + "到" + digit_string(b)
    if len(a.replace(",", "")) > 4 or len(b.replace(",", "")) > 4:
        return None
    return number(a) + "到" + number(b)


def _keep(m: re.Match, ctx: Context) -> list:
    return []


def _plain(m: re.Match, ctx: Context) -> str:
    return _signed(m)


_SIGNED = rf"(?P<neg>[-−](?=\d))?(?P<int>{NUM})(?:\.(?P<frac>\d+))?"

RULES = (
    Rule(re.compile(rf"{LEFT}(?:\d+(?:\.\d+){{2,}}|\d{{1,2}}:\d{{2}}:\d{{2}}|\d{{1,4}}/\d{{1,2}}(?:/\d{{1,4}})?)"
                    r"(?![\w/])"), _keep),
    Rule(re.compile(rf"{LEFT}{_SIGNED}\s?%"), _percent),
    Rule(re.compile(rf"(?P<sym>[¥￥$€£])\s?(?P<int>{NUM})(?:\.(?P<frac>\d{{1,2}}))?(?!\d|[.,]\d)"), _currency),
    Rule(re.compile(rf"{LEFT}(?P<h>\d{{1,2}}):(?P<m>\d{{2}})(?![\d:])"), _time),
    Rule(re.compile(rf"{LEFT}(?P<a>{NUM})\s?[-–—~～]\s?(?P<b>{NUM}){RIGHT}"), _range),
    Rule(re.compile(rf"{LEFT}(?P<y>\d{{4}})(?=年)"), _year),
    Rule(re.compile(rf"{LEFT}{_SIGNED}{RIGHT}"), _plain),
)
