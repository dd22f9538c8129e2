"""What a host serves: the profile catalogue and its overrides (`profiles`), what each vLLM
release accepts (`releases`), the `vllm serve` arguments (`args`), the instances of a host
(`instances`), the addresses it listens and is probed on (`addresses`), and the one resolved
view of a host that lint, the roles, smoke and the watchdog all read (`host`, `manifest`)."""
