"""The Job (and its task ConfigMap) of one run, built from the official client's models (pure).

What each run gets, and why:
- one Job, `suspend: true` at creation so that its task ConfigMap can be created owned by it
  (garbage-collected with it, never orphaned) before any pod exists; the executor then resumes it;
- `backoffLimit: 0` (a run is tried once), `activeDeadlineSeconds` = the run's limit plus the
  start allowance, `ttlSecondsAfterFinished` as a backstop for the executor's own deletion;
- a pod meeting the Pod Security "restricted" profile: non-root uid/gid 65534, seccomp
  RuntimeDefault, no privilege escalation, every capability dropped, read-only root filesystem;
  no service-account token, no service links in the environment, `restartPolicy: Never`;
- cpu/memory requests equal to limits (Guaranteed QoS; the memory cap is a multiple of DuckDB's
  memory_limit as in the other executors), a size-limited emptyDir at /tmp;
- the task (set-up frame + query frame, runner/messages.py) in a ConfigMap mounted read-only as a
  file, not in the Job's environment or arguments; the runner reads it as its stdin;
- the dataset files from the data PersistentVolumeClaim, each mounted read-only by subPath at
  /data/tN.csv (or the materialised /data/dataset.duckdb), so no other dataset is visible.

The runner's framed answer comes back through the pod log: stdout and stderr share that log, so
the entry script below captures the runner's stdout and writes it as one base64 line after a
marker, once the runner's diagnostics are flushed (see parse_pod_log in executors/kubernetes.py).
"""

from __future__ import annotations

import base64
import math
import posixpath
from collections.abc import Mapping
from typing import Any

import yaml
from kubernetes import client

from runner_service.executors.base import DATABASE_FILE, OUTPUT_SUBDIR, SandboxRequest, SandboxStartError
from runner_service.executors import native_sql
from runner_service.executors.docker import (
    APP_DIR,
    DATA_DIR,
    DEFAULT_TIMEOUT,
    IMAGE_NATIVE_CLI,
    IMAGE_PYTHON,
    MIN_TMP,
    container_memory_bytes,
    native_setup,
    sandbox_table_paths,
    setup_frame,
)
from runner_service.executors.k8s_settings import KubernetesSettings
from runner.messages import query_frame

CONTAINER = "runner"
TASK_DIR = "/var/run/csv-analyst"
TASK_KEY = "task"
NONCE_KEY = "nonce"
ANSWER_MARKER = b"csv-analyst-answer:"
SANDBOX_ID = 65534

LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_OWNER = "csv-analyst.io/owner"
LABEL_INSTANCE = "csv-analyst.io/instance"
LABEL_RUN_ID = "csv-analyst.io/run-id"
LABEL_JOB = "csv-analyst.io/job"
ANNOTATION_RUN_ID = "csv-analyst.io/run-id"
ANNOTATION_INSTANCE_POD = "csv-analyst.io/instance-pod"
MANAGED_BY = "csv-analyst-runner-service"
COMPONENT = "run"

# Runs the runner with the task file as stdin and its stdout captured, then writes that stdout
# (the framed answer) as one marked base64 line: the pod log mixes both streams and is text. The
# marker carries a per-run nonce from the task ConfigMap, so no text the runner echoes to stderr
# (an error quoting the SQL, say) can pass for the answer.
ENTRY = f"""\
import base64, io, os, sys
with open({TASK_DIR + '/' + NONCE_KEY!r}, "rb") as nonce_file:
    marker = {ANSWER_MARKER!r} + nonce_file.read().strip() + b":"
os.dup2(os.open({TASK_DIR + '/' + TASK_KEY!r}, os.O_RDONLY), 0)
answer = io.BytesIO()
sys.stdout = io.TextIOWrapper(answer)
from runner.__main__ import main
code = main()
sys.stdout.flush()
sys.stderr.flush()
out = sys.__stdout__.buffer
out.write(marker + base64.b64encode(answer.getvalue()) + b"\\n")
out.flush()
os._exit(code)
"""


# The native SQL runner (native_sql.py): the image's DuckDB CLI reads the task (its set-up and
# query scripts) as stdin; its whole output becomes the same marked base64 line, after it exits
# (no Python starts). /tmp is the pod's emptyDir.
NATIVE_ENTRY = (
    f'nonce=$(cat {TASK_DIR}/{NONCE_KEY}); {IMAGE_NATIVE_CLI} {" ".join(native_sql.CLI_FLAGS)} '
    f'<{TASK_DIR}/{TASK_KEY} >/tmp/answer; code=$?; '
    f'printf "%s" "{ANSWER_MARKER.decode()}$nonce:"; base64 -w0 /tmp/answer; echo; exit $code'
)


