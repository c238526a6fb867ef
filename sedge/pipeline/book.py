"""Execute the parameterised notebooks with Papermill into ``book/`` and build the Jupyter Book.

The chapter sources are Jupytext text notebooks in the percent format (``notebooks/NN_name.py``:
``# %%`` starts a code cell, ``# %% [markdown]`` a prose cell, ``# %% tags=["parameters"]`` the
parameters cell). :func:`read_source` converts one in memory; Papermill executes the conversion into
``book/NN_name.ipynb``, which the book renders.

A notebook is re-executed only when its *freshness key* changed — a hash of the notebook source,
the profile's parameters for it, and the fingerprint of the library code it runs (the ``sedge``
modules it imports, transitively; docstrings and comments excluded — :mod:`sedge.pipeline.fingerprint`) — or
when a cached stage it read has changed since (each stage it read is recorded with the digest of
its ``stage.json``, :mod:`sedge.pipeline.stages`).
The runner's presentation (banner, parameter table) is not part of it: ``sedge book --force``
re-renders. The key is stored
in the executed notebook's metadata (``metadata.sedge.key``), which is also what the test
suite checks to catch stale committed results.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from sedge.memory import child_environment
from sedge.pipeline.chapters import BOOK, NOTEBOOKS, executed_path, parameters_cell, read_source, source_notebooks
from sedge.paths import REPO, portable
from sedge.pipeline.profiles import PROFILES, chapter_values, load_profile
from sedge.pipeline.stages import environment

def library_fingerprint(notebook: Path, root: Path = REPO) -> str:
    """Fingerprint of the library code the chapter runs: the ``sedge`` modules its code cells import,
    transitively, without docstrings and comments (:mod:`sedge.pipeline.fingerprint`), as the
    sources under ``root`` define them (another checkout: the fingerprint at another revision)."""
    from sedge.pipeline.fingerprint import chapter_roots, fingerprint
    cells = [c.source for c in read_source(notebook).cells if c.cell_type == "code"]
    return fingerprint(chapter_roots(cells, root=root), root=root)


def notebook_source_hash(path: Path) -> str:
    """Hash of the cells' types and sources only (metadata ignored)."""
    cells = [(c.cell_type, c.source) for c in read_source(path).cells]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def freshness_key(notebook: Path, profile: str, params: dict, lib: str | None = None) -> str:
    """A notebook whose parameters name a ``profile`` (the comparison chapter, which reads back the
    other chapters' stages at that profile) also depends on that whole profile."""
    chapters = load_profile(params["profile"]) if "profile" in params else None
    blob = json.dumps({"notebook": notebook_source_hash(notebook), "profile": profile, "params": params,
                       "library": lib or library_fingerprint(notebook), "chapters": chapters}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def executed_key(path: Path) -> str | None:
    """The key an executed chapter was run under, or None when it is missing or one of the stages it
    read has changed since (retrained, recomputed, removed): the chapter's numbers would be stale."""
    if not path.exists():
        return None
    meta = json.loads(path.read_text()).get("metadata", {}).get("sedge", {})
    if not stages_unchanged(meta.get("stages", {})):
        return None
    return meta.get("key")


def stages_unchanged(read: dict[str, str | None]) -> bool:
    """Whether every stage a chapter read (folder → digest of its ``stage.json``) is still as it was."""
    from sedge.pipeline.stages import read_is_current
    return all(read_is_current(name, digest, REPO) for name, digest in read.items())


def _stages_read(log: Path) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            e = json.loads(line)
            out[e["stage"]] = e["record"]
    return dict(sorted(out.items()))


def stale_notebooks(profile: str = "quick") -> list[tuple[Path, Path, dict, str]]:
    """(source, executed, parameters, key) for every notebook whose executed copy is out of date."""
    prof = load_profile(profile)
    out = []
    for src in source_notebooks():
        params = prof.get(src.stem, {})
        key = freshness_key(src, profile, params)
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


def _parameter_table(defaults_source: str, params: dict, overrides: dict | None = None) -> str:
    """Markdown table of the parameters: name, value in force (shortened), where that value came
    from, and its meaning (the comment on its line of the parameters cell)."""
    from sedge.pipeline.parameters import declared

    def cell(text: str) -> str:          # Markdown table cell: no raw HTML, no column breaks
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
    overrides = overrides or {}
    rows = []
    for name, p in declared(defaults_source).items():
        value = params.get(name, p.default)
        text = repr(value)
        text = text if len(text) <= 40 else text[:38] + "…"
        origin = "--set" if name in overrides else "profile" if name in params else "default"
        rows.append(f"| `{name}` | `{cell(text)}` | {origin} | {cell(p.meaning)} |")
    return "| parameter | value in force | from | meaning |\n|---|---|---|---|\n" + "\n".join(rows)


def refresh_parameter_tables(root: Path = REPO) -> int:
    """Re-render the parameter table of every executed chapter under ``root/book`` from its source,
    its profile and its overrides (the table is presentation: no re-execution). Returns how many
    changed."""
    import nbformat
    changed = 0
    for src in source_notebooks():
        dst = root / "book" / executed_path(src).name
        if not dst.exists():
            continue
        nb = nbformat.read(str(dst), as_version=4)
        meta = nb.metadata.get("sedge", {})
        if "profile" not in meta:
            continue
        params = {**load_profile(meta["profile"]).get(src.stem, {}), **meta.get("overrides", {})}
        table = _parameter_table(parameters_cell(read_source(src)), params, meta.get("overrides"))
        for c in nb.cells:
            if "sedge-parameters" in c.metadata.get("tags", []) and c.source != table:
                c.source = table
                tmp = dst.with_suffix(".running.ipynb")
                nbformat.write(nb, str(tmp))
                tmp.replace(dst)
                changed += 1
    return changed


class _DropInferenceWarnings:
    """Papermill guesses a notebook's parameters from its cell with a regex that gives up on values
    containing "=" (every data spec) and then calls the real names unknown. The chapter's own check
    (:func:`sedge.pipeline.parameters.check_namespace`) decides; these guesses are dropped."""

    def filter(self, record) -> bool:
        msg = record.getMessage()
        return not (msg.startswith("Unable to parse line") or msg.startswith("Passed unknown parameter"))


@contextmanager
def _quiet_papermill_inference():
    import logging
    # A logger's filters see only the records logged on it, not its children's: both are named.
    logs, f = [logging.getLogger(n) for n in ("papermill", "papermill.translators")], _DropInferenceWarnings()
    for log in logs:
        log.addFilter(f)
    try:
        yield
    finally:
        for log in logs:
            log.removeFilter(f)


def execute(src: Path, dst: Path, params: dict, key: str, profile: str, progress: bool = True,
            overrides: dict | None = None) -> None:
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
        log = Path(d) / "stages.jsonl"            # the kernel appends every stage it reads (sedge.pipeline.stages)
        with environment(SEDGE_STAGE_LOG=str(log)), _quiet_papermill_inference():
            pm.execute_notebook(str(source), str(tmp), parameters=params, cwd=str(REPO), kernel_name="python3",
                                progress_bar=progress, log_output=False)
        stages_read = _stages_read(log)
    nb = nbformat.read(str(tmp), as_version=4)
    drop_progress_bars(nb)
    prov = provenance()
    overrides = overrides or {}
    nb.metadata["sedge"] = {"key": key, "profile": profile, "overrides": overrides, **prov, "stages": stages_read}
    where = 0
    for i, cell in enumerate(nb.cells):
        tags = cell.metadata.get("tags", [])
        if "parameters" in tags or "injected-parameters" in tags:
            cell.metadata["tags"] = sorted(set(tags) | {"remove-cell"})
            where = i + 1
    table = nbformat.v4.new_markdown_cell(_parameter_table(parameters_cell(source_nb), params, overrides))
    table.metadata["tags"] = ["sedge-parameters"]
    nb.cells.insert(where, table)
    banner = nbformat.v4.new_markdown_cell(
        f"*Executed with profile `{profile}`"
        + (" and " + ", ".join(f"`{k}={v!r}`" for k, v in overrides.items()) if overrides else "")
        + f" at commit `{prov['commit']}`{' (with uncommitted changes)' if prov['dirty'] else ''}"
        f" on {prov['date']} — {prov['machine']}, {prov['cores']} cores, {prov['threads']} threads, "
        f"Python {prov['python']}, torch {prov['versions']['torch']}.*")
    banner.metadata["tags"] = ["sedge-banner"]
    nb.cells.insert(1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0, banner)
    nbformat.write(nb, str(tmp))
    tmp.replace(dst)


PROGRESS_LINE = re.compile(r"^[^\n]*(\d+%\|[^|]*\|| \d+/\d+ \[[\d:]+)")   # what a tqdm bar prints


def drop_progress_bars(nb) -> None:
    """Remove progress-bar lines (tqdm, on stderr: a data set being generated on a machine with a
    cold cache) from the executed notebook ``nb``; a stderr output with anything else (a warning)
    stays, for the test that no page shows one."""
    for cell in nb.cells:
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                lines = [l for l in out["text"].replace("\r", "\n").split("\n") if l.strip()]
                rest = [l for l in lines if not PROGRESS_LINE.match(l)]
                if not rest:
                    continue
                out["text"] = "\n".join(rest) + "\n"
            kept.append(out)
        if "outputs" in cell:
            cell["outputs"] = kept


VARIANTS = REPO / "variants"           # books executed with --set overrides or another profile (not committed)
COMMITTED_PROFILE = "quick"            # the profile whose executed chapters are book/ (committed)


def parse_overrides(assignments: list[str], chapters: list[str]) -> dict[str, dict]:
    """``--set key=value`` pairs → per chapter the overrides it declares. Every key must be a
    parameter of at least one of ``chapters``; a value of the wrong kind is refused."""
    from sedge.pipeline.parameters import ParameterError, chapter_parameters, check_value, parse_assignment
    pairs = dict(parse_assignment(a) for a in assignments)
    declared = {c: chapter_parameters(c) for c in chapters}
    out: dict[str, dict] = {c: {} for c in chapters}
    for key, value in pairs.items():
        owners = [c for c in chapters if key in declared[c]]
        if not owners:
            import difflib
            names = sorted({n for d in declared.values() for n in d})
            close = difflib.get_close_matches(key, names, n=2)
            raise ParameterError(f"--set {key}: not a parameter of {', '.join(chapters)}"
                                 + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else "")
                                 + "; each chapter's parameters are listed in its parameters cell")
        for c in owners:
            check_value(c, declared[c][key], value)
            out[c][key] = value
    return out


