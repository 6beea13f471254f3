"""Answer extraction and comparison (``bestofl_tasks.answers``): real data and the tricky formats.

The data tests read the MGSM copy the package ships (every row) and the GSM8K slice under ``tests/data``; with
``BESTOFL_FULL_DATA_DIR=DIR`` (a folder laid out as docs/TASKS.md's "Offline data") they read every GSM8K solution there.
Gold numbers are computed independently of the module under test (``str(int(s.replace(",", "")))``).
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

import pytest

from bestofl_tasks.answers import answers_equal, canonical_number, extract_answer
from bestofl_tasks.data import EMBEDDED_MGSM
from bestofl_tasks.languages import LANGUAGES, MGSM_LANGUAGES, final_answer_line

from fixtures import DATA_DIR  # tests/ is on sys.path (rootdir conftest)

#: Optional: a full copy of the data (e.g. all 8,792 GSM8K solutions) for the same checks at full size.
FULL_DATA = os.environ.get("BESTOFL_FULL_DATA_DIR")
DATA = Path(FULL_DATA) if FULL_DATA else DATA_DIR
#: GSM8K rows: the whole files, or the slices in tests/data (tests/data/README.md).
GSM8K_ROWS = {"train": 7473, "test": 1319} if FULL_DATA else {"train": 560, "test": 150}

#: ASCII digits -> native digits, for the scripts the extractor must read.
SCRIPTS = {
    "bengali": "০১২৩৪৫৬৭৮৯",
    "telugu": "౦౧౨౩౪౫౬౭౮౯",
    "thai": "๐๑๒๓๔๕๖๗๘๙",
    "devanagari": "०१२३४५६७८९",
    "arabic-indic": "٠١٢٣٤٥٦٧٨٩",
    "full-width": "０１２３４５６７８９",
}


def native(text: str, digits: str) -> str:
    return text.translate(str.maketrans("0123456789", digits))


def gold_of(number: str) -> str:
    """Independent canonical form of an integer gold such as "2,125"."""
    return str(int(number.replace(",", "")))


def read_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8", newline="\n") as handle:
        return [line for line in handle.read().split("\n") if line.strip()]


@functools.lru_cache(maxsize=None)
def gsm8k_solutions(split: str) -> list[str]:
    return [json.loads(line)["answer"] for line in read_lines(DATA / "gsm8k" / f"{split}.jsonl")]


@functools.lru_cache(maxsize=None)
def mgsm_rows(lang: str) -> list[tuple[str, str]]:
    return [tuple(line.split("\t")) for line in read_lines(EMBEDDED_MGSM / f"mgsm_{lang}.tsv")]


# --------------------------------------------------------------------------- real data


@pytest.mark.parametrize("lang", MGSM_LANGUAGES)
def test_mgsm_exemplars(lang):
    rows = [json.loads(line) for line in read_lines(EMBEDDED_MGSM / "mgsm_exemplars.jsonl")]
    rows = [row for row in rows if row["lang"] == lang]
    assert len(rows) == 8
    for row in rows:
        assert extract_answer(row["answer"], lang) == str(row["answer_number"]), row["answer"]
        assert extract_answer(row["answer"]) == str(row["answer_number"]), row["answer"]


@pytest.mark.parametrize("script", [None, *SCRIPTS])
@pytest.mark.parametrize("split", ["train", "test"])
def test_gsm8k_solutions(split, script):
    solutions = gsm8k_solutions(split)
    assert len(solutions) == GSM8K_ROWS[split]
    wrong = []
    for solution in solutions:
        gold = gold_of(solution.rsplit("####", 1)[1].strip())
        text = native(solution, SCRIPTS[script]) if script else solution
        if extract_answer(text) != gold:
            wrong.append((gold, text[-80:]))
    assert not wrong, f"{len(wrong)} wrong, e.g. {wrong[:3]}"


@pytest.mark.parametrize("lang", MGSM_LANGUAGES)
def test_mgsm_gold_answers_canonicalize(lang):
    rows = mgsm_rows(lang)
    assert len(rows) == 250
    assert all(len(row) == 2 for row in rows)  # exactly one tab per line
    for _, answer in rows:
        assert canonical_number(answer, lang) == gold_of(answer)
        assert canonical_number(answer) == gold_of(answer)
    assert [canonical_number(rows[i][1]) for i in (146, 201, 230, 249)] == ["2125", "114200", "276000", "5600"]


@pytest.mark.parametrize("lang", MGSM_LANGUAGES)
def test_mgsm_question_then_final_line(lang):
    """The question's own numbers (e.g. "80.000 US-Dollar") precede the final line; the final line wins."""
    digits = LANGUAGES[lang].native_digits
    for question, answer in mgsm_rows(lang):
        gold = gold_of(answer)
        text = f"{question}\n{final_answer_line(gold, lang)}"
        assert extract_answer(text, lang) == gold, text
        assert extract_answer(text) == gold, text
        if digits:
            assert extract_answer(f"{question}\n{final_answer_line(native(gold, digits), lang)}", lang) == gold


