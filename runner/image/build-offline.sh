#!/usr/bin/env bash
# Build the Docker runner image without a registry (no Docker Hub needed):
#   debootstrap --variant=minbase bookworm (python3, python3-venv) -> a venv at /opt/venv with the
#   DuckDB, duckdb-cli and protobuf versions of the service's own environment (the CLI binary
#   linked at /usr/local/bin/duckdb for the native SQL runner) -> the runner code and the
#   generated messages at /app -> `docker import` with USER 65534 and ENTRYPOINT python -m runner.
#
# The image is tagged csv-analyst-runner:<content tag> (a digest of the code, the versions and the
# recipe, computed by runner_service.executors.docker.runner_image_tag), which is the tag the Docker
# executor runs. An existing tag means nothing to do. The Debian+venv base is cached as a tarball
# keyed by the recipe and versions, so a code change re-imports in seconds instead of minutes.
#
# Usage: runner/image/build-offline.sh [--force]      (root; needs docker and debootstrap)
# Environment: PY (default .venv/bin/python), DEBIAN_MIRROR (default http://deb.debian.org/debian),
#              CSV_ANALYST_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/csv-analyst).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
CACHE=${CSV_ANALYST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/csv-analyst}
force=${1:-}

# One source of truth for the image name, the pinned versions and the file list: the executor.
mapfile -t plan < <("$PY" - <<'EOF'
from runner_service.executors.docker import IMAGE_RECIPE, default_runner_image, image_package_versions, runner_image_files
print(default_runner_image())
print(IMAGE_RECIPE)
print(" ".join(f"{name}=={version}" for name, version in sorted(image_package_versions().items())))
for path, inside in runner_image_files():
    print(f"{path}\t{inside}")
EOF
)
image=${plan[0]} recipe=${plan[1]} pins=${plan[2]}

if [ "$force" != --force ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "runner image $image is up to date"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "the offline build needs root (debootstrap, chroot)" >&2; exit 1; }

started=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/csv-analyst-runner.XXXXXX")
cleanup() {
  # debootstrap mounts /proc (and maybe /sys, /dev) inside the root: unmount before deleting, and
  # never let rm cross into another file system.
  awk -v w="$work" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs" "$CACHE"
base_key=$(printf '%s\n' "$recipe" "$SUITE" "$MIRROR" "$pins" "$(uname -m)" | sha256sum | cut -c1-16)
base_tar=$CACHE/runner-base-$base_key.tar

if [ -f "$base_tar" ]; then
  echo "runner image: reusing the cached base $base_tar"
  tar -C "$rootfs" -xf "$base_tar"
else
  echo "runner image: debootstrap $SUITE from $MIRROR (2-3 minutes; cached afterwards)"
  debootstrap --variant=minbase --include=python3,python3-venv "$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  chroot "$rootfs" /usr/bin/python3 -m venv --without-pip /opt/venv
  site=$(chroot "$rootfs" /opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  pyver=$(chroot "$rootfs" /opt/venv/bin/python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  echo "runner image: installing $pins for Python $pyver"
  # The host's pip (and its index configuration) fetches wheels for the image's interpreter and
  # glibc (bookworm: 2.36); pip wants every acceptable manylinux tag spelled out.
  arch=$(uname -m)
  platforms=(--platform "manylinux2014_$arch")
  for minor in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
  # shellcheck disable=SC2086
  "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version "$pyver" --implementation cp "${platforms[@]}" --target "$rootfs$site" $pins
  # The native SQL runner: duckdb-cli's binary, at the path the Docker executor runs.
  chmod 0755 "$rootfs$site/duckdb_cli/duckdb"
  ln -sf "$site/duckdb_cli/duckdb" "$rootfs/usr/local/bin/duckdb"
  # The root filesystem is read-only at run time: compile once here, not on every start.
  chroot "$rootfs" /opt/venv/bin/python -m compileall -q "$site" >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/info/*
  tar --numeric-owner --one-file-system -C "$rootfs" -cf "$base_tar.partial" .
  mv "$base_tar.partial" "$base_tar"
fi

# The runner code and generated messages, exactly the files the content tag covers.
for line in "${plan[@]:3}"; do
  src=${line%%$'\t'*} dest=$rootfs/app/${line#*$'\t'}
  install -D -m 0644 "$src" "$dest"
done
chroot "$rootfs" /opt/venv/bin/python -m compileall -q /app >/dev/null
mkdir -p "$rootfs/data" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"

previous=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)  # --force: replaced below
tar --numeric-owner --one-file-system -C "$rootfs" -c . | docker import \
  --change 'USER 65534:65534' \
  --change 'WORKDIR /tmp' \
  --change 'ENV PYTHONPATH=/app LANG=C.UTF-8 HOME=/tmp' \
  --change 'ENTRYPOINT ["/opt/venv/bin/python", "-B", "-m", "runner"]' \
  --message "csv-analyst runner ($recipe; $pins)" - "$image" >/dev/null
[ -z "$previous" ] || docker rmi "$previous" >/dev/null 2>&1 || true
# Each code change makes a new full-size image: keep the newest three (an image a container still
# uses is refused by `docker rmi` and stays).
docker image ls "${image%%:*}" --format "{{.CreatedAt}}"$'\t'"{{.Repository}}:{{.Tag}}" | sort -r | tail -n +4 | cut -f2 \
  | xargs -r docker rmi >/dev/null 2>&1 || true
echo "runner image $image built in $(( $(date +%s) - started )) s ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%d MB", $1/1e6}'))"
