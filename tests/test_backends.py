"""transformers generator backend and the verifier on the tiny fixtures; vLLM through its smoke script."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import pytest
from fixtures import two_logit_classifier  # tests/ is on sys.path (rootdir conftest)

from bestofl_models.generation.backends import SamplingSettings
from bestofl_models.generation.backends.hf import HFBackend, StopStringsPerRow
from bestofl_models.harness.model_args import parse_model_args
from bestofl_models.verifiers.checkpoint import inspect_verifier
from bestofl_models.verifiers.classifier import HFVerifier, load_verifier, score_responses
from bestofl_tasks.prompts import generator_prompt

REPO = Path(__file__).resolve().parents[1]


def config(generator, verifier=None, **extra):
    return parse_model_args({"pretrained": str(generator), "verifier": str(verifier) if verifier else None,
                             "store": None, "selection": "cross_orm" if verifier else "self_consistency",
                             **extra})


def verifier_config(generator, verifier, **extra):
    return config(generator, verifier, **extra).verifier_config()


@pytest.fixture(scope="module")
def backend(tiny_generator_dir):
    loaded = HFBackend(config(tiny_generator_dir))
    yield loaded
    loaded.close()


def prompts(tokenizer):
    return [generator_prompt(tokenizer, q, lang) for q, lang in
            [("Wie viel ist 2+3?", "de"), ("How much is 7 times 6? Think carefully and explain.", "en")]]


def test_same_seeds_same_samples_and_greedy_ignores_them(backend):
    hot = SamplingSettings(temperature=1.0, top_p=1.0, max_gen_toks=12)
    texts = prompts(backend.tokenizer)
    first = backend.generate(texts, [1, 2], [(), ()], hot)
    assert backend.generate(texts[::-1], [2, 1], [(), ()], hot) == first[::-1]  # order does not matter
    assert backend.generate(texts, [3, 4], [(), ()], hot) != first
    greedy = SamplingSettings(temperature=0.0, top_p=1.0, max_gen_toks=12)
    assert backend.generate(texts, [1, 2], [(), ()], greedy) == backend.generate(texts, [5, 6], [(), ()], greedy)


def test_a_candidates_text_depends_on_its_seed_not_on_its_batch_mates(backend):
    """Each row samples from its own seed: alone, beside other prompts, or twice in one batch with two seeds."""
    hot = SamplingSettings(temperature=1.0, top_p=0.95, max_gen_toks=16)
    texts = prompts(backend.tokenizer)
    alone = backend.generate(texts[:1], [11], [()], hot)[0].text
    with_others = [g.text for g in backend.generate([texts[0], texts[1], texts[0]], [11, 12, 13], [(), (), ()], hot)]
    assert with_others[0] == alone
    assert with_others[2] != alone  # same prompt, another seed: another sample
    assert backend.generate(texts[1:], [12], [()], hot)[0].text == with_others[1]


def test_per_row_sampling_draws_from_the_warped_distribution():
    """SamplePerRow picks tokens with the frequencies of softmax(logits / T) cut to the top_p nucleus."""
    import torch

    from bestofl_models.generation.backends.hf import SamplePerRow, uniform_draw

    draws = [uniform_draw(7, step) for step in range(4000)]
    assert all(0.0 <= u < 1.0 for u in draws) and abs(sum(draws) / len(draws) - 0.5) < 0.02
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    counts = torch.zeros(4)
    nucleus = SamplePerRow([0], SamplingSettings(temperature=1.0, top_p=0.75, max_gen_toks=1), prompt_length=0)
    for step in range(4000):
        out = nucleus(torch.zeros((1, step), dtype=torch.long), logits)
        assert torch.isfinite(out).sum() == 1
        counts[out.argmax()] += 1
    assert counts[2] == counts[3] == 0  # outside the 0.75 nucleus {0.5, 0.3}
    assert abs(counts[0] / 4000 - 0.5 / 0.8) < 0.03


def test_prompts_padded_to_a_bucket_generate_the_same_text(backend, monkeypatch):
    """On a GPU prompts are left-padded to a multiple of PROMPT_BUCKET_TOKENS (shapes repeat over a run's batches);
    the padding is masked and skipped by the positions, so greedy decoding writes the same text (forced on here)."""
    from bestofl_models.generation.backends import hf

    greedy = SamplingSettings(temperature=0.0, top_p=1.0, max_gen_toks=12)
    texts = prompts(backend.tokenizer)
    plain = backend.generate(texts, [1, 2], [(), ()], greedy)
    lengths = []
    original = backend.model.generate

    def recording(**kwargs):
        lengths.append(kwargs["input_ids"].shape[1])
        return original(**kwargs)

    monkeypatch.setattr(backend.model, "generate", recording)
    monkeypatch.setattr(hf, "prompt_bucket", lambda device: 64)
    assert backend.generate(texts, [1, 2], [(), ()], greedy) == plain
    assert lengths == [64] or (lengths[0] % 64 == 0 and lengths[0] > 64)


def test_stop_strings_apply_per_row(backend):
    settings = SamplingSettings(temperature=1.0, top_p=1.0, max_gen_toks=24)
    texts = prompts(backend.tokenizer)
    free = backend.generate(texts, [1, 2], [(), ()], settings)
    stop = free[0].text[3:6]  # a string the first row is known to produce
    cut = backend.generate(texts, [1, 2], [(stop,), ()], settings)
    assert cut[0].text == free[0].text.split(stop)[0]
    assert cut[1] == free[1]
    # the stopped row counts the tokens it ran until its stop string appeared, no more; it did not hit the cap
    assert cut[0].gen_tokens < free[0].gen_tokens and not cut[0].hit_cap
    assert cut[0].prompt_tokens == free[0].prompt_tokens


def test_checkpoint_sampling_defaults_are_not_applied(backend, tiny_generator_dir, tmp_path):
    """A checkpoint's generation_config.json (Qwen2.5-Instruct: repetition_penalty=1.05, top_k=20, ...) must not
    change what transformers samples: vLLM gets explicit SamplingParams and ignores it, so must we."""
    polluted = tmp_path / "polluted"
    polluted.mkdir()
    for item in tiny_generator_dir.iterdir():
        if item.is_file():
            (polluted / item.name).write_bytes(item.read_bytes())
    defaults = json.loads((tiny_generator_dir / "generation_config.json").read_text())
    defaults.update(repetition_penalty=5.0, top_k=1, min_p=0.5, no_repeat_ngram_size=2, temperature=0.3,
                    do_sample=True)
    (polluted / "generation_config.json").write_text(json.dumps(defaults))
    loaded = HFBackend(config(polluted))
    try:
        texts = prompts(backend.tokenizer)
        for settings in (SamplingSettings(temperature=1.0, top_p=1.0, max_gen_toks=16),
                         SamplingSettings(temperature=0.0, top_p=1.0, max_gen_toks=16)):
            assert loaded.generate(texts, [1, 2], [(), ()], settings) == \
                backend.generate(texts, [1, 2], [(), ()], settings)
        assert loaded.model.generation_config.repetition_penalty in (None, 1.0)
        assert loaded.eos_token_id == backend.eos_token_id
    finally:
        loaded.close()


def stopped_rows(criterion, ids):
    """Rows the criterion finishes when called after every token, as ``generate`` calls it."""
    import torch

    done = torch.zeros(ids.shape[0], dtype=torch.bool)
    for end in range(1, ids.shape[1] + 1):
        done |= criterion(ids[:, :end], None)
    return done.tolist()


def test_stop_criterion_marks_rows_separately(backend):
    tok = backend.tokenizer
    rows = tok(["aaa Frage: x", "aaa Question : y"], return_tensors="pt", padding=True)["input_ids"]
    assert stopped_rows(StopStringsPerRow(tok, [("Frage:",), ("Frage:",)], prompt_length=0), rows) == [True, False]


def test_stop_criterion_finds_what_decoding_every_tail_finds(backend):
    """The criterion decodes only rows whose newest token can end a stop string; called after every token it
    finishes the same rows at the same steps as decoding every row's tail at every step (random token streams
    with the stop strings planted, CJK and Thai ones included)."""
    import random

    import torch

    tok = backend.tokenizer
    stops = [("Frage:", "<|im_end|>"), ("问题：",), ("โจทย์:",), ("Question :", "</s>")]
    rng = random.Random(0)
    rows = []
    for i in range(32):
        ids = [rng.randrange(len(tok)) for _ in range(rng.randrange(5, 25))]
        if i % 2:
            ids += tok.encode(rng.choice(stops[i % len(stops)]), add_special_tokens=False)
        rows.append((ids + [rng.randrange(len(tok)) for _ in range(30)])[:30])
    ids = torch.tensor(rows)
    per_row = [stops[i % len(stops)] for i in range(len(rows))]
    criterion = StopStringsPerRow(tok, per_row, prompt_length=2)
    assert criterion.ending is not None  # the table is in use
    first = {}
    for end in range(3, ids.shape[1] + 1):
        for row in criterion(ids[:, :end], None).nonzero().flatten().tolist():
            first.setdefault(row, end)
    expected = {}
    for row, (tail_ids, row_stops) in enumerate(zip(rows, per_row)):
        for end in range(3, len(tail_ids) + 1):
            if any(s in tok.decode(tail_ids[2:end]) for s in row_stops):
                expected[row] = end
                break
    assert first == expected and len(expected) >= 16


def test_adapter_and_full_classifier_give_probabilities(tiny_generator_dir, tiny_verifier_dir,
                                                        tiny_verifier_adapter_dir):
    assert inspect_verifier(str(tiny_verifier_adapter_dir)) == str(tiny_verifier_adapter_dir / "base")
    assert inspect_verifier(str(tiny_verifier_dir)) is None
    items = [("Wie viel ist 2+3?", "2+3=5. Die Antwort lautet 5.", "de"),
             ("How much is 2+3?", "2+3=6. The answer is 6.", "en"),
             ("2+3?", "5", "en")]
    by_name = {}
    for verifier in (tiny_verifier_dir, tiny_verifier_adapter_dir):
        loaded = load_verifier(verifier_config(tiny_generator_dir, verifier, verifier_batch_size=1))
        assert isinstance(loaded, HFVerifier)
        one_by_one = score_responses(loaded, items, progress=False)
        loaded.batch_size = 3
        assert score_responses(loaded, items, progress=False) == pytest.approx(one_by_one, abs=1e-5)
        assert all(0 < s < 1 for s in one_by_one)
        by_name[verifier.name] = one_by_one
        loaded.close()
    assert by_name["tiny-verifier"] != pytest.approx(by_name["tiny-verifier-adapter"])


def test_multi_logit_classifier_is_refused(tiny_generator_dir, tiny_verifier_dir, tmp_path):
    two = two_logit_classifier(tiny_verifier_dir, tmp_path / "two")
    with pytest.raises(ValueError, match="classifier with 2 outputs"):
        load_verifier(verifier_config(tiny_generator_dir, two))


def test_missing_pad_token_is_set_from_eos(tiny_generator_dir, tiny_verifier_dir, tmp_path):
    from transformers import AutoTokenizer

    copy = tmp_path / "nopad"
    copy.mkdir()
    for item in tiny_verifier_dir.iterdir():
        if item.is_file():
            (copy / item.name).write_bytes(item.read_bytes())
    tok = AutoTokenizer.from_pretrained(copy)
    tok.pad_token = None
    tok.save_pretrained(copy)
    loaded = load_verifier(verifier_config(tiny_generator_dir, copy))
    assert loaded.tokenizer.pad_token == loaded.tokenizer.eos_token
    assert loaded.model.config.pad_token_id == loaded.tokenizer.pad_token_id
    assert len(score_responses(loaded, [("q", "a", "en"), ("question two", "longer answer", "en")], False)) == 2


def test_shared_loading_helpers_for_training(tiny_generator_dir, tiny_verifier_adapter_dir, tiny_tokenizer_dir):
    """``prepare_verifier_tokenizer`` / ``load_seqcls`` are what HFVerifier (and training) load with."""
    import torch
    from transformers import AutoTokenizer

    from bestofl_models.verifiers.checkpoint import load_seqcls, prepare_verifier_tokenizer

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    tok.pad_token, tok.padding_side = None, "left"
    assert prepare_verifier_tokenizer(tok) is tok
    assert (tok.pad_token, tok.padding_side) == (tok.eos_token, "right")
    with pytest.raises(ValueError, match="has no trained score head"):  # a causal LM is no verifier by itself
        load_seqcls(str(tiny_generator_dir), pad_token_id=tok.pad_token_id)
    fresh = load_seqcls(str(tiny_generator_dir), dtype="float32", pad_token_id=tok.pad_token_id, new_head=True)
    assert fresh.config.num_labels == 1 and fresh.config.pad_token_id == tok.pad_token_id
    assert fresh.dtype == torch.float32
    loaded = load_verifier(verifier_config(tiny_generator_dir, tiny_verifier_adapter_dir))
    pad = loaded.tokenizer.pad_token_id
    wrapped = load_seqcls(str(tiny_verifier_adapter_dir / "base"), adapter=str(tiny_verifier_adapter_dir),
                          pad_token_id=pad).eval()
    assert wrapped.get_base_model().config.pad_token_id == pad
    batch = loaded.tokenizer(["How much is 2+3?", "2+3=5. The answer is 5."], return_tensors="pt", padding=True)
    assert loaded.merged and not hasattr(loaded.model, "peft_config")  # merged for inference (a copy in memory)
    with torch.inference_mode():  # the same model: merging moves the logits by rounding only
        assert torch.allclose(wrapped(**batch).logits, loaded.model(**batch).logits, atol=1e-5)
    loaded.close()


class _Reports(logging.Handler):
    """Collects transformers' LOAD REPORT warnings as they leave its logger."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.reports = []

    def emit(self, record):
        if "LOAD REPORT" in record.getMessage():
            self.reports.append(record.getMessage())


