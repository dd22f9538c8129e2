"""A client of the lab's router (HAProxy on vllm-fleet-lab-router, in front of hosts 1 and 2):
its address and key, the servers' states from its runtime API, and a client loop that counts the
requests it loses, for the router tests and the upgrade drill."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.lab.lab_hosts import H2, ROUTER
from vllm_fleet_lab.config import router_manifest_path

ADMIN = "socat stdio UNIX-CONNECT:/run/haproxy/admin.sock"


@dataclass
class Edge:
    url: str
    model: str
    max_model_len: int
    key: str
    ca_file: str


def edge_of(lab, tmp: Path) -> Edge:
    """The router's address for the model hosts 1 and 2 serve, the key, and its certificate: the
    port, model and certificate from the router's manifest, at the router's lab address."""
    router = lab.host(ROUTER)
    manifest = json.loads(router.file(router_manifest_path()).content_string)
    listeners = manifest["listeners"]
    assert len(listeners) == 1, f"the lab's router should serve one model (that of hosts 1 and 2): {listeners}"
    ca = tmp / "router.pem"
    ca.write_text(router.file(manifest["ca_file"]).content_string)
    # The context length clients may use: what the role deployed on a routed host.
    instance = json.loads(lab.host(H2).file("/etc/vllm-fleet/main.json").content_string)
    assert listeners[0]["model"] == instance["model"]["served_name"], (listeners, instance["model"])
    return Edge(url=f"https://{lab.address(ROUTER)}:{listeners[0]['port']}", model=listeners[0]["model"],
                max_model_len=int(instance["max_model_len"]), key=(lab.paths.root / "api-key").read_text().strip(),
                ca_file=str(ca))


def router_servers(lab) -> dict[str, str]:
    """server -> status (UP, DOWN, DRAIN, ...) from the router's runtime API."""
    out = lab.host(ROUTER).check_output(f"echo 'show stat' | {ADMIN}")
    rows = [line.split(",") for line in out.splitlines() if line and not line.startswith("#")]
    return {row[1]: row[17] for row in rows if row[1] not in ("FRONTEND", "BACKEND")}


def wait_router_up(lab, timeout: float = 90) -> dict[str, str]:
    deadline, servers = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        servers = router_servers(lab)
        if servers and all(s == "UP" for s in servers.values()):
            return servers
        time.sleep(1)
    raise AssertionError(f"the router's servers did not all come up in {timeout:.0f} s: {servers}")


@dataclass
class ClientLoop:
    """One client sending one-token completions through the router, one after another."""

    edge: Edge
    sent: int = 0
    failed: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        body = {"model": self.edge.model, "prompt": "ping", "max_tokens": 1}
        with httpx.Client(base_url=self.edge.url, verify=self.edge.ca_file, timeout=30,
                          headers={"Authorization": f"Bearer {self.edge.key}"}) as client:
            while not self._stop.is_set():
                self.sent += 1
                try:
                    resp = client.post("/v1/completions", json=body)
                    if resp.status_code != 200:
                        self.failed.append(f"{resp.status_code} {resp.text[:120]}")
                except httpx.HTTPError as exc:
                    self.failed.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.05)

    def __enter__(self) -> "ClientLoop":
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        time.sleep(1)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(1)
        self._stop.set()
        self._thread.join(60)




def under_load(edge: Edge, action: Callable[[], object], before: float = 2, after: float = 3) -> ClientLoop:
    """A client loop through the router while `action` runs: what it sent and what it lost."""
    with ClientLoop(edge) as loop:
        time.sleep(before)
        action()
        time.sleep(after)
    return loop
