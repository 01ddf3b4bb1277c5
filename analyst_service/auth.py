"""Client API keys of the analyst service: a key file of hashes, a server interceptor, roles.

A key is shown once when it is created (`csv-analyst keys add`); the key file keeps only its
SHA-256, a name and a role, one line each: `sha256:<hex> <name> [user|operator]`. Keys are 256
random bits, so a plain SHA-256 is enough to make a stolen file useless. Callers send
`authorization: Bearer <key>`. Health and reflection (the public contract) need no key; every
other RPC answers UNAUTHENTICATED without a valid one. Operators may read a run's internal
detail (sandbox stdout/stderr, runner diagnostics); users may not.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc

from analyst_service.rpc_handlers import same_shape

KEY_PREFIX = "csva_"
ROLES = ("user", "operator")
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                   "/grpc.reflection.v1.ServerReflection/")
_LINE = re.compile(r"^sha256:(?P<digest>[0-9a-f]{64})\s+(?P<name>[A-Za-z0-9_.@-]{1,64})(?:\s+(?P<role>user|operator))?$")


class KeyFileError(ValueError):
    """The API key file cannot be read or has a malformed line."""


@dataclass(frozen=True)
class ApiKey:
    """One accepted key: its digest, a name for logs, and its role."""

    digest: bytes
    name: str
    role: str = "user"


def new_key() -> str:
    """A fresh API key (shown to its owner once, never stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest_of(key: str) -> bytes:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).digest()


def key_file_line(key: str, name: str, role: str = "user") -> str:
    """The key file line for a key."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", name):
        raise ValueError("a key name is 1-64 letters, digits or . _ @ -")
    return f"sha256:{digest_of(key).hex()} {name} {role}"


def load_key_file(path: Path) -> list[ApiKey]:
    """Read a key file (blank lines and `#` comments allowed).

    Raises:
        KeyFileError: When the file cannot be read or a line is malformed.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise KeyFileError(f"cannot read the API key file {path}: {error.strerror}") from error
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise KeyFileError(f"{path}:{number}: expected `sha256:<64 hex digits> <name> [user|operator]`")
        keys.append(ApiKey(bytes.fromhex(match["digest"]), match["name"], match["role"] or "user"))
    return keys


class KeyRing:
    """The accepted keys; an empty ring accepts every caller (as a user)."""

    def __init__(self, keys: Iterable[ApiKey] = ()) -> None:
        self._keys = tuple(keys)

    @property
    def enabled(self) -> bool:
        """Whether callers must present a key."""
        return bool(self._keys)

    def with_key(self, key: ApiKey) -> KeyRing:
        """A ring that also accepts `key`."""
        return KeyRing((*self._keys, key))

    def find(self, presented: str) -> ApiKey | None:
        """The key matching `presented` (every stored digest compared in constant time), or None."""
        if not presented:
            return None
        digest = digest_of(presented)
        found = None
        for key in self._keys:
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found

    def role_of(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
        """The caller's role: `operator` only for an operator key; `user` otherwise."""
        key = self.find(bearer_of(metadata))
        return key.role if key is not None else "user"


def bearer_of(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The bearer token of `authorization` metadata, or "" when there is none."""
    for name, value in metadata or ():
        if name == "authorization":
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return ""


_REFUSAL = "a valid API key is required: send `authorization: Bearer <key>` (ask the operator for a key)"


class ApiKeyInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls without a valid key when the ring has keys (health and reflection are public)."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
                                handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if not self._ring.enabled or handler_call_details.method.startswith(PUBLIC_PREFIXES):
            return handler
        if self._ring.find(bearer_of(handler_call_details.invocation_metadata)) is not None:
            return handler
        return refusal_handler(handler, grpc.StatusCode.UNAUTHENTICATED, _REFUSAL)


def refusal_handler(handler: grpc.RpcMethodHandler | None, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that aborts with `code`."""

    async def unary(request: object, context: grpc.aio.ServicerContext) -> None:
        await context.abort(code, message)

    async def streaming(request: object, context: grpc.aio.ServicerContext):  # type: ignore[no-untyped-def]
        await context.abort(code, message)
        yield  # pragma: no cover - makes this an async generator

    if handler is None:
        return grpc.unary_unary_rpc_method_handler(unary)
    return same_shape(handler, streaming if handler.response_streaming else unary)


def bearer_interceptors(secret: str) -> list[grpc.aio.ClientInterceptor]:
    """Client interceptors that add `authorization: Bearer <secret>` to every call of a channel.

    One object per call shape: grpc.aio files each interceptor under the first shape it matches.
    """
    header = ("authorization", f"Bearer {secret}")

    def with_header(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata.add(*header)
        return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                          details.wait_for_ready)

    class UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
        async def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
            return await continuation(with_header(client_call_details), request)

    class UnaryStream(grpc.aio.UnaryStreamClientInterceptor):
        async def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
            return await continuation(with_header(client_call_details), request)

    class StreamUnary(grpc.aio.StreamUnaryClientInterceptor):
        async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
            return await continuation(with_header(client_call_details), request_iterator)

    class StreamStream(grpc.aio.StreamStreamClientInterceptor):
        async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
            return await continuation(with_header(client_call_details), request_iterator)

    return [UnaryUnary(), UnaryStream(), StreamUnary(), StreamStream()]
