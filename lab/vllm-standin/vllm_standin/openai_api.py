"""The OpenAI-compatible endpoints' logic (independent of the HTTP plumbing in server.py).

Each handler returns a JSON-able dict, or for `stream: true` an iterator of SSE `data:`
payloads (dicts, or the string "[DONE]"). Errors are raised as ApiError.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from vllm_standin import parsers, script, tokenizer
from vllm_standin.cli import THINK_TAG_PARSERS, TOOL_PARSERS, ServeConfig
from vllm_standin.context import output_budget
from vllm_standin.engine import Engine, EngineDeadError
from vllm_standin.errors import ApiError, bad_request, engine_dead, error_body
from vllm_standin.version import Version, has

AUTO_TOOL_ERROR = ('"auto" tool choice requires --enable-auto-tool-choice and '
                   "--tool-call-parser to be set")


def _engine_died_mid_stream():
    """Mid-stream failures arrive as an SSE error event after a 200, then [DONE], as in vLLM."""
    yield error_body(engine_dead().body["error"]["message"], "InternalServerError", 500)
    yield "[DONE]"


@dataclass
class App:
    config: ServeConfig
    engine: Engine
    version_text: str
    version: Version
    started: int

    @property
    def model_name(self) -> str:
        return self.config.served_model_names[0]

    # --- shared checks --------------------------------------------------------------
    def check_model(self, body: dict) -> None:
        model = body.get("model")
        if model is None or model in self.config.served_model_names:
            return
        message = f"The model `{model}` does not exist."
        if has(self.version, "model_not_found_aliases"):
            # GUESS: how the alias list is formatted after "Valid aliases:".
            message += f" Valid aliases: {', '.join(self.config.served_model_names)}."
        raise ApiError(404, message, "NotFoundError", param="model")

    @cached_property
    def system_fingerprint(self) -> str | None:
        """vLLM's default ("full") fingerprint: vllm-<version>[-tpN][-ppN]-<hash8>.

        Real vLLM hashes its whole config (vllm_config.compute_hash()); the stand-in hashes
        the flags it parsed, so the value is stable per configuration but not vLLM's.
        """
        if not has(self.version, "system_fingerprint"):
            return None
        args = vars(self.config.args)
        hash8 = hashlib.sha256(repr(sorted((k, repr(v)) for k, v in args.items()
                                           if k not in ("host", "port", "api_key")))
                               .encode()).hexdigest()[:8]
        parts = [f"vllm-{self.version_text}"]
        for flag, short in (("tensor_parallel_size", "tp"), ("pipeline_parallel_size", "pp")):
            size = args.get(flag) or 1
            if size > 1:
                parts.append(f"{short}{size}")
        return "-".join([*parts, hash8])

    @property
    def reasoning_active(self) -> bool:
        return self.config.reasoning_parser in THINK_TAG_PARSERS

    @property
    def auto_tools(self) -> bool:
        return self.config.enable_auto_tool_choice and self.config.tool_call_parser in TOOL_PARSERS

    # --- /v1/models, /tokenize ------------------------------------------------------
    def models(self) -> dict:
        data = []
        for name in self.config.served_model_names:
            data.append({
                "id": name, "object": "model", "created": self.started, "owned_by": "vllm",
                "root": self.config.model, "parent": None,
                "max_model_len": self.config.max_model_len,
                "permission": [{
                    "id": f"modelperm-{uuid.uuid4().hex}", "object": "model_permission",
                    "created": self.started, "allow_create_engine": False,
                    "allow_sampling": True, "allow_logprobs": True,
                    "allow_search_indices": False, "allow_view": True,
                    "allow_fine_tuning": False, "organization": "*", "group": None,
                    "is_blocking": False}],
            })
        return {"object": "list", "data": data}

    def tokenize(self, body: dict) -> dict:
        """No length check here, as in vLLM (lab-notes)."""
        self.check_model(body)
        if "messages" in body:
            kwargs = self._template_kwargs(body)
            text = tokenizer.render_chat(
                _messages(body), body.get("tools"), body.get("add_generation_prompt", True),
                kwargs.get("enable_thinking", True) is not False)
        elif "prompt" in body:
            text = str(body["prompt"])
        else:
            raise bad_request("Either `prompt` or `messages` must be given")  # GUESS: wording
        ids = tokenizer.encode(text)
        # GUESS: token_strs present as null unless return_token_strs (recent vLLM field).
        strs = tokenizer.pieces(text) if body.get("return_token_strs") else None
        return {"count": len(ids), "max_model_len": self.config.max_model_len,
                "tokens": ids, "token_strs": strs}

    def _template_kwargs(self, body: dict) -> dict:
        merged = dict(self.config.default_chat_template_kwargs)
        merged.update(body.get("chat_template_kwargs") or {})  # the request wins
        return merged

    # --- /v1/chat/completions -------------------------------------------------------
    def chat(self, body: dict):
        self.check_model(body)
        messages = _messages(body)
        thinking = self._template_kwargs(body).get("enable_thinking", True) is not False
        tools = body.get("tools") or None
        tool_choice = body.get("tool_choice")
        if tool_choice is None:
            tool_choice = "auto" if tools else "none"
        if tool_choice != "none" and not tools:
            raise bad_request("When using `tool_choice`, `tools` must be set.")  # GUESS: wording
        call = None
        finish_override = None
        if tools and tool_choice == "auto":
            if not self.auto_tools:
                raise bad_request(AUTO_TOOL_ERROR)
            call = script.tool_call_for(tools[0])
        elif tools and tool_choice == "required":
            call = script.tool_call_for(tools[0])
        elif tools and isinstance(tool_choice, dict):
            name = (tool_choice.get("function") or {}).get("name")
            match = [t for t in tools if (t.get("function") or {}).get("name") == name]
            if not match:
                raise bad_request(f"Tool '{name}' has not been passed in `tools`.")  # GUESS
            call = script.tool_call_for(match[0])
            finish_override = "stop"  # GUESS: named tool choice finishes with "stop"
        prompt = tokenizer.render_chat(messages, tools, body.get("add_generation_prompt", True),
                                       thinking)
        prompt_ids = tokenizer.encode(prompt)
        requested = _max_tokens(body)
        limit = output_budget(self.version, self.config.max_model_len, len(prompt_ids), requested)
        plan = script.chat_plan(thinking, call, limit, bool(body.get("ignore_eos")))
        if finish_override and plan.finish_reason == "tool_calls":
            plan.finish_reason = finish_override
        if self.engine.dead:
            raise engine_dead()  # vLLM checks `engine_client.errored` before generating
        parser = parsers.OutputParser(self.reasoning_active, thinking, call is not None)
        rid = f"chatcmpl-{uuid.uuid4().hex}"
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return self._chat_stream(rid, prompt_ids, plan, parser, include_usage,
                                     self._echo_prompt(body, prompt, prompt_ids))
        try:
            generated = 0
            for piece in self.engine.generate(prompt_ids, plan.pieces):
                parser.feed(piece)
                generated += 1
        except EngineDeadError:
            raise engine_dead() from None
        self.engine.record_finish(plan.finish_reason)
        reasoning, content, tool_calls = parser.finish()
        message = {"role": "assistant", "content": content, "refusal": None,
                   "annotations": None, "audio": None, "function_call": None,
                   "tool_calls": tool_calls}
        if not tool_calls and has(self.version, "empty_tool_calls_omitted"):
            del message["tool_calls"]
        message.update(self._reasoning_fields(reasoning))
        return {
            "id": rid, "object": "chat.completion", "created": int(time.time()),
            "model": self.model_name,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": plan.finish_reason, "stop_reason": None,
                         "token_ids": self._output_ids(body, plan.pieces[:generated]),
                         "routed_experts": None}],
            "service_tier": None, "system_fingerprint": self.system_fingerprint,
            "usage": self._usage(len(prompt_ids), generated, plan),
            "prompt_logprobs": None,
            # vLLM 0.32.0 sends these four (null unless asked for / no connector).
            # GUESS: since which versions; a client ignores extra nulls.
            **self._echo_prompt(body, prompt, prompt_ids),
            "kv_transfer_params": None, "ec_transfer_params": None,
            # GUESS: null also with speculative decoding (real vLLM may put acceptance stats here).
            "metrics": None,
        }

    @staticmethod
    def _output_ids(body: dict, pieces: list[str]) -> list[int] | None:
        """Generated token ids (EOS included) if return_token_ids, else null (vLLM 0.32.0)."""
        if not body.get("return_token_ids"):
            return None
        return [tokenizer.token_id(p) if p else tokenizer.SPECIAL_TOKENS[script.EOS]
                for p in pieces]

    @staticmethod
    def _echo_prompt(body: dict, prompt: str, prompt_ids: list[int]) -> dict:
        """prompt_token_ids / prompt_text: null unless return_token_ids / return_prompt_text."""
        return {"prompt_token_ids": prompt_ids if body.get("return_token_ids") else None,
                "prompt_text": prompt if body.get("return_prompt_text") else None}

    def _reasoning_fields(self, reasoning):
        """facts §Reasoning output: reasoning_content <0.11.1, both until 0.16, then reasoning."""
        fields = {}
        if has(self.version, "reasoning_field"):
            fields["reasoning"] = reasoning
        if not has(self.version, "reasoning_content_removed"):
            fields["reasoning_content"] = reasoning
        return fields

    def _usage(self, prompt_tokens: int, completion_tokens: int, plan: script.Plan | None) -> dict:
        details = None
        if plan is not None and self.config.reasoning_parser:
            # lab-notes (0.32): filled with any reasoning parser, else null (vLLM's UsageInfo).
            # GUESS: since which version.
            details = {"reasoning_tokens": plan.reasoning_tokens if self.reasoning_active else 0}
        return {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + completion_tokens,
                "completion_tokens": completion_tokens, "prompt_tokens_details": None,
                "completion_tokens_details": details}

    def _chat_stream(self, rid, prompt_ids, plan, parser, include_usage, echo) -> Iterator:
        created = int(time.time())
        fingerprint = self.system_fingerprint

        def chunk(delta: dict, finish: str | None = None, last: bool = False,
                  first: bool = False) -> dict:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            if last:
                choice["stop_reason"] = None
            if not first:
                # GUESS/unsupported: per-chunk ids with return_token_ids; always null here.
                choice["token_ids"] = None
            out = {"id": rid, "object": "chat.completion.chunk", "created": created,
                   "model": self.model_name, "choices": [choice]}
            if last and not include_usage and fingerprint is not None:
                # vLLM stamps the fingerprint on the final message only: the finish chunk,
                # or the usage chunk when one follows.
                out["system_fingerprint"] = fingerprint
            return out

        first = chunk({"role": "assistant", "content": ""}, first=True)
        yield {**first, **echo}  # the first chunk carries prompt_token_ids/prompt_text (null)
        generated = 0
        try:
            total = len(plan.pieces)
            for piece in self.engine.generate(prompt_ids, plan.pieces):
                generated += 1
                delta = parser.feed(piece)
                if delta is not None:
                    delta = self._stream_delta(delta)
                if generated < total:
                    if delta is not None:
                        yield chunk(delta)
                    continue
                if delta is None:
                    # The final token has no text (EOS): real vLLM 0.32.0 sends
                    # {"content": ""}, with or without a reasoning parser.
                    delta = {"content": ""}
                yield chunk(delta, plan.finish_reason, last=True)
        except EngineDeadError:
            yield from _engine_died_mid_stream()
            return
        self.engine.record_finish(plan.finish_reason)
        if include_usage:
            yield self._usage_chunk(rid, "chat.completion.chunk", created,
                                    self._usage(len(prompt_ids), generated, plan))
        yield "[DONE]"

    def _usage_chunk(self, rid: str, obj: str, created: int, usage: dict) -> dict:
        """The trailing usage chunk; vLLM serializes it without null fields."""
        out = {"id": rid, "object": obj, "created": created, "model": self.model_name,
               "choices": [], "usage": {k: v for k, v in usage.items() if v is not None}}
        if self.system_fingerprint is not None:
            out["system_fingerprint"] = self.system_fingerprint
        return out

    def _stream_delta(self, delta: dict) -> dict:
        if "reasoning" in delta:
            return self._reasoning_fields(delta["reasoning"])
        return delta

    # --- /v1/completions ------------------------------------------------------------
    def completion(self, body: dict):
        self.check_model(body)
        prompt = body.get("prompt")
        if isinstance(prompt, list):
            prompt = prompt[0] if prompt else ""
        if not isinstance(prompt, str):
            raise bad_request("`prompt` must be a string")  # GUESS: wording
        prompt_ids = tokenizer.encode(prompt)
        requested = _max_tokens(body)
        if requested is None:
            requested = 16  # OpenAI/vLLM default max_tokens for completions
        limit = output_budget(self.version, self.config.max_model_len, len(prompt_ids), requested)
        plan = script.completion_plan(prompt, limit, bool(body.get("ignore_eos")))
        if self.engine.dead:
            raise engine_dead()
        rid = f"cmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if body.get("stream"):
            return self._completion_stream(rid, created, prompt_ids, plan, body)
        try:
            text = "".join(self.engine.generate(prompt_ids, plan.pieces))
        except EngineDeadError:
            raise engine_dead() from None
        self.engine.record_finish(plan.finish_reason)
        n = len(plan.pieces)
        return {"id": rid, "object": "text_completion", "created": created,
                "model": self.model_name,
                "choices": [{"index": 0, "text": text, "logprobs": None,
                             "finish_reason": plan.finish_reason, "stop_reason": None,
                             "token_ids": self._output_ids(body, plan.pieces),
                             "prompt_logprobs": None,
                             "prompt_token_ids": prompt_ids if body.get("return_token_ids") else None,
                             "routed_experts": None}],
                "service_tier": None, "system_fingerprint": self.system_fingerprint,
                "usage": self._usage(len(prompt_ids), n, None),
                # GUESS: since which versions (real 0.32.0 sends them, null).
                "kv_transfer_params": None, "ec_transfer_params": None, "metrics": None}

    def _completion_stream(self, rid, created, prompt_ids, plan, body) -> Iterator:
        total = len(plan.pieces)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        fingerprint = self.system_fingerprint
        try:
            for i, piece in enumerate(self.engine.generate(prompt_ids, plan.pieces), 1):
                last = i == total
                out = {"id": rid, "object": "text_completion", "created": created,
                       "model": self.model_name,
                       "choices": [{"index": 0, "text": piece, "logprobs": None,
                                    "finish_reason": plan.finish_reason if last else None,
                                    "stop_reason": None,
                                    # GUESS/unsupported: filled with return_token_ids in vLLM.
                                    "prompt_token_ids": None, "token_ids": None}]}
                if last and not include_usage and fingerprint is not None:
                    out["system_fingerprint"] = fingerprint
                yield out
        except EngineDeadError:
            yield from _engine_died_mid_stream()
            return
        self.engine.record_finish(plan.finish_reason)
        if include_usage:
            yield self._usage_chunk(rid, "text_completion", created,
                                    self._usage(len(prompt_ids), total, None))
        yield "[DONE]"


def _messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        # GUESS: vLLM reports pydantic's validation error; the wording here is approximate.
        raise bad_request("1 validation error: messages: Field required (must be a list)")
    return messages


def _max_tokens(body: dict) -> int | None:
    value = body.get("max_completion_tokens")
    if value is None:
        value = body.get("max_tokens")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise bad_request(f"max_tokens must be at least 1, got {value}.", param="max_tokens")
    return value
