"""A chapter's parameters: declared once, in its cell tagged ``parameters``, one flat name per line.

Each line of that cell is ``name = value  # meaning``; the comment is the documentation the book
renders (name, meaning, value in force). A parameter whose meaning says ``per dataset`` takes either
one value for every dataset or a mapping ``{dataset tag: value}`` (:func:`for_data` picks the value
of one dataset). Anything else a caller passes — a Papermill ``-p``/``-y`` or a ``sedge book --set``
— must be a declared name with a value of the declared kind; otherwise :class:`ParameterError`
names the parameter, the chapter and the closest declared names.
"""
from __future__ import annotations

import ast
import difflib
import io
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PER_DATASET = "per dataset"        # the phrase in a parameter's meaning that allows {tag: value}
# Names an IPython kernel defines itself (besides those starting with "_").
_KERNEL_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


class ParameterError(ValueError):
    """An unknown parameter name or a value of the wrong kind."""


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any
    meaning: str

    @property
    def per_dataset(self) -> bool:
        return PER_DATASET in self.meaning


def declared(cell_source: str) -> dict[str, Parameter]:
    """The parameters of a ``parameters`` cell: every top-level ``name = literal`` with the comment
    on its first line as its meaning (a line without a comment has meaning "")."""
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(cell_source).readline):
        if tok.type == tokenize.COMMENT:
            comments.setdefault(tok.start[0], tok.string.lstrip("#").strip())
    out: dict[str, Parameter] = {}
    for node in ast.parse(cell_source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ParameterError(f"parameters cell line {node.lineno}: expected `name = value  # meaning`")
        try:
            value = ast.literal_eval(node.value)
        except ValueError as e:
            raise ParameterError(f"parameters cell line {node.lineno}: the value of "
                                 f"{node.targets[0].id!r} is not a literal") from e
        meaning = next((comments[l] for l in range(node.lineno, node.end_lineno + 1) if l in comments), "")
        out[node.targets[0].id] = Parameter(node.targets[0].id, value, meaning)
    return out


def _kind_ok(default: Any, value: Any) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, int):
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def _kind_name(default: Any) -> str:
    for kind, name in ((bool, "true or false"), (int, "an integer"), (float, "a number"), (str, "text"),
                       ((list, tuple), "a list"), (dict, "a mapping")):
        if isinstance(default, kind):
            return name
    return type(default).__name__


def check_value(chapter: str, p: Parameter, value: Any) -> None:
    """Refuse a value whose kind differs from the declared default's (a per-dataset parameter may
    also be a mapping of such values)."""
    values = value.values() if p.per_dataset and isinstance(value, dict) and not isinstance(p.default, dict) else [value]
    for v in values:
        if not _kind_ok(p.default, v):
            hint = (" (Papermill's -p passes text; give lists and mappings with -y, e.g. -y \"models: [m]\")"
                    if isinstance(v, str) and isinstance(p.default, (list, dict)) else "")
            raise ParameterError(f"{chapter}: parameter {p.name!r} expects {_kind_name(p.default)} like "
                                 f"{p.default!r}{' (or {dataset: value})' if p.per_dataset else ''}, got {v!r}{hint}")


def check_names(chapter: str, params: dict[str, Parameter], names) -> None:
    unknown = [n for n in names if n not in params]
    if unknown:
        hints = []
        for n in unknown:
            close = difflib.get_close_matches(n, list(params), n=2)
            hints.append(f"{n!r}" + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""))
        raise ParameterError(f"{chapter}: unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(hints)}; "
                             f"its parameters are {', '.join(params)}")


def check_overrides(chapter: str, params: dict[str, Parameter], overrides: dict[str, Any]) -> None:
    """Every name in ``overrides`` is declared and its value is of the declared kind."""
    check_names(chapter, params, overrides)
    for name, value in overrides.items():
        check_value(chapter, params[name], value)


def chapter_parameters(chapter: str | Path) -> dict[str, Parameter]:
    """The declared parameters of a chapter, by stem (``01_training``) or source path."""
    from sedge.pipeline.chapters import NOTEBOOKS, parameters_cell, read_source
    path = Path(chapter) if str(chapter).endswith(".py") else NOTEBOOKS / f"{chapter}.py"
    if not path.exists():
        raise ParameterError(f"no chapter {chapter!r}: {path} does not exist")
    return declared(parameters_cell(read_source(path)))


def check_namespace(namespace: dict[str, Any], chapter: str) -> None:
    """Run in a chapter's first code cell: every data name in the namespace (a default or a value
    Papermill injected) is a declared parameter of ``chapter`` with a value of its kind. A mistyped
    ``-p epoch 20`` is an error here, not a warning that scrolls by."""
    import types
    params = chapter_parameters(chapter)
    names = [n for n, v in namespace.items() if not n.startswith("_") and n not in _KERNEL_NAMES
             and not isinstance(v, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type))]
    check_overrides(chapter, params, {n: namespace[n] for n in names})
    missing = [n for n in params if n not in namespace]
    if missing:
        raise ParameterError(f"{chapter}: parameters {missing} are declared but not defined")


def for_data(value: Any, tag: str, name: str = "parameter") -> Any:
    """The value of a per-dataset parameter for dataset ``tag``: ``value`` itself, or ``value[tag]``
    when it is a mapping of dataset tags."""
    if isinstance(value, dict):
        if tag not in value:
            raise ParameterError(f"{name} = {value!r} has no entry for dataset {tag!r}")
        return value[tag]
    return value


def parse_assignment(text: str) -> tuple[str, Any]:
    """``key=value`` from the command line, the value read as YAML (``epochs=20``,
    ``models=[tiny,s]``, ``epochs={mini: 20}``)."""
    import yaml
    if "=" not in text:
        raise ParameterError(f"--set {text!r}: expected key=value, e.g. --set epochs=20")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ParameterError(f"--set {text!r}: the value is not YAML ({e.problem})") from e
