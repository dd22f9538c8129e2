"""vllm-fleet's lab: GPU-host stand-ins in Docker (systemd, sshd, stand-in nvidia-smi), apt
mirrors laid out like NVIDIA's with stand-in packages, and a registry with a vLLM stand-in image.
Test doubles for the repository's tests; never installed for users (see README.md here)."""
