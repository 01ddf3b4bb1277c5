"""The runner service's credential: one per-deployment secret every caller but health must present.

Callers send gRPC metadata `authorization: Bearer <secret>`; a server interceptor compares it in
constant time and answers UNAUTHENTICATED otherwise. The secret comes from a file or the
environment in a deployment, or is generated when `serve` starts (the analyst service in the
same process is handed it; nothing else learns it).
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc

CREDENTIAL_ENV = "CSV_ANALYST_RUNNER_CREDENTIAL"
HEALTH_PREFIX = "/grpc.health.v1.Health/"
MIN_CREDENTIAL_LENGTH = 24


class CredentialError(ValueError):
    """A configured credential is unusable (missing file, too short)."""


def generate_credential() -> str:
    """A fresh random credential (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


def load_credential(path: Path | None = None, environ: dict[str, str] | None = None) -> str | None:
    """The configured credential: the file at `path` first, else $CSV_ANALYST_RUNNER_CREDENTIAL.

    Returns:
        The credential, or None when neither is configured (the caller generates one).

    Raises:
        CredentialError: When the file cannot be read or the credential is shorter than 24 characters.
    """
    environ = dict(os.environ) if environ is None else environ
    if path is not None:
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise CredentialError(f"cannot read the runner credential file {path}: {error.strerror}") from error
    else:
        value = environ.get(CREDENTIAL_ENV, "").strip()
        if not value:
            return None
    if len(value) < MIN_CREDENTIAL_LENGTH:
        raise CredentialError(f"the runner credential must be at least {MIN_CREDENTIAL_LENGTH} characters")
    return value


def bearer_of(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str:
    """The bearer token of `authorization` metadata, or "" when there is none."""
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return ""


class CredentialInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every call but health that does not carry the service credential."""

    def __init__(self, credential: str) -> None:
        self._expected = credential.encode()

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
                                handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        if handler_call_details.method.startswith(HEALTH_PREFIX):
            return await continuation(handler_call_details)
        presented = bearer_of(handler_call_details.invocation_metadata).encode()
        if hmac.compare_digest(presented, self._expected):
            return await continuation(handler_call_details)
        handler = await continuation(handler_call_details)
        return _refusal(handler)


_MESSAGE = "the runner service accepts only the analyst service (missing or wrong service credential)"


def _refusal(handler: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that aborts with UNAUTHENTICATED."""

    async def unary(request: object, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, _MESSAGE)

    async def streaming(request: object, context: grpc.aio.ServicerContext):  # type: ignore[no-untyped-def]
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, _MESSAGE)
        yield  # pragma: no cover - makes this an async generator

    if handler is None:
        return grpc.unary_unary_rpc_method_handler(unary)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(streaming, handler.request_deserializer, handler.response_serializer)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(unary, handler.request_deserializer, handler.response_serializer)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(streaming, handler.request_deserializer, handler.response_serializer)
    return grpc.unary_unary_rpc_method_handler(unary, handler.request_deserializer, handler.response_serializer)
