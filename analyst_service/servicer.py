"""AnalystService: proto <-> domain translation only. Errors become rich statuses in one place."""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc

from analyst_service.auth import KeyRing
from analyst_service.capsules.base import RunQuery
from analyst_service.capsules.stores import CapsuleStoreUnavailableError
from analyst_service.datasets import DatasetRegistry
from analyst_service.errors import AnalystError, InvalidRequestError, PythonDisabledError, store_unavailable
from analyst_service.redaction import public_dataset, redact_capsule, redact_event, redact_run
from analyst_service.result_files import CSV_TYPE, PARQUET_TYPE, to_csv_bytes, to_parquet_bytes
from analyst_service.runs import RunManager
from analyst_service.uploads import UploadStore
from analyst_service.status import to_status
from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, dataset_pb2, result_pb2, run_pb2

log = logging.getLogger(__name__)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_QUESTION_CHARS = 2000
MAX_THREAD_ID_CHARS = 128  # thread ids are run ids (21 characters) or the caller's own


def _check_thread_id(thread_id: str) -> None:
    if len(thread_id) > MAX_THREAD_ID_CHARS or not thread_id.isprintable():
        raise InvalidRequestError(message=f"thread_id must be at most {MAX_THREAD_ID_CHARS} printable characters",
                                  violations=[("thread_id", "too long or not printable")])
MAX_SQL_CHARS = 100_000
# Responses stay under gRPC's default 4 MB receive limit of clients, with room for framing.
MAX_RESPONSE_BYTES = 3_500_000
EXPORT_CHUNK_BYTES = 64 << 10
DEFAULT_RESULT_PAGE_ROWS = 200
MAX_RESULT_PAGE_ROWS = 1000
F = TypeVar("F", bound=Callable[..., Any])


async def _abort(context: grpc.aio.ServicerContext, error: Exception) -> None:
    if isinstance(error, CapsuleStoreUnavailableError):
        log.warning("%s", error)  # the store's address stays in the log
        error = store_unavailable()
    if isinstance(error, AnalystError):
        await context.abort_with_status(to_status(error))
    request_id = uuid.uuid4().hex[:12]
    log.exception("internal error, request id %s", request_id)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error; request id {request_id}")


def unary_errors(method: F) -> F:
    """Turn AnalystErrors raised by a unary method into rich statuses; anything else into INTERNAL."""
    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except Exception as error:  # noqa: BLE001 - the one place errors become statuses
            await _abort(context, error)
    return wrapper  # type: ignore[return-value]


def stream_errors(method: F) -> F:
    """The same as unary_errors for server-streaming methods."""
    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            async for item in method(self, request, context):
                yield item
        except Exception as error:  # noqa: BLE001 - the one place errors become statuses
            await _abort(context, error)
    return wrapper  # type: ignore[return-value]


def _page(page_size: int, page_token: str, total: int) -> tuple[int, int]:
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    if page_size < 0:
        raise InvalidRequestError(message="page_size must not be negative", violations=[("page_size", "negative")])
    try:
        start = int(page_token or "0")
    except ValueError:
        raise InvalidRequestError(message=f"invalid page token {page_token!r}",
                                  violations=[("page_token", "not issued by this server")]) from None
    if not 0 <= start <= total:
        raise InvalidRequestError(message=f"invalid page token {page_token!r}",
                                  violations=[("page_token", "out of range")])
    return start, size


def _page_size(page_size: int) -> int:
    if page_size < 0:
        raise InvalidRequestError(message="page_size must not be negative", violations=[("page_size", "negative")])
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


