"""Every chapter source executes under the ``ci`` profile (its parameters cell's defaults).

The text notebooks (notebooks/NN_name.py, Jupytext percent format) are converted in memory and run
with Papermill, as ``sedge book`` runs them; a cell that raises fails the test with its traceback.
"""
import pytest

from sedge.pipeline.book import execute, source_notebooks


@pytest.mark.parametrize("src", source_notebooks(), ids=lambda p: p.stem)
def test_chapter_executes_under_ci(src, tmp_path):
    dst = tmp_path / f"{src.stem}.ipynb"
    execute(src, dst, {}, key="test", profile="ci", progress=False)
    assert dst.exists()
