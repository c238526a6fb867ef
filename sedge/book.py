"""Execute the parameterised notebooks with Papermill into ``book/`` and build the Jupyter Book.

The chapter sources are Jupytext text notebooks in the percent format (``notebooks/NN_name.py``:
``# %%`` starts a code cell, ``# %% [markdown]`` a prose cell, ``# %% tags=["parameters"]`` the
parameters cell). :func:`read_source` converts one in memory; Papermill executes the conversion into
``book/NN_name.ipynb``, which the book renders.

A notebook is re-executed only when its *freshness key* changed: a hash of the notebook source,
the profile's parameters for it, and the library source (``sedge/**/*.py``). The key is stored
in the executed notebook's metadata (``metadata.sedge.key``), which is also what the test
suite checks to catch stale committed results.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

from .paths import REPO

NOTEBOOKS = REPO / "notebooks"
BOOK = REPO / "book"
PROFILES = NOTEBOOKS / "profiles.yml"


def load_profile(name: str) -> dict[str, dict]:
    profiles = yaml.safe_load(PROFILES.read_text())
    if name not in profiles:
        raise ValueError(f"{PROFILES}: no profile {name!r}; expected one of {sorted(profiles)}")
    return profiles[name]


def source_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9]*.py"))


def read_source(path: Path):
    """The text notebook ``path`` as an nbformat notebook (no outputs)."""
    import jupytext
    return jupytext.read(path, fmt="py:percent")


def executed_path(src: Path) -> Path:
    return BOOK / f"{src.stem}.ipynb"


def parameters_cell(nb) -> str:
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"a chapter needs exactly one cell tagged 'parameters', found {len(cells)}")
    return cells[0].source


def library_hash() -> str:
    h = hashlib.sha256()
    for p in sorted((REPO / "sedge").rglob("*.py")):
        h.update(p.relative_to(REPO).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def notebook_source_hash(path: Path) -> str:
    """Hash of the cells' types and sources only (metadata ignored)."""
    cells = [(c.cell_type, c.source) for c in read_source(path).cells]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def freshness_key(notebook: Path, profile: str, params: dict, lib: str | None = None) -> str:
    """A notebook whose parameters name a ``profile`` (the comparison chapter, which reads back the
    other chapters' stages at that profile) also depends on that whole profile."""
    chapters = load_profile(params["profile"]) if "profile" in params else None
    blob = json.dumps({"notebook": notebook_source_hash(notebook), "profile": profile, "params": params,
                       "library": lib or library_hash(), "chapters": chapters}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def executed_key(path: Path) -> str | None:
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("metadata", {}).get("sedge", {}).get("key")


def stale_notebooks(profile: str = "quick") -> list[tuple[Path, Path, dict, str]]:
    """(source, executed, parameters, key) for every notebook whose executed copy is out of date."""
    prof = load_profile(profile)
    lib = library_hash()
    out = []
    for src in source_notebooks():
        params = prof.get(src.stem, {})
        key = freshness_key(src, profile, params, lib)
        dst = executed_path(src)
        if executed_key(dst) != key:
            out.append((src, dst, params, key))
    return out


def execute(src: Path, dst: Path, params: dict, key: str, profile: str, progress: bool = True) -> None:
    """Convert ``src`` in memory, execute it with Papermill under ``params``, write ``dst`` atomically."""
    import tempfile

    import nbformat
    import papermill as pm
    tmp = dst.with_suffix(".running.ipynb")
    with tempfile.TemporaryDirectory() as d:
        source = Path(d) / f"{src.stem}.ipynb"
        nbformat.write(read_source(src), str(source))
        pm.execute_notebook(str(source), str(tmp), parameters=params, cwd=str(REPO), kernel_name="python3",
                            progress_bar=progress, log_output=False)
    nb = json.loads(tmp.read_text())
    nb["metadata"]["sedge"] = {"key": key, "profile": profile}
    tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(dst)


def run_book(profile: str = "quick", only: list[str] | None = None, build: bool = True, force: bool = False) -> int:
    todo = stale_notebooks(profile) if not force else [
        (s, executed_path(s), load_profile(profile).get(s.stem, {}), freshness_key(s, profile, load_profile(profile).get(s.stem, {})))
        for s in source_notebooks()]
    if only:
        todo = [t for t in todo if t[0].stem in only]
    print(f"profile {profile!r}: {len(todo)} notebook(s) to execute"
          + (": " + ", ".join(t[0].stem for t in todo) if todo else " (all up to date)"))
    for i, (src, dst, params, key) in enumerate(todo, 1):
        t0 = time.time()
        print(f"[{i}/{len(todo)}] executing {src.name} → {dst.relative_to(REPO)}", flush=True)
        execute(src, dst, params, key, profile)
        print(f"[{i}/{len(todo)}] {src.name} done in {time.time() - t0:.0f} s", flush=True)
    if not build:
        return 0
    print("building the book: jupyter-book build book (warnings are errors)", flush=True)
    jb = Path(sys.executable).with_name("jupyter-book")
    # JB 1.x finds the repository's _config.yml from here and writes _build/ beside it.
    return subprocess.call([str(jb) if jb.exists() else "jupyter-book", "build", "book", "-W", "-n",
                            "--keep-going"], cwd=REPO)
