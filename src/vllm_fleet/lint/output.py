"""How lint prints what it found: text (file:line: severity RULE host= var=: message), JSON, and
GitHub Actions annotations; and the exit code that CI reads."""

from __future__ import annotations

import json
from typing import Iterable

from vllm_fleet.lint.run import Located
from vllm_fleet.rules import ERROR, INFO, WARNING

EXIT_CLEAN, EXIT_VIOLATIONS, EXIT_UNREADABLE = 0, 1, 2


def exit_code(found: Iterable[Located], strict: bool) -> int:
    failing = {ERROR, WARNING} if strict else {ERROR}
    return EXIT_VIOLATIONS if any(f.violation.severity in failing for f in found) else EXIT_CLEAN


def visible(found: list[Located], show_info: bool) -> list[Located]:
    return found if show_info else [f for f in found if f.violation.severity != INFO]


def format_text(found: list[Located], checked: int, seconds: float) -> str:
    lines = []
    for f in found:
        v = f.violation
        where = f"{f.file}:{f.line}" if f.file and f.line else (f.file or "<inventory>")
        lines.append(f"{where}: {v.severity} {v.rule} host={v.host} var={v.var}: {v.message}")
    lines.append(summary(found, checked, seconds))
    return "\n".join(lines)


def summary(found: list[Located], checked: int, seconds: float) -> str:
    """The last line: what was printed above it, counted."""
    counts = {s: sum(1 for f in found if f.violation.severity == s) for s in (ERROR, WARNING, INFO)}
    return (f"{checked} host(s) checked in {seconds:.2f} s: {counts[ERROR]} error(s), {counts[WARNING]} warning(s)"
            + (f", {counts[INFO]} note(s)" if counts[INFO] else ""))


def format_json(found: list[Located], checked: int, seconds: float) -> str:
    return json.dumps({"hosts_checked": checked, "seconds": round(seconds, 3),
                       "violations": [f.as_dict() for f in found]}, indent=2)


def _gh_escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def format_github(found: list[Located], checked: int, seconds: float) -> str:
    level = {ERROR: "error", WARNING: "warning", INFO: "notice"}
    out = []
    for f in found:
        v = f.violation
        loc = ",".join(p for p in (f"file={f.file}" if f.file else "", f"line={f.line}" if f.line else "") if p)
        props = ",".join(p for p in (loc, f"title={v.rule} {v.host}") if p)
        out.append(f"::{level[v.severity]} {props}::{_gh_escape(f'{v.var}: {v.message}')}")
    out.append(summary(found, checked, seconds))
    return "\n".join(out)


FORMATTERS = {"text": format_text, "json": format_json, "github": format_github}
