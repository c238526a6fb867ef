"""Chapter parameters: declared and documented in each chapter, checked wherever they are given
(profiles, `sedge book --set`, Papermill's injected cell), and `--set` variants that keep the
committed stages."""
import json

import pytest

from sedge.pipeline import book
from sedge.pipeline.parameters import (ParameterError, chapter_parameters, check_namespace, declared, for_data,
                              parse_assignment)

CELL = '''run_root = "runs/ci"      # where the runs go
models = ["tiny"]         # models to train, per dataset
epochs = 1                # training epochs, per dataset
lr = 0.005
max_val = None            # validation clips (None: all)
'''


def test_declared_reads_names_defaults_and_meanings():
    p = declared(CELL)
    assert list(p) == ["run_root", "models", "epochs", "lr", "max_val"]
    assert p["models"].default == ["tiny"] and p["models"].meaning == "models to train, per dataset"
    assert p["models"].per_dataset and not p["run_root"].per_dataset
    assert p["lr"].meaning == ""


def test_declared_refuses_code_in_the_parameters_cell():
    with pytest.raises(ParameterError, match="not a literal"):
        declared("x = len([1])  # computed\n")


@pytest.mark.parametrize("chapter", [p.stem for p in book.source_notebooks()])
def test_every_chapter_documents_every_parameter(chapter):
    params = chapter_parameters(chapter)
    assert params, f"{chapter} declares no parameters"
    undocumented = [n for n, p in params.items() if not p.meaning]
    assert not undocumented, f"{chapter}: parameters without a comment saying what they control: {undocumented}"


@pytest.mark.parametrize("chapter", [p.stem for p in book.source_notebooks()])
def test_every_chapter_checks_its_namespace_first(chapter):
    """The first code cell after the parameters checks them, before anything else is defined."""
    nb = book.read_source(book.NOTEBOOKS / f"{chapter}.py")
    i = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    first = next(c for c in nb.cells[i + 1:] if c.cell_type == "code").source.splitlines()
    assert first[0].startswith("from sedge.pipeline.parameters import ") and "check_namespace" in first[0], first[:1]
    assert first[1] == f'check_namespace(globals(), "{chapter}")', first[:2]


def namespace(**values):
    defaults = {n: p.default for n, p in chapter_parameters("01_training").items()}
    return {"In": [], "Out": {}, "_ih": [], "get_ipython": print, **defaults, **values}


def test_check_namespace_accepts_the_defaults_and_per_dataset_mappings():
    check_namespace(namespace(), "01_training")
    check_namespace(namespace(epochs={"synthetic": 3, "mini": 2}, lr=1), "01_training")   # an int where a float is


def test_check_namespace_names_a_mistyped_parameter_and_the_close_ones():
    with pytest.raises(ParameterError, match=r"unknown parameter 'epoch' \(did you mean 'epochs'\?\)"):
        check_namespace(namespace(epoch=20), "01_training")


def test_check_namespace_refuses_text_where_a_list_is_expected_and_says_how():
    with pytest.raises(ParameterError, match=r"'models' expects a list.*-y"):
        check_namespace(namespace(models='["m"]'), "01_training")        # what `-p models '["m"]'` injects
    with pytest.raises(ParameterError, match="'epochs' expects an integer"):
        check_namespace(namespace(epochs=2.5), "01_training")


def test_for_data():
    assert for_data(3, "mini") == 3
    assert for_data({"mini": 2, "synthetic": 5}, "mini") == 2
    with pytest.raises(ParameterError, match="no entry for dataset 'gsc'"):
        for_data({"mini": 2}, "gsc", "epochs")


def test_parse_assignment_reads_yaml_values():
    assert parse_assignment("epochs=20") == ("epochs", 20)
    assert parse_assignment("models=[tiny, s]") == ("models", ["tiny", "s"])
    assert parse_assignment("epochs={mini: 4}") == ("epochs", {"mini": 4})
    with pytest.raises(ParameterError, match="expected key=value"):
        parse_assignment("epochs")


def test_every_profile_is_valid():
    for name in ("ci", "quick", "paper"):
        book.load_profile(name)


def test_a_profile_with_an_unknown_name_is_an_error(tmp_path, monkeypatch):
    bad = tmp_path / "profiles.yml"
    bad.write_text("mine:\n  01_training: {epoch: 3}\n")
    import sedge.pipeline.profiles
    monkeypatch.setattr(sedge.pipeline.profiles, "PROFILES", bad)
    with pytest.raises(ParameterError, match=r"profile 'mine'.*unknown parameter 'epoch'"):
        book.load_profile("mine")
    bad.write_text("mine:\n  01_trainin: {epochs: 3}\n")
    with pytest.raises(ParameterError, match="names chapter '01_trainin'"):
        book.load_profile("mine")


