"""Cached stages follow every input: configuration, input checkpoints, data, the code they run; the
record is the commit point; chapters notice a stage they read being recomputed."""
import importlib.util
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sedge.pipeline import book, stages
from sedge.pipeline.baseline_experiments import BASELINE_CODE, COMPRESS_CODE, CONVEXITY_CODE, FILTER_CODE
from sedge.pipeline.allocation_check import ALLOCATION_CODE
from sedge.pipeline.experiments import PRUNE_CODE, TRAIN_CODE
from sedge.pipeline.fingerprint import closure
from sedge.pipeline.stages import StageMissing, begin, commit, finished, stage_key


def finish(folder, key, payload=b"result"):
    begin(folder, key)
    (folder / "result.bin").write_bytes(payload)
    commit(folder, key, ("result.bin",))


def test_a_finished_stage_is_reused_only_under_its_key(tmp_path):
    key = stage_key({"lr": 0.1})
    finish(tmp_path / "s", key)
    assert finished(tmp_path / "s", key, ("result.bin",))
    assert not finished(tmp_path / "s", stage_key({"lr": 0.2}), ("result.bin",))
    (tmp_path / "s" / "result.bin").unlink()
    assert not finished(tmp_path / "s", key, ("result.bin",))          # a result file went missing


def test_a_derived_stage_is_stale_once_its_checkpoint_changes(tmp_path):
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"weights v1")
    key = stage_key({"budget": 0.5}, inputs={"checkpoint": ckpt})
    finish(tmp_path / "prune", key)
    ckpt.write_bytes(b"weights v2")                                   # retrained under the same path
    assert not finished(tmp_path / "prune", stage_key({"budget": 0.5}, inputs={"checkpoint": ckpt}), ("result.bin",))


def test_an_interrupted_run_with_a_new_configuration_never_returns_the_old_result(tmp_path):
    old, new = stage_key({"epochs": 1}), stage_key({"epochs": 2})
    finish(tmp_path / "run", old)
    begin(tmp_path / "run", new)                       # the new run starts … and is killed before its commit
    assert not finished(tmp_path / "run", new, ("result.bin",))
    assert not finished(tmp_path / "run", old, ("result.bin",))       # the folder no longer holds the old run
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == {"epochs": 2}


def test_the_data_a_stage_read_is_part_of_its_key(tmp_path):
    root = tmp_path / "words"
    for lab in ("no", "yes"):
        (root / lab).mkdir(parents=True)
        for s in range(3):
            sf.write(root / lab / f"spk{s}_nohash_0.wav", np.zeros(1600, np.float32), 16000)
    spec = f"folder:{root}"
    key = stage_key({"a": 1}, data=spec)
    assert stage_key({"a": 1}, data=spec) == key
    clip = root / "yes" / "spk1_nohash_0.wav"
    import os
    st = clip.stat()
    sf.write(clip, np.full(1600, 0.1, np.float32), 16000)            # same size, other samples
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert stage_key({"a": 1}, data=spec) != key
    assert stage_key({"a": 1}, data="synthetic:words=yes+no") != stage_key({"a": 1}, data="synthetic:words=yes+up")


def test_each_kind_of_stage_keys_on_its_own_code():
    """An edit of the pruning code must recompute pruning stages, not retrain."""
    assert "sedge.compress.pruning" not in closure(TRAIN_CODE) and "sedge.compress.reduction" not in closure(TRAIN_CODE)
    assert {"sedge.compress.pruning", "sedge.compress.reduction"} <= closure(PRUNE_CODE)
    assert "sedge.compress.filter_pruning" in closure(FILTER_CODE) - closure(BASELINE_CODE)
    assert "sedge.compress.prune_quantise" in closure(COMPRESS_CODE) - closure(BASELINE_CODE)
    assert "sedge.compress.convexity" in closure(CONVEXITY_CODE) - closure(BASELINE_CODE)


def test_a_code_change_invalidates_exactly_the_stages_that_run_it(monkeypatch):
    import sedge.pipeline.fingerprint as fp
    train_key, prune_key = stage_key({"a": 1}, code=TRAIN_CODE), stage_key({"a": 1}, code=PRUNE_CODE)
    real = fp._code_digest
    monkeypatch.setattr(fp, "_code_digest", lambda m, *a: "edited" if m.endswith(".pruning") else real(m, *a))
    assert stage_key({"a": 1}, code=TRAIN_CODE) == train_key
    assert stage_key({"a": 1}, code=PRUNE_CODE) != prune_key


