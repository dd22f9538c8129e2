"""The router's plan (vllm_fleet.serving.router): which servers, where the router reaches them,
one port per model, the errors a user gets, how a drain counts requests in flight; and lint's
VF501 on an inventory with a router group."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vllm_fleet.cli import main
from vllm_fleet.serving.args import served_model_name
from vllm_fleet.serving.host import plan_host
from vllm_fleet.serving.router import (RouterError, fleet_member, full_drains, host_servers, plan_router, router_manifest,
                                      sessions)

GPU = {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "memory_mib": 81559, "count": 2}
BASE = {"vllm_fleet_profile": "hopper", "vllm_fleet_cpu_arch": "x86_64", "vllm_fleet_driver_branch": 580,
        "vllm_fleet_gpu": GPU, "vllm_fleet_api_key": "k" * 20}
CORPUS = yaml.safe_load((Path(__file__).parents[1] / "lint_corpus" / "cases.yml").read_text())


def member(name: str, groups=("hopper",), ansible_host=None, **fleet):
    return fleet_member(name, {**BASE, **fleet}, groups, ansible_host)


def fleet(*members):
    return {m.name: m for m in members}


def test_every_instance_of_every_routed_host_is_a_server() -> None:
    two = [{"name": "gpu0", "gpus": [0], "port": 8000}, {"name": "gpu1", "gpus": [1], "port": 8001}]
    hosts = fleet(member("h1", ansible_host="10.0.0.1", vllm_fleet_bind_address="0.0.0.0", vllm_fleet_instances=two),
                  member("h2", vllm_fleet_bind_address="10.0.0.2", vllm_fleet_instances=two))
    plan = plan_router("r1", {}, hosts)
    [listener] = plan.listeners
    assert listener.port == 8443 and listener.model == served_model_name(plan_host(BASE).serving)
    got = [(s.name, s.address, s.port, s.tls) for s in listener.servers]
    # A wildcard bind is reached at the inventory's address; a specific one at itself.
    assert got == [("h1_gpu0", "10.0.0.1", 8000, True), ("h1_gpu1", "10.0.0.1", 8001, True),
                   ("h2_gpu0", "10.0.0.2", 8000, True), ("h2_gpu1", "10.0.0.2", 8001, True)]
    # A drain finds a host's servers from the host's own plan, by the names the router's plan gives.
    assert host_servers("r1", {}, hosts["h2"]) == [
        {"backend": listener.backend, "server": "h2_gpu0"}, {"backend": listener.backend, "server": "h2_gpu1"}]


def test_the_manifest_gives_clients_each_models_port_url_certificate_and_servers() -> None:
    hosts = fleet(member("h1", ansible_host="10.0.0.1", vllm_fleet_bind_address="0.0.0.0"),
                  member("h2", vllm_fleet_bind_address="10.0.0.2"))
    plan = plan_router("r1", {"port": 9443}, hosts)
    doc = router_manifest(plan.as_dict(), "0.0.0.0", "/etc/haproxy/vllm-fleet/router.pem")
    assert doc == {"schema_version": 1, "ca_file": "/etc/haproxy/vllm-fleet/router.pem", "listeners": [
        {"model": plan.listeners[0].model, "port": 9443, "url": "https://127.0.0.1:9443",
         "backend": plan.listeners[0].backend, "servers": ["h1_main", "h2_main"]}]}
    # Bound to one address, the router answers there (an IPv6 one in brackets).
    assert router_manifest(plan.as_dict(), "fd00::5", "c")["listeners"][0]["url"] == "https://[fd00::5]:9443"


def test_only_the_named_groups_are_routed_and_the_host_name_is_the_fallback_address() -> None:
    plan = plan_router("r1", {"groups": ["spark"], "port": 9443}, fleet(
        member("h1", vllm_fleet_bind_address="0.0.0.0"),
        member("s1.example.net", groups=("spark",), vllm_fleet_bind_address="0.0.0.0")))
    [listener] = plan.listeners
    assert listener.port == 9443
    assert [(s.host, s.address) for s in listener.servers] == [("s1.example.net", "s1.example.net")]
    # A host the router does not route has nothing to drain there.
    assert host_servers("r1", {"groups": ["spark"]}, member("h1", vllm_fleet_bind_address="0.0.0.0")) == []


def test_a_loopback_host_cannot_be_routed_and_the_message_says_what_to_set() -> None:
    with pytest.raises(RouterError, match=r"router r1 cannot reach h1: its instances listen on 127\.0\.0\.1 only\. "
                                          r"Set vllm_fleet_bind_address"):
        plan_router("r1", {}, fleet(member("h1")))


def test_no_fleet_host_in_the_groups() -> None:
    with pytest.raises(RouterError, match="router r1 has no fleet host to route to: the groups gpu hold"):
        plan_router("r1", {"groups": ["gpu"]}, fleet(member("h1", vllm_fleet_bind_address="0.0.0.0")))


def test_two_models_need_a_port_each() -> None:
    other = {"model": {"id": "Qwen/Qwen3-0.6B"}}
    hosts = fleet(member("h1", vllm_fleet_bind_address="0.0.0.0"),
                  member("h2", vllm_fleet_bind_address="0.0.0.0", vllm_fleet_overrides=other))
    with pytest.raises(RouterError, match=r"routes 2 models .* give .* a port in vllm_fleet_router\.ports"):
        plan_router("r1", {}, hosts)
    models = [served_model_name(m.plan.serving) for m in hosts.values()]
    with pytest.raises(RouterError, match="on one port, 8443"):
        plan_router("r1", {"ports": {m: 8443 for m in models}}, hosts)
    ports = {li.model: li.port for li in plan_router("r1", {"ports": {m: 9000 + i for i, m in enumerate(models)}},
                                                     hosts).listeners}
    assert sorted(ports.values()) == [9000, 9001]


@pytest.mark.parametrize("settings, message", [
    ({"port": 0}, "vllm_fleet_router.port of router r1: 0 is less than the minimum of 1"),
    ({"groups": "hopper"}, "vllm_fleet_router.groups of router r1: 'hopper' is not of type 'array'"),
    ({"prot": 1}, "Additional properties are not allowed ('prot' was unexpected)"),
])
def test_settings_are_held_to_the_schema(settings, message) -> None:
    with pytest.raises(RouterError) as err:
        plan_router("r1", settings, fleet(member("h1", vllm_fleet_bind_address="0.0.0.0")))
    assert message in str(err.value)


# `show stat` as HAProxy 2.6's runtime API answers it (the first columns; the rest cut).
SHOW_STAT = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,
model_q,FRONTEND,,,3,9,262120,50,1,2,0,0,0,,,,,OPEN,
model_q,h1_main,1,1,2,4,,20,1,2,,0,,0,0,0,0,DRAIN,
model_q,h2_main,0,0,5,6,,30,1,2,,0,,0,0,0,0,UP,
model_q,BACKEND,1,1,7,9,26212,50,1,2,0,0,,0,0,0,0,UP,
"""


