#!/usr/bin/env bash
# A live-cluster smoke test of the chart and the k8s executor, on kind (default) or k3d, which must
# already be installed along with kubectl (nothing on the project's own machines can run a cluster).
#
#   make k8s-smoke                         # kind
#   K8S_SMOKE_CLUSTER=k3d make k8s-smoke   # k3d
#
# It: creates (or reuses) a cluster named csv-analyst-smoke; builds the three images offline (no
# registry needed); loads them into the cluster; creates a namespace with Pod Security
# "restricted" enforced; installs the chart with the k8s executor; waits for the rollout; runs
# `helm test`; asks one question through the analyst service; and checks that the run was a Job
# that is gone afterwards. Leaves the cluster running (delete it with `kind delete cluster --name
# csv-analyst-smoke` or `k3d cluster delete csv-analyst-smoke`).
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=${K8S_SMOKE_CLUSTER:-kind}
NAME=csv-analyst-smoke
NS=csv-analyst
HELM=${HELM:-.tools/bin/helm}
PY=${PY:-.venv/bin/python}
for tool in "$CLUSTER" kubectl docker; do
  command -v "$tool" >/dev/null || { echo "k8s-smoke: $tool is not installed" >&2; exit 1; }
done

case $CLUSTER in
  kind) kind get clusters | grep -qx "$NAME" || kind create cluster --name "$NAME" --wait 120s
        kubectl config use-context "kind-$NAME" ;;
  k3d)  k3d cluster list "$NAME" >/dev/null 2>&1 || k3d cluster create "$NAME" --wait
        kubectl config use-context "k3d-$NAME" ;;
  *) echo "K8S_SMOKE_CLUSTER must be kind or k3d" >&2; exit 1 ;;
esac

version=$("$PY" -c 'import importlib.metadata as m; print(m.version("csv-analyst"))')
runner_image=$("$PY" -c 'from runner_service.executors.docker import default_runner_image as i; print(i())')
PY=$PY runner/image/build-offline.sh
# Offline, like the runner image (no registry needed); with one, the deploy/docker/*.Dockerfile
# builds give the same images.
deploy/docker/build-offline.sh analyst "$version"
deploy/docker/build-offline.sh runner-dispatch "$version"
for image in "$runner_image" "csv-analyst:$version" "csv-analyst-runner-dispatch:$version"; do
  if [ "$CLUSTER" = kind ]; then kind load docker-image --name "$NAME" "$image"; else k3d image import -c "$NAME" "$image"; fi
done

kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
kubectl label --overwrite namespace "$NS" pod-security.kubernetes.io/enforce=restricted \
  pod-security.kubernetes.io/warn=restricted pod-security.kubernetes.io/audit=restricted
api_ips=$(kubectl get endpoints kubernetes -n default -o jsonpath='{range .subsets[*].addresses[*]}{.ip}{"/32,"}{end}')
api_port=$(kubectl get endpoints kubernetes -n default -o jsonpath='{.subsets[0].ports[0].port}')
"$HELM" upgrade --install smoke charts/csv-analyst -n "$NS" --wait --timeout 10m \
  --set images.analyst.tag="$version" --set images.runnerDispatch.tag="$version" \
  --set images.runner.repository="${runner_image%%:*}" --set images.runner.tag="${runner_image##*:}" \
  --set images.pullPolicy=IfNotPresent \
  --set data.accessMode=ReadWriteOnce \
  --set "networkPolicy.apiServerCidrs={${api_ips%,}}" --set networkPolicy.apiServerPort="$api_port"
"$HELM" test smoke -n "$NS" --logs

kubectl -n "$NS" port-forward svc/smoke-csv-analyst-analyst 50151:50051 >/tmp/k8s-smoke-port-forward.log 2>&1 &
forward=$!
trap 'kill $forward' EXIT
sleep 3
answer=$(.venv/bin/csv-analyst ask --server 127.0.0.1:50151 --dataset ecommerce --json "How many orders are there per status?")
echo "$answer"
echo "$answer" | "$PY" -c 'import json, sys; a = json.load(sys.stdin); assert a["status"] == "SUCCEEDED", a'
left=$(kubectl -n "$NS" get jobs -l app.kubernetes.io/component=run -o name | wc -l)
echo "k8s-smoke: answered by a Job; run Jobs left: $left (deleted after each run; TTL backstop)"
