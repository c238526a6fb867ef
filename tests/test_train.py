import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sedge.cli import main as cli_main
from sedge.models.config import TrainConfig
from sedge.training.checkpoints import load_checkpoint, save_checkpoint
from sedge.training.loop import cosine_with_warmup
from sedge.training.train import decoder_orthogonality, train
from sedge.models.model import build_model

from helpers import MICRO, toy_data

REPO = Path(__file__).resolve().parents[1]


def test_decoder_orthogonality_penalty():
    assert decoder_orthogonality(torch.eye(3)) == 0
    W = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert decoder_orthogonality(W) == pytest.approx(np.sqrt(2 / 4))


def test_cosine_schedule_with_warmup():
    assert cosine_with_warmup(0, 100, 10) == pytest.approx(0.1)
    assert cosine_with_warmup(9, 100, 10) == pytest.approx(1.0)
    assert cosine_with_warmup(10, 100, 10) == pytest.approx(1.0)
    assert cosine_with_warmup(55, 100, 10) == pytest.approx(0.5)
    assert cosine_with_warmup(100, 100, 10) == pytest.approx(0.0)


def test_optimizer_groups_follow_the_paper(tmp_path):
    from sedge.training.train import make_optimizer
    m = build_model(MICRO)
    opt = make_optimizer(m, TrainConfig(lr=0.002))
    ssm, rest = opt.param_groups
    assert ssm["lr"] == 0.002 and ssm["weight_decay"] == 0
    assert rest["lr"] == pytest.approx(0.008) and rest["weight_decay"] == 0.04
    names = {id(p): n for n, p in m.named_parameters()}
    assert {names[id(p)].split(".")[-1] for p in ssm["params"]} == {
        "lambda_re", "lambda_im", "log_step", "B_re", "B_im", "b_re", "b_im", "C_re", "C_im", "c_re", "c_im"}
    assert any("decoder" in names[id(p)] for p in rest["params"])
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(m.parameters()))


