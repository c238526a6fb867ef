"""Cached stages notice when the checkpoint they were derived from changed."""
import json

from sedge.experiments import SOURCE_RECORD, _same_config, file_digest, record_source, source_unchanged


def test_a_derived_stage_is_stale_once_its_checkpoint_changes(tmp_path):
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"weights v1")
    stage = tmp_path / "stage"
    stage.mkdir()
    config = {"checkpoint": "best.pt", "lr": 0.1}
    (stage / "config.json").write_text(json.dumps(config))
    (stage / "result.json").write_text("{}")
    record_source(stage / SOURCE_RECORD, ckpt)
    assert _same_config(stage, config, "result.json", source=ckpt)
    ckpt.write_bytes(b"weights v2")                    # retrained under the same path
    assert not _same_config(stage, config, "result.json", source=ckpt)
    assert _same_config(stage, config, "result.json")   # without a source only the configuration counts
    assert not _same_config(stage, {**config, "lr": 0.2}, "result.json", source=ckpt)


def test_a_stage_from_before_digests_is_trusted_once_then_guarded(tmp_path):
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"a")
    record = tmp_path / SOURCE_RECORD
    assert source_unchanged(record, ckpt) and record.read_text() == file_digest(ckpt)
    ckpt.write_bytes(b"b")
    assert not source_unchanged(record, ckpt)


def test_a_run_written_before_a_recipe_field_existed_is_reused(tmp_path):
    """Adding a TrainConfig field (here `augment`) must not retrain every committed run; changing a
    field that existed must."""
    from dataclasses import asdict

    from sedge.config import TrainConfig
    current = {"model": "tiny", "data": "mini", "train": asdict(TrainConfig(epochs=3))}
    old = {**current, "train": {k: v for k, v in current["train"].items() if k != "augment"}}
    (tmp_path / "config.json").write_text(json.dumps(old))
    (tmp_path / "summary.json").write_text("{}")
    assert _same_config(tmp_path, current, "summary.json")
    assert not _same_config(tmp_path, {**current, "train": asdict(TrainConfig(epochs=3, augment={"shift": 0.1}))},
                            "summary.json")
    assert not _same_config(tmp_path, {**current, "train": asdict(TrainConfig(epochs=4))}, "summary.json")


def test_readonly_stages_refuse_to_compute(tmp_path, monkeypatch):
    from sedge.experiments import StageMissing, trained_run
    monkeypatch.setenv("SEDGE_STAGES", "readonly")
    import pytest
    with pytest.raises(StageMissing, match="missing or stale"):
        trained_run("tiny", "synthetic:n_speakers=20,words=yes+no,snr_db=10", "syn", tmp_path, epochs=1, lr=0.01,
                    max_steps=1, progress=False)
    assert not (tmp_path / "syn_tiny").exists()
