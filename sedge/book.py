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


def provenance() -> dict:
    """What produced an executed chapter: commit (and whether the tree had uncommitted changes),
    date, machine, cores, package versions."""
    import os
    import platform

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                   if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from importlib.metadata import version
    return {"commit": git("rev-parse", "--short=10", "HEAD") or "unknown",
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.system()} {platform.machine()}, {cpu}", "cores": os.cpu_count(),
            "threads": 2,                         # every chapter sets torch.set_num_threads(2)
            "versions": {p: version(p) for p in ("torch", "numpy", "control", "papermill", "sedge")},
            "python": platform.python_version()}


def _parameter_table(defaults_source: str, params: dict) -> str:
    """Markdown table of the parameters in force (the defaults overridden by the profile's)."""
    ns: dict = {}
    exec(defaults_source, {}, ns)
    rows = []
    for name, value in {**ns, **params}.items():
        text = repr(value)
        text = text if len(text) <= 90 else text[:87] + "…"
        rows.append(f"| `{name}` | `{text}` |" + (" profile |" if name in params else " default |"))
    return "| parameter | value in force | from |\n|---|---|---|\n" + "\n".join(rows)


def execute(src: Path, dst: Path, params: dict, key: str, profile: str, progress: bool = True) -> None:
    """Convert ``src`` in memory, execute it with Papermill under ``params``, write ``dst`` atomically.

    In the executed copy the two parameter cells (the defaults and Papermill's injected values) are
    hidden and replaced by one table of the values in force; a banner under the title and
    ``metadata.sedge`` record the profile and :func:`provenance`."""
    import tempfile

    import nbformat
    import papermill as pm
    tmp = dst.with_suffix(".running.ipynb")
    source_nb = read_source(src)
    with tempfile.TemporaryDirectory() as d:
        source = Path(d) / f"{src.stem}.ipynb"
        nbformat.write(source_nb, str(source))
        pm.execute_notebook(str(source), str(tmp), parameters=params, cwd=str(REPO), kernel_name="python3",
                            progress_bar=progress, log_output=False)
    nb = nbformat.read(str(tmp), as_version=4)
    prov = provenance()
    nb.metadata["sedge"] = {"key": key, "profile": profile, **prov}
    where = 0
    for i, cell in enumerate(nb.cells):
        tags = cell.metadata.get("tags", [])
        if "parameters" in tags or "injected-parameters" in tags:
            cell.metadata["tags"] = sorted(set(tags) | {"remove-cell"})
            where = i + 1
    table = nbformat.v4.new_markdown_cell(_parameter_table(parameters_cell(source_nb), params))
    table.metadata["tags"] = ["sedge-parameters"]
    nb.cells.insert(where, table)
    banner = nbformat.v4.new_markdown_cell(
        f"*Executed with profile `{profile}` at commit `{prov['commit']}`{' (with uncommitted changes)' if prov['dirty'] else ''}"
        f" on {prov['date']} — {prov['machine']}, {prov['cores']} cores, {prov['threads']} threads, "
        f"Python {prov['python']}, torch {prov['versions']['torch']}.*")
    banner.metadata["tags"] = ["sedge-banner"]
    nb.cells.insert(1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0, banner)
    nbformat.write(nb, str(tmp))
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
