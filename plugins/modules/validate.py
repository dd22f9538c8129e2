#!/usr/bin/python
# -*- coding: utf-8 -*-
# The work is done by the action plugin of the same name (plugins/action/validate.py), on the
# controller; this file holds the documentation ansible-doc and ansible-lint read.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: validate
short_description: Hold the play's hosts to vllm-fleet's inventory schema and serving rules
description:
  - Runs on the controller, in-process, on the variables Ansible resolved for each host (vault
    values decrypted, templates rendered), with the same checks as C(vllm-fleet lint).
  - A fleet host is a host with C(vllm_fleet_profile); the others are left alone and not listed.
  - Fails when a fleet host has an error (or a warning, with I(strict)); every problem of every
    host is in C(msg) at once.
options:
  hosts:
    description: Hosts to check. Default, the play's hosts.
    type: list
    elements: str
  strict:
    description: Warnings fail too.
    type: bool
    default: false
author:
  - vllm-fleet
"""

EXAMPLES = r"""
- name: Validate the inventory
  vllm_fleet.fleet.validate:
  run_once: true
  register: validation
"""

RETURN = r"""
fleet_hosts:
  description: The checked hosts that are fleet hosts (they have a vllm_fleet_profile).
  type: list
  elements: str
  returned: always
problems:
  description: One line per problem, host, variable, severity, rule and message.
  type: list
  elements: str
  returned: always
"""
