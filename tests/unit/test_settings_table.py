"""Configuration: one precedence rule (flag > environment variable > default) for `csv-analyst`
and both service entry points, and a README table that lists every setting with its flag,
variable and default (generated from the parsers; this test fails when the README's copy differs
or a flag has no variable)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from analyst_service import __main__ as analyst_main
from csv_analyst_app import settings_doc
from csv_analyst_app.cli import SETTINGS_COMMANDS, build_parser, main, setting_variables
from csv_analyst_settings.options import SettingError, by_dest, parsers_of
from runner_service import __main__ as runner_main

README = Path(__file__).resolve().parents[2] / "README.md"
CREDENTIAL = "c" * 32
URL = "postgresql://analyst@db.example:5432/capsules"


def test_the_readme_has_the_generated_settings_tables() -> None:
    text = README.read_text(encoding="utf-8")
    start, end = text.find(settings_doc.BEGIN), text.find(settings_doc.END)
    assert start >= 0 and end > start, "the README has no settings tables"
    assert text[start:end + len(settings_doc.END)] == settings_doc.markdown(), \
        "README settings tables are stale: paste the output of `python -m csv_analyst_app.settings_doc`"


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.dest != "help"]


def test_every_setting_flag_has_a_variable_and_a_readme_row() -> None:
    text = README.read_text(encoding="utf-8")
    parser = build_parser({})
    variable_of = setting_variables(parser)
    checked = [(a, variable_of(a)) for a in _options(parser) + _options(parsers_of(parser)["serve"])]
    for module in (analyst_main, runner_main):
        service = argparse.ArgumentParser()
        variables = module.declare_settings(service)
        checked += [(a, by_dest(variables)(a)) for a in _options(service)]
    for action, variable in checked:
        assert variable, f"{action.option_strings[0]} has no environment variable"
        assert f"`{variable}`" in text and f"`{action.option_strings[0]}" in text, action.option_strings


@pytest.mark.parametrize("command", [c for c in SETTINGS_COMMANDS if c])
def test_the_cli_rule_flag_over_variable_over_default(command: str) -> None:
    argv = [command] + (["run-id"] if command in ("capsule", "export") else [])
    environ = {"CSV_ANALYST_POOL_SIZE": "3", "CSV_ANALYST_CAPSULE_DB": URL, "CSV_ANALYST_NO_CACHE": "yes"}
    assert build_parser({}).parse_args(argv).pool_size == 1  # the default
    from_env = build_parser(environ).parse_args(argv)
    assert (from_env.pool_size, from_env.capsule_db, from_env.no_cache) == (3, URL, True)  # the variable
    flagged = build_parser(environ).parse_args([command, "--pool-size", "5", "--capsule-db", "x.sqlite3", *argv[1:]])
    assert flagged.pool_size == 5 and flagged.capsule_db == Path("x.sqlite3")  # the flag wins


def test_serve_only_settings_and_lists_follow_the_rule() -> None:
    environ = {"CSV_ANALYST_HOST": "0.0.0.0", "CSV_ANALYST_CSV_ROOT": "/a:/b", "CSV_ANALYST_ENABLE_PYTHON": "1",
               "CSV_ANALYST_LOG_LEVEL": "DEBUG"}
    options = build_parser(environ).parse_args(["serve"])
    assert (options.host, options.csv_root, options.enable_python) == ("0.0.0.0", [Path("/a"), Path("/b")], True)
    assert options.log_level == "DEBUG"
    options = build_parser(environ).parse_args(["--log-level", "ERROR", "serve", "--host", "127.0.0.1"])
    assert (options.host, options.log_level) == ("127.0.0.1", "ERROR")


def test_per_call_options_read_no_variable() -> None:
    options = build_parser({"CSV_ANALYST_DATASET": "support", "CSV_ANALYST_JSON": "1"}).parse_args(["ask", "q"])
    assert options.dataset is None and options.json is False


@pytest.mark.parametrize(("variable", "value", "hint"), [
    ("CSV_ANALYST_POOL_SIZE", "many", "invalid literal"),
    ("CSV_ANALYST_EXECUTOR", "vm", "choose from"),
    ("CSV_ANALYST_NO_UI", "perhaps", "expected 1/true"),
])
def test_a_bad_variable_is_refused_with_its_name(variable: str, value: str, hint: str,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingError, match=variable):
        build_parser({variable: value})
    monkeypatch.setenv(variable, value)
    assert main(["serve"]) == 2
    error = capsys.readouterr().err
    assert variable in error and hint in error


def test_the_analyst_service_rule_and_a_postgres_url_stays_a_url() -> None:
    base = {"CSV_ANALYST_RUNNER_CREDENTIAL": CREDENTIAL}
    assert analyst_main.settings_from([], base).max_rows == 1000
    environ = {**base, "CSV_ANALYST_ANALYST_CAPSULE_DB": URL, "CSV_ANALYST_ANALYST_MAX_ROWS": "7",
               "CSV_ANALYST_ANALYST_ENABLE_PYTHON": "true", "CSV_ANALYST_CLAUDE_MODEL": "m-env",
               "ANTHROPIC_BASE_URL": "http://127.0.0.1:1"}
    settings = analyst_main.settings_from([], environ)
    assert settings.capsule_db == URL and isinstance(settings.capsule_db, str)  # not coerced to a Path
    assert (settings.max_rows, settings.enable_python, settings.claude.model) == (7, True, "m-env")
    assert settings.claude.base_url == "http://127.0.0.1:1"
    flagged = analyst_main.settings_from(["--max-rows", "9", "--no-enable-python", "--claude-model", "m-flag",
                                          "--capsule-db", "/var/c.sqlite3"], environ)
    assert (flagged.max_rows, flagged.enable_python, flagged.claude.model) == (9, False, "m-flag")
    assert flagged.capsule_db == Path("/var/c.sqlite3")
    with pytest.raises(SettingError, match="CSV_ANALYST_ANALYST_PORT"):
        analyst_main.settings_from([], {**base, "CSV_ANALYST_ANALYST_PORT": "http"})


def test_the_analyst_reads_a_secret_capsule_store_url_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "url").write_text(URL.replace("analyst@", "analyst:s3cret@") + "\n")
    settings = analyst_main.settings_from([], {"CSV_ANALYST_RUNNER_CREDENTIAL": CREDENTIAL,
                                               "CSV_ANALYST_ANALYST_CAPSULE_DB": "/ignored.sqlite3",
                                               "CSV_ANALYST_ANALYST_CAPSULE_DB_FILE": str(tmp_path / "url")})
    assert settings.capsule_db == URL.replace("analyst@", "analyst:s3cret@")


def test_the_runner_service_rule() -> None:
    base = {"CSV_ANALYST_RUNNER_CREDENTIAL": CREDENTIAL}
    assert runner_main.settings_from([], base).max_concurrency == 0  # the default: derived from cores and memory
    environ = {**base, "CSV_ANALYST_RUNNER_MAX_CONCURRENCY": "4", "CSV_ANALYST_RUNNER_DATA_ROOTS": "/a:/b"}
    settings = runner_main.settings_from([], environ)
    assert (settings.max_concurrency, settings.data_roots) == (4, (Path("/a"), Path("/b")))
    flagged = runner_main.settings_from(["--max-concurrency", "8", "--data-roots", "/c"], environ)
    assert (flagged.max_concurrency, flagged.data_roots) == (8, (Path("/c"),))
