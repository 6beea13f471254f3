"""The harness models in-process on the tiny fixtures: registration, dedupe, output, fallback, errors."""

from __future__ import annotations

import logging
import math

import pytest
from lm_eval.api.instance import Instance

from bestofl_models.generation.backends import Generation
from bestofl_models.harness import model as harness
from bestofl_models.harness import run_log
from bestofl_models.selection.methods import METHODS, Scored, select
from bestofl_models.store import CandidateStore
from bestofl_tasks.answers import extract_answer
from bestofl_tasks.data import load_docs


@pytest.fixture(autouse=True)
def offline_data(monkeypatch):
    from fixtures import DATA_DIR

    monkeypatch.setenv("BESTOFL_DATA_DIR", str(DATA_DIR))


def request(doc, task, doc_id, ctx="ignored", until=("Frage:",), repeats=1):
    return Instance("generate_until", doc, (ctx, {"until": list(until), "do_sample": False}), 0,
                    (task, doc_id, repeats))


@pytest.fixture
def model_args(tiny_generator_dir, tiny_verifier_adapter_dir, tmp_path):
    return {"pretrained": str(tiny_generator_dir), "verifier": str(tiny_verifier_adapter_dir),
            "languages": "en:de", "n": 4, "max_gen_toks": 16, "store": str(tmp_path / "store")}


def test_presets_resolve_through_the_registry_and_builtins_still_do():
    from lm_eval.api.registry import get_model

    assert get_model("bestofl") is harness.BestOfL
    assert get_model("multi-orm") is harness.MultiORM
    assert get_model("self-consistency") is harness.SelfConsistency
    assert get_model("hf").__name__ == "HFLM"
    assert (harness.BestOfL.PRESET, harness.MultiORM.PRESET) == ("bestofl", "multi-orm")


def test_invalid_model_args_fail_before_loading_anything():
    from lm_eval.api.registry import get_model

    with pytest.raises(ValueError, match="verifier_format='xml' is not one of"):
        get_model("bestofl").create_from_arg_string("pretrained=/does/not/exist,verifier_format=xml", {"batch_size": 1})


def answering_seeds():
    """Run seeds to try: the tiny generator is random and a candidate's seed covers the generator's path,
    so whether a pool holds an answer depends on where the fixtures were built."""
    return range(1234, 1264)


def test_same_problem_from_two_target_languages_is_generated_once(model_args, tmp_path):
    de, fr = load_docs("mgsm", "de")[0], load_docs("mgsm", "fr")[0]
    for seed in answering_seeds():
        lm = harness.BestOfL(**{**model_args, "seed": seed, "store": str(tmp_path / f"store-{seed}")})
        outputs = lm.generate_until([request(de, "mgsm_xling_de", 0), request(fr, "mgsm_xling_fr", 0)])
        lm.close()
        store = CandidateStore(tmp_path / f"store-{seed}", read_only=True)
        assert len(store) == 4  # en x2, de x2: shared by both requests
        assert len(store.scores(lm.verifier_id)) == 4
        answered = [c for c in store.candidates() if c.answer is not None]  # an answer beats no answer
        if answered:
            break
    else:
        pytest.fail("the tiny generator gave no candidate with an answer for any seed")
    scores = store.scores(lm.verifier_id)
    best = max(answered, key=lambda c: scores[(c.key, lm.verifier_id)])
    for output, lang, phrase in zip(outputs, ("de", "fr"), ("Die Antwort lautet", "La réponse est")):
        body, last = output.rstrip().rsplit("\n", 1)  # generated text may hold any line break
        assert last.startswith(phrase), output
        assert body == best.text.rstrip()  # cross_orm: the top-scored candidate of the whole pool
        assert extract_answer(output, lang) == best.answer


def test_lm_eval_en_cot_gets_an_english_final_line_from_the_same_samples(tiny_generator_dir):
    """mgsm_en_cot_de asks in German but strict-matches ``The answer is (...)``: same candidates as
    mgsm_native_cot_de, English final line."""
    ours = load_docs("mgsm", "de")[0]
    doc = {"question": ours["question"], "answer": None, "answer_number": int(ours["answer"]),
           "equation_solution": None}
    for seed in answering_seeds():
        lm = harness.SelfConsistency(pretrained=str(tiny_generator_dir), n=3, max_gen_toks=16, store=None, seed=seed)
        requests = [request(doc, "mgsm_native_cot_de", 0), request(doc, "mgsm_en_cot_de", 0)]
        native, english = lm.generate_until(requests)
        if any(c.answer is not None for c in lm.store.candidates()):
            break
        lm.close()
    else:
        pytest.fail("the tiny generator gave no candidate with an answer for any seed")
    body, native_line = native.rstrip().rsplit("\n", 1)
    assert native_line.startswith("Die Antwort lautet"), native
    assert english == body + "\n" + "The answer is " + extract_answer(native_line, "de") + "."
    lm.close()


