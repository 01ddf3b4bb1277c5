"""`python -m analyst_service`: the analyst service alone (one container of the Helm chart).

Settings come from flags and environment variables by one rule (csv_analyst_settings.options): a
flag wins, else the variable, else the default. Every plain field of AnalystSettings is a flag
`--field-name` and a variable `CSV_ANALYST_ANALYST_<FIELD>` (e.g. --capsule-db /
CSV_ANALYST_ANALYST_CAPSULE_DB, a SQLite path or a postgresql:// URL, or `--capsule-db-file` /
CSV_ANALYST_ANALYST_CAPSULE_DB_FILE naming a file that holds it); `--csv-roots` /
CSV_ANALYST_ANALYST_CSV_ROOTS (a list separated by `:`), `--api-keys-file` /
CSV_ANALYST_ANALYST_API_KEYS_FILE (a key file of `csv-analyst keys add`), the runner service's
credential from `--runner-credential-file` / CSV_ANALYST_RUNNER_CREDENTIAL_FILE or from
CSV_ANALYST_RUNNER_CREDENTIAL, and the Claude planner's fields as `--claude-<field>` /
`CSV_ANALYST_CLAUDE_<FIELD>` (its API key from `--claude-api-key-file` /
CSV_ANALYST_CLAUDE_API_KEY_FILE, or ANTHROPIC_API_KEY; its base URL also from ANTHROPIC_BASE_URL).
`python -m analyst_service --help` lists them all. SIGTERM drains in-flight calls for the grace
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

from analyst_service.auth import KeyRing, load_key_file
from analyst_service.capsules.stores import capsule_location
from analyst_service.config import AnalystSettings, ClaudeSettings
from analyst_service.server import start_analyst_server
from csv_analyst_settings.options import SettingError, add_fields, environment_parser, field_values

PREFIX = "CSV_ANALYST_ANALYST_"
CLAUDE_PREFIX = "CSV_ANALYST_CLAUDE_"
# The runner service's credential (the same variable the runner service reads).
RUNNER_CREDENTIAL_ENV = "CSV_ANALYST_RUNNER_CREDENTIAL"
DRAIN_SECONDS = 20.0
_OWN_PARSING = ("runner_credential", "api_keys", "csv_roots", "claude")


def declare_settings(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Add every setting as an option; return each option's variable by dest."""
    variables = add_fields(parser, AnalystSettings, PREFIX, skip=_OWN_PARSING,
                           types={"capsule_db": capsule_location})  # a URL stays a URL
    parser.add_argument("--capsule-db-file", type=Path, default=None,
                        help="file holding the capsule store's location (a postgresql:// URL with its password, "
                             "from a Secret); when given, it wins over --capsule-db")
    parser.add_argument("--csv-roots", type=Path, action="append", default=[],
                        help="directories whose CSV files clients may name as server-side csv_paths "
                             "(repeatable; the variable separates them with ':')")
    parser.add_argument("--api-keys-file", type=Path, default=None,
                        help="accepted client API keys (`csv-analyst keys add`); none: every caller is accepted")
    parser.add_argument("--runner-credential-file", type=Path, default=None,
                        help=f"file with the runner service's credential (else ${RUNNER_CREDENTIAL_ENV})")
    variables |= {"capsule_db_file": PREFIX + "CAPSULE_DB_FILE", "csv_roots": PREFIX + "CSV_ROOTS",
                  "api_keys_file": PREFIX + "API_KEYS_FILE",
                  "runner_credential_file": RUNNER_CREDENTIAL_ENV + "_FILE"}
    variables |= add_fields(parser, ClaudeSettings, CLAUDE_PREFIX, flag_prefix="claude_", skip=("api_key",))
    parser.add_argument("--claude-api-key-file", type=Path, default=None,
                        help="file with the Anthropic API key (else $ANTHROPIC_API_KEY)")
    variables["claude_api_key_file"] = CLAUDE_PREFIX + "API_KEY_FILE"
    return variables


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """Every setting as a flag, its variable's value (when set) as its default.

    Raises:
        SettingError: For a variable whose value its setting cannot take.
    """
    view = dict(environ)
    if environ.get("ANTHROPIC_BASE_URL"):  # the SDK's own variable, under the planner's own
        view.setdefault(CLAUDE_PREFIX + "BASE_URL", environ["ANTHROPIC_BASE_URL"])
    return environment_parser("python -m analyst_service", "The analyst service alone.", declare_settings, view)


def settings_from(argv: Sequence[str], environ: Mapping[str, str]) -> AnalystSettings:
    """AnalystSettings from flags over environment variables over the defaults.

    Raises:
        ValueError: For a variable whose value does not parse as its setting's type (SettingError).
    """
    parser = build_parser(environ)
    options = parser.parse_args(list(argv))
    credential = (options.runner_credential_file.read_text().strip() if options.runner_credential_file
                  else environ.get(RUNNER_CREDENTIAL_ENV, ""))
    claude = field_values(options, ClaudeSettings, "claude_", skip=("api_key",))
    if options.capsule_db_file:
        options.capsule_db = capsule_location(options.capsule_db_file.read_text(encoding="utf-8").strip())
    api_key = (options.claude_api_key_file.read_text().strip() if options.claude_api_key_file
               else environ.get("ANTHROPIC_API_KEY", ""))
    return dataclasses.replace(
        AnalystSettings(), **field_values(options, AnalystSettings, skip=_OWN_PARSING), runner_credential=credential,
        csv_roots=tuple(options.csv_roots),
        api_keys=KeyRing(load_key_file(options.api_keys_file)) if options.api_keys_file else KeyRing(),
        claude=dataclasses.replace(ClaudeSettings(), api_key=api_key, **claude))


def settings_from_env(environ: Mapping[str, str]) -> AnalystSettings:
    """AnalystSettings from the environment alone (no flags)."""
    return settings_from([], environ)


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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    logging.basicConfig(level=os.environ.get("CSV_ANALYST_LOG_LEVEL", "INFO"))
    try:
        settings = settings_from(sys.argv[1:] if argv is None else argv, dict(os.environ))
    except SettingError as error:
        print(f"python -m analyst_service: {error}", file=sys.stderr)
        return 2
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
