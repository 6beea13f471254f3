"""Test fixtures for translation: a tiny seq2seq "MT model" that copies its input, and lm-eval math tasks on local
data.

``copy_mt_model(dir)`` writes a BART-architecture model (1 encoder and 1 decoder layer, ~2.5M parameters) whose
weights are set by hand so that greedy or beam decoding reproduces the source after the forced target-language
token: token embeddings are one-hot, learned positions are rotations at 16 frequencies (in +/- pairs so that
every LayerNorm is the same affine map), self-attention and feed-forward outputs are zero, and cross-attention at
decoder position p looks at source position p - 1 (a rotation of the query by one step) and copies that token.
Its byte-level tokenizer knows every code of ``NLLB_CODES``. It runs the real transformers path of
``translator=ID`` (tokenizer, ``forced_bos_token_id``, ``generate``, decoding), and as an identity translation it
keeps every number, so a pool fills deterministically.

``local_task_dir(dir, data_dir, tasks)`` writes YAMLs that ``include`` lm-eval's own ``gsm8k`` / ``gsm8k_cot`` /
``asdiv_cot_llama`` under their own names, read from local JSON Lines (``dataset_path: json``); a ``TaskManager``
with ``include_path=dir`` (or ``lm_eval --include_path dir``) then loads them in place of lm-eval's.
"""

from __future__ import annotations

import math
from pathlib import Path

import lm_eval

from bestofl_tasks.languages import NLLB_CODES

LM_EVAL_TASKS = Path(lm_eval.__file__).parent / "tasks"
#: Task name -> (lm-eval YAML it includes, its evaluation split, that split's local file under the data folder).
TASKS = {
    "gsm8k": ("gsm8k/gsm8k.yaml", "test", "gsm8k/test.jsonl"),
    "gsm8k_cot": ("gsm8k/gsm8k-cot.yaml", "test", "gsm8k/test.jsonl"),
    "asdiv_cot_llama": ("asdiv/asdiv-cot-llama.yaml", "validation", "asdiv/validation.jsonl"),
}
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
FREQUENCIES = 16
MAX_POSITIONS = 1024


def local_task_dir(out: Path, data_dir: Path, tasks=("gsm8k", "gsm8k_cot")) -> Path:
    """YAMLs for ``tasks`` (lm-eval's own, under their names) reading ``data_dir``'s local files."""
    out.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        yaml_path, split, data = TASKS[task]
        text = (f"include: {LM_EVAL_TASKS / yaml_path}\ntask: {task}\ndataset_path: json\ndataset_name: null\n"
                f"dataset_kwargs:\n  data_files:\n    {split}: {data_dir / data}\n")
        if task == "gsm8k":  # its few-shot examples come from the train split
            text += f"    train: {data_dir / 'gsm8k' / 'train.jsonl'}\n"
        (out / f"{task}.yaml").write_text(text)
    return out


def _tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    codes = sorted(set(NLLB_CODES.values()))
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate(SPECIALS + codes + alphabet)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", vocab["</s>"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", additional_special_tokens=codes, model_max_length=MAX_POSITIONS)


def _positions(vocab: int, dim: int):
    """Row p + 2 (BART's offset): the position block of position p, four dims per frequency."""
    import torch

    weights = torch.zeros(MAX_POSITIONS + 2, dim)
    p = torch.arange(MAX_POSITIONS, dtype=torch.float64)
    for f in range(FREQUENCIES):
        angle = _frequency(f) * p
        block = torch.stack([angle.cos(), angle.sin(), -angle.cos(), -angle.sin()], dim=1)
        weights[2:, vocab + 4 * f: vocab + 4 * f + 4] = block.float()
    return weights


def _frequency(f: int) -> float:
    return math.pi * 0.6 ** f


def copy_mt_model(out: Path) -> Path:
    """The copying seq2seq model and its tokenizer in ``out`` (see the module docstring)."""
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    tokenizer = _tokenizer()
    vocab = len(tokenizer)
    dim = vocab + 4 * FREQUENCIES
    config = BartConfig(vocab_size=vocab, d_model=dim, encoder_layers=1, decoder_layers=1, encoder_attention_heads=1,
                        decoder_attention_heads=1, encoder_ffn_dim=4, decoder_ffn_dim=4,
                        max_position_embeddings=MAX_POSITIONS, pad_token_id=tokenizer.pad_token_id,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                        decoder_start_token_id=tokenizer.eos_token_id, forced_eos_token_id=None, dropout=0.0,
                        attention_dropout=0.0, activation_dropout=0.0, scale_embedding=False)
    model = BartForConditionalGeneration(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.fill_(1.0)
        model.model.shared.weight[:, :vocab] = torch.eye(vocab)
        for embed in (model.model.encoder.embed_positions, model.model.decoder.embed_positions):
            embed.weight.copy_(_positions(vocab, dim))
        cross = model.model.decoder.layers[0].encoder_attn
        shift = torch.zeros(dim, dim)
        for f in range(FREQUENCIES):
            c, s = math.cos(_frequency(f)), math.sin(_frequency(f))
            rotation = torch.tensor([[c, s], [-s, c]])  # (cos a, sin a) -> (cos(a - w), sin(a - w))
            for start in (vocab + 4 * f, vocab + 4 * f + 2):
                shift[start:start + 2, start:start + 2] = rotation
        cross.q_proj.weight.copy_(shift * 400.0)
        cross.k_proj.weight[vocab:, vocab:] = torch.eye(dim - vocab)
        cross.v_proj.weight[:vocab, :vocab] = 4.0 * torch.eye(vocab)
        cross.out_proj.weight[:vocab, :vocab] = torch.eye(vocab)
    model.generation_config.forced_eos_token_id = None
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