def variant_folder(profile: str, overrides: dict[str, dict]) -> Path:
    """Where a book executed with ``overrides`` goes: ``variants/<profile>-<digest of the overrides>``;
    a profile other than the committed one, without overrides: ``variants/<profile>``."""
    overrides = {c: o for c, o in overrides.items() if o}
    if not overrides:
        return VARIANTS / profile
    blob = json.dumps(overrides, sort_keys=True)
    return VARIANTS / f"{profile}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def build_book(root: Path = REPO) -> int:
    """``jupyter-book build book`` in ``root`` (which holds ``_config.yml`` and ``book/``), warnings as errors."""
    print(f"building the book in {root / 'book'}: jupyter-book build (warnings are errors)", flush=True)
    jb = Path(sys.executable).with_name("jupyter-book")
    # JB 1.x finds the _config.yml above book/ and writes _build/ beside it.
    return subprocess.call([str(jb) if jb.exists() else "jupyter-book", "build", "book", "-W", "-n",
                            "--keep-going"], cwd=root)


def _copy_book(dest: Path) -> None:
    """The committed book (sources, executed chapters, static files) and its configuration into
    ``dest``, so that a variant builds beside, never inside, ``book/``."""
    import shutil
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "_config.yml", dest / "_config.yml")
    shutil.copytree(BOOK, dest / "book", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("_build", "*.running.ipynb", *[f"{p.stem}.ipynb" for p in source_notebooks()]))
    for p in source_notebooks():          # a chapter not re-executed in the variant: the committed copy
        if executed_path(p).exists() and not (dest / "book" / executed_path(p).name).exists():
            shutil.copy2(executed_path(p), dest / "book" / executed_path(p).name)


