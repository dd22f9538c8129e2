"""A deterministic toy tokenizer plus a Qwen3-style chat template.

One token = one special token, one run of word characters, or one punctuation character;
whitespace is free. The same function counts tokens for /tokenize, usage.prompt_tokens and
the context-length checks, so those three always agree with each other (as they do in vLLM).
Counts are NOT the real Qwen tokenizer's counts.
"""

from __future__ import annotations

import json
import re
import zlib

# Qwen3 special / added tokens, with Qwen3's ids (so token ids look plausible in logs).
SPECIAL_TOKENS = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    "<tool_call>": 151657,
    "</tool_call>": 151658,
    "<think>": 151667,
    "</think>": 151668,
}
_PIECES = re.compile(
    "|".join(re.escape(t) for t in SPECIAL_TOKENS) + r"|\w+|[^\w\s]")


def pieces(text: str) -> list[str]:
    return _PIECES.findall(text)


def token_id(piece: str) -> int:
    if piece in SPECIAL_TOKENS:
        return SPECIAL_TOKENS[piece]
    # Stable across runs and processes (unlike hash()); stays below the special-token range.
    return 1000 + zlib.crc32(piece.encode("utf-8")) % 150000


def encode(text: str) -> list[int]:
    return [token_id(p) for p in pieces(text)]


def count(text: str) -> int:
    return len(pieces(text))


def _content_text(content) -> str:
    """OpenAI content: a string, null, or a list of parts ({"type": "text", "text": ...})."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content
                       if isinstance(part, dict) and part.get("type") == "text")
    return str(content)


def render_chat(messages: list[dict], tools: list[dict] | None = None,
                add_generation_prompt: bool = True, enable_thinking: bool = True) -> str:
    """Render messages the way Qwen3's template does (simplified).

    With thinking on, the generation prompt ends with an open `<think>` (Qwen3.6's template
    opens it in the prompt, so the model's output starts inside the reasoning); with thinking
    off it ends with an empty, closed think block.
    """
    out = []
    rest = list(messages)
    if tools:
        system = ""
        if rest and rest[0].get("role") == "system":
            system = _content_text(rest.pop(0).get("content")) + "\n\n"
        listing = "\n".join(json.dumps(t, sort_keys=True) for t in tools)
        out.append(f"<|im_start|>system\n{system}# Tools\n\nYou may call one or more functions."
                   f"\n<tools>\n{listing}\n</tools><|im_end|>\n")
    for message in rest:
        role = message.get("role", "user")
        text = _content_text(message.get("content"))
        if role == "tool":
            out.append(f"<|im_start|>user\n<tool_response>\n{text}\n</tool_response><|im_end|>\n")
            continue
        for call in message.get("tool_calls") or []:
            function = call.get("function", {})
            text += ("\n<tool_call>\n" + json.dumps(
                {"name": function.get("name"), "arguments": function.get("arguments")})
                + "\n</tool_call>")
        out.append(f"<|im_start|>{role}\n{text}<|im_end|>\n")
    if add_generation_prompt:
        out.append("<|im_start|>assistant\n")
        out.append("<think>\n" if enable_thinking else "<think>\n\n</think>\n\n")
    return "".join(out)
