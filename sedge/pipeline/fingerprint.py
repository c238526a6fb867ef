"""A fingerprint of the library code a piece of work runs: the modules it imports, transitively.

    fingerprint(roots) = SHA-256 over the sorted digests d(m), m ∈ closure(roots), that are not empty
    d(m)               = SHA-256 of (AST(m) without docstrings, with every module path of the package
                         in it replaced by one placeholder) and of the non-Python files beside m
                         (e.g. the kernel's C++)

``closure`` follows every ``import``/``from … import`` of the package inside a module (at any
depth: function-level imports count too) and adds each module's parent packages (their
``__init__`` runs on import). Comments and docstrings are not part of the AST dump, so an edit of
prose changes nothing; an edit of code in any module reached does.

The digest holds what a module computes, not where it lives: neither the module's own name nor
the paths in its imports (``from .layer import f`` and ``from sedge.models.layer import f`` dump
alike) nor module names written as strings (the stages' lists of the code they run) enter it, and
a package whose ``__init__`` holds only a docstring adds nothing. Moving modules into other
packages therefore leaves every fingerprint, and every cached stage, as it was; the closure still
decides *which* modules are hashed, so a new import of other code does change it.
"""
from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from sedge.paths import REPO

PACKAGE = "sedge"


def module_path(name: str, root: Path = REPO) -> Path | None:
    """The file of module ``name`` (``sedge.data.folder``) under ``root``, or None if it is none."""
    base = root.joinpath(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def _resolve(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = current.split(".")
    anchor = parts if is_package else parts[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join(anchor + ([node.module] if node.module else []))


def imports_of(name: str, source: str, package: str = PACKAGE, root: Path = REPO) -> set[str]:
    """The modules of ``package`` that the code ``source`` (module ``name``) imports, anywhere in it."""
    is_package = module_path(name, root) is not None and module_path(name, root).name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, name, is_package)
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names if module_path(f"{base}.{a.name}", root)}
    return {m for m in found if (m == package or m.startswith(package + ".")) and module_path(m, root)}


def closure(roots: Iterable[str], package: str = PACKAGE, root: Path = REPO) -> set[str]:
    """Every module of ``package`` that importing ``roots`` runs."""
    todo, seen = list(roots), set()
    while todo:
        m = todo.pop()
        if m in seen or not module_path(m, root):
            continue
        seen.add(m)
        parts = m.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]           # parent packages
        todo += imports_of(m, module_path(m, root).read_text(), package, root)
    return seen


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or ([] if isinstance(node, ast.Module) else [ast.Pass()])
    return tree


PLACEHOLDER = "<module of the package>"


def _without_locations(tree: ast.Module, name: str, package: str, root: Path) -> ast.Module:
    """``tree`` with every module path of ``package`` replaced by :data:`PLACEHOLDER`: in imports
    (relative or absolute) and in string constants that name a module (module docstring)."""
    is_package = module_path(name, root) is not None and module_path(name, root).name == "__init__.py"
    inside = lambda m: (m == package or m.startswith(package + ".")) and module_path(m, root) is not None  # noqa: E731
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or inside(node.module or "")):
            if node.level or inside(_resolve(node, name, is_package)):
                node.module, node.level = PLACEHOLDER, 0
        elif isinstance(node, ast.Import):
            for a in node.names:
                if inside(a.name):
                    a.name = PLACEHOLDER
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and inside(node.value):
            node.value = PLACEHOLDER
    return tree


@lru_cache(maxsize=None)
def _ast_digest(path: Path, mtime_ns: int, name: str, package: str, root: Path) -> str | None:
    """SHA-256 of the AST part of d(m) (module docstring), or None for a module that holds no code."""
    tree = _without_locations(_strip_docstrings(ast.parse(path.read_text())), name, package, root)
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest() if tree.body else None


def _code_digest(name: str, package: str, root: Path) -> str | None:
    """d(m) of the module docstring, or None for a module with neither code nor data files."""
    path = module_path(name, root)
    code = _ast_digest(path, path.stat().st_mtime_ns, name, package, root)
    extras = sorted(q for q in path.parent.iterdir() if q.is_file() and q.suffix not in (".py", ".pyc")) \
        if path.name == "__init__.py" else []        # a package's data files: the kernel's C++ source, …
    if code is None and not extras:
        return None
    h = hashlib.sha256((code or "").encode())
    for extra in extras:
        h.update(extra.name.encode())
        h.update(extra.read_bytes())
    return h.hexdigest()


def fingerprint(roots: Iterable[str], package: str = PACKAGE, root: Path = REPO) -> str:
    """SHA-256 of the code (not the prose, nor where it lives) of every module importing ``roots``
    runs (module docstring)."""
    digests = [d for m in closure(roots, package, root) if (d := _code_digest(m, package, root)) is not None]
    return hashlib.sha256("".join(sorted(digests)).encode()).hexdigest()


def chapter_roots(code_cells: Iterable[str], package: str = PACKAGE, root: Path = REPO) -> set[str]:
    """The library modules a chapter's code cells import (IPython magics and shell lines skipped)."""
    found: set[str] = set()
    for src in code_cells:
        text = "\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!")))
        found |= imports_of("__chapter__", text, package, root)
    return found
