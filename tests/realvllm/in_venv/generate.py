"""Runs INSIDE the real-vLLM venv (transformers + torch): greedy generation and tokenizer
round trips on the tiny scripted models. argv: MODEL_DIR...; prints one JSON document."""

from __future__ import annotations

import json
import random
import sys

from transformers import AutoModelForCausalLM, AutoTokenizer

USER = [{"role": "user", "content": "What is 2+2?"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "hello"},
    {"role": "assistant", "content": "4"},
    {"role": "user", "content": [{"type": "text", "text": "again?"}]},
]


def texts() -> list[str]:
    fixed = ["", "hello world", "héllo wörld ñ", "世界 こんにちは 안녕", "emoji 🎉👩‍👩‍👧 ok",
             "tabs\tand\r\nCRLF\n\n\nruns", "  leading and trailing  ", "<think>x</think>",
             "<|im_start|>user\nhi<|im_end|>", "\x00\x01\x7f bytes", "Ω≈ç√∫˜µ≤≥÷", "a" * 300]
    rng = random.Random(7)  # deterministic "arbitrary" text over several Unicode planes
    pools = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x4E00, 0x4FFF), (0x1F300, 0x1F64F),
             (0, 0x1F)]
    rand = []
    for _ in range(40):
        lo, hi = rng.choice(pools)
        chars = (chr(rng.randint(lo, hi)) if rng.random() < 0.8 else " " for _ in range(rng.randint(1, 40)))
        rand.append("".join(chars))
    return fixed + rand


def generate(model, tok, prompt: str, n: int) -> str:
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    out = model.generate(ids, max_new_tokens=n, do_sample=False)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=False)


def check(model_dir: str) -> dict:
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    chat = lambda msgs, **kw: tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, **kw)  # noqa: E731
    prompts = {
        "thinking_on": chat(USER),
        "thinking_on_explicit": chat(USER, enable_thinking=True),
        "thinking_off": chat(USER, enable_thinking=False),
        "tools_thinking_on": chat(USER, tools=TOOLS),
        "conversation_thinking_off": chat(CONVERSATION, enable_thinking=False),
    }
    result = {"prompts": prompts, "outputs": {k: generate(model, tok, p, 20) for k, p in prompts.items()}}
    result["outputs"]["unscripted"] = generate(model, tok, "hello world", 12)
    encode = lambda text: tok(text, add_special_tokens=False).input_ids  # noqa: E731
    result["roundtrip_failures"] = [t for t in texts() if tok.decode(encode(t)) != t]
    result["roundtrip_count"] = len(texts())
    singles = ["<think>", "</think>", "<tool_call>", "</tool_call>", "<|im_end|>", "\n", "\n\n"]
    result["single_tokens"] = {t: encode(t) for t in singles}
    result["special"] = sorted(tok.all_special_tokens)
    result["architectures"] = model.config.architectures
    return result


if __name__ == "__main__":
    print(json.dumps({d: check(d) for d in sys.argv[1:]}))
