"""Availability arithmetic of a rolling upgrade: from client requests (per host, start/end/ok) and
each host's batch window (when the upgrade worked on it), the most hosts down at once and the
failed requests that fell outside their host's batch. Pure functions: no lab, no clock."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Request:
    host: str
    start: float
    end: float
    ok: bool


def windows_from_events(events: Iterable[dict]) -> dict[str, tuple[float, float]]:
    """Each host's batch window: its first to its last task event in an ansible-runner run."""
    out: dict[str, tuple[float, float]] = {}
    for event in events:
        host = event.get("event_data", {}).get("host")
        if not host or not event.get("event", "").startswith("runner_on_"):
            continue
        t = datetime.fromisoformat(event["created"]).timestamp()
        first, last = out.get(host, (t, t))
        out[host] = (min(first, t), max(last, t))
    return out


def down_intervals(requests: list[Request]) -> dict[str, list[tuple[float, float]]]:
    """Per host: from the start of a failed request to the end of that failure streak (the
    start of the next request that succeeded, or the end of the last failed one)."""
    out: dict[str, list[tuple[float, float]]] = {}
    for host in sorted({r.host for r in requests}):
        mine = sorted((r for r in requests if r.host == host), key=lambda r: r.start)
        spans, since, last_end = [], None, 0.0
        for r in mine:
            if not r.ok and since is None:
                since = r.start
            elif r.ok and since is not None:
                spans.append((since, r.start))
                since = None
            last_end = r.end
        if since is not None:
            spans.append((since, last_end))
        out[host] = spans
    return out


def max_down_at_once(spans: dict[str, list[tuple[float, float]]]) -> int:
    edges = sorted([(a, 1) for v in spans.values() for a, _ in v] + [(b, -1) for v in spans.values() for _, b in v],
                   key=lambda e: (e[0], e[1]))  # an end before a start at the same instant
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def failed_outside_batch(requests: list[Request], windows: dict[str, tuple[float, float]],
                         slack: float = 0.0) -> list[Request]:
    """Failed requests to a host while the upgrade was not working on it."""
    bad = []
    for r in requests:
        if r.ok:
            continue
        window = windows.get(r.host)
        if window is None or r.end < window[0] - slack or r.start > window[1] + slack:
            bad.append(r)
    return bad


def per_host(requests: list[Request]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in requests:
        row = out.setdefault(r.host, {"served": 0, "failed": 0})
        row["served" if r.ok else "failed"] += 1
    return out


def router_target_zero(serial: int, servers: int) -> bool:
    """Whether a client of the router should see no failure: only while a batch leaves it a
    server of the model to send requests to (a batch of every routed host drains them all)."""
    return serial < servers
