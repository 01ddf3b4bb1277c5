"""One gRPC method handler in place of another, of the same shape (unary or streaming, either way)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

_MAKERS = {(False, False): grpc.unary_unary_rpc_method_handler, (True, False): grpc.stream_unary_rpc_method_handler,
           (False, True): grpc.unary_stream_rpc_method_handler, (True, True): grpc.stream_stream_rpc_method_handler}


def same_shape(handler: grpc.RpcMethodHandler, behavior: Callable[..., Any]) -> grpc.RpcMethodHandler:
    """A handler with `handler`'s shape and (de)serializers that runs `behavior`."""
    make = _MAKERS[(handler.request_streaming, handler.response_streaming)]
    return make(behavior, handler.request_deserializer, handler.response_serializer)
