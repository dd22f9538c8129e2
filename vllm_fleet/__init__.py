"""vllm-fleet: fleet configuration and validation for serving Qwen3.6-35B-A3B-NVFP4 with vLLM."""