def test_chapter_values_layer_defaults_profile_and_overrides():
    v = book.chapter_values("quick", "01_training", {"lr": 0.01})
    assert v["lr"] == 0.01 and v["run_root"] == "checkpoints/quick" and v["device"] == "cpu"


def test_parse_overrides_goes_to_the_chapters_that_declare_the_name():
    o = book.parse_overrides(["epochs=3", "max_val=8"], ["01_training", "04_iterative_pruning"])
    assert o == {"01_training": {"epochs": 3}, "04_iterative_pruning": {"max_val": 8}}
    with pytest.raises(ParameterError, match=r"--set epoch: .*did you mean 'epochs'"):
        book.parse_overrides(["epoch=3"], ["01_training"])
    with pytest.raises(ParameterError, match="'epochs' expects"):
        book.parse_overrides(["epochs=many"], ["01_training"])


def test_a_variant_executes_beside_the_book_with_stages_protected(tmp_path, monkeypatch):
    calls = []

    def fake_execute(src, dst, params, key, profile, progress=True, overrides=None):
        import os
        calls.append((src.stem, dst, params, overrides, os.environ.get("SEDGE_STAGES")))
        dst.write_text(json.dumps({"metadata": {"sedge": {"key": key}}}))

    monkeypatch.setattr(book, "execute", fake_execute)
    monkeypatch.delenv("SEDGE_STAGES", raising=False)
    before = {p.name: p.stat().st_mtime_ns for p in book.BOOK.glob("*.ipynb")}
    out = tmp_path / "variant"
    assert book.run_book("quick", only=["01_training"], build=False, assignments=["epochs=2"], out=out) == 0
    (stem, dst, params, overrides, mode), = calls
    assert stem == "01_training" and dst == out / "book" / "01_training.ipynb"
    assert params["epochs"] == 2 and params["run_root"] == "checkpoints/quick" and overrides == {"epochs": 2}
    assert mode == "protect"
    assert (out / "_config.yml").exists() and (out / "book" / "_toc.yml").exists()
    assert (out / "book" / "02_step_scale.ipynb").exists()            # the other chapters: the committed copies
    assert {p.name: p.stat().st_mtime_ns for p in book.BOOK.glob("*.ipynb")} == before     # book/ untouched
    calls.clear()
    book.run_book("quick", only=["01_training"], build=False, assignments=["epochs=2"], out=out)
    assert calls == []                                                  # up to date: nothing re-executed


def test_another_profile_executes_into_its_own_book_never_into_book(tmp_path, monkeypatch):
    """Only the committed profile writes book/; `sedge book --profile scratch` goes to variants/scratch."""
    calls = []

    def fake_execute(src, dst, params, key, profile, progress=True, overrides=None):
        calls.append((dst, profile, params))
        dst.write_text(json.dumps({"metadata": {"sedge": {"key": key}}}))

    monkeypatch.setattr(book, "execute", fake_execute)
    monkeypatch.setattr(book, "prepare_kernel", lambda: calls.append("kernel"))
    assert book.variant_folder("scratch", {}) == book.VARIANTS / "scratch"
    assert book.variant_folder("scratch", {"01_training": {}}) == book.VARIANTS / "scratch"
    assert book.variant_folder("scratch", {"01_training": {"epochs": 2}}) != book.VARIANTS / "scratch"
    before = {p.name: p.stat().st_mtime_ns for p in book.BOOK.glob("*.ipynb")}
    out = tmp_path / "scratch"
    assert book.run_book("scratch", only=["01_training"], build=False, out=out) == 0
    assert calls[0] == "kernel"               # built before any chapter, so no chapter prints the build notice
    (dst, profile, params), = calls[1:]
    assert dst == out / "book" / "01_training.ipynb" and profile == "scratch"
    assert params["run_root"] == "runs/scratch"
    assert {p.name: p.stat().st_mtime_ns for p in book.BOOK.glob("*.ipynb")} == before     # book/ untouched
    with pytest.raises(ValueError, match="--out is where"):
        book.run_book("quick", only=["01_training"], build=False, out=out)


def test_run_book_refuses_an_unknown_chapter():
    with pytest.raises(ValueError, match="--only 01_train: no such chapter"):
        book.run_book("quick", only=["01_train"], build=False)


def test_papermills_guesses_about_parameters_are_kept_out_of_the_output(caplog):
    """Papermill's regex gives up on values with '=' (every data spec) and warns; sedge book drops it."""
    import nbformat
    from papermill.translators import PythonTranslator
    cell = nbformat.v4.new_code_cell('datasets = {"a": "synthetic:n_speakers=20"}  # dataset tag → data spec\n')
    with book._quiet_papermill_inference():
        PythonTranslator.inspect(cell)
    assert not [r for r in caplog.records if "Unable to parse" in r.getMessage()]
    PythonTranslator.inspect(cell)
    assert [r for r in caplog.records if "Unable to parse" in r.getMessage()]      # the filter was the difference
