"""The Helm chart, checked without a cluster: `helm lint --strict`, `helm template` for every
ci/*-values.yaml scenario, every rendered object against the Kubernetes 1.33 schemas in strict mode,
checkov with zero failed checks, and the chart's agreement with the code (environment variables
naming real settings, the run pods' NetworkPolicy selecting the labels the executor puts on Jobs,
RBAC granting exactly the API calls the executor makes).

helm and checkov come from `make k8s-tools` (.tools/bin/helm, .tools/checkov).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from google.protobuf import duration_pb2

from analyst_service import __main__ as analyst_main
from csv_analyst.v1 import run_pb2
from runner_service import __main__ as runner_main
from runner_service.executors.base import SandboxRequest, TableFile
from runner_service.executors.k8s_manifests import build_job, build_task_config_map, to_dict
from runner_service.executors.k8s_settings import KubernetesSettings, kubernetes_settings_from_env
from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "csv-analyst"
HELM = REPO / ".tools" / "bin" / "helm"
CHECKOV = REPO / ".tools" / "checkov" / "bin" / "checkov"
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
NAMESPACE = "csv-analyst"
KUBE_VERSION = "1.33"


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    require(HELM.is_file(), "helm is missing (make k8s-tools)")
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=120, check=False)


def render(values: Path | None = None, *sets: str) -> list[dict[str, Any]]:
    args = ["template", "rel", str(CHART), "--namespace", NAMESPACE]
    if values is not None:
        args += ["-f", str(values)]
    for item in sets:
        args += ["--set", item]
    result = helm(*args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module", params=[p.name for p in SCENARIOS])
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(CHART / "ci" / request.param)


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] == "Deployment":
            yield obj["metadata"]["name"], obj["spec"]["template"]["spec"]
        elif obj["kind"] == "Pod":
            yield obj["metadata"]["name"], obj["spec"]


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


# --- helm ----------------------------------------------------------------------------------------

def test_scenarios_exist() -> None:
    assert {p.name for p in SCENARIOS} >= {"minimal-values.yaml", "ingress-tls-values.yaml",
                                          "k8s-executor-values.yaml", "postgres-values.yaml"}


def test_helm_lint_strict() -> None:
    for values in SCENARIOS:
        result = helm("lint", "--strict", str(CHART), "-f", str(values))
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("bad", ["bogus=1", "analyst.replicas=2", "runs.nodeSelector=oops",
                                 "images.pullPolicy=Sometimes", "data.mountPath=relative",
                                 "capsuleStore.type=mysql", "capsuleStore.type=postgresql",
                                 "capsuleStore.postgresql.url=mysql://x"])
def test_the_values_schema_refuses_bad_values(bad: str) -> None:
    result = helm("template", "rel", str(CHART), "--set", bad)
    assert result.returncode != 0 and "schema" in result.stderr.lower(), result.stderr


def test_every_values_key_is_documented() -> None:
    """helm-docs reads a `# --` comment just above each key; every leaf key has one."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    ancestors: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing keys
    for index, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z][\w]*):(.*)$", line)
        if not match:
            continue
        indent = len(match.group(1))
        while ancestors and ancestors[-1][0] >= indent:
            ancestors.pop()
        above = index - 1
        while above >= 0 and lines[above].strip().startswith("#") and not lines[above].strip().startswith("# --"):
            above -= 1
        documented = above >= 0 and lines[above].strip().startswith("# --")
        inherited = any(d for _, d in ancestors)  # a documented key's map value, e.g. resources.requests
        if match.group(3).strip() and not (documented or inherited):
            undocumented.append(match.group(2))
        ancestors.append((indent, documented or inherited))
    assert undocumented == []


# --- every rendered object -----------------------------------------------------------------------

def test_rendered_objects_pass_the_1_33_schemas_in_strict_mode(rendered: list[dict[str, Any]]) -> None:
    assert len(rendered) > 15
    for obj in rendered:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


