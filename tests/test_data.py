from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sedge.data import DataError, SyntheticConfig, load_data
from sedge.data.base import speaker_split
from sedge.data.folder import load_folder, read_clip
from sedge.data.synthetic import load_synthetic
from sedge.paths import MINI_SPEECH_COMMANDS

SMALL = SyntheticConfig(n_speakers=10, words=("yes", "no", "up"), seed=3)


def test_synthetic_is_deterministic_and_speaker_disjoint(tmp_path, monkeypatch):
    monkeypatch.setattr("sedge.data.synthetic.CACHE", tmp_path)
    a = load_synthetic(SMALL)
    b = load_synthetic(SMALL, cache=False)                   # regenerated from scratch
    assert np.array_equal(a.train.waves, b.train.waves) and np.array_equal(a.test.labels, b.test.labels)
    assert len(list(tmp_path.glob("synthetic_*.npz"))) == 1
    c = load_synthetic(SyntheticConfig(n_speakers=10, words=("yes", "no", "up"), seed=4), cache=False)
    assert not np.array_equal(a.train.waves[:5], c.train.waves[:5])
    spk = [set(s.speakers) for s in (a.train, a.val, a.test)]
    assert not (spk[0] & spk[1] or spk[0] & spk[2] or spk[1] & spk[2])
    assert a.classes == ["yes", "no", "up"]
    assert len(a.train) + len(a.val) + len(a.test) == 10 * 3
    assert a.train.waves.dtype == np.int16 and a.train.waves.shape[1] == 16000
    assert set(a.train.labels.tolist()) == {0, 1, 2}


def test_synthetic_noise_follows_snr(tmp_path, monkeypatch):
    """Lower SNR means a larger noise floor in the silent part of the clip."""
    monkeypatch.setattr("sedge.data.synthetic.CACHE", tmp_path)
    def floor(snr):
        d = load_synthetic(SyntheticConfig(n_speakers=10, words=("yes",), snr_db=snr, seed=1), cache=False)
        w = d.train.waves.astype(float)
        return np.median(np.abs(w[:, :400]).mean(1) / np.abs(w).max(1))
    assert floor(0) > 2 * floor(30)


def test_synthetic_option_errors():
    with pytest.raises(DataError, match="unknown synthetic data option"):
        load_data("synthetic:speakers=3")
    with pytest.raises(DataError, match="at least 10"):
        load_data("synthetic:n_speakers=3")
    with pytest.raises(DataError, match="unknown words"):
        load_data("synthetic:words=yes+banana")
    with pytest.raises(DataError, match="expected synthetic"):
        load_data("nonsense")


def _write_folder(root, labels=("yes", "no"), speakers=40, sr=16000, n=16000):
    rng = np.random.default_rng(0)
    for lab in labels:
        (root / lab).mkdir(parents=True, exist_ok=True)
        for s in range(speakers):
            sf.write(root / lab / f"spk{s:03d}_nohash_0.wav", rng.uniform(-0.5, 0.5, n).astype(np.float32), sr)


def test_folder_loader_hash_split(tmp_path, monkeypatch):
    monkeypatch.setattr("sedge.data.folder.CACHE", tmp_path / "cache")
    _write_folder(tmp_path / "data")
    d = load_folder(tmp_path / "data")
    assert d.classes == ["no", "yes"]
    assert len(d.train) + len(d.val) + len(d.test) == 80
    for split in ("train", "val", "test"):
        assert all(speaker_split(s) == split for s in d.split(split).speakers)
    again = load_folder(tmp_path / "data")                  # from the cache
    assert np.array_equal(again.train.waves, d.train.waves)


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_folder(tmp_path / "missing")
    (tmp_path / "empty" / "yes").mkdir(parents=True)
    with pytest.raises(DataError, match="no .wav/.flac clips"):
        load_folder(tmp_path / "empty")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really audio")
    with pytest.raises(DataError, match="bad.wav: cannot read audio"):
        read_clip(bad)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(DataError, match="empty.wav: empty audio"):
        read_clip(empty)


def test_folder_too_few_clips_for_a_split(tmp_path, monkeypatch):
    monkeypatch.setattr("sedge.data.folder.CACHE", tmp_path / "cache")
    _write_folder(tmp_path / "data", speakers=2)
    with pytest.raises(DataError, match="split '(val|test|train)' has 0 clips"):
        load_folder(tmp_path / "data")


