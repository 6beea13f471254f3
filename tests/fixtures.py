"""Model builders only the tests use, on ``bestofl_models.testing``'s cache and ``build_once``:

    <cache>/tiny-chat-rm/   a "public chat reward model": LlamaForSequenceClassification (num_labels=1, no bestofl
                            model card) + the tiny tokenizer with its chat template
    <cache>/tiny-judge/     tiny LlamaForCausalLM whose tokenizer also has "yes" and "no" as single tokens (the tiny
                            tokenizer splits them), for verifier=self / verifier=judge:ID

    python tests/fixtures.py [--smollm2]    builds every fixture (and SmolLM2) ahead of a test run
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bestofl_models import testing
from bestofl_models.testing import (
    SEED,
    build_once,
    causal_lm,
    fixture_dir,
    load_tiny_tokenizer,
    perturb_,
    save_model,
    seeded_model,
    tiny_config,
)

#: Test data laid out as ``BESTOFL_DATA_DIR`` expects (docs/TASKS.md, "Offline data"): small slices of GSM8K,
#: its train translations and MSVAMP, and ``mgsm``, a link to the MGSM copy the package ships (tests/data/README.md).
DATA_DIR = Path(__file__).resolve().parent / "data"


def _build_chat_rm(path: Path) -> dict:
    from transformers import LlamaForSequenceClassification

    tok = load_tiny_tokenizer()
    model = seeded_model(LlamaForSequenceClassification, tiny_config(tok, num_labels=1), SEED + 30)
    perturb_([model.score.weight], SEED + 31, std=0.5)  # spread the rewards (default init gives logits ~0)
    return save_model(path, model, tok)


def tiny_chat_reward_model(dir: str | os.PathLike | None = None) -> Path:
    """A tiny stand-in for a public chat reward model (Skywork-Reward-V2 style): a one-logit
    LlamaForSequenceClassification and a tokenizer with a chat template, no bestofl model card."""
    testing.tiny_tokenizer()
    return build_once(fixture_dir(dir, "tiny-chat-rm"), _build_chat_rm)


def _build_judge(path: Path) -> dict:
    tok = load_tiny_tokenizer()
    tok.add_tokens(["yes", "no"])
    return save_model(path, causal_lm(tok, SEED + 40), tok)


def two_logit_classifier(source: Path, out: Path) -> Path:
    """``source``'s classifier config with two outputs (random weights) and its tokenizer, saved in ``out``."""
    from transformers import AutoConfig, AutoTokenizer, LlamaForSequenceClassification

    config = AutoConfig.from_pretrained(source)
    config.num_labels = 2
    LlamaForSequenceClassification(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    return out


def tiny_judge(dir: str | os.PathLike | None = None) -> Path:
    """A tiny generator usable as a yes/no judge: random-init LlamaForCausalLM with the tiny tokenizer plus
    ``yes`` and ``no`` as single (added) tokens."""
    testing.tiny_tokenizer()
    return build_once(fixture_dir(dir, "tiny-judge"), _build_judge)


def ensure_all(*, smollm2: bool = False) -> dict[str, Path]:
    """Build (or reuse) every fixture, and SmolLM2 too if ``smollm2``; returns name -> path."""
    out = {
        "tiny_tokenizer": testing.tiny_tokenizer(),
        "tiny_generator": testing.tiny_generator(),
        "tiny_verifier": testing.tiny_verifier(),
        "tiny_verifier_adapter": testing.tiny_verifier_adapter(),
        "tiny_chat_reward_model": tiny_chat_reward_model(),
        "tiny_judge": tiny_judge(),
    }
    if smollm2:
        out["smollm2_hf"] = testing.smollm2_hf()
    return out


if __name__ == "__main__":
    for name, p in ensure_all(smollm2="--smollm2" in sys.argv[1:]).items():
        info = testing.build_info(p)
        print(f"{name}: {p} ({info['size_bytes'] / 1e6:.1f} MB, built in {info['build_seconds']} s)")