# --------------------------------------------------------------------------- every phrase of the table


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_every_answer_phrase_and_final_line(lang):
    for phrase in LANGUAGES[lang].answer_phrases:
        text = f"3 + 4 = 7, 7 * 2 = 14. {phrase} 18. (2 + 3)"
        assert extract_answer(text, lang) == "18", phrase
        assert extract_answer(text) == "18", phrase
    for number in ("18", "-3", "1250", "0.25"):
        assert extract_answer("5 + 6 = 11. " + final_answer_line(number, lang), lang) == number


# --------------------------------------------------------------------------- tricky formats

PHRASES = [
    ("The answer is 18.", "en"),
    ("The final answer is 18.", "en"),
    ("Die Antwort lautet 18.", "de"),
    ("Die Antwort ist 18.", "de"),
    ("La respuesta es 18.", "es"),
    ("La réponse est 18.", "fr"),
    ("Ответ — 18.", "ru"),
    ("Ответ: 18", "ru"),
    ("答案是 18。", "zh"),
    ("答えは18です。", "ja"),
    ("คำตอบคือ 18", "th"),
    ("Jibu ni 18.", "sw"),
    ("উত্তর হল ১৮।", "bn"),
    ("సమాధానం 18.", "te"),
    ("La risposta è 18.", "it"),
]


@pytest.mark.parametrize("phrase, lang", PHRASES)
def test_answer_phrase_beats_later_numbers(phrase, lang):
    text = f"Janet has 16 eggs, eats 3 and bakes 4: 16 - 3 - 4 = 9; 9 * 2 = 18.\n{phrase}\n(2 eggs, 7 days)"
    assert extract_answer(text, lang) == "18"
    assert extract_answer(text) == "18"


