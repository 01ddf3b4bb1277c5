"""Flags and environment variables, by one precedence rule: a flag on the command line wins, else
the setting's environment variable, else the default.

Every entry point (`csv-analyst serve`, `python -m analyst_service`, `python -m runner_service`)
declares its settings as argparse options and names each option's variable; apply_environment
then makes each variable's value the option's default, so argparse itself gives a flag
precedence. A value that does not parse is refused with the variable's name (SettingError), the
same way a bad flag is. settings_rows lists every setting (flag, variable, default, help) for the
README table, which a test compares with the parsers.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})

# Which variable an option reads: its dest -> the variable's name (None: no variable).
VariableOf = Callable[[argparse.Action], "str | None"]


class SettingError(ValueError):
    """An environment variable holds a value its setting cannot take."""


@dataclass(frozen=True)
class SettingRow:
    """One documented setting."""

    flag: str
    variable: str
    default: str
    help: str


def prefixed(prefix: str, only: Iterable[str] | None = None,
             named: Mapping[str, str] | None = None) -> VariableOf:
    """Variables named PREFIX + DEST (upper case), for every option or only the dests in `only`;
    `named` gives some dests a variable of their own instead."""
    chosen = None if only is None else frozenset(only)
    named = dict(named or {})

    def variable_of(action: argparse.Action) -> str | None:
        if not action.option_strings or action.dest in ("help",):
            return None
        if action.dest in named:
            return named[action.dest]
        if chosen is not None and action.dest not in chosen:
            return None
        return prefix + action.dest.upper()
    return variable_of


def _is_flag(action: argparse.Action) -> bool:
    return action.nargs == 0 and not isinstance(action, (argparse._HelpAction, argparse._VersionAction))


def _is_append(action: argparse.Action) -> bool:
    return isinstance(action, argparse._AppendAction)


def parse_bool(variable: str, text: str) -> bool:
    """1/true/yes/on or 0/false/no/off (any case)."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise SettingError(f"{variable}={text!r}: expected 1/true/yes/on or 0/false/no/off")


def _convert(action: argparse.Action, variable: str, text: str) -> Any:
    if _is_flag(action):
        on = parse_bool(variable, text)
        # store_true sets const True; store_false sets const False; BooleanOptionalAction has no const.
        return on if action.const in (None, True) else not on
    convert = action.type if callable(action.type) else str
    try:
        if _is_append(action):
            return [convert(part) for part in text.split(os.pathsep) if part]
        value = convert(text)
    except (TypeError, ValueError, argparse.ArgumentTypeError) as error:
        raise SettingError(f"{variable}={text!r}: {error}") from None
    if action.choices is not None and value not in action.choices:
        raise SettingError(f"{variable}={text!r}: choose from {', '.join(map(str, action.choices))}")
    return value


