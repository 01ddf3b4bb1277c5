"""A local Kubernetes API server for the executor's tests, whose "kubelet" runs pods with Docker.

It implements the REST paths the Kubernetes executor uses, with the API's JSON shapes and status
codes: Jobs (create, get, list with label selectors, watch with resourceVersion / timeoutSeconds
and 410 Gone for expired versions, merge patch, delete with Foreground or Background
propagation), ConfigMaps (create, get), pods (list, get, log), events (list by involved object).
Every created object is checked against the Kubernetes 1.33 schemas with kubernetes-validate in
strict mode, as an API server would reject it (422).

Resuming a Job starts its pod the way a kubelet would, through the real Docker engine: the
pod's image and command, its environment, non-root user, read-only root filesystem, dropped
capabilities and no-new-privileges, memory and CPU limits, its ConfigMap volume as read-only
files, its emptyDir as a size-capped tmpfs, its PersistentVolumeClaim subPath mounts as binds of
files under the claim's directory, and no network (what the chart's NetworkPolicy gives run
pods). A missing image leaves the pod Pending with ErrImagePull events until the Job's
activeDeadlineSeconds fails it (DeadlineExceeded), as on a cluster.

Not emulated (a live cluster proves these; see README "Deploy on Kubernetes"): admission (Pod
Security, quotas, LimitRanges), scheduling, RBAC, NetworkPolicy enforcement by a CNI, TTL
controller, log rotation, image pulls.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import base64

import kubernetes_validate
from kubernetes.utils import parse_quantity

KUBE_VERSION = "1.33"
JOBS = re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs(?:/([^/]+))?$")
CORE = re.compile(r"^/api/v1/namespaces/([^/]+)/(configmaps|pods|events)(?:/([^/]+))?(/log)?$")


def now_text() -> str:
    """The current time as the API writes it."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def matches(labels: dict[str, str], selector: str) -> bool:
    """Whether labels satisfy an equality selector `k=v,k=v`."""
    for term in filter(None, (selector or "").split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


def field_value(obj: dict[str, Any], path: str) -> Any:
    """obj's value at a dotted field path."""
    for part in path.split("."):
        obj = obj.get(part, {}) if isinstance(obj, dict) else {}
    return obj


def merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """JSON merge patch (RFC 7386) in place."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


@dataclass
class Fault:
    """Answer the next `times` requests matching method and path with `status` ("reset": drop the connection)."""

    method: str
    path: str
    status: int | str
    times: int = 1
    reason: str = ""


@dataclass
class _JobRun:
    container_id: str = ""
    deleting: bool = False
    thread: threading.Thread | None = None


@dataclass
class FakeCluster:
    """The API server state, its HTTP server and its Docker "kubelet".

    Attributes:
        claims: PersistentVolumeClaim name -> host directory it stands for.
        docker: A docker.APIClient, or None (pods then stay Pending with an event saying why).
    """

    claims: dict[str, str]
    docker: Any = None
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    history: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, list[str]], Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    compacted: int = 0
    version: int = 100
    runs: dict[tuple[str, str], _JobRun] = field(default_factory=dict)
    containers_started: list[dict[str, Any]] = field(default_factory=list)
    # Test knobs: replace every pod's command (a probe standing in for the runner), and answer the
    # next N watches that name a resourceVersion with 410 Gone.
    command: list[str] | None = None
    expire_watches: int = 0

    def __post_init__(self) -> None:
        self.cond = threading.Condition()
        self.workdir = Path(tempfile.mkdtemp(prefix="fake-kubelet-"))
        cluster = self

        class Handler(_Handler):
            state = cluster

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """Base URL of the API server."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def kubeconfig(self, path: Path, namespace: str = "runs") -> Path:
        """Write a kubeconfig file pointing at this server."""
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "test-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}]}))
        return path

    def close(self) -> None:
        """Stop serving, kill every container, remove the scratch directory."""
        self.server.shutdown()
        self.server.server_close()
        for run in list(self.runs.values()):
            run.deleting = True
            self._kill(run.container_id)
        for run in list(self.runs.values()):
            if run.thread is not None:
                run.thread.join(30)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- state ---

    def _store(self, kind: str, obj: dict[str, Any], event: str) -> dict[str, Any]:
        """Record a change (under self.cond) and wake watchers."""
        self.version += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.version)
        key = (kind, meta["namespace"], meta["name"])
        if event == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj
        self.history.append((self.version, kind, event, copy.deepcopy(obj)))
        self.cond.notify_all()
        return obj

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A copy of an object, or None."""
        with self.cond:
            obj = self.objects.get((kind, namespace, name))
            return copy.deepcopy(obj) if obj else None

    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Copies of every object of a kind."""
        with self.cond:
            return [copy.deepcopy(o) for (k, ns, _), o in self.objects.items()
                    if k == kind and (namespace is None or ns == namespace)]

    def add(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an object as created (uid, timestamps)."""
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_text())
        with self.cond:
            return copy.deepcopy(self._store(kind, obj, "ADDED"))

    def update(self, kind: str, namespace: str, name: str, change: dict[str, Any]) -> dict[str, Any] | None:
        """Merge `change` into an object."""
        with self.cond:
            obj = self.objects.get((kind, namespace, name))
            if obj is None:
                return None
            merge(obj, change)
            return copy.deepcopy(self._store(kind, obj, "MODIFIED"))

    def remove(self, kind: str, namespace: str, name: str) -> None:
        """Delete an object."""
        with self.cond:
            obj = self.objects.get((kind, namespace, name))
            if obj is not None:
                self._store(kind, obj, "DELETED")

    def event(self, namespace: str, kind: str, name: str, reason: str, message: str, kind_of: str = "Warning") -> None:
        """Record an Event about an object."""
        self.add("events", {"apiVersion": "v1", "kind": "Event",
                            "metadata": {"name": f"{name}.{uuid.uuid4().hex[:10]}", "namespace": namespace},
                            "involvedObject": {"kind": kind, "name": name, "namespace": namespace},
                            "reason": reason, "message": message, "type": kind_of,
                            "firstTimestamp": now_text(), "lastTimestamp": now_text(), "count": 1})

    def compact(self) -> None:
        """Forget history: watches from older resourceVersions get 410 Gone."""
        with self.cond:
            self.compacted = self.version

    def wait_for(self, predicate: Any, timeout: float = 60.0) -> bool:
        """Wait until predicate() (called under the lock) is true."""
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    # --- the Job controller and the kubelet ---

    def resume(self, namespace: str, name: str) -> None:
        """Start a Job's pod in a thread (the Job was created or patched with suspend false)."""
        run = self.runs.setdefault((namespace, name), _JobRun())
        if run.thread is None:
            run.thread = threading.Thread(target=self._run_job, args=(namespace, name, run), daemon=True)
            run.thread.start()

    def _run_job(self, namespace: str, name: str, run: _JobRun) -> None:
        job = self.get("jobs", namespace, name)
        if job is None:
            return
        started = time.monotonic()
        deadline = started + job["spec"].get("activeDeadlineSeconds", 10**6)
        template = job["spec"]["template"]
        pod_name = f"{name}-{uuid.uuid4().hex[:5]}"
        labels = {**template["metadata"].get("labels", {}), "batch.kubernetes.io/job-name": name}
        pod = self.add("pods", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name, "namespace": namespace, "labels": labels,
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                                              "uid": job["metadata"]["uid"], "controller": True}]},
            "spec": copy.deepcopy(template["spec"]), "status": {"phase": "Pending"}})
        self.update("jobs", namespace, name, {"status": {"active": 1, "ready": 0, "startTime": now_text()}})
        container = template["spec"]["containers"][0]
        try:
            container_id = self._create_container(namespace, pod, container)
        except _PodStuck as stuck:
            self.event(namespace, "Pod", pod_name, stuck.reason, stuck.message)
            self.update("pods", namespace, pod_name, {"status": {"containerStatuses": [{
                "name": container["name"], "image": container["image"], "imageID": "", "ready": False,
                "restartCount": 0, "state": {"waiting": {"reason": stuck.waiting, "message": stuck.message}}}]}})
            while not run.deleting and time.monotonic() < deadline:
                time.sleep(0.1)
            if not run.deleting:
                self._finish(namespace, name, pod_name, container, None, False, "DeadlineExceeded")
            return
        run.container_id = container_id
        if run.deleting:
            self._kill(container_id)
            self._remove_container(container_id)
            return
        self.docker.start(container_id)
        self.update("pods", namespace, pod_name, {"status": {"phase": "Running", "containerStatuses": [{
            "name": container["name"], "image": container["image"], "imageID": "docker://x", "ready": True,
            "restartCount": 0, "started": True, "state": {"running": {"startedAt": now_text()}}}]}})
        self.update("jobs", namespace, name, {"status": {"ready": 1}})
        timed_out = False
        while True:
            try:
                self.docker.wait(container_id, timeout=max(min(deadline - time.monotonic(), 1.0), 0.05))
                break
            except Exception:  # noqa: BLE001 - requests' ReadTimeout: still running
                if time.monotonic() >= deadline and not run.deleting:
                    timed_out = True
                    self._kill(container_id)
        state = self.docker.inspect_container(container_id)["State"]
        log = self.docker.logs(container_id, stdout=True, stderr=True)
        self._remove_container(container_id)
        if run.deleting:
            return
        with self.cond:
            stored = self.objects.get(("pods", namespace, pod_name))
            if stored is not None:
                stored["_log"] = log
        self._finish(namespace, name, pod_name, container, state, bool(state.get("OOMKilled")),
                     "DeadlineExceeded" if timed_out else "")

    def _finish(self, namespace: str, name: str, pod_name: str, container: dict[str, Any],
                state: dict[str, Any] | None, oom: bool, failure: str) -> None:
        exit_code = state.get("ExitCode") if state else None
        succeeded = not failure and exit_code == 0
        container_state: dict[str, Any] = {"waiting": {"reason": "ErrImagePull"}} if state is None else {
            "terminated": {"exitCode": exit_code,
                           "reason": "OOMKilled" if oom else ("Completed" if succeeded else "Error"),
                           "finishedAt": now_text()}}
        self.update("pods", namespace, pod_name, {"status": {
            "phase": "Succeeded" if succeeded else "Failed", "containerStatuses": [{
                "name": container["name"], "image": container["image"], "imageID": "", "ready": False,
                "restartCount": 0, "state": container_state}]}})
        if succeeded:
            condition = {"type": "Complete", "status": "True", "reason": "Completed"}
            counts = {"succeeded": 1}
        else:
            reason = failure or "BackoffLimitExceeded"
            condition = {"type": "Failed", "status": "True", "reason": reason,
                         "message": "Job was active longer than specified deadline" if failure
                         else "Job has reached the specified backoff limit"}
            counts = {"failed": 1}
            if failure:
                self.event(namespace, "Job", name, "DeadlineExceeded", condition["message"])
        self.update("jobs", namespace, name, {"status": {"active": 0, "ready": 0, "conditions": [condition], **counts,
                                                         "completionTime": now_text()}})

    def _create_container(self, namespace: str, pod: dict[str, Any], container: dict[str, Any]) -> str:
        if self.docker is None:
            raise _PodStuck("Failed", "no container runtime")
        try:
            self.docker.inspect_image(container["image"])
        except Exception as error:  # noqa: BLE001 - ImageNotFound or any engine error
            raise _PodStuck("Failed", f"Failed to pull image \"{container['image']}\": {error}"[:300],
                            "ErrImagePull") from error
        spec = pod["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        pod_dir = self.workdir / pod["metadata"]["name"]
        mounts, tmpfs = [], {}
        for mount in container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            read_only = bool(mount.get("readOnly"))
            if "configMap" in volume:
                config_map = self.get("configmaps", namespace, volume["configMap"]["name"])
                if config_map is None:
                    raise _PodStuck("FailedMount", f"configmap \"{volume['configMap']['name']}\" not found")
                target = pod_dir / mount["name"]
                target.mkdir(parents=True)
                data = {k: v.encode() for k, v in config_map.get("data", {}).items()}
                data.update({k: base64.b64decode(v) for k, v in config_map.get("binaryData", {}).items()})
                for item in volume["configMap"].get("items") or [{"key": k, "path": k} for k in data]:
                    path = target / item["path"]
                    path.write_bytes(data[item["key"]])
                    path.chmod(volume["configMap"].get("defaultMode", 0o644))
                target.chmod(0o755)
                pod_dir.chmod(0o755)
                mounts.append({"Type": "bind", "Source": str(target), "Target": mount["mountPath"], "ReadOnly": True})
            elif "emptyDir" in volume:
                size = int(parse_quantity(volume["emptyDir"].get("sizeLimit", "64Mi")))
                tmpfs[mount["mountPath"]] = f"rw,nosuid,nodev,size={size},mode=1777"
            elif "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]
                if claim["claimName"] not in self.claims:
                    raise _PodStuck("FailedMount", f"persistentvolumeclaim \"{claim['claimName']}\" not found")
                root = Path(self.claims[claim["claimName"]])
                source = (root / mount.get("subPath", "")).resolve()
                if root.resolve() not in (source, *source.parents) or not source.exists():
                    raise _PodStuck("FailedMount", f"subPath {mount.get('subPath')} is not in the volume")
                mounts.append({"Type": "bind", "Source": str(source), "Target": mount["mountPath"],
                               "ReadOnly": read_only or bool(claim.get("readOnly"))})
            else:
                raise _PodStuck("FailedMount", f"volume type of {mount['name']} not supported here")
        security = {**spec.get("securityContext", {}), **container.get("securityContext", {})}
        limits = container.get("resources", {}).get("limits", {})
        memory = int(parse_quantity(limits["memory"])) if "memory" in limits else None
        host_config = self.docker.create_host_config(
            network_mode="none", read_only=bool(security.get("readOnlyRootFilesystem")), mounts=mounts, tmpfs=tmpfs,
            cap_drop=security.get("capabilities", {}).get("drop"),
            security_opt=["no-new-privileges"] if security.get("allowPrivilegeEscalation") is False else None,
            mem_limit=memory, memswap_limit=memory,
            nano_cpus=int(float(parse_quantity(limits["cpu"])) * 1e9) if "cpu" in limits else None,
            pids_limit=1024)
        user = f"{security['runAsUser']}:{security.get('runAsGroup', security['runAsUser'])}" \
            if "runAsUser" in security else None
        created = self.docker.create_container(
            image=container["image"], entrypoint=self.command or container.get("command"),
            command=container.get("args"),
            environment={e["name"]: e.get("value", "") for e in container.get("env", [])},
            working_dir=container.get("workingDir"), user=user, host_config=host_config, network_disabled=True,
            labels={"csv-analyst.fake-kubelet": pod["metadata"]["name"]})
        self.containers_started.append({"pod": pod["metadata"]["name"], "id": created["Id"]})
        return str(created["Id"])

    def _kill(self, container_id: str) -> None:
        if container_id and self.docker is not None:
            try:
                self.docker.kill(container_id)
            except Exception:  # noqa: BLE001 - already exited or removed
                pass

    def _remove_container(self, container_id: str) -> None:
        try:
            self.docker.remove_container(container_id, force=True)
        except Exception:  # noqa: BLE001 - already removed
            pass

    def delete_job(self, namespace: str, name: str, propagation: str) -> dict[str, Any] | None:
        """Delete a Job: Foreground marks it and removes it after its pods; Background at once."""
        job = self.get("jobs", namespace, name)
        if job is None:
            return None
        run = self.runs.setdefault((namespace, name), _JobRun())
        run.deleting = True

        def collect() -> None:
            self._kill(run.container_id)
            if run.thread is not None:
                run.thread.join(30)
            for pod in self.list("pods", namespace):
                if any(ref.get("uid") == job["metadata"]["uid"] for ref in pod["metadata"].get("ownerReferences", [])):
                    self.remove("pods", namespace, pod["metadata"]["name"])
            for config_map in self.list("configmaps", namespace):
                if any(ref.get("uid") == job["metadata"]["uid"]
                       for ref in config_map["metadata"].get("ownerReferences", [])):
                    self.remove("configmaps", namespace, config_map["metadata"]["name"])
            if propagation == "Foreground":
                self.remove("jobs", namespace, name)

        if propagation == "Foreground":
            marked = self.update("jobs", namespace, name, {"metadata": {"deletionTimestamp": now_text(),
                                                                        "finalizers": ["foregroundDeletion"]}})
            threading.Thread(target=collect, daemon=True).start()
            return marked
        self.remove("jobs", namespace, name)
        threading.Thread(target=collect, daemon=True).start()
        return job

    # --- watching ---

    def watch(self, kind: str, namespace: str, version: str, field_selector: str, label_selector: str,
              timeout: float) -> Iterator[dict[str, Any]]:
        """Events after `version` (or the current objects first when it is empty) until timeout."""
        end = time.monotonic() + timeout

        def wanted(obj: dict[str, Any]) -> bool:
            meta = obj["metadata"]
            if meta["namespace"] != namespace or not matches(meta.get("labels", {}), label_selector):
                return False
            for term in filter(None, field_selector.split(",")):
                path, _, value = term.partition("=")
                if str(field_value(obj, path)) != value:
                    return False
            return True

        with self.cond:
            expire = bool(version) and self.expire_watches > 0
            if expire:
                self.expire_watches -= 1
            if expire or (version and int(version) < self.compacted):
                yield {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                                   "message": f"too old resource version: {version}",
                                                   "reason": "Expired", "code": 410}}
                return
            if not version:
                current = [copy.deepcopy(o) for (k, _, _), o in self.objects.items() if k == kind and wanted(o)]
                seen = self.version
            else:
                current, seen = [], int(version)
        for obj in current:
            yield {"type": "ADDED", "object": _public(obj)}
        while True:
            with self.cond:
                fresh = [(v, e, o) for v, k, e, o in self.history if v > seen and k == kind and wanted(o)]
                if not fresh:
                    remaining = end - time.monotonic()
                    if remaining <= 0:
                        return
                    self.cond.wait(min(remaining, 0.5))
                    continue
                seen = max(v for v, _, _ in fresh)
            for _, event, obj in fresh:
                yield {"type": event, "object": _public(obj)}


