"""Context-length validation, by emulated vLLM version.

Up to 0.17 (the stand-in: below 0.20): prompt + max_tokens over the limit is a 400 from the
OpenAI serving layer. 0.20 ... 0.31: still a 400, from the renderer (wheel vllm/renderers/
params.py _token_len_check, 0.28.0 lines 436-459). Since 0.32: max_tokens is clamped to what is
left; 400 only if the prompt alone or max_tokens alone exceeds max_model_len (measured on real
0.32.0, with the "(parameter=..., value=...)" suffix and "at least").
"""

from __future__ import annotations

from vllm_standin.errors import bad_request
from vllm_standin.version import Version, has


def output_budget(version: Version, max_model_len: int, prompt_len: int,
                  max_tokens: int | None) -> int:
    """Validate; return how many tokens the request may generate. Raises ApiError(400)."""
    if has(version, "clamp_max_tokens"):
        # GUESS: which check fires first when both fail, and whether 0.20-0.31 already had
        # "at least" and the "(parameter=...)" suffix; the 0.32.0 text is used throughout.
        if prompt_len >= max_model_len:
            raise bad_request(
                f"This model's maximum context length is {max_model_len} tokens. However, your "
                f"prompt contains at least {prompt_len} input tokens, which exceeds this limit "
                "even without any output tokens. Please reduce the length of the input prompt. "
                f"(parameter=input_tokens, value={prompt_len})", param="input_tokens")
        if max_tokens is not None and max_tokens > max_model_len:
            raise bad_request(
                f"max_tokens={max_tokens} cannot be greater than max_model_len={max_model_len}. "
                f"Please request fewer output tokens. (parameter=max_tokens, value={max_tokens})",
                param="max_tokens")
        left = max_model_len - prompt_len
        return left if max_tokens is None else min(max_tokens, left)
    if has(version, "renderer_context_check"):
        if prompt_len >= max_model_len or (max_tokens is not None and prompt_len + max_tokens > max_model_len):
            requested = max_tokens or 0
            # GUESS: the prompt-alone case takes this wording too (requested 0 output tokens).
            raise bad_request(
                f"This model's maximum context length is {max_model_len} tokens. However, you requested "
                f"{requested} output tokens and your prompt contains {prompt_len} input tokens, for a total of "
                f"{prompt_len + requested} tokens. Please reduce the length of the input prompt or the number "
                f"of requested output tokens. (parameter=input_tokens, value={prompt_len})", param="input_tokens")
        return max_model_len - prompt_len if max_tokens is None else max_tokens
    if prompt_len >= max_model_len:
        # GUESS: param of this older error (facts give only the message).
        raise bad_request(
            f"This model's maximum context length is {max_model_len} tokens. However, your "
            f"request has {prompt_len} input tokens. Please reduce the length of the input "
            "messages.")
    if max_tokens is not None and prompt_len + max_tokens > max_model_len:
        raise bad_request(
            f"'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This model's "
            f"maximum context length is {max_model_len} tokens and your request has "
            f"{prompt_len} input tokens ({max_tokens} > {max_model_len} - {prompt_len}).",
            param="max_tokens")
    return max_model_len - prompt_len if max_tokens is None else max_tokens
