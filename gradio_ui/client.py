"""A small synchronous gRPC client of the analyst service, the only UI module touching stubs.

Every RPC error becomes an `AnalystClientError` carrying a short user-facing message and the
`ErrorInfo.reason` read from the `google.rpc.Status` in the trailing metadata; the app shows it
through `gr.Error` and never displays raw trailers.
"""

from __future__ import annotations

import collections

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from csv_analyst.v1 import (
    analyst_service_pb2,
    analyst_service_pb2_grpc,
    capsule_pb2,
    dataset_pb2,
    plan_pb2,
    run_pb2,
)

T = TypeVar("T")

# Unary calls are catalog look-ups that answer in milliseconds; a hung server should not hang
# the UI. An Ask covers planning, queueing and a sandboxed run, each capped server-side.
UNARY_TIMEOUT_SECONDS = 10.0
ASK_TIMEOUT_SECONDS = 300.0
# An upload streams the files, then the service profiles every table in a sandbox.
UPLOAD_TIMEOUT_SECONDS = 300.0
# The service recommends up to 1 MiB per UploadDataset message.
UPLOAD_CHUNK_BYTES = 1 << 20

# Messages for failures that happen before the server can attach a status of its own.
_TRANSPORT_MESSAGES = {
    grpc.StatusCode.UNAVAILABLE: "the analyst service at {target} is unreachable; is `csv-analyst serve` running?",
    grpc.StatusCode.DEADLINE_EXCEEDED: "the analyst service at {target} did not answer in time; try again",
}


