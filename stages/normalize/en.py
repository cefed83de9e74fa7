"""English numbers in context: money, times, dates, years, ordinals, ranges, percentages, plain numbers.

Rules run in this order and the first to claim a stretch decides it. Strings that only look like
numbers are claimed early and kept as written, for the engine to spell out: versions and addresses
("1.2.3"), times with seconds, phone numbers ("555-1234") and dates with slashes ("12/05/1813",
which could be 12 May or December 5: we do not guess).
"""

from __future__ import annotations

import re

from stages.normalize.edits import Context, Edit, Rule
from stages.normalize.numbers import (ONES, cardinal, decimal, digits, number, ordinal, plural, two_digit_year,
                                      year)

NUM = r"\d{1,3}(?:,\d{3})+|\d+"
LEFT = r"(?<![\w.,:/\-−])"  # not glued to a word or to another number
RIGHT = r"(?![\w]|[.,:]\d)"
MONTHS = ("January February March April May June July August September October November December").split()
MONTH_ABBREVIATIONS = {"Jan": "January", "Feb": "February", "Mar": "March", "Apr": "April", "Jun": "June",
                       "Jul": "July", "Aug": "August", "Sep": "September", "Sept": "September",
                       "Oct": "October", "Nov": "November", "Dec": "December"}
_MONTH = "(?P<month>" + "|".join(MONTHS) + "|(?:" + "|".join(MONTH_ABBREVIATIONS) + r")\.)"
CURRENCIES = {  # symbol: (unit, units, hundredth, hundredths)
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", "", ""),
}
UNITS = {"km": "kilometre", "kg": "kilogram", "cm": "centimetre", "mm": "millimetre", "mph": "mile per hour",
         "lb": "pound", "lbs": "pound", "oz": "ounce", "ft": "foot", "yd": "yard", "yds": "yard"}
_IRREGULAR_PLURALS = {"foot": "feet", "mile per hour": "miles per hour"}
FRACTIONS = {"½": ("half", "halves"), "⅓": ("third", "thirds"), "⅔": ("third", "thirds"),
             "¼": ("quarter", "quarters"), "¾": ("quarter", "quarters"), "⅛": ("eighth", "eighths"),
             "⅜": ("eighth", "eighths"), "⅝": ("eighth", "eighths"), "⅞": ("eighth", "eighths")}
_FRACTION_TOP = {"½": 1, "⅓": 1, "⅔": 2, "¼": 1, "¾": 3, "⅛": 1, "⅜": 3, "⅝": 5, "⅞": 7}
_SIMPLE_FRACTIONS = {"1/2": "one half", "1/3": "one third", "2/3": "two thirds", "1/4": "one quarter",
                     "3/4": "three quarters"}
# words after which a four-digit number is a year ("in 1813", "March, 1883", "1869 or 1870")
_YEAR_CUE = re.compile(
    r"(?:\b(?i:in|of|since|by|from|until|till|to|year|years|summer|winter|spring|autumn|circa|c\.|ca\.|born|"
    r"died|about|before|after|during|around|early|late|mid|between)|\b(?:" + "|".join(MONTHS) + r")|"
    r"\d{4}\s(?:or|and|to))[\s,]*$"
)
_DECADE_CUE = re.compile(r"(?:\b(?i:the|early|late|mid|his|her|their|our|my|your)\s|[’'‘])$")  # "the 60s."


def _number_words(whole: str, fraction: str | None, negative: bool = False) -> str:
    words = decimal(whole, fraction) if fraction else number(whole)
    return ("minus " if negative else "") + words


def _protect(m: re.Match, ctx: Context) -> str | list:
    """Keep look-alikes as written; say the common fractions ("3/4" -> "three quarters")."""
    return _SIMPLE_FRACTIONS.get(m.group(), [])