def runs_native(request: SandboxRequest, native: bool) -> bool:
    """Whether this run's pod runs the native DuckDB CLI (SQL on a materialised dataset)."""
    return native and native_sql.serves(request)


def run_label(run_id: str) -> str:
    """The run id as a label value (at most 63 characters, alphanumeric at both ends)."""
    return run_id[:63].strip("-") or "none"


def selector(labels: Mapping[str, str]) -> str:
    """An equality label selector (`k=v,k=v`)."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def owner_labels(settings: KubernetesSettings) -> dict[str, str]:
    """Labels every object of this service's runs carries (the reaper selects on them)."""
    return {LABEL_NAME: "csv-analyst", LABEL_COMPONENT: COMPONENT, LABEL_MANAGED_BY: MANAGED_BY,
            LABEL_OWNER: settings.owner}


def run_labels(settings: KubernetesSettings, request: SandboxRequest, job_name: str, instance: str) -> dict[str, str]:
    """Labels of one run's Job, ConfigMap and pod."""
    return {**owner_labels(settings), LABEL_INSTANCE: instance, LABEL_RUN_ID: run_label(request.run_id),
            LABEL_JOB: job_name}


def claim_sub_path(host_path: str, data_root: str) -> str:
    """The subPath inside the data claim of a file the runner service sees at host_path (pure).

    Raises:
        SandboxStartError: When the file is not below data_root (it cannot reach a run pod).
    """
    root = posixpath.normpath(data_root)
    path = posixpath.normpath(host_path)
    if not posixpath.isabs(path) or (root != "/" and not path.startswith(root + "/")):
        raise SandboxStartError(f"{host_path} is not below the Kubernetes data root {data_root} "
                                "(kubernetes.data_root), so no run pod can mount it")
    return posixpath.relpath(path, root)


def task_bytes(request: SandboxRequest, native: bool = False) -> bytes:
    """What the runner reads as stdin: the set-up frame, then the query frame (SQL or Python);
    for the native CLI, its set-up and query scripts."""
    if runs_native(request, native):
        return native_setup(request) + native_sql.query_script(request.sql, request.limits.max_rows or 200)
    return setup_frame(request) + query_frame(request.run_id, request.sql, request.python_code)


def _quantity(count: int) -> str:
    return f"{math.ceil(count / (1 << 20))}Mi"


def _node_selector(text: str) -> dict[str, str] | None:
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    return {key.strip(): value.strip() for key, value in pairs} or None


def _data_mounts(request: SandboxRequest, settings: KubernetesSettings) -> list[client.V1VolumeMount]:
    if request.database_path:
        mounts = [client.V1VolumeMount(name="data", mount_path=f"{DATA_DIR}/{DATABASE_FILE}", read_only=True,
                                       sub_path=claim_sub_path(request.database_path, settings.data_root))]
    else:
        mounts = [client.V1VolumeMount(name="data", mount_path=inside, read_only=True,
                                       sub_path=claim_sub_path(table.host_path, settings.data_root))
                  for table, inside in zip(request.tables, sandbox_table_paths(request), strict=True)]
    if request.output_dir:
        # The one writable mount: the materialiser's fresh per-build directory.
        mounts.append(client.V1VolumeMount(name="data", mount_path=f"{DATA_DIR}/{OUTPUT_SUBDIR}", read_only=False,
                                           sub_path=claim_sub_path(request.output_dir, settings.data_root)))
    return mounts


def active_deadline_seconds(request: SandboxRequest, settings: KubernetesSettings) -> int:
    """The Job's activeDeadlineSeconds: the run's limit plus the start allowance, whole seconds."""
    limit = request.limits.timeout.ToMilliseconds() / 1000 or DEFAULT_TIMEOUT
    return math.ceil(limit + settings.start_seconds)


