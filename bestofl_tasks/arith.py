"""Templated arithmetic word problems, parallel by construction: a pipeline check, not a benchmark.

One- and two-step problems ("Anna has 7 apples. Anna buys 5 more apples. ...") written from the same
numbers in every language of ``ARITH_LANGUAGES``, generated deterministically from ``SEED`` with no data
files. Small models solve some of them, so a verifier trained on their samples sees both classes.

Splits are disjoint by arithmetic: every (template, numbers) combination is assigned to one split only
(the test split never repeats a train problem with another name or object).
"""

from __future__ import annotations

import functools
import itertools
import random
from dataclasses import dataclass

from .languages import ARITH_LANGUAGES

SEED = 20250915
#: Share of each template in a split: one-step problems, which small models solve more often, weigh more.
WEIGHTS = {"add": 3, "sub": 2, "mul": 3, "add_sub": 1, "mul_add": 1}
#: Problems per unit of weight: test 150, train up to 600 (fewer where a template runs out of combinations).
TEST_PER_WEIGHT = 15
TRAIN_PER_WEIGHT = 60
#: Number ranges: counts in add/sub steps; boxes and items per box in a multiplication.
COUNT = range(2, 21)
BOXES = range(2, 10)
PER_BOX = range(2, 13)


def _numbers(template: str) -> list[tuple[int, ...]]:
    """Every valid (a, b[, c]) of ``template``; answers are positive integers."""
    pairs = list(itertools.product(COUNT, COUNT))
    products = list(itertools.product(BOXES, PER_BOX))
    return {
        "add": pairs,
        "sub": [(a, b) for a, b in pairs if b < a],
        "mul": products,
        "add_sub": [(a, b, c) for a, b in pairs for c in COUNT if c < a + b],
        "mul_add": [(a, b, c) for a, b in products for c in COUNT],
    }[template]


#: Answer of each template from its numbers (mul_add: ``a`` boxes of ``b`` plus ``c`` already owned).
ANSWERS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "add_sub": lambda a, b, c: a + b - c,
    "mul_add": lambda a, b, c: a * b + c,
}

NAMES = {
    "en": ("Anna", "Tom", "Maria", "David"),
    "de": ("Anna", "Tom", "Maria", "David"),
    "es": ("Anna", "Tom", "María", "David"),
    "fr": ("Anna", "Tom", "Maria", "David"),
    "ru": ("Анна", "Том", "Мария", "Давид"),
    "zh": ("安娜", "汤姆", "玛丽亚", "大卫"),
    "ja": ("アンナ", "トム", "マリア", "デビッド"),
    "th": ("แอนนา", "ทอม", "มาเรีย", "เดวิด"),
}
_RU_GENITIVE = {"Анна": "Анны", "Том": "Тома", "Мария": "Марии", "Давид": "Давида"}

#: Objects, aligned by index: the plural noun, plus Spanish "¿Cuántos/as?", the CJK/Thai counter word, or the
#: three Russian forms after a numeral (1, 2-4, 5+; all masculine/neuter inanimate, so accusative = nominative).
ITEMS = {
    "en": [{"items": w} for w in ("apples", "pencils", "balls", "notebooks")],
    "de": [{"items": w} for w in ("Äpfel", "Bleistifte", "Bälle", "Hefte")],
    "es": [{"items": w, "how_many": h} for w, h in
           (("manzanas", "Cuántas"), ("lápices", "Cuántos"), ("pelotas", "Cuántas"), ("cuadernos", "Cuántos"))],
    "fr": [{"items": w} for w in ("pommes", "crayons", "balles", "cahiers")],
    "ru": [{"forms": f} for f in (("яблоко", "яблока", "яблок"), ("карандаш", "карандаша", "карандашей"),
                                  ("мяч", "мяча", "мячей"), ("блокнот", "блокнота", "блокнотов"))],
    "zh": [{"items": w, "clf": c} for w, c in (("苹果", "个"), ("铅笔", "支"), ("球", "个"), ("笔记本", "本"))],
    "ja": [{"items": w, "clf": c} for w, c in (("りんご", "個"), ("鉛筆", "本"), ("ボール", "個"), ("ノート", "冊"))],
    "th": [{"items": w, "clf": c} for w, c in
           (("แอปเปิล", "ผล"), ("ดินสอ", "แท่ง"), ("ลูกบอล", "ลูก"), ("สมุด", "เล่ม"))],
}
_RU_BOX = ("коробку", "коробки", "коробок")