def test_generation_batches_go_longest_prompt_first_and_keep_a_prompts_candidates_together(tiny_generator_dir,
                                                                                            monkeypatch):
    class RecordingBackend:
        def __init__(self, tokenizer):
            self.tokenizer, self.batches = tokenizer, []

        def generate(self, prompts, seeds, stops, settings):
            self.batches.append(list(prompts))
            return [Generation(f"The answer is {len(p)}.", len(p), 5, False) for p in prompts]

    lm = harness.SelfConsistency(pretrained=str(tiny_generator_dir), n=3, max_gen_toks=8, store=None, batch_size=4)
    backend = RecordingBackend(lm.tokenizer)
    monkeypatch.setattr(lm, "_generator", lambda: backend)
    docs = load_docs("mgsm", "de")[:4]
    lm.generate_until([request(doc, "mgsm_xling_de", i) for i, doc in enumerate(docs)])
    rows = [prompt for batch in backend.batches for prompt in batch]
    lengths = [len(lm.tokenizer.encode(prompt)) for prompt in rows]
    assert len(rows) == 12 and len(set(lengths)) == 4 and lengths == sorted(lengths, reverse=True)
    assert all(sum(prompt in batch for batch in backend.batches) == 1 for prompt in set(rows))  # never split


def test_rerun_generates_nothing_and_repeats_get_the_same_answer(model_args, monkeypatch, caplog):
    doc = load_docs("mgsm", "de")[1]
    first = harness.BestOfL(**model_args).generate_until([request(doc, "mgsm_xling_de", 1)])
    lm = harness.BestOfL(**model_args)
    monkeypatch.setattr(lm, "_generator", lambda: pytest.fail("nothing should be generated"))
    monkeypatch.setattr(lm, "_load_verifier", lambda: pytest.fail("nothing should be scored"))
    run_log.warn_repeats.cache_clear()
    repeated = request(doc, "mgsm_xling_de", 1, repeats=2)
    with caplog.at_level(logging.WARNING, logger="bestofl_models.harness.model"):
        again = lm.generate_until([repeated, repeated])
    assert again == first * 2
    assert any("repeats=2" in r.message for r in caplog.records)


def test_self_consistency_needs_no_verifier_and_samples_the_target_only(tiny_generator_dir, tmp_path):
    lm = harness.SelfConsistency(pretrained=str(tiny_generator_dir), n=3, max_gen_toks=8, store=None)
    lm.generate_until([request(load_docs("mgsm", "ja")[2], "mgsm_xling_ja", 2)])
    assert {c.lang for c in lm.store.candidates()} == {"ja"} and len(lm.store) == 3
    assert lm._verifier is None


def test_unknown_tasks_sample_their_own_prompt(tiny_generator_dir, caplog):
    lm = harness.SelfConsistency(pretrained=str(tiny_generator_dir), n=2, max_gen_toks=8, store=None, translator="none")
    doc = {"question": "2+2?", "answer": "#### 4"}
    with caplog.at_level(logging.WARNING):
        out = lm.generate_until([request(doc, "some_task", 0, ctx="Q: 2+2?\nA:", until=("\n\n",))])
    assert len(out) == 1 and len(lm.store) == 2
    assert {c.lang for c in lm.store.candidates()} == {None}
    assert all("\n\n" not in c.text for c in lm.store.candidates())
    assert any("no parallel versions" in r.message for r in caplog.records)


def test_few_shot_context_is_reported_as_unused(tiny_generator_dir, caplog):
    from bestofl_tasks.prompts import user_prompt

    doc = load_docs("mgsm", "de")[0]
    lm = harness.SelfConsistency(pretrained=str(tiny_generator_dir), n=1, max_gen_toks=4, store=None)
    zero_shot = user_prompt(doc["question"], "de")
    run_log.warn_fewshot_ignored.cache_clear()
    with caplog.at_level(logging.WARNING, logger="bestofl_models.harness.model"):
        lm.generate_until([request(doc, "mgsm_xling_de", 0, ctx=zero_shot)])
        assert "few-shot" not in caplog.text
        lm.generate_until([request(doc, "mgsm_xling_de", 0, ctx=zero_shot + " 5.\n\n" + zero_shot)])
    assert "mgsm_xling_de: the task's prompt holds few-shot examples" in caplog.text


