"""Verifiers that exist today: a public chat reward model (``verifier_format``), the generator or another model as
a yes/no judge (``verifier=self`` / ``judge:ID``), the default with no ``verifier=``, and their vLLM paths with
fake engines."""

from __future__ import annotations

import logging
import math
import shutil
from types import SimpleNamespace

import fixtures  # tests/ is on sys.path (rootdir conftest)
import pytest
import torch
from lm_eval.api.instance import Instance

from bestofl_models.harness import model as harness
from bestofl_models import testing
from bestofl_models.harness.model_args import parse_model_args
from bestofl_models.store.identity import verifier_identity
from bestofl_models.verifiers.judge import VLLMJudge, answer_token_ids, judge_text, yes_probability
from bestofl_models.verifiers.classifier import CHAT_FORMAT, TEXT_FORMAT, VLLMVerifier, chat_rm_text
from bestofl_models.verifiers.spec import load_scorer, resolve_verifier
from bestofl_tasks.data import load_docs
from bestofl_tasks.prompts import user_prompt

ITEMS = [("Wie viel ist 2+3?", "2+3=5. Die Antwort lautet 5.", "de"),
         ("How much is 2+3? Think step by step and explain every part.", "2+3=6. The answer is 6.", "en"),
         ("2+3?", "5", "en")]


@pytest.fixture(scope="module")
def chat_rm_dir():
    return fixtures.tiny_chat_reward_model()


@pytest.fixture(scope="module")
def judge_dir():
    return fixtures.tiny_judge()


@pytest.fixture(autouse=True)
def offline_data(monkeypatch):
    monkeypatch.setenv("BESTOFL_DATA_DIR", str(fixtures.DATA_DIR))


def config(generator, verifier=None, **extra):
    """The verifier settings a harness run with these ``--model_args`` would use."""
    return parse_model_args({"pretrained": str(generator), "verifier": verifier and str(verifier), "store": None,
                             **extra}).verifier_config()


def request(doc, task, doc_id):
    return Instance("generate_until", doc, ("ignored", {"until": ["Frage:"], "do_sample": False}), 0,
                    (task, doc_id, 1))


# ----------------------------------------------------------------------------------------- chat reward models


