"""English number words: cardinals, ordinals, years, decades, decimals and digit strings.

American style, as the voice is American: no "and" inside a number ("one hundred five"), hyphens
between tens and units ("twenty-one"), years in pairs ("eighteen thirteen", "nineteen oh five").
"""

from __future__ import annotations

ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
LARGEST_SPOKEN = 10**15 - 1  # above this a number is read digit by digit
_ORDINAL_ENDINGS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                    "nine": "ninth", "twelve": "twelfth"}


def cardinal(n: int) -> str:
    """Return `n` in words: 1234 -> "one thousand two hundred thirty-four"."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n > LARGEST_SPOKEN:
        return digits(str(n))
    if n < 20:
        return ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return TENS[tens] + (f"-{ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{ONES[hundreds]} hundred" + (f" {cardinal(rest)}" if rest else "")
    for size, name in SCALES:
        if n >= size:
            high, rest = divmod(n, size)
            return f"{cardinal(high)} {name}" + (f" {cardinal(rest)}" if rest else "")
    raise AssertionError(n)  # unreachable: every n >= 1000 has a scale


def ordinal(n: int) -> str:
    """Return `n` as an ordinal: 22 -> "twenty-second", 103 -> "one hundred third"."""
    words = cardinal(n)
    head, sep, last = _split_last(words)
    if last in _ORDINAL_ENDINGS:
        last = _ORDINAL_ENDINGS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def year(n: int) -> str:
    """Return `n` read as a year: 1813 -> "eighteen thirteen", 2005 -> "two thousand five"."""
    if not 1000 <= n <= 9999 or n % 1000 == 0 or 2000 <= n <= 2009:
        return cardinal(n)
    high, low = divmod(n, 100)
    if low == 0:
        return f"{cardinal(high)} hundred"
    return f"{cardinal(high)} " + (f"oh {ONES[low]}" if low < 10 else cardinal(low))


def two_digit_year(text: str) -> str:
    """Return a year's last two digits as said: "05" -> "oh five", "87" -> "eighty-seven"."""
    n = int(text)
    return f"oh {ONES[n]}" if text.startswith("0") and n else cardinal(n)


def plural(words: str) -> str:
    """Return number words made plural: "nineteen ninety" -> "nineteen nineties", "six" -> "sixes"."""
    head, sep, last = _split_last(words)
    if last.endswith("y"):
        last = last[:-1] + "ies"
    elif last.endswith(("s", "x")):
        last += "es"
    else:
        last += "s"
    return head + sep + last


def digits(text: str) -> str:
    """Return each digit of `text` in words: "007" -> "zero zero seven"."""
    return " ".join(ONES[int(c)] for c in text if c.isdigit())


def decimal(whole: str, fraction: str) -> str:
    """Return a decimal number in words: ("3", "14") -> "three point one four"."""
    head = number(whole) if whole else ""
    return (head + " point " + digits(fraction)).strip()


def number(text: str) -> str:
    """Return an integer as written ("1,234", "007") in words; a leading zero reads digit by digit."""
    plain = text.replace(",", "")
    if len(plain) > 1 and plain.startswith("0"):
        return digits(plain)
    return cardinal(int(plain))


def _split_last(words: str) -> tuple[str, str, str]:
    cut = max(words.rfind(" "), words.rfind("-"))
    if cut < 0:
        return "", "", words
    return words[:cut], words[cut], words[cut + 1 :]
