"""A generative judge as the verifier: ``verifier=self`` (the generator) or ``verifier=judge:ID``.

The judge reads a fixed prompt (:data:`JUDGE_PROMPT`, version :data:`JUDGE_PROMPT_VERSION`, part of the
verifier identity) through its own chat template (a plain ``...\\nAnswer:`` without one) and its next token is
read: the score is P(yes) / (P(yes) + P(no)), each side summed over the judge tokenizer's single-token spellings
(``yes``, ``Yes``, `` yes``, `` Yes``; likewise no). A tokenizer with no single-token spelling of either word is
refused before anything is sampled.

Backends: transformers (length-sorted batches, one forward pass each, only the last position's logits), or vLLM
(one generated token with the top :data:`VLLM_TOP_LOGPROBS` log-probabilities; a spelling outside them counts 0,
both outside: no usable score).
"""

from __future__ import annotations

import inspect
import math
from typing import Sequence

from tqdm.auto import tqdm

from bestofl_tasks.prompts import has_chat_template

#: Version of the judge's prompt and read-out: part of the verifier identity, so a change never reuses scores.
JUDGE_PROMPT_VERSION = "bestofl-judge-1"
JUDGE_PROMPT = (
    "Below is a math problem and a proposed solution.\n\n"
    "Problem:\n{question}\n\n"
    "Proposed solution:\n{response}\n\n"
    "Is the final answer of the proposed solution correct? Answer with one word: yes or no."
)
#: Log-probabilities vLLM returns per judged text (its default ``max_logprobs`` is 20).
VLLM_TOP_LOGPROBS = 20