def test_a_chat_reward_model_scores_the_question_as_prompted_through_its_chat_template(tiny_generator_dir,
                                                                                       chat_rm_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    cfg = config(tiny_generator_dir, chat_rm_dir, verifier_batch_size=1)
    spec = resolve_verifier(cfg)
    assert (spec.kind, spec.format, spec.format_version) == ("classifier", "chat", CHAT_FORMAT)
    assert "chat template" in spec.reason
    scorer = load_scorer(cfg, spec)
    one_by_one = scorer.score_items(ITEMS, progress=False)
    scorer.batch_size = 3
    assert scorer.score_items(ITEMS, progress=False) == pytest.approx(one_by_one, abs=1e-6)
    scorer.close()

    tokenizer = AutoTokenizer.from_pretrained(chat_rm_dir)
    model = AutoModelForSequenceClassification.from_pretrained(chat_rm_dir).eval()
    for (question, response, lang), score in zip(ITEMS, one_by_one):
        conversation = [{"role": "user", "content": user_prompt(question, lang)},
                        {"role": "assistant", "content": response}]
        text = tokenizer.apply_chat_template(conversation, tokenize=False)
        assert text == chat_rm_text(tokenizer, question, response, lang)
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            logit = model(**ids).logits[0, 0].double()
        assert score == pytest.approx(torch.sigmoid(logit).item(), abs=1e-6)  # stored as sigmoid(reward)
    assert len(set(one_by_one)) == 3 and all(0 < s < 1 for s in one_by_one)


def test_auto_format_follows_the_checkpoint_and_the_identity_records_it(tiny_generator_dir, chat_rm_dir,
                                                                        tiny_verifier_adapter_dir, tmp_path):
    adapter = resolve_verifier(config(tiny_generator_dir, tiny_verifier_adapter_dir))
    assert (adapter.format, adapter.format_version) == ("bestofl", TEXT_FORMAT)
    exported = tmp_path / "merged"  # bestofl-train's merged export carries its model card
    shutil.copytree(chat_rm_dir, exported)
    (exported / "README.md").write_text("---\nlibrary_name: peft\ntags:\n- bestofl\n- verifier\n---\n# card\n")
    ours = config(tiny_generator_dir, exported)
    assert resolve_verifier(ours).format == "bestofl"
    chat = config(tiny_generator_dir, chat_rm_dir)
    forced = config(tiny_generator_dir, chat_rm_dir, verifier_format="bestofl")
    assert resolve_verifier(forced).reason == "given"
    records = [verifier_identity(c, resolve_verifier(c)) for c in (chat, forced)]
    assert [r["format"] for r in records] == [CHAT_FORMAT, TEXT_FORMAT]
    assert records[0]["fingerprint"] == records[1]["fingerprint"]


def test_chat_reward_model_errors_come_before_any_sampling(tiny_generator_dir, chat_rm_dir, tmp_path):
    from transformers import AutoTokenizer

    two = fixtures.two_logit_classifier(chat_rm_dir, tmp_path / "two")
    with pytest.raises(ValueError, match="classifier with 2 outputs"):
        harness.BestOfL(pretrained=str(tiny_generator_dir), verifier=str(two), store=None)
    plain = tmp_path / "plain"
    shutil.copytree(chat_rm_dir, plain)
    tokenizer = AutoTokenizer.from_pretrained(plain)
    tokenizer.chat_template = None
    tokenizer.save_pretrained(plain)
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    assert resolve_verifier(config(tiny_generator_dir, plain)).format == "bestofl"  # auto: no template to use
    with pytest.raises(ValueError, match="has no chat template"):
        harness.BestOfL(pretrained=str(tiny_generator_dir), verifier=str(plain), verifier_format="chat", store=None)


def test_vllm_chat_reward_model_scores_the_same_texts(tiny_generator_dir, chat_rm_dir):
    seen = []

    class FakePooling:
        def classify(self, prompts, use_tqdm=False):
            seen.extend(prompts)
            return [SimpleNamespace(outputs=SimpleNamespace(probs=[0.25 + i / 10])) for i in range(len(prompts))]

    cfg = config(tiny_generator_dir, chat_rm_dir)
    scorer = VLLMVerifier(cfg, text_format="chat", llm=FakePooling())
    assert scorer.score_items(ITEMS, progress=False) == [0.25, 0.35, 0.45]
    tokenizer = scorer.tokenizer
    expected = [tokenizer.encode(chat_rm_text(tokenizer, q, r, lang), add_special_tokens=False) for q, r, lang in ITEMS]
    assert [p["prompt_token_ids"] for p in seen] == expected


# ----------------------------------------------------------------------------------------- judges


def test_a_tokenizer_without_single_yes_no_tokens_is_refused_before_sampling(tiny_generator_dir, judge_dir):
    from transformers import AutoTokenizer

    with pytest.raises(ValueError, match="no single token for yes"):
        answer_token_ids(AutoTokenizer.from_pretrained(tiny_generator_dir), "tiny")
    with pytest.raises(ValueError, match="no single token for yes"):
        harness.BestOfL(pretrained=str(tiny_generator_dir), store=None)  # the default judge is the generator
    with pytest.raises(ValueError, match="is a classifier"):
        resolve_verifier(config(judge_dir, f"judge:{testing.tiny_verifier()}"))
    yes, no = answer_token_ids(AutoTokenizer.from_pretrained(judge_dir), "judge")
    assert yes and no and not set(yes) & set(no)


def test_yes_probability_normalises_over_the_two_words():
    assert yes_probability({1: math.log(0.3), 2: math.log(0.1), 3: math.log(0.2)}, (1, 2), (3,)) == pytest.approx(
        0.4 / 0.6)
    assert yes_probability({1: -1.0}, (1,), (3,)) == 1.0
    assert yes_probability({3: -1.0}, (1,), (3,)) == 0.0
    assert math.isnan(yes_probability({9: -1.0}, (1,), (3,)))


def test_the_judge_reads_p_yes_of_the_next_token_batched_like_one_by_one(judge_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = config(judge_dir, "self", verifier_batch_size=1)
    spec = resolve_verifier(cfg)
    assert (spec.kind, spec.model, spec.format) == ("judge", str(judge_dir), "judge")
    scorer = load_scorer(cfg, spec)
    one_by_one = scorer.score_items(ITEMS, progress=False)
    scorer.batch_size = 3
    assert scorer.score_items(ITEMS, progress=False) == pytest.approx(one_by_one, abs=1e-6)
    scorer.close()

    tokenizer = AutoTokenizer.from_pretrained(judge_dir)
    model = AutoModelForCausalLM.from_pretrained(judge_dir).eval()
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    for (question, response, _), score in zip(ITEMS, one_by_one):
        text = judge_text(tokenizer, question, response)
        assert text.endswith("<|im_start|>assistant\n") and "Answer with one word: yes or no." in text
        with torch.inference_mode():
            logits = model(**tokenizer(text, return_tensors="pt", add_special_tokens=False)).logits[0, -1].double()
        probs = torch.softmax(logits, dim=-1)
        assert score == pytest.approx((probs[yes] / (probs[yes] + probs[no])).item(), abs=1e-6)


def test_vllm_judge_reads_the_top_logprobs(judge_dir, monkeypatch):
    import sys

    from transformers import AutoTokenizer

    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(SamplingParams=lambda **kw: SimpleNamespace(**kw)))

    yes, no = answer_token_ids(AutoTokenizer.from_pretrained(judge_dir), "judge")

    class FakeEngine:
        def generate(self, prompts, params, use_tqdm=False):
            assert params.max_tokens == 1 and params.logprobs == 20
            tops = [{yes[0]: math.log(0.6), no[0]: math.log(0.2)}, {no[0]: -0.1}, {7: -0.1}]
            return [SimpleNamespace(outputs=[SimpleNamespace(
                logprobs=[{i: SimpleNamespace(logprob=lp) for i, lp in top.items()}])]) for top in tops]

    scores = VLLMJudge(config(judge_dir, "self"), str(judge_dir), llm=FakeEngine()).score_items(ITEMS, False)
    assert scores[0] == pytest.approx(0.75) and scores[1] == 0.0 and math.isnan(scores[2])


def test_no_verifier_means_the_generator_judges_and_says_so_once(judge_dir, caplog, tmp_path):
    doc = load_docs("mgsm", "de")[0]
    with caplog.at_level(logging.INFO, logger="bestofl_models"):
        lm = harness.BestOfL(pretrained=str(judge_dir), languages="en:de", n=2, max_gen_toks=8, store=str(tmp_path))
    lines = [r.message for r in caplog.records if "no verifier= given" in r.message]
    assert len(lines) == 1 and "verifier=self" in lines[0] and "recommended" in lines[0]
    assert lm.verifier_spec.kind == "judge" and lm.verifier_identity["kind"] == "judge"
    lm.generate_until([request(doc, "mgsm_xling_de", 0)])
    scores = lm.store.scores(lm.verifier_id)
    assert len(scores) == 2 and all(0 < s < 1 for s in scores.values())
    record = lm.sample_records["mgsm_xling_de", 0]
    assert {c["lang"] for c in record["candidates"]} == {"en", "de"}
    answered = [c for c in record["candidates"] if c["answer"] is not None] or record["candidates"]
    assert record["bestofl_selected_score"] == max(c["score"] for c in answered)  # an answer beats none
    info = lm.get_model_info()["bestofl"]
    assert (info["verifier"], info["verifier_kind"], info["verifier_format"]) == ("self", "judge", "judge")
    assert info["verifier_format_version"] == "bestofl-judge-1" and info["verifier_defaulted"] is True
    lm.close()


# ----------------------------------------------------------------------------------------- batching


def test_a_prompts_candidates_share_one_batch_even_at_batch_size_1(tiny_generator_dir):
    from bestofl_models.generation.backends import prompt_batches

    items = ["a", "a", "a", "b", "c", "c"]
    assert prompt_batches(items, 1, key=str) == [["a", "a", "a"], ["b"], ["c", "c"]]
    assert prompt_batches(items, 4, key=str) == [["a", "a", "a", "b"], ["c", "c"]]
    assert prompt_batches(items, 2, key=str) == [["a", "a", "a"], ["b"], ["c", "c"]]

    calls = []
    lm = harness.SelfConsistency(pretrained=str(tiny_generator_dir), n=4, max_gen_toks=4, store=None, batch_size=1)
    original = lm._generator

    def recording():
        backend = original()
        real = backend.generate
        backend.generate = lambda prompts, *a: calls.append(list(prompts)) or real(prompts, *a)
        return backend

    lm._generator = recording
    docs = load_docs("mgsm", "de")[:2]
    lm.generate_until([request(doc, "mgsm_xling_de", i) for i, doc in enumerate(docs)])
    assert [len(call) for call in calls] == [4, 4] and all(len(set(call)) == 1 for call in calls)
    assert lm.get_model_info()["bestofl"]["largest_generation_batch"] == 4
    lm.close()