def test_a_drain_waits_for_the_requests_in_flight_and_queued_on_its_servers() -> None:
    assert sessions(SHOW_STAT, [{"backend": "model_q", "server": "h1_main"}]) == 3
    assert sessions(SHOW_STAT, [{"backend": "model_q", "server": "h2_main"}]) == 5
    assert sessions(SHOW_STAT, [{"backend": "model_q", "server": "gone"}]) == 0


def test_lint_checks_a_router_group_and_does_not_call_it_an_unprofiled_host(tmp_path: Path, capsys) -> None:
    for rel, content in CORPUS["base"].items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    hosts = yaml.safe_load((tmp_path / "hosts.yml").read_text())
    hosts["all"]["children"]["router"] = {"hosts": {"router-1": None}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (tmp_path / "group_vars" / "router.yml").write_text(yaml.safe_dump({"vllm_fleet_router": {"groups": ["hopper"]}}))
    assert main(["lint", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path}/group_vars/router.yml:1: error VF501 host=router-1 var=vllm_fleet_router: router router-1 " \
           "cannot reach hopper-1: its instances listen on 127.0.0.1 only" in out, out
    assert "VF002" not in out
    (tmp_path / "group_vars" / "hopper.yml").write_text(
        (tmp_path / "group_vars" / "hopper.yml").read_text()
        + yaml.safe_dump({"vllm_fleet_bind_address": "0.0.0.0", "vllm_fleet_api_key": "k" * 20}))
    assert main(["lint", str(tmp_path)]) == 0, capsys.readouterr().out
    # A play's serial in the routers' group is no more read there than on a fleet host (VF005).
    (tmp_path / "group_vars" / "router.yml").write_text(yaml.safe_dump(
        {"vllm_fleet_router": {"groups": ["hopper"]}, "vllm_fleet_upgrade_serial": 1}))
    assert main(["lint", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path}/group_vars/router.yml:4: error VF005 host=router-1 var=vllm_fleet_upgrade_serial: " in out, out


def test_a_model_with_two_context_lengths_behind_one_address_is_a_warning() -> None:
    short = {"serving": {"max_model_len": 65536}}
    plan = plan_router("r1", {}, fleet(member("h1", vllm_fleet_bind_address="0.0.0.0"),
                                       member("h2", vllm_fleet_bind_address="0.0.0.0", vllm_fleet_overrides=short)))
    [warning] = plan.warnings
    assert "different max_model_len (65536: h2; 262144: h1)" in warning and "longer than 65536 tokens" in warning
    assert plan_router("r1", {}, fleet(member("h1", vllm_fleet_bind_address="0.0.0.0"),
                                       member("h2", vllm_fleet_bind_address="0.0.0.0"))).warnings == []


def test_a_batch_holding_every_host_behind_a_model_is_named_with_what_to_change() -> None:
    hosts = fleet(member("h1", vllm_fleet_bind_address="0.0.0.0"), member("h2", vllm_fleet_bind_address="0.0.0.0"),
                  member("h3", groups=("fallback",), vllm_fleet_bind_address="0.0.0.0", vllm_fleet_profile="fallback"))
    plan = plan_router("r1", {"ports": {served_model_name(hosts["h1"].plan.serving): 9443,
                                        served_model_name(hosts["h3"].plan.serving): 9444}}, hosts).as_dict()
    assert full_drains("r1", plan, [["h1"], ["h2", "h3"]]) == []
    [sentence] = full_drains("r1", plan, [["h1", "h2"], ["h3"]])
    model = served_model_name(hosts["h1"].plan.serving)
    assert sentence.startswith(f"a batch of 2 hosts (h1, h2) holds every host behind {model} on router r1 (h1, h2): "
                               "the router would have no server for it while they restart. Take fewer than 2 hosts "
                               "a batch (vllm_fleet_upgrade_serial)")
    assert sentence.endswith("-e vllm_fleet_upgrade_allow_full_drain=true")
    # h3 alone serves the fallback model: no batch size keeps it serving, so it is never refused;
    # a model with a host outside the run is never drained whole.
    assert full_drains("r1", plan, [["h1", "h3"]]) == []