def _currency(m: re.Match, ctx: Context) -> str:
    unit, units, cent, cents = CURRENCIES[m.group("sym")]
    whole, frac, scale = m.group("int"), m.group("frac"), m.group("scale")
    amount = int(whole.replace(",", ""))
    if ctx.next_word(m.end()).lower().rstrip(",.;:") in ("note", "notes", "bill", "bills", "coin", "coins"):
        units = unit  # "a £1,000 note": a thousand-pound note
    if scale:
        return f"{_number_words(whole, frac)} {scale} {units}"
    if frac and not cent:
        return f"{_number_words(whole, frac)} {units}"
    hundredths = int(frac.ljust(2, "0")) if frac else 0
    parts = []
    if amount or not hundredths:
        parts.append(f"{number(whole)} {unit if amount == 1 else units}")
    if hundredths:
        parts.append(f"{cardinal(hundredths)} {cent if hundredths == 1 else cents}")
    return " and ".join(parts)


def _cents(m: re.Match, ctx: Context) -> str:
    n = int(m.group("int").replace(",", ""))
    return f"{number(m.group('int'))} {'cent' if n == 1 else 'cents'}"


def _meridiem(m: re.Match, ctx: Context) -> str:
    """Return " AM" / " PM" (said as letters), with the full stop kept when the "p.m." also ends the sentence."""
    if not m.group("ap"):
        return ""
    say = " AM" if m.group("ap") in "Aa" else " PM"
    if m.group().endswith(".") and ctx.sentence_may_end(m.end()):
        say += "."
    return say


def _time(m: re.Match, ctx: Context) -> str | None:
    hour, minute = int(m.group("h")), int(m.group("m"))
    if hour > 24 or minute > 59:
        return None
    if minute == 0:
        tail = "" if m.group("ap") else " o'clock"
    elif minute < 10:
        tail = f" oh {ONES[minute]}"
    else:
        tail = f" {cardinal(minute)}"
    return cardinal(hour) + tail + _meridiem(m, ctx)


def _hour(m: re.Match, ctx: Context) -> str | None:
    hour = int(m.group("h"))
    return cardinal(hour) + _meridiem(m, ctx) if 0 < hour <= 12 else None


def _month_edit(m: re.Match) -> list[Edit]:
    month = m.group("month")
    if month.endswith("."):
        return [Edit(m.start("month"), m.end("month"), MONTH_ABBREVIATIONS[month[:-1]])]
    return []


def _year_edit(m: re.Match) -> list[Edit]:
    return [Edit(m.start("year"), m.end("year"), year(int(m.group("year"))))] if m.group("year") else []


def _month_day(m: re.Match, ctx: Context) -> list[Edit] | None:
    day = int(m.group("day"))
    if not 1 <= day <= 31:
        return None
    return [*_month_edit(m), Edit(m.start("dayx"), m.end("dayx"), ordinal(day)), *_year_edit(m)]


def _day_month(m: re.Match, ctx: Context) -> list[Edit] | None:
    day = int(m.group("day"))
    if not 1 <= day <= 31:
        return None
    say = ordinal(day)
    if not m.group("of"):
        say = f"{say} of"
        if not re.search(r"\b[Tt]he\s+$", ctx.before(m.start())):
            say = f"the {say}"
    return [Edit(m.start("dayx"), m.end("dayx"), say), *_month_edit(m), *_year_edit(m)]


def _month_year(m: re.Match, ctx: Context) -> list[Edit]:
    return [*_month_edit(m), *_year_edit(m)]


def _short_year(m: re.Match, ctx: Context) -> str:
    words = two_digit_year(m.group("yy"))
    return plural(words) if m.group("s") else words


def _decade(m: re.Match, ctx: Context) -> str | None:
    n = int(m.group("n"))
    if n % 10:
        return None
    if len(m.group("n")) == 4:
        return plural(year(n))
    return plural(cardinal(n)) if n >= 20 else None


