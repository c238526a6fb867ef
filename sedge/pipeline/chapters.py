"""The chapter sources: Jupytext text notebooks in the percent format, ``notebooks/NN_name.py``,
and where their executed copies go (``book/NN_name.ipynb``)."""
from __future__ import annotations

from pathlib import Path

from sedge.paths import REPO

NOTEBOOKS = REPO / "notebooks"
BOOK = REPO / "book"


INTRO = NOTEBOOKS / "intro.py"       # the book's first page: it summarises the chapters, so it runs after them


def source_notebooks() -> list[Path]:
    """The chapters in execution order: ``NN_name.py`` by number, then the introduction."""
    return sorted(NOTEBOOKS.glob("[0-9]*.py")) + ([INTRO] if INTRO.exists() else [])


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
