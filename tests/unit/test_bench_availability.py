"""The availability arithmetic of `make bench`'s rolling-upgrade figure, on made-up timelines."""

from __future__ import annotations

from benchmarks.availability import (Request, down_intervals, failed_outside_batch, max_down_at_once,
                                     per_host, router_target_zero, windows_from_events)


def _timeline(host: str, pattern: str, t0: float = 0.0) -> list[Request]:
    """One request a second: '.' served, 'x' failed."""
    return [Request(host, t0 + i, t0 + i + 0.5, c == ".") for i, c in enumerate(pattern)]


def test_one_host_at_a_time_is_one_down_at_most():
    reqs = _timeline("a", "..xx......") + _timeline("b", "......xx..")
    spans = down_intervals(reqs)
    assert spans == {"a": [(2.0, 4.0)], "b": [(6.0, 8.0)]}
    assert max_down_at_once(spans) == 1
    assert per_host(reqs) == {"a": {"served": 8, "failed": 2}, "b": {"served": 8, "failed": 2}}


def test_overlapping_outages_count_together():
    reqs = _timeline("a", "..xxx.....") + _timeline("b", "...xx.....") + _timeline("c", "....x.....")
    assert max_down_at_once(down_intervals(reqs)) == 3


def test_an_outage_that_never_ends_lasts_to_the_last_request():
    assert down_intervals(_timeline("a", "..xx")) == {"a": [(2.0, 3.5)]}


def test_back_to_back_outages_do_not_overlap():
    spans = {"a": [(0.0, 2.0)], "b": [(2.0, 4.0)]}
    assert max_down_at_once(spans) == 1


def test_failures_outside_the_batch_window_are_reported():
    reqs = _timeline("a", "..xx....x.")
    windows = {"a": (1.5, 5.0)}
    assert [r.start for r in failed_outside_batch(reqs, windows)] == [8.0]
    assert failed_outside_batch(_timeline("b", "x"), windows) == _timeline("b", "x")  # never in a batch


def test_batch_windows_come_from_each_hosts_task_events():
    events = [
        {"event": "playbook_on_task_start", "created": "2026-11-27T10:00:00", "event_data": {}},
        {"event": "runner_on_ok", "created": "2026-11-27T10:00:01", "event_data": {"host": "a"}},
        {"event": "runner_on_ok", "created": "2026-11-27T10:00:09", "event_data": {"host": "a"}},
        {"event": "runner_on_start", "created": "2026-11-27T10:00:10", "event_data": {"host": "b"}},
        {"event": "runner_on_failed", "created": "2026-11-27T10:00:20", "event_data": {"host": "b"}},
    ]
    w = windows_from_events(events)
    assert w["a"][1] - w["a"][0] == 8 and w["b"][1] - w["b"][0] == 10
    assert w["a"][1] < w["b"][0]


def test_the_router_target_holds_while_a_batch_leaves_a_server():
    # Measured: batch size 2 over the lab's two routed hosts, 830 of 1,901 requests failed.
    assert router_target_zero(1, 2)
    assert not router_target_zero(2, 2)
    assert not router_target_zero(1, 1)