class _AppendOverEnvironment(argparse._AppendAction):
    """A repeatable option whose default came from its variable: the first flag replaces that
    list (a flag wins) instead of adding to it."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if getattr(namespace, self.dest, None) is self.default:
            setattr(namespace, self.dest, [])
        super().__call__(parser, namespace, values, option_string)


def parsers_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser itself ('') and each subcommand's parser, by command name."""
    found = {"": parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sub
    return found


def apply_environment(parser: argparse.ArgumentParser, variable_of: VariableOf,
                      environ: Mapping[str, str]) -> None:
    """Make each option's variable, when set, its default (so a flag still wins).

    Raises:
        SettingError: For a value its option cannot take.
    """
    for action in parser._actions:
        variable = variable_of(action)
        if variable is not None and variable in environ:
            action.default = _convert(action, variable, environ[variable])
            if _is_append(action):
                action.__class__ = _AppendOverEnvironment


def environment_parser(prog: str, description: str, declare: Callable[[argparse.ArgumentParser], Mapping[str, str]],
                       environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """A parser of the settings `declare` adds (returning dest -> variable), each variable's value
    (when set) as its option's default.

    Raises:
        SettingError: For a variable whose value its setting cannot take.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    apply_environment(parser, by_dest(declare(parser)), environ)
    return parser


def shown_default(value: Any) -> str:
    """A default as the README shows it: the same on every machine (~ for the home folder,
    <repo> for the checkout)."""
    if value is None or value == []:
        return ""
    text = str(value)
    repo = str(Path(__file__).resolve().parent.parent)
    return text.replace(repo, "<repo>").replace(str(Path.home()), "~")


def settings_rows(parser: argparse.ArgumentParser, variable_of: VariableOf) -> list[SettingRow]:
    """Every option that has a variable, in the parser's order."""
    rows = []
    for action in parser._actions:
        variable = variable_of(action)
        if variable is None:
            continue
        positive = [o for o in action.option_strings if o.startswith("--") and not o.startswith("--no-")]
        flag = " / ".join(positive + [o for o in action.option_strings if o.startswith("--no-")]) \
            if isinstance(action, argparse.BooleanOptionalAction) else max(action.option_strings, key=len)
        if _is_flag(action):
            on = bool(action.default) if action.const in (None, True) else not action.default
            default = "on" if on else "off"
        else:
            default = shown_default(action.default)
        rows.append(SettingRow(flag, variable, default, " ".join((action.help or "").split())))
    return rows


def attribute_docs(cls: type) -> dict[str, str]:
    """The `Attributes:` section of a dataclass's docstring, by attribute name (one line each)."""
    docs: dict[str, str] = {}
    lines = (cls.__doc__ or "").splitlines()
    inside, name, indent = False, "", 0
    for line in lines:
        stripped = line.strip()
        if stripped == "Attributes:":
            inside, indent = True, len(line) - len(line.lstrip()) + 4
            continue
        if not inside or not stripped:
            continue
        depth = len(line) - len(line.lstrip())
        if depth < indent:
            break
        if depth == indent and ":" in stripped:
            name, text = stripped.split(":", 1)
            docs[name] = text.strip()
        elif name:
            docs[name] += " " + stripped
    return docs


def add_fields(parser: argparse.ArgumentParser, cls: type, variable_prefix: str, *, flag_prefix: str = "",
               skip: Iterable[str] = (), types: Mapping[str, Callable[[str], Any]] | None = None
               ) -> dict[str, str]:
    """Add one option per plain field (str, int, float, bool, Path) of a settings dataclass:
    `--<flag_prefix><field-name>`, its default the field's, its help the docstring's line; `types`
    gives a field a parser of its own (then its default may be of any type). Booleans get
    --x/--no-x.

    Returns:
        dest -> variable (variable_prefix + FIELD_NAME) of every option added.
    """
    base = cls()
    types = dict(types or {})
    docs = attribute_docs(cls)
    variables: dict[str, str] = {}
    for item in dataclasses.fields(cls):
        current = getattr(base, item.name)
        if item.name in skip:
            continue
        flag = "--" + (flag_prefix + item.name).replace("_", "-")
        dest = (flag_prefix + item.name).replace("-", "_")
        help_text = docs.get(item.name, "")
        if item.name in types:
            parser.add_argument(flag, dest=dest, type=types[item.name], default=current, help=help_text)
        elif isinstance(current, bool):
            parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=current,
                                help=help_text)
        elif isinstance(current, (str, int, float, Path)):
            kind = Path if isinstance(current, Path) else type(current)
            parser.add_argument(flag, dest=dest, type=kind, default=current, help=help_text)
        else:
            continue
        variables[dest] = variable_prefix + item.name.upper()
    return variables


def by_dest(variables: Mapping[str, str]) -> VariableOf:
    """Each option's variable from a dest -> variable table."""
    return lambda action: variables.get(action.dest) if action.option_strings else None


def field_values(options: argparse.Namespace, cls: type, flag_prefix: str = "",
                 skip: Iterable[str] = ()) -> dict[str, Any]:
    """The parsed values of cls's fields that add_fields made options of (the same skip), by field name."""
    values = vars(options)
    found = {}
    for item in dataclasses.fields(cls):
        if item.name in skip:
            continue
        dest = (flag_prefix + item.name).replace("-", "_")
        if dest in values:
            found[item.name] = values[dest]
    return found
