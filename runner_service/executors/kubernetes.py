"""The Kubernetes executor: one Job per run, through the official `kubernetes` client.

A run: build the Job and its task ConfigMap (pure, executors/k8s_manifests.py); take a token from
the creation rate limit; create the Job suspended, the ConfigMap owned by it, then resume the Job;
follow the Job by watch (from the resourceVersion of the resume) until it completes, fails or a
deadline passes; read the runner's framed answer from the pod log; delete the Job. Every API call
is retried on 409/429/5xx and connection resets with backoff and a bound (executors/k8s_api.py).

Deadlines: the pod has `start_seconds` to start running (scheduling, image pull, volume mounts);
past that the run fails with RUNNER_UNAVAILABLE, with the reason taken from the pod's and the
Job's Warning events (ErrImagePull, FailedScheduling, exceeded quota). Once the pod is running,
the run has its own time limit, after which the Job is deleted (RUNNER_TIMEOUT). The Job's
activeDeadlineSeconds (both added together) is the cluster-side backstop, and ttlSecondsAfterFinished
the backstop for the deletion. Cancelling deletes the Job with foreground propagation, so the call
returns once the Job's pod and ConfigMap are on their way out.

At start the executor reaps orphaned Jobs of this deployment (label csv-analyst.io/owner): those
older than the longest possible run, and those whose owning runner-service pod no longer exists.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import logging
import math
import re
import secrets
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from csv_analyst.runner.v1 import sandbox_pb2
from csv_analyst.v1 import run_pb2
from runner_service.executors import k8s_api, native_sql
from runner_service.executors.base import (
    MAX_STDOUT_BYTES,
    SandboxOutcome,
    SandboxRequest,
    SandboxStartError,
    runner_error,
)
from runner_service.executors.docker import (
    DEFAULT_TIMEOUT,
    ContainerExit,
    _let_sandbox_write,
    default_runner_image,
    interpret_exit,
)
from runner_service.executors.k8s_api import ApiUnavailableError, RetryPolicy, TokenBucket, describe
from runner_service.executors.k8s_manifests import (
    ANNOTATION_INSTANCE_POD,
    ANSWER_MARKER,
    CONTAINER,
    LABEL_INSTANCE,
    LABEL_JOB,
    build_job,
    build_task_config_map,
    owner_labels,
    runs_native,
    selector,
)
from runner_service.executors.k8s_settings import KubernetesSettings
from runner.messages import complete_frame

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
# A Job older than the longest run plus its start allowance plus this is a leak, whoever owns it.
REAP_GRACE = 60.0
# Client-side read timeout beyond a watch's own server-side timeout.
WATCH_SLACK = 15.0
DELETE_WAIT = 10.0


# --- configuration -------------------------------------------------------------------------------

def make_api_client(settings: KubernetesSettings) -> client.ApiClient:
    """An API client from the kubeconfig file named in settings, else in-cluster, else ~/.kube/config.

    Raises:
        SandboxStartError: When no configuration can be loaded.
    """
    configuration = client.Configuration()
    try:
        if settings.kubeconfig:
            config.load_kube_config(config_file=settings.kubeconfig, client_configuration=configuration)
        else:
            try:
                config.load_incluster_config(client_configuration=configuration)
            except config.ConfigException:
                config.load_kube_config(client_configuration=configuration)
    except (config.ConfigException, OSError) as error:
        raise SandboxStartError(f"no Kubernetes configuration: {error} (set CSV_ANALYST_K8S_KUBECONFIG, or run in a "
                                "pod with a service account)") from error
    # One retry policy (k8s_api.call), not urllib3's on top of it.
    configuration.retries = False
    return client.ApiClient(configuration)


def default_namespace(settings: KubernetesSettings) -> str:
    """settings.namespace, else this pod's namespace, else the kubeconfig context's, else `default`."""
    if settings.namespace:
        return settings.namespace
    if not settings.kubeconfig and SERVICE_ACCOUNT_NAMESPACE.is_file():
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    try:
        _, active = config.list_kube_config_contexts(config_file=settings.kubeconfig or None)
        return str(active.get("context", {}).get("namespace") or "default")
    except (config.ConfigException, OSError, TypeError):
        return "default"


def job_name(run_id: str) -> str:
    """A fresh Job name for a run: `run-<run id, cut>-<5 random>` (a DNS label of at most 58 chars)."""
    return f"run-{run_id[:48]}-{uuid.uuid4().hex[:5]}"


def instance_label(host: str | None = None) -> str:
    """This executor's label value: host name (cut) and a random part, unique per process."""
    host = re.sub(r"[^a-z0-9-]", "-", (host or socket.gethostname()).lower())[:40].strip("-") or "host"
    return f"{host}-{uuid.uuid4().hex[:8]}"


