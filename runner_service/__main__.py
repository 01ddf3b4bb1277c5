"""`python -m runner_service`: the runner-dispatch service alone (one container of the Helm chart).

Settings come from flags and environment variables by one rule (csv_analyst_settings.options): a
flag wins, else the variable, else the default. Every plain field of RunnerSettings is a flag
`--field-name` and a variable `CSV_ANALYST_RUNNER_<FIELD>` (e.g. --executor /
CSV_ANALYST_RUNNER_EXECUTOR; --cache-dir with an empty value turns materialisation off;
--data-roots / CSV_ANALYST_RUNNER_DATA_ROOTS is a list separated by `:`); the credential comes
from `--credential-file` / CSV_ANALYST_RUNNER_CREDENTIAL_FILE or from CSV_ANALYST_RUNNER_CREDENTIAL
(one is required), and the k8s executor's settings from `CSV_ANALYST_K8S_<FIELD>` variables.
`python -m runner_service --help` lists them all. SIGTERM drains in-flight runs for the grace
period, then stops.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from csv_analyst_settings.options import SettingError, add_fields, environment_parser, field_values
from runner_service.auth import CredentialError, load_credential
from runner_service.config import RunnerSettings
from runner_service.executors.k8s_settings import kubernetes_settings_from_env
from runner_service.server import start_runner_server

PREFIX = "CSV_ANALYST_RUNNER_"
DRAIN_SECONDS = 20.0
_OWN_PARSING = ("credential", "data_roots", "kubernetes")


def _optional_path(text: str) -> Path | None:
    return Path(text) if text else None


def declare_settings(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Add every setting as an option; return each option's variable by dest."""
    variables = add_fields(parser, RunnerSettings, PREFIX, skip=_OWN_PARSING,
                           types={"cache_dir": _optional_path})
    parser.add_argument("--data-roots", type=Path, action="append", default=[],
                        help="directories (or files) whose files may be mounted into sandboxes (repeatable; the "
                             "variable separates them with ':'); the cache directory is always one")
    parser.add_argument("--credential-file", type=Path, default=None,
                        help=f"file with the service credential (else ${PREFIX}CREDENTIAL; one is required)")
    variables |= {"data_roots": PREFIX + "DATA_ROOTS", "credential_file": PREFIX + "CREDENTIAL_FILE"}
    return variables


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """Every setting as a flag, its variable's value (when set) as its default.

    Raises:
        SettingError: For a variable whose value its setting cannot take.
    """
    return environment_parser("python -m runner_service", "The runner-dispatch service alone.", declare_settings,
                              environ)


def settings_from(argv: Sequence[str], environ: Mapping[str, str]) -> RunnerSettings:
    """RunnerSettings from flags over CSV_ANALYST_RUNNER_* variables over the defaults (and
    CSV_ANALYST_K8S_* for the k8s executor).

    Raises:
        ValueError: For a value that does not parse as its setting's type, or no credential.
    """
    options = build_parser(environ).parse_args(list(argv))
    credential = load_credential(options.credential_file, dict(environ))
    if not credential:
        raise SettingError("set CSV_ANALYST_RUNNER_CREDENTIAL_FILE or CSV_ANALYST_RUNNER_CREDENTIAL: the runner "
                           "service serves no anonymous caller")
    return dataclasses.replace(RunnerSettings(), **field_values(options, RunnerSettings, skip=_OWN_PARSING), credential=credential,
                               data_roots=tuple(options.data_roots),
                               kubernetes=kubernetes_settings_from_env(dict(environ)))


def settings_from_env(environ: Mapping[str, str]) -> RunnerSettings:
    """RunnerSettings from the environment alone (no flags)."""
    return settings_from([], environ)


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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    logging.basicConfig(level=os.environ.get("CSV_ANALYST_LOG_LEVEL", "INFO"))
    try:
        settings = settings_from(sys.argv[1:] if argv is None else argv, dict(os.environ))
    except (SettingError, CredentialError) as error:
        print(f"python -m runner_service: {error}", file=sys.stderr)
        return 2
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
