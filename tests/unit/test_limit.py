"""Ansible host patterns (`-l`/`--limit`) over a resolved inventory, held to ansible-core itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vllm_fleet.inventory import load_inventory
from vllm_fleet.inventory.limit import (
    LimitError,
    order_patterns,
    select_hosts,
    split_host_pattern,
)

ANSIBLE = Path(sys.executable).with_name("ansible")

# Groups nest (gpu > hopper, spark), overlap (rack1/rack2 cut across them), and one host is in
# no group (ungrouped); names with dots and digits exercise globs, regexes and subscripts.
INVENTORY = {
    "all": {
        "hosts": {"bastion": {}, "db.example.net": {}},
        "children": {
            "gpu": {"children": {
                "hopper": {"hosts": {"h100-01": {}, "h100-02": {}, "h200-01": {}}},
                "spark": {"hosts": {"spark-01": {}, "spark-02": {}, "spark-03": {}}},
            }},
            "rack1": {"hosts": {"h100-01": {}, "spark-01": {}, "db.example.net": {}}},
            "rack2": {"hosts": {"h100-02": {}, "h200-01": {}, "spark-02": {}}},
            "empty_parent": {"children": {"rack1": {}}},
        },
    }
}
# Every one of these selects something, in Ansible and here. Compared as sets: Ansible lists a
# limited play in its 'all' group's order (a walk of the group tree), this in inventory order.
PATTERNS = [
    "all", "*", "spark", "hopper:&rack1", "hopper,&rack1", "gpu:!rack2", "!rack2", "&rack1", "rack1:rack2",
    "!spark:hopper", "h1*", "h???-01", "~h[0-9]+-0[12]", "~spark", "spark[0]",
    "spark[1:]", "spark[0:1]", "hopper[-1]", "spark-0*:&rack2", "*.example.net", "db.example.net",
    "spark-03", "spark-03,bastion", "ungrouped", "empty_parent", "gpu:&~.*-02", "rack1:!db*", " spark , hopper ",
    "gpu:&rack1:&spark", "spark:hopper:!~h2",
]


@pytest.fixture(scope="module")
def inventory_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("limit") / "hosts.yml"
    path.write_text(yaml.safe_dump(INVENTORY, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def hosts(inventory_file: Path) -> dict:
    return load_inventory([inventory_file]).hosts


def test_split_like_ansible() -> None:
    assert split_host_pattern("a,b[1], c[2:3] , d") == ["a", "b[1]", "c[2:3]", "d"]
    assert split_host_pattern("hopper:&rack1") == ["hopper", "&rack1"]
    assert split_host_pattern("hopper:rack1:!h100-01") == ["hopper", "rack1", "!h100-01"]
    # one address stays whole: a host range, an IPv6 address, host:port
    assert split_host_pattern("web[1:3]") == ["web[1:3]"]
    assert split_host_pattern("fe80::1") == ["fe80::1"]
    assert split_host_pattern("gpu1:22") == ["gpu1:22"]
    assert split_host_pattern("web[1:3]:&rack1") == ["web[1:3]", "&rack1"]
    # with a comma, only commas separate: 'a:&b' is then one (glob) pattern, as in Ansible
    assert split_host_pattern("hopper:&rack1,spark") == ["hopper:&rack1", "spark"]


def test_intersections_and_exclusions_come_after_unions() -> None:
    assert order_patterns(["!a", "&b", "c", "!d", "e"]) == ["c", "e", "&b", "!a", "!d"]
    assert order_patterns(["!a"]) == ["all", "!a"]


def test_groups_expand_to_their_hosts_and_children(hosts: dict) -> None:
    assert select_hosts(hosts, "spark") == ["spark-01", "spark-02", "spark-03"]
    assert select_hosts(hosts, "gpu") == ["h100-01", "h100-02", "h200-01", "spark-01", "spark-02", "spark-03"]
    assert select_hosts(hosts, "hopper:&rack1") == ["h100-01"]
    assert select_hosts(hosts, "!rack2:&gpu") == ["h100-01", "spark-01", "spark-03"]
    assert select_hosts(hosts, "~spark-0[13]") == ["spark-01", "spark-03"]
    assert select_hosts(hosts, "spark[1:]") == ["spark-02", "spark-03"]


def test_limit_file(hosts: dict, tmp_path: Path) -> None:
    limit = tmp_path / "retry"
    limit.write_text("spark-01\nh100-02\n\n!spark-01\n")
    assert select_hosts(hosts, f"@{limit}") == ["h100-02"]
    with pytest.raises(LimitError, match="does not exist"):
        select_hosts(hosts, f"@{tmp_path / 'missing'}")
    with pytest.raises(LimitError, match="must name a file"):
        select_hosts(hosts, f"@{tmp_path}")


def test_a_pattern_matching_nothing_is_an_error_naming_it(hosts: dict) -> None:
    with pytest.raises(LimitError, match=r"host pattern 'sprak' matches no host or group .*did you mean 'spark'"):
        select_hosts(hosts, "hopper,sprak")
    with pytest.raises(LimitError, match=r"host pattern 'rack9' matches no host"):
        select_hosts(hosts, "spark:!rack9")
    with pytest.raises(LimitError, match=r"the limit 'spark:&hopper' selects no host"):
        select_hosts(hosts, "spark:&hopper")
    with pytest.raises(LimitError, match=r"subscript selects none"):
        select_hosts(hosts, "spark[5]")
    with pytest.raises(LimitError, match=r"not a valid regular expression"):
        select_hosts(hosts, "~spark(")


def _ansible_subset(inventory: Path, patterns: list[str]) -> dict[str, list[str] | str]:
    """What ansible-core's own InventoryManager selects for each --limit, in a clean process."""
    script = """
import json, sys
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
inventory = InventoryManager(loader=DataLoader(), sources=[sys.argv[1]])
out = {}
for pattern in json.loads(sys.argv[2]):
    try:
        inventory.subset(pattern)
        out[pattern] = [h.name for h in inventory.get_hosts("all")]
    except Exception as exc:
        out[pattern] = f"error: {exc}"
print(json.dumps(out))
"""
    env = dict(os.environ, ANSIBLE_HOST_PATTERN_MISMATCH="ignore", ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([sys.executable, "-c", script, str(inventory), json.dumps(patterns)], cwd=inventory.parent,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.skipif(not ANSIBLE.exists(), reason="ansible-core is not installed next to this Python")
def test_same_hosts_as_ansible(inventory_file: Path, hosts: dict) -> None:
    theirs = _ansible_subset(inventory_file, PATTERNS)
    for pattern in PATTERNS:
        assert theirs[pattern], f"{pattern!r} selects nothing in Ansible; the list is of patterns that select"
        ours = select_hosts(hosts, pattern)
        assert sorted(ours) == sorted(theirs[pattern]) and len(ours) == len(set(ours)), pattern


@pytest.mark.skipif(not ANSIBLE.exists(), reason="ansible-core is not installed next to this Python")
def test_what_ansible_only_warns_about_is_an_error_here(inventory_file: Path, hosts: dict) -> None:
    patterns = ["sprak", "spark,sprak", "spark:&hopper", "spark:&rack1:!spark-01", "spark-0[12]", "!all"]
    theirs = _ansible_subset(inventory_file, patterns)
    assert theirs["spark,sprak"] == ["spark-01", "spark-02", "spark-03"]  # Ansible drops 'sprak' with a warning
    for pattern in patterns:
        if pattern != "spark,sprak":
            assert theirs[pattern] == [], pattern
        with pytest.raises(LimitError):
            select_hosts(hosts, pattern)


@pytest.mark.skipif(not ANSIBLE.exists(), reason="ansible-core is not installed next to this Python")
def test_the_ansible_command_agrees(inventory_file: Path, hosts: dict) -> None:
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0")
    proc = subprocess.run([str(ANSIBLE), "-i", str(inventory_file), "all", "--limit", "hopper:spark-03:&rack1",
                           "--list-hosts"], cwd=inventory_file.parent, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    listed = [line.strip() for line in proc.stdout.splitlines()[1:] if line.strip()]
    assert listed == ["h100-01"], proc.stdout
    assert select_hosts(hosts, "hopper:spark-03:&rack1") == listed
