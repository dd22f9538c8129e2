"""Reasoning and tool-call parsing of generated text, as vLLM's parsers do it.

- With a reasoning parser (qwen3): text before `</think>` is reasoning, after it content.
  Qwen3.6's template opens `<think>` in the prompt, so the output has only the end tag.
  Without a reasoning parser the raw text, `</think>` included, stays in `content`.
- With auto tool choice: `<tool_call>{json}</tool_call>` becomes a `tool_calls` entry.
Streaming and non-streaming share this class so both give the same split.
"""

from __future__ import annotations

import json
import uuid

from vllm_standin.script import THINK_END, TOOL_END, TOOL_START


def tool_call_id() -> str:
    return f"chatcmpl-tool-{uuid.uuid4().hex}"  # vLLM's random_tool_call_id format


class OutputParser:
    def __init__(self, reasoning_parser: bool, thinking: bool, tool_parser: bool):
        self.in_reasoning = reasoning_parser and thinking
        self.tool_parser = tool_parser
        self.reasoning: list[str] = []
        self.content: list[str] = []
        self.tool_calls: list[dict] = []
        self._tool_buffer: list[str] | None = None

    def feed(self, piece: str) -> dict | None:
        """Consume one generated token; return the streaming delta it produces, if any."""
        if piece == "":
            return None  # EOS: no text
        if self.in_reasoning:
            if piece == THINK_END:
                self.in_reasoning = False
                return None
            self.reasoning.append(piece)
            return {"reasoning": piece}
        if self.tool_parser and piece == TOOL_START:
            self._tool_buffer = []
            return None
        if self._tool_buffer is not None:
            if piece != TOOL_END:
                self._tool_buffer.append(piece)
                return None
            call = self._parse_call("".join(self._tool_buffer))
            self._tool_buffer = None
            if call is None:
                return None
            self.tool_calls.append(call)
            return {"tool_calls": [dict(call, index=len(self.tool_calls) - 1)]}
        self.content.append(piece)
        return {"content": piece}

    @staticmethod
    def _parse_call(text: str) -> dict | None:
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return None
        return {"id": tool_call_id(), "type": "function",
                "function": {"name": data.get("name", ""),
                             "arguments": json.dumps(data.get("arguments", {}))}}

    def finish(self) -> tuple[str | None, str | None, list[dict]]:
        """(reasoning, content, tool_calls) of the whole output."""
        content = list(self.content)
        if self._tool_buffer is not None:  # cut off inside a tool call: raw text stays content
            content = content + [TOOL_START] + self._tool_buffer
        text = "".join(content)
        reasoning = "".join(self.reasoning) if self.reasoning else None
        if self.tool_calls and not text.strip():
            text = None  # GUESS: whitespace-only text around a tool call is reported as null
        elif not content:
            text = None if reasoning is not None or self.tool_calls else ""
        return reasoning, text, self.tool_calls
