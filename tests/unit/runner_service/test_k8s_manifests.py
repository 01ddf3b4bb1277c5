"""The pure parts of the Kubernetes executor: the Job and ConfigMap builders (validated against the
Kubernetes 1.33 schemas in strict mode), the pod-log answer, the outcome mapping, the reaping
decision, the retry policy and the creation rate limit. No cluster, no API server."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import urllib3
import yaml
from google.protobuf import duration_pb2
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from csv_analyst.runner.v1 import sandbox_pb2
from csv_analyst.v1 import run_pb2
from runner_service.executors.base import SandboxRequest, SandboxStartError, TableFile
from runner_service.executors.k8s_api import ApiUnavailableError, RetryPolicy, TokenBucket, call
from runner_service.executors.k8s_manifests import (
    ANNOTATION_INSTANCE_POD,
    ANSWER_MARKER,
    LABEL_INSTANCE,
    NONCE_KEY,
    TASK_KEY,
    build_job,
    build_task_config_map,
    claim_sub_path,
    render_yaml,
    run_label,
    task_bytes,
    to_dict,
)
from runner_service.executors.k8s_settings import KubernetesSettings, kubernetes_settings_from_env
from runner_service.executors.kubernetes import JobEnd, PodFacts, job_name, outcome_of, parse_pod_log, should_reap
from runner.messages import read_frame, result_frame

KUBE_VERSION = "1.33"
ROOT = "/var/lib/csv-analyst"
SETTINGS = KubernetesSettings(namespace="runs", data_root=ROOT, data_claim="data", image="runner:abc")
TABLES = (TableFile("orders", f"{ROOT}/datasets/ecommerce/orders.csv"),
          TableFile("items", f"{ROOT}/datasets/ecommerce/order items.csv"))
CLI = str(Path(sys.executable).parent / "csv-analyst")


def make_request(memory_bytes: int = 256 << 20, timeout_s: int = 10, **fields: Any) -> SandboxRequest:
    return SandboxRequest(run_id="run-1", sql="SELECT 1", tables=TABLES, limits=run_pb2.ResourceLimits(
        timeout=duration_pb2.Duration(seconds=timeout_s), memory_bytes=memory_bytes, max_rows=10), **fields)


def manifests(request: SandboxRequest | None = None, settings: KubernetesSettings = SETTINGS
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    request = request or make_request()
    name = job_name(request.run_id)
    job = to_dict(build_job(request, settings, name, "host-1234", settings.image))
    config_map = to_dict(build_task_config_map(request, settings, name, "host-1234",
                                               "6b1c1f8e-0000-4000-8000-000000000001", "cafe"))
    return job, config_map


# --- the manifests ---------------------------------------------------------------------------------

@pytest.mark.parametrize("request_", [make_request(), make_request(database_path=f"{ROOT}/cache/v1/dataset.duckdb"),
                                      make_request(output_dir=f"{ROOT}/cache/build-1")])
def test_manifests_pass_the_1_33_schemas_in_strict_mode(request_: SandboxRequest) -> None:
    for obj in manifests(request_):
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


def test_strict_validation_catches_a_misspelt_field() -> None:
    """The check above can fail: strict mode refuses fields the schema does not know."""
    job, _ = manifests()
    job["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, KUBE_VERSION, strict=True)


def test_the_pod_meets_the_restricted_pod_security_profile() -> None:
    job, _ = manifests()
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsUser"] != 0 and security["runAsNonRoot"] is True
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
    assert not any(pod.get(key) for key in ("hostNetwork", "hostPID", "hostIPC"))
    # Only volume types the restricted profile allows.
    assert {next(k for k in v if k != "name") for v in pod["volumes"]} <= {
        "configMap", "emptyDir", "persistentVolumeClaim", "secret", "projected", "downwardAPI", "csi", "ephemeral"}


def test_the_job_runs_once_within_its_deadline_and_cleans_up() -> None:
    job, _ = manifests(make_request(timeout_s=10))
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and spec["template"]["spec"]["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] == 10 + int(SETTINGS.start_seconds)
    assert spec["ttlSecondsAfterFinished"] == SETTINGS.job_ttl_seconds
    assert spec["suspend"] is True  # resumed once its task ConfigMap exists


def test_resources_are_capped_and_guaranteed() -> None:
    job, _ = manifests(make_request(memory_bytes=256 << 20))
    resources = job["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["limits"] == resources["requests"] == {"cpu": "1000m", "memory": "512Mi"}
    tmp = next(v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == "tmp")
    assert tmp["emptyDir"] == {"sizeLimit": "256Mi"}


def test_the_task_is_in_an_owned_configmap_not_in_the_job() -> None:
    request = make_request()
    job, config_map = manifests(request)
    text = json.dumps(job)
    assert "SELECT 1" not in text and '"orders"' not in text  # neither the SQL nor the table names
    assert config_map["immutable"] is True
    owner = config_map["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "Job" and owner["name"] == job["metadata"]["name"] and owner["blockOwnerDeletion"]
    stream = io.BytesIO(base64.b64decode(config_map["binaryData"][TASK_KEY]))
    setup, query = read_frame(stream), read_frame(stream)
    assert [t.path for t in setup.tables] == ["/data/t0.csv", "/data/t1.csv"] and not setup.sql
    assert (query.run_id, query.sql) == ("run-1", "SELECT 1")
    assert config_map["data"][NONCE_KEY] == "cafe"
    assert task_bytes(request) == stream.getvalue()


def test_a_python_run_carries_its_program() -> None:
    request = make_request(python_code="result = orders.head(1)")
    stream = io.BytesIO(task_bytes(request))
    read_frame(stream)
    assert read_frame(stream).python_code == "result = orders.head(1)"


def test_each_table_is_its_own_read_only_subpath_of_the_claim() -> None:
    job, _ = manifests()
    mounts = job["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    data = [m for m in mounts if m["name"] == "data"]
    assert data == [
        {"mountPath": "/data/t0.csv", "name": "data", "readOnly": True, "subPath": "datasets/ecommerce/orders.csv"},
        {"mountPath": "/data/t1.csv", "name": "data", "readOnly": True,
         "subPath": "datasets/ecommerce/order items.csv"}]
    claim = next(v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == "data")
    assert claim["persistentVolumeClaim"] == {"claimName": "data", "readOnly": True}


def test_a_materialisation_gets_one_writable_mount() -> None:
    job, _ = manifests(make_request(output_dir=f"{ROOT}/cache/build-1"))
    mounts = job["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    writable = [m for m in mounts if not m.get("readOnly") and m["name"] == "data"]
    assert writable == [{"mountPath": "/data/out", "name": "data", "readOnly": False, "subPath": "cache/build-1"}]


@pytest.mark.parametrize("path", ["/etc/passwd", f"{ROOT}/../etc/passwd", f"{ROOT}-other/x.csv", "relative.csv"])
def test_files_outside_the_data_root_cannot_reach_a_pod(path: str) -> None:
    with pytest.raises(SandboxStartError, match="data root"):
        claim_sub_path(path, ROOT)


def test_names_and_labels_are_valid_for_any_run_id() -> None:
    run_id = "a" * 62 + "-"
    name = job_name(run_id)
    assert len(name) <= 63 and name[-1].isalnum()
    assert run_label(run_id) == "a" * 62
    assert job_name(run_id) != name  # a fresh name per execution


def test_node_selector_and_instance_pod() -> None:
    settings = KubernetesSettings(data_root=ROOT, node_selector="pool=runs, zone=a", instance_pod="ns/runner-0")
    job, _ = manifests(settings=settings)
    assert job["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "runs", "zone": "a"}
    assert job["metadata"]["annotations"][ANNOTATION_INSTANCE_POD] == "ns/runner-0"


def test_render_yaml_round_trips() -> None:
    request = make_request()
    name = job_name(request.run_id)
    text = render_yaml([build_job(request, SETTINGS, name, "i", "img")])
    (document,) = list(yaml.safe_load_all(text))
    assert document == to_dict(build_job(request, SETTINGS, name, "i", "img"))


def test_settings_from_environment() -> None:
    settings = kubernetes_settings_from_env({"CSV_ANALYST_K8S_NAMESPACE": "runs", "CSV_ANALYST_K8S_CPU": "0.5",
                                             "CSV_ANALYST_K8S_CREATE_BURST": "3", "OTHER": "x"})
    assert (settings.namespace, settings.cpu, settings.create_burst) == ("runs", 0.5, 3)
    with pytest.raises(ValueError, match="CSV_ANALYST_K8S_CPU"):
        kubernetes_settings_from_env({"CSV_ANALYST_K8S_CPU": "lots"})


def test_cli_render_job_prints_valid_manifests(datasets_dir: Path) -> None:
    result = subprocess.run([CLI, "k8s", "render-job", "--dataset", "ecommerce", "--sql", "SELECT count(*) FROM orders",
                             "--datasets-dir", str(datasets_dir), "--namespace", "runs"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in documents] == ["Job", "ConfigMap"]
    for document in documents:
        kubernetes_validate.validate(document, KUBE_VERSION, strict=True)
        assert document["metadata"]["namespace"] == "runs"
    subpaths = [m.get("subPath") for m in documents[0]["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]]
    assert "ecommerce/orders.csv" in subpaths
    stream = io.BytesIO(base64.b64decode(documents[1]["binaryData"][TASK_KEY]))
    read_frame(stream)
    assert read_frame(stream).sql == "SELECT count(*) FROM orders"


def test_cli_render_job_unknown_dataset(datasets_dir: Path) -> None:
    result = subprocess.run([CLI, "k8s", "render-job", "--dataset", "nope", "--sql", "SELECT 1",
                             "--datasets-dir", str(datasets_dir)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 2 and "nope" in result.stderr and not result.stdout


# --- reading the answer ------------------------------------------------------------------------------

def answer_line(result: sandbox_pb2.SandboxResult, nonce: str = "cafe") -> bytes:
    return ANSWER_MARKER + nonce.encode() + b":" + base64.b64encode(result_frame(result)) + b"\n"


def test_the_answer_is_the_line_with_the_runs_nonce() -> None:
    real = sandbox_pb2.SandboxResult(rows_produced=3)
    forged = sandbox_pb2.SandboxResult(rows_produced=999)
    log = b"warming up\n" + answer_line(forged, "0000") + b"stderr text\n" + answer_line(real)
    answer, rest = parse_pod_log(log, "cafe")
    assert answer == result_frame(real)
    assert b"warming up" in rest and b"stderr text" in rest and ANSWER_MARKER + b"cafe" not in rest


def test_no_answer_line() -> None:
    assert parse_pod_log(b"Traceback ...\nboom\n", "cafe") == (None, b"Traceback ...\nboom\n")


def outcome(end: JobEnd, pod: PodFacts, cancelled: bool = False, events: str = "") -> sandbox_pb2.SandboxResult:
    return outcome_of(make_request(), end, pod, "cafe", 120.0, cancelled, events).result


def test_outcome_of_a_completed_job() -> None:
    real = sandbox_pb2.SandboxResult(rows_produced=3)
    result = outcome(JobEnd("complete", ran=True), PodFacts("p", answer_line(real), 0))
    assert result == real


def test_a_complete_job_without_a_whole_answer_is_never_a_result() -> None:
    cut = answer_line(sandbox_pb2.SandboxResult(rows_produced=3))[:-20] + b"\n"
    for log in (b"", cut):
        result = outcome(JobEnd("complete", ran=True), PodFacts("p", log, 0))
        assert result.error.code == run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR, log


@pytest.mark.parametrize(("end", "pod", "code"), [
    (JobEnd("failed", "DeadlineExceeded", ran=False), PodFacts("p", phase="Pending"),
     run_pb2.ERROR_CODE_RUNNER_UNAVAILABLE),
    (JobEnd("start-timeout"), PodFacts("p", phase="Pending"), run_pb2.ERROR_CODE_RUNNER_UNAVAILABLE),
    (JobEnd("failed", "DeadlineExceeded", ran=True), PodFacts("p", b"", 137), run_pb2.ERROR_CODE_RUNNER_TIMEOUT),
    (JobEnd("run-timeout", ran=True), PodFacts(), run_pb2.ERROR_CODE_RUNNER_TIMEOUT),
    (JobEnd("failed", "BackoffLimitExceeded", ran=True), PodFacts("p", b"", 137, oom_killed=True),
     run_pb2.ERROR_CODE_RUNNER_RESOURCE_EXCEEDED),
    (JobEnd("failed", "BackoffLimitExceeded", ran=True), PodFacts("p", b"boom happened\n", 5),
     run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR),
    (JobEnd("failed", "BackoffLimitExceeded", ran=True), PodFacts("p", phase="Failed", reason="Evicted"),
     run_pb2.ERROR_CODE_RUNNER_UNAVAILABLE),
    (JobEnd("deleted", ran=True), PodFacts(), run_pb2.ERROR_CODE_RUNNER_UNAVAILABLE),
    (JobEnd("cancelled", ran=True), PodFacts(), run_pb2.ERROR_CODE_CANCELLED),
])
def test_outcome_error_codes(end: JobEnd, pod: PodFacts, code: int) -> None:
    assert outcome(end, pod).error.code == code


def test_a_pending_pod_names_the_reasons_but_not_the_event_text() -> None:
    result = outcome(JobEnd("start-timeout"), PodFacts("p", phase="Pending", waiting_reason="ErrImagePull"),
                     events="Failed: Failed to pull image registry.internal:5000/runner: dial tcp 10.1.2.3:443")
    assert result.error.status_code == 14
    assert "ErrImagePull, Failed" in result.error.message and "kubernetes.start_seconds" in result.error.message
    assert "10.1.2.3" not in result.error.message and "registry.internal" not in result.error.message
    quota = outcome(JobEnd("start-timeout"), PodFacts(), events="FailedCreate: pods is forbidden: exceeded quota")
    assert quota.error.message.endswith("FailedCreate")


def test_a_failed_runner_keeps_its_stderr_out_of_the_client_error() -> None:
    result = outcome_of(make_request(), JobEnd("failed", "BackoffLimitExceeded", ran=True),
                        PodFacts("p", b"boom happened at /srv/secret/path\n", 5), "cafe", 120.0, False)
    assert result.result.error.code == run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR
    assert "/srv/secret" not in result.result.error.message and "boom happened" in result.stderr


# --- reaping -------------------------------------------------------------------------------------

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)  # the jobs' ages count from a fixed instant, not from collection


def job_meta(instance: str, age_s: float, owner_pod: str = "") -> client.V1Job:
    created = NOW - timedelta(seconds=age_s)
    return client.V1Job(metadata=client.V1ObjectMeta(
        name="run-x", labels={LABEL_INSTANCE: instance}, creation_timestamp=created,
        annotations={ANNOTATION_INSTANCE_POD: owner_pod} if owner_pod else None))


@pytest.mark.parametrize(("job", "alive", "reap"), [
    (job_meta("me", 10_000), False, False),            # never our own
    (job_meta("other", 10_000), True, True),           # past the longest run: a leak
    (job_meta("other", 5, "ns/gone"), False, True),     # its owner pod is gone
    (job_meta("other", 5, "ns/there"), True, False),    # a live replica's run
    (job_meta("other", 5), False, False),               # unknown owner, young: leave it to its deadline
])
def test_should_reap(job: client.V1Job, alive: bool, reap: bool) -> None:
    assert should_reap(job, "me", NOW, 600.0, lambda _: alive) is reap


# --- retries and the rate limit ------------------------------------------------------------------

def flaky(errors: list[BaseException]) -> Any:
    calls = []

    def function() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return "done"
    function.calls = calls  # type: ignore[attr-defined]
    return function


@pytest.mark.parametrize("error", [ApiException(status=409), ApiException(status=429), ApiException(status=503),
                                   ApiException(status=500), urllib3.exceptions.ProtocolError("reset"),
                                   ConnectionResetError()])
def test_transient_errors_are_retried(error: BaseException) -> None:
    function = flaky([error, error])
    delays: list[float] = []
    assert call("x", function, RetryPolicy(attempts=3, backoff_seconds=0.1), delays.append) == "done"
    assert len(function.calls) == 3 and len(delays) == 2 and delays[1] >= delays[0] * 1.3


def test_retries_are_bounded() -> None:
    function = flaky([ApiException(status=503)] * 10)
    with pytest.raises(ApiUnavailableError, match="3 attempts"):
        call("x", function, RetryPolicy(attempts=3, backoff_seconds=0.01), lambda _: None)
    assert len(function.calls) == 3


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_answers_are_not_retried(status: int) -> None:
    function = flaky([ApiException(status=status)])
    with pytest.raises(ApiException):
        call("x", function, RetryPolicy(attempts=5), lambda _: None)
    assert len(function.calls) == 1


def test_retry_after_is_honoured_within_the_cap() -> None:
    error = ApiException(status=429)
    error.headers = {"Retry-After": "2"}
    assert RetryPolicy(backoff_seconds=0.1).delay(1, error) == 2.0


def test_token_bucket_spreads_a_burst() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3, clock=lambda: now[0])
    waits = [bucket.reserve() for _ in range(5)]
    assert waits == [0.0, 0.0, 0.0, 0.5, 1.0]
    now[0] = 10.0
    assert bucket.reserve() == 0.0  # refilled (up to the burst)
