"""Tasks without parallel versions: the question isolated from lm-eval's own gsm8k / gsm8k_cot / asdiv_cot_llama
(local data), the answer line their filters parse, the number check, both translators on tiny models, the
translation cache and the errors that say what to change."""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import sqlite3

import pytest

from fixtures import DATA_DIR  # tests/ is on sys.path (rootdir conftest)
from translation_fixtures import copy_mt_model, local_task_dir

from bestofl_models import testing
from bestofl_models.errors import ModelArgsError
from bestofl_models.harness.model_args import parse_model_args
from bestofl_models.harness.lm_eval_tasks import (
    filter_output,
    isolate_question,
    with_answer_line,
)
from bestofl_models.harness.problems import Problem
from bestofl_models.store import CandidateStore, Translation, translation_key
from bestofl_models.generation.translation import (
    MTTranslator,
    SelfTranslator,
    TranslationCounts,
    load_translator,
    translate_problems,
)

ASDIV = [{"body": "Tom has 3 apples and buys 4 more.", "question": "How many apples does Tom have?",
          "answer": "7 (apples)"},
         {"body": "A box holds 12 pens. Sam takes 5.", "question": "How many pens are left?", "answer": "7 (pens)"}]


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    """lm-eval's gsm8k, gsm8k_cot and asdiv_cot_llama under their own names, on local files, with one request
    each built as lm-eval builds it (few-shot examples included)."""
    from lm_eval.tasks import TaskManager

    root = tmp_path_factory.mktemp("tasks")
    data = root / "data"
    (data / "asdiv").mkdir(parents=True)
    (data / "gsm8k").symlink_to(DATA_DIR / "gsm8k")
    (data / "asdiv" / "validation.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ASDIV))
    folder = local_task_dir(root / "yaml", data, ("gsm8k", "gsm8k_cot", "asdiv_cot_llama"))
    loaded = TaskManager(include_path=str(folder), include_defaults=False).load(
        ["gsm8k", "gsm8k_cot", "asdiv_cot_llama"])["tasks"]
    for task in loaded.values():
        task.build_all_requests(limit=2)
    return loaded


@pytest.fixture(scope="module")
def copy_mt(tmp_path_factory):
    return copy_mt_model(tmp_path_factory.mktemp("copy-mt"))


def problem(question: str, task: str = "gsm8k", doc_id: int = 0) -> Problem:
    return Problem(f"{task}-{doc_id:04d}", task, doc_id, "en", {"en": question}, source_lang="en")


# ------------------------------------------------------------------------------------------------ the question


@pytest.mark.parametrize("name", ["gsm8k", "gsm8k_cot"])
def test_the_question_is_the_docs_own_never_a_few_shot_example(tasks, name):
    task = tasks[name]
    request = task.instances[1]
    ctx = request.args[0]
    assert ctx.count("Q:" if name == "gsm8k_cot" else "Question:") == task.config.num_fewshot + 1  # few-shot examples
    question, how = isolate_question(request.doc, ctx, task)
    assert question == request.doc["question"].strip()
    assert how == "doc_to_text fields question"


def test_a_template_with_two_fields_gives_both_and_none_of_its_own_words(tasks):
    task = tasks["asdiv_cot_llama"]
    request = task.instances[0]
    question, how = isolate_question(request.doc, request.args[0], task)
    assert question == f"{ASDIV[0]['body']} {ASDIV[0]['question']}"
    assert how == "doc_to_text fields body, question"


def test_without_the_task_the_question_field_counts_only_if_the_prompt_holds_it():
    assert isolate_question({"question": " What is 2+2? "}, "Q: What is 2+2?\nA:") == (
        "What is 2+2?", "doc field 'question'")
    assert isolate_question({"problem": "Add 2 and 3."}, "Problem:  Add 2\nand 3.")[0] == "Add 2 and 3."
    question, why = isolate_question({"question": "What is 2+2?"}, "Q: something else\nA:")
    assert question is None and "not in the request's prompt" in why
    question, why = isolate_question({"text": "What is 2+2?"}, "What is 2+2?")
    assert question is None and "none of the fields" in why


# ------------------------------------------------------------------------------------------------ the answer line


@pytest.mark.parametrize("name, line", [("gsm8k", "#### 1250"), ("gsm8k_cot", "The answer is 1250."),
                                        ("asdiv_cot_llama", "The final answer is 1250")])
def test_the_answer_line_is_the_form_the_tasks_own_filter_parses(tasks, name, line):
    task = tasks[name]
    doc = task.instances[0].doc
    selected = "Er kauft 2 Pakete zu je 625 Euro: 2 * 625 = 1.250.\nDie Antwort lautet 1250."
    text, form = with_answer_line(task, doc, selected, "1250", "en")
    assert text == selected + "\n" + line
    assert form is not None
    assert filter_output(task, doc, text).strip().rstrip(".") == "1250"  # lm-eval's strict-match finds it


def test_when_no_form_parses_the_text_is_unchanged_with_one_warning(tasks, caplog):
    task = tasks["gsm8k_cot"]
    doc = task.instances[0].doc
    selected = "First guess: The answer is 17. Then 9 * 2 = 18."  # strict-match takes the first "The answer is"
    with caplog.at_level(logging.WARNING, logger="bestofl_models.harness.lm_eval_tasks"):
        assert with_answer_line(task, doc, selected, "18", "en") == (selected, None)
        assert with_answer_line(task, doc, selected + " ", "18", "en") == (selected + " ", None)
    assert len([r for r in caplog.records if "parses none of bestofl's answer lines" in r.message]) == 1


# ------------------------------------------------------------------------------------------------ the number check


class Scripted:
    """A translator whose output per target language is a function of the source; counts its calls."""

    name = "scripted"

    def __init__(self, rules):
        self.id, self.settings, self.rules, self.calls = "translator-scripted", {"v": 1}, rules, []

    def translate(self, texts, source, target):
        self.calls.append((target, len(texts)))
        return [self.rules[target](text) for text in texts]

    def close(self):
        pass


def test_a_translation_that_drops_a_number_is_refused_counted_and_cached():
    source = "Janet has 16 eggs and sells them for $1,250 at 3 markets."
    translator = Scripted({
        "de": lambda text: "Janet hat Eier und verkauft sie für 1.250 $ auf 3 Märkten.",  # 16 dropped
        "fr": lambda text: "Janet a ١٦ œufs et les vend 1 250 $ sur 3 marchés.",  # other digits and separators
        "zh": lambda text: "",  # empty
    })
    store, counts = CandidateStore(None), TranslationCounts()
    problems = [problem(source), problem("No numbers here.", doc_id=1)]
    out = translate_problems(problems, ("en", "de", "fr", "zh"), translator, store, [], 8, counts)
    assert out[0].parallel == {"en": source, "fr": "Janet a ١٦ œufs et les vend 1 250 $ sur 3 marchés."}
    assert out[0].refused == ("de", "zh")
    assert set(out[1].parallel) == {"en", "de", "fr"} and out[1].refused == ("zh",)
    assert sorted(translator.calls) == [("de", 2), ("fr", 2), ("zh", 2)]  # one batch per language
    assert counts.as_dict()["refused_number_check"] == 3 and counts.refused == {"de": 1, "zh": 2}
    key = translation_key("translator-scripted", source, "en", "de", {"v": 1})
    assert store.translations([key])[key].missing == ("16",)  # the refused translation is cached too

    again = TranslationCounts()
    assert translate_problems(problems, ("en", "de", "fr", "zh"), translator, store, [], 8, again) == out
    assert len(translator.calls) == 3 and (again.translated, again.reused) == (0, 6)


def test_translations_are_read_from_read_stores_and_keys_cover_every_part(tmp_path):
    source = "Tom has 3 apples."
    key = translation_key("t-1", source, "en", "de", {"v": 1})
    variants = [translation_key("t-2", source, "en", "de", {"v": 1}),
                translation_key("t-1", source + " ", "en", "de", {"v": 1}),
                translation_key("t-1", source, "en", "fr", {"v": 1}),
                translation_key("t-1", source, "en", "de", {"v": 2})]
    assert len({key, *variants}) == 5
    other = CandidateStore(tmp_path / "other")
    other.add_translations([Translation(key, "t-1", "en", "de", {"v": 1}, source, "Tom hat 3 Äpfel.")])
    translator = Scripted({"de": lambda text: pytest.fail("translated again")})
    translator.id = "t-1"
    mine = CandidateStore(tmp_path / "mine")
    out = translate_problems([problem(source)], ("en", "de"), translator, mine,
                             [CandidateStore(tmp_path / "other", read_only=True)], 8, TranslationCounts())
    assert out[0].parallel["de"] == "Tom hat 3 Äpfel." and key in mine.translations([key])


def test_a_store_written_before_translations_reads_as_having_none(tmp_path):
    CandidateStore(tmp_path).close()
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        db.execute("DROP TABLE translations")
    assert CandidateStore(tmp_path, read_only=True).translations(["abc"]) == {}


# ------------------------------------------------------------------------------------------------ both translators


def gsm8k_questions(count: int) -> list[str]:
    with open(DATA_DIR / "gsm8k" / "test.jsonl", encoding="utf-8") as f:
        return [json.loads(next(f))["question"] for _ in range(count)]


def test_the_generator_translates_greedily_one_batch_per_language_and_only_once():
    from bestofl_models.generation.backends import load_backend, load_tokenizer
    from bestofl_models.store.identity import generator_identity
    from bestofl_models.store import CUT_AT_BUDGET
    from bestofl_models.generation.translation import CUT_MARGIN, missing_numbers

    config = parse_model_args({"pretrained": str(testing.tiny_generator()), "languages": "en:de:fr"})
    backend = load_backend(config)
    calls = collections.Counter()
    real = backend.generate

    def generate(prompts, seeds, stops, settings):
        calls[settings.temperature, settings.max_gen_toks] += 1
        return real(prompts, seeds, stops, settings)

    backend.generate = generate
    translator = load_translator(config, load_tokenizer(config), generator_identity(config), lambda: backend)
    assert isinstance(translator, SelfTranslator)
    questions = gsm8k_questions(2)
    prompt = translator.prompt(questions[0], "en", "de")
    assert "from English into German" in prompt and questions[0] in prompt
    store, counts = CandidateStore(None), TranslationCounts()
    out = translate_problems([problem(q, doc_id=i) for i, q in enumerate(questions)], config.languages, translator,
                             store, [], 16, counts)
    assert sum(calls.values()) == 2 and all(temperature == 0 for temperature, _ in calls)  # greedy, 2 batches
    # each language's batch runs to its longest budget (sized from the source, no fixed cap) plus the cut margin
    assert {budget for _, budget in calls} == {max(translator.budget(q, lang) for q in questions) + CUT_MARGIN
                                               for lang in ("de", "fr")}
    for p, q in zip(out, questions):
        for lang in ("de", "fr"):
            key = translation_key(translator.id, q, "en", lang, translator.settings)
            stored = store.translations([key])[key]
            assert stored.missing == tuple(missing_numbers(q, stored.text, "en", lang)) + stored.cut * (CUT_AT_BUDGET,)
            assert (lang in p.refused) == (not stored.numbers_ok or not stored.text.strip())
            assert (lang in p.parallel) != (lang in p.refused)
    translate_problems([problem(q, doc_id=i) for i, q in enumerate(questions)], config.languages, translator, store,
                       [], 16, counts)
    assert sum(calls.values()) == 2 and counts.reused == 4


def test_a_seq2seq_mt_model_translates_through_transformers(copy_mt):
    config = parse_model_args({"pretrained": str(testing.tiny_generator()), "languages": "en:de:zh",
                               "translator": str(copy_mt), "device": "cpu"})
    translator = load_translator(config, None, {}, lambda: pytest.fail("the generator is not the translator"))
    assert isinstance(translator, MTTranslator) and translator.identity["kind"] == "seq2seq"
    questions = gsm8k_questions(2)
    store, counts = CandidateStore(None), TranslationCounts()
    out = translate_problems([problem(q, doc_id=i) for i, q in enumerate(questions)], config.languages, translator,
                             store, [], 16, counts)
    # the fixture copies its input after the forced target-language token: every number kept
    assert [p.parallel for p in out] == [{"en": q, "de": q, "zh": q} for q in questions]
    assert counts.as_dict()["refused_number_check"] == 0 and counts.translated == 4


# ------------------------------------------------------------------------------------------------ errors


def test_translator_values_and_errors_that_say_what_to_change(copy_mt, tmp_path):
    generator = str(testing.tiny_generator())
    assert parse_model_args({"pretrained": generator}).translator == "self"
    assert parse_model_args({"pretrained": generator, "translator": "none"}).translator is None
    assert parse_model_args({"pretrained": generator, "translator": str(copy_mt)}).translator == str(copy_mt)
    with pytest.raises(ModelArgsError, match="no NLLB code for vai.*remove it from languages="):
        parse_model_args({"pretrained": generator, "translator": str(copy_mt), "languages": "en:vai"})
    with pytest.raises(ModelArgsError, match="not a seq2seq"):
        MTTranslator(generator, "cpu").check(["en", "de"])
    with pytest.raises(ModelArgsError, match="cannot be loaded"):
        MTTranslator(str(tmp_path / "missing"), "cpu").check(["en", "de"])
    target_only = parse_model_args({"pretrained": generator, "translator": str(copy_mt)}, "self-consistency")
    assert load_translator(target_only, None, {}, None) is None  # its pool is the question's own language


# ------------------------------------------------------------------------------------------------ the harness


def test_the_harness_translates_a_task_without_parallel_versions_and_samples_the_pool(copy_mt, caplog):
    from lm_eval.api.instance import Instance

    from bestofl_models.harness import model as harness
    from bestofl_tasks.prompts import generator_prompt

    question = gsm8k_questions(1)[0]
    lm = harness.BestOfL(pretrained=str(testing.tiny_generator()), languages="en:de:fr", n=3, max_gen_toks=8,
                         store=None, translator=str(copy_mt), selection="cross_self_consistency", device="cpu")
    ctx = f"Q: An example with 3 apples?\nA: 3.\n\nQ: {question}\nA:"
    request = Instance("generate_until", {"question": question, "answer": "... #### 18"}, (ctx, {"until": ["Q:"]}), 0,
                       ("some_task", 0, 1))
    with caplog.at_level(logging.INFO, logger="bestofl_models"):
        [out] = lm.generate_until([request])
    by_lang = {c.lang: c for c in lm.store.candidates()}
    assert set(by_lang) == {"en", "de", "fr"}  # the copying MT model keeps every number: nothing refused
    prompts = {lang: generator_prompt(lm.tokenizer, question, lang) for lang in by_lang}
    assert all(by_lang[lang].prompt_hash == hashlib.sha256(prompts[lang].encode()).hexdigest() for lang in by_lang)
    # no task object: the selected candidate plus the English final line (as it is when no number parses from it)
    assert any(out == (c.text.rstrip() + f"\nThe answer is {c.answer}." if c.answer else c.text) for c in by_lang.values())
    assert lm.get_model_info()["bestofl"]["translation"]["planned"] == 2
    assert "1 questions translated by translator=" in caplog.text