CASES = [
    # thousands vs decimal separators (module docstring, rules 1-5)
    ("Die Antwort lautet 1.250.", "de", "1250"),
    ("Die Antwort lautet 1,250.", "de", "1250"),
    ("Sie braucht 2,5 kg Mehl. Die Antwort lautet 1,250.", "de", "1.25"),
    ("Er kauft für 80.000 €. Die Antwort lautet 70,000.", "de", "70000"),
    ("The answer is 1.250.", "en", "1.25"),
    ("The answer is 1,250.", "en", "1250"),
    ("The answer is 1,250.", None, "1250"),
    ("The answer is 1,250.5", "en", "1250.5"),
    ("Die Antwort lautet 1.250,5.", "de", "1250.5"),
    ("The answer is 1,250,000.", "en", "1250000"),
    ("Die Antwort lautet 1.250.000.", "de", "1250000"),
    ("La réponse est 3,5.", "fr", "3.5"),
    ("La réponse est 0,25.", "fr", "0.25"),
    ("La respuesta es 0,125.", "es", "0.125"),
    ("The answer is 0.125.", "en", "0.125"),
    ("The answer is 12.75.", "en", "12.75"),
    ("Die Antwort lautet 1250,5.", "de", "1250.5"),
    ("Ответ — 2,5.", "ru", "2.5"),
    ("La réponse est 1 250 €.", "fr", "1250"),
    ("La réponse est 1\u00a0250 €.", "fr", "1250"),
    ("La réponse est 1\u202f250\u202f000.", "fr", "1250000"),
    ("Ответ — 12 345 678.", "ru", "12345678"),
    ("Die Antwort lautet 1'250 CHF.", "de", "1250"),
    ("উত্তর হল 1,25,000।", "bn", "125000"),
    ("答えは１，２５０円です。", "ja", "1250"),
    ("答案是 ３．５。", "zh", "3.5"),
    ("١٢٫٥", None, "12.5"),
    ("١٬٢٥٠", None, "1250"),
    ("So 5 12", None, "12"),
    # sentence-final periods
    ("The answer is 11.", "en", "11"),
    ("The answer is 5.5.", "en", "5.5"),
    ("The answer is 18.\nQuestion 2.", "en", "18"),
    # currency, units, markdown, LaTeX
    ("The answer is $18.", "en", "18"),
    (r"The answer is \$18.", "en", "18"),
    ("The answer is $18.00.", "en", "18"),
    ("The answer is $1,250.50", "en", "1250.5"),
    ("La respuesta es €1.250,50.", "es", "1250.5"),
    ("Die Antwort lautet 18 €.", "de", "18"),
    ("The answer is 18 dollars.", "en", "18"),
    ("The answer is 18%.", "en", "18"),
    ("The answer is **18**.", "en", "18"),
    ("**Final answer:** 18", "en", "18"),
    ("答案是 18元。", "zh", "18"),
    ("答えは18円です。", "ja", "18"),
    ("উত্তর হল ১৮টি।", "bn", "18"),
    ("মোট ৫টি", "bn", "5"),
    ("Jibu ni shilingi 18.", "sw", "18"),
    # negative numbers
    ("The answer is -3.", "en", "-3"),
    ("The answer is \u22123.5.", "en", "-3.5"),
    ("The answer is -$5.", "en", "-5"),
    ("Ответ: -3", "ru", "-3"),
    ("x = −7", None, "-7"),
    ("5-3", None, "3"),
    ("-0.0", None, "0"),
    # last stated answer wins; markers of every kind
    ("The answer is 17. Wait, 9 * 2 = 18, so the answer is 18.", "en", "18"),
    ("The answer is 17.\nThe answer is 18.\nThat is 2 more than 16.", "en", "18"),
    (r"$\boxed{17}$. Rechecking: The answer is 18.", "en", "18"),
    (r"The answer is 17. Final: $\boxed{18}$, i.e. 9 * 2.", "en", "18"),
    ("The answer is 17.\n#### 18", None, "18"),
    ("#### 17\nThe answer is 18, after 3 checks", None, "18"),
    ("The answer is 18. Answer: none of 2 options", "en", "2"),
    ("The answer is 18. Answer: unknown", "en", "18"),
    # \boxed{}
    (r"\boxed{1,250}", None, "1250"),
    (r"\boxed{1{,}250}", None, "1250"),
    (r"\boxed{1\,250}", None, "1250"),
    (r"\boxed{\$18}", None, "18"),
    (r"\boxed{18 \text{ dollars}} for 2 days", None, "18"),
    (r"\boxed {42}", None, "42"),
    (r"\boxed{\frac{1}{2}}", None, "0.5"),
    (r"\boxed{\dfrac{3}{4}}", None, "0.75"),
    (r"The answer is \boxed{9 \times 2 = 18}.", "en", "18"),
    (r"Total 18 eggs. \boxed{}", None, "18"),
    (r"\boxed{18", None, "18"),
    # ####
    ("9 * 2 = <<9*2=18>>18\n#### 18", None, "18"),
    ("#### 1,250", None, "1250"),
    ("#### -3", None, "-3"),
    # arithmetic chain right after the marker, on the same line only
    ("The answer is 5 + 6 = 11.", "en", "11"),
    ("The answer is 18. Check: 9 * 2 = 19", "en", "18"),
    ("The answer is 18\n- 3 = 15", "en", "18"),
    # step-by-step cues contain phrases ("Answer:", "Antwort:", "答え：", "উত্তর:", "సమాధానం") but are no markers
    ("Step-by-Step Answer: 5 + 6 = 11 balls in total, 11.", "en", "11"),
    ("Schritt-für-Schritt-Antwort: 5 + 6 = 11", "de", "11"),
    ("ステップごとの答え：5+6=11", "ja", "11"),
    ("ধাপে ধাপে উত্তর: 5 + 6 = 11", "bn", "11"),
    ("దశలవారీగా సమాధానం: 5+6=11", "te", "11"),
    # fallback: the last number; None without any number
    ("She sells 9 eggs at $2 each, so she makes $18 a day.", "en", "18"),
    ("9 * 2 = 18", None, "18"),
    ("The answer is unknown.", "en", None),
    ("no digits here", None, None),
    ("", None, None),
]


