"""Generate Ansible inventories for the differential tests and the inventory benchmark.

`generate(root, hosts, seed, fmt)` writes a random but deterministic inventory directory that
exercises what decides variable precedence: nested groups 3-4 deep with several parents,
ansible_group_priority, the same variable overridden at many levels, group_vars as files of
every accepted extension and as directories, host_vars, host ranges and INI value parsing.
With `fleet=True` it writes a realistic vllm-fleet inventory instead (GPU groups under `gpu`).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Literal

Format = Literal["yaml", "ini"]

# Raw INI values chosen to hit ast.literal_eval's corners; host-line values must survive shlex.
_INI_VAR_VALUES = ["yes", "True", "1", "'1'", "0x10", "[1, 'a']", "{'k': [1, 2]}", "1.5", "None",
                   "010", "-3", "1e3", "hello world", "\"quoted\"", "a=b", "...", "1j", "plain"]
_INI_HOST_VALUES = ["yes", "True", "1", "'1'", "0x10", "[1,2]", "\"{'k': 1}\"", "1.5", "None",
                    "010", "-3", "\"x y\"", "a=b", "a#b", "plain", "b'z'"]
_VAR_NAMES = [f"v{i}" for i in range(8)]

# vllm-fleet GPU groups: (group, host prefix, share of hosts, cpu arch, gpu facts, count).
FLEET_GROUPS: list[tuple[str, str, float, str, dict[str, Any]]] = [
    ("hopper", "h100", 0.50, "x86_64",
     {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "memory_mib": 81559, "count": 8}),
    ("blackwell", "b200", 0.25, "x86_64",
     {"name": "NVIDIA B200", "compute_capability": "10.0", "memory_mib": 183359, "count": 8}),
    ("spark", "spark", 0.15, "aarch64",
     # DGX Spark: unified memory, reported as the GB10's share of system memory
     {"name": "NVIDIA GB10", "compute_capability": "12.1", "memory_mib": 122880, "count": 1}),
    ("fallback", "a100", 0.10, "x86_64",
     {"name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0", "memory_mib": 81920, "count": 2}),
]
FLEET_SITES = ("dc_east", "dc_west")


def generate(root: Path, hosts: int, seed: int, fmt: Format, fleet: bool = False) -> Path:
    """Write an inventory directory under `root` and return its path (pass it to `-i`)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if fleet:
        _write_fleet(root, hosts, random.Random(seed), fmt)
    else:
        _RandomInventory(root, hosts, random.Random(seed), fmt).write()
    return root


# --------------------------------------------------------------------------- random inventories


def _yaml_scalar(value: Any) -> str:
    return json.dumps(value)  # JSON scalars/flow collections are valid YAML


