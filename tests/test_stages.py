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
