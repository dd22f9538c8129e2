"""Reading Ansible inventories as Ansible 2.19 does, fast enough for 10,000 hosts, with a line
locator for lint.

`ansible-inventory` pays a large fixed start-up and then merges variables host by host. The
lint only needs the *result* of that merge, so this package re-implements the parts of
ansible-core that decide it (read from the 2.19 sources, not guessed), one module each:

* `sources`: which files of a source are inventories and which plugin reads each (the entry
  point, `load_inventory`);
* `yaml_read` (with its fast path `yaml_fast`), `yaml_inventory`, `ini`, `ranges`: the `yaml`
  and `ini` inventory plugins, Ansible's YAML tags and host patterns;
* `vars_dirs`: `group_vars/` and `host_vars/` next to each source (`host_group_vars`);
* `data` and `resolve`: groups, hosts and the precedence that merges their variables;
* `json_source`: `ansible-inventory --list` output read back (`--from-json`);
* `locate`: the line of a variable, for lint's output;
* `model`: what all of them produce.
"""

from vllm_fleet.inventory.json_source import load_inventory_json
from vllm_fleet.inventory.locate import locate
from vllm_fleet.inventory.model import Inventory, InventoryError, ResolvedHost, VaultValue
from vllm_fleet.inventory.sources import load_inventory

__all__ = ["Inventory", "InventoryError", "ResolvedHost", "VaultValue", "load_inventory", "load_inventory_json",
           "locate"]