def _year(m: re.Match, ctx: Context) -> str | None:
    n = int(m.group("y"))
    if not 1000 <= n <= 2099:
        return None
    if _YEAR_CUE.search(ctx.before(m.start(), 40)):
        return year(n)
    if re.match(r"\s*(?:$|[^\w\s]|A\.?D\b|B\.?C\b)", ctx.after(m.end(), 8)):
        return year(n)  # "General 1869," "in the Army List 1840." -- nothing after it but punctuation
    return None  # "1500 men": a count


def _old_money(m: re.Match, ctx: Context) -> str | None:
    n, unit = int(m.group("n")), m.group("u")
    if not m.group("dot") and not re.search(r"£[\d,]+\s$", ctx.before(m.start())):
        return None
    if unit == "s" and n >= 20 and n % 10 == 0 and _DECADE_CUE.search(ctx.before(m.start())):
        return None  # "in the 60s." is a decade
    names = ("shilling", "shillings") if unit == "s" else ("penny", "pence")
    say = f"{cardinal(n)} {names[n != 1]}"
    if m.group("dot") and ctx.sentence_may_end(m.end()):
        say += "."
    return say


def _ordinal(m: re.Match, ctx: Context) -> str:
    return ordinal(int(m.group("n").replace(",", "")))


def _is_year_like(text: str) -> bool:
    return len(text) == 4 and 1000 <= int(text) <= 2099


def _range(m: re.Match, ctx: Context) -> str | list:
    a, b, sep = m.group("a"), m.group("b"), m.group("sep").strip()
    if _is_year_like(a) and (_is_year_like(b) or (len(b) == 2 and sep in "–-")):
        return f"{year(int(a))} to " + (year(int(b)) if len(b) == 4 else two_digit_year(b))
    if sep == "-" and (len(a.replace(",", "")) > 3 or len(b.replace(",", "")) > 3):
        return []  # "12-3456" is an id or a phone number, not a range
    return f"{number(a)} to {number(b)}"


def _percent(m: re.Match, ctx: Context) -> str:
    return _number_words(m.group("int"), m.group("frac"), bool(m.group("neg"))) + " percent"


def _degrees(m: re.Match, ctx: Context) -> str:
    words = _number_words(m.group("int"), m.group("frac"), bool(m.group("neg")))
    unit = "degree" if words == "one" else "degrees"
    scale = {"C": " Celsius", "F": " Fahrenheit"}.get(m.group("scale") or "", "")
    return f"{words} {unit}{scale}"


def _fraction(m: re.Match, ctx: Context) -> str:
    mark, whole = m.group("f"), m.group("int")
    one, many = FRACTIONS[mark]
    top = _FRACTION_TOP[mark]
    part = f"{cardinal(top)} {many}" if top > 1 else ("an " if one == "eighth" else "a ") + one
    if whole:
        return f"{number(whole)} and {part}"
    return part if top > 1 else f"one {one}"


def _unit(m: re.Match, ctx: Context) -> str:
    words = _number_words(m.group("int"), m.group("frac"))
    name = UNITS[m.group("unit")]
    if words != "one":
        name = _IRREGULAR_PLURALS.get(name, name + "s")
    return f"{words} {name}"


def _house_number(m: re.Match, ctx: Context) -> str:
    """Return a house number with its letter: "221B" -> "two twenty-one B", "16A" -> "sixteen A"."""
    n = m.group("n")
    if len(n) == 3 and n[1:] != "00":
        words = f"{ONES[int(n[0])]} {two_digit_year(n[1:])}"
    else:
        words = number(n)
    return f"{words} {m.group('letter')}"


def _plain(m: re.Match, ctx: Context) -> str:
    return _number_words(m.group("int"), m.group("frac"), bool(m.group("neg")))


def _spell(m: re.Match, ctx: Context) -> str:
    return digits(m.group())


_SIGNED = rf"(?P<neg>[-−](?=\d))?(?P<int>{NUM})(?:\.(?P<frac>\d+))?"
_DAY = r"(?P<dayx>(?P<day>\d{1,2})(?:st|nd|rd|th)?)"  # dayx: the day with its ordinal ending
_YEAR_AFTER = r"(?:,?\s(?P<year>\d{4})(?![\w]))?"
_AMPM = r"(?:\s?(?P<ap>[AaPp])(?:\.\s?[Mm]\.|[Mm]\b))?"

