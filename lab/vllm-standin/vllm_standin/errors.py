"""vLLM's OpenAI-style error bodies: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations


class ApiError(Exception):
    """Raised by request handlers; the HTTP layer turns it into a JSON error response."""

    def __init__(self, status: int, message: str, err_type: str = "BadRequestError",
                 param: str | None = None, body: dict | None = None):
        super().__init__(message)
        self.status = status
        self.body = body if body is not None else error_body(message, err_type, status, param)


def error_body(message: str, err_type: str, code: int, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": err_type, "param": param, "code": code}}


def bad_request(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, "BadRequestError", param)


def engine_dead() -> ApiError:
    # Shape from vLLM issue #24495 (0.10.1.1 said type "Internal Server Error");
    # GUESS: newer releases use "InternalServerError" (vLLM's GenerationError path does).
    from vllm_standin.engine import ENGINE_DEAD_MESSAGE
    return ApiError(500, ENGINE_DEAD_MESSAGE, "InternalServerError")