# --- reading the outcome (pure) ------------------------------------------------------------------

def parse_pod_log(log_bytes: bytes, nonce: str) -> tuple[bytes | None, bytes]:
    """Split a run pod's log into the runner's framed answer and everything else (pure).

    Args:
        log_bytes: The container's log (stdout and stderr interleaved by line).
        nonce: The run's nonce: only a line starting with the marker and this nonce is the answer.

    Returns:
        (the framed answer as the runner wrote it, or None when no answer line is there; the other
        lines, which are the runner's stderr).
    """
    marker = ANSWER_MARKER + nonce.encode() + b":"
    answer: bytes | None = None
    rest: list[bytes] = []
    for line in log_bytes.split(b"\n"):
        if line.startswith(marker):
            try:
                answer = base64.b64decode(line[len(marker):], validate=True)
            except (binascii.Error, ValueError):
                answer = b""
        else:
            rest.append(line)
    return answer, b"\n".join(rest)


def finished_condition(job: client.V1Job) -> client.V1JobCondition | None:
    """The Job's Complete or Failed condition, if it has one that is True."""
    for condition in (job.status.conditions if job.status and job.status.conditions else []):
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return condition
    return None


def warning_reason(events: list[client.CoreV1Event]) -> str:
    """`Reason: message` of the most recent Warning event, else of the most recent event, else ''."""
    def stamp(event: client.CoreV1Event) -> datetime:
        moment = event.last_timestamp or event.event_time or event.first_timestamp
        return moment or datetime.min.replace(tzinfo=timezone.utc)

    ordered = sorted(events, key=stamp)
    warnings = [e for e in ordered if e.type == "Warning"] or ordered
    if not warnings:
        return ""
    last = warnings[-1]
    return f"{last.reason}: {(last.message or '').strip()[:300]}"


def should_reap(job: client.V1Job, instance: str, now: datetime, stale_after: float,
                pod_alive: Callable[[str], bool]) -> bool:
    """Whether a Job of this deployment (selected by its owner label) is an orphan to delete (pure).

    Args:
        job: The Job.
        instance: This executor's instance label (its own Jobs are never reaped).
        now: The current time (aware).
        stale_after: Age in seconds past which a Job can only be a leak (its owner would have
            deleted it at its deadline).
        pod_alive: Whether a `namespace/name` runner-service pod still exists.
    """
    meta = job.metadata
    if (meta.labels or {}).get(LABEL_INSTANCE) == instance:
        return False
    created = meta.creation_timestamp
    if created is not None and (now - created).total_seconds() > stale_after:
        return True
    owner_pod = (meta.annotations or {}).get(ANNOTATION_INSTANCE_POD, "")
    return bool(owner_pod) and not pod_alive(owner_pod)


@dataclass
class JobEnd:
    """How following a Job ended.

    Attributes:
        kind: complete, failed, cancelled, deleted, start-timeout or run-timeout.
        reason: The Failed condition's reason (DeadlineExceeded, BackoffLimitExceeded, ...).
        ran: Whether its pod was seen running (ready).
        wall_seconds: From running to the end (0 when it never ran).
    """

    kind: str
    reason: str = ""
    ran: bool = False
    wall_seconds: float = 0.0


@dataclass
class PodFacts:
    """What the run's pod left: its log and its container's termination."""

    name: str = ""
    log: bytes = b""
    exit_code: int | None = None
    oom_killed: bool = False
    phase: str = ""
    reason: str = ""
    message: str = ""
    waiting_reason: str = ""


