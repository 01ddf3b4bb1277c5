"""`csv-analyst k8s ...`: Kubernetes helpers that need no cluster.

`k8s render-job --dataset ID --sql SQL` prints, as YAML, the Job and the task ConfigMap that the
`k8s` executor would create for that run: the same pure builders, the same limits as the runner
service would apply (its defaults and caps), the CSV tables of the dataset (a run of a dataset
whose materialised copy is ready mounts that file instead). The ConfigMap's owner reference names
the Job's uid, which the API server assigns at creation: it is shown as a placeholder.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import uuid
from pathlib import Path

from google.protobuf import duration_pb2

from csv_analyst.v1 import run_pb2

JOB_UID_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


def add_parser(commands: argparse._SubParsersAction, repo_root: Path) -> None:  # type: ignore[type-arg]
    """Add the `k8s` command and its subcommands."""
    k8s = commands.add_parser("k8s", help="Kubernetes helpers (no cluster needed)")
    sub = k8s.add_subparsers(dest="k8s_command", required=True)
    render = sub.add_parser("render-job", help="print the Job and ConfigMap the k8s executor would create for a run")
    render.add_argument("--dataset", required=True, help="dataset id, such as ecommerce")
    render.add_argument("--sql", required=True, help="the run's SQL (not validated here)")
    render.add_argument("--datasets-dir", type=Path, default=repo_root / "datasets",
                        help="folder with registry.json and the CSVs (default: the repo's datasets/)")
    render.add_argument("--run-id", default="", help="run id (default: a fresh render-<hex>)")
    render.add_argument("--timeout", type=float, default=30.0, help="wall-clock limit of the run, seconds")
    render.add_argument("--memory-mb", type=int, default=512, help="DuckDB memory limit of the run, MB")
    render.add_argument("--max-rows", type=int, default=1000, help="row cap of the run")
    render.add_argument("--namespace", default=None, help="namespace (default: $CSV_ANALYST_K8S_NAMESPACE or none)")
    render.add_argument("--data-root", default=None,
                        help="where the data claim is mounted in the runner service's pod "
                             "(default: $CSV_ANALYST_K8S_DATA_ROOT or the datasets dir)")


def render_job(options: argparse.Namespace) -> int:
    """`k8s render-job`: print the run's manifests as YAML."""
    from analyst_service.datasets import DatasetRegistry
    from analyst_service.errors import NotFoundError
    from runner_service.config import RunnerSettings
    from runner_service.executors.base import SandboxRequest, SandboxStartError, TableFile
    from runner_service.executors.docker import default_runner_image
    from runner_service.executors.k8s_manifests import build_job, build_task_config_map, render_yaml
    from runner_service.executors.k8s_settings import kubernetes_settings_from_env
    from runner_service.executors.kubernetes import job_name
    from runner_service.servicer import effective_limits

    datasets_dir = options.datasets_dir.resolve()
    settings = kubernetes_settings_from_env(dict(os.environ))
    settings = dataclasses.replace(
        settings, namespace=options.namespace if options.namespace is not None else settings.namespace,
        data_root=options.data_root or (settings.data_root if "CSV_ANALYST_K8S_DATA_ROOT" in os.environ
                                        else str(datasets_dir)))
    registry = DatasetRegistry(datasets_dir)
    try:
        dataset = registry.get(options.dataset)
    except NotFoundError as error:
        print(error.message, file=sys.stderr)
        return 2
    seconds = int(options.timeout)
    limits = effective_limits(run_pb2.ResourceLimits(
        timeout=duration_pb2.Duration(seconds=seconds, nanos=int((options.timeout - seconds) * 1e9)),
        memory_bytes=options.memory_mb << 20, max_rows=options.max_rows), RunnerSettings())
    request = SandboxRequest(run_id=options.run_id or f"render-{uuid.uuid4().hex[:12]}", sql=options.sql,
                             tables=tuple(TableFile(t.name, registry.host_path(t)) for t in dataset.tables),
                             limits=limits)
    name = job_name(request.run_id)
    try:
        job = build_job(request, settings, name, "render", settings.image or default_runner_image())
    except SandboxStartError as error:
        print(error, file=sys.stderr)
        return 2
    task = build_task_config_map(request, settings, name, "render", JOB_UID_PLACEHOLDER, "0" * 16)
    sys.stdout.write(render_yaml([job, task]))
    return 0