def test_modes(tmp_path, monkeypatch):
    key = stage_key({"a": 1})
    finish(tmp_path / "done", key)
    monkeypatch.setenv("SEDGE_STAGES", "readonly")
    assert finished(tmp_path / "done", key, ("result.bin",))
    with pytest.raises(StageMissing, match="SEDGE_STAGES=readonly forbids"):
        begin(tmp_path / "new", key)
    assert not (tmp_path / "new").exists()
    monkeypatch.setenv("SEDGE_STAGES", "protect")
    begin(tmp_path / "new", key)                                       # missing: computed
    with pytest.raises(StageMissing, match="it is kept"):
        begin(tmp_path / "done", stage_key({"a": 2}))                  # finished under another key: kept
    assert finished(tmp_path / "done", key, ("result.bin",))


def test_adopting_a_stage_from_before_keys_is_explicit_and_checked(tmp_path, monkeypatch):
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"w")
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text(json.dumps({"a": 1}))
    (old / "result.bin").write_bytes(b"r")
    (old / "source.sha256").write_text(stages.file_digest(ckpt))
    key = stage_key({"a": 1}, inputs={"checkpoint": ckpt})
    assert not finished(old, key, ("result.bin",), legacy_config={"a": 1})      # never trusted on first use
    monkeypatch.setenv("SEDGE_STAGES", "adopt")
    assert not finished(old, stage_key({"a": 2}, inputs={"checkpoint": ckpt}), ("result.bin",), legacy_config={"a": 2})
    assert finished(old, key, ("result.bin",), legacy_config={"a": 1})
    assert "adopted" in json.loads((old / "stage.json").read_text())
    monkeypatch.delenv("SEDGE_STAGES")
    assert finished(old, key, ("result.bin",), legacy_config={"a": 1})          # from now on by its key


def test_a_run_written_before_a_recipe_field_existed_is_adopted():
    from sedge.models.config import TrainConfig
    current = {"model": "tiny", "data": "mini", "train": asdict(TrainConfig(epochs=3))}
    old = {**current, "train": {k: v for k, v in current["train"].items() if k != "augment"}}
    assert stages.with_new_defaults(old) == current
    assert stages.with_new_defaults(old) != {**current, "train": asdict(TrainConfig(epochs=4))}


def test_recomputing_one_stage_makes_exactly_the_chapters_that_read_it_stale(tmp_path, monkeypatch):
    """Two runs, a stage derived from each; retraining run A (same key, new weights) makes A and the
    stage derived from it stale for a chapter that read them, and leaves B's chapter fresh."""
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("SEDGE_STAGE_LOG", str(log))
    runs = {}
    for name in ("A", "B"):
        run = tmp_path / name
        key = stage_key({"run": name})
        finish(run, key, payload=f"weights {name}".encode())
        derived_key = stage_key({"budget": 0.5}, inputs={"checkpoint": run / "result.bin"})
        finish(run / "prune", derived_key)
        runs[name] = (run, key, derived_key)
    read_a = {str(p): stages.record_digest(p) for p in (runs["A"][0], runs["A"][0] / "prune")}
    read_b = {str(p): stages.record_digest(p) for p in (runs["B"][0], runs["B"][0] / "prune")}
    assert {json.loads(l)["stage"] for l in log.read_text().splitlines()} == {str(p) for p in [*read_a, *read_b]}
    assert book.stages_unchanged(read_a) and book.stages_unchanged(read_b)
    run_a, key_a, derived_a = runs["A"]
    finish(run_a, key_a, payload=b"weights A, retrained")              # same configuration, new weights
    assert not book.stages_unchanged(read_a) and book.stages_unchanged(read_b)
    new_derived = stage_key({"budget": 0.5}, inputs={"checkpoint": run_a / "result.bin"})
    assert new_derived != derived_a and not finished(run_a / "prune", new_derived, ("result.bin",))
    assert finished(runs["B"][0] / "prune", runs["B"][2], ("result.bin",))


