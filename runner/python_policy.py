"""The restricted-Python policy: which pandas programs may run (standard library only).

Checked twice: by the analyst service before a run is dispatched (REJECTED with
PYTHON_POLICY_VIOLATION) and by the runner inside the sandbox before anything executes. It is
an allowlist of syntax plus denylists of names and attributes that reach code execution, the
interpreter's internals or I/O:

- no imports (pd and np are provided), no `global`/`nonlocal`, no classes, no async code;
- no names outside the program's own and the provided ones that reach code or the interpreter
  (`exec`, `eval`, `compile`, `open`, `__import__`, `getattr` with a computed name, ...);
- no attribute that starts with `_` (dunders and private internals), no frame, code or
  generator internals (`gi_frame`, `f_globals`, `tb_frame`, ...), no `str.format` (it reads
  attributes from its template);
- no pandas/numpy I/O or code-compiling APIs (`read_*`, `to_csv`..., `pd.io`, `np.load`,
  `DataFrame.eval/query`, `np.ctypeslib`, plotting and styling, options);
- bounded size: characters, AST nodes and nesting depth.

Each refusal names the construct and its line. The sandbox (no network, read-only data, an
unprivileged user, memory/CPU/time limits) stays the real boundary if this list misses a path.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

MAX_CODE_CHARS = 20_000
MAX_NODES = 5_000
MAX_DEPTH = 60

# Names a program may not use at all (the runtime builtins do not hold them either).
FORBIDDEN_NAMES = frozenset({
    "exec", "eval", "compile", "open", "__import__", "globals", "locals", "vars", "dir", "breakpoint",
    "input", "help", "memoryview", "type", "object", "super", "classmethod", "staticmethod", "property",
    "setattr", "delattr", "exit", "quit", "copyright", "credits", "license", "id", "hash", "bytearray",
    "callable", "issubclass", "__builtins__", "__loader__", "__spec__",
})
# getattr/hasattr are allowed with a literal attribute name that passes the attribute rules.
LITERAL_NAME_CALLS = frozenset({"getattr", "hasattr"})
# Attributes that reach the interpreter's internals (frames, code objects, generators).
INTERNAL_PREFIXES = ("gi_", "cr_", "ag_", "f_", "tb_", "co_", "func_", "im_")
FORBIDDEN_ATTRIBUTES = frozenset({
    # Code-compiling or code-reading APIs.
    "eval", "query", "format", "format_map", "mro", "compile",
    # pandas and numpy internals, I/O and environment.
    "io", "api", "core", "util", "compat", "options", "set_option", "get_option", "reset_option",
    "describe_option", "option_context", "show_versions", "plotting", "plot", "style", "ExcelWriter",
    "ExcelFile", "HDFStore", "ctypeslib", "ctypes", "lib", "f2py", "testing", "distutils", "load", "save",
    "savez", "savez_compressed", "savetxt", "loadtxt", "genfromtxt", "fromfile", "tofile", "memmap",
    "DataSource", "fromregex", "os", "sys", "system", "popen", "subprocess", "builtins", "modules",
    "import_module", "__import__", "getattr", "setattr",
})
# pandas methods that call another method given by its name as a string.
BY_NAME_METHODS = frozenset({"agg", "aggregate", "apply", "transform", "applymap", "map", "pipe"})
# `to_*` methods that convert in memory (the rest write files or speak to other systems).
ALLOWED_TO = frozenset({"to_datetime", "to_numeric", "to_timedelta", "to_period", "to_timestamp", "to_list",
                        "to_frame", "to_numpy", "to_dict", "to_string", "to_records", "to_offset", "to_pydatetime",
                        "to_flat_index", "to_series"})
ALLOWED_NODES = (
    ast.Module, ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Name, ast.Load, ast.Store, ast.Del,
    ast.Constant, ast.Attribute, ast.Subscript, ast.Slice, ast.Call, ast.keyword, ast.Starred,
    ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.NamedExpr,
    ast.List, ast.Tuple, ast.Dict, ast.Set, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
    ast.comprehension, ast.JoinedStr, ast.FormattedValue,
    ast.If, ast.For, ast.While, ast.Break, ast.Continue, ast.Pass, ast.Return, ast.Delete,
    ast.FunctionDef, ast.Lambda, ast.arguments, ast.arg, ast.Assert,
    ast.Try, ast.ExceptHandler, ast.Raise,
    ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.expr_context,
)


@dataclass(frozen=True)
class PolicyViolation(Exception):
    """A construct the policy refuses, with its line (1-based; 0 for the program as a whole)."""

    construct: str
    line: int
    why: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.construct} is not allowed in restricted Python ({self.why})"


def check_python(code: str) -> ast.Module:
    """Parse and check a program; return its tree.

    Raises:
        PolicyViolation: For the first refused construct (or a syntax error, or a program that
            is too large or too deeply nested).
    """
    if not code.strip():
        raise PolicyViolation("an empty program", 0, "set result_df, result_rows or result")
    if len(code) > MAX_CODE_CHARS:
        raise PolicyViolation(f"a program of {len(code)} characters", 0, f"the limit is {MAX_CODE_CHARS}")
    if "\0" in code:
        raise PolicyViolation("a NUL character", 0, "programs are plain text")
    try:
        tree = ast.parse(code, filename="<analysis>", mode="exec")
    except SyntaxError as error:
        raise PolicyViolation(f"a syntax error ({error.msg})", error.lineno or 0, "the program does not parse") from None
    except (ValueError, RecursionError, MemoryError) as error:
        raise PolicyViolation("a program that cannot be parsed", 0, type(error).__name__) from None
    _check_shape(tree)
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        _check_node(node)
        if isinstance(node, ast.Name) and node.id in LITERAL_NAME_CALLS and id(node) not in called:
            raise PolicyViolation(f"`{node.id}` used other than as a direct call", _line(node),
                                  "call it with a literal attribute name")
    return tree


def _check_shape(tree: ast.AST) -> None:
    count = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise PolicyViolation(f"a program of more than {MAX_NODES} syntax nodes", 0, "it is too large")
        if depth > MAX_DEPTH:
            raise PolicyViolation(f"nesting deeper than {MAX_DEPTH} levels", getattr(node, "lineno", 0),
                                  "it is too deeply nested")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _line(node: ast.AST) -> int:
    return getattr(node, "lineno", 0)


def _check_node(node: ast.AST) -> None:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        raise PolicyViolation("an import", _line(node), "pd and np are already there; nothing else can be imported")
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        raise PolicyViolation(f"`{type(node).__name__.lower()}`", _line(node), "use plain variables")
    if isinstance(node, ast.ClassDef):
        raise PolicyViolation("a class definition", _line(node), "use functions and DataFrames")
    if not isinstance(node, ALLOWED_NODES):
        raise PolicyViolation(f"`{type(node).__name__}`", _line(node), "only plain statements and expressions run")
    if isinstance(node, ast.Name):
        _check_name(node.id, node)
    elif isinstance(node, ast.arg):
        _check_name(node.arg, node)
    elif isinstance(node, ast.FunctionDef):
        _check_name(node.name, node)
    elif isinstance(node, ast.ExceptHandler) and node.name:
        _check_name(node.name, node)
    elif isinstance(node, ast.keyword) and node.arg is not None:
        _check_name(node.arg, node, keyword=True)
    elif isinstance(node, ast.Attribute):
        _check_attribute(node.attr, node)
    elif isinstance(node, ast.Call):
        _check_call(node)


def _check_name(name: str, node: ast.AST, keyword: bool = False) -> None:
    if name.startswith("__"):
        raise PolicyViolation(f"the name `{name}`", _line(node), "double-underscore names reach the interpreter")
    if not keyword and name in FORBIDDEN_NAMES:
        raise PolicyViolation(f"`{name}`", _line(node), "it reaches code execution, files or the interpreter")


def _check_attribute(attribute: str, node: ast.AST) -> None:
    if attribute.startswith("_"):
        raise PolicyViolation(f"the attribute `.{attribute}`", _line(node), "private and dunder attributes are off limits")
    if attribute.startswith(INTERNAL_PREFIXES):
        raise PolicyViolation(f"the attribute `.{attribute}`", _line(node), "it reaches frames or code objects")
    if attribute.startswith("read_"):
        raise PolicyViolation(f"`.{attribute}`", _line(node), "the tables are already loaded as DataFrames")
    if attribute.startswith("to_") and attribute not in ALLOWED_TO:
        raise PolicyViolation(f"`.{attribute}`", _line(node), "writing files or other systems is not allowed; "
                                                               "set result_df instead")
    if attribute in FORBIDDEN_ATTRIBUTES:
        hint = "use f-strings" if attribute in ("format", "format_map") else "it compiles code or reaches I/O"
        raise PolicyViolation(f"`.{attribute}`", _line(node), hint)


def _check_call(node: ast.Call) -> None:
    # pandas resolves a method given by name (`df.agg("to_csv", path)`, `s.apply("eval")`):
    # there, a string that names a refused attribute is refused like the attribute itself.
    if isinstance(node.func, ast.Attribute) and node.func.attr in BY_NAME_METHODS:
        for argument in [*node.args, *(k.value for k in node.keywords)]:
            items = argument.elts if isinstance(argument, (ast.List, ast.Tuple, ast.Set)) else \
                [*argument.values] if isinstance(argument, ast.Dict) else [argument]
            for item in items:
                if isinstance(item, ast.Constant) and isinstance(item.value, str) and item.value.isidentifier():
                    _check_attribute(item.value, item)
    if isinstance(node.func, ast.Name) and node.func.id in LITERAL_NAME_CALLS:
        name = node.args[1] if len(node.args) > 1 else None
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
            raise PolicyViolation(f"`{node.func.id}` with a computed attribute name", _line(node),
                                  "name the attribute literally")
        _check_attribute(name.value, node)
