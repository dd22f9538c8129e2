"""`vllm-fleet lint`: the fleet hosts of an inventory held to the schema and the serving rules,
every problem at once with file, line, host and variable (`run`), printed for people, tools or
GitHub Actions (`output`).

Which hosts are fleet hosts (`membership`); one host's variables judged (`check`), with the
rules that a broken or unknown value silences (`inputs`) and the values lint cannot know:
Jinja templates and vault-encrypted ones (`unknown`).
"""
