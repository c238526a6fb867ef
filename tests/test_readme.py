"""The README's "Rerun a notebook with new parameters" commands do what they say.

Each command of that section's code block is run: `sedge book … --set …` as written (its chapter
execution recorded, not run: the values are the quick profile's), the Jupytext conversion as
written, Papermill as written with `--prepare-only` and then the chapter's parameter check on what
it injected, and once ci-sized (the same command with one epoch of two batches of `tiny`) to the
end. A mistyped parameter stops the chapter with an error naming it.
"""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from sedge import cli
from sedge.pipeline import book
from sedge.paths import REPO

BIN = Path(sys.executable).parent


def readme_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Rerun a notebook with new parameters", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line) for line in block.strip().splitlines()]


def by_tool(name: str) -> list[str]:
    cmd = next(c for c in readme_commands() if c[0].endswith(f"/{name}"))
    return [str(BIN / name), *cmd[1:]]


def test_the_readme_shows_the_three_ways():
    tools = [Path(c[0]).name for c in readme_commands()]
    assert tools == ["sedge", "jupytext", "papermill"]


def test_sedge_book_with_set_as_written(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(book, "execute", lambda src, dst, params, key, profile, progress=True, overrides=None:
                        calls.append((src.stem, params, overrides)))
    args = by_tool("sedge")[1:] + ["--out", str(tmp_path / "variant"), "--no-build"]
    assert cli.main(args) == 0
    (stem, params, overrides), = calls
    assert stem == "01_training"
    assert overrides == {"epochs": 20, "models": ["m"], "run_root": "runs/variant"}
    assert params["epochs"] == 20 and params["models"] == ["m"] and params["datasets"]["mini"] == "mini"


def _convert(tmp_path) -> tuple[Path, list[str]]:
    """Run the README's jupytext line (output redirected into tmp_path); its papermill line likewise."""
    jt, pm = by_tool("jupytext"), by_tool("papermill")
    ipynb = tmp_path / "01.ipynb"
    jt[jt.index("-o") + 1] = str(ipynb)
    subprocess.run(jt, check=True, capture_output=True, cwd=REPO)
    pm[1:3] = [str(ipynb), str(tmp_path / "01-out.ipynb")]
    return ipynb, pm


def test_papermill_as_written_injects_parameters_the_chapter_accepts(tmp_path):
    _, pm = _convert(tmp_path)
    subprocess.run(pm + ["--prepare-only"], check=True, capture_output=True, cwd=REPO)
    nb = nbformat.read(str(tmp_path / "01-out.ipynb"), as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    injected = next(c for c, t in zip(nb.cells, tags) if "injected-parameters" in t).source
    ns: dict = {}
    exec(book.parameters_cell(nb), ns)
    exec(injected, ns)
    assert ns["epochs"] == 20 and ns["models"] == ["m"] and ns["run_root"] == "runs/variant"
    from sedge.pipeline.parameters import check_namespace
    check_namespace({k: v for k, v in ns.items() if k != "__builtins__"}, "01_training")


def _ci_sized(pm: list[str], run_root: Path) -> list[str]:
    """The README's papermill command with its values made ci-sized."""
    out = list(pm)
    for i, a in enumerate(out):
        if a == "epochs" and out[i - 1] == "-p":
            out[i + 1] = "1"
        if a.startswith("models:"):
            out[i] = "models: [tiny]"
        if a == "run_root" and out[i - 1] == "-p":
            out[i + 1] = str(run_root)
    return out + ["-p", "batches_per_epoch", "2", "-y", 'datasets: {synthetic: "synthetic:n_speakers=20,words=yes+no"}']


def test_papermill_ci_sized_trains_into_the_given_run_root(tmp_path):
    _, pm = _convert(tmp_path)
    r = subprocess.run(_ci_sized(pm, tmp_path / "runs"), capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "runs" / "synthetic_tiny" / "best.pt").exists()
    assert not (tmp_path / "runs" / "mini_tiny").exists()


def test_a_mistyped_parameter_stops_the_chapter_with_its_name(tmp_path):
    _, pm = _convert(tmp_path)
    pm = ["epoch" if a == "epochs" else a for a in pm]
    r = subprocess.run(pm, capture_output=True, text=True, cwd=REPO)
    assert r.returncode != 0
    assert "unknown parameter 'epoch' (did you mean 'epochs'?)" in r.stderr + r.stdout
