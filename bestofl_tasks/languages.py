"""The one per-language table: names, prompt phrases, answer phrases, number conventions.

Everything language-specific in bestofl (task prompts, model prompts, the verifier's text, the
answer extractor and the final answer line returned to lm-eval) reads this table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    #: Question prefix as in the MGSM exemplars ("Question:", "Frage:", ...).
    question_prefix: str
    #: Step-by-step answer cue as in the MGSM exemplars.
    cot_cue: str
    #: Final line the model is asked to end with; ``{answer}`` is replaced by ASCII digits.
    #: Chosen so that lm-eval's own ``mgsm_native_cot_{code}`` strict-match regex parses it.
    final_line: str
    #: Phrases that introduce a final answer, most specific first (used by the extractor).
    answer_phrases: tuple[str, ...]
    #: Zero-shot chain-of-thought instruction, written in the language itself.
    instruction: str
    #: Decimal separator in running text ("." or ",").
    decimal_sep: str
    #: Unicode decimal digits of the language's native script, if any (ASCII is always accepted).
    native_digits: str = ""


LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in [
        Language(
            code="en",
            name="English",
            question_prefix="Question:",
            cot_cue="Step-by-Step Answer:",
            final_line="The answer is {answer}.",
            answer_phrases=(
                "The final answer is", "the final answer is", "The answer is", "the answer is", "Final answer:",
                "Answer:",
            ),
            instruction=(
                "Solve the following math problem step by step. "
                'At the end, write the final answer on its own line as "The answer is N.", '
                "where N is a number."
            ),
            decimal_sep=".",
        ),
        Language(
            code="es",
            name="Spanish",
            question_prefix="Pregunta:",
            cot_cue="Respuesta paso a paso:",
            final_line="La respuesta es {answer}.",
            answer_phrases=(
                "La respuesta final es", "la respuesta final es", "La respuesta es", "la respuesta es",
                "Respuesta final:", "Respuesta:",
            ),
            instruction=(
                "Resuelve el siguiente problema de matemáticas paso a paso. "
                'Al final, escribe la respuesta final en una línea aparte como "La respuesta es N.", '
                "donde N es un número."
            ),
            decimal_sep=",",
        ),
        Language(
            code="fr",
            name="French",
            question_prefix="Question :",
            cot_cue="Réponse étape par étape :",
            final_line="La réponse est {answer}.",
            answer_phrases=(
                "La réponse finale est", "la réponse finale est", "La réponse est", "la réponse est",
                "Réponse finale :", "Réponse :", "Réponse:",
            ),
            instruction=(
                "Résous le problème de mathématiques suivant étape par étape. "
                "À la fin, écris la réponse finale sur une ligne à part sous la forme "
                "« La réponse est N. », où N est un nombre."
            ),
            decimal_sep=",",
        ),
        Language(
            code="de",
            name="German",
            question_prefix="Frage:",
            cot_cue="Schritt-für-Schritt-Antwort:",
            final_line="Die Antwort lautet {answer}.",
            answer_phrases=(
                "Die endgültige Antwort lautet", "die endgültige Antwort lautet", "Die endgültige Antwort ist",
                "die endgültige Antwort ist",
                "Die Antwort lautet", "die Antwort lautet", "Die Antwort ist", "die Antwort ist",
                "Endgültige Antwort:", "Antwort:",
            ),
            instruction=(
                "Löse die folgende Mathematikaufgabe Schritt für Schritt. "
                "Schreibe am Ende die endgültige Antwort in eine eigene Zeile in der Form "
                "„Die Antwort lautet N.“, wobei N eine Zahl ist."
            ),
            decimal_sep=",",
        ),
        Language(
            code="ru",
            name="Russian",
            question_prefix="Задача:",
            cot_cue="Пошаговое решение:",
            final_line="Ответ — {answer}.",
            answer_phrases=("Ответ —", "Ответ -", "Ответ:", "ответ —", "ответ:", "Ответ"),
            instruction=(
                "Реши следующую математическую задачу шаг за шагом. "
                "В конце напиши окончательный ответ отдельной строкой в виде «Ответ — N.», "
                "где N — число."
            ),
            decimal_sep=",",
        ),
        Language(
            code="zh",
            name="Chinese",
            question_prefix="问题：",
            cot_cue="逐步解答：",
            final_line="答案是 {answer}。",
            answer_phrases=("答案是", "最终答案：", "最终答案:", "答案：", "答案:"),
            instruction="请一步一步地解答下面的数学题。最后，单独一行写出最终答案，格式为“答案是 N。”，其中 N 是一个数字。",
            decimal_sep=".",
        ),
        Language(
            code="ja",
            name="Japanese",
            question_prefix="問題：",
            cot_cue="ステップごとの答え：",
            final_line="答えは{answer}です。",
            answer_phrases=("答えは", "最終的な答え：", "最終的な答え:", "答え：", "答え:"),
            instruction="次の数学の問題を段階的に解いてください。最後に、最終的な答えを「答えはNです。」という形で別の行に書いてください。Nは数字です。",
            decimal_sep=".",
        ),
        Language(
            code="th",
            name="Thai",
            question_prefix="โจทย์:",
            cot_cue="คำตอบทีละขั้นตอน:",
            final_line="คำตอบคือ {answer}",
            answer_phrases=("คำตอบคือ", "คำตอบสุดท้าย:", "คำตอบ:"),
            instruction=(
                "จงแก้โจทย์คณิตศาสตร์ต่อไปนี้ทีละขั้นตอน "
                'ในตอนท้าย ให้เขียนคำตอบสุดท้ายแยกไว้หนึ่งบรรทัดในรูปแบบ "คำตอบคือ N" โดยที่ N เป็นตัวเลข'
            ),
            decimal_sep=".",
            native_digits="๐๑๒๓๔๕๖๗๘๙",
        ),
        Language(
            code="sw",
            name="Swahili",
            question_prefix="Swali:",
            cot_cue="Jibu la Hatua kwa Hatua:",
            final_line="Jibu ni {answer}.",
            answer_phrases=("Jibu la mwisho ni", "jibu la mwisho ni", "Jibu ni", "jibu ni", "Jibu la mwisho:", "Jibu:"),
            instruction=(
                "Tatua swali lifuatalo la hesabu hatua kwa hatua. "
                'Mwishoni, andika jibu la mwisho kwenye mstari wake peke yake kama "Jibu ni N.", '
                "ambapo N ni namba."
            ),
            decimal_sep=".",
        ),
        Language(
            code="bn",
            name="Bengali",
            question_prefix="প্রশ্ন:",
            cot_cue="ধাপে ধাপে উত্তর:",
            final_line="উত্তর হল {answer}।",
            answer_phrases=("উত্তর হল", "উত্তর হলো", "চূড়ান্ত উত্তর:", "উত্তর:", "The answer is"),
            instruction=(
                "নিচের গণিত সমস্যাটি ধাপে ধাপে সমাধান করো। "
                "শেষে, চূড়ান্ত উত্তরটি আলাদা একটি লাইনে \"উত্তর হল N।\" আকারে লেখো, যেখানে N একটি সংখ্যা।"
            ),
            decimal_sep=".",
            native_digits="০১২৩৪৫৬৭৮৯",
        ),
        Language(
            code="te",
            name="Telugu",
            question_prefix="ప్రశ్న:",
            cot_cue="దశలవారీగా సమాధానం:",
            final_line="సమాధానం {answer}.",
            answer_phrases=("సమాధానం", "తుది సమాధానం:"),
            instruction=(
                "కింది గణిత సమస్యను దశలవారీగా పరిష్కరించండి. "
                "చివరగా, తుది సమాధానాన్ని ప్రత్యేక పంక్తిలో \"సమాధానం N.\" రూపంలో రాయండి, ఇక్కడ N ఒక సంఖ్య."
            ),
            decimal_sep=".",
            native_digits="౦౧౨౩౪౫౬౭౮౯",
        ),
        Language(
            code="it",
            name="Italian",
            question_prefix="Domanda:",
            cot_cue="Risposta passo per passo:",
            final_line="La risposta è {answer}.",
            answer_phrases=(
                "La risposta finale è", "la risposta finale è", "La risposta è", "la risposta è",
                "Risposta finale:", "Risposta:",
            ),
            instruction=(
                "Risolvi il seguente problema di matematica passo per passo. "
                'Alla fine, scrivi la risposta finale su una riga a parte nella forma "La risposta è N.", '
                "dove N è un numero."
            ),
            decimal_sep=",",
        ),
    ]
}

#: MGSM's 11 languages, in MGSM's order.
MGSM_LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "de", "ru", "zh", "ja", "th", "sw", "bn", "te")
#: Languages of the translated GSM8K *train* questions (MGSM8KInstruct), plus English.
GSM8K_TRAIN_LANGUAGES: tuple[str, ...] = ("en", "de", "es", "fr", "ja", "ru", "sw", "zh")
#: Languages of the translated GSM8K *test* set on the Hub (openGPT-X/gsm8kx, its EU5 files), plus English.
GSM8K_TEST_LANGUAGES: tuple[str, ...] = ("en", "de", "es", "fr", "it")
#: The paper's default pool (the eight verifier-training languages).
DEFAULT_POOL: tuple[str, ...] = ("en", "de", "es", "fr", "ru", "zh", "ja", "th")
#: Languages of the generated arithmetic problems (``bestofl_tasks.arith``): the paper's pool.
ARITH_LANGUAGES: tuple[str, ...] = DEFAULT_POOL


def get_language(code: str, supported: tuple[str, ...] | None = None) -> Language:
    """Return the table entry for ``code``; raise a ValueError listing the supported codes."""
    allowed = supported if supported is not None else tuple(LANGUAGES)
    if code not in allowed or code not in LANGUAGES:
        raise ValueError(
            f"Unknown language code {code!r}. Supported: {', '.join(allowed)}."
        )
    return LANGUAGES[code]


def final_answer_line(answer: str, lang: str) -> str:
    """The target language's final answer line with ASCII digits, e.g. ``Die Antwort lautet 18.``.

    ``answer`` is canonical (``.`` as decimal point). In a language that writes decimals with a comma,
    ``1.125`` reads as 1125 (``.`` groups thousands there), so exactly three decimals get a fourth, ``1.1250``.
    """
    spec = get_language(lang)
    if spec.decimal_sep == "," and len(answer.partition(".")[2]) == 3:
        answer += "0"
    return spec.final_line.format(answer=answer)