class AnalystClientError(Exception):
    """A failed call to the analyst service, ready to show to a user.

    Attributes:
        message: Short actionable English from the server (or the client for transport errors).
        reason: The `ErrorInfo.reason` (UPPER_SNAKE), or the status code name when the server sent none.
        code: The gRPC status code.
        metadata: The `ErrorInfo.metadata` values named in the message.
    """

    def __init__(self, message: str, reason: str, code: grpc.StatusCode,
                 metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.code = code
        self.metadata = dict(metadata or {})

    def __str__(self) -> str:
        return f"{self.message} ({self.reason})"


def error_from_rpc(error: grpc.RpcError, target: str) -> AnalystClientError:
    """Turn an RPC error into an `AnalystClientError`.

    Args:
        error: The error raised by a stub call or while iterating a stream (a `grpc.Call`).
        target: The server address, named in transport-error messages.

    Returns:
        The user-facing error, with the ErrorInfo reason when the server attached one.
    """
    code: grpc.StatusCode = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = (error.details() if isinstance(error, grpc.Call) else None) or ""
    reason, metadata = code.name, {}
    status = None
    if isinstance(error, grpc.Call):
        try:
            status = rpc_status.from_call(error)
        except ValueError:  # trailers disagree with the call's code/message: keep the call's own
            status = None
    if status is not None:
        details = status.message or details
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason or reason, dict(info.metadata)
                break
    elif code in _TRANSPORT_MESSAGES:
        details = _TRANSPORT_MESSAGES[code].format(target=target)
    return AnalystClientError(details or f"the analyst service failed with {code.name}", reason, code, metadata)


class AnalystClient:
    """Synchronous client of `csv_analyst.v1.AnalystService` over an insecure channel.

    Safe to share between threads (gRPC channels are). Close it when done.

    Args:
        target: `host:port` of the analyst service.
        api_key: Sent as `authorization: Bearer <key>` when the service requires API keys.
    """

    def __init__(self, target: str, api_key: str = "") -> None:
        self.target = target
        self._raw_channel = grpc.insecure_channel(target)
        self._channel = grpc.intercept_channel(self._raw_channel, BearerHeader(api_key)) if api_key else self._raw_channel
        self._stub = analyst_service_pb2_grpc.AnalystServiceStub(self._channel)

    def _unary(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except grpc.RpcError as error:
            raise error_from_rpc(error, self.target) from None

    def list_datasets(self) -> list[dataset_pb2.Dataset]:
        """List every registered dataset, following pagination.

        Raises:
            AnalystClientError: When the service fails or is unreachable.
        """
        datasets: list[dataset_pb2.Dataset] = []
        token = ""
        while True:
            request = analyst_service_pb2.ListDatasetsRequest(page_size=500, page_token=token)
            page = self._unary(lambda: self._stub.ListDatasets(request, timeout=UNARY_TIMEOUT_SECONDS))
            datasets.extend(page.datasets)
            token = page.next_page_token
            if not token:
                return datasets

    def get_dataset(self, dataset_id: str) -> dataset_pb2.Dataset:
        """Get one dataset with its schema and suggested prompts.

        Raises:
            AnalystClientError: NOT_FOUND for an unknown dataset, or any other failure.
        """
        request = analyst_service_pb2.GetDatasetRequest(name=dataset_id)
        return self._unary(lambda: self._stub.GetDataset(request, timeout=UNARY_TIMEOUT_SECONDS)).dataset

    def ask(self, dataset_id: str, question: str, thread_id: str = "") -> Iterator[run_pb2.RunEvent]:
        """Ask a question and yield the run's events as they arrive.

        A rejected or failed run is not an error here: it arrives in the final STAGE_DONE event.

        Args:
            dataset_id: The dataset to ask about.
            question: The question, 1 to 2,000 characters.
            thread_id: `Run.thread_id` of the previous answer for a follow-up; empty starts a thread.

        Yields:
            RunEvents in sequence order, ending with the STAGE_DONE event.

        Raises:
            AnalystClientError: When the request cannot start (unknown dataset, empty question)
                or the stream breaks.
        """
        request = analyst_service_pb2.AskRequest(dataset_id=dataset_id, question=question, thread_id=thread_id)
        stream = self._stub.Ask(request, timeout=ASK_TIMEOUT_SECONDS)
        try:
            for response in stream:
                yield response.event
        except grpc.RpcError as error:
            raise error_from_rpc(error, self.target) from None
        finally:
            stream.cancel()  # no-op after a normal end; stops the call if the consumer gives up

    def get_capsule(self, run_id: str) -> capsule_pb2.Capsule:
        """Get the capsule (full record) of a finished run.

        Raises:
            AnalystClientError: NOT_FOUND for an unknown run, or any other failure.
        """
        request = analyst_service_pb2.GetCapsuleRequest(name=run_id)
        return self._unary(lambda: self._stub.GetCapsule(request, timeout=UNARY_TIMEOUT_SECONDS)).capsule

    def export_csv(self, run_id: str, path: Path) -> int:
        """Write every row of a succeeded run's result to `path` as CSV (ExportResult).

        The service neutralises spreadsheet formulas in cells (a leading `=`, `+`, `-`, `@`).

        Returns:
            The number of rows in the file.

        Raises:
            AnalystClientError: NOT_FOUND (no such run), FAILED_PRECONDITION (the run has no
                result), or any other failure.
        """
        request = analyst_service_pb2.ExportResultRequest(name=run_id, format=analyst_service_pb2.EXPORT_FORMAT_CSV)
        stream = self._stub.ExportResult(request, timeout=UPLOAD_TIMEOUT_SECONDS)
        rows = 0
        try:
            with open(path, "wb") as out:
                for response in stream:
                    rows = rows or int(response.row_count)
                    out.write(response.data)
        except grpc.RpcError as error:
            raise error_from_rpc(error, self.target) from None
        finally:
            stream.cancel()
        return rows

    def read_result(self, run_id: str, offset: int, page_size: int) -> analyst_service_pb2.ReadResultResponse:
        """One page of a succeeded run's full result (ReadResult): up to page_size rows from offset.

        Raises:
            AnalystClientError: NOT_FOUND (no such run), FAILED_PRECONDITION (the run has no
                result), INVALID_ARGUMENT (an offset past the end), or any other failure.
        """
        request = analyst_service_pb2.ReadResultRequest(name=run_id, offset=offset, page_size=page_size)
        return self._unary(lambda: self._stub.ReadResult(request, timeout=UNARY_TIMEOUT_SECONDS))

    def delete_dataset(self, dataset_id: str) -> dataset_pb2.Dataset:
        """Delete an uploaded dataset (DeleteDataset); returns it as it was.

        Raises:
            AnalystClientError: FAILED_PRECONDITION (DATASET_NOT_DELETABLE) for a registry dataset,
                NOT_FOUND for an unknown one, or any other failure.
        """
        request = analyst_service_pb2.DeleteDatasetRequest(name=dataset_id)
        return self._unary(lambda: self._stub.DeleteDataset(request, timeout=UNARY_TIMEOUT_SECONDS)).dataset

    def submit_plan(self, dataset_id: str, plan: plan_pb2.Plan, thread_id: str = "") -> run_pb2.Run:
        """Run a plan directly (no planner) and wait for the finished run; with a `thread_id` the run
        joins that conversation (a reading chosen from its clarification).

        A plan that fails validation is not an error here: the run comes back REJECTED with the
        violations' field paths in `run.error.violations`.

        Raises:
            AnalystClientError: When the request cannot start (unknown dataset) or the call fails.
        """
        request = analyst_service_pb2.SubmitRunRequest(dataset_id=dataset_id, plan=plan, thread_id=thread_id)
        return self._unary(lambda: self._stub.SubmitRun(request, timeout=ASK_TIMEOUT_SECONDS)).run

    def upload(self, paths: Iterable[Path], names: Iterable[str] | None = None) -> dataset_pb2.Dataset:
        """Stream local CSV files to the service as one new dataset (UploadDataset).

        Args:
            paths: The files, read in chunks; each becomes a table named after its file stem.
            names: The file names to send, one per path (default: each path's base name); a
                browser upload lands under a temporary name, so the UI passes the original one.

        Returns:
            The uploaded dataset, with its tables' columns, types and row counts profiled.

        Raises:
            AnalystClientError: INVALID_ARGUMENT for an empty or unreadable CSV or a bad file name,
                RESOURCE_EXHAUSTED over the server's size or file-count limit, or any other failure.
        """
        paths = [Path(path) for path in paths]
        files = list(zip(paths, list(names) if names is not None else [path.name for path in paths], strict=True))

        def messages() -> Iterator[analyst_service_pb2.UploadDatasetRequest]:
            for path, name in files:
                with open(path, "rb") as stream:
                    chunk = stream.read(UPLOAD_CHUNK_BYTES)
                    yield analyst_service_pb2.UploadDatasetRequest(file_name=name, chunk=chunk)
                    while chunk := stream.read(UPLOAD_CHUNK_BYTES):
                        yield analyst_service_pb2.UploadDatasetRequest(chunk=chunk)

        return self._unary(lambda: self._stub.UploadDataset(messages(), timeout=UPLOAD_TIMEOUT_SECONDS)).dataset

    def close(self) -> None:
        """Close the channel."""
        self._raw_channel.close()


class BearerHeader(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor, grpc.StreamUnaryClientInterceptor):
    """Adds `authorization: Bearer <key>` to every call of a (synchronous) channel."""

    def __init__(self, key: str) -> None:
        self._header = ("authorization", f"Bearer {key}")

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return _CallDetails(details.method, details.timeout, [*(details.metadata or ()), self._header],
                            details.credentials, getattr(details, "wait_for_ready", None),
                            getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request_iterator)


class _CallDetails(
        collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready",
                                                "compression")),
        grpc.ClientCallDetails):
    """Call details with extra metadata (grpc.ClientCallDetails has no public constructor)."""