class _RandomInventory:
    def __init__(self, root: Path, hosts: int, rng: random.Random, fmt: Format) -> None:
        self.root, self.n_hosts, self.rng, self.fmt = root, hosts, rng, fmt
        self.levels: list[list[str]] = []
        self.parents: dict[str, list[str]] = {}
        self.members: dict[str, list[str]] = {}  # group -> host patterns listed under it

    def value(self) -> Any:
        rng = self.rng
        kind = rng.randrange(7)
        if kind == 0:
            return rng.randrange(-5, 100)
        if kind == 1:
            return rng.choice([True, False, None])
        if kind == 2:
            return [rng.randrange(10), f"s{rng.randrange(10)}"]
        if kind == 3:
            return {"a": rng.randrange(10), "b": {"c": f"x{rng.randrange(5)}"}}
        if kind == 4:
            return rng.random().__round__(3)
        return f"str-{rng.randrange(1000)}"

    def some_vars(self, k: int) -> dict[str, Any]:
        return {name: self.value() for name in self.rng.sample(_VAR_NAMES, k)}

    def build_groups(self) -> None:
        rng = self.rng
        depth = rng.choice([3, 4])
        widths = [rng.randint(2, 3)] + [rng.randint(3, 5) for _ in range(depth - 1)]
        for level, width in enumerate(widths):
            # one dashed name: Ansible keeps it (with a warning) in YAML and INI alike
            names = [f"g{level}-{i}" if (level, i) == (1, 1) else f"g{level}_{i}" for i in range(width)]
            self.levels.append(names)
            for name in names:
                if level == 0:
                    self.parents[name] = []
                else:
                    # several parents, sometimes skipping a level so depths differ per path
                    pool = self.levels[level - 1] + (self.levels[level - 2] if level >= 2 and rng.random() < 0.3 else [])
                    self.parents[name] = rng.sample(pool, k=min(len(pool), rng.choice([1, 1, 2, 3])))

    def assign_hosts(self) -> None:
        rng = self.rng
        groups = [g for level in self.levels for g in level]
        for group in groups:
            self.members[group] = []
        self.members["ungrouped"] = []
        self.host_names: list[str] = []
        i = 0
        while i < self.n_hosts:
            if rng.random() < 0.15 and self.n_hosts - i >= 3:  # a host range
                count = rng.randint(2, 3)
                pattern = f"r{i:03d}x[1:{count}]"
                names = [f"r{i:03d}x{j}" for j in range(1, count + 1)]
            else:
                pattern, names = f"host{i:03d}", [f"host{i:03d}"]
            i += len(names)
            self.host_names += names
            targets = rng.sample(groups, k=rng.choice([1, 1, 2, 3]))
            if rng.random() < 0.05:
                targets = ["ungrouped"]
            for group in targets:
                self.members[group].append(pattern)

    def write(self) -> None:
        self.build_groups()
        self.assign_hosts()
        if self.fmt == "yaml":
            name = self.rng.choice(["hosts.yml", "hosts.yaml", "hosts"])
            (self.root / name).write_text(self.yaml_text())
        else:
            name = self.rng.choice(["hosts.ini", "hosts"])
            (self.root / name).write_text(self.ini_text())
        if self.rng.random() < 0.5:  # a second source in the other format, read after the first
            extra = self.ini_extra() if self.fmt == "yaml" else self.yaml_extra()
            (self.root / ("zz_extra.ini" if self.fmt == "yaml" else "zz_extra.yml")).write_text(extra)
        (self.root / "README.md").write_text("ignored by Ansible: .md is in INVENTORY_IGNORE_EXTS\n")
        self.write_group_vars()
        self.write_host_vars()

    # -- main inventory files

    def group_priority(self) -> dict[str, int]:
        return {"ansible_group_priority": self.rng.randint(1, 10)} if self.rng.random() < 0.4 else {}

    def yaml_text(self) -> str:
        rng = self.rng
        lines = ["all:", "  vars:"]
        lines += [f"    {k}: {_yaml_scalar(v)}" for k, v in self.some_vars(3).items()]
        lines += ["  children:"]
        lines += ["    ungrouped:", "      hosts:"] + [f"        {p}:" for p in self.members["ungrouped"]] if self.members["ungrouped"] else []
        for level in self.levels:
            for group in level:
                lines.append(f"    {group}:")
                gvars = self.some_vars(rng.randint(0, 3)) | self.group_priority()
                if gvars:
                    lines.append("      vars:")
                    lines += [f"        {k}: {_yaml_scalar(v)}" for k, v in gvars.items()]
                children = [c for c, ps in self.parents.items() if group in ps]
                if children:
                    lines.append("      children:")
                    lines += [f"        {c}:" for c in children]
                if self.members[group]:
                    lines.append("      hosts:")
                    for pattern in self.members[group]:
                        hvars = self.some_vars(rng.randint(0, 2))
                        if rng.random() < 0.1:
                            hvars["ansible_port"] = rng.choice([22, 2222])
                        if hvars:
                            lines.append(f'        "{pattern}": {json.dumps(hvars)}')
                        else:
                            lines.append(f'        "{pattern}":')
        if rng.random() < 0.5:
            lines += ["    empty_group:", "    str_children:", "      children: g0_0"]
        return "\n".join(lines) + "\n"

    def ini_text(self) -> str:
        rng = self.rng
        lines = ["# generated INI inventory"]
        lines += [self.ini_host_line(p) for p in self.members["ungrouped"]]
        groups = [g for level in self.levels for g in level]
        # declare children before their groups sometimes, to exercise forward references
        rng.shuffle(groups)
        for group in groups:
            children = [c for c, ps in self.parents.items() if group in ps]
            if children:
                lines += ["", f"[{group}:children]"] + children
            lines += ["", f"[{group}]"] + [self.ini_host_line(p) for p in self.members[group]]
            gvars = self.ini_group_vars() | {k: str(v) for k, v in self.group_priority().items()}
            if gvars:
                lines += [f"[{group}:vars]"] + [f"{k} = {v}" for k, v in gvars.items()]
        lines += ["", "[all:vars]"] + [f"{k}={v}" for k, v in self.ini_group_vars().items()]
        return "\n".join(lines) + "\n"

    def ini_group_vars(self) -> dict[str, str]:
        return {k: self.rng.choice(_INI_VAR_VALUES) for k in self.rng.sample(_VAR_NAMES, self.rng.randint(0, 3))}

    def ini_host_line(self, pattern: str) -> str:
        rng = self.rng
        parts = [pattern + (":2200" if rng.random() < 0.05 else "")]
        parts += [f"{k}={rng.choice(_INI_HOST_VALUES)}" for k in rng.sample(_VAR_NAMES, rng.randint(0, 3))]
        line = " ".join(parts)
        return line + ("  # trailing comment" if rng.random() < 0.1 else "")

    def ini_extra(self) -> str:
        group = self.rng.choice(self.levels[-1])
        return (f"[{group}]\nhost000 v0=from_extra_ini\nextra[a:c]\n[{group}:vars]\nv1 = 'extra'\n"
                f"[late:children]\n{group}\n[late]\n")

    def yaml_extra(self) -> str:
        group = self.rng.choice(self.levels[-1])
        return (f"{group}:\n  hosts:\n    host000: {{v0: from_extra_yaml}}\n    'extra[a:c]':\n"
                f"  vars: {{v1: extra}}\nlate:\n  children:\n    {group}:\n")

    # -- group_vars / host_vars

    def write_vars_file(self, base: Path, name: str, data: dict[str, Any]) -> None:
        """Write `data` as NAME.yml/.yaml/.json/NAME or a NAME/ directory of several files."""
        rng = self.rng
        style = rng.choice(["yml", "yaml", "json", "bare", "dir", "dir"])
        base.mkdir(exist_ok=True)
        if style == "json":
            (base / f"{name}.json").write_text(json.dumps(data, indent=1))
        elif style == "dir":
            d = base / name
            d.mkdir(exist_ok=True)
            items = list(data.items())
            cut = len(items) // 2
            (d / "10-first.yml").write_text(_yaml_lines(dict(items[:cut]) | {"dir_shared": "first"}))
            (d / "20-second").write_text(_yaml_lines(dict(items[cut:]) | {"dir_shared": "second"}))
            (d / "30-ignored.txt").write_text("dir_shared: ignored-txt\n")
            (d / "40-backup.yml~").write_text("dir_shared: ignored-backup\n")
            sub = d / "sub"
            sub.mkdir(exist_ok=True)
            (sub / "x.yaml").write_text("dir_nested: 1\n")
            # a file next to the directory is shadowed by it
            (base / f"{name}.yml").write_text("dir_shadowed: 1\n")
        else:
            fname = {"yml": f"{name}.yml", "yaml": f"{name}.yaml", "bare": name}[style]
            (base / fname).write_text(_yaml_lines(data))
            if style == "yml" and rng.random() < 0.5:  # .yaml is never read when .yml exists
                (base / f"{name}.yaml").write_text("shadowed_yaml: 1\n")

    def write_group_vars(self) -> None:
        rng = self.rng
        gv = self.root / "group_vars"
        all_vars = self.some_vars(3) | {"unsafe_tpl": _Raw("!unsafe '{{ not_templated }}'")}
        if rng.random() < 0.5:
            all_vars["secret"] = _Raw("!vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162636465")
        self.write_vars_file(gv, "all", all_vars)
        for level in self.levels:
            for group in level:
                if rng.random() < 0.7:
                    data = self.some_vars(rng.randint(1, 4))
                    if rng.random() < 0.15:  # only a plain var here: priority comes from inventory files
                        data["ansible_group_priority"] = 50
                    self.write_vars_file(gv, group, data)
        (gv / "no_such_group.yml").write_text("v0: never-read\n")
        (gv / "ungrouped.yml").write_text(_yaml_lines({"v7": "from-ungrouped-gv"}))

    def write_host_vars(self) -> None:
        hv = self.root / "host_vars"
        hv.mkdir(exist_ok=True)
        for name in self.rng.sample(self.host_names, k=max(1, len(self.host_names) // 8)):
            self.write_vars_file(hv, name, self.some_vars(2))
        (hv / "empty_host.yml").write_text("")


class _Raw(str):
    """A YAML fragment written verbatim (tags such as !vault)."""


def _yaml_lines(data: dict[str, Any]) -> str:
    out = []
    for key, value in data.items():
        if isinstance(value, _Raw):
            out.append(f"{key}: {value}")
        else:
            out.append(f"{key}: {_yaml_scalar(value)}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- fleet inventory


def _fleet_hosts(hosts: int) -> list[tuple[str, str, list[str]]]:
    """(group, host prefix, host names) spread by FLEET_GROUPS shares, remainder to hopper."""
    counts = [int(hosts * share) for _, _, share, _, _ in FLEET_GROUPS]
    counts[0] += hosts - sum(counts)
    return [(g, prefix, [f"{prefix}-{i:05d}" for i in range(1, n + 1)])
            for (g, prefix, _, _, _), n in zip(FLEET_GROUPS, counts)]


def _write_fleet(root: Path, hosts: int, rng: random.Random, fmt: Format) -> None:
    spread = _fleet_hosts(hosts)
    gv, hv = root / "group_vars", root / "host_vars"
    gv.mkdir(exist_ok=True)
    hv.mkdir(exist_ok=True)
    (gv / "all.yml").write_text(
        "ansible_user: vllm\n"
        "ansible_python_interpreter: /usr/bin/python3\n"
        "vllm_fleet_driver_branch: 580\n"
    )
    for group, _, _, arch, gpu in FLEET_GROUPS:
        d = gv / group
        d.mkdir(exist_ok=True)
        (d / "main.yml").write_text(
            f"vllm_fleet_profile: {group}\n"
            f"vllm_fleet_cpu_arch: {arch}\n"
            "vllm_fleet_gpu:\n"
            f"  name: {gpu['name']}\n"
            f"  compute_capability: \"{gpu['compute_capability']}\"\n"
            f"  memory_mib: {gpu['memory_mib']}\n"
            f"  count: {gpu['count']}\n"
            "vllm_fleet_driver_branch: 580\n"
        )
    # ~1% per-host exceptions: a degraded box with fewer GPUs, or a driver pinned back (some
    # of them real faults, so the benchmark also times the reporting path)
    everyone = [(g, name) for g, _, names in spread for name in names]
    for group, name in rng.sample(everyone, k=max(1, len(everyone) // 100)):
        gpu = dict(next(f[4] for f in FLEET_GROUPS if f[0] == group))
        if rng.random() < 0.5:
            gpu["count"] = max(1, gpu["count"] // 2)
            (hv / f"{name}.yml").write_text(
                "vllm_fleet_gpu:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in gpu.items())
            )
        else:
            (hv / f"{name}.yml").write_text("vllm_fleet_driver_branch: 570\n")
    if fmt == "yaml":
        (root / "hosts.yml").write_text(_fleet_yaml(spread))
    else:
        (root / "hosts.ini").write_text(_fleet_ini(spread))


def _address(index: int) -> str:
    return f"10.{20 + index // 65536}.{index // 256 % 256}.{index % 256}"


def _site_ranges(spread: list[tuple[str, str, list[str]]]) -> dict[str, list[str]]:
    """First half of each GPU group in dc_east, the rest in dc_west, as host ranges."""
    sites: dict[str, list[str]] = {s: [] for s in FLEET_SITES}
    for _, prefix, names in spread:
        half = len(names) // 2
        if half:
            sites["dc_east"].append(f"{prefix}-[00001:{half:05d}]")
        if len(names) > half:
            sites["dc_west"].append(f"{prefix}-[{half + 1:05d}:{len(names):05d}]")
    return sites


def _fleet_yaml(spread: list[tuple[str, str, list[str]]]) -> str:
    lines = ["all:", "  children:", "    gpu:", "      children:"]
    index = 0
    for group, _, names in spread:
        lines += [f"        {group}:", "          hosts:"]
        for name in names:
            lines.append(f"            {name}: {{ansible_host: {_address(index)}}}")
            index += 1
    lines += ["    sites:", "      children:"]
    for site, ranges in _site_ranges(spread).items():
        lines += [f"        {site}:", "          hosts:"] + [f'            "{r}":' for r in ranges]
    return "\n".join(lines) + "\n"


def _fleet_ini(spread: list[tuple[str, str, list[str]]]) -> str:
    lines = ["[gpu:children]"] + [g for g, _, _ in spread]
    index = 0
    for group, _, names in spread:
        lines += ["", f"[{group}]"]
        for name in names:
            lines.append(f"{name} ansible_host={_address(index)}")
            index += 1
    lines += ["", "[sites:children]", *FLEET_SITES]
    for site, ranges in _site_ranges(spread).items():
        lines += ["", f"[{site}]", *ranges]
    return "\n".join(lines) + "\n"