RULES = (
    Rule(re.compile(r"(?<![\w.])(?:\d+(?:\.\d+){2,}|\d{1,2}:\d{2}:\d{2}|\d{1,4}/\d{1,2}(?:/\d{1,4})?"
                    r"|\d{4}-\d{2}-\d{2}|\(\d{3}\)\s?\d{3}-\d{4}|\d{3}-\d{3}-\d{4}|\d{3}-\d{4}(?![\d-])"
                    r"|\+\d{1,3}(?:[ -]\d{2,4}){2,})(?![\w/])"), _protect),
    Rule(re.compile(rf"(?P<sym>[$£€¥])\s?(?P<int>{NUM})(?:\.(?P<frac>\d{{1,2}}))?(?!\d|[.,]\d)"
                    r"(?:\s(?P<scale>thousand|million|billion|trillion)\b)?"), _currency),
    Rule(re.compile(rf"{LEFT}(?P<int>{NUM})\s?¢"), _cents),
    Rule(re.compile(rf"(?<![\w.:])(?P<h>\d{{1,2}}):(?P<m>\d{{2}})(?![\d:]){_AMPM}"), _time),
    Rule(re.compile(rf"{LEFT}(?P<h>\d{{1,2}})\s?(?P<ap>[AaPp])(?:\.\s?[Mm]\.|[Mm]\b)"), _hour),
    Rule(re.compile(rf"\b{_MONTH}\s{_DAY}(?![\w]){_YEAR_AFTER}"),
         _month_day),
    Rule(re.compile(rf"{LEFT}{_DAY}\s(?P<of>of\s)?{_MONTH}{_YEAR_AFTER}"),
         _day_month),
    Rule(re.compile(rf"\b{_MONTH},?\s(?P<year>\d{{4}})(?![\w]|[.,]\d)"), _month_year),
    Rule(re.compile(r"(?<![\w’'])[’'](?P<yy>\d{2})(?P<s>s)?(?![\w])"), _short_year),
    Rule(re.compile(rf"{LEFT}(?P<n>\d{{1,3}})(?P<u>[sd])(?P<dot>\.)?(?![\w])"), _old_money),
    Rule(re.compile(rf"{LEFT}(?P<n>\d{{2}}|\d{{4}})s(?![\w])"), _decade),
    Rule(re.compile(rf"{LEFT}(?P<a>{NUM})(?P<sep>\s?–\s?|-)(?P<b>{NUM}){RIGHT}"), _range),
    Rule(re.compile(rf"{LEFT}(?P<y>\d{{4}}){RIGHT}"), _year),
    Rule(re.compile(rf"{LEFT}(?P<n>{NUM})(?:st|nd|rd|th)(?![\w])"), _ordinal),
    Rule(re.compile(rf"{LEFT}{_SIGNED}\s?%"), _percent),
    Rule(re.compile(rf"{LEFT}{_SIGNED}\s?°\s?(?P<scale>[CF])?(?![\w])"), _degrees),
    Rule(re.compile(rf"{LEFT}(?P<int>\d+)?(?P<f>[½⅓⅔¼¾⅛⅜⅝⅞])"), _fraction),
    Rule(re.compile(rf"{LEFT}(?P<int>{NUM})(?:\.(?P<frac>\d+))?\s?(?P<unit>{'|'.join(UNITS)})(?![\w])"), _unit),
    Rule(re.compile(rf"{LEFT}(?P<n>\d{{1,4}})(?P<letter>[A-Z])(?![\w])"), _house_number),
    Rule(re.compile(rf"{LEFT}\d{{16,}}(?![\w])"), _spell),
    Rule(re.compile(rf"{LEFT}{_SIGNED}{RIGHT}"), _plain),
)
