"""One contract: for every host of the example inventory and of generated ones, what lint
decides (instances, GPUs, ports, names, bind and probe addresses, model, image) is exactly what
the vllm role renders for that host from the variables Ansible itself resolved."""

from __future__ import annotations

import json

from vllm_fleet.inventory import load_inventory
from vllm_fleet.lint.run import lint_inventory, router_plan
from vllm_fleet.rules import ERROR, HostView
from vllm_fleet.serving.args import serve_args
from vllm_fleet.serving.host import is_fleet_host, plan_host
from vllm_fleet.serving.image import image_ref
from vllm_fleet.serving.router import is_router_host


def test_lint_passes_every_contract_host(contract) -> None:
    inventory, names, _ = contract
    found, checked = lint_inventory(load_inventory([inventory]))
    assert checked == len(names)
    assert [f.as_dict() for f in found if f.violation.severity == ERROR] == []


def test_what_lint_sees_is_what_the_role_renders(contract, rendered) -> None:
    inventory, names, out = contract
    resolved = load_inventory([inventory]).hosts
    assert sorted(n for n in resolved if is_fleet_host(resolved[n].vars)) == names
    binds = set()
    for name in names:
        assert is_fleet_host(resolved[name].vars)
        plan = plan_host(resolved[name].vars)
        view = HostView.declared(name, plan)
        etc = out / name / "etc"
        manifests = {p.stem: json.loads(p.read_text()) for p in etc.glob("*.json")}
        assert sorted(manifests) == sorted(i["name"] for i in view.instances), name
        binds.add(plan.bind_address)
        for inst in plan.instances:
            m = manifests[inst.name]
            assert (m["gpus"], m["port"], m["bind_address"], m["url"], m["backend_url"], m["proxied"]) == (
                inst.gpus, inst.port, plan.bind_address, inst.url, inst.backend_url, inst.proxied), (name, inst)
            # Any bind address but loopback goes through the proxy, and vLLM itself stays on loopback.
            assert inst.proxied == (not plan.loopback)
            assert m["ca_file"] == ("/etc/vllm-fleet/tls/server.crt" if inst.proxied else None)
            assert m["unit"] == f"vllm@{inst.name}.service" and m["container"] == f"vllm-{inst.name}"
            assert m["model"]["id"] == plan.serving["model"]["id"]
            assert m["max_model_len"] == plan.serving["serving"]["max_model_len"]
            assert m["image"]["ref"] == image_ref(plan.serving["image"])
            assert m["serve_args"] == serve_args(plan.serving)
            assert (m["api_key_file"] is not None) == plan.api_key_set
            argv = (etc / f"{inst.name}.args").read_text().splitlines()
            assert argv[argv.index("--publish") + 1] == f"{inst.publish_host}:{inst.publish_port}:8000"
            if inst.proxied:
                assert inst.publish_host == "127.0.0.1" and inst.url.startswith("https://")
            assert argv[argv.index("--gpus") + 1] == '"device=' + ",".join(map(str, inst.gpus)) + '"'
            assert argv[argv.index("--name") + 1] == f"vllm-{inst.name}"
            assert argv[argv.index(m["image"]["ref"]) + 1:] == m["serve_args"]
    # The generated hosts cover the addresses whose loopback twin differs (::, 0.0.0.0, ...).
    assert {"0.0.0.0", "::", "127.0.0.1"} <= binds, binds


def test_probe_addresses_reach_the_published_port() -> None:
    """The address rule itself, for the binds whose on-host address is not the bind address."""
    from vllm_fleet.serving import addresses

    assert addresses.probe_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"
    assert addresses.probe_url("::", 8001) == "http://[::1]:8001"
    assert addresses.probe_url("fd00::5", 8003) == "http://[fd00::5]:8003"
    assert addresses.publish_host("::") == "[::]" and addresses.publish_host("10.0.0.1") == "10.0.0.1"
    assert addresses.is_loopback("::1") and addresses.is_loopback("127.0.0.2") and not addresses.is_loopback("::")


def test_the_router_routes_what_lint_plans(contract, rendered) -> None:
    """The router role's haproxy.cfg for the example's router, from what Ansible resolved: a
    frontend on each planned port and exactly the planned servers, at the planned addresses."""
    inventory, _, out = contract
    resolved = load_inventory([inventory])
    routers = [h for h in resolved.hosts.values() if is_router_host(h.vars)]
    assert routers, "the example inventory has no router"
    for host in routers:
        plan = router_plan(resolved, host)
        config = (out / host.name / "haproxy.cfg").read_text()
        backends, binds, current = {}, {}, None
        for line in config.splitlines():
            words = line.split()
            if words[:1] in (["frontend"], ["backend"]):
                current = words[1]
            elif words[:1] == ["bind"]:
                binds[current] = int(words[1].rpartition(":")[2])
            elif words[:1] == ["server"]:
                backends.setdefault(current, []).append((words[1], words[2], "ssl" in words))
        assert binds == {li.backend: li.port for li in plan.listeners}
        assert backends == {li.backend: [(s.name, f"{s.address}:{s.port}", s.tls) for s in li.servers]
                            for li in plan.listeners}
        assert sum(len(v) for v in backends.values()) >= 2, backends
