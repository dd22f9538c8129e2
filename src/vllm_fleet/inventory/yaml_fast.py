"""A fast path for the block-mapping subset of YAML that inventories are mostly made of.

PyYAML's constructor is pure Python (~0.2 s for 10,000 host lines); this reads lines of the
form `key:`, `key: scalar`, `key: "str"` and `key: {k: v, ...}` with a regex and gives up
(returns None, so the full loader runs) on anything else: sequences, anchors, tags, block
scalars, tabs, comments after values, a deeper line after a scalar (multi-line plain
scalar), odd indentation. Scalars are resolved by PyYAML's own YAML 1.1 resolver.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_FAST_LINE = re.compile(
    r'(?P<indent> *)(?:(?P<key>[A-Za-z0-9_][A-Za-z0-9_.\-]*)|"(?P<qkey>[^"\\]*)"):'
    r'(?: +(?:(?P<flow>\{[^{}\[\]"\'#&*!|>%@`]*\})|"(?P<dq>[^"\\]*)"|\'(?P<sq>[^\']*)\''
    r'|(?P<plain>[A-Za-z0-9_./~+(][^#\t]*?)))? *\Z'
)
_FAST_FLOW_ITEM = re.compile(r" *([A-Za-z0-9_][A-Za-z0-9_.\-]*): +([A-Za-z0-9_./~+][A-Za-z0-9_./~+ \-]*?) *\Z")
# tabs, CR and control characters have YAML rules of their own (or are errors)
_FAST_BAD_CHARS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_RESOLVER = yaml.resolver.Resolver()
_SCALAR_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_FAST_TAGS = {
    "tag:yaml.org,2002:int": yaml.constructor.SafeConstructor.construct_yaml_int,
    "tag:yaml.org,2002:float": yaml.constructor.SafeConstructor.construct_yaml_float,
    "tag:yaml.org,2002:bool": yaml.constructor.SafeConstructor.construct_yaml_bool,
    "tag:yaml.org,2002:null": yaml.constructor.SafeConstructor.construct_yaml_null,
}
_plain_cache: dict[str, Any] = {}


class _NotFast(Exception):
    """The text is outside the fast subset; use the full YAML loader."""


def _plain(value: str) -> Any:
    """A plain scalar as PyYAML resolves it (str/int/float/bool/null; others are not fast)."""
    try:
        return _plain_cache[value]
    except KeyError:
        pass
    if ": " in value or value.endswith(":") or " #" in value:
        raise _NotFast
    tag = _RESOLVER.resolve(yaml.ScalarNode, value, (True, False))
    if tag == "tag:yaml.org,2002:str":
        result: Any = value
    elif tag in _FAST_TAGS:
        result = _FAST_TAGS[tag](_SCALAR_CONSTRUCTOR, yaml.ScalarNode(tag, value))
    else:  # timestamps, merge keys, '=' ...
        raise _NotFast
    if len(_plain_cache) < 100_000:
        _plain_cache[value] = result
    return result


def _fast_value(m: re.Match[str]) -> Any:
    flow = m.group("flow")
    if flow is not None:
        out: dict[Any, Any] = {}
        body = flow[1:-1]
        if body.strip():
            for item in body.split(","):
                im = _FAST_FLOW_ITEM.match(item)
                if im is None:
                    raise _NotFast
                out[_fast_key(im.group(1))] = _plain(im.group(2))
        return out
    if m.group("dq") is not None:
        return m.group("dq")
    if m.group("sq") is not None:
        return m.group("sq")
    return _plain(m.group("plain").rstrip(" "))


def _fast_key(key: str) -> str:
    value = _plain(key)
    if not isinstance(value, str):  # `1:` or `yes:` keys resolve to int/bool
        raise _NotFast
    return value


def fast_yaml(text: str) -> Any:
    """Parse `text` if it is inside the fast subset, else None."""
    if not text.isascii() or _FAST_BAD_CHARS.search(text):
        return None
    try:
        return _fast_mappings(text.split("\n"))
    except _NotFast:
        return None


def _fast_mappings(lines: list[str]) -> dict[Any, Any] | None:
    root: dict[Any, Any] = {}
    stack: list[tuple[int, dict[Any, Any]]] = []
    pending: tuple[dict[Any, Any], Any, int] | None = None  # a `key:` that may open a block
    match = _FAST_LINE.match
    for number, line in enumerate(lines):
        stripped = line.lstrip(" ")
        if not stripped or stripped[0] == "#":
            continue
        if number == 0 and line.rstrip(" ") == "---":
            continue
        m = match(line)
        if m is None or len(m.group("key") or m.group("qkey") or "") > 1000:
            raise _NotFast
        indent = len(m.group("indent"))
        if pending is not None:
            parent, pkey, pindent = pending
            if indent > pindent:
                child: dict[Any, Any] = {}
                parent[pkey] = child
                stack.append((indent, child))
            pending = None
        elif stack and indent > stack[-1][0]:
            raise _NotFast  # continuation of a multi-line scalar, or bad indentation
        if not stack:
            if indent:
                raise _NotFast
            stack.append((0, root))
        while indent < stack[-1][0]:
            stack.pop()
            if not stack:
                raise _NotFast
        if indent != stack[-1][0]:
            raise _NotFast
        mapping = stack[-1][1]
        key = m.group("qkey") if m.group("qkey") is not None else _fast_key(m.group("key"))
        if m.group("flow") is None and m.group("dq") is None and m.group("sq") is None and m.group("plain") is None:
            mapping[key] = None
            pending = (mapping, key, indent)
        else:
            mapping[key] = _fast_value(m)
    return root if stack else None