def prepare_kernel() -> None:
    """Build (or load from its cache) the fused CPU kernel here, before any chapter runs: the first
    build prints a notice, which in a chapter would land in the book's output."""
    from sedge.models import kernel
    kernel.available()


def run_book(profile: str = "quick", only: list[str] | None = None, build: bool = True, force: bool = False,
             assignments: list[str] | None = None, out: str | Path | None = None, replace: bool = False) -> int:
    """Execute the stale chapters of ``profile`` (``only`` these, if given) and build the book.

    ``book/`` holds the chapters of :data:`COMMITTED_PROFILE`. Another profile, or ``assignments``
    (``key=value``, from ``--set``: the chapters run with those values over the profile's), executes
    into a separate book (``out``, default :func:`variant_folder`) unless ``replace``; there, stages
    already computed under another configuration are kept (SEDGE_STAGES=protect)."""
    import os
    stems = [p.stem for p in source_notebooks()]
    unknown = [c for c in only or [] if c not in stems]
    if unknown:
        raise ValueError(f"--only {' '.join(unknown)}: no such chapter; the chapters are {' '.join(stems)}")
    chapters = only or stems
    overrides = parse_overrides(assignments or [], chapters)
    prof = load_profile(profile)
    variant = (any(overrides.values()) or profile != COMMITTED_PROFILE) and not replace
    if out is not None and not variant:
        raise ValueError(f"--out is where a book with --set values or a profile other than {COMMITTED_PROFILE!r} "
                         f"goes; profile {profile!r} without --set (or with --replace) executes into book/")
    root = Path(out) if out else variant_folder(profile, overrides) if variant else REPO
    if variant:
        _copy_book(root)
        print(f"variant book (profile {profile!r}" + (f" with {', '.join(assignments)}" if assignments else "")
              + f"): {root}")
    todo = []
    for src in source_notebooks():
        if src.stem not in chapters:
            continue
        params = {**prof.get(src.stem, {}), **overrides.get(src.stem, {})}
        key = freshness_key(src, profile, params)
        dst = root / "book" / executed_path(src).name
        if force or executed_key(dst) != key:
            todo.append((src, dst, params, key))
    print(f"profile {profile!r}: {len(todo)} notebook(s) to execute"
          + (": " + ", ".join(t[0].stem for t in todo) if todo else " (all up to date)"))
    mode = os.environ.get("SEDGE_STAGES")
    if variant and mode != "readonly":
        mode = "protect"        # the kernels inherit it: committed stages are never overwritten
    if todo:
        prepare_kernel()
    with environment(SEDGE_STAGES=mode, **child_environment()):   # the kernels reuse freed memory (sedge.memory)
        for i, (src, dst, params, key) in enumerate(todo, 1):
            t0 = time.time()
            print(f"[{i}/{len(todo)}] executing {src.name} → {portable(dst)}", flush=True)
            execute(src, dst, params, key, profile, overrides=overrides.get(src.stem))
            print(f"[{i}/{len(todo)}] {src.name} done in {time.time() - t0:.0f} s", flush=True)
    if build:
        refresh_parameter_tables(root)
        return build_book(root)
    return 0

