"""Settings of `python -m runner_service` and `python -m analyst_service` (the chart's containers)
from their environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyst_service.__main__ import settings_from_env as analyst_settings
from analyst_service.auth import digest_of, key_file_line, new_key
from runner_service.__main__ import settings_from_env as runner_settings

CREDENTIAL = "c" * 32


def test_runner_settings(tmp_path: Path) -> None:
    credential = tmp_path / "credential"
    credential.write_text(CREDENTIAL + "\n")
    settings = runner_settings({
        "CSV_ANALYST_RUNNER_CREDENTIAL_FILE": str(credential), "CSV_ANALYST_RUNNER_HOST": "0.0.0.0",
        "CSV_ANALYST_RUNNER_PORT": "6000", "CSV_ANALYST_RUNNER_EXECUTOR": "k8s",
        "CSV_ANALYST_RUNNER_DATA_ROOTS": "/var/lib/a:/var/lib/b", "CSV_ANALYST_RUNNER_CACHE_DIR": "/var/lib/a/cache",
        "CSV_ANALYST_RUNNER_MAX_TIMEOUT_SECONDS": "60", "CSV_ANALYST_K8S_NAMESPACE": "runs"})
    assert (settings.credential, settings.host, settings.port) == (CREDENTIAL, "0.0.0.0", 6000)
    assert settings.executor == "k8s"
    assert settings.data_roots == (Path("/var/lib/a"), Path("/var/lib/b"))
    assert settings.cache_dir == Path("/var/lib/a/cache") and settings.max_timeout_seconds == 60.0
    assert settings.kubernetes.namespace == "runs"
    no_cache = runner_settings({"CSV_ANALYST_RUNNER_CREDENTIAL": CREDENTIAL, "CSV_ANALYST_RUNNER_CACHE_DIR": ""})
    assert no_cache.cache_dir is None


def test_runner_settings_refuse_no_credential_and_bad_values() -> None:
    with pytest.raises(ValueError, match="CSV_ANALYST_RUNNER_CREDENTIAL"):
        runner_settings({})
    with pytest.raises(ValueError, match="CSV_ANALYST_RUNNER_PORT"):
        runner_settings({"CSV_ANALYST_RUNNER_CREDENTIAL": CREDENTIAL, "CSV_ANALYST_RUNNER_PORT": "http"})


def test_analyst_settings(tmp_path: Path) -> None:
    key = new_key()
    (tmp_path / "keys").write_text(key_file_line(key, "ui") + "\n")
    (tmp_path / "credential").write_text(CREDENTIAL)
    (tmp_path / "claude").write_text("sk-test\n")
    settings = analyst_settings({
        "CSV_ANALYST_ANALYST_HOST": "0.0.0.0", "CSV_ANALYST_ANALYST_PORT": "6001",
        "CSV_ANALYST_ANALYST_DATASETS_DIR": "/d", "CSV_ANALYST_ANALYST_ALLOW_UNAUTHENTICATED": "false",
        "CSV_ANALYST_ANALYST_CSV_ROOTS": "/x:/y", "CSV_ANALYST_ANALYST_API_KEYS_FILE": str(tmp_path / "keys"),
        "CSV_ANALYST_RUNNER_CREDENTIAL_FILE": str(tmp_path / "credential"),
        "CSV_ANALYST_ANALYST_PLANNER": "claude", "CSV_ANALYST_CLAUDE_API_KEY_FILE": str(tmp_path / "claude"),
        "CSV_ANALYST_CLAUDE_MODEL": "claude-test", "CSV_ANALYST_CLAUDE_MAX_TOKENS": "100"})
    assert (settings.host, settings.port, settings.datasets_dir) == ("0.0.0.0", 6001, Path("/d"))
    assert settings.allow_unauthenticated is False and settings.csv_roots == (Path("/x"), Path("/y"))
    assert settings.runner_credential == CREDENTIAL
    found = settings.api_keys.find(key)
    assert found is not None and found.digest == digest_of(key) and settings.api_keys.find(new_key()) is None
    assert (settings.planner, settings.claude.api_key, settings.claude.model, settings.claude.max_tokens) == (
        "claude", "sk-test", "claude-test", 100)
