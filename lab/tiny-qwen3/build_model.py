#!/usr/bin/env python3
"""Build a tiny Qwen3 checkpoint whose greedy output is scripted by its weights.

    build_model.py OUT_DIR [--arch dense|moe]

Real vLLM (CPU build) serves it, so the lab can compare the vLLM stand-in with the real
server on real code paths (tokenizer, chat template, reasoning parser, length checks).
No download: the tokenizer is trained here, the weights are written here.

How the script works: every `o_proj` and `down_proj` (MoE experts too) is zero, so each
decoder layer adds nothing to the residual stream and the final hidden state is the
embedding of the LAST token. The logits are then `lm_head @ rmsnorm(embedding)`, so
choosing `lm_head` rows picks the next token as a function of the current one:
a lookup table, i.e. a token chain. See `SCRIPT` below.

Needs torch, transformers, tokenizers (the real-vLLM venv has them; see
lab/real-vllm/install.sh). Deterministic: same inputs, same bytes (modulo the
safetensors metadata, which holds no timestamps).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

if TYPE_CHECKING:
    from transformers import PretrainedConfig

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from chat_template import CHAT_TEMPLATE  # noqa: E402

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Non-special added tokens, as in real Qwen3: they survive skip_special_tokens, so the
# reasoning parser sees `</think>` in the decoded text.
ADDED = ["<think>", "</think>", "<tool_call>", "</tool_call>"]
EOS = "<|im_end|>"
PAD = "<|endoftext|>"
FILLER = " filler"  # what every unscripted token leads to (length / max_tokens tests)

# Token chain, keyed on the last token. Both generation prompts end in a distinct token:
#   thinking on : "...<|im_start|>assistant\n<think>\n"    -> last token "\n"
#   thinking off: "...<think>\n\n</think>\n\n"           -> last token "\n\n"
# The pre-tokenizer keeps a run of newlines in one chunk, so "\n\n" is one token.
#   on : The user asks.</think>\n\n4<|im_end|>
#   off: 4<|im_end|>
SCRIPT: list[tuple[str, str]] = [
    ("\n", "The"),
    ("The", " user"),
    (" user", " asks"),
    (" asks", "."),
    (".", "</think>"),
    ("</think>", "\n\n"),
    ("\n\n", "4"),
    ("4", EOS),
]
REASONING = "The user asks."
ANSWER_THINKING = "\n\n4"
ANSWER_PLAIN = "4"

# Qwen2/Qwen3's pre-tokenizer regex: a run of newlines is its own chunk ("\n\n" one token).
QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Training text: covers the scripted tokens and enough English for readable prompts.
WORDS = (
    "The user asks . what is two plus two ? answer briefly hello world please say "
    "the a an of to in is it you that he was for on are with as I his they be at one have "
    "this from or had by hot word but some what there we can out other were all your when "
    "up use how said each she which do their time if will way about many then them would "
    "write like so these her long make thing see him two has look more day could go come "
    "did my sound no most number who over know water than call first people may down side "
    "been now find any new work part take get place made live where after back little only "
    "round man year came show every good me give our under name very through just form much "
    "great think say help low line before turn cause same mean differ move right boy old "
    "too does tell sentence set three want air well also play small end put home read hand "
    "port large spell add even land here must big high such follow act why ask men change "
    "went light kind off need house picture try us again animal point mother world near "
    "build self earth father head stand own page should country found filler model token "
    "weather tool call function json name arguments city Paris Berlin today tomorrow"
).split()
HIDDEN = 64
HEAD_DIM = 64  # vLLM's CPU attention supports head_dim in {32, 64, 80, ...}; not 16.
LOGIT = 30.0  # margin of the scripted token; exp(-LOGIT*8) makes sampling deterministic too


def build_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    # Every word with and without a leading space, newline runs, digits: enough merges
    # that the scripted strings are single tokens. The byte alphabet makes any text encodable.
    corpus = [w for word in WORDS for w in (word, " " + word)]
    corpus += ["\n", "\n\n", "\n\n\n", REASONING, " filler filler"] + [str(d) for d in range(10)]
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[AddedToken(t, special=True, normalized=False) for t in SPECIAL],
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED])
    return tok


def single_id(tok: Tokenizer, text: str) -> int:
    ids = tok.encode(text, add_special_tokens=False).ids
    if len(ids) != 1:
        raise SystemExit(f"scripted string {text!r} is not one token: {ids}")
    return ids[0]


def model_config(arch: str, vocab: int, ids: dict[str, int]) -> PretrainedConfig:
    from transformers import Qwen3Config, Qwen3MoeConfig

    common = dict(
        vocab_size=vocab,
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=HEAD_DIM,
        max_position_embeddings=40960,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        bos_token_id=ids[PAD],
        eos_token_id=ids[EOS],
        pad_token_id=ids[PAD],
        dtype="float32",
    )
    if arch == "dense":
        return Qwen3Config(intermediate_size=128, **common)
    return Qwen3MoeConfig(
        intermediate_size=128,
        moe_intermediate_size=32,
        num_experts=4,
        num_experts_per_tok=2,
        decoder_sparse_step=1,
        mlp_only_layers=[],
        norm_topk_prob=True,
        **common,
    )


def script_weights(model: torch.nn.Module, script: list[tuple[int, int]], filler: int) -> None:
    """Zero the residual writers, set embeddings and lm_head so `script` is the greedy path."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            # o_proj: attention output; down_proj: MLP / every MoE expert's output.
            if "o_proj" in name or "down_proj" in name:
                param.zero_()
        # Orthonormal directions: one per scripted key token, one shared "default" direction
        # for every other token (vocab > hidden, so not every token can have its own).
        q, _ = torch.linalg.qr(torch.randn(HIDDEN, HIDDEN, generator=torch.Generator().manual_seed(1)))
        dirs = q.T  # rows orthonormal
        default = dirs[0]
        emb = model.get_input_embeddings().weight
        emb.copy_(default.expand(emb.shape[0], HIDDEN))
        head = model.get_output_embeddings().weight
        head.zero_()
        head[filler] = LOGIT * default
        for i, (key, nxt) in enumerate(script, start=1):
            emb[key] = dirs[i]
            head[nxt] += LOGIT * dirs[i]


