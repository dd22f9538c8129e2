"""`vllm-fleet lint`: the fleet hosts of an inventory held to the schema and the serving rules,
every problem at once with file, line, host and variable (`run`), printed for people, tools or
GitHub Actions (`output`)."""