def test_readonly_trained_run_refuses_to_train(tmp_path, monkeypatch):
    from sedge.pipeline.experiments import trained_run
    monkeypatch.setenv("SEDGE_STAGES", "readonly")
    with pytest.raises(StageMissing, match="missing or stale"):
        trained_run("tiny", "synthetic:n_speakers=20,words=yes+no,snr_db=10", "syn", tmp_path, epochs=1, lr=0.01,
                    max_steps=1, progress=False)
    assert not (tmp_path / "syn_tiny").exists()


def test_a_baseline_resume_with_another_recipe_is_refused(tmp_path, monkeypatch):
    """An interrupted baseline run resumes only under the recipe it started with (not just the same
    architecture): a changed epoch count or learning rate would continue the old schedule."""
    import sedge.training.baselines as BT
    import sedge.training.loop as loop
    from helpers import toy_data
    data = toy_data()
    model = BT.build_baseline("transformer", n_classes=len(data.classes), frame=40, d_model=16, heads=2, ff=16, layers=1)
    real = loop.save_checkpoint

    def killed_after_last_pt(path, *a, **k):
        real(path, *a, **k)
        if path.name == "last.pt":
            raise KeyboardInterrupt
    monkeypatch.setattr(loop, "save_checkpoint", killed_after_last_pt)
    with pytest.raises(KeyboardInterrupt):
        BT.train_baseline(model, data, tmp_path, epochs=2, lr=0.01, batch_size=8, max_steps=2, progress=False)
    monkeypatch.setattr(loop, "save_checkpoint", real)
    with pytest.raises(ValueError, match=r"another configuration \(differs in \['epochs', 'lr'\]\)"):
        BT.train_baseline(model, data, tmp_path, epochs=3, lr=0.02, batch_size=8, max_steps=2, progress=False)
    BT.train_baseline(model, data, tmp_path, epochs=2, lr=0.01, batch_size=8, max_steps=2, progress=False)   # resumes


def test_environment_sets_and_restores_variables_also_on_error(monkeypatch):
    import os
    monkeypatch.setenv("SEDGE_STAGES", "adopt")
    monkeypatch.delenv("SEDGE_STAGE_LOG", raising=False)
    with pytest.raises(KeyError):
        with stages.environment(SEDGE_STAGES="readonly", SEDGE_STAGE_LOG="/tmp/log"):
            assert os.environ["SEDGE_STAGES"] == "readonly" and os.environ["SEDGE_STAGE_LOG"] == "/tmp/log"
            raise KeyError("inside")
    assert os.environ["SEDGE_STAGES"] == "adopt" and "SEDGE_STAGE_LOG" not in os.environ
    with stages.environment(SEDGE_STAGES=None):
        assert "SEDGE_STAGES" not in os.environ
    assert os.environ["SEDGE_STAGES"] == "adopt"


def test_converged_runs_lists_finished_and_running_runs_and_notes_their_files(tmp_path, monkeypatch):
    from sedge.models.config import model_config
    from sedge.pipeline.experiments import converged_runs
    from sedge.models.model import build_model
    from sedge.training.checkpoints import save_checkpoint
    model = build_model(model_config("tiny", n_classes=3))
    meta = {"classes": ["a", "b", "c"], "norm": (0.0, 1.0)}
    hist = [{"epoch": 1, "val_acc": 0.5, "train_acc": 0.4, "seconds": 1.0}]
    for name in ("a_tiny", "b_tiny"):
        save_checkpoint(tmp_path / name / "best.pt", model, meta)
        (tmp_path / name / "metrics.json").write_text(json.dumps(hist))
    (tmp_path / "b_tiny" / "summary.json").write_text(json.dumps({"model": "tiny", "test_acc": 0.45, "data": "mini"}))
    (tmp_path / "c_empty").mkdir()                                   # no best.pt: not a run
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("SEDGE_STAGE_LOG", str(log))
    runs = converged_runs(tmp_path)
    assert [r["run_dir"].name for r in runs] == ["a_tiny", "b_tiny"]
    assert runs[0]["summary"] is None and runs[1]["summary"]["test_acc"] == 0.45
    assert all(r["model"] == "tiny" and r["meta"]["classes"] == ["a", "b", "c"] for r in runs)
    noted = [json.loads(line)["stage"] for line in log.read_text().splitlines()]
    assert sum(n.endswith("summary.json") for n in noted) == 2       # also the missing one: it may appear
    assert converged_runs(None) == [] and converged_runs(tmp_path / "absent") == []