def answer_token_ids(tokenizer, name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The single-token spellings of "yes" and of "no" in ``tokenizer``; a ValueError when either has none."""
    found = []
    for word in ("yes", "no"):
        spellings = (word, word.capitalize(), " " + word, " " + word.capitalize())
        ids = {tuple(tokenizer.encode(s, add_special_tokens=False)) for s in spellings}
        found.append(tuple(sorted(ids[0] for ids in ids if len(ids) == 1)))
    yes, no = found
    if not yes or not no:
        missing = " and ".join(w for w, ids in zip(("yes", "no"), found) if not ids)
        raise ValueError(
            f"judge {name}: its tokenizer has no single token for {missing} (tried yes/Yes/' yes'/' Yes' and the "
            "same for no), so P(yes) vs P(no) cannot be read from one next token. Use another judge "
            "(verifier=judge:ID) or a reward model / trained verifier (verifier=PATH)."
        )
    if set(yes) & set(no):
        raise ValueError(f"judge {name}: its tokenizer maps yes and no to a shared token.")
    return yes, no


def judge_text(tokenizer, question: str, response: str) -> str:
    """The text the judge continues: the fixed prompt through its chat template, generation prompt added."""
    prompt = JUDGE_PROMPT.format(question=question.strip(), response=response.strip())
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
    return prompt + "\nAnswer:"


def yes_probability(logprobs: dict[int, float], yes: Sequence[int], no: Sequence[int]) -> float:
    """P(yes) / (P(yes) + P(no)) from next-token log-probabilities (token id -> log p; absent ids count 0);
    NaN when neither side is present."""
    def total(ids):
        values = [logprobs[i] for i in ids if i in logprobs and math.isfinite(logprobs[i])]
        if not values:
            return -math.inf
        top = max(values)
        return top + math.log(sum(math.exp(v - top) for v in values))

    log_yes, log_no = total(yes), total(no)
    if log_yes == log_no == -math.inf:
        return math.nan
    if log_no == -math.inf or log_yes == -math.inf:
        return 1.0 if log_no == -math.inf else 0.0
    return 1.0 / (1.0 + math.exp(log_no - log_yes))


def judge_tokenizer(config, model: str):
    """The judge's tokenizer (``config``: a ``VerifierConfig``): the generator's own, at its revision, for
    ``verifier=self``."""
    from ..generation.backends import tokenizer_for

    revision = config.generator_revision if model == config.generator else None
    return tokenizer_for(model, config.trust_remote_code, revision)


class HFJudge:
    """The judge on transformers: right-padded length-sorted batches, the logits of each row's last token."""

    def __init__(self, config, model: str):
        import torch
        import transformers
        from lm_eval.models.utils_hf import get_dtype

        from ..generation.backends.hf import pick_device

        self.name = model
        self.batch_size = config.batch_size
        self.device = pick_device(config.device)
        self.tokenizer = judge_tokenizer(config, model)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"
        self.yes, self.no = answer_token_ids(self.tokenizer, model)
        kwargs = {"dtype": get_dtype(config.dtype), "trust_remote_code": config.trust_remote_code}
        if model == config.generator and config.generator_revision:
            kwargs["revision"] = config.generator_revision
        self.model = transformers.AutoModelForCausalLM.from_pretrained(model, **kwargs).to(self.device).eval()
        self._keeps_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        self._torch = torch

    def score_items(self, items: Sequence[tuple[str, str, str]], progress: bool = True) -> list[float]:
        """P(yes) per ``(question, response, lang)``."""
        from ..generation.backends import add_special_tokens
        from .classifier import length_sorted_batches

        torch = self._torch
        texts = [judge_text(self.tokenizer, question, response) for question, response, _ in items]
        special = add_special_tokens(self.tokenizer)
        lengths = [len(self.tokenizer.encode(t, add_special_tokens=special)) for t in texts]
        self.last_input_tokens = lengths
        scores = [math.nan] * len(texts)
        ids = list(self.yes + self.no)
        with tqdm(total=len(texts), desc="bestofl: judging", unit="cand", disable=not progress) as bar:
            for rows in length_sorted_batches(lengths, self.batch_size):
                batch = self.tokenizer([texts[i] for i in rows], return_tensors="pt", padding=True,
                                       add_special_tokens=special).to(self.device)
                last = batch["attention_mask"].sum(dim=1) - 1  # right padding: a row's last token sees no pad
                with torch.inference_mode():
                    if self._keeps_logits:  # the batch's distinct last positions only, not [rows, length, vocab]
                        keep = torch.unique(last)
                        logits = self.model(**batch, logits_to_keep=keep).logits
                        position = torch.searchsorted(keep, last)
                    else:
                        logits, position = self.model(**batch).logits, last
                picked = logits[torch.arange(len(rows), device=logits.device), position].double()
                logprobs = torch.log_softmax(picked, dim=-1)[:, ids].tolist()
                for i, row in zip(rows, logprobs):
                    scores[i] = yes_probability(dict(zip(ids, row)), self.yes, self.no)
                bar.update(len(rows))
        return scores

    def close(self) -> None:
        from ..generation.backends.hf import free_memory

        del self.model
        free_memory()


class VLLMJudge:
    """The judge on vLLM: one greedy token per text with its top log-probabilities."""

    def __init__(self, config, model: str, llm=None):
        from ..generation.backends.vllm import build_llm

        self.name = model
        self.tokenizer = judge_tokenizer(config, model)
        self.yes, self.no = answer_token_ids(self.tokenizer, model)
        self.llm = llm if llm is not None else build_llm(model, config, generator=model == config.generator)

    def score_items(self, items: Sequence[tuple[str, str, str]], progress: bool = True) -> list[float]:
        from vllm import SamplingParams

        from ..generation.backends.vllm import token_prompts

        texts = [judge_text(self.tokenizer, question, response) for question, response, _ in items]
        params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=VLLM_TOP_LOGPROBS)
        prompts = token_prompts(self.tokenizer, texts)
        self.last_input_tokens = [len(prompt["prompt_token_ids"]) for prompt in prompts]
        outputs = self.llm.generate(prompts, params, use_tqdm=progress)
        scores = []
        for output in outputs:
            top = output.outputs[0].logprobs[0]  # token id -> Logprob of the one generated position
            scores.append(yes_probability({i: lp.logprob for i, lp in top.items()}, self.yes, self.no))
        return scores

    def close(self) -> None:
        from ..generation.backends.vllm import shutdown

        shutdown(self.llm)
        del self.llm


def load_judge(config, model: str):
    """The judge ``model`` on vLLM or transformers, as ``config.uses_vllm()`` says."""
    return VLLMJudge(config, model) if config.uses_vllm() else HFJudge(config, model)