def unavailable(message: str) -> sandbox_pb2.SandboxResult:
    """A run result failing with RUNNER_UNAVAILABLE (gRPC UNAVAILABLE: retrying can work)."""
    return sandbox_pb2.SandboxResult(error=runner_error(run_pb2.ERROR_CODE_RUNNER_UNAVAILABLE, 14, message))


def outcome_of(request: SandboxRequest, end: JobEnd, pod: PodFacts, nonce: str, start_seconds: float,
               cancelled: bool, events: str = "", native: bool = False) -> SandboxOutcome:
    """The run's outcome from how its Job ended and what its pod left (pure).

    Args:
        request: The run.
        end: How following the Job ended.
        pod: The pod's log and termination state.
        nonce: The run's answer nonce.
        start_seconds: The start allowance (for messages).
        cancelled: Whether the run was cancelled.
        events: `Reason: message` of the pod's or Job's latest Warning event. Only its Reason
            reaches the client (messages can name registries, nodes and addresses); the whole
            event goes to the log.
        native: Whether the pod ran the native DuckDB CLI (its whole output is the answer).
    """
    answer, stderr = parse_pod_log(pod.log, nonce)
    if native:
        # The CLI's output, whole when it printed its last marker; an error run ends earlier.
        payload = answer if answer and (native_sql.complete_answer(answer) or native_sql.translate(
            answer, stderr, request.limits.max_rows or 200)) else None
    else:
        payload = complete_frame(answer) if answer else None
    never_ran = not end.ran and pod.exit_code is None
    if cancelled or end.kind == "cancelled":
        return interpret_exit(request, ContainerExit(b"", stderr, None, False, False, end.wall_seconds), True)
    if end.kind == "start-timeout" or (end.kind == "failed" and end.reason == "DeadlineExceeded" and never_ran):
        log.warning("run %s: pod %s did not start (phase %s, waiting %s): %s", request.run_id, pod.name or "-",
                    pod.phase or "-", pod.waiting_reason or "-", events or "no events")
        reasons = [r for r in (pod.waiting_reason, events.split(":", 1)[0].strip()) if r]
        why = ", ".join(dict.fromkeys(reasons)) or f"pod {pod.phase or 'not created'}"
        result = unavailable(f"the run's pod did not start within {start_seconds:g} s (kubernetes.start_seconds): "
                             f"{why}")
        return SandboxOutcome(result, "", stderr.decode("utf-8", "replace")[-4096:], 0.0, None)
    if end.kind == "deleted":
        return SandboxOutcome(unavailable("the run's Job was deleted before it finished; retry the run"), "", "",
                              end.wall_seconds, None)
    if end.kind == "failed" and pod.exit_code is None and pod.phase == "Failed":
        # Evicted, preempted, node lost: the pod failed without its container exiting.
        log.warning("run %s: pod %s failed: %s %s", request.run_id, pod.name, pod.reason, pod.message)
        return SandboxOutcome(unavailable(f"the run's pod failed ({pod.reason or 'unknown reason'}); retry the run"),
                              "", "", end.wall_seconds, None)
    timed_out = end.kind == "run-timeout" or (end.kind == "failed" and end.reason == "DeadlineExceeded")
    exit_code = pod.exit_code if end.kind != "complete" else (pod.exit_code if pod.exit_code is not None else 0)
    overflow = answer is not None and len(answer) > MAX_STDOUT_BYTES
    if not timed_out and not overflow and exit_code == 0 and payload is None:
        # A clean exit without a whole answer: the log lost it (rotated or cut). Never a result.
        log.error("run %s: pod %s exited cleanly but its log holds no complete answer (%d log bytes)",
                  request.run_id, pod.name, len(pod.log))
        result = sandbox_pb2.SandboxResult(error=runner_error(
            run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR, 13,
            "the run's answer was lost from its pod log (results over about 7 MB are cut by the node's log "
            "limit; lower max_rows)"))
        return SandboxOutcome(result, "", stderr.decode("utf-8", "replace")[-4096:], end.wall_seconds, 0)
    done = ContainerExit(payload or b"", stderr, exit_code, pod.oom_killed, timed_out, end.wall_seconds,
                         stdout_overflow=overflow)
    return interpret_exit(request, done, False, native)


