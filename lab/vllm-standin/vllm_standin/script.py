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
# The token the tiny model of lab-notes (lab/tiny-qwen3/build_model.py) emits for anything
# its script does not cover, and after EOS with ignore_eos.
FILLER = " filler"

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


def _finish(script: list[str], natural: str, limit: int, ignore_eos: bool,
            reasoning_tokens: int) -> Plan:
    """Generate `script`, then EOS (a token with no text), within `limit` tokens.

    Without ignore_eos the model stops at EOS (finish `natural`), as real vLLM does whatever
    max_tokens allows; a limit below script + EOS truncates ("length"). With ignore_eos (a
    vLLM sampling parameter) EOS is generated but does not stop generation: the tiny model
    of lab-notes then loops on a filler token up to the limit, and finishes "length".
    """
    tokens = script + [""]
    if ignore_eos:
        tokens += [FILLER] * max(0, limit - len(tokens))
        return Plan(tokens[:limit], "length", min(reasoning_tokens, limit))
    if limit < len(tokens):
        # Truncated by max_tokens / context: the last generated token is not EOS.
        return Plan(script[:limit], "length", min(reasoning_tokens, limit))
    return Plan(tokens, natural, reasoning_tokens)


def chat_plan(thinking: bool, tool_call: dict | None, limit: int, ignore_eos: bool) -> Plan:
    """Build the token plan of a chat request.

    limit:      the most tokens this request may generate (max_tokens after clamping).
    ignore_eos: the request's `ignore_eos`: go on past EOS with filler until `limit`.
    """
    script = list(REASONING) + [THINK_END] if thinking else []
    reasoning_tokens = len(REASONING) if thinking else 0
    if tool_call is not None:
        if thinking:
            script.append("\n\n")
        body = json.dumps(tool_call)
        script += [TOOL_START, "\n", *text_pieces(body), "\n", TOOL_END]
        natural = "tool_calls"
        # GUESS/choice: a model that has emitted a tool call stops; no filler after it,
        # even with ignore_eos (real vLLM would go on; what its tool parser makes of the
        # trailing text was never observed).
        ignore_eos = False
    else:
        script += ANSWER_AFTER_THINKING if thinking else ANSWER_NO_THINKING
        natural = "stop"
    return _finish(script, natural, limit, ignore_eos, reasoning_tokens)


# Raw /v1/completions prompts that end like a chat generation prompt continue the chat
# script (the tiny model's chain is keyed on the last token, and these end in its keys).
_PROMPT_ENDINGS = (
    ("<think>\n\n</think>\n\n", ANSWER_NO_THINKING),
    ("<think>\n", [*REASONING, THINK_END, *ANSWER_AFTER_THINKING]),
)


def completion_plan(prompt: str, limit: int, ignore_eos: bool) -> Plan:
    """Plain /v1/completions.

    The script covers only chat generation prompts. Any other prompt is text the script does
    not cover; the real tiny model (lab/tiny-qwen3) maps every unscripted token to a filler
    token, so it fills until max_tokens (16 by default) and finishes "length" (observed with
    real vLLM 0.32.0: `hello world`, max_tokens 5 -> " filler" x 5, "length").
    """
    for ending, script in _PROMPT_ENDINGS:
        if prompt.endswith(ending):
            return _finish(list(script), "stop", limit, ignore_eos, 0)
    return Plan([FILLER] * limit, "length", 0)
