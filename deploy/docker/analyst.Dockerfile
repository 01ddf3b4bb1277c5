# The analyst service and the web UI (one image, two Deployments of the Helm chart:
# `python -m analyst_service` and `python -m gradio_ui.app`). Also generates the demo datasets
# (the chart's init container). For machines with a registry; deploy/docker/build-offline.sh builds
# the same image without one.
#
# Build from the repository root:
#   docker build -f deploy/docker/analyst.Dockerfile -t csv-analyst:0.1.0 .
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
# A regular (not editable) install; the root filesystem is read-only at run time, so compile here.
RUN pip install --no-cache-dir . && python -m compileall -q /usr/local/lib/python3.11 \
 && rm -rf /src

ENV HOME=/tmp LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 GRADIO_ANALYTICS_ENABLED=False
USER 65534:65534
WORKDIR /tmp
EXPOSE 50051 7860
CMD ["python", "-m", "analyst_service"]