TEMPLATES = {
    "en": {
        "add": "{name} has {a} {items}. {name} buys {b} more {items}. How many {items} does {name} have now?",
        "sub": "{name} has {a} {items}. {name} gives {b} {items} to a friend. How many {items} does {name} have left?",
        "mul": "{name} buys {a} boxes of {items}. Each box holds {b} {items}. "
               "How many {items} does {name} buy in total?",
        "add_sub": "{name} has {a} {items}. {name} buys {b} more {items} and then gives {c} {items} to a friend. "
                   "How many {items} does {name} have now?",
        "mul_add": "{name} has {c} {items}. {name} buys {a} boxes of {items}, and each box holds {b} {items}. "
                   "How many {items} does {name} have now?",
    },
    "de": {
        "add": "{name} hat {a} {items}. {name} kauft noch {b} {items}. Wie viele {items} hat {name} jetzt?",
        "sub": "{name} hat {a} {items}. {name} gibt einem Freund {b} {items}. Wie viele {items} hat {name} noch?",
        "mul": "{name} kauft {a} Schachteln {items}. In jeder Schachtel sind {b} {items}. "
               "Wie viele {items} kauft {name} insgesamt?",
        "add_sub": "{name} hat {a} {items}. {name} kauft noch {b} {items} und gibt dann einem Freund {c} {items}. "
                   "Wie viele {items} hat {name} jetzt?",
        "mul_add": "{name} hat {c} {items}. {name} kauft {a} Schachteln {items}, in jeder Schachtel sind {b} {items}. "
                   "Wie viele {items} hat {name} jetzt?",
    },
    "es": {
        "add": "{name} tiene {a} {items}. {name} compra {b} {items} más. ¿{how_many} {items} tiene {name} ahora?",
        "sub": "{name} tiene {a} {items}. {name} le da {b} {items} a un amigo. ¿{how_many} {items} le quedan a {name}?",
        "mul": "{name} compra {a} cajas de {items}. Cada caja tiene {b} {items}. "
               "¿{how_many} {items} compra {name} en total?",
        "add_sub": "{name} tiene {a} {items}. {name} compra {b} {items} más y luego le da {c} {items} a un amigo. "
                   "¿{how_many} {items} tiene {name} ahora?",
        "mul_add": "{name} tiene {c} {items}. {name} compra {a} cajas de {items} y cada caja tiene {b} {items}. "
                   "¿{how_many} {items} tiene {name} ahora?",
    },
    "fr": {
        "add": "{name} a {a} {items}. {name} achète encore {b} {items}. Combien de {items} a {name} maintenant ?",
        "sub": "{name} a {a} {items}. {name} donne {b} {items} à un ami. Combien de {items} reste-t-il à {name} ?",
        "mul": "{name} achète {a} boîtes de {items}. Chaque boîte contient {b} {items}. "
               "Combien de {items} achète {name} en tout ?",
        "add_sub": "{name} a {a} {items}. {name} achète encore {b} {items}, puis donne {c} {items} à un ami. "
                   "Combien de {items} a {name} maintenant ?",
        "mul_add": "{name} a {c} {items}. {name} achète {a} boîtes de {items} et chaque boîte contient {b} {items}. "
                   "Combien de {items} a {name} maintenant ?",
    },
    "ru": {
        "add": "У {name_gen} есть {a_items}. {name} покупает ещё {b_items}. Сколько {items} теперь у {name_gen}?",
        "sub": "У {name_gen} есть {a_items}. {name} отдаёт другу {b_items}. Сколько {items} осталось у {name_gen}?",
        "mul": "{name} покупает {a_boxes} {items}. В каждой коробке {b_items}. Сколько всего {items} покупает {name}?",
        "add_sub": "У {name_gen} есть {a_items}. {name} покупает ещё {b_items}, а потом отдаёт другу {c_items}. "
                   "Сколько {items} теперь у {name_gen}?",
        "mul_add": "У {name_gen} есть {c_items}. {name} покупает {a_boxes} {items}, в каждой коробке по {b_items}. "
                   "Сколько {items} теперь у {name_gen}?",
    },
    "zh": {
        "add": "{name}有{a}{clf}{items}。{name}又买了{b}{clf}{items}。{name}现在有多少{clf}{items}？",
        "sub": "{name}有{a}{clf}{items}。{name}给了朋友{b}{clf}{items}。{name}还剩多少{clf}{items}？",
        "mul": "{name}买了{a}盒{items}。每盒有{b}{clf}{items}。{name}一共买了多少{clf}{items}？",
        "add_sub": "{name}有{a}{clf}{items}。{name}又买了{b}{clf}{items}，然后给了朋友{c}{clf}{items}。"
                   "{name}现在有多少{clf}{items}？",
        "mul_add": "{name}有{c}{clf}{items}。{name}又买了{a}盒{items}，每盒有{b}{clf}{items}。"
                   "{name}现在有多少{clf}{items}？",
    },
    "ja": {
        "add": "{name}は{items}を{a}{clf}持っています。{name}は{items}をさらに{b}{clf}買いました。"
               "{name}は今{items}を何{clf}持っていますか？",
        "sub": "{name}は{items}を{a}{clf}持っています。{name}は友だちに{items}を{b}{clf}あげました。"
               "{name}には{items}が何{clf}残っていますか？",
        "mul": "{name}は{items}を{a}箱買いました。どの箱にも{items}が{b}{clf}入っています。"
               "{name}は全部で{items}を何{clf}買いましたか？",
        "add_sub": "{name}は{items}を{a}{clf}持っています。{name}は{items}をさらに{b}{clf}買い、"
                   "そのあと友だちに{c}{clf}あげました。{name}は今{items}を何{clf}持っていますか？",
        "mul_add": "{name}は{items}を{c}{clf}持っています。{name}はさらに{items}を{a}箱買いました。"
                   "どの箱にも{items}が{b}{clf}入っています。{name}は今{items}を何{clf}持っていますか？",
    },
    "th": {
        "add": "{name}มี{items} {a} {clf} {name}ซื้อ{items}เพิ่มอีก {b} {clf} ตอนนี้{name}มี{items}กี่{clf}",
        "sub": "{name}มี{items} {a} {clf} {name}ให้{items}แก่เพื่อน {b} {clf} {name}เหลือ{items}กี่{clf}",
        "mul": "{name}ซื้อ{items} {a} กล่อง แต่ละกล่องมี{items} {b} {clf} {name}ซื้อ{items}ทั้งหมดกี่{clf}",
        "add_sub": "{name}มี{items} {a} {clf} {name}ซื้อ{items}เพิ่มอีก {b} {clf} แล้วให้เพื่อนไป {c} {clf} "
                   "ตอนนี้{name}มี{items}กี่{clf}",
        "mul_add": "{name}มี{items} {c} {clf} {name}ซื้อ{items}เพิ่มอีก {a} กล่อง แต่ละกล่องมี{items} {b} {clf} "
                   "ตอนนี้{name}มี{items}กี่{clf}",
    },
}


