"""Settings of the Kubernetes executor (kept apart so config.py imports no Kubernetes client)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class KubernetesSettings:
    """How the Kubernetes executor reaches the cluster and shapes each run's Job.

    Attributes:
        namespace: Namespace of the run Jobs; empty: the service account's namespace in a pod,
            else the kubeconfig context's, else `default`.
        kubeconfig: Path of a kubeconfig file; empty: in-cluster configuration when
            KUBERNETES_SERVICE_HOST is set, else ~/.kube/config.
        image: The runner image; empty: `csv-analyst-runner:<content tag>` (make runner-image).
        image_pull_policy: IfNotPresent (content-tagged images never change under a tag) or Always.
        data_claim: PersistentVolumeClaim holding the datasets (and the materialised cache); each
            run mounts only its own files from it, read-only, by subPath.
        data_root: Where that claim is mounted in the runner service's pod: table paths below it
            become subPaths of the claim.
        service_account: Service account of run pods (no token is mounted either way); empty:
            the namespace's default.
        cpu: CPU request and limit per run, in cores.
        job_ttl_seconds: ttlSecondsAfterFinished: how long a finished Job stays if the service
            could not delete it.
        start_seconds: How long a Job may take to get its pod running (scheduling, image pull)
            before the run fails with RUNNER_UNAVAILABLE; added to the run's own limit in
            activeDeadlineSeconds.
        create_qps: Sustained Job creations per second (a token bucket; protects the API server).
        create_burst: Creations allowed at once before create_qps applies.
        owner: Label value naming this deployment's Jobs (reaping touches only these).
        instance_pod: `namespace/name` of the runner service's own pod (downward API), so that
            another replica can tell a dead owner's Jobs from a live one's; empty outside a pod.
        api_attempts: Tries per API call on 409/429/5xx and connection resets.
        api_backoff_seconds: First retry delay, doubled per attempt (with jitter), capped at 5 s.
        node_selector: Optional node labels run pods must match (`key=value,key=value`).
    """

    namespace: str = ""
    kubeconfig: str = ""
    image: str = ""
    image_pull_policy: str = "IfNotPresent"
    data_claim: str = "csv-analyst-data"
    data_root: str = "/var/lib/csv-analyst"
    service_account: str = ""
    cpu: float = 1.0
    job_ttl_seconds: int = 300
    start_seconds: float = 120.0
    create_qps: float = 5.0
    create_burst: int = 10
    owner: str = "csv-analyst"
    instance_pod: str = ""
    api_attempts: int = 5
    api_backoff_seconds: float = 0.2
    node_selector: str = ""


ENV_PREFIX = "CSV_ANALYST_K8S_"


def kubernetes_settings_from_env(environ: dict[str, str] | None = None,
                                 base: KubernetesSettings | None = None) -> KubernetesSettings:
    """Settings from `CSV_ANALYST_K8S_<FIELD>` variables (e.g. CSV_ANALYST_K8S_DATA_CLAIM) over `base`.

    The Helm chart configures the runner service this way; call it once, from the process's
    composition root.

    Raises:
        ValueError: For a value that does not parse as its field's type.
    """
    environ = environ if environ is not None else {}
    base = base or KubernetesSettings()
    changes: dict[str, object] = {}
    for item in dataclasses.fields(KubernetesSettings):
        value = environ.get(ENV_PREFIX + item.name.upper())
        if value is None:
            continue
        kind = type(getattr(base, item.name))
        try:
            changes[item.name] = kind(value)
        except ValueError as error:
            raise ValueError(f"{ENV_PREFIX + item.name.upper()}={value!r} is not a valid {kind.__name__}") from error
    return dataclasses.replace(base, **changes)
