"""vllm_fleet.inventory must resolve exactly what `ansible-inventory` resolves.

Differential: every host's variables and groups from `load_inventory` are compared with
`ansible-inventory --list` (one call per inventory; `--list` and `--host` print the same
variables, checked once below) for the repo's example inventory and for generated ones.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from benchmarks.inventory_gen import generate
from vllm_fleet.inventory import (
    Inventory,
    InventoryError,
    VaultValue,
    load_inventory,
    load_inventory_json,
    locate,
)

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_INVENTORY = Path(sys.executable).parent / "ansible-inventory"
EXAMPLE = REPO / "inventory" / "example"
SEEDS = range(8)


@pytest.fixture(scope="module")
def ansible_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An environment where only defaults apply: empty ansible.cfg, no ANSIBLE_* overrides."""
    home = tmp_path_factory.mktemp("ansible-home")
    cfg = home / "empty.cfg"
    cfg.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(cfg), ANSIBLE_HOME=str(home), ANSIBLE_LOCAL_TEMP=str(home / "tmp"))
    # cwd without group_vars/: ansible-inventory also reads play-adjacent vars from cwd
    return {"env": env, "cwd": str(home)}


def ansible_inventory(ansible_env: dict[str, Any], paths: list[Path], *args: str) -> Any:
    cmd = [str(ANSIBLE_INVENTORY)]
    for p in paths:
        cmd += ["-i", str(p)]
    proc = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=120, **ansible_env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def ansible_view(value: Any) -> Any:
    """Our value as ansible-inventory's legacy JSON profile prints it."""
    if isinstance(value, VaultValue):
        return {"__ansible_vault": value.ciphertext}
    if isinstance(value, dict):
        return {str(k): ansible_view(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [ansible_view(v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return value


def strip_unsafe(value: Any) -> Any:
    """`--list` wraps !unsafe strings as {"__ansible_unsafe": s}; `--host` prints s."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: strip_unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_unsafe(v) for v in value]
    return value


def membership(listing: dict[str, Any]) -> dict[str, set[str]]:
    """host -> every group containing it (transitively), from `--list` output."""
    groups = {k: v for k, v in listing.items() if k != "_meta"}
    hosts_of: dict[str, set[str]] = {}

    def collect(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        if name not in hosts_of:
            body = groups.get(name, {})
            found = set(body.get("hosts", []))
            for child in body.get("children", []):
                if child not in seen:
                    found |= collect(child, seen | {name})
            hosts_of[name] = found
        return hosts_of[name]

    result: dict[str, set[str]] = {h: {"all"} for h in listing["_meta"]["hostvars"]}
    for name in groups:
        for host in collect(name):
            result.setdefault(host, {"all"}).add(name)
    return result


def assert_same_as_ansible(inv: Inventory, listing: dict[str, Any]) -> None:
    expected_vars = {h: strip_unsafe(v) for h, v in listing["_meta"]["hostvars"].items()}
    assert sorted(inv.hosts) == sorted(expected_vars)
    expected_groups = membership(listing)
    for name, host in inv.hosts.items():
        assert ansible_view(host.vars) == expected_vars[name], name
        assert host.groups == sorted(expected_groups[name]), name
        assert set(host.sources) == set(host.vars), name


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("generated")
    return {seed: generate(root / f"seed{seed}", 30 + 5 * seed, seed, "yaml" if seed % 2 else "ini") for seed in SEEDS}


@pytest.fixture(scope="module")
def listings(generated: dict[int, Path], ansible_env: dict[str, Any]) -> dict[int, Any]:
    # ansible-inventory is mostly start-up; run the seeds side by side
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {seed: pool.submit(ansible_inventory, ansible_env, [path], "--list") for seed, path in generated.items()}
        return {seed: future.result() for seed, future in futures.items()}


@pytest.mark.parametrize("seed", SEEDS)
def test_generated_inventory_matches_ansible(seed: int, generated: dict[int, Path], listings: dict[int, Any]) -> None:
    inv = load_inventory([generated[seed]])
    assert_same_as_ansible(inv, listings[seed])


def test_list_hostvars_equal_host_output(generated: dict[int, Path], listings: dict[int, Any], ansible_env: dict[str, Any]) -> None:
    """Justifies comparing against one `--list` instead of a `--host` call per host."""
    hostvars = listings[1]["_meta"]["hostvars"]
    for name in sorted(hostvars)[:2]:
        single = ansible_inventory(ansible_env, [generated[1]], "--host", name)
        assert strip_unsafe(hostvars[name]) == single


def test_example_inventory_matches_ansible(ansible_env: dict[str, Any]) -> None:
    if not EXAMPLE.is_dir():
        pytest.skip("inventory/example/ does not exist yet (being written separately)")
    try:
        inv = load_inventory([EXAMPLE])
    except InventoryError as exc:
        if "contains no inventory files" in str(exc):
            pytest.skip("inventory/example/ has no inventory file yet (being written separately)")
        raise
    assert_same_as_ansible(inv, ansible_inventory(ansible_env, [EXAMPLE], "--list"))


def test_multiple_sources_and_file_source(tmp_path: Path, ansible_env: dict[str, Any]) -> None:
    """Two `-i` sources: group_vars of both apply, source-major (all, then each group)."""
    a = generate(tmp_path / "a", 20, 11, "yaml")
    b = generate(tmp_path / "b", 20, 12, "ini")
    hosts_file = next(p for p in sorted(b.iterdir()) if p.name.startswith("hosts"))
    listing = ansible_inventory(ansible_env, [a, hosts_file], "--list")
    assert_same_as_ansible(load_inventory([a, hosts_file]), listing)


def test_fleet_inventory_matches_ansible(tmp_path: Path, ansible_env: dict[str, Any]) -> None:
    for fmt in ("yaml", "ini"):
        path = generate(tmp_path / fmt, 300, 3, fmt, fleet=True)
        inv = load_inventory([path])
        assert_same_as_ansible(inv, ansible_inventory(ansible_env, [path], "--list"))
        profiles = {h.vars["vllm_fleet_profile"] for h in inv.hosts.values()}
        assert profiles == {"hopper", "blackwell", "spark", "fallback"}
        spark = next(h for h in inv.hosts.values() if h.vars["vllm_fleet_profile"] == "spark")
        assert spark.vars["vllm_fleet_gpu"]["name"] == "NVIDIA GB10"
        assert spark.sources["vllm_fleet_gpu"].endswith(os.path.join("group_vars", "spark", "main.yml"))


def test_json_matches_source(generated: dict[int, Path], listings: dict[int, Any]) -> None:
    for seed in (0, 1):
        from_source = load_inventory([generated[seed]])
        from_json = load_inventory_json(listings[seed])
        assert from_json.hosts.keys() == from_source.hosts.keys()
        for name, host in from_source.hosts.items():
            assert from_json.hosts[name].vars == host.vars, name
            assert from_json.hosts[name].groups == host.groups, name
            assert set(from_json.hosts[name].sources.values()) <= {"<inventory-json>"}


def test_json_export_resolves_group_vars(tmp_path: Path, ansible_env: dict[str, Any]) -> None:
    """`--export` keeps group vars per group; they are re-merged by depth/priority/name.

    Export is lossy (inventory-file and group_vars/ layers are folded together, a group_vars
    `ansible_group_priority` becomes a real priority), so only a layering-free inventory
    such as the fleet one round-trips exactly.
    """
    path = generate(tmp_path / "fleet", 200, 5, "ini", fleet=True)
    exported = ansible_inventory(ansible_env, [path], "--list", "--export")
    from_json = load_inventory_json(exported)
    from_source = load_inventory([path])
    assert {h: v.vars for h, v in from_json.hosts.items()} == {h: v.vars for h, v in from_source.hosts.items()}


# --------------------------------------------------------------------------- YAML fast path

FAST_YAML_CASES = [
    "all:\n  hosts:\n    a: {ansible_host: 10.0.0.1, port: 22}\n",
    "a: yes\nb: no\nc: ~\nd: 0x1F\ne: 1_000\nf: 1:20\ng: .inf\nh: 010\ni: 1e3\nj: 1.0e3\nk: +1\n",
    "a: NVIDIA H100 80GB HBM3\nb: \"9.0\"\nc: '12.1'\nd: ''\ne:\nf: x y  \n",
    "a: 2001-12-14\n",                       # timestamp: not fast, full loader
    "a: b\n  c\n",                            # multi-line plain scalar
    "a:\n  - 1\n",                            # sequence
    "a: &x 1\nb: *x\n",                       # anchors
    "a: [1, 2]\n",
    "a: 'it''s'\n",
    "a: x # comment\n",
    "a: x#y\n",
    "1: x\nyes: y\n",                         # non-string keys
    "a:\n    b: 1\n  c: 2\n",                 # bad indentation: error in both
    "a: {b: [1]}\n",
    "a: {b: 1,}\n",
    "a: {}\nb: { }\n",
    "---\na: 1\n...\n",
    "a:b\n",
    "a: b: c\n",
    "  a: 1\n  b: 2\n",
    "a:\n  b:\n    c: 1\n  d: 2\ne: 3\n",
    "a: 1\na: 2\n",                           # duplicate key: last wins
    "a: \"x\\ty\"\n",                          # escapes: not fast
    "a: null\nb: Null\nc: NULL\nd: True\ne: off\n",
    "\"h[01:10]:22\": {v: 1}\n",
    "a: (x)\nb: x, y\nc: x [y]\n",
]


@pytest.mark.parametrize("text", FAST_YAML_CASES)
def test_fast_yaml_agrees_with_pyyaml(text: str) -> None:
    import yaml

    from vllm_fleet.inventory.yaml_fast import fast_yaml as _fast_yaml
    from vllm_fleet.inventory.yaml_read import InventoryLoader as _InventoryLoader

    fast = _fast_yaml(text)
    try:
        full = yaml.load(text, Loader=_InventoryLoader)
    except yaml.YAMLError:
        assert fast is None
        return
    assert fast is None or (fast == full and [type(v) for v in fast.values()] == [type(v) for v in full.values()])


def test_fast_yaml_covers_generated_files(tmp_path: Path, generated: dict[int, Path]) -> None:
    import yaml

    from vllm_fleet.inventory.yaml_fast import fast_yaml as _fast_yaml
    from vllm_fleet.inventory.yaml_read import InventoryLoader as _InventoryLoader

    fleet = generate(tmp_path / "fleet", 200, 1, "yaml", fleet=True)
    assert _fast_yaml((fleet / "hosts.yml").read_text()) is not None  # the speed-up applies
    for root in [fleet, *generated.values()]:
        for path in root.rglob("*"):
            if path.is_file() and path.suffix in ("", ".yml", ".yaml") and "[" not in path.read_text()[:1]:
                text = path.read_text()
                fast = _fast_yaml(text)
                if fast is not None:
                    assert fast == yaml.load(text, Loader=_InventoryLoader), path


# --------------------------------------------------------------------------- precedence facts


def test_group_vars_all_beats_inventory_group_vars(tmp_path: Path) -> None:
    """Ansible's VARIABLE_PRECEDENCE puts every group_vars/ file above inventory-file vars."""
    (tmp_path / "hosts.ini").write_text("[web]\nw1\n[web:vars]\nx = from_ini\ny = 1\nansible_group_priority = 5\n")
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("x: from_all\ns: !unsafe '{{ raw }}'\n")
    host = load_inventory([tmp_path]).hosts["w1"]
    assert host.vars == {"x": "from_all", "y": 1, "s": "{{ raw }}"}
    assert host.sources["x"] == str(tmp_path / "group_vars" / "all.yml")
    assert host.sources["y"] == str(tmp_path / "hosts.ini")
    assert host.groups == ["all", "web"]


def test_vault_loads_opaque(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    h1:\n      pw: !vault |\n        $ANSIBLE_VAULT;1.1;AES256\n        3132\n")
    value = load_inventory([tmp_path / "hosts.yml"]).hosts["h1"].vars["pw"]
    assert isinstance(value, VaultValue) and str(value) == "<vault>"


VAULT_FILE = "$ANSIBLE_VAULT;1.1;AES256\n62313365396662343061393464336163383764373764613633653634306231386433626436623361\n"


def test_vault_encrypted_vars_file_is_opaque(tmp_path: Path) -> None:
    """group_vars/<g>/vault.yml encrypted next to vars.yml (Ansible's documented layout)."""
    (tmp_path / "hosts.ini").write_text("[web]\nw1\nw2\n[db]\nd1\n")
    web = tmp_path / "group_vars" / "web"
    web.mkdir(parents=True)
    (web / "vars.yml").write_text("api_key: '{{ vault_api_key }}'\n")
    (web / "vault.yml").write_text(VAULT_FILE)
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "w2.yml").write_text(VAULT_FILE)
    inv = load_inventory([tmp_path])
    assert inv.hosts["w1"].vars == {"api_key": "{{ vault_api_key }}"}
    assert inv.hosts["w1"].encrypted == (str(web / "vault.yml"),)
    assert inv.hosts["w2"].encrypted == (str(web / "vault.yml"), str(tmp_path / "host_vars" / "w2.yml"))
    assert inv.hosts["d1"].encrypted == ()
    assert str(web / "vault.yml") in inv.files


def test_vault_encrypted_inventory_file_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "a.ini").write_text("[web]\nw1\n")
    (tmp_path / "b.yml").write_text(VAULT_FILE)
    inv = load_inventory([tmp_path])
    assert list(inv.hosts) == ["w1"]
    assert inv.encrypted_sources == [str(tmp_path / "b.yml")]
    assert any("ansible-vault" in w for w in inv.warnings)


def test_unsafe_text_is_marked(tmp_path: Path) -> None:
    from vllm_fleet.inventory.model import UnsafeText

    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    h1:\n      a: !unsafe '{{ x }}'\n      b: '{{ y }}'\n"
                                        "      c: !unsafe 5\n")
    host = load_inventory([tmp_path / "hosts.yml"]).hosts["h1"]
    assert isinstance(host.vars["a"], UnsafeText) and host.vars["a"] == "{{ x }}"
    assert type(host.vars["b"]) is str and host.vars["c"] == 5
    listing = {"all": {"hosts": ["h1"]}, "_meta": {"hostvars": {"h1": {"a": {"__ansible_unsafe": "{{ x }}"}}}}}
    assert isinstance(load_inventory_json(listing).hosts["h1"].vars["a"], UnsafeText)


BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize("where", ["group_vars/web.yml", "hosts.yml"])
def test_alias_expansion_is_bounded(tmp_path: Path, where: str) -> None:
    """A 1 KB file whose nested aliases expand to ~10^9 values is refused, at once, naming it."""
    (tmp_path / "hosts.yml").write_text("web:\n  hosts:\n    w1:\n")
    path = tmp_path / where
    path.parent.mkdir(exist_ok=True)
    if where == "hosts.yml":
        path.write_text("web:\n  hosts:\n    w1:\n  vars:\n" + "".join("    " + line + "\n" for line in BILLION_LAUGHS.splitlines()))
    else:
        path.write_text(BILLION_LAUGHS)
    assert len(path.read_bytes()) < 1500
    message = error_for([tmp_path])
    assert str(path) in message and "aliases" in message


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text("web:\n  hosts:\n    w1: &me\n      self: [*me]\n")
    assert "contains itself" in error_for([tmp_path / "hosts.yml"])


def test_ordinary_aliases_still_work(tmp_path: Path, ansible_env: dict[str, Any]) -> None:
    """Anchors reused by every host of a large inventory, merge keys, shared lists: read as Ansible does."""
    hosts = "".join(f"    h{i:05d}: *defaults\n" for i in range(20000))
    (tmp_path / "hosts.yml").write_text(
        "web:\n  vars:\n    common: &common {a: 1, b: [1, 2, 3]}\n    again: *common\n"
        "    merged: {<<: *common, c: 3}\n  hosts:\n    h_first: &defaults {x: 1, y: {z: [1, 2, 3, 4]}, w: *common}\n"
        + hosts)
    inv = load_inventory([tmp_path])
    assert len(inv.hosts) == 20001
    assert inv.hosts["h00042"].vars["y"] == {"z": [1, 2, 3, 4]}
    assert inv.hosts["h00042"].vars["merged"] == {"a": 1, "b": [1, 2, 3], "c": 3}
    small = tmp_path / "small"
    small.mkdir()
    (small / "hosts.yml").write_text("web:\n  vars:\n    common: &common {a: 1, b: [1, 2]}\n    again: *common\n"
                                     "    merged: {<<: *common, c: 3}\n  hosts:\n    w1: &d {x: 1}\n    w2: *d\n")
    assert_same_as_ansible(load_inventory([small]), ansible_inventory(ansible_env, [small], "--list"))


def test_vars_outside_all(tmp_path: Path) -> None:
    """Which variables a host gets from somewhere other than group `all` (for lint's VF002)."""
    (tmp_path / "hosts.ini").write_text("[web]\nw1 own=1\nw2\n[all:vars]\nfrom_all_ini=1\n[web:vars]\nfrom_web_ini=1\n")
    gv = tmp_path / "group_vars"
    gv.mkdir()
    (gv / "all.yml").write_text("from_all=1\n".replace("=", ": "))
    (gv / "web.yml").write_text("from_web: 1\nfrom_all: 2\n")
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "w2.yml").write_text("from_host_vars: 1\n")
    inv = load_inventory([tmp_path])
    assert inv.vars_outside_all("w1") == {"from_web_ini": str(tmp_path / "hosts.ini"), "own": str(tmp_path / "hosts.ini"),
                                          "from_web": str(gv / "web.yml"), "from_all": str(gv / "web.yml")}
    assert set(inv.vars_outside_all("w2")) == {"from_web_ini", "from_web", "from_all", "from_host_vars"}


def test_vars_outside_all_of_a_flattened_listing() -> None:
    """`--list` without --export folds group vars into each host: a variable every host has is all's."""
    listing = {"all": {"children": ["web", "ungrouped"]}, "web": {"hosts": ["w1"]}, "ungrouped": {"hosts": ["b1"]},
               "_meta": {"hostvars": {"w1": {"everyone": 1, "mine": 2}, "b1": {"everyone": 1}}}}
    inv = load_inventory_json(listing)
    assert inv.flattened
    assert set(inv.vars_outside_all("w1")) == {"mine"} and inv.vars_outside_all("b1") == {}
    exported = {"all": {"vars": {"everyone": 1}, "children": ["web"]}, "web": {"hosts": ["w1"], "vars": {"mine": 2}}}
    inv = load_inventory_json(exported)
    assert not inv.flattened
    assert set(inv.vars_outside_all("w1")) == {"mine"}


# --------------------------------------------------------------------------- dynamic sources

SCRIPT = """#!/usr/bin/env python3
import json, sys
if "--host" in sys.argv:
    print("{}")
else:
    print(json.dumps({
        "web": {"hosts": ["w1", "w2"], "vars": {"x": "from_script_group", "y": 1}, "children": ["edge"]},
        "edge": {"hosts": ["e1"]},
        "all": {"vars": {"z": "from_script_all"}},
        "_meta": {"hostvars": {"w1": {"x": "from_script_host", "secret": {"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\\n3132"}}}},
    }))
"""


def _script_inventory(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    script = root / "inventory.py"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    gv = root / "group_vars"
    gv.mkdir(exist_ok=True)
    (gv / "all.yml").write_text("z: from_group_vars_all\nshared: all\n")
    (gv / "web.yml").write_text("y: 2\nshared: web\n")
    (gv / "edge.yml").write_text("x: from_group_vars_edge\n")
    (root / "host_vars").mkdir(exist_ok=True)
    (root / "host_vars" / "w2.yml").write_text("x: from_host_vars\n")
    return root


def test_dynamic_script_matches_ansible(tmp_path: Path, ansible_env: dict[str, Any]) -> None:
    """A script is run through ansible-inventory; its group_vars/host_vars are read by lint, at the
    same precedence Ansible gives them."""
    root = _script_inventory(tmp_path / "inv")
    inv = load_inventory([root])
    assert inv.listings == [str(root / "inventory.py")]
    assert_same_as_ansible(inv, ansible_inventory(ansible_env, [root], "--list"))
    assert inv.hosts["w1"].sources["x"] == str(root / "inventory.py")
    assert inv.hosts["w2"].sources["x"] == str(root / "host_vars" / "w2.yml")
    assert isinstance(inv.hosts["w1"].vars["secret"], VaultValue)
    assert set(inv.vars_outside_all("e1")) == {"x", "y", "shared"}


def test_dynamic_plugin_config(tmp_path: Path, ansible_env: dict[str, Any]) -> None:
    (tmp_path / "fleet.yml").write_text(
        "plugin: ansible.builtin.generator\nhosts:\n  name: '{{ site }}-{{ n }}'\n  parents:\n"
        "    - name: '{{ site }}'\n      vars: {site_name: '{{ site }}'}\nlayers:\n  site: [east, west]\n  n: ['1', '2']\n")
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "east.yml").write_text("dc: east\n")
    inv = load_inventory([tmp_path])
    assert sorted(inv.hosts) == ["east-1", "east-2", "west-1", "west-2"]
    assert inv.hosts["east-1"].vars["dc"] == "east"
    assert_same_as_ansible(inv, ansible_inventory(ansible_env, [tmp_path], "--list"))


def test_dynamic_source_without_ansible_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vllm_fleet.inventory import dynamic

    monkeypatch.setattr(dynamic, "ansible_inventory", lambda: None)
    root = _script_inventory(tmp_path)
    message = error_for([root])
    assert "ansible-inventory is not installed" in message and str(root / "inventory.py") in message
    assert "--from-json" in message


def test_failing_dynamic_source(tmp_path: Path) -> None:
    script = tmp_path / "inventory.sh"
    script.write_text("#!/bin/sh\necho 'cannot reach the CMDB' >&2\nexit 3\n")
    script.chmod(0o755)
    message = error_for([script])
    assert str(script) in message and "failed" in message
    (tmp_path / "inventory.sh").unlink()
    plugin = tmp_path / "cloud.yml"
    plugin.write_text("plugin: no.such.plugin\n")
    message = error_for([plugin])
    assert str(plugin) in message and "no.such.plugin" in message


def test_locate(tmp_path: Path) -> None:
    ini = tmp_path / "hosts.ini"
    ini.write_text("[web]\nw[1:3] a=1\n[web:vars]\n# c\nb = 2\n")
    assert locate(str(ini), "b", "web") == 5
    assert locate(str(ini), "a", "w2") == 2
    assert locate(str(ini), "a", "w9") is None
    yml = tmp_path / "hosts.yml"
    yml.write_text("all:\n  children:\n    web:\n      vars:\n        b: 2\n      hosts:\n        w1:\n          a: 1\n")
    assert locate(str(yml), "b", "web") == 5
    assert locate(str(yml), "a", "w1") == 8
    gv = tmp_path / "web.yml"
    gv.write_text("---\n# gpu\nvllm_fleet_gpu:\n  name: x\n")
    assert locate(str(gv), "vllm_fleet_gpu") == 3


def test_locate_nested_paths(tmp_path: Path) -> None:
    """A path into a variable finds the deepest part that exists, in vars and inventory files."""
    gv = tmp_path / "web.yml"
    gv.write_text("_d: &d\n  max_num_seqs: 4\nvllm_fleet_overrides:\n  serving:\n    <<: *d\n    max_model_len: 1\n"
                  "vllm_fleet_instances:\n  - {name: a, gpus: [0], port: 8000}\n  - name: b\n    port: 8001\n")
    assert locate(str(gv), "vllm_fleet_overrides.serving.max_model_len") == 6
    assert locate(str(gv), "vllm_fleet_overrides.serving.max_num_seqs") == 2  # through the merge key
    assert locate(str(gv), "vllm_fleet_overrides.serving.nope.deeper") == 4
    assert locate(str(gv), "vllm_fleet_instances[1].port") == 10
    assert locate(str(gv), "vllm_fleet_instances[0].port") == 8
    assert locate(str(gv), "vllm_fleet_instances[7].port") == 7
    yml = tmp_path / "hosts.yml"
    yml.write_text("web:\n  hosts:\n    w1:\n      v:\n        a: 1\n        b:\n          c: 2\n")
    assert locate(str(yml), "v.b.c", "w1") == 7
    ini = tmp_path / "hosts.ini"
    ini.write_text("[web]\nw1 v=\"{'a': 1}\"\n")
    assert locate(str(ini), "v.a", "w1") == 2


# --------------------------------------------------------------------------- errors


def error_for(paths: list[Path]) -> str:
    with pytest.raises(InventoryError) as caught:
        load_inventory(paths)
    message = str(caught.value)
    assert message.endswith((".", ")")), message
    return message


def test_truncated_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text("all:\n  children:\n    web:\n      hosts:\n        w1: {a: [1, 2\n")
    message = error_for([path])
    assert str(path) in message and "line" in message


def test_binary_file(tmp_path: Path) -> None:
    for name in ("hosts", "hosts.yml", "hosts.ini"):
        path = tmp_path / name
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
        assert str(path) in error_for([path])


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(b"[web]\nw\xff1\n")
    assert "UTF-8" in error_for([path])


def test_empty_placeholder_files_are_no_hosts(tmp_path: Path, ansible_env: dict[str, Any]) -> None:
    """Ansible reads an empty or comment-only inventory file as no hosts (its ini plugin accepts it)."""
    generate(tmp_path, 12, 21, "ini")
    for name, text in (("00-empty.yml", ""), ("01-comments.ini", "  \n# only a comment\n; and another\n"),
                       ("02-start.yaml", "---\n"), ("03-blank", "\n\n")):
        (tmp_path / name).write_text(text)
    assert_same_as_ansible(load_inventory([tmp_path]), ansible_inventory(ansible_env, [tmp_path], "--list"))
    alone = tmp_path / "00-empty.yml"
    assert load_inventory([alone]).hosts == {}


def test_empty_inventory_dir(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    assert "no inventory files" in error_for([tmp_path])


def test_group_vars_top_level_list(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("[web]\nw1\n")
    (tmp_path / "group_vars").mkdir()
    bad = tmp_path / "group_vars" / "web.yml"
    bad.write_text("- a\n- b\n")
    message = error_for([tmp_path])
    assert str(bad) in message and "list" in message


def test_empty_group_vars_file_is_fine(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("[web]\nw1 a=1\n")
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "web.yml").write_text("# nothing yet\n")
    assert load_inventory([tmp_path]).hosts["w1"].vars == {"a": 1}


def test_missing_path(tmp_path: Path) -> None:
    assert "does not exist" in error_for([tmp_path / "nope"])


@pytest.mark.parametrize(
    "name, text, fragment",
    [
        ("hosts.yml", "- just\n- a list\n", "mapping"),
        ("hosts", "plugin: constructed\n", "rename it"),
        ("hosts.yml", "web:\n  hosts: [a, b]\n", "mapping"),
        ("hosts.yml", "web:\n  hosts:\n    w1: 5\n", "mapping"),
        ("hosts.ini", "[web:children]\nnever_defined\n", "never_defined"),
        ("hosts.ini", "[web:vars]\nx=1\n", "never defined"),
        ("hosts.ini", "[web]\nw1 novalue\n", "key=value"),
        ("hosts.ini", "[a:children]\nb\n[b:children]\na\n", "loop"),
        ("hosts.ini", "[web:weird]\nx\n", "unknown type"),
        ("hosts.ini", "[web]\nw1:\n", "port"),
        ("hosts.ini", "[web]\nw1 a='unterminated\n", "quotes"),
        ("hosts.ini", "[web]\nw1\n[web:vars]\nansible_group_priority = high\n", "integer"),
        ("hosts", "this is a readme, not an inventory\n", "neither"),
        ("hosts.toml", "[web]\n", "TOML"),
    ],
)
def test_bad_inventories(tmp_path: Path, name: str, text: str, fragment: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    message = error_for([path])
    assert str(path) in message and fragment in message, message
