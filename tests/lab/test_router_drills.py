"""The lab's router (HAProxy on vllm-fleet-lab-router, in front of hosts 1 and 2), as a client
of the fleet sees it: the smoke suite through the router's one address, the key at the edge,
and the requests a client loop loses while an instance is killed and while the router restarts.
The drain of a host during a rolling upgrade is test_upgrade_rollback's."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from tests.lab.lab_hosts import H1, H2
from tests.lab.router_client import ADMIN, ROUTER, Edge, edge_of, router_servers, under_load, wait_router_up
from tests.lab.site_run import failed_messages, failures

pytestmark = [pytest.mark.lab, pytest.mark.hopper]


@pytest.fixture(scope="module")
def edge(first_converge, fresh_lab, tmp_path_factory) -> Edge:
    r, _ = first_converge
    assert r.rc == 0 and failures(r) == {}, failed_messages(r)
    return edge_of(fresh_lab, tmp_path_factory.mktemp("router"))

def test_the_smoke_suite_passes_through_the_routers_one_address(edge, fresh_lab, tmp_path) -> None:
    servers = wait_router_up(fresh_lab)
    assert sorted(servers) == [f"{H1}_main", f"{H2}_main"], servers
    key = tmp_path / "key"
    key.write_text(edge.key)
    out = tmp_path / "smoke.json"
    # Speculative-decoding counters are each server's own: through a router they are not compared.
    proc = subprocess.run([sys.executable, "-m", "vllm_fleet", "smoke", "--url", edge.url, "--model", edge.model,
                           "--max-model-len", str(edge.max_model_len), "--api-key-file", str(key),
                           "--ca-file", edge.ca_file, "--expect-proxy", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    print(f"smoke through the router: {json.dumps(doc.get('counts', doc.get('summary', '')))}")


def test_the_edge_wants_the_key_but_health_does_not(edge, fresh_lab) -> None:
    with httpx.Client(base_url=edge.url, verify=edge.ca_file, timeout=30) as client:
        assert client.get("/health").status_code == 200
        anonymous = client.post("/v1/completions", json={"model": edge.model, "prompt": "ping", "max_tokens": 1})
        assert anonymous.status_code == 401, anonymous.text
        wrong = client.get("/v1/models", headers={"Authorization": "Bearer not-the-key-at-all"})
        assert wrong.status_code == 401
        # Past the edge, the host's proxy still refuses what it never passes on.
        keyed = client.post("/invocations", headers={"Authorization": f"Bearer {edge.key}"}, json={})
        assert keyed.status_code == 404, keyed.text


def test_a_killed_instance_costs_the_client_at_most_its_request_in_flight(edge, fresh_lab) -> None:
    """Host 2's container is killed under a client loop: the host's proxy then answers 502, which
    the router sends to host 1 instead; only a request on the wire at the kill can be lost."""
    wait_router_up(fresh_lab)
    host = fresh_lab.host(H2)
    loop = under_load(edge, lambda: host.check_output("docker kill vllm-main"), before=3, after=8)
    print(f"instance killed: {len(loop.failed)} of {loop.sent} requests through the router failed: {loop.failed}")
    assert loop.sent > 20 and len(loop.failed) <= 1, loop.failed
    # systemd starts it again and the router's checks take it back.
    wait_router_up(fresh_lab, 120)


def test_a_router_restart_and_reload(edge, fresh_lab) -> None:
    """A reload (new configuration) loses nothing; a restart refuses connections while HAProxy
    is down, and comes back with every server up."""
    wait_router_up(fresh_lab)
    router = fresh_lab.host(ROUTER)
    reloaded = under_load(edge, lambda: router.check_output("systemctl reload haproxy"))
    restarted = under_load(edge, lambda: router.check_output("systemctl restart haproxy"))
    print(f"router reload: {len(reloaded.failed)} of {reloaded.sent} requests failed; "
          f"restart: {len(restarted.failed)} of {restarted.sent} failed ({restarted.failed[:3]})")
    assert reloaded.sent > 20 and reloaded.failed == [], reloaded.failed
    assert restarted.sent > 20
    wait_router_up(fresh_lab)


def test_a_drained_server_stays_drained_across_a_restart(edge, fresh_lab) -> None:
    """The configuration loads the state file that drain.yml and the role's handlers write (the
    states saved as they save them): a host an upgrade took out of rotation does not come back
    because the router restarted."""
    router = fresh_lab.host(ROUTER)
    backend = next(line.split(",")[0] for line in router.check_output(f"echo 'show stat' | {ADMIN}").splitlines()
                   if line.split(",")[1:2] == [f"{H2}_main"])
    router.check_output(f"echo 'set server {backend}/{H2}_main state drain' | {ADMIN}")
    try:
        router.check_output(f"echo 'show servers state' | {ADMIN} > /var/lib/haproxy/vllm-fleet.state")
        router.check_output("systemctl restart haproxy")
        time.sleep(2)
        assert router_servers(fresh_lab)[f"{H2}_main"] == "DRAIN"
    finally:
        router.check_output(f"echo 'set server {backend}/{H2}_main state ready' | {ADMIN}")
        router.check_output(f"echo 'show servers state' | {ADMIN} > /var/lib/haproxy/vllm-fleet.state")
    wait_router_up(fresh_lab)
