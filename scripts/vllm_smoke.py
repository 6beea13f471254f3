"""Smoke test of ``backend=vllm``: the ``bestofl`` model on a real vLLM engine, checked through its store.

Run it with the vLLM venv's Python (``bash scripts/setup_vllm_venv.sh`` creates it):

    .venv-vllm/bin/python scripts/vllm_smoke.py --model .cache/test-models/smollm2-135m-instruct

Generation runs on vLLM (one request per candidate, prefix caching); a full classifier verifier is scored
on vLLM's pooling runner (``verifier_backend=auto``), an adapter on transformers. Exits non-zero when the
store does not hold exactly ``limit x n`` scored candidates. Prints one JSON line of timings and counts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="generator: HF folder or id")
    parser.add_argument(
        "--verifier",
        help="verifier: full one-logit classifier or LoRA adapter (default: a random tiny classifier whose "
        "head size vLLM's CPU attention supports, built into a temporary directory)",
    )
    parser.add_argument("--task", default="mgsm_xling_de", help="an mgsm_xling_* task")
    parser.add_argument("--limit", type=int, default=2)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--languages", default="en:de")
    parser.add_argument("--max-gen-toks", type=int, default=64)
    parser.add_argument("--verifier-backend", default="auto", choices=("auto", "hf", "vllm"))
    parser.add_argument(
        "--gpu-memory-utilization", type=float, default=0.15,
        help="on vLLM's CPU backend: the fraction of CPU memory reserved (weights + KV cache)",
    )
    parser.add_argument("--store", default=None, help="store directory (default: a fresh temporary one)")
    return parser.parse_args(argv)


def tiny_vllm_classifier(directory: str) -> str:
    """A random one-logit Llama classifier with head_dim 64 (vLLM's CPU attention rejects the fixtures' 16)."""
    import torch
    from transformers import AutoTokenizer, LlamaForSequenceClassification

    from bestofl_models.testing import tiny_config, tiny_tokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer())
    config = tiny_config(tokenizer, hidden_size=128, intermediate_size=256, num_attention_heads=2,
                         num_key_value_heads=2, num_labels=1, problem_type="multi_label_classification")
    torch.manual_seed(0)
    LlamaForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def hf_vs_vllm_scores(model_args: dict, verifier: str, store, candidates) -> float:
    """Largest |transformers score - stored score| over the candidates: how far vLLM's pooling is from HF's."""
    from bestofl_models.harness.model_arg_keys import PASS_THROUGH_KEYS
    from bestofl_models.harness.model_args import parse_model_args
    from bestofl_models.verifiers.classifier import HFVerifier, score_responses
    from bestofl_tasks.data import load_docs

    hf_args = {key: value for key, value in model_args.items() if key not in PASS_THROUGH_KEYS}
    hf = HFVerifier(parse_model_args({**hf_args, "backend": "hf", "verifier_backend": "hf", "store": None}).verifier_config())
    docs = {(d["problem_id"], lang): d["question"] for lang in {c.lang for c in candidates}
            for d in load_docs("mgsm", lang)}
    items = [(docs[c.problem_id, c.lang], c.text, c.lang) for c in candidates]
    hf_scores = score_responses(hf, items, progress=False)
    return max(abs(h - store.score(c.key, verifier)) for h, c in zip(hf_scores, candidates))


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    store = args.store or tempfile.mkdtemp(prefix="bestofl-vllm-smoke-")
    verifier = args.verifier or tiny_vllm_classifier(tempfile.mkdtemp(prefix="bestofl-vllm-verifier-"))

    import lm_eval

    from bestofl_models.store import CandidateStore

    model_args = {
        "pretrained": args.model,
        "verifier": verifier,
        "verifier_backend": args.verifier_backend,
        "backend": "vllm",
        "languages": args.languages,
        "n": args.n,
        "max_gen_toks": args.max_gen_toks,
        "store": store,
        "enforce_eager": True,
        "max_model_len": 2048,
        "gpu_memory_utilization": args.gpu_memory_utilization,
    }
    started = time.perf_counter()
    results = lm_eval.simple_evaluate(model="bestofl", model_args=model_args, tasks=[args.task], limit=args.limit)
    seconds = time.perf_counter() - started

    opened = CandidateStore(store, read_only=True)
    candidates = opened.candidates()
    verifier_ids = opened.verifiers()  # scores are keyed by the verifier's identity, not its path
    verifier_id = verifier_ids[0] if len(verifier_ids) == 1 else None
    scored = [c for c in candidates if verifier_id and isinstance(opened.score(c.key, verifier_id), float)]
    expected = args.limit * args.n
    drift = hf_vs_vllm_scores(model_args, verifier_id, opened, candidates) if len(scored) == len(candidates) else None
    report = {
        "ok": len(candidates) == expected == len(scored),
        "seconds": round(seconds, 1),
        "candidates": len(candidates),
        "scored": len(scored),
        "expected": expected,
        "max_abs_score_diff_hf_vs_vllm": drift,
        "exact_match": results["results"][args.task].get("exact_match,numeric"),
        "store": store,
        "example": candidates[0].text[:200] if candidates else None,
    }
    print(json.dumps(report, ensure_ascii=False))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