def test_a_chapter_that_lists_runs_is_stale_once_a_run_folder_appears(tmp_path, monkeypatch):
    """converged_runs notes the listing itself, not only the runs it found: a new run is news."""
    from sedge.models.config import model_config
    from sedge.models.model import build_model
    from sedge.pipeline.experiments import converged_runs
    from sedge.training.checkpoints import save_checkpoint
    model = build_model(model_config("tiny", n_classes=2))
    runs = tmp_path / "runs"

    def add_run(name: str) -> None:
        save_checkpoint(runs / name / "best.pt", model, {"classes": ["a", "b"], "norm": (0.0, 1.0)})
        (runs / name / "metrics.json").write_text(json.dumps([{"epoch": 1, "val_acc": 0.5}]))

    add_run("a_tiny")
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("SEDGE_STAGE_LOG", str(log))
    converged_runs(runs)
    reads = [json.loads(line) for line in log.read_text().splitlines()]
    current = lambda: all(stages.read_is_current(r["stage"], r["record"], tmp_path) for r in reads)  # noqa: E731
    assert current()
    (runs / "b_empty").mkdir()                                       # not a run: still current
    assert current()
    add_run("b_tiny")
    assert not current()


def test_a_chapter_that_loads_a_run_is_stale_once_the_run_is_retrained(tmp_path, monkeypatch):
    """Chapters 02-05 read the training chapter's runs with load_run: the read must be logged, as the
    stage's record when a stage owns the run and as its files when `sedge train` wrote it."""
    from sedge.models.config import model_config
    from sedge.pipeline.experiments import load_run
    from sedge.models.model import build_model
    from sedge.training.checkpoints import save_checkpoint
    meta = {"classes": ["a", "b", "c"], "norm": (0.0, 1.0)}
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("SEDGE_STAGE_LOG", str(log))
    for name, staged in (("staged", True), ("plain", False)):
        run = tmp_path / name
        save_checkpoint(run / "best.pt", build_model(model_config("tiny", n_classes=3)), meta)
        (run / "metrics.json").write_text("[]")
        if staged:
            stages.commit(run, stage_key({"run": name}), ("best.pt",))
        log.write_text("")
        load_run(run)
        read = book._stages_read(log)
        assert read == ({str(run): stages.record_digest(run)} if staged else
                        {"file:" + str(run / f): stages.file_digest(run / f) for f in ("best.pt", "metrics.json")})
        assert book.stages_unchanged(read)
        torch.manual_seed(1)
        save_checkpoint(run / "best.pt", build_model(model_config("tiny", n_classes=3)), meta)   # retrained
        if staged:
            stages.commit(run, stage_key({"run": name}), ("best.pt",))
        assert not book.stages_unchanged(read)


def test_every_committed_stage_was_computed_by_the_current_code():
    """An edit of a module a stage runs (sedge.models.config is in every training stage) makes the committed
    stages stale: the book could no longer be rebuilt from them (SEDGE_STAGES=readonly). Retrain and
    commit, or keep the edit out of those modules."""
    from sedge.pipeline.fingerprint import fingerprint
    from sedge.paths import CHECKPOINTS, portable
    current = {fingerprint(r) for r in (TRAIN_CODE, PRUNE_CODE, BASELINE_CODE, COMPRESS_CODE, CONVEXITY_CODE, FILTER_CODE,
                                        ALLOCATION_CODE)}
    records = sorted(CHECKPOINTS.glob("quick/**/stage.json"))
    assert records, "no committed stages found"
    stale = [portable(r.parent) for r in records if json.loads(r.read_text())["key"].get("code") not in current]
    assert not stale, f"{len(stale)} committed stages ran other code: {stale[:5]}"


def small_folder(root, n=3):
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for s in range(n):
            sf.write(root / label / f"spk{s}_nohash_0.wav", 0.1 * rng.standard_normal(1600), 16000)


