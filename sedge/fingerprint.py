"""A fingerprint of the library code a piece of work runs: the modules it imports, transitively.

    fingerprint(roots) = SHA-256 over m ∈ closure(roots), sorted, of (m, AST(m) without docstrings)
                         and the bytes of the non-Python files beside m (e.g. the kernel's C++)

``closure`` follows every ``import``/``from … import`` of the package inside a module (at any
depth: function-level imports count too) and adds each module's parent packages (their
``__init__`` runs on import). Comments and docstrings are not part of the AST dump, so an edit of
prose changes nothing; an edit of code in any module reached does.
"""
from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from .paths import REPO

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
                node.body = body[1:] or [ast.Pass()]
    return tree


@lru_cache(maxsize=None)
def _code_digest(path: Path, mtime_ns: int) -> str:
    tree = _strip_docstrings(ast.parse(path.read_text()))
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def fingerprint(roots: Iterable[str], package: str = PACKAGE, root: Path = REPO) -> str:
    """SHA-256 of the code (not the prose) of every module importing ``roots`` runs (module docstring)."""
    h = hashlib.sha256()
    for m in sorted(closure(roots, package, root)):
        p = module_path(m, root)
        h.update(m.encode())
        h.update(_code_digest(p, p.stat().st_mtime_ns).encode())
        if p.name == "__init__.py":           # a package's data files: the kernel's C++ source, …
            for extra in sorted(q for q in p.parent.iterdir() if q.is_file() and q.suffix not in (".py", ".pyc")):
                h.update(extra.name.encode())
                h.update(extra.read_bytes())
    return h.hexdigest()


def chapter_roots(code_cells: Iterable[str], package: str = PACKAGE, root: Path = REPO) -> set[str]:
    """The library modules a chapter's code cells import (IPython magics and shell lines skipped)."""
    found: set[str] = set()
    for src in code_cells:
        text = "\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!")))
        found |= imports_of("__chapter__", text, package, root)
    return found