def test_loading_our_verifiers_prints_no_false_missing_head_alarm(tiny_generator_dir, tmp_path):
    """A SEQ_CLS adapter on a causal LM (what bestofl-train fit makes) loads with its trained head and without
    transformers' "score.weight MISSING ... newly initialized" report; the report itself still reaches users when
    transformers emits it for a plain load (the capture works)."""
    import transformers
    from peft import LoraConfig, get_peft_model

    from bestofl_models.verifiers.checkpoint import load_seqcls
    from bestofl_models.verifiers.classifier import HFVerifier

    seen = _Reports()
    source = logging.getLogger("transformers.modeling_utils")
    source.addHandler(seen)
    try:
        base = transformers.AutoModelForSequenceClassification.from_pretrained(tiny_generator_dir, num_labels=1)
        assert len(seen.reports) == 1 and "score.weight" in seen.reports[0]  # transformers' own report
        adapter = get_peft_model(base, LoraConfig(task_type="SEQ_CLS", r=2, target_modules=["q_proj"]))
        adapter.base_model.model.score.modules_to_save["default"].weight.data.fill_(0.01)
        adapter.save_pretrained(tmp_path / "adapter")
        verifier = HFVerifier(verifier_config(tiny_generator_dir, tmp_path / "adapter"))
        head = verifier.model.score.weight  # the adapter merged for inference: its saved head is the model's
        assert bool((head == 0.01).all())  # the trained head, not a fresh one
        verifier.close()
        fresh = load_seqcls(str(tiny_generator_dir), new_head=True)
        assert fresh.config.num_labels == 1
        assert len(seen.reports) == 1  # neither load reported a false alarm
    finally:
        source.removeHandler(seen)