def test_checkov_finds_nothing(tmp_path: Path) -> None:
    require(CHECKOV.is_file(), "checkov is missing (make k8s-tools)")
    for values in SCENARIOS:
        manifest = tmp_path / f"{values.stem}.yaml"
        manifest.write_text(yaml.safe_dump_all(render(values)))
        result = subprocess.run([str(CHECKOV), "--framework", "kubernetes", "--skip-download",
                                 "--output", "json", "-f", str(manifest)],
                                capture_output=True, text=True, timeout=300, check=False)
        report = json.loads(result.stdout)
        reports = report if isinstance(report, list) else [report]
        failed = [(c["check_id"], c["resource"]) for r in reports for c in r["results"]["failed_checks"]]
        assert failed == [], values.name
        summary = reports[0]["summary"]
        assert summary["passed"] > 100, summary
        skipped = [c for r in reports for c in r["results"]["skipped_checks"]]
        # Every exception is an inline annotation that gives its reason.
        assert all(c.get("check_result", {}).get("suppress_comment") for c in skipped), skipped


def test_every_pod_meets_the_restricted_profile(rendered: list[dict[str, Any]]) -> None:
    for name, spec in pod_specs(rendered):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"] + spec.get("initContainers", []):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert security["readOnlyRootFilesystem"] is True, name
            assert container["resources"]["limits"] and container["resources"]["requests"], name
        for volume in spec.get("volumes", []):
            assert "hostPath" not in volume, name


