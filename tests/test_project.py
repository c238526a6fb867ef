"""Project-level checks: pinned environments agree, notebooks are clean parameterised sources,
profiles are complete, and the committed executed notebooks are not stale."""
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from sedge.pipeline.book import (BOOK, chapter_values, executed_path, freshness_key, load_profile, parameters_cell,
                                 read_source, source_notebooks, stale_notebooks)

REPO = Path(__file__).resolve().parents[1]


def test_environment_yml_mirrors_pyproject():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", d) for d in deps), "every dependency is pinned"
    assert sorted(d for d in pip if not d.startswith("-e")) == sorted(deps)
    assert "python=3.11" in env["dependencies"]


def test_notebooks_are_text_sources_with_one_parameters_cell():
    nbs = source_notebooks()
    assert nbs and not list((REPO / "notebooks").glob("*.ipynb")), "the chapter sources are the .py text notebooks"
    assert not (REPO / "tools" / "make_notebooks.py").exists()
    for path in nbs:
        assert path.read_text().count('# %% tags=["parameters"]') == 1, f"{path.name}: one parameters cell"
        parameters_cell(read_source(path))
        assert executed_path(path).exists(), f"{path.name} has no executed copy in book/"


def test_profiles_cover_every_chapter_and_ci_is_the_notebook_default():
    """A profile lists only the values that differ from a chapter's defaults, which are the ci profile
    (the test suite executes the sources as they are). quick and paper name every chapter, so none of
    their chapters silently runs at ci size."""
    assert not any(load_profile("ci").values()), "ci is the defaults of the parameters cells"
    stems = {p.stem for p in source_notebooks()}
    for profile in ("quick", "paper", "scratch"):
        prof = load_profile(profile)               # also checks every name and value against the chapter
        assert set(prof) == stems, f"profile {profile} lacks {sorted(stems - set(prof))}"
        assert all(prof.values()), f"profile {profile} has a chapter with no values"


def test_the_scratch_profile_reads_nothing_committed():
    """`scratch` measures the whole chain from nothing: every chapter trains into and reads from
    runs/scratch, summarises its own profile and shows no committed long run."""
    for stem in load_profile("scratch"):
        params = chapter_values("scratch", stem)
        if "run_root" in params:
            assert params["run_root"] == "runs/scratch", stem
        if "profile" in params:
            assert params["profile"] == "scratch", stem
        assert params.get("long_runs", []) == [], stem
        assert not params.get("no_rzoh_runs"), stem


def test_committed_executed_notebooks_are_fresh():
    stale = [s.name for s, *_ in stale_notebooks("quick")]
    assert not stale, (f"executed notebooks out of date for profile 'quick': {stale}; run `make book` and commit "
                       "book/*.ipynb")


def committed_outputs():
    """(page name, cell index, output) of every output of the committed executed chapters."""
    import nbformat
    for src in source_notebooks():
        nb = nbformat.read(str(executed_path(src)), as_version=4)
        for i, cell in enumerate(nb.cells):
            for out in cell.get("outputs", []):
                yield executed_path(src).name, i, out


def test_committed_executed_notebooks_show_no_warnings_or_errors():
    """A warning, traceback or stray stderr line in a rendered page is a bug to fix at its source."""
    leaks = [f"{page} cell {i}: {str(out.get('text', out.get('ename')))[:120]}" for page, i, out in committed_outputs()
             if out.get("output_type") == "error" or (out.get("output_type") == "stream" and out.get("name") == "stderr")]
    assert not leaks, "\n".join(leaks)


def test_committed_executed_notebooks_show_no_stray_plot_objects():
    """A cell whose last line returns matplotlib artists prints their repr ("[Text(…), …]") under the
    figure; assign the result (``_ = …``) instead."""
    import re
    stray = [f"{page} cell {i}: {out['data']['text/plain'][:80]}" for page, i, out in committed_outputs()
             if out.get("output_type") == "execute_result" and "text/html" not in out.get("data", {})
             and re.match(r"\[?<?(Text|matplotlib|Line2D|Axes|BarContainer|PathCollection)[( .]",
                          out.get("data", {}).get("text/plain", ""))]
    assert not stray, "\n".join(stray)


def test_freshness_key_changes_with_parameters():
    path = source_notebooks()[0]
    a = freshness_key(path, "quick", {"epochs": 1})
    assert a == freshness_key(path, "quick", {"epochs": 1})
    assert a != freshness_key(path, "quick", {"epochs": 2})
    assert a != freshness_key(path, "ci", {"epochs": 1})


def test_comparison_key_follows_the_chapters_it_compares(monkeypatch):
    import sedge.pipeline.book as book
    path = source_notebooks()[-1]
    a = freshness_key(path, "quick", {"profile": "quick"})
    plain = freshness_key(path, "quick", {"epochs": 1})
    real = book.load_profile
    monkeypatch.setattr(book, "load_profile", lambda name: {**real(name), "06_filter_pruning": {"max_fraction": 0.25}})
    assert freshness_key(path, "quick", {"profile": "quick"}) != a     # another chapter's parameters changed
    assert freshness_key(path, "quick", {"epochs": 1}) == plain        # a chapter without `profile` does not care


def test_book_toc_lists_every_notebook():
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    files = {c["file"] for c in toc["chapters"]} | {toc["root"]}
    assert {p.stem for p in source_notebooks()} <= files


def test_committed_tables_fit_the_page():
    """No rendered table has more than 10 columns (wider ones go through sedge.report.plots.show_table)."""
    import re
    wide = []
    for page, i, out in committed_outputs():
        for head in re.findall(r"<thead>(.*?)</thead>", out.get("data", {}).get("text/html", ""), flags=re.S):
            n = max(row.count("<th") for row in head.split("</tr>"))
            if n > 10:
                wide.append(f"{page} cell {i}: {n} columns")
    assert not wide, wide


def test_progress_bars_leave_the_executed_page_and_warnings_stay():
    import nbformat

    from sedge.pipeline.book import drop_progress_bars
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="synthesising:  62%|██▏ | 1743/2800 [00:02<00:01]\r"
                                           "synthesising: 100%|████| 2800/2800 [00:03<00:00]\n"),
                    nbformat.v4.new_output("stream", name="stderr", text="a.py:3: UserWarning: careful\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="10 %| of the clips\n")]
    nb = nbformat.v4.new_notebook(cells=[cell])
    drop_progress_bars(nb)
    assert [o["text"] for o in nb.cells[0].outputs] == ["a.py:3: UserWarning: careful\n", "10 %| of the clips\n"]


def test_comparison_reads_each_dataset_with_the_recipe_its_chapter_trained_it_with():
    """Chapter 8 gives epochs per dataset; the comparison must ask for the same stage (it once passed
    the whole mapping, which keyed another stage, and in read-only mode failed on the quick book)."""
    from sedge.pipeline.compare import _recipe
    from sedge.pipeline.parameters import ParameterError
    P = {"epochs": {"mini": 25, "synthetic": 16}, "batches_per_epoch": None, "lr": 0.003, "batch_size": 32,
         "finetune_epochs": 2, "finetune_batches_per_epoch": 40, "finetune_lr": 0.001, "finetune_batch_size": 16}
    assert _recipe(P, "mini") == dict(epochs=25, max_steps=None, lr=0.003, batch_size=32)
    assert _recipe(P, "synthetic")["epochs"] == 16
    assert _recipe(P, "mini", "finetune_") == dict(epochs=2, max_steps=40, lr=0.001, batch_size=16)
    with pytest.raises(ParameterError, match="synthetic4"):
        _recipe(P, "synthetic4")