def build(out_dir: Path, arch: str) -> dict[str, object]:
    from transformers import AutoModelForCausalLM, GenerationConfig, PreTrainedTokenizerFast

    torch.manual_seed(0)
    tok = build_tokenizer()
    scripted = {*SPECIAL, *ADDED, FILLER, *(k for k, _ in SCRIPT), *(n for _, n in SCRIPT)}
    ids = {t: single_id(tok, t) for t in scripted}
    if tok.encode(REASONING).ids != [ids["The"], ids[" user"], ids[" asks"], ids["."]]:
        raise SystemExit(f"{REASONING!r} does not tokenize as the script expects")
    vocab = -(-tok.get_vocab_size() // 64) * 64  # padded like real checkpoints; spare rows unused

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=None,
        bos_token=None,
        # Listed like Qwen3's additional_special_tokens (transformers 5 name).
        extra_special_tokens=[t for t in SPECIAL if t not in (EOS, PAD)],
        clean_up_tokenization_spaces=False,
        model_max_length=40960,
    )
    fast.chat_template = CHAT_TEMPLATE

    config = model_config(arch, vocab, ids)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    script = [(ids[k], ids[n]) for k, n in SCRIPT]
    script_weights(model, script, ids[FILLER])
    model.generation_config = GenerationConfig(
        # Greedy by default: vLLM takes sampling defaults from generation_config.json.
        do_sample=False,
        bos_token_id=ids[PAD],
        eos_token_id=[ids[EOS], ids[PAD]],
        pad_token_id=ids[PAD],
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    fast.save_pretrained(out_dir)
    # Older transformers keep the template only in tokenizer_config.json, newer ones in a
    # separate file; write the .jinja file too so every reader finds it.
    (out_dir / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    info = {
        "arch": arch,
        "vocab_size": vocab,
        "filler": FILLER,
        "filler_id": ids[FILLER],
        "reasoning": REASONING,
        "answer_thinking": ANSWER_THINKING,
        "answer_plain": ANSWER_PLAIN,
        "script": SCRIPT,
    }
    (out_dir / "script.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--arch", choices=["dense", "moe"], default="dense")
    args = parser.parse_args(argv)
    start = time.monotonic()
    build(args.out_dir, args.arch)
    print(f"tiny-qwen3: built {args.arch} model in {args.out_dir} in {time.monotonic() - start:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
