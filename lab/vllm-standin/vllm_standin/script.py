"""The scripted "model": what the stand-in generates, token by token.

It mirrors the tiny scripted Qwen3 model of lab-notes ("Real vLLM on this machine"):
thinking on  -> `The user asks.</think>\n\n4<|im_end|>` (the template already opened <think>),
thinking off -> `4<|im_end|>`.
Tool calls use Qwen3's `<tool_call>{json}</tool_call>` text. Parsing that raw text into
reasoning / content / tool_calls is the job of `parsers.py`, as in vLLM.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

EOS = "<|im_end|>"
THINK_END = "</think>"
TOOL_START, TOOL_END = "<tool_call>", "</tool_call>"
# GUESS/choice: the filler the stand-in emits when asked for more tokens than its script.
FILLER = " lorem"

_TEXT_PIECES = re.compile(r"\s*(?:\w+|[^\w\s])|\s+")


def text_pieces(text: str) -> list[str]:
    """Split text into token-sized pieces whose concatenation is the text itself."""
    return _TEXT_PIECES.findall(text)


REASONING = text_pieces("The user asks.")
ANSWER_AFTER_THINKING = ["\n\n", "4"]
ANSWER_NO_THINKING = ["4"]


@dataclass
class Plan:
    """Tokens to generate (text pieces; EOS is '' text) and the finish reason."""

    pieces: list[str]
    finish_reason: str
    reasoning_tokens: int


def _placeholder(schema: dict) -> object:
    kind = schema.get("type") if isinstance(schema, dict) else None
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    if isinstance(schema, dict) and schema.get("enum"):
        return schema["enum"][0]
    return "stand-in"


def tool_call_for(tool: dict) -> dict:
    """A well-formed call of `tool`: every required parameter gets a placeholder value."""
    function = tool.get("function", {})
    params = function.get("parameters") or {}
    props = params.get("properties") or {}
    args = {name: _placeholder(props.get(name, {})) for name in params.get("required") or []}
    return {"name": function.get("name", ""), "arguments": args}


def chat_plan(thinking: bool, tool_call: dict | None, limit: int, fill: bool) -> Plan:
    """Build the token plan.

    limit: the most tokens this request may generate (max_tokens after clamping).
    fill:  the request set max_tokens (or ignore_eos): keep generating filler until `limit`
           instead of stopping at EOS (the lab's rule, so max_tokens is always exercised).
    """
    script = list(REASONING) + [THINK_END] if thinking else []
    reasoning_tokens = len(REASONING) if thinking else 0
    if tool_call is not None:
        if thinking:
            script.append("\n\n")
        body = json.dumps(tool_call)
        script += [TOOL_START, "\n", *text_pieces(body), "\n", TOOL_END]
        natural = "tool_calls"
        fill = False  # a model that has emitted a tool call stops; no filler after it
    else:
        script += ANSWER_AFTER_THINKING if thinking else ANSWER_NO_THINKING
        natural = "stop"
    if limit < len(script) + 1 and not (fill and limit >= len(script)):
        # Truncated by max_tokens / context: the last generated token is not EOS.
        return Plan(script[:limit], "length", min(reasoning_tokens, limit))
    if fill:
        return Plan(script + [FILLER] * (limit - len(script)), "length", reasoning_tokens)
    # Natural end: EOS is generated (and counted in completion_tokens) but has no text.
    return Plan(script + [""], natural, reasoning_tokens)


def completion_plan(limit: int, fill: bool) -> Plan:
    """Plain /v1/completions: the model answers ' 4' (GUESS: no real observation)."""
    script = [" 4"]
    if limit < len(script) + 1 and not (fill and limit >= len(script)):
        return Plan(script[:limit], "length", 0)
    if fill:
        return Plan(script + [FILLER] * (limit - len(script)), "length", 0)
    return Plan(script + [""], "stop", 0)
