"""`python -m runner_service`: the runner-dispatch service alone (one container of the Helm chart).

Settings come from the environment, read once here: `CSV_ANALYST_RUNNER_<FIELD>` for each field
of RunnerSettings (e.g. CSV_ANALYST_RUNNER_PORT, CSV_ANALYST_RUNNER_EXECUTOR,
CSV_ANALYST_RUNNER_CACHE_DIR; CSV_ANALYST_RUNNER_DATA_ROOTS is a list separated by `:`), the
credential from the file named by CSV_ANALYST_RUNNER_CREDENTIAL_FILE or from
CSV_ANALYST_RUNNER_CREDENTIAL (one is required), and `CSV_ANALYST_K8S_<FIELD>` for the
k8s executor's settings.
SIGTERM drains in-flight runs for the grace period, then stops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
from pathlib import Path
from typing import Any

from runner_service.auth import load_credential
from runner_service.config import RunnerSettings
from runner_service.executors.k8s_settings import kubernetes_settings_from_env
from runner_service.server import start_runner_server

PREFIX = "CSV_ANALYST_RUNNER_"
DRAIN_SECONDS = 20.0


def settings_from_env(environ: dict[str, str]) -> RunnerSettings:
    """RunnerSettings from CSV_ANALYST_RUNNER_* and CSV_ANALYST_K8S_* variables over the defaults.

    Raises:
        ValueError: For a value that does not parse as its field's type, or no credential.
    """
    base = RunnerSettings()
    credential_file = environ.get(PREFIX + "CREDENTIAL_FILE")
    credential = load_credential(Path(credential_file) if credential_file else None, environ)
    if not credential:
        raise ValueError("set CSV_ANALYST_RUNNER_CREDENTIAL_FILE or CSV_ANALYST_RUNNER_CREDENTIAL: the runner "
                         "service serves no anonymous caller")
    changes: dict[str, Any] = {"kubernetes": kubernetes_settings_from_env(environ), "credential": credential}
    for item in dataclasses.fields(RunnerSettings):
        value = environ.get(PREFIX + item.name.upper())
        if value is None or item.name in ("kubernetes", "credential"):
            continue
        if item.name == "data_roots":
            changes[item.name] = tuple(Path(p) for p in value.split(os.pathsep) if p)
            continue
        current = getattr(base, item.name)
        kind = Path if item.name == "cache_dir" else type(current)
        try:
            changes[item.name] = (kind(value) if value else None) if item.name == "cache_dir" else kind(value)
        except ValueError as error:
            raise ValueError(f"{PREFIX + item.name.upper()}={value!r} is not a valid {kind.__name__}") from error
    return dataclasses.replace(base, **changes)


async def serve(settings: RunnerSettings) -> None:
    """Serve until SIGTERM or SIGINT, then drain and stop."""
    server = await start_runner_server(settings)
    logging.getLogger(__name__).info("runner service on %s:%d (executor %s)", settings.host, server.port,
                                     settings.executor)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(DRAIN_SECONDS)


def main() -> None:
    """Entry point."""
    logging.basicConfig(level=os.environ.get("CSV_ANALYST_LOG_LEVEL", "INFO"))
    asyncio.run(serve(settings_from_env(dict(os.environ))))


if __name__ == "__main__":
    main()
