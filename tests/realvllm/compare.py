"""Response comparison for the differential tests: what must agree between real vLLM and the
stand-in, and a precise description of where it does not.

Compared: status codes, JSON field sets (recursively, keys only, list lengths ignored), error
`type`/`param`/`code`, error messages after masking numbers, and the scripted values that do
not depend on the tokenizer (reasoning/content text, finish_reason). Token counts, ids,
timestamps and request ids are never compared: the stand-in's tokenizer is a toy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

NUMBER = re.compile(r"\d+")


@dataclass
class Reply:
    status: int
    content_type: str
    body: Any = None  # parsed JSON, or the text when not JSON
    events: list[Any] = field(default_factory=list)  # SSE data payloads (JSON or "[DONE]")


def shape(value: Any) -> Any:
    """Keys only: dicts keep their keys, lists become the set of their element shapes."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        distinct = {json.dumps(shape(v), sort_keys=True) for v in value}
        return ["list", *sorted(distinct)]
    return None


def key_diff(real: Any, standin: Any, path: str = "$") -> list[str]:
    """Where the stand-in's field set differs from real vLLM's."""
    if isinstance(real, dict) and isinstance(standin, dict):
        out = [f"{path}.{k}: missing in stand-in" for k in real if k not in standin]
        out += [f"{path}.{k}: only in stand-in" for k in standin if k not in real]
        for k in real:
            if k in standin:
                out += key_diff(real[k], standin[k], f"{path}.{k}")
        return out
    if isinstance(real, list) and isinstance(standin, list):
        if real and standin and all(isinstance(x, dict) for x in real + standin):
            merged_real = {k: v for x in real for k, v in x.items()}
            merged_standin = {k: v for x in standin for k, v in x.items()}
            return key_diff(merged_real, merged_standin, f"{path}[]")
        return []
    if _kind(real) != _kind(standin):
        return [f"{path}: real is {_kind(real)} ({_short(real)}), "
                f"stand-in is {_kind(standin)} ({_short(standin)})"]
    return []


def _kind(value: Any) -> str:
    return "object" if isinstance(value, dict) else "array" if isinstance(value, list) else "scalar"


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def mask(text: Any) -> Any:
    return NUMBER.sub("N", text) if isinstance(text, str) else text


def error_fields(body: Any) -> dict[str, Any]:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return {"error.type": err.get("type"), "error.message(masked)": mask(err.get("message")),
                "error.param": err.get("param"), "error.code": err.get("code")}
    if isinstance(body, dict) and "error" in body:
        return {"error": body["error"]}
    return {}


def chat_values(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not body.get("choices"):
        return {}
    choice = body["choices"][0]
    message = choice.get("message") or {}
    return {"finish_reason": choice.get("finish_reason"), "message.content": message.get("content"),
            "message.reasoning": message.get("reasoning"), "object": body.get("object")}


def completion_values(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not body.get("choices"):
        return {}
    return {"finish_reason": body["choices"][0].get("finish_reason"), "object": body.get("object")}


def event_kind(event: Any) -> str:
    """Compact signature of one SSE event, for the event-sequence shape."""
    if not isinstance(event, dict):
        return str(event)
    choices = event.get("choices") or []
    parts = [",".join(sorted(event))]
    if choices:
        choice = choices[0]
        parts.append("delta{" + ",".join(sorted(choice.get("delta") or {})) + "}")
        if choice.get("finish_reason") is not None:
            parts.append(f"finish={choice['finish_reason']}")
    else:
        parts.append("choices=[]")
    return " | ".join(parts)


def collapse(kinds: list[str]) -> list[str]:
    """Runs of the same kind become one entry: the number of deltas depends on the tokenizer."""
    out: list[str] = []
    for kind in kinds:
        if not out or out[-1] != kind:
            out.append(kind)
    return out


def stream_text(events: list[Any], key: str) -> str | None:
    pieces = [c.get("delta", {}).get(key) for e in events if isinstance(e, dict)
              for c in e.get("choices") or []]
    pieces = [p for p in pieces if p is not None]
    return "".join(pieces) if pieces else None


def differences(real: Reply, standin: Reply, values: str = "") -> list[str]:
    """Every disagreement, one line each; empty when the stand-in matches real vLLM."""
    out = []
    if real.status != standin.status:
        out.append(f"status: real {real.status}, stand-in {standin.status}")
    if real.content_type.split(";")[0] != standin.content_type.split(";")[0]:
        out.append(f"content-type: real {real.content_type!r}, stand-in {standin.content_type!r}")
    if real.events or standin.events:
        out += _stream_differences(real, standin)
    else:
        out += key_diff(shape(real.body), shape(standin.body))
        if isinstance(real.body, str) or isinstance(standin.body, str):
            if real.body != standin.body:
                out.append(f"body: real {_short(real.body)}, stand-in {_short(standin.body)}")
    extract = {"chat": chat_values, "completion": completion_values}.get(values)
    pairs = [error_fields(real.body), error_fields(standin.body)]
    if extract:
        pairs = [{**pairs[0], **extract(real.body)}, {**pairs[1], **extract(standin.body)}]
    for key in sorted(set(pairs[0]) | set(pairs[1])):
        a, b = pairs[0].get(key), pairs[1].get(key)
        if a != b:
            out.append(f"{key}: real {a!r}, stand-in {b!r}")
    return out


def _stream_differences(real: Reply, standin: Reply) -> list[str]:
    out = []
    seq_real = collapse([event_kind(e) for e in real.events])
    seq_standin = collapse([event_kind(e) for e in standin.events])
    if seq_real != seq_standin:
        out.append("event sequence differs:\n    real:     " + "\n              ".join(seq_real)
                   + "\n    stand-in: " + "\n              ".join(seq_standin))
    # Field sets per event kind (first event of each kind), where both have that kind.
    first_real = {event_kind(e): e for e in reversed(real.events)}
    first_standin = {event_kind(e): e for e in reversed(standin.events)}
    for kind in first_real:
        if kind in first_standin:
            out += [f"[{kind}] {d}" for d in key_diff(shape(first_real[kind]), shape(first_standin[kind]))]
    for key in ("reasoning", "content"):
        a, b = stream_text(real.events, key), stream_text(standin.events, key)
        if a != b:
            out.append(f"streamed {key}: real {a!r}, stand-in {b!r}")
    return out
