"""Final-answer extraction and numeric comparison, for every language in the table.

Canonical form: ASCII digits, optional leading ``-``, no thousands separators, ``.`` as the decimal
point, no trailing fractional zeros and no ``-0`` ("1250", "-3.5", "0.25").

Where the answer is (``extract_answer``):

* Markers are the language's ``answer_phrases`` (all languages' phrases when ``lang`` is None; matched
  case-sensitively, as the table spells them), ``\\boxed{`` / ``\\fbox{`` and ``####``. A phrase inside
  the step-by-step cue (``Step-by-Step Answer:`` contains ``Answer:``) is not a marker.
* The last marker wins, whatever its kind. Its answer is the first number after it and before the next
  marker (inside the braces for ``\\boxed{}``). If that number starts an arithmetic chain on the same line
  ("5 + 6 = 11", ``\\boxed{9 \\times 2 = 18}``), the number after the last ``=`` is taken.
* A marker with no number there is skipped (the one before it is tried); with no usable marker the last
  number in the text is the answer; with no number at all the result is None.

What a number is:

* Any Unicode decimal digit (category Nd: Bengali, Telugu, Thai, Devanagari, Arabic-Indic, full-width, ...),
  converted with ``unicodedata.decimal``. Numbers may be glued to words ("১৮টি", "18元", "答えは18です").
* A sign ``-`` / ``−`` (U+2212) / full-width minus counts when it directly precedes the number (a currency
  symbol may sit between: "-$5") and does not follow a digit, a Latin letter, ``.``, ``,`` or a closing bracket
  ("5-3" is 5 and 3).
* Currency symbols, units and ``%`` around a number are ignored; a sentence-final period is not a decimal
  point ("11." is 11, "5.5." is 5.5). ``\\frac{a}{b}`` (also ``\\dfrac``/``\\tfrac``) is a/b, rounded to 28
  significant digits when it does not terminate ("\\frac{1}{2}" is 0.5).

Separators (``,`` ``.``; their full-width forms; Arabic ``٫`` decimal and ``٬`` thousands; and the
grouping-only ``'`` ``’`` space, NBSP U+00A0, narrow NBSP U+202F, LaTeX ``{,}`` and ``\\,``):

1. Grouping-only separators are thousands separators, and only between a 1-3 digit head and 3-digit groups
   ("1 250", "1'250"); "12 345 678" is fine, "5 12" is two numbers.
2. If both ``,`` and ``.`` occur, the later one is the decimal separator ("1.250,5" and "1,250.5" are 1250.5).
3. A separator that repeats between 3-digit groups is a thousands separator ("1,250,000", "1.250.000");
   Indian grouping "1,25,000" is 125000.
4. A single separator not followed by exactly three digits is a decimal separator ("3,5", "0,25", "12.75",
   "1250,5").
5. A single separator followed by exactly three digits (after a 1-3 digit head):

   * a ``0`` head makes it decimal ("0,250", "0.125" are 0.25 and 0.125);
   * ``.`` is decimal when the language writes decimals with ``.`` (and when ``lang`` is None), and
     thousands when it writes them with ``,`` (de "1.250" is 1250, en "1.250" is 1.25);
   * ``,`` is thousands ("1,250" is 1250 in every language, as models write it), unless the language writes
     decimals with ``,`` AND the same text uses ``,`` as a decimal separator elsewhere (a ``,`` between
     digits followed by 1-2 or 4+ digits): de "2,5 kg ... 1,250" makes "1,250" 1.25.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Context, Decimal
from typing import NamedTuple

from .languages import LANGUAGES, get_language

_CONTEXT = Context(prec=28)
#: The separators rule 5 applies to, normalised.
_AMBIGUOUS = {",": ",", "\uff0c": ",", ".": ".", "\uff0e": "."}

_NUMBER = re.compile(
    r"(?:(?<![\dA-Za-z)\]}.,])(?P<sign>[-\u2212\uff0d\ufe63]))?"
    r"(?:\\?[$€£¥₹][^\S\n]?)?"
    r"(?:"
    r"\\[dt]?frac\{\s*(?P<num>\d+)\s*\}\{\s*(?P<den>\d+)\s*\}"
    r"|(?P<grouped>\d{1,3}(?P<g>[,.'’ \u00a0\u202f\uff0c\uff0e\u066c]|\{,\}|\\,)\d{3}(?!\d)"
    r"(?:(?P=g)\d{3}(?!\d))*)(?:(?!(?P=g))[.,\uff0c\uff0e\u066b](?P<gfrac>\d+))?"
    r"|(?P<indian>\d{1,2}(?:,\d{2}){1,6},\d{3}(?!\d))(?:\.(?P<ifrac>\d+))?"  # bounded: no quadratic scans
    r"|(?P<int>\d+)(?:[.,\uff0c\uff0e\u066b](?P<frac>\d+))?"
    r")"
)
#: Operators and operands after a number, up to ``=``, on the same line: "5 + 6 = 11".
_CHAIN = re.compile(
    r"[^\S\n]*(?:[-+*/×÷·^xX\u2212]|\\times|\\cdot|\\div)"
    r"(?:[^\S\n]|[\d.,()$€£¥₹%+\-*/×÷·^xX\u2212{}]|\\(?:times|cdot|div|[dt]?frac|left|right|\$|,))*"
    r"[=＝][^\S\n]*"
)
_OPEN_BRACE = re.compile(r"\s*\{")
#: The rest of a ``\boxed{`` up to its closing brace (nesting up to three levels).
_BRACED = re.compile(r"(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*(?=\})")
#: ``,`` used as a decimal separator: between digits and followed by 1-2 or 4+ digits.
_COMMA_DECIMAL = re.compile(r"\d[,\uff0c](?:\d{1,2}|\d{4,})(?!\d)")
_NON_DIGIT = re.compile(r"\D")
_LAST_DIGIT = re.compile(r"(?s:.*)\d")
#: The last character that no ``_NUMBER`` match can contain: forward scanning may restart after it.
_LAST_BOUNDARY = re.compile(r"(?s:.*)[^\d\s\-\u2212\uff0d\ufe63\\$€£¥₹,.'’\uff0c\uff0e\u066b\u066c{}dtfrac]")

_BOXES = ("\\boxed", "\\fbox")


class _Markers(NamedTuple):
    #: Answer phrases plus ``####``, ``\boxed`` and ``\fbox``.
    phrases: tuple[str, ...]
    #: phrase -> ((cue, offset of the phrase inside the cue), ...), for phrases that occur in a cue.
    in_cue: dict[str, tuple[tuple[str, int], ...]]
    #: Cues (group ``cue``: swallowed, so the phrases inside them are no markers) or markers, longest first.
    pattern: re.Pattern[str]


def _alternation(texts: set[str]) -> str:
    return "|".join(map(re.escape, sorted(texts, key=len, reverse=True)))


def _markers(codes: tuple[str, ...]) -> _Markers:
    phrases = {p for c in codes for p in LANGUAGES[c].answer_phrases} | {"####", *_BOXES}
    cues = {LANGUAGES[c].cot_cue for c in codes}
    in_cue = {p: tuple((cue, cue.find(p)) for cue in cues if p in cue) for p in phrases}
    return _Markers(
        tuple(sorted(phrases)),
        {p: found for p, found in in_cue.items() if found},
        re.compile(f"(?P<cue>{_alternation(cues)})|{_alternation(phrases)}"),
    )


_MARKERS: dict[str | None, _Markers] = {code: _markers((code,)) for code in LANGUAGES}
_MARKERS[None] = _markers(tuple(LANGUAGES))


def _digits(s: str) -> str:
    """ASCII form of a string of Unicode decimal digits."""
    return s if s.isascii() else "".join(str(unicodedata.decimal(c)) for c in s)


def _format(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _lone_group_is_decimal(sep: str, head: str, text: str, decimal_sep: str) -> bool:
    """Rule 5: is the single separator in "<head><sep><3 digits>" a decimal separator?"""
    sep = _AMBIGUOUS.get(sep, "")
    if not sep:
        return False
    if int(_digits(head)) == 0:
        return True
    if sep == ".":
        return decimal_sep == "."
    return decimal_sep == "," and _COMMA_DECIMAL.search(text) is not None


def _value(m: re.Match[str], decimal_sep: str) -> str | None:
    """Canonical string of one ``_NUMBER`` match (None for a zero denominator)."""
    sign = "-" if m["sign"] else ""
    if m["den"] is not None:
        den = Decimal(_digits(m["den"]))
        if not den:
            return None
        return _format(_CONTEXT.divide(Decimal(sign + _digits(m["num"])), den))
    if m["grouped"] is not None:
        body, sep, frac = m["grouped"], m["g"], m["gfrac"]
        if frac is None and body.count(sep) == 1:
            head, tail = body.split(sep)
            if _lone_group_is_decimal(sep, head, m.string, decimal_sep):
                return _format(Decimal(f"{sign}{_digits(head)}.{_digits(tail)}"))
        whole = _digits(_NON_DIGIT.sub("", body))
    elif m["indian"] is not None:
        whole, frac = _digits(m["indian"].replace(",", "")), m["ifrac"]
    else:
        whole, frac = _digits(m["int"]), m["frac"]
    return _format(Decimal(f"{sign}{whole}.{_digits(frac)}" if frac else sign + whole))


def _answer_after(text: str, start: int, stop: int, decimal_sep: str) -> str | None:
    """The first number in ``text[start:stop]``, followed along an arithmetic chain ("5 + 6 = 11")."""
    m = _NUMBER.search(text, start, stop)
    while m is not None:
        chain = _CHAIN.match(text, m.end(), stop)
        following = _NUMBER.match(text, chain.end(), stop) if chain else None
        if following is None:
            return _value(m, decimal_sep)
        m = following
    return None


def _marker_answer(text: str, start: int, marker: str, stop: int, decimal_sep: str) -> str | None:
    """The answer the marker at ``start`` introduces, looking no further than ``stop``."""
    begin = start + len(marker)
    if marker in _BOXES and (brace := _OPEN_BRACE.match(text, begin, stop)) is not None:
        begin = brace.end()
        braced = _BRACED.match(text, begin, stop)
        stop = braced.end() if braced else stop
    return _answer_after(text, begin, stop, decimal_sep)


def _last_marker(text: str, before: int, markers: _Markers) -> tuple[int, str]:
    """Start and text of the last marker starting before ``before`` (longest on a tie), or (-1, "")."""
    start, marker = -1, ""
    for phrase in markers.phrases:
        i = text.rfind(phrase, 0, before - 1 + len(phrase))
        if i > start or (i == start and len(phrase) > len(marker)):
            start, marker = i, phrase
    return start, marker


def _last_number(text: str, last_digit: int, decimal_sep: str) -> str | None:
    """The last number in ``text``, scanning forward only from the last point no number can span."""
    boundary = _LAST_BOUNDARY.match(text, 0, last_digit)
    last = None
    for last in _NUMBER.finditer(text, boundary.end() if boundary else 0):
        pass
    return _value(last, decimal_sep) if last is not None else None


def extract_answer(text: str, lang: str | None = None) -> str | None:
    """The final numeric answer of a response in canonical form, or None (rules: module docstring)."""
    decimal_sep = get_language(lang).decimal_sep if lang is not None else "."
    digit = _LAST_DIGIT.match(text)
    if digit is None:
        return None
    last_digit = digit.end() - 1
    markers = _MARKERS[lang]
    # Fast path: the last marker before the last digit (str.rfind), unless it is part of a cue.
    start, marker = _last_marker(text, last_digit, markers)
    if start < 0:
        return _last_number(text, last_digit, decimal_sep)
    in_cue = markers.in_cue.get(marker, ())
    if not any(start >= off and text.startswith(cue, start - off) for cue, off in in_cue):
        answer = _marker_answer(text, start, marker, len(text), decimal_sep)
        if answer is not None:
            return answer
    # Rare: one forward scan for all markers, then each one up to the next (linear in the text).
    stop = len(text)
    for m in reversed([m for m in markers.pattern.finditer(text, 0, last_digit) if m["cue"] is None]):
        answer = _marker_answer(text, m.start(), m.group(), stop, decimal_sep)
        if answer is not None:
            return answer
        stop = m.start()
    return _last_number(text, last_digit, decimal_sep)


def canonical_number(s: str, lang: str | None = None) -> str | None:
    """Canonical form of a string holding exactly one number ("2,125" -> "2125", "5.50" -> "5.5"), else None."""
    decimal_sep = get_language(lang).decimal_sep if lang is not None else "."
    found = list(_NUMBER.finditer(s))
    return _value(found[0], decimal_sep) if len(found) == 1 else None


def numbers_in(text: str, lang: str | None = None) -> list[str]:
    """Every number of ``text`` in canonical form, in order, each read with ``lang``'s separators (the rules of
    the module docstring: de "1.250" is 1250 and "1,5" is 1.5, fr "1 250" is 1250, en "1,250" is 1250)."""
    decimal_sep = get_language(lang).decimal_sep if lang is not None else "."
    return [value for m in _NUMBER.finditer(text) if (value := _value(m, decimal_sep)) is not None]


def answers_equal(predicted: str | None, gold: str | None) -> bool:
    """Numeric equality via canonical forms (unique per value); None or a non-number never equals anything."""
    if predicted is None or gold is None:
        return False
    a, b = canonical_number(predicted), canonical_number(gold)
    return a is not None and a == b