def test_train_selects_on_validation_and_tests_once(tmp_path):
    data = toy_data()
    summary = train(MICRO, data, TrainConfig(epochs=3, batch_size=8, warmup_steps=2, lr=0.01), tmp_path, progress=False)
    hist = json.loads((tmp_path / "metrics.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert "test_acc" not in hist[0]                       # the test split is not looked at per epoch
    best_epoch = int(np.argmax([h["val_acc"] for h in hist])) + 1
    assert summary["best_epoch"] == best_epoch
    assert torch.load(tmp_path / "best.pt", weights_only=False)["epoch"] == best_epoch
    assert summary["test_acc"] > 0.5                       # the toy task is learnable
    csv_lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,train_loss") and len(csv_lines) == 4


def crash_on_last_pt_write(monkeypatch, n: int):
    """Make the n-th write of last.pt raise KeyboardInterrupt right after it is written (a kill at
    that point); returns a function that undoes it."""
    import sedge.training.loop as T
    real_save = T.save_checkpoint
    calls = {"n": 0}

    def save(path, *a, **k):
        real_save(path, *a, **k)
        if Path(path).name == "last.pt":
            calls["n"] += 1
            if calls["n"] == n:
                raise KeyboardInterrupt
    monkeypatch.setattr(T, "save_checkpoint", save)
    return lambda: monkeypatch.setattr(T, "save_checkpoint", real_save)


def test_resume_after_interruption(tmp_path, monkeypatch):
    """Kill training after epoch 2 of 3; rerunning continues at epoch 3 and matches a straight run."""
    data = toy_data()
    cfg = TrainConfig(epochs=3, batch_size=8, warmup_steps=2, lr=0.01)
    straight = train(MICRO, data, cfg, tmp_path / "straight", progress=False)
    restore = crash_on_last_pt_write(monkeypatch, 2)            # after epoch 2
    with pytest.raises(KeyboardInterrupt):
        train(MICRO, data, cfg, tmp_path / "run", progress=False)
    assert len(json.loads((tmp_path / "run" / "metrics.json").read_text())) == 2
    restore()
    resumed = train(MICRO, data, cfg, tmp_path / "run", progress=False)
    a = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    b = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [h["train_loss"] for h in a] == pytest.approx([h["train_loss"] for h in b], rel=1e-6)
    assert resumed["test_acc"] == straight["test_acc"]


def test_resume_inside_an_epoch_with_augmentation(tmp_path, monkeypatch):
    """Mid-epoch last.pt (every step here): a crash inside epoch 2 resumes at that step, and the run
    (augmented batches included) ends exactly as a straight one."""
    data = toy_data()
    aug = {"shift": 0.005, "gain_db": 3.0, "noise_p": 0.5, "snr_min_db": 5.0, "snr_max_db": 20.0, "speed": 0.1}
    cfg = TrainConfig(epochs=2, batch_size=8, warmup_steps=2, lr=0.01, augment=aug)
    straight = train(MICRO, data, cfg, tmp_path / "straight", progress=False, checkpoint_minutes=0)
    restore = crash_on_last_pt_write(monkeypatch, 9)            # 5 mid-epoch + 1 epoch-end writes in epoch 1
    with pytest.raises(KeyboardInterrupt):
        train(MICRO, data, cfg, tmp_path / "run", progress=False, checkpoint_minutes=0)
    blob = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert blob["partial"]["epoch"] == 1 and blob["partial"]["step"] == 3
    restore()
    resumed = train(MICRO, data, cfg, tmp_path / "run", progress=False, checkpoint_minutes=0)
    a = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    b = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [h["train_loss"] for h in a] == pytest.approx([h["train_loss"] for h in b], rel=1e-6)
    wa = torch.load(tmp_path / "straight" / "last.pt", weights_only=False)["state_dict"]
    wb = torch.load(tmp_path / "run" / "last.pt", weights_only=False)["state_dict"]
    assert all(torch.allclose(wa[k].float(), wb[k].float(), atol=1e-6) for k in wa)
    assert resumed["val_acc"] == straight["val_acc"]


def signal_during_batch(monkeypatch, n: int, signum: int, times: int = 1):
    """Send ``signum`` to this process ``times`` times while the loss of the n-th batch is computed;
    returns a function that undoes it."""
    import sedge.training.train as T
    real = T.decoder_orthogonality
    calls = {"n": 0}

    def term(W):
        calls["n"] += 1
        if calls["n"] == n:
            for _ in range(times):
                os.kill(os.getpid(), signum)
        return real(W)
    monkeypatch.setattr(T, "decoder_orthogonality", term)
    return lambda: monkeypatch.setattr(T, "decoder_orthogonality", real)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_after_the_batch_and_loses_nothing(tmp_path, monkeypatch, signum):
    """Ctrl-C or kill inside epoch 2: the batch under way finishes, last.pt records it (no mid-epoch
    write was due), the handlers are restored, and the resumed run ends exactly as a straight one."""
    from sedge.training.loop import TrainingStopped
    data = toy_data()
    cfg = TrainConfig(epochs=2, batch_size=8, warmup_steps=2, lr=0.01)
    straight = train(MICRO, data, cfg, tmp_path / "straight", progress=False)
    per_epoch = -(-len(data.train) // cfg.batch_size)
    before = signal.getsignal(signum)
    restore = signal_during_batch(monkeypatch, per_epoch + 3, signum)
    with pytest.raises(TrainingStopped) as stopped:
        train(MICRO, data, cfg, tmp_path / "run", progress=False)
    assert (stopped.value.epoch, stopped.value.step, stopped.value.signum) == (1, 3, signum)
    assert signal.getsignal(signum) is before
    blob = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert blob["partial"]["epoch"] == 1 and blob["partial"]["step"] == 3
    restore()
    resumed = train(MICRO, data, cfg, tmp_path / "run", progress=False)
    a = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    b = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [h["train_loss"] for h in a] == pytest.approx([h["train_loss"] for h in b], rel=1e-6)
    assert resumed["val_acc"] == straight["val_acc"] and resumed["test_acc"] == straight["test_acc"]


def test_a_signal_during_validation_stops_with_the_epoch_committed(tmp_path, monkeypatch):
    """Kill while epoch 1 is validated: the epoch is finished and committed (metrics, best.pt, last.pt
    without a partial position), TrainingStopped names epoch 2 (0-based 1), batch 0, and resuming ends as a straight run."""
    import sedge.training.loop as L
    from sedge.training.loop import TrainingStopped
    data = toy_data()
    cfg = TrainConfig(epochs=2, batch_size=8, warmup_steps=2, lr=0.01)
    straight = train(MICRO, data, cfg, tmp_path / "straight", progress=False)
    real, calls = L.predict, {"n": 0}

    def predict_then_kill(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:                             # the first validation pass, at the end of epoch 1
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)
    monkeypatch.setattr(L, "predict", predict_then_kill)
    with pytest.raises(TrainingStopped) as stopped:
        train(MICRO, data, cfg, tmp_path / "run", progress=False)
    assert (stopped.value.epoch, stopped.value.step, stopped.value.signum) == (1, 0, signal.SIGTERM)
    blob = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert len(blob["history"]) == 1 and blob.get("partial") is None
    assert (tmp_path / "run" / "best.pt").exists()
    monkeypatch.setattr(L, "predict", real)
    resumed = train(MICRO, data, cfg, tmp_path / "run", progress=False)
    assert resumed["val_acc"] == straight["val_acc"] and resumed["test_acc"] == straight["test_acc"]


def test_a_second_signal_stops_at_once(tmp_path, monkeypatch):
    """Two signals: no waiting for the batch, so last.pt keeps the last epoch end."""
    from sedge.training.loop import TrainingStopped
    data = toy_data()
    cfg = TrainConfig(epochs=2, batch_size=8, warmup_steps=2, lr=0.01)
    per_epoch = -(-len(data.train) // cfg.batch_size)
    signal_during_batch(monkeypatch, per_epoch + 3, signal.SIGTERM, times=2)
    with pytest.raises(KeyboardInterrupt) as stopped:
        train(MICRO, data, cfg, tmp_path, progress=False)
    assert not isinstance(stopped.value, TrainingStopped)
    blob = torch.load(tmp_path / "last.pt", weights_only=False)
    assert len(blob["history"]) == 1 and blob.get("partial") is None
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_train_cli_reports_a_stop_and_resumes(tmp_path, monkeypatch, capsys):
    """`sedge train` stopped by kill: exit status 128 + SIGTERM, a message naming last.pt and how to
    resume; the same command then continues from there."""
    monkeypatch.setattr("sedge.data.folder.CACHE", tmp_path / "cache")
    root = tmp_path / "folder"
    rng = np.random.default_rng(1)
    for label, f in (("a", 500), ("c", 3500)):
        (root / label).mkdir(parents=True)
        for s in range(20):
            t = np.arange(16000) / 16000
            sf.write(root / label / f"spk{s}_nohash_0.wav", 0.25 * np.sin(2 * np.pi * f * t) +
                     0.02 * rng.standard_normal(16000), 16000)
    out = tmp_path / "run"
    cmd = ["train", "--model", "tiny", "--data", f"folder:{root}", "--epochs", "1", "--max-steps", "3",
           "--batch-size", "4", "--out", str(out)]
    restore = signal_during_batch(monkeypatch, 2, signal.SIGTERM)
    assert cli_main(cmd) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert "stopped by SIGTERM at epoch 1, batch 2" in err and "last.pt" in err and "resume" in err
    assert torch.load(out / "last.pt", weights_only=False)["partial"]["step"] == 2
    restore()
    assert cli_main(cmd) == 0 and (out / "summary.json").exists()


def test_a_run_saved_before_a_config_field_existed_resumes():
    old = {k: v for k, v in TrainConfig().__dict__.items() if k != "augment"}
    assert TrainConfig().same_run(old)
    assert not TrainConfig(augment={"shift": 0.1}).same_run(old)
    assert not TrainConfig(lr=0.1).same_run(old)


def test_augmentation_is_seeded_and_changes_the_clip():
    from sedge.data.augment import Augment, parse_augment
    from sedge.data import DataError
    x = torch.randn(4, 1600)
    aug = Augment()
    a = aug(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, aug(x, torch.Generator().manual_seed(0)))
    assert not torch.equal(a, aug(x, torch.Generator().manual_seed(1)))
    assert a.shape == x.shape and not torch.allclose(a, x)
    off = Augment(shift=0, gain_db=0, noise_p=0, speed=0)
    assert torch.allclose(off(x, torch.Generator().manual_seed(0)), x)
    assert parse_augment("none") is None and parse_augment("default") == Augment()
    assert parse_augment("shift=0.2,speed=0").shift == 0.2
    with pytest.raises(DataError, match="expected none, default or key=value"):
        parse_augment("pitch=2")
    with pytest.raises(DataError, match="out of range"):
        parse_augment("noise_p=2")


def test_resume_refuses_another_configuration(tmp_path):
    data = toy_data()
    train(MICRO, data, TrainConfig(epochs=1, batch_size=8, warmup_steps=2), tmp_path, progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        train(MICRO, data, TrainConfig(epochs=2, batch_size=8, warmup_steps=2, lr=0.1), tmp_path, progress=False)


def test_checkpoint_roundtrip_and_errors(tmp_path):
    m = build_model(MICRO, seed=0).set_step_scale([2, 4])
    save_checkpoint(tmp_path / "m.pt", m, {"classes": ["a", "b", "c"], "norm": (0.0, 1.0)})
    m2, meta = load_checkpoint(tmp_path / "m.pt")
    x = torch.randn(2, 200)
    assert torch.equal(m.eval()(x), m2(x)) and m2.step_scale == [2, 4]
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")


def test_one_checkpoint_format_for_every_family(tmp_path):
    """S-Edge and baseline checkpoints share one versioned format and one reader; a family-specific
    loader refuses the other family, and a file of a newer format version is refused by name."""
    from sedge.training.baselines import build_baseline, load_baseline
    from sedge.training.checkpoints import CHECKPOINT_VERSION, read_checkpoint
    meta = {"classes": ["a", "b", "c"], "norm": (0.0, 1.0), "data": "toy"}
    save_checkpoint(tmp_path / "s.pt", build_model(MICRO, seed=0), meta, epoch=1, val_acc=0.5)
    cnn = build_baseline("transformer", n_classes=3, frame=40, d_model=16, heads=2, ff=16, layers=1)
    save_checkpoint(tmp_path / "b.pt", cnn, meta, epoch=1, val_acc=0.5)
    for name, family in (("s.pt", "sedge"), ("b.pt", "transformer")):
        ck = read_checkpoint(tmp_path / name)
        assert ck.family == family and ck.meta["version"] == CHECKPOINT_VERSION and ck.meta["family"] == family
        assert ck.model(torch.randn(2, 400)).shape == (2, 3)
    with pytest.raises(ValueError, match="s.pt: an S-Edge checkpoint, where a baseline"):
        load_baseline(tmp_path / "s.pt")
    with pytest.raises(ValueError, match="b.pt: a transformer checkpoint, where an S-Edge one"):
        load_checkpoint(tmp_path / "b.pt")
    blob = torch.load(tmp_path / "s.pt", weights_only=False)
    torch.save({**blob, "version": CHECKPOINT_VERSION + 1}, tmp_path / "new.pt")
    with pytest.raises(ValueError, match=f"new.pt: format version {CHECKPOINT_VERSION + 1}"):
        read_checkpoint(tmp_path / "new.pt")
    old = {k: v for k, v in torch.load(tmp_path / "b.pt", weights_only=False).items() if k not in ("version", "family")}
    torch.save(old, tmp_path / "v1.pt")                    # a baseline file of format 1 (no version, no family)
    assert read_checkpoint(tmp_path / "v1.pt").family == "transformer"


def test_evaluate_cli_on_a_speech_commands_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sedge.data.folder.CACHE", tmp_path / "cache")
    data = toy_data(length=16000)
    train(MICRO, data, TrainConfig(epochs=1, batch_size=8, warmup_steps=2), tmp_path / "run", progress=False)
    root = tmp_path / "folder"
    rng = np.random.default_rng(1)
    for label, f in (("a", 500), ("c", 3500), ("zzz", 1000)):      # "zzz" is unknown to the model
        (root / label).mkdir(parents=True)
        for s in range(30):
            t = np.arange(16000) / 16000
            sf.write(root / label / f"spk{s}_nohash_0.wav", 0.25 * np.sin(2 * np.pi * f * t) +
                     0.02 * rng.standard_normal(16000), 16000)
    rc = cli_main(["evaluate", "--checkpoint", str(tmp_path / "run" / "best.pt"), "--data", f"folder:{root}",
                   "--split", "train", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert rc == 0 and "accuracy on" in out and "2 of the model's 3 labels" in out
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["labels"] == ["a", "c"] and np.sum(r["confusion"]) > 0
    rc = cli_main(["evaluate", "--checkpoint", str(tmp_path / "nope.pt"), "--data", f"folder:{root}"])
    assert rc == 2


@pytest.mark.parametrize("cmd", ["train", "evaluate", "cost", "data", "book", "reduce", "prune", "export"])
def test_cli_help(cmd):
    out = subprocess.run([sys.executable, "-m", "sedge.cli", cmd, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "usage: sedge" in out.stdout


def test_cost_cli(capsys):
    assert cli_main(["cost", "--model", "tiny", "--step-scale", "1,9,54"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["params_paper"] == 8413 and r["step_scale"] == [1, 9, 54]
    assert cli_main(["cost", "--model", "tiny", "--step-scale", "1,3,4"]) == 2


DDP_WORKER = """
import sys, torch
sys.path.insert(0, {tests!r})
import torch.distributed as dist
from helpers import MICRO, toy_data
from sedge.models.config import TrainConfig
from sedge.training.baselines import build_baseline, train_baseline
from sedge.training.train import train
torch.set_num_threads(1)
dist.init_process_group("gloo")
rank, seen = dist.get_rank(), {{}}
DDP = torch.nn.parallel.DistributedDataParallel
class Recording(DDP):                                   # keeps each rank's own model to save it below
    def __init__(self, module, *a, **k):
        super().__init__(module, *a, **k)
        seen["model"] = module
torch.nn.parallel.DistributedDataParallel = Recording
data = toy_data()
cfg = TrainConfig(epochs=2, batch_size=4, warmup_steps=2, lr=0.01, max_steps_per_epoch=3)
train(MICRO, data, cfg, {out!r} + "/sedge", progress=False, freeze_norm=True)
torch.save(seen["model"].state_dict(), {out!r} + f"/sedge_rank{{rank}}.pt")
net = build_baseline("transformer", n_classes=3, frame=40, d_model=16, heads=2, ff=16, layers=1, dropout=0.0)
train_baseline(net, data, {out!r} + "/transformer", epochs=2, lr=0.01, batch_size=4, max_steps=3, progress=False)
torch.save(seen["model"].state_dict(), {out!r} + f"/transformer_rank{{rank}}.pt")
dist.destroy_process_group()
"""


def test_ddp_ranks_agree_and_equal_one_process_on_the_same_global_batches(tmp_path):
    """The one loop under torchrun (2 gloo processes, a free port): both ranks end with the same
    weights, and those equal a single-process run whose batch is the global batch (batch size 2 × 4),
    for S-Edge (BatchNorm frozen: per-rank batch statistics would differ) and for a baseline."""
    from sedge.training.baselines import build_baseline, train_baseline
    script = tmp_path / "worker.py"
    script.write_text(DDP_WORKER.format(tests=str(REPO / "tests"), out=str(tmp_path)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    data = toy_data()
    train(MICRO, data, TrainConfig(epochs=2, batch_size=8, warmup_steps=2, lr=0.01, max_steps_per_epoch=3),
          tmp_path / "one_sedge", progress=False, freeze_norm=True)
    net = build_baseline("transformer", n_classes=3, frame=40, d_model=16, heads=2, ff=16, layers=1, dropout=0.0)
    train_baseline(net, data, tmp_path / "one_transformer", epochs=2, lr=0.01, batch_size=8, max_steps=3, progress=False)
    for family in ("sedge", "transformer"):
        r0 = torch.load(tmp_path / f"{family}_rank0.pt")
        r1 = torch.load(tmp_path / f"{family}_rank1.pt")
        one = torch.load(tmp_path / f"one_{family}" / "last.pt", weights_only=False)["state_dict"]
        assert all(torch.equal(r0[k], r1[k]) for k in r0), family
        start = build_model(MICRO, seed=1234).state_dict() if family == "sedge" else None
        if start is not None:
            assert any(not torch.allclose(r0[k].float(), start[k].float()) for k in r0)   # it did train
        for k in r0:
            a, b = r0[k].float(), one[k].float()
            if k.endswith("self_attn.in_proj_bias"):     # the key bias (rows 16-31): softmax is invariant to it, so
                a, b = a[torch.arange(48) // 16 != 1], b[torch.arange(48) // 16 != 1]  # its gradient is rounding
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), (family, k)              # noise that Adam normalises
        assert json.loads((tmp_path / family / "summary.json").read_text())["world_size"] == 2


def test_torchrun_ddp_two_gloo_processes(tmp_path):
    """`sedge train` under torchrun with two CPU processes (gloo) trains and writes one run."""
    env = {**os.environ, "SEDGE_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "sedge.cli", "train", "--model", "tiny", "--data", "synthetic:n_speakers=10,words=yes+no",
           "--epochs", "1", "--max-steps", "2", "--batch-size", "4", "--out", str(tmp_path / "ddp")]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["epochs"] == 1
    assert (tmp_path / "ddp" / "best.pt").exists()


def test_every_committed_checkpoint_is_read_by_the_one_reader_and_costed():
    """`sedge evaluate`, `cost` and `export` read checkpoints through read_checkpoint: every committed
    best.pt / pruned.pt (S-Edge and every baseline family) must load, and `sedge cost` count it."""
    from sedge.training.checkpoint_cost import checkpoint_cost
    from sedge.training.checkpoints import FAMILIES, read_checkpoint
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "checkpoints"], capture_output=True, text=True, check=True)
    paths = [REPO / p for p in out.stdout.split() if p.endswith((".pt",)) and not p.endswith("last.pt")]
    assert len(paths) > 50
    families = set()
    for p in paths:
        ck = read_checkpoint(p)
        assert ck.family in FAMILIES and ck.meta.get("classes"), p
        assert checkpoint_cost(ck)["params"] > 0, p
        families.add(ck.family)
    assert families == set(FAMILIES)
