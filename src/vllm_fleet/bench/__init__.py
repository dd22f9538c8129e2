"""`vllm-fleet bench`: a streaming load sweep of one instance (`load`), its plot (`plot`)."""
