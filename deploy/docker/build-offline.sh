#!/usr/bin/env bash
# Build the analyst+UI or the runner-dispatch image without a registry, the way
# runner/image/build-offline.sh builds the runner image: the same cached Debian bookworm base
# (debootstrap minbase + python3 + a venv at /opt/venv; built by `make runner-image` first), the
# project and its dependencies installed into that venv by the host's pip (the host is the same
# Debian/Python 3.11, so wheels and built sdists fit), compiled once (the root filesystem is
# read-only at run time), then `docker import` as uid 65534.
#
# Usage: deploy/docker/build-offline.sh analyst|runner-dispatch [TAG]     (root; needs docker)
# Tags: csv-analyst:TAG or csv-analyst-runner-dispatch:TAG (default TAG: the package version).
# The result runs the same commands as the images of deploy/docker/*.Dockerfile.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
CACHE=${CSV_ANALYST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/csv-analyst}
kind=${1:?usage: $0 analyst|runner-dispatch [TAG]}
tag=${2:-$("$PY" -c 'import importlib.metadata as m; print(m.version("csv-analyst"))')}
case $kind in
  analyst) image=csv-analyst:$tag; cmd='["python", "-m", "analyst_service"]'
           check="import analyst_service.server, gradio_ui.app, csv_analyst_datasets.generator"
           deps=() ;;
  runner-dispatch) image=csv-analyst-runner-dispatch:$tag; cmd='["python", "-m", "runner_service"]'
           check="import runner_service.server, runner_service.executors.kubernetes"
           # The runner service's own imports only (see deploy/docker/runner-dispatch.Dockerfile).
           deps=("grpcio>=1.85.1,<2" "grpcio-reflection>=1.85.1,<2" "grpcio-health-checking>=1.85.1,<2"
                 "grpcio-status>=1.85.1,<2" "googleapis-common-protos>=1.66" "protobuf>=6.31,<8" "duckdb>=1.3,<3"
                 "kubernetes>=33.1,<34" "pyyaml>=6") ;;
  *) echo "usage: $0 analyst|runner-dispatch [TAG]" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "the offline build needs root (chroot)" >&2; exit 1; }
base_tar=$(ls -t "$CACHE"/runner-base-*.tar 2>/dev/null | head -1 || true)
[ -n "$base_tar" ] || { echo "no cached Debian base in $CACHE: run \`make runner-image\` first" >&2; exit 1; }

started=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/csv-analyst-$kind.XXXXXX")
trap 'rm -rf --one-file-system "$work"' EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs"
tar -C "$rootfs" -xf "$base_tar"
site=$(chroot "$rootfs" /opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
pyver=$(chroot "$rootfs" /opt/venv/bin/python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
hostver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
[ "$pyver" = "$hostver" ] || { echo "the base has Python $pyver, the host $hostver: cannot install for it" >&2; exit 1; }
# The base venv already holds duckdb and protobuf at the runner's versions; the project's pins win.
if [ ${#deps[@]} -eq 0 ]; then
  "$PY" -m pip install --quiet --disable-pip-version-check --upgrade --target "$rootfs$site" .
else
  "$PY" -m pip install --quiet --disable-pip-version-check --upgrade --no-deps --target "$rootfs$site" .
  "$PY" -m pip install --quiet --disable-pip-version-check --upgrade --target "$rootfs$site" "${deps[@]}"
fi
chroot "$rootfs" /usr/bin/env -i HOME=/tmp PATH=/opt/venv/bin:/usr/bin:/bin /opt/venv/bin/python -c "$check"
chroot "$rootfs" /opt/venv/bin/python -m compileall -q "$site" >/dev/null 2>&1 || true
mkdir -p "$rootfs/tmp" && chmod 1777 "$rootfs/tmp"

tar --numeric-owner --one-file-system -C "$rootfs" -c . | docker import \
  --change 'USER 65534:65534' \
  --change 'WORKDIR /tmp' \
  --change 'ENV PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 GRADIO_ANALYTICS_ENABLED=False' \
  --change "CMD $cmd" \
  --message "csv-analyst $kind (offline build)" - "$image" >/dev/null
echo "$kind image $image built in $(( $(date +%s) - started )) s ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%d MB", $1/1e6}'))"
