# The runner-dispatch service with the Kubernetes executor (`python -m runner_service`): gRPC, the
# official kubernetes client, and the runner's message modules; no UI, no model SDK, no DuckDB
# beyond what the materialiser's bookkeeping imports. For machines with a registry;
# deploy/docker/build-offline.sh builds the same image without one.
#
# Build from the repository root:
#   docker build -f deploy/docker/runner-dispatch.Dockerfile -t csv-analyst-runner-dispatch:0.1.0 .
FROM python:3.11-slim-bookworm

WORKDIR /src
COPY pyproject.toml README.md ./
COPY analyst_service ./analyst_service
COPY csv_analyst_app ./csv_analyst_app
COPY csv_analyst_settings ./csv_analyst_settings
COPY runner_service ./runner_service
COPY runner ./runner
COPY gradio_ui ./gradio_ui
COPY datasets/generator.py datasets/__init__.py ./datasets/
COPY protos/gen ./protos/gen
# The package without its UI and planner dependencies, then exactly what runner_service imports.
RUN pip install --no-cache-dir --no-deps . \
 && pip install --no-cache-dir "grpcio>=1.85.1,<2" "grpcio-reflection>=1.85.1,<2" \
      "grpcio-health-checking>=1.85.1,<2" "grpcio-status>=1.85.1,<2" "googleapis-common-protos>=1.66" \
      "protobuf>=6.31,<8" "duckdb>=1.3,<3" "kubernetes>=33.1,<34" "pyyaml>=6" \
 && python -c "import runner_service.server, runner_service.executors.kubernetes" \
 && python -m compileall -q /usr/local/lib/python3.11 && rm -rf /src

ENV HOME=/tmp LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1
USER 65534:65534
WORKDIR /tmp
EXPOSE 50052
CMD ["python", "-m", "runner_service"]
