"""Availability during rolling upgrades of the whole lab (playbooks/upgrade.yml, batch size 1,
then 2): a bounded client loop sends one-token completions to every host over the network the
whole time and records what was served and what failed. Lab hosts are containers on this one
machine serving the vLLM stand-in (a test double): lab figures, not GPU figures."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ansible_runner
import httpx
import yaml

from benchmarks.availability import (Request, down_intervals, failed_outside_batch, max_down_at_once,
                                     per_host, windows_from_events)
from vllm_fleet_lab import lab as lab_cycle
from vllm_fleet_lab.config import LabPaths, router_manifest_path
from vllm_fleet_lab.playbook import run_playbook
from vllm_fleet_lab.proc import docker
from vllm_fleet_lab.variants import build_variant

# Every host published on the lab network, with the lab's API key (as spark already is): the
# clients of a fleet come over the network, not over loopback.
NETWORK = {"vllm_fleet_bind_address": "0.0.0.0", "vllm_fleet_api_key": "{{ vault_vllm_fleet_api_key }}"}
# The label of the requests sent through the router.
ROUTED = "through the router"
FAST_HEALTH = {"vllm_fleet_upgrade_health_retries": 24, "vllm_fleet_upgrade_health_delay": 2}


def _play(playbook: str, inventory: Path, tmp: Path, extravars: dict[str, Any]) -> ansible_runner.Runner:
    r = run_playbook(playbook, inventory, tmp, extravars=extravars)
    if r.rc != 0:
        raise RuntimeError(f"{playbook} failed on the lab: {r.stats}")
    return r


@dataclass(frozen=True)
class Target:
    base: str
    model: str
    ca_file: str | None
    servers: int = 1  # behind a router: how many instances it spreads the model over


def _read(host: str, path: str) -> str:
    """A file on a lab host (a container of this machine's Docker engine)."""
    return docker("exec", host, "cat", path, hint=f"is the lab up, and has site.yml deployed {path} on {host}?")


def _target(name: str, address: str, tmp: Path) -> Target:
    """Where a client on the lab network reaches host `name`'s instance: the scheme, port, served
    name and CA of the instance's manifest (what the role deployed), at the host's lab address
    (which its proxy's certificate names)."""
    manifest = json.loads(_read(name, "/etc/vllm-fleet/main.json"))
    url = urlsplit(manifest["url"])
    ca = None
    if manifest.get("ca_file"):
        ca = tmp / f"{name}.pem"
        ca.write_text(_read(name, manifest["ca_file"]))
    return Target(f"{url.scheme}://{address}:{url.port}", manifest["model"]["served_name"], str(ca) if ca else None)


async def _client(target: Target, host: str, key: str, stop: threading.Event, out: list[Request]) -> None:
    verify = ssl.create_default_context(cafile=target.ca_file) if target.ca_file else True
    model = target.model
    async with httpx.AsyncClient(base_url=target.base, timeout=5, verify=verify,
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        while not stop.is_set():
            start = time.time()
            try:
                resp = await client.post("/v1/completions", json={"model": model, "prompt": "ping", "max_tokens": 1})
                ok = resp.status_code == 200 and bool(resp.json().get("choices"))
            except (httpx.HTTPError, ValueError):
                ok = False
            out.append(Request(host, start, time.time(), ok))
            await asyncio.sleep(0.1)


def _load(targets: dict[str, Target], key: str, stop: threading.Event, out: list[Request]) -> None:
    async def main() -> None:
        await asyncio.gather(*(_client(target, host, key, stop, out) for host, target in targets.items()))
    asyncio.run(main())


def _router_target(router: str, address: str, tmp: Path) -> Target:
    """The lab router's one address for the model of the hosts it routes: port, model and
    certificate from the router's manifest (written from the plan haproxy.cfg is rendered from),
    at the router's lab address."""
    manifest = json.loads(_read(router, router_manifest_path()))
    listener = manifest["listeners"][0]
    ca = tmp / "router.pem"
    ca.write_text(_read(router, manifest["ca_file"]))
    return Target(f"https://{address}:{listener['port']}", listener["model"], str(ca), len(listener["servers"]))


def release_inventory(inventory: Path, old: str, new: str, dest: Path) -> Path:
    """A copy of the lab's inventory with image digest `old` replaced by `new` wherever it is
    pinned: a release as a site makes one, by changing the digest in its inventory. (One
    vllm_fleet_overrides in extra vars would replace each host's own, the fallback host's
    cuda_major 12 included, and preflight would rightly refuse a CUDA 13 image there.)"""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(inventory, dest, symlinks=True)
    changed = 0
    for path in (p for p in dest.rglob("*") if p.is_file() and not p.is_symlink()):
        text = path.read_text()
        if old in text:
            path.write_text(text.replace(old, new))
            changed += 1
    if not changed:
        raise RuntimeError(f"no file of {inventory} pins {old}: is the lab's inventory the one `lab up` wrote?")
    return dest


def _upgrade_under_load(inventory: Path, tmp: Path, serial: int,
                        targets: dict[str, Target], key: str, edge: Target | None) -> dict[str, Any]:
    requests: list[Request] = []
    through_router: list[Request] = []
    stop = threading.Event()
    loader = threading.Thread(target=_load, args=(targets, key, stop, requests))
    loader.start()
    edge_loader = threading.Thread(target=_load, args=({ROUTED: edge}, key, stop, through_router)) if edge else None
    if edge_loader:
        edge_loader.start()
    time.sleep(2)  # a baseline before the first batch
    started = time.monotonic()
    try:
        # A batch of every routed host is what upgrade.yml refuses; the benchmark lets it run
        # to measure the outage that refusal spares the router's clients.
        r = _play("playbooks/upgrade.yml", inventory, tmp / "run",
                  {**NETWORK, **FAST_HEALTH, "vllm_fleet_upgrade_serial": serial,
                   "vllm_fleet_upgrade_allow_full_drain": True})
    finally:
        time.sleep(2)
        stop.set()
        loader.join()
        if edge_loader:
            edge_loader.join()
    windows = windows_from_events(r.events)
    spans = down_intervals(requests)
    return {"serial": serial, "seconds": time.monotonic() - started, "per_host": per_host(requests),
            "max_down": max_down_at_once(spans), "outside_batch": len(failed_outside_batch(requests, windows)),
            "requests": len(requests), "router": per_host(through_router).get(ROUTED),
            "router_servers": edge.servers if edge else 0}


def measure() -> list[dict[str, Any]]:
    paths = LabPaths.resolve(None)
    record = lab_cycle.up(paths, hosts=4)
    hosts = {h["name"]: h["address"] for h in record["hosts"] if h["gpus"]}  # not the router
    key = (paths.root / "api-key").read_text().strip()
    digest = yaml.safe_load((paths.inventory / "group_vars/all/offline.yml").read_text())["vllm_fleet_overrides"]["image"]["digest"]
    tmp = paths.root / "bench-availability"
    _play("site.yml", paths.inventory, tmp / "converge", NETWORK)
    # Bound to all addresses, each instance is behind its TLS proxy (and the fallback group serves
    # another model): the manifests say where and what.
    models = {name: _target(name, address, tmp) for name, address in hosts.items()}
    router = next((h for h in record["hosts"] if not h["gpus"]), None)
    edge = _router_target(router["name"], router["address"], tmp) if router else None
    results = []
    for serial, label in ((1, "next"), (2, "after-next")):
        new = build_variant(record, f"release-{label}", [f'LABEL io.vllm-fleet.release="{label}"'])
        work = tmp / f"upgrade-{serial}"
        inventory = release_inventory(paths.inventory, digest, new, work / "inventory")
        results.append(_upgrade_under_load(inventory, work, serial, models, key, edge))
    lab_cycle.up(paths, hosts=lab_cycle.gpu_host_count(record), reset=True)  # leave the lab as `lab up` makes it
    return results