def build_job(request: SandboxRequest, settings: KubernetesSettings, job_name: str, instance: str,
              image: str, native: bool = False) -> client.V1Job:
    """The Job of one run, created suspended (pure; see the module docstring).

    Args:
        request: The run.
        settings: Executor settings (namespace, claim, cpu, TTL, ...).
        job_name: The Job's name (also the ConfigMap's).
        instance: This executor instance's label value.
        image: The runner image.
        native: Run SQL on a materialised dataset with the image's DuckDB CLI (NATIVE_ENTRY).

    Raises:
        SandboxStartError: When a table file is not below the data root.
    """
    labels = run_labels(settings, request, job_name, instance)
    annotations = {ANNOTATION_RUN_ID: request.run_id}
    if settings.instance_pod:
        annotations[ANNOTATION_INSTANCE_POD] = settings.instance_pod
    memory = _quantity(container_memory_bytes(request))
    cpu = f"{max(int(settings.cpu * 1000), 10)}m"
    tmp = _quantity(max(MIN_TMP, request.limits.memory_bytes))
    container = client.V1Container(
        name=CONTAINER,
        image=image,
        image_pull_policy=settings.image_pull_policy,
        command=["/bin/sh", "-c", NATIVE_ENTRY] if runs_native(request, native) else [IMAGE_PYTHON, "-c", ENTRY],
        working_dir="/tmp",
        # The whole environment: nothing from the service leaks in.
        env=[client.V1EnvVar(name=key, value=value) for key, value in (
            ("HOME", "/tmp"), ("LANG", "C.UTF-8"), ("TZ", "UTC"), ("PYTHONPATH", APP_DIR),
            ("PYTHONDONTWRITEBYTECODE", "1"))],
        resources=client.V1ResourceRequirements(requests={"cpu": cpu, "memory": memory},
                                                limits={"cpu": cpu, "memory": memory}),
        security_context=client.V1SecurityContext(
            allow_privilege_escalation=False, privileged=False, read_only_root_filesystem=True,
            run_as_non_root=True, run_as_user=SANDBOX_ID, run_as_group=SANDBOX_ID,
            capabilities=client.V1Capabilities(drop=["ALL"]),
            seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault")),
        volume_mounts=[client.V1VolumeMount(name="task", mount_path=TASK_DIR, read_only=True),
                       client.V1VolumeMount(name="tmp", mount_path="/tmp"),
                       *_data_mounts(request, settings)],
        termination_message_policy="FallbackToLogsOnError",
    )
    pod = client.V1PodSpec(
        containers=[container],
        restart_policy="Never",
        automount_service_account_token=False,
        service_account_name=settings.service_account or None,
        enable_service_links=False,
        host_network=False, host_pid=False, host_ipc=False,
        termination_grace_period_seconds=1,
        node_selector=_node_selector(settings.node_selector),
        security_context=client.V1PodSecurityContext(
            run_as_non_root=True, run_as_user=SANDBOX_ID, run_as_group=SANDBOX_ID,
            seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault")),
        volumes=[
            client.V1Volume(name="task", config_map=client.V1ConfigMapVolumeSource(
                name=job_name, default_mode=0o444,
                items=[client.V1KeyToPath(key=key, path=key) for key in (TASK_KEY, NONCE_KEY)])),
            client.V1Volume(name="tmp", empty_dir=client.V1EmptyDirVolumeSource(size_limit=tmp)),
            client.V1Volume(name="data", persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
                claim_name=settings.data_claim, read_only=not request.output_dir)),
        ],
    )
    return client.V1Job(
        api_version="batch/v1", kind="Job",
        metadata=client.V1ObjectMeta(name=job_name, namespace=settings.namespace or None, labels=labels,
                                     annotations=annotations),
        spec=client.V1JobSpec(
            suspend=True,
            backoff_limit=0,
            completions=1,
            parallelism=1,
            active_deadline_seconds=active_deadline_seconds(request, settings),
            ttl_seconds_after_finished=settings.job_ttl_seconds,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels, annotations=annotations), spec=pod),
        ),
    )


def build_task_config_map(request: SandboxRequest, settings: KubernetesSettings, job_name: str, instance: str,
                          job_uid: str, nonce: str, native: bool = False) -> client.V1ConfigMap:
    """The run's task as an immutable ConfigMap owned by its Job (deleted with it; pure).

    A ConfigMap rather than a Secret: the task holds the SQL and the in-pod file names, which the
    capsule records anyway, and the service then needs only `create` on configmaps, where a
    Secret-based design would have it able to create (and, to reap, list, i.e. read) secrets.
    """
    return client.V1ConfigMap(
        api_version="v1", kind="ConfigMap",
        metadata=client.V1ObjectMeta(
            name=job_name, namespace=settings.namespace or None,
            labels=run_labels(settings, request, job_name, instance),
            owner_references=[client.V1OwnerReference(api_version="batch/v1", kind="Job", name=job_name, uid=job_uid,
                                                      controller=True, block_owner_deletion=True)]),
        binary_data={TASK_KEY: base64.b64encode(task_bytes(request, native)).decode()},
        data={NONCE_KEY: nonce},
        immutable=True,
    )


def to_dict(model: Any) -> dict[str, Any]:
    """A client model as the API's JSON-shaped dict (camelCase keys, no unset fields)."""
    result: dict[str, Any] = client.ApiClient().sanitize_for_serialization(model)
    return result


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (the entry script) as literal blocks."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _text)


def render_yaml(models: list[Any]) -> str:
    """Models as a multi-document YAML stream, as `kubectl apply -f` reads it."""
    return yaml.dump_all([to_dict(m) for m in models], Dumper=_Dumper, sort_keys=False)