@dataclass(frozen=True)
class Problem:
    template: str
    numbers: tuple[int, ...]
    name: int
    item: int

    @property
    def answer(self) -> int:
        return ANSWERS[self.template](*self.numbers)


def _ru_count(n: int, forms: tuple[str, str, str]) -> str:
    """``n`` with the Russian noun form a numeral takes (1 / 2-4 / 5+, with 11-14 taking the last)."""
    if n % 10 == 1 and n % 100 != 11:
        form = forms[0]
    elif 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        form = forms[1]
    else:
        form = forms[2]
    return f"{n} {form}"


def question(problem: Problem, lang: str) -> str:
    """The problem written in ``lang``."""
    name = NAMES[lang][problem.name]
    fields = {"name": name, **ITEMS[lang][problem.item], **dict(zip("abc", problem.numbers))}
    if lang == "ru":
        forms = fields.pop("forms")
        fields.update(name_gen=_RU_GENITIVE[name], items=forms[2], a_boxes=_ru_count(problem.numbers[0], _RU_BOX),
                      **{f"{key}_items": _ru_count(n, forms) for key, n in zip("abc", problem.numbers)})
    return TEMPLATES[lang][problem.template].format(**fields)


@functools.lru_cache(maxsize=None)
def problems(split: str, seed: int = SEED) -> tuple[Problem, ...]:
    """The ``split`` ("test" or "train") problems, shuffled: per template, its number combinations shuffled
    (seeded), the first ``weight * TEST_PER_WEIGHT`` to test, up to ``weight * TRAIN_PER_WEIGHT`` of the rest
    to train; names and objects drawn from the same seed."""
    if split not in ("test", "train"):
        raise ValueError(f"unknown split {split!r}: test or train")
    rng = random.Random(seed)
    chosen = []
    for template, weight in WEIGHTS.items():
        combos = _numbers(template)
        rng.shuffle(combos)
        test_size = weight * TEST_PER_WEIGHT
        picked = combos[:test_size] if split == "test" else combos[test_size:][: weight * TRAIN_PER_WEIGHT]
        chosen.extend((template, numbers) for numbers in picked)
    draw = random.Random(f"{seed}-{split}")
    draw.shuffle(chosen)
    return tuple(Problem(template, numbers, draw.randrange(len(NAMES["en"])), draw.randrange(len(ITEMS["en"])))
                 for template, numbers in chosen)


def columns(split: str, lang: str) -> tuple[list[str], list[str]]:
    """(questions in ``lang``, gold answers) in row order, as ``bestofl_tasks.data`` loads every source."""
    if lang not in ARITH_LANGUAGES:
        raise ValueError(f"Unknown language code {lang!r}. Supported: {', '.join(ARITH_LANGUAGES)}.")
    rows = problems(split)
    return [question(p, lang) for p in rows], [str(p.answer) for p in rows]