class _PodStuck(Exception):
    """A pod that cannot start: its event (reason, message) and its container's waiting reason."""

    def __init__(self, reason: str, message: str, waiting: str = "ContainerCreating") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.waiting = waiting


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


class _Handler(BaseHTTPRequestHandler):
    state: FakeCluster
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, body: Any, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else None

    def _fault(self, path: str) -> bool:
        with self.state.cond:
            for fault in self.state.faults:
                if fault.times > 0 and fault.method == self.command and re.search(fault.path, path):
                    fault.times -= 1
                    break
            else:
                return False
        if fault.status == "reset":
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        code = int(fault.status)
        reason = fault.reason or {409: "Conflict", 429: "TooManyRequests"}.get(code, "InternalError")
        self._send(code, _status(code, reason, f"injected {code}"),
                   headers={"Retry-After": "0"} if code == 429 else None)
        return True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle()

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle()

    def _handle(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        body = self._body() if self.command in ("POST", "PATCH", "DELETE", "PUT") else None
        self.state.requests.append((self.command, url.path, query, copy.deepcopy(body)))
        if self._fault(url.path):
            return
        one = {k: v[0] for k, v in query.items()}
        if (match := JOBS.match(url.path)) is not None:
            self._jobs(match.group(1), match.group(2), one, body)
        elif (match := CORE.match(url.path)) is not None:
            self._core(match.group(1), match.group(2), match.group(3), bool(match.group(4)), one, body)
        else:
            self._send(404, _status(404, "NotFound", f"no route {url.path}"))

    def _create(self, kind: str, namespace: str, body: dict[str, Any]) -> None:
        name = body.get("metadata", {}).get("name", "")
        body.setdefault("metadata", {})["namespace"] = namespace
        try:
            kubernetes_validate.validate(body, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            self._send(422, _status(422, "Invalid", f"{kind} {name} is invalid: {error}"))
            return
        if self.state.get(kind, namespace, name) is not None:
            self._send(409, _status(409, "AlreadyExists", f"{kind} \"{name}\" already exists"))
            return
        created = self.state.add(kind, body)
        self._send(201, _public(created))
        if kind == "jobs" and not body["spec"].get("suspend"):
            self.state.resume(namespace, name)

    def _list(self, kind: str, namespace: str, query: dict[str, str]) -> None:
        items = [_public(o) for o in self.state.list(kind, namespace)
                 if matches(o["metadata"].get("labels", {}), query.get("labelSelector", ""))
                 and all(str(field_value(o, p)) == v for p, _, v in
                         (t.partition("=") for t in filter(None, query.get("fieldSelector", "").split(","))))]
        self._send(200, {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": str(self.state.version)},
                         "items": items})

    def _jobs(self, namespace: str, name: str | None, query: dict[str, str], body: Any) -> None:
        state = self.state
        if name is None:
            if self.command == "POST":
                self._create("jobs", namespace, body)
            elif query.get("watch", "").lower() in ("true", "1"):
                self._watch("jobs", namespace, query)
            else:
                self._list("jobs", namespace, query)
            return
        if self.command == "GET":
            job = state.get("jobs", namespace, name)
            self._send(200, _public(job)) if job else self._send(404, _status(404, "NotFound", f"jobs \"{name}\""))
        elif self.command == "PATCH":
            before = state.get("jobs", namespace, name)
            job = state.update("jobs", namespace, name, body)
            if job is None:
                self._send(404, _status(404, "NotFound", f"jobs \"{name}\" not found"))
                return
            self._send(200, _public(job))
            if before and before["spec"].get("suspend") and not job["spec"].get("suspend"):
                state.resume(namespace, name)
        elif self.command == "DELETE":
            propagation = (body or {}).get("propagationPolicy") or query.get("propagationPolicy") or "Background"
            job = state.delete_job(namespace, name, propagation)
            if job is None:
                self._send(404, _status(404, "NotFound", f"jobs \"{name}\" not found"))
            else:
                self._send(200, _public(job))

    def _core(self, namespace: str, kind: str, name: str | None, log: bool, query: dict[str, str], body: Any) -> None:
        state = self.state
        if name is None:
            if self.command == "POST" and kind == "configmaps":
                self._create(kind, namespace, body)
            else:
                self._list(kind, namespace, query)
            return
        obj = state.get(kind, namespace, name)
        if obj is None:
            self._send(404, _status(404, "NotFound", f"{kind} \"{name}\" not found"))
        elif log:
            data: bytes = obj.get("_log", b"")
            if "limitBytes" in query:
                data = data[:int(query["limitBytes"])]
            self._send(200, data, "text/plain")
        else:
            self._send(200, _public(obj))

    def _watch(self, kind: str, namespace: str, query: dict[str, str]) -> None:
        # Chunked, one event per chunk, as the API server streams watches (the client reads chunks).
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in self.state.watch(kind, namespace, query.get("resourceVersion", ""),
                                          query.get("fieldSelector", ""), query.get("labelSelector", ""),
                                          float(query.get("timeoutSeconds", "30"))):
                data = json.dumps(event).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
