"""vllm-fleet: fleet configuration and validation for serving Qwen3.6-35B-A3B-NVFP4 with vLLM.

Sub-packages by concern: `serving` (profiles, vLLM arguments, instances, addresses: what a host
serves), `rules` (the schema and the serving rules, for lint and preflight), `inventory`
(reading Ansible inventories as Ansible does), `lint` (the command and its output), `smoke`
(the post-deploy suite and its runner) and `bench` (the load benchmark).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vllm-fleet")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
