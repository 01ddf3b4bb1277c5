"""`python -m analyst_service`: the analyst service alone (one container of the Helm chart).

Settings come from the environment, read once here: `CSV_ANALYST_ANALYST_<FIELD>` for each plain
field of AnalystSettings (e.g. CSV_ANALYST_ANALYST_PORT, CSV_ANALYST_ANALYST_RUNNER_TARGET,
CSV_ANALYST_ANALYST_DATASETS_DIR, CSV_ANALYST_ANALYST_CAPSULE_DB, CSV_ANALYST_ANALYST_PLANNER,
CSV_ANALYST_ANALYST_UPLOAD_DIR, CSV_ANALYST_ANALYST_ALLOW_UNAUTHENTICATED), CSV_ANALYST_ANALYST_CSV_ROOTS
(a list separated by `:`), CSV_ANALYST_ANALYST_API_KEYS_FILE (a key file of `csv-analyst keys add`),
the runner service's credential from the file named by CSV_ANALYST_RUNNER_CREDENTIAL_FILE or from
CSV_ANALYST_RUNNER_CREDENTIAL, and the Claude planner's settings from `CSV_ANALYST_CLAUDE_<FIELD>`
(its API key from the file named by CSV_ANALYST_CLAUDE_API_KEY_FILE, or ANTHROPIC_API_KEY).
SIGTERM drains in-flight calls for the grace period, then stops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
from pathlib import Path
from typing import Any

from analyst_service.auth import KeyRing, load_key_file
from analyst_service.capsules.stores import capsule_location
from analyst_service.config import AnalystSettings, ClaudeSettings
from analyst_service.server import start_analyst_server

PREFIX = "CSV_ANALYST_ANALYST_"
CLAUDE_PREFIX = "CSV_ANALYST_CLAUDE_"
# The runner service's credential (the same variable the runner service reads).
RUNNER_CREDENTIAL_ENV = "CSV_ANALYST_RUNNER_CREDENTIAL"
DRAIN_SECONDS = 20.0


def _plain_fields(cls: Any, prefix: str, environ: dict[str, str], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Values of the str/int/float/bool/Path fields of a settings dataclass named by `prefix<FIELD>`."""
    base = cls()
    changes: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        value = environ.get(prefix + item.name.upper())
        current = getattr(base, item.name)
        plain = isinstance(current, (str, int, float, bool, Path))
        if value is None or item.name in skip or not plain:
            continue
        if isinstance(current, bool):
            changes[item.name] = value.lower() in ("1", "true", "yes")
            continue
        kind = Path if isinstance(current, Path) else type(current)
        try:
            changes[item.name] = kind(value)
        except ValueError as error:
            raise ValueError(f"{prefix + item.name.upper()}={value!r} is not a valid {kind.__name__}") from error
    return changes


def claude_settings_from_env(environ: dict[str, str]) -> ClaudeSettings:
    """The Claude planner's settings from CSV_ANALYST_CLAUDE_* (and ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL)."""
    key_file = environ.get(CLAUDE_PREFIX + "API_KEY_FILE")
    api_key = Path(key_file).read_text().strip() if key_file else environ.get("ANTHROPIC_API_KEY", "")
    changes = _plain_fields(ClaudeSettings, CLAUDE_PREFIX, environ, skip=("api_key",))
    if "base_url" not in changes and environ.get("ANTHROPIC_BASE_URL"):
        changes["base_url"] = environ["ANTHROPIC_BASE_URL"]
    return dataclasses.replace(ClaudeSettings(), api_key=api_key, **changes)


def settings_from_env(environ: dict[str, str]) -> AnalystSettings:
    """AnalystSettings from CSV_ANALYST_ANALYST_* variables over the defaults (str, int, float, bool, Path fields).

    Raises:
        ValueError: For a value that does not parse as its field's type.
    """
    base = AnalystSettings()
    credential_file = environ.get(RUNNER_CREDENTIAL_ENV + "_FILE")
    credential = (Path(credential_file).read_text().strip() if credential_file
                  else environ.get(RUNNER_CREDENTIAL_ENV, ""))
    changes: dict[str, Any] = {"runner_credential": credential}
    if environ.get(PREFIX + "CSV_ROOTS"):
        changes["csv_roots"] = tuple(Path(p) for p in environ[PREFIX + "CSV_ROOTS"].split(os.pathsep) if p)
    if environ.get(PREFIX + "API_KEYS_FILE"):
        changes["api_keys"] = KeyRing(load_key_file(Path(environ[PREFIX + "API_KEYS_FILE"])))
    if environ.get(PREFIX + "CAPSULE_DB"):
        changes["capsule_db"] = capsule_location(environ[PREFIX + "CAPSULE_DB"])  # a URL stays a URL
    changes.update(_plain_fields(AnalystSettings, PREFIX, environ, skip=("runner_credential", "capsule_db")))
    changes["claude"] = claude_settings_from_env(environ)
    return dataclasses.replace(base, **changes)


async def serve(settings: AnalystSettings) -> None:
    """Serve until SIGTERM or SIGINT, then drain and stop."""
    server = await start_analyst_server(settings)
    logging.getLogger(__name__).info("analyst service on %s:%d", settings.host, server.port)
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
