"""The only place an AnalystError becomes a rich google.rpc.Status."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from analyst_service.errors import AnalystError

DOMAIN = "analyst.csv-analyst"


def to_status(error: AnalystError) -> grpc.Status:
    """Return the gRPC status for error: ErrorInfo always, BadRequest for field violations,
    ResourceInfo for NOT_FOUND and RetryInfo for UNAVAILABLE."""
    details: list[object] = [error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=error.metadata)]
    if error.violations:
        details.append(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in error.violations]))
    if error.status_code == grpc.StatusCode.NOT_FOUND:
        details.append(error_details_pb2.ResourceInfo(
            resource_type=error.metadata.get("resource_type", ""), resource_name=error.metadata.get("name", ""),
            description=error.message))
    if error.status_code == grpc.StatusCode.UNAVAILABLE:
        details.append(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=1)))
    packed = []
    for detail in details:
        item = any_pb2.Any()
        item.Pack(detail)  # type: ignore[arg-type]
        packed.append(item)
    return rpc_status.to_status(status_pb2.Status(
        code=getattr(code_pb2, error.status_code.name), message=error.message, details=packed))