def test_generator_revision_is_not_applied_to_the_verifier(tiny_generator_dir, tiny_verifier_dir,
                                                           tiny_verifier_adapter_dir, monkeypatch):
    """``revision=`` names the generator's revision; a verifier (adapter, its base, a full classifier) loads at
    its own default, on transformers and on vLLM's pooling runner."""
    import sys
    import types

    import peft
    import transformers

    from bestofl_models.verifiers import checkpoint
    from bestofl_models.verifiers import classifier as verifier_module

    calls = []

    def spy(owner, name):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            calls.append((f"{owner.__name__}.{name}", kwargs.get("revision")))
            return original(*args, **kwargs)
        monkeypatch.setattr(owner, name, wrapper)

    for owner in (transformers.AutoConfig, transformers.AutoTokenizer,
                  transformers.AutoModelForSequenceClassification, peft.PeftConfig, peft.PeftModel):
        spy(owner, "from_pretrained")
    for verifier in (tiny_verifier_dir, tiny_verifier_adapter_dir):
        settings = verifier_config(tiny_generator_dir, verifier, revision="generator-only-rev")
        checkpoint.check_verifier(settings)
        load_verifier(settings).close()
    llm_kwargs = {}
    fake_vllm = types.SimpleNamespace(LLM=lambda **kwargs: llm_kwargs.update(kwargs))
    monkeypatch.setitem(sys.modules, "vllm", fake_vllm)
    verifier_module.VLLMVerifier(verifier_config(tiny_generator_dir, tiny_verifier_dir, revision="generator-only-rev",
                                        quantization="awq", tensor_parallel_size=2, backend="vllm"))
    assert llm_kwargs["runner"] == "pooling" and "revision" not in llm_kwargs
    assert "quantization" not in llm_kwargs  # a quantized generator says nothing about the verifier checkpoint
    assert llm_kwargs["tensor_parallel_size"] == 2  # engine options still apply to both
    assert calls and [c for c in calls if c[1] is not None] == []