def test_services_are_probed_on_grpc_health(rendered: list[dict[str, Any]]) -> None:
    for deployment in by_kind(rendered, "Deployment"):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        port = container["ports"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if port["name"] == "grpc":
                assert container[probe]["grpc"]["port"] == port["containerPort"], deployment["metadata"]["name"]
            else:
                assert container[probe]["httpGet"]["port"] == "http"


def test_helm_test_pod_checks_health() -> None:
    (pod,) = [o for o in render() if o["kind"] == "Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert "grpc_health" in pod["spec"]["containers"][0]["command"][2]


def test_the_generated_ui_key_is_an_accepted_api_key(tmp_path: Path) -> None:
    from analyst_service.auth import digest_of, load_key_file

    line = "sha256:" + "a" * 64 + " ops operator"
    (secret,) = [s for s in by_kind(render(None, f"analyst.apiKeys={{{line}}}"), "Secret")
                 if s["metadata"]["name"].endswith("-api-keys")]
    keys = tmp_path / "keys"
    keys.write_text(secret["stringData"]["keys"])
    loaded = load_key_file(keys)
    assert [k.digest for k in loaded][0] == digest_of(secret["stringData"]["ui-key"])
    assert [(k.name, k.role) for k in loaded] == [("ui", "user"), ("ops", "operator")]


def test_namespace_template_enforces_restricted() -> None:
    (namespace,) = by_kind(render(None, "namespace.create=true"), "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_model_api_is_reachable_only_with_a_model_planner() -> None:
    def analyst_egress(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        (policy,) = [p for p in by_kind(objects, "NetworkPolicy") if p["metadata"]["name"].endswith("-analyst")]
        return [rule for rule in policy["spec"]["egress"] if {"protocol": "TCP", "port": 443} in rule["ports"]]

    assert analyst_egress(render()) == []
    claude = render(CHART / "ci" / "ingress-tls-values.yaml")
    assert analyst_egress(claude)
    (analyst,) = [d for d in by_kind(claude, "Deployment") if d["metadata"]["name"].endswith("-analyst")]
    assert env_of(analyst)["CSV_ANALYST_CLAUDE_API_KEY_FILE"] == "/etc/csv-analyst/claude/api-key"


# --- the capsule store ---------------------------------------------------------------------------

def _analyst(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (analyst,) = [d for d in by_kind(objects, "Deployment") if d["metadata"]["name"].endswith("-analyst")]
    return analyst


def _database_egress(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    (policy,) = [p for p in by_kind(objects, "NetworkPolicy") if p["metadata"]["name"].endswith("-analyst")]
    return [rule for rule in policy["spec"]["egress"] if {"protocol": "TCP", "port": 5432} in rule["ports"]]


def test_the_sqlite_store_is_one_replica_on_its_own_volume() -> None:
    objects = render()
    analyst = _analyst(objects)
    assert analyst["spec"]["replicas"] == 1 and analyst["spec"]["strategy"]["type"] == "Recreate"
    assert env_of(analyst)["CSV_ANALYST_ANALYST_CAPSULE_DB"].endswith(".sqlite3")
    assert [c for c in by_kind(objects, "PersistentVolumeClaim") if c["metadata"]["name"].endswith("-capsules")]
    assert _database_egress(objects) == []


def test_the_postgres_store_scenario_wires_the_url_secret_replicas_and_egress() -> None:
    objects = render(CHART / "ci" / "postgres-values.yaml")
    analyst = _analyst(objects)
    assert analyst["spec"]["replicas"] == 3 and analyst["spec"]["strategy"]["type"] == "RollingUpdate"
    env = env_of(analyst)
    assert "CSV_ANALYST_ANALYST_CAPSULE_DB" not in env  # the URL (with its password) is a mounted file
    path = Path(env["CSV_ANALYST_ANALYST_CAPSULE_DB_FILE"])
    pod = analyst["spec"]["template"]["spec"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == str(path.parent)]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "csv-analyst-capsule-store"
    assert volume["secret"]["items"] == [{"key": "url", "path": path.name}]
    assert not [c for c in by_kind(objects, "PersistentVolumeClaim") if c["metadata"]["name"].endswith("-capsules")]
    assert not [s for s in by_kind(objects, "Secret") if s["metadata"]["name"].endswith("-capsule-store")]
    (rule,) = _database_egress(objects)
    assert rule["to"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "postgresql"}},
                           "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "databases"}}}]


def test_a_postgres_url_from_values_becomes_a_chart_secret_the_analyst_reads(tmp_path: Path) -> None:
    import base64

    url = "postgresql://analyst:s3cret@db.example.com:6543/capsules"
    objects = render(None, "capsuleStore.type=postgresql", f"capsuleStore.postgresql.url={url}",
                     "capsuleStore.postgresql.cidrs={192.0.2.10/32}", "capsuleStore.postgresql.port=6543",
                     "analyst.replicas=2")
    (secret,) = [s for s in by_kind(objects, "Secret") if s["metadata"]["name"].endswith("-capsule-store")]
    (tmp_path / "url").write_bytes(base64.b64decode(secret["data"]["url"]))
    analyst = _analyst(objects)
    volumes = analyst["spec"]["template"]["spec"]["volumes"]
    assert any(v.get("secret", {}).get("secretName") == secret["metadata"]["name"] for v in volumes)
    env = {k: v for k, v in env_of(analyst).items() if not k.endswith("_FILE")}  # files of the pod
    settings = analyst_main.settings_from([], {**env, "CSV_ANALYST_RUNNER_CREDENTIAL": "c" * 32,
                                               "CSV_ANALYST_ANALYST_CAPSULE_DB_FILE": str(tmp_path / "url")})
    assert settings.capsule_db == url  # what the analyst would connect to
    (policy,) = [p for p in by_kind(objects, "NetworkPolicy") if p["metadata"]["name"].endswith("-analyst")]
    assert [r for r in policy["spec"]["egress"] if r["ports"] == [{"protocol": "TCP", "port": 6543}]] == [
        {"to": [{"ipBlock": {"cidr": "192.0.2.10/32"}}], "ports": [{"protocol": "TCP", "port": 6543}]}]


@pytest.mark.parametrize(("sets", "reason"), [
    (("analyst.replicas=2",), "less than or equal to 1"),
    (("capsuleStore.type=postgresql", "capsuleStore.postgresql.url=postgresql://a@db/c"), "cidrs or .podSelector"),
])
def test_store_settings_that_cannot_work_are_refused(sets: tuple[str, ...], reason: str) -> None:
    args = ["template", "rel", str(CHART)]
    for item in sets:
        args += ["--set", item]
    result = helm(*args)
    assert result.returncode != 0 and reason in result.stderr, result.stderr


def test_ingress_with_tls() -> None:
    (ingress,) = by_kind(render(CHART / "ci" / "ingress-tls-values.yaml"), "Ingress")
    assert ingress["spec"]["tls"] == [{"hosts": ["analyst.example.com"], "secretName": "analyst-example-com-tls"}]


# --- the chart agrees with the code --------------------------------------------------------------

def test_environment_variables_name_real_settings(rendered: list[dict[str, Any]]) -> None:
    # The variables the entry points read (their flags' variables), and the k8s executor's.
    known = {f"CSV_ANALYST_K8S_{f.name.upper()}" for f in dataclasses.fields(KubernetesSettings)}
    known |= {"CSV_ANALYST_RUNNER_CREDENTIAL"}
    for module in (analyst_main, runner_main):
        known |= set(module.declare_settings(argparse.ArgumentParser()).values())
    for deployment in by_kind(rendered, "Deployment"):
        for name in env_of(deployment):
            if name.startswith(("CSV_ANALYST_ANALYST_", "CSV_ANALYST_RUNNER_", "CSV_ANALYST_CLAUDE_", "CSV_ANALYST_K8S_")):
                assert name in known, name  # (the UI's own CSV_ANALYST_TARGET/_UI_* are read by gradio_ui.app)


def run_job_from(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    """The Job the rendered runner-dispatch Deployment's executor would create."""
    (dispatch,) = [d for d in by_kind(rendered, "Deployment") if d["metadata"]["name"].endswith("-runner-dispatch")]
    env = {k: v for k, v in env_of(dispatch).items() if "$(" not in v}
    settings = kubernetes_settings_from_env(env)
    root = settings.data_root
    request = SandboxRequest(run_id="run-1", sql="SELECT 1", tables=(TableFile("t", f"{root}/datasets/x/t.csv"),),
                             limits=run_pb2.ResourceLimits(timeout=duration_pb2.Duration(seconds=30),
                                                           memory_bytes=256 << 20))
    job = to_dict(build_job(request, settings, "run-1-abcde", "i", settings.image))
    to_dict(build_task_config_map(request, settings, "run-1-abcde", "i", "uid", "n"))
    return job


def test_the_run_network_policy_selects_the_executors_jobs(rendered: list[dict[str, Any]]) -> None:
    job = run_job_from(rendered)
    labels = job["spec"]["template"]["metadata"]["labels"]
    (policy,) = [p for p in by_kind(rendered, "NetworkPolicy") if p["metadata"]["name"].endswith("-runs")]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policy["spec"] and "egress" not in policy["spec"]
    # Run pods use the chart's token-less service account, and the chart's data claim.
    accounts = {a["metadata"]["name"]: a for a in by_kind(rendered, "ServiceAccount")}
    account = job["spec"]["template"]["spec"]["serviceAccountName"]
    assert accounts[account]["automountServiceAccountToken"] is False
    (dispatch,) = [d for d in by_kind(rendered, "Deployment") if d["metadata"]["name"].endswith("-runner-dispatch")]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in dispatch["spec"]["template"]["spec"]["volumes"]
              if "persistentVolumeClaim" in v]
    job_claims = [v["persistentVolumeClaim"]["claimName"] for v in job["spec"]["template"]["spec"]["volumes"]
                  if "persistentVolumeClaim" in v]
    assert job_claims == claims


# Every call executors/kubernetes.py makes: (API group, resource, verb).
EXECUTOR_CALLS = {("batch", "jobs", v) for v in ("create", "get", "list", "watch", "delete", "patch")} | {
    ("", "configmaps", "create"), ("", "pods", "get"), ("", "pods", "list"), ("", "pods/log", "get"),
    ("", "events", "list")}


def test_rbac_grants_exactly_what_the_executor_uses(rendered: list[dict[str, Any]]) -> None:
    (role,) = by_kind(rendered, "Role")
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}
    assert EXECUTOR_CALLS <= granted
    assert granted - EXECUTOR_CALLS <= {("", "pods", "watch")}
    assert not by_kind(rendered, "ClusterRole") and not by_kind(rendered, "ClusterRoleBinding")
    (binding,) = by_kind(rendered, "RoleBinding")
    assert [s["name"] for s in binding["subjects"]] == [role["metadata"]["name"]]
    # Only the runner-dispatch pod gets an API token.
    for name, spec in pod_specs(rendered):
        projected = [v for v in spec.get("volumes", []) if "projected" in v]
        assert bool(projected) == name.endswith("-runner-dispatch"), name


def test_the_executor_source_makes_no_call_outside_the_role() -> None:
    """A new API call in the executor fails here until the Role (and EXECUTOR_CALLS) grant it."""
    source = (REPO / "runner_service" / "executors" / "kubernetes.py").read_text()
    used = set(re.findall(r"self\.(?:batch|core)\.(\w+)\(", source)) | set(
        re.findall(r"self\.(?:batch|core)\.(\w+),", source))
    allowed = {"create_namespaced_job", "read_namespaced_job", "list_namespaced_job", "delete_namespaced_job",
               "patch_namespaced_job", "create_namespaced_config_map", "read_namespaced_config_map",
               "read_namespaced_pod", "list_namespaced_pod", "read_namespaced_pod_log", "list_namespaced_event"}
    assert used and used <= allowed, used - allowed
