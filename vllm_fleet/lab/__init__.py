"""The vllm-fleet lab: GPU-host stand-ins in Docker (systemd, sshd, stand-in nvidia-smi), apt
mirrors laid out like NVIDIA's with stand-in packages, and a registry with a vLLM stand-in image.

Entry points: `vllm_fleet.lab.cli.register` (adds `vllm-fleet lab up|down|status`) and
`python -m vllm_fleet.lab`. The lab's notes on what works on the build VM: /work/shared/lab-notes.md.
"""