def test_an_adapter_scores_as_peft_loads_it(tiny_generator_dir, tiny_verifier_adapter_dir):
    """load_verifier on a LoRA adapter gives the scores of PeftModel.from_pretrained over the base it names."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from bestofl_tasks.prompts import verifier_text

    items = [("Tom has 3 apples and buys 4 more. How many?", "3 + 4 = 7. The answer is 7.", "en"),
             ("Anna hat 5 Bälle und verliert 2.", "5 - 2 = 3. Die Antwort lautet 3.", "de")]
    loaded = load_verifier(verifier_config(tiny_generator_dir, tiny_verifier_adapter_dir))
    scores = score_responses(loaded, items, progress=False)
    tokenizer = loaded.tokenizer
    loaded.close()
    base = AutoModelForSequenceClassification.from_pretrained(tiny_verifier_adapter_dir / "base", num_labels=1)
    reference = PeftModel.from_pretrained(base, tiny_verifier_adapter_dir).eval()
    with torch.inference_mode():
        expected = [torch.sigmoid(reference(**tokenizer(verifier_text(tokenizer, q, r, lang), return_tensors="pt",
                                                       add_special_tokens=False)).logits[0, 0]).item()
                    for q, r, lang in items]
    assert scores == pytest.approx(expected, abs=1e-6)


def test_stop_criterion_decodes_the_tails_as_batch_decode_does(backend):
    """The criterion decodes with the Rust tokenizer directly; it must read the same text as batch_decode."""
    import torch

    tok = backend.tokenizer
    criterion = StopStringsPerRow(tok, [("Frage:", "<|im_end|>")] * 64, prompt_length=0)
    rows = torch.randint(0, len(tok), (64, criterion.lookback), generator=torch.Generator().manual_seed(0)).tolist()
    assert criterion.decode_batch(rows) == tok.batch_decode(rows)
    ended = tok(["x <|im_end|>"], return_tensors="pt")["input_ids"]
    assert StopStringsPerRow(tok, [("<|im_end|>",)], prompt_length=0)(ended, None).tolist() == [True]


def test_padded_batch_pads_like_the_tokenizer(tiny_tokenizer_dir):
    import torch
    from transformers import AutoTokenizer

    from bestofl_models.generation.backends.hf import padded_batch

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    texts = ["How much is 2+3?", "2+3=5. The answer is 5.", "5"]
    ids = tok(texts)["input_ids"]
    for side in ("right", "left"):
        tok.padding_side = side
        expected = tok(texts, return_tensors="pt", padding=True)
        batch = padded_batch(ids, tok.pad_token_id, right=side == "right")
        assert torch.equal(batch["input_ids"], expected["input_ids"])
        assert torch.equal(batch["attention_mask"], expected["attention_mask"])
    assert set(padded_batch(ids, tok.pad_token_id, mask=False)) == {"input_ids"}


def test_prompt_buckets_and_attention_kernels_change_nothing_on_a_cpu():
    import contextlib

    import torch

    from bestofl_models.generation.backends.hf import PROMPT_BUCKET_TOKENS, attention_kernels, prompt_bucket

    assert prompt_bucket(torch.device("cpu")) is None
    assert prompt_bucket(torch.device("cuda")) == PROMPT_BUCKET_TOKENS
    assert isinstance(attention_kernels(torch.device("cpu")), contextlib.nullcontext)
    assert not isinstance(attention_kernels(torch.device("cuda")), contextlib.nullcontext)  # built, not entered


def test_an_adapter_is_merged_for_inference_and_its_files_are_untouched(tiny_generator_dir,
                                                                        tiny_verifier_adapter_dir):
    from bestofl_models.verifiers.checkpoint import merge_for_inference

    before = {p.name: p.read_bytes() for p in tiny_verifier_adapter_dir.iterdir() if p.is_file()}
    loaded = load_verifier(verifier_config(tiny_generator_dir, tiny_verifier_adapter_dir))
    assert loaded.merged and not hasattr(loaded.model, "peft_config")
    loaded.close()
    assert {p.name: p.read_bytes() for p in tiny_verifier_adapter_dir.iterdir() if p.is_file()} == before

    class Unmergeable:
        peft_config = {}

        def merge_and_unload(self):
            raise ValueError("cannot merge into a quantized layer")

    model = Unmergeable()
    assert merge_for_inference(model) == (model, False)  # scored through peft instead
    full = object()
    assert merge_for_inference(full) == (full, False)


VLLM_VENV = Path(os.environ.get("BESTOFL_VLLM_VENV", REPO / ".venv-vllm"))
VLLM_PYTHON = VLLM_VENV / "bin" / "python"


def test_the_vllm_venv_defaults_to_the_checkout(tmp_path):
    """No machine-specific default: the setup script and this test both use .venv-vllm beside the code."""
    script = REPO / "scripts" / "setup_vllm_venv.sh"
    env = {k: v for k, v in os.environ.items() if k != "BESTOFL_VLLM_VENV"}
    printed = subprocess.run(["bash", str(script), "--print-venv"], capture_output=True, text=True, env=env)
    assert printed.returncode == 0 and printed.stdout.strip() == str(REPO / ".venv-vllm")
    custom = subprocess.run(["bash", str(script), "--print-venv"], capture_output=True, text=True,
                            env={**env, "BESTOFL_VLLM_VENV": str(tmp_path / "v")})
    assert custom.stdout.strip() == str(tmp_path / "v")
    assert "/work/" not in (REPO / "scripts" / "vllm_smoke.py").read_text()


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.skipif(not VLLM_PYTHON.exists(), reason=f"no vLLM venv at {VLLM_PYTHON} (scripts/setup_vllm_venv.sh)")
def test_vllm_backend_smoke(smollm2_dir, tmp_path):
    # The venv has bestofl installed editable from wherever it was set up: test this checkout's code.
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    for attempt in range(2):  # vLLM CPU 0.32 once aborted in CI (SIGABRT, see README "Test"): one retry, then fail
        result = subprocess.run([str(VLLM_PYTHON), str(REPO / "scripts" / "vllm_smoke.py"), "--model",
                                 str(smollm2_dir), "--store", str(tmp_path / f"store{attempt}")],
                                capture_output=True, text=True, env=env, timeout=1500)
        if not (result.returncode == -6 and "terminate called without an active exception" in result.stderr):
            break
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-3000:])
    report = json.loads(next(line for line in result.stdout.splitlines() if line.startswith('{"ok"')))
    assert report["ok"] and report["candidates"] == report["scored"] == report["expected"]
    # The same classifier on vLLM's pooling runner and on transformers (measured <= 8.8e-5 on CPU float32).
    drift = report["max_abs_score_diff_hf_vs_vllm"]
    assert isinstance(drift, float) and drift <= 1e-3, report
