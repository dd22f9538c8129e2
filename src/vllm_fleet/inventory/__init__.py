"""Reading Ansible inventories as Ansible 2.19 does (sources, YAML and INI, host patterns,
group and host vars, precedence), fast enough for 10,000 hosts, with a line locator for lint."""

from vllm_fleet.inventory.reader import (Inventory, InventoryError, ResolvedHost, VaultValue, load_inventory,
                                         load_inventory_json, locate)

__all__ = ["Inventory", "InventoryError", "ResolvedHost", "VaultValue", "load_inventory", "load_inventory_json",
           "locate"]
