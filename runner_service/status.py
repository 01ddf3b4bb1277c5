"""The only place runner-service errors become rich google.rpc.Status values."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "runner.csv-analyst"


def rich_status(code: grpc.StatusCode, reason: str, message: str, metadata: dict[str, str] | None = None,
                retry_seconds: float | None = None) -> grpc.Status:
    """Build a status with an ErrorInfo (and a RetryInfo when a retry can work)."""
    details = [error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata or {})]
    if retry_seconds is not None:
        details.append(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(nanos=int(retry_seconds * 1e9))))
    packed = []
    for detail in details:
        item = any_pb2.Any()
        item.Pack(detail)
        packed.append(item)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=packed)
    return rpc_status.to_status(status)