def test_wrong_sample_rate_is_resampled_with_a_warning(tmp_path):
    t = np.arange(8000) / 8000
    sf.write(tmp_path / "a.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000)
    with pytest.warns(UserWarning, match="a.wav: resampled from 8000 Hz to 16000 Hz"):
        x = read_clip(tmp_path / "a.wav")
    assert x.shape == (16000,)
    spec = np.abs(np.fft.rfft(x.astype(float)))
    assert abs(np.argmax(spec) - 440) <= 2                  # 1 Hz bins: the tone stays at 440 Hz


def test_restrict_to_known_labels(tmp_path, monkeypatch):
    monkeypatch.setattr("sedge.data.folder.CACHE", tmp_path / "cache")
    _write_folder(tmp_path / "data", labels=("yes", "no", "cat"))
    d = load_folder(tmp_path / "data").restrict_to(["yes", "no", "up"])
    assert d.classes == ["yes", "no", "up"]
    assert set(d.train.labels.tolist()) <= {0, 1}
    with pytest.raises(DataError, match="none of which the model knows"):
        load_folder(tmp_path / "data").restrict_to(["left"])


@pytest.mark.skipif(not MINI_SPEECH_COMMANDS.exists(), reason="real mini Speech Commands not beside the project")
def test_mini_speech_commands():
    d = load_data("mini")
    assert d.classes == ["down", "go", "left", "no", "right", "stop", "up", "yes"]
    assert len(d.train) + len(d.val) + len(d.test) == 7192
    spk = [set(s.speakers) for s in (d.train, d.val, d.test)]
    assert not (spk[0] & spk[1] or spk[0] & spk[2] or spk[1] & spk[2])
    assert 0.75 < len(d.train) / 7192 < 0.85


def test_gsc_uses_the_official_split_lists(tmp_path, monkeypatch):
    from sedge.data.gsc import SUBDIR, load_gsc
    monkeypatch.setattr("sedge.data.folder.CACHE", tmp_path / "cache")
    base = tmp_path / SUBDIR
    _write_folder(base, labels=("yes", "no"), speakers=6)
    (base / "_background_noise_").mkdir()
    sf.write(base / "_background_noise_" / "noise.wav", np.zeros(16000, np.float32), 16000)
    (base / "validation_list.txt").write_text("yes/spk000_nohash_0.wav\nno/spk001_nohash_0.wav\n")
    (base / "testing_list.txt").write_text("yes/spk002_nohash_0.wav\nno/spk003_nohash_0.wav\n")
    d = load_gsc(tmp_path)
    assert sorted(d.val.speakers) == ["spk000", "spk001"] and sorted(d.test.speakers) == ["spk002", "spk003"]
    assert len(d.train) == 12 - 4 and d.classes == ["no", "yes"]        # background noise excluded
    with pytest.raises(DataError, match="Speech Commands v0.02 not found"):
        load_gsc(tmp_path / "elsewhere")


def test_a_training_subset_keeps_validation_and_test_clip_for_clip(tmp_path, monkeypatch):
    """tools/subset_training_speakers.py: the data-size ablation's folder keeps every validation and
    test clip and about the requested fraction of the training speakers, all of them from train."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "subset_tool", Path(__file__).parents[1] / "tools" / "subset_training_speakers.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr("sedge.data.folder.CACHE", tmp_path / "cache")
    _write_folder(tmp_path / "full", speakers=200, n=400)
    assert tool.main(["--root", str(tmp_path / "full"), "--fraction", "0.5", "--out", str(tmp_path / "half")]) == 0
    full, half = load_folder(tmp_path / "full"), load_folder(tmp_path / "half")
    for split in ("val", "test"):
        assert half.split(split).speakers == full.split(split).speakers
        assert np.array_equal(half.split(split).waves, full.split(split).waves)
    assert set(half.train.speakers) < set(full.train.speakers)
    assert 0.35 < len(set(half.train.speakers)) / len(set(full.train.speakers)) < 0.65
    with pytest.raises(SystemExit):                      # the output folder must be new
        tool.main(["--root", str(tmp_path / "full"), "--fraction", "0.5", "--out", str(tmp_path / "half")])