# --- the executor --------------------------------------------------------------------------------

@dataclass
class _Active:
    job: str
    cancelled: bool = False


class KubernetesExecutor:
    """Runs each request as its own Job (see the module docstring).

    Args:
        settings: Executor settings.
        max_timeout_seconds: The longest run the service allows (for orphan reaping).
        api_client: An API client; default: from settings (make_api_client).
        threads: Runs followed at once (each blocks one thread on its watch).
    """

    name = "k8s"

    def __init__(self, settings: KubernetesSettings, max_timeout_seconds: float = 300.0,
                 api_client: client.ApiClient | None = None, threads: int = 32, native: bool = True) -> None:
        self.settings = settings
        # SQL on a materialised dataset runs on the image's native DuckDB CLI (native_sql.py).
        self.native = native
        self.api = api_client or make_api_client(settings)
        self.batch = client.BatchV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.namespace = default_namespace(settings)
        self.image = settings.image or default_runner_image()
        self.instance = instance_label()
        self.policy = RetryPolicy(settings.api_attempts, settings.api_backoff_seconds)
        self.limiter = TokenBucket(settings.create_qps, settings.create_burst)
        self.stale_after = max_timeout_seconds + settings.start_seconds + REAP_GRACE
        self._threads = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="k8s-run")
        self._active: dict[str, _Active] = {}
        self._closed = False
        try:
            self.reaped = self.reap()
        except (ApiException, ApiUnavailableError) as error:
            self.api.close()
            raise SandboxStartError(f"the Kubernetes API is not usable in namespace {self.namespace}: "
                                    f"{describe(getattr(error, 'cause', error))}") from error

    # --- API calls ---

    def _call(self, what: str, function: Callable[[], Any]) -> Any:
        return k8s_api.call(what, function, self.policy)

    def _create_or_adopt(self, what: str, create: Callable[[], Any], read: Callable[[], Any]) -> Any:
        """Create, retrying; a 409 AlreadyExists after a lost answer means our own earlier try worked."""
        def attempt() -> Any:
            try:
                return create()
            except ApiException as error:
                if error.status == 409 and "AlreadyExists" in (error.body or ""):
                    return read()
                raise
        return self._call(what, attempt)

    def _delete_job(self, name: str, propagation: str) -> None:
        try:
            self._call(f"delete Job {name}", lambda: self.batch.delete_namespaced_job(
                name, self.namespace, propagation_policy=propagation, grace_period_seconds=0))
        except ApiException as error:
            if error.status != 404:
                log.warning("could not delete Job %s: %s", name, describe(error))
        except ApiUnavailableError as error:
            log.warning("could not delete Job %s (reaped later): %s", name, error)

    # --- reaping ---

    def _pod_alive(self, owner_pod: str) -> bool:
        namespace, _, name = owner_pod.rpartition("/")
        try:
            self._call(f"read pod {owner_pod}",
                       lambda: self.core.read_namespaced_pod(name, namespace or self.namespace))
        except ApiException as error:
            return error.status != 404
        except ApiUnavailableError:
            return True
        return True

    def reap(self) -> list[str]:
        """Delete orphaned Jobs of this deployment (foreground); return their names."""
        jobs = self._call("list Jobs", lambda: self.batch.list_namespaced_job(
            self.namespace, label_selector=selector(owner_labels(self.settings))))
        now = datetime.now(timezone.utc)
        reaped = []
        for job in jobs.items:
            if should_reap(job, self.instance, now, self.stale_after, self._pod_alive):
                log.info("reaping orphaned Job %s", job.metadata.name)
                self._delete_job(job.metadata.name, "Foreground")
                reaped.append(job.metadata.name)
        return reaped

    # --- runs ---

    async def execute(self, request: SandboxRequest, on_started: Callable[[], None]) -> SandboxOutcome:
        """Run the request as a Job (see Executor.execute)."""
        loop = asyncio.get_running_loop()
        active = _Active(job_name(request.run_id))
        self._active[request.run_id] = active

        def started() -> None:
            loop.call_soon_threadsafe(on_started)

        try:
            return await loop.run_in_executor(self._threads, self.run_job, request, active, started)
        finally:
            self._active.pop(request.run_id, None)

    def run_job(self, request: SandboxRequest, active: _Active, on_started: Callable[[], None]) -> SandboxOutcome:
        """Blocking: create, follow and read one run's Job, then delete it.

        Raises:
            SandboxStartError: When the Job could not be created or resumed.
        """
        name = active.job
        nonce = secrets.token_hex(8)
        job = build_job(request, self.settings, name, self.instance, self.image, self.native)
        if request.output_dir:
            # The pod writes the materialised file as uid 65534 into this directory of the claim.
            _let_sandbox_write(request.output_dir)
        job.metadata.namespace = self.namespace
        waited = self.limiter.acquire()
        if waited:
            log.info("run %s: waited %.2f s for the Job creation rate limit", request.run_id, waited)
        created = False
        try:
            made = self._create_or_adopt(f"create Job {name}",
                                         lambda: self.batch.create_namespaced_job(self.namespace, job),
                                         lambda: self.batch.read_namespaced_job(name, self.namespace))
            created = True
            task = build_task_config_map(request, self.settings, name, self.instance, made.metadata.uid, nonce,
                                         self.native)
            task.metadata.namespace = self.namespace
            self._create_or_adopt(f"create ConfigMap {name}",
                                  lambda: self.core.create_namespaced_config_map(self.namespace, task),
                                  lambda: self.core.read_namespaced_config_map(name, self.namespace))
            resumed = self._call(f"resume Job {name}", lambda: self.batch.patch_namespaced_job(
                name, self.namespace, {"spec": {"suspend": False}}))
        except (ApiException, ApiUnavailableError) as error:
            if created:
                self._delete_job(name, "Background")
            raise SandboxStartError(f"could not create the run's Job in namespace {self.namespace}: "
                                    f"{describe(getattr(error, 'cause', error))}") from error
        try:
            end = self.follow(name, resumed.metadata.resource_version, request, active, on_started)
            pod = self.pod_facts(name) if end.kind in ("complete", "failed", "start-timeout") else PodFacts()
            events = self.events_of(name, pod.name) if end.kind in ("failed", "start-timeout") else ""
            return outcome_of(request, end, pod, nonce, self.settings.start_seconds, active.cancelled, events,
                              runs_native(request, self.native))
        finally:
            # Deletion also takes the pod and the ConfigMap (owned by the Job). Again for a
            # cancelled run: its cancel may have come before the Job existed.
            self._delete_job(name, "Foreground" if active.cancelled else "Background")

    def follow(self, name: str, resource_version: str, request: SandboxRequest, active: _Active,
               on_started: Callable[[], None]) -> JobEnd:
        """Blocking: watch the Job until it finishes, is deleted, or a deadline passes."""
        limit = request.limits.timeout.ToMilliseconds() / 1000 or DEFAULT_TIMEOUT
        deadline = time.monotonic() + self.settings.start_seconds
        ran_since: float | None = None
        version: str | None = resource_version
        failures = 0

        def end(kind: str, reason: str = "") -> JobEnd:
            if ran_since is None and kind == "complete":
                on_started()  # it ran between two events
            wall = time.monotonic() - ran_since if ran_since is not None else 0.0
            return JobEnd(kind, reason, ran_since is not None or kind == "complete", wall)

        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if ran_since is None:
                    self._delete_job(name, "Background")
                    return end("start-timeout")
                self._delete_job(name, "Foreground")
                return end("run-timeout")
            if active.cancelled:
                return end("cancelled")
            stream = watch.Watch()
            try:
                for event in stream.stream(self.batch.list_namespaced_job, self.namespace,
                                           field_selector=f"metadata.name={name}", resource_version=version,
                                           timeout_seconds=max(1, math.ceil(remaining)),
                                           _request_timeout=(10, remaining + WATCH_SLACK)):
                    failures = 0
                    job: client.V1Job = event["object"]
                    version = job.metadata.resource_version or version
                    if event["type"] == "DELETED" or job.metadata.deletion_timestamp is not None:
                        return end("cancelled" if active.cancelled else "deleted")
                    condition = finished_condition(job)
                    if condition is not None:
                        return end("complete" if condition.type == "Complete" else "failed", condition.reason or "")
                    if ran_since is None and (job.status.ready or 0) >= 1:
                        ran_since = time.monotonic()
                        deadline = ran_since + limit
                        on_started()
                        break  # watch again with the run's deadline
            except ApiException as error:
                if error.status == 410:
                    version = None  # expired: the next watch starts with the Job's current state
                    continue
                failures += 1
                if not k8s_api.is_transient(error) or failures >= self.policy.attempts:
                    raise SandboxStartError(f"lost the run's Job {name}: {describe(error)}") from error
                time.sleep(self.policy.delay(failures, error))
            except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as error:
                failures += 1
                if failures >= self.policy.attempts:
                    self._delete_job(name, "Foreground")
                    return JobEnd("deleted") if not active.cancelled else end("cancelled")
                time.sleep(self.policy.delay(failures, error))
            finally:
                stream.stop()

    def pod_facts(self, name: str) -> PodFacts:
        """Blocking: the run pod's log and termination state (empty when it has no pod)."""
        pods = self._call(f"list pods of {name}", lambda: self.core.list_namespaced_pod(
            self.namespace, label_selector=f"{LABEL_JOB}={name}")).items
        if not pods:
            return PodFacts()
        pod = max(pods, key=lambda p: p.metadata.creation_timestamp or datetime.min.replace(tzinfo=timezone.utc))
        facts = PodFacts(name=pod.metadata.name, phase=pod.status.phase or "", reason=pod.status.reason or "",
                         message=(pod.status.message or "")[:300])
        for status in pod.status.container_statuses or []:
            terminated = status.state.terminated if status.state else None
            waiting = status.state.waiting if status.state else None
            if status.name == CONTAINER and terminated is not None:
                facts.exit_code = terminated.exit_code
                facts.oom_killed = terminated.reason == "OOMKilled"
            if status.name == CONTAINER and waiting is not None:
                facts.waiting_reason = waiting.reason or ""
        if facts.exit_code is not None:
            try:
                response = self._call(f"read the log of {facts.name}", lambda: self.core.read_namespaced_pod_log(
                    facts.name, self.namespace, container=CONTAINER, limit_bytes=2 * MAX_STDOUT_BYTES,
                    _preload_content=False))
                facts.log = response.data
            except (ApiException, ApiUnavailableError) as error:
                log.warning("no log for pod %s: %s", facts.name, describe(getattr(error, "cause", error)))
        return facts

    def events_of(self, job: str, pod: str) -> str:
        """Blocking: `Reason: message` of the latest Warning event of the pod, else of the Job."""
        for involved in (pod, job):
            if not involved:
                continue
            try:
                selector_ = f"involvedObject.name={involved}"
                events = self._call(f"list events of {involved}", lambda: self.core.list_namespaced_event(
                    self.namespace, field_selector=selector_)).items  # noqa: B023 - called at once
            except (ApiException, ApiUnavailableError):
                continue
            reason = warning_reason(events)
            if reason:
                return reason
        return ""

    async def cancel(self, run_id: str) -> bool:
        """Delete the run's Job with foreground propagation; return whether the run was active."""
        active = self._active.get(run_id)
        if active is None:
            return False
        active.cancelled = True
        await asyncio.get_running_loop().run_in_executor(None, self._delete_job, active.job, "Foreground")
        return True

    async def close(self) -> None:
        """Cancel every active run, wait for them to end, and release the client."""
        if self._closed:
            return
        self._closed = True
        for run_id in list(self._active):
            await self.cancel(run_id)
        deadline = time.monotonic() + DELETE_WAIT
        while self._active and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self._threads.shutdown(wait=False)
        self.api.close()