def test_a_folder_is_identified_by_its_content_not_its_place_or_times(tmp_path):
    import os
    import shutil
    small_folder(tmp_path / "d")
    first = stages.data_identity(f"folder:{tmp_path / 'd'}")
    shutil.copytree(tmp_path / "d", tmp_path / "elsewhere" / "d")         # a clone on another machine
    clip = tmp_path / "elsewhere" / "d" / "a" / "spk1_nohash_0.wav"
    os.utime(clip, ns=(1, 1))
    assert stages.data_identity(f"folder:{tmp_path / 'elsewhere' / 'd'}") == first
    x, sr = sf.read(clip)
    sf.write(clip, -x, sr)                                                  # same size, other samples
    assert stages.data_identity(f"folder:{tmp_path / 'elsewhere' / 'd'}") != first
    (tmp_path / "d" / "a" / "spk0_nohash_0.wav").rename(tmp_path / "d" / "b" / "spk9_nohash_0.wav")
    assert stages.data_identity(f"folder:{tmp_path / 'd'}") != first      # a clip moved to another label


def test_adopt_rekeys_only_a_stage_whose_sole_difference_is_the_machine_bound_folder_identity(tmp_path, monkeypatch):
    small_folder(tmp_path / "d")
    spec = f"folder:{tmp_path / 'd'}"
    key = stage_key({"lr": 0.1}, data=spec)
    old = {**key, "data": "folder:0123456789abcdef"}                      # as written on another machine
    finish(tmp_path / "s", old)
    finish(tmp_path / "t", {**old, "config": {"lr": 0.2}})
    assert not finished(tmp_path / "s", key, ("result.bin",))
    monkeypatch.setenv("SEDGE_STAGES", "adopt")
    assert not finished(tmp_path / "t", key, ("result.bin",))               # another configuration: never
    (tmp_path / "s" / "result.bin").write_bytes(b"changed")
    assert not finished(tmp_path / "s", key, ("result.bin",))               # a result file changed: never
    (tmp_path / "s" / "result.bin").write_bytes(b"result")
    assert finished(tmp_path / "s", key, ("result.bin",))
    monkeypatch.delenv("SEDGE_STAGES")
    assert finished(tmp_path / "s", key, ("result.bin",))                   # re-keyed once, for good
    assert "rekeyed" in json.loads((tmp_path / "s" / "stage.json").read_text())


def _rekey_tool():
    spec = importlib.util.spec_from_file_location("rekey_stages", Path(__file__).parents[1] / "tools" / "rekey_stages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rekey_carries_a_chapter_run_under_the_old_key_and_replaces_only_the_digests_rekeyed(tmp_path):
    import nbformat
    tool = _rekey_tool()
    nb = nbformat.v4.new_notebook()
    nb.metadata["sedge"] = {"key": "old", "stages": {"checkpoints/quick/a": "a0", "checkpoints/quick/b": "b0",
                                                     "file:x.bin": "x0"}}
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, str(path))
    rewritten = {"checkpoints/quick/a": ("a0", "a1"), "checkpoints/quick/b": ("other", "b1")}
    assert not tool.rekey_chapter(path, "another", "new", rewritten, {"because": "t"})   # run by other code
    assert nbformat.read(str(path), as_version=4).metadata["sedge"]["key"] == "old"
    assert tool.rekey_chapter(path, "old", "new", rewritten, {"because": "t"}, dry_run=True)
    assert nbformat.read(str(path), as_version=4).metadata["sedge"]["key"] == "old"      # dry run: untouched
    assert tool.rekey_chapter(path, "old", "new", rewritten, {"because": "t"})
    meta = nbformat.read(str(path), as_version=4).metadata["sedge"]
    assert meta["key"] == "new" and meta["rekeyed"] == {"because": "t"}
    # a: re-keyed from the digest the chapter read; b: the chapter had read another version, it stays stale
    assert meta["stages"] == {"checkpoints/quick/a": "a1", "checkpoints/quick/b": "b0", "file:x.bin": "x0"}
    assert not tool.rekey_chapter(path, "new", "new", rewritten, {"because": "t"})       # nothing left to carry


def test_rekey_names_records_as_the_stage_log_does():
    from sedge.paths import REPO
    tool = _rekey_tool()
    assert tool.read_name(REPO / "checkpoints" / "quick" / "mini_s" / "stage.json") == "checkpoints/quick/mini_s"
    assert tool.read_name(REPO / "checkpoints" / "m.key.json") == "file:checkpoints/m.key.json"
