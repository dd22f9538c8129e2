"""`vllm-fleet smoke`: the post-deploy smoke suite (package data in `suite/`, plain pytest) run
in-process against one instance (`runner`), its options declared once (`options`), its
expectations from flags, a manifest or an inventory host (`target`), and the parsers it shares
with the benchmark (`parsers`)."""