@pytest.mark.parametrize("text, lang, expected", CASES)
def test_tricky_formats(text, lang, expected):
    assert extract_answer(text, lang) == expected


def test_fraction_that_does_not_terminate_is_rounded():
    assert extract_answer(r"\boxed{\frac{1}{3}}") == "0." + "3" * 28
    assert extract_answer(r"\boxed{\frac{1}{0}}") is None


def test_unknown_language_is_an_error():
    with pytest.raises(ValueError, match="Unknown language code 'xx'"):
        extract_answer("The answer is 18.", "xx")


@pytest.mark.parametrize(
    "text, lang, expected",
    [
        ("2,125", None, "2125"),
        ("114,200", "de", "114200"),
        ("18", None, "18"),
        ("18.0", None, "18"),
        ("5.50", None, "5.5"),
        ("-0.0", None, "0"),
        ("0.250", None, "0.25"),
        (" 42\n", None, "42"),
        ("$18", None, "18"),
        ("১৮", None, "18"),
        ("1.250,5", None, "1250.5"),
        ("1.250", "de", "1250"),
        ("1.250", "en", "1.25"),
        ("1,250", "de", "1250"),
        ("12345678901234567890123456789012345", None, "12345678901234567890123456789012345"),
        ("0.1000000000000000000000000000000001", None, "0.1000000000000000000000000000000001"),
        ("abc", None, None),
        ("", None, None),
        ("1 2 3", None, None),
        ("5 + 6", None, None),
    ],
)
def test_canonical_number(text, lang, expected):
    assert canonical_number(text, lang) == expected


@pytest.mark.parametrize(
    "predicted, gold, equal",
    [
        ("18", "18", True),
        ("18", "18.0", True),
        ("1250", "1,250", True),
        ("0.5", "0.50", True),
        ("-0", "0", True),
        ("18", "19", False),
        ("18", "-18", False),
        (None, "18", False),
        ("18", None, False),
        (None, None, False),
        ("[invalid]", "18", False),
        ("abc", "abc", False),
    ],
)
def test_answers_equal(predicted, gold, equal):
    assert answers_equal(predicted, gold) is equal


# --------------------------------------------------------------------------- backtracking


def test_long_responses_and_no_catastrophic_backtracking():
    """Speed is measured by benchmarks/extraction_cost.py; here only a hang guard: an exponential regex would take
    hours on these inputs, linear ones take milliseconds, so the bound is far from any real timing."""
    step = "Janet's ducks lay 16 eggs per day. She eats 3 and bakes with 4, so 16 - 3 - 4 = 9 eggs are left. "
    response = step * 10 + "She sells them at $2 each: 9 * 2 = $18.\nThe answer is 18."
    assert 1000 < len(response) < 1300
    assert extract_answer(response, "en") == extract_answer(response) == "18"
    pathological = [
        "The answer is " * 3000,
        "Step-by-Step Answer:" * 2000 + "5",
        "Answer: " * 3000 + r"\frac{1}{0}",
        r"\boxed{" + "{a" * 3000,
        r"\boxed{} " * 3000 + "5",
        "1 " * 5000,
        "1,0" * 5000,
        "The answer is 1" + " + 1" * 5000,
        "-" * 10000 + "1",
    ]
    started = time.perf_counter()
    for text in pathological:
        extract_answer(text)
        extract_answer(text, "en")
    assert time.perf_counter() - started < 30, "extract_answer backtracks catastrophically on a long input"


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
@pytest.mark.parametrize("answer", ["1250", "-3.5", "0.25", "1.125", "0.125", "-2.375", "1234567.5", "18"])
def test_final_answer_line_round_trips_in_every_language(lang, answer):
    """The line the models append must read back as the same number (after any candidate text)."""
    from bestofl_tasks.languages import final_answer_line

    text = "Schritte 1.250 und 3,5 …\n" + final_answer_line(answer, lang)
    assert extract_answer(text, lang) == answer
    assert extract_answer(final_answer_line(answer, lang), lang) == answer
