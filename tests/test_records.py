"""Runs of record: chosen on validation among finished runs of the reproduced method and data."""
import json
from pathlib import Path

from sedge.pipeline.records import eligible, recipe_changes, runs_of_record


def run(model="m", val=0.8, test=0.8, epochs=40, rzoh=True, data="mini", augment=None, dropout=0.0, finished=True, lr=0.005):
    meta = {"data": data, "model_cfg": {"name": model, "rzoh": rzoh, "dropout": dropout},
            "train_cfg": {"lr": lr, "batch_size": 16, "seed": 1234, "epochs": epochs, "augment": augment}}
    summary = {"model": model, "val_acc": val, "test_acc": test} if finished else None
    return {"model": model, "meta": meta, "summary": summary}


def test_record_is_the_best_validation_run_never_the_best_test_run():
    a, b = run(val=0.885, test=0.876), run(val=0.886, test=0.870, augment={"gain_db": 6})
    assert runs_of_record([a, b])["m"] is b
    assert runs_of_record([b, a])["m"] is b


def test_other_method_other_data_and_unfinished_runs_are_never_chosen():
    base = run(model="tiny", val=0.85)
    others = [run(model="tiny", val=0.88, rzoh=False), run(model="tiny", val=0.9, data="mini:/tmp/half"),
              run(model="tiny", val=0.95, finished=False)]
    assert not any(eligible(r) for r in others)
    assert runs_of_record(others + [base])["tiny"] is base
    assert runs_of_record(others) == {}


def test_a_tie_keeps_the_first_run_and_models_are_kept_apart():
    a, b, c = run(val=0.9), run(val=0.9, epochs=60), run(model="l", val=0.5)
    rec = runs_of_record([a, b, c])
    assert rec["m"] is a and rec["l"] is c


def test_recipe_changes_names_each_departure():
    assert recipe_changes(run(epochs=60)) == "60 epochs"
    text = recipe_changes(run(augment={"speed": 0.1}, dropout=0.1, rzoh=False, data="mini:/tmp/half", lr=0.002))
    assert text == "40 epochs, lr 0.002, augmentation, dropout 0.1, RZOH off, data mini:/tmp/half"


def test_compute_time_sums_training_searches_and_chapters(tmp_path):
    """tools/compute_time.py: train_seconds and search_seconds of every summary under the runs, and
    the papermill duration of every executed chapter (not of a half-written .running copy)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("compute_time", Path(__file__).parents[1] / "tools" / "compute_time.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    runs, book = tmp_path / "runs", tmp_path / "book"
    for rel, record in {"a/summary.json": {"train_seconds": 3600.0},
                        "a/prune/x/summary.json": {"search_seconds": 1800.0},
                        "a/prune/x_finetune/summary.json": {"train_seconds": 360.0},
                        "b/summary.json": {"val_acc": 0.5}}.items():
        (runs / rel).parent.mkdir(parents=True, exist_ok=True)
        (runs / rel).write_text(json.dumps(record))
    book.mkdir()
    (book / "01.ipynb").write_text(json.dumps({"metadata": {"papermill": {"duration": 720.0}}}))
    (book / "02.running.ipynb").write_text(json.dumps({"metadata": {"papermill": {"duration": 9999.0}}}))
    (book / "03.ipynb").write_text(json.dumps({"metadata": {}}))
    assert tool.recorded_seconds(runs, book) == {"training": 3960.0, "pruning searches": 1800.0,
                                                 "chapter execution": 720.0}
    assert tool.main(["--runs", str(tmp_path / "missing"), "--book", str(book)]) == 2