class AnalystServicer(analyst_service_pb2_grpc.AnalystServiceServicer):
    """Translates AnalystService requests to the RunManager and DatasetRegistry.

    Runs and capsules reach operators whole; other callers get them without the sandbox's
    captured output (see redaction.py).
    """

    def __init__(self, datasets: DatasetRegistry, runs: RunManager, uploads: UploadStore | None = None,
                 keys: KeyRing | None = None, python_enabled: bool = False) -> None:
        self._datasets = datasets
        self._runs = runs
        self._uploads = uploads
        self._keys = keys or KeyRing()
        self._python_enabled = python_enabled

    def _operator(self, context: grpc.aio.ServicerContext) -> bool:
        return self._keys.enabled and self._keys.role_of(context.invocation_metadata()) == "operator"

    @unary_errors
    async def ListDatasets(self, request: api.ListDatasetsRequest, context: grpc.aio.ServicerContext
                           ) -> api.ListDatasetsResponse:
        datasets = self._datasets.list()
        start, size = _page(request.page_size, request.page_token, len(datasets))
        end = start + size
        return api.ListDatasetsResponse(datasets=[public_dataset(d) for d in datasets[start:end]],
                                        next_page_token=str(end) if end < len(datasets) else "")

    @unary_errors
    async def GetDataset(self, request: api.GetDatasetRequest, context: grpc.aio.ServicerContext
                         ) -> api.GetDatasetResponse:
        dataset = self._datasets.get(request.name)
        if self._datasets.is_unprofiled_upload(dataset):
            # Uploads are listed from the store at start without their columns: profile on first sight.
            try:
                dataset = self._datasets.refresh_upload(await self._runs.profile(dataset))
            except AnalystError as error:
                log.warning("upload %s could not be profiled: %s", dataset.dataset_id, error)
        return api.GetDatasetResponse(dataset=public_dataset(dataset))

    @unary_errors
    async def UploadDataset(self, request_iterator: AsyncIterator[api.UploadDatasetRequest],
                            context: grpc.aio.ServicerContext) -> api.UploadDatasetResponse:
        if self._uploads is None:
            raise InvalidRequestError(message="this server does not accept uploads", violations=[("file_name", "disabled")])

        async def chunks() -> AsyncIterator[tuple[str, bytes]]:
            async for message in request_iterator:
                yield message.file_name, message.chunk

        dataset = await self._uploads.receive(chunks())
        try:
            dataset = await self._runs.profile(dataset)  # columns detected in a sandbox; bad CSVs refused here
        except AnalystError:
            if not self._datasets.is_listed(dataset.dataset_id):  # a refused upload is not kept for a restart
                await asyncio.to_thread(self._uploads.delete, dataset.version_hash)
            raise
        return api.UploadDatasetResponse(dataset=public_dataset(self._datasets.add_upload(dataset)))

    @unary_errors
    async def DeleteDataset(self, request: api.DeleteDatasetRequest, context: grpc.aio.ServicerContext
                            ) -> api.DeleteDatasetResponse:
        dataset = await asyncio.to_thread(self._datasets.delete_upload, request.name)
        log.info("deleted uploaded dataset %s", dataset.dataset_id)
        return api.DeleteDatasetResponse(dataset=public_dataset(dataset))

    @unary_errors
    async def ReadResult(self, request: api.ReadResultRequest, context: grpc.aio.ServicerContext
                         ) -> api.ReadResultResponse:
        if request.offset < 0 or request.page_size < 0:
            raise InvalidRequestError(message="offset and page_size must not be negative",
                                      violations=[("offset" if request.offset < 0 else "page_size", "negative")])
        _, result = await self._runs.full_result(request.name)
        total = len(result.rows)
        if request.offset > total:
            raise InvalidRequestError(message=f"offset {request.offset} is past the result's {total} rows",
                                      violations=[("offset", "past the last row")], metadata={"row_count": str(total)})
        size = min(request.page_size or DEFAULT_RESULT_PAGE_ROWS, MAX_RESULT_PAGE_ROWS)
        page = result_pb2.ResultTable(columns=result.columns)
        used = page.ByteSize()
        for row in result.rows[request.offset:request.offset + size]:
            used += row.ByteSize() + 8  # the row's tag and length
            if page.rows and used > MAX_RESPONSE_BYTES:
                break  # a page ends before the response limit; the next one starts where it stopped
            page.rows.append(row)
        page.row_count = len(page.rows)
        return api.ReadResultResponse(result=page, total_row_count=total, offset=request.offset)

    async def _resolve(self, dataset_id: str, csv_paths: list[str]) -> dataset_pb2.Dataset:
        # Ad-hoc CSV files are read and hashed (when their identity is new): off the event loop.
        return await asyncio.to_thread(self._datasets.resolve, dataset_id, csv_paths)

    @stream_errors
    async def Ask(self, request: api.AskRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[api.AskResponse]:
        question = request.question.strip()
        if not question or len(question) > MAX_QUESTION_CHARS:
            raise InvalidRequestError(message=f"the question must be 1 to {MAX_QUESTION_CHARS} characters",
                                      violations=[("question", "empty or too long")])
        _check_thread_id(request.thread_id)
        if request.allow_python and not self._python_enabled:
            raise PythonDisabledError(message="this server does not run Python, so it cannot answer with a pandas "
                                              "program: start it with `csv-analyst serve --enable-python` (or "
                                              "CSV_ANALYST_ENABLE_PYTHON=1), or ask without allow_python",
                                      metadata={"field": "allow_python"})
        dataset = await self._resolve(request.dataset_id, list(request.csv_paths))
        operator = self._operator(context)
        async for event in self._runs.ask(dataset, question, request.thread_id, context.time_remaining(),
                                          allow_python=request.allow_python):
            yield api.AskResponse(event=event if operator else redact_event(event))

    @unary_errors
    async def SubmitRun(self, request: api.SubmitRunRequest, context: grpc.aio.ServicerContext
                        ) -> api.SubmitRunResponse:
        which = request.WhichOneof("query")
        if which is None:
            raise InvalidRequestError(message="give a plan, sql or python_code to run",
                                      violations=[("query", "plan, sql or python_code is required")])
        if which == "python_code" and not self._python_enabled:
            raise PythonDisabledError(message="this server does not run Python: start it with `csv-analyst serve "
                                              "--enable-python` (or CSV_ANALYST_ENABLE_PYTHON=1)",
                                      metadata={"query": "python_code"})
        _check_thread_id(request.thread_id)
        if len(request.sql) > MAX_SQL_CHARS:
            raise InvalidRequestError(message=f"the SQL must be at most {MAX_SQL_CHARS} characters",
                                      violations=[("sql", "too long")], metadata={"max_sql_chars": str(MAX_SQL_CHARS)})
        dataset = await self._resolve(request.dataset_id, list(request.csv_paths))
        run = await self._runs.submit(dataset, request.plan if which == "plan" else None, request.sql,
                                      context.time_remaining(), python_code=request.python_code,
                                      thread_id=request.thread_id)
        return api.SubmitRunResponse(run=self._run_for(run, context))

    def _run_for(self, run: run_pb2.Run, context: grpc.aio.ServicerContext) -> run_pb2.Run:
        return run if self._operator(context) else redact_run(run)

    @unary_errors
    async def StopRun(self, request: api.StopRunRequest, context: grpc.aio.ServicerContext) -> api.StopRunResponse:
        return api.StopRunResponse(run=self._run_for(await self._runs.stop(request.name), context))

    @unary_errors
    async def GetRun(self, request: api.GetRunRequest, context: grpc.aio.ServicerContext) -> api.GetRunResponse:
        return api.GetRunResponse(run=self._run_for(await self._runs.get_run(request.name), context))

    @stream_errors
    async def WatchRun(self, request: api.WatchRunRequest, context: grpc.aio.ServicerContext
                       ) -> AsyncIterator[api.WatchRunResponse]:
        if request.after_sequence < 0:
            raise InvalidRequestError(message="after_sequence must not be negative",
                                      violations=[("after_sequence", "negative")])
        operator = self._operator(context)
        async for event in self._runs.watch(request.name, request.after_sequence):
            yield api.WatchRunResponse(event=event if operator else redact_event(event))

    @unary_errors
    async def ListRuns(self, request: api.ListRunsRequest, context: grpc.aio.ServicerContext) -> api.ListRunsResponse:
        size = _page_size(request.page_size)
        query = RunQuery(
            states=tuple(request.states), dataset_id=request.dataset_id,
            min_create_micros=request.min_create_time.ToMicroseconds() if request.HasField("min_create_time") else None,
            max_create_micros=request.max_create_time.ToMicroseconds() if request.HasField("max_create_time") else None)
        if query.min_create_micros is not None and query.max_create_micros is not None \
                and query.min_create_micros >= query.max_create_micros:
            raise InvalidRequestError(message="min_create_time must be before max_create_time",
                                      violations=[("max_create_time", "not after min_create_time")])
        try:
            page = await self._runs.list_runs(size, request.page_token, query)
        except ValueError as error:
            raise InvalidRequestError(message=str(error), violations=[("page_token", "not issued by this server")]) from None
        return api.ListRunsResponse(runs=[self._run_for(r, context) for r in page.runs],
                                    next_page_token=page.next_page_token)

    @unary_errors
    async def GetCapsule(self, request: api.GetCapsuleRequest, context: grpc.aio.ServicerContext
                         ) -> api.GetCapsuleResponse:
        capsule = await self._runs.get_capsule(request.name)
        return api.GetCapsuleResponse(capsule=capsule if self._operator(context) else redact_capsule(capsule))

    @unary_errors
    async def ListCapsules(self, request: api.ListCapsulesRequest, context: grpc.aio.ServicerContext
                           ) -> api.ListCapsulesResponse:
        size = _page_size(request.page_size)
        try:
            page = await self._runs.list_capsules(size, request.page_token, request.dataset_id, MAX_RESPONSE_BYTES)
        except ValueError as error:
            raise InvalidRequestError(message=str(error), violations=[("page_token", "not issued by this server")]) from None
        operator = self._operator(context)
        return api.ListCapsulesResponse(capsules=[c if operator else redact_capsule(c) for c in page.capsules],
                                        next_page_token=page.next_page_token)

    @stream_errors
    async def ExportResult(self, request: api.ExportResultRequest, context: grpc.aio.ServicerContext
                           ) -> AsyncIterator[api.ExportResultResponse]:
        writers = {api.EXPORT_FORMAT_CSV: (to_csv_bytes, CSV_TYPE), api.EXPORT_FORMAT_PARQUET: (to_parquet_bytes, PARQUET_TYPE)}
        if request.format not in writers:
            raise InvalidRequestError(message="format must be EXPORT_FORMAT_CSV or EXPORT_FORMAT_PARQUET",
                                      violations=[("format", "unspecified or unknown")])
        _, result = await self._runs.full_result(request.name)
        writer, content_type = writers[request.format]
        data = await asyncio.to_thread(writer, result)
        for offset in range(0, max(len(data), 1), EXPORT_CHUNK_BYTES):
            first = offset == 0
            yield api.ExportResultResponse(data=data[offset:offset + EXPORT_CHUNK_BYTES],
                                           content_type=content_type if first else "",
                                           row_count=len(result.rows) if first else 0)