def test_loglikelihood_is_refused_clearly(tiny_generator_dir):
    lm = harness.SelfConsistency(pretrained=str(tiny_generator_dir), store=None)
    with pytest.raises(NotImplementedError, match="only generates"):
        lm.loglikelihood([])
    with pytest.raises(NotImplementedError, match="only generates"):
        lm.loglikelihood_rolling([])


def test_every_registered_selection_answers_with_its_pick_from_one_store(model_args):
    """``selection=NAME`` works for every spec of the registry, each run reusing the same candidates and scores."""
    doc = load_docs("mgsm", "de")[1]
    for name, spec in METHODS.items():
        lm = harness.BestOfL(**{**model_args, "n": 6, "selection": name})
        [output] = lm.generate_until([request(doc, "mgsm_xling_de", 1)])
        lm.close()
        verifier = lm.verifier_id or next(iter(lm.store.verifiers()))
        scores = lm.store.scores_for(verifier, [c.key for c in lm.store.candidates()])
        candidates = [Scored(c.key, c.lang, c.sample_idx, c.answer,
                             (math.nan if scores[c.key] is None else scores[c.key]) if spec.needs_verifier else None)
                      for c in lm.store.candidates()]
        assert len(candidates) == 6
        chosen = select(name, candidates, "de", ["en", "de"])
        assert output.startswith(lm.store.get(chosen.key).text.rstrip()), name


def test_target_only_selection_with_the_target_outside_the_pool(model_args):
    lm = harness.BestOfL(**{**model_args, "selection": "multi_orm"})
    with pytest.raises(ValueError, match="not in languages=en:de"):
        lm.generate_until([request(load_docs("mgsm", "fr")[0], "mgsm_xling_fr", 0)])


def test_simple_evaluate_with_a_dict_of_model_args(model_args, tmp_path):
    import lm_eval

    results = lm_eval.simple_evaluate(
        model="multi-orm", model_args={**model_args, "n": 2}, tasks=["mgsm_xling_sw"], limit=1,
    )
    assert "exact_match,numeric" in results["results"]["mgsm_xling_sw"]
    assert results["config"]["bestofl"]["selection"] == "multi_orm"
    assert len(CandidateStore(tmp_path / "store", read_only=True)) == 2


def test_a_run_reads_stores_written_elsewhere_and_generates_only_what_none_holds(model_args, tmp_path, monkeypatch):
    """Shards from two machines: store B reuses A's candidates and scores (copied on use) and generates the rest."""
    docs = load_docs("mgsm", "de")[:2]
    shard = {**model_args, "store": str(tmp_path / "shard-a")}
    lm = harness.BestOfL(**shard)
    first = lm.generate_until([request(docs[0], "mgsm_xling_de", 0)], disable_tqdm=True)
    lm.close()

    merged = {**model_args, "store": str(tmp_path / "b"), "read_stores": str(tmp_path / "shard-a")}
    lm = harness.BestOfL(**merged)
    generated = []
    original = lm._generator

    def counting_generator():
        backend = original()
        real = backend.generate
        backend.generate = lambda prompts, *a: generated.extend(prompts) or real(prompts, *a)
        return backend

    monkeypatch.setattr(lm, "_generator", counting_generator)
    both = lm.generate_until([request(docs[0], "mgsm_xling_de", 0), request(docs[1], "mgsm_xling_de", 1)],
                             disable_tqdm=True)
    assert both[0] == first[0]  # the shard's candidates and scores, not new ones
    assert len(generated) == 4  # only the second problem's n=4 candidates
    store, shard_store = CandidateStore(tmp_path / "b", read_only=True), CandidateStore(tmp_path / "shard-a",
                                                                                         read_only=True)
    assert len(store) == 8 and len(shard_store) == 4
    shared = {c.key for c in shard_store.candidates()}
    assert store.scores(lm.verifier_id).keys() >= {(key, lm.verifier_id) for key in shared}
    assert all(store.get(key).text == shard_store.get(key).text for key in shared)
