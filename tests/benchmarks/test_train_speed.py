"""Training-path speed and memory: forward + backward of a batch of 16 one-second clips, 2 threads.

For every zoo model, in **one run** (each measurement in its own process, so peak memory is its own):

* ``fused``      — the default CPU path, the C++ layer operator of :mod:`sedge.models.kernel`;
* ``chunked``    — the chunked scan of :mod:`sedge.models.scan` (``SEDGE_KERNEL=0``, the fallback);
* ``sequential`` — the plain per-sample loop ``sedge.models.scan.diag_scan_loop`` (small models only);
* ``fused`` with glibc's default allocation (freed large blocks unmapped, :mod:`sedge.memory`);
* the **MAC limit**: 3 × the forward MACs of the batch ÷ the sgemm rate measured in the same run at
  2 threads (a large float32 torch.mm). Machines here differ (AVX-512 or AVX2), so the goals are
  ratios to that limit: tiny, s, m within 2.5×, l and full within 2×, full at ≤ 1.2 GB peak.

Also the eval-mode forward of ``s`` per clip on one thread against its MAC limit. Results are
printed and kept in the pytest-benchmark record. Run with ``make benchmark`` on a quiet machine.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sedge.memory import child_environment

SCRIPT = r"""
import json, os, resource, sys, time
import torch
threads = int(sys.argv[4])
torch.set_num_threads(threads)
import sedge.models.layer, sedge.models.scan
from sedge.models.config import model_config
from sedge.models.cost import cost_report
from sedge.models.model import build_model
name, impl, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
if impl == "sequential":
    sedge.models.layer.diag_scan = sedge.models.scan.diag_scan_loop
if impl == "sgemm":
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    t = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    print(json.dumps({"mac_per_s": reps * 2048 ** 3 / (time.perf_counter() - t)}))
    sys.exit()
model = build_model(model_config(name), seed=0)
macs = cost_report(model)["macs_per_sample"] * 16000
batch = 16 if impl != "eval" else 32
x = torch.randn(batch, 16000)
y = torch.randint(0, 35, (batch,))
times = []
for _ in range(reps + 1):
    t = time.perf_counter()
    if impl == "eval":
        with torch.no_grad():
            model.eval()(x)
    else:
        torch.nn.functional.cross_entropy(model.train()(x), y).backward()
    times.append(time.perf_counter() - t)
print(json.dumps({"seconds": min(times[1:]), "macs_fwd": macs * batch,
                  "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""

GOALS = {"tiny": 2.5, "s": 2.5, "m": 2.5, "l": 2.0, "full": 2.0}


def measure(name: str, impl: str, reps: int, threads: int = 2, keep_freed: bool = True) -> dict:
    """One measurement in its own process, with freed memory kept for reuse as the ``sedge`` command
    and the book's kernels have it (:mod:`sedge.memory`), or, with ``keep_freed=False``, glibc's default."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(child_environment() if keep_freed else {})
    if impl in ("chunked", "sequential"):
        env["SEDGE_KERNEL"] = "0"
    out = subprocess.run([sys.executable, "-c", SCRIPT, name, impl, str(reps), str(threads)], capture_output=True,
                         text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(GOALS))
def test_forward_backward_speed(name, benchmark):
    sgemm = measure("", "sgemm", 5)["mac_per_s"]
    fused = benchmark.pedantic(measure, args=(name, "fused", 3), rounds=1, iterations=1)
    chunked = measure(name, "chunked", 1)
    unmapped = measure(name, "fused", 3, keep_freed=False)
    limit = 3 * fused["macs_fwd"] / sgemm
    line = (f"\n{name}: fused {fused['seconds']:.3f} s ({fused['seconds'] / limit:.1f}× the MAC limit "
            f"{limit:.3f} s; goal {GOALS[name]}×), peak {fused['peak_gb']:.2f} GB | chunked scan "
            f"{chunked['seconds']:.3f} s, peak {chunked['peak_gb']:.2f} GB (×{chunked['seconds'] / fused['seconds']:.1f})"
            f" | fused with freed memory unmapped (glibc default) {unmapped['seconds']:.3f} s "
            f"(×{unmapped['seconds'] / fused['seconds']:.2f}), peak {unmapped['peak_gb']:.2f} GB")
    record = {"fused": fused, "chunked": chunked, "fused_unmapped": unmapped, "mac_limit_s": limit,
              "sgemm_mac_per_s": sgemm}
    if name in ("tiny", "s"):
        seq = measure(name, "sequential", 1)
        line += f" | sequential {seq['seconds']:.2f} s (×{seq['seconds'] / fused['seconds']:.1f})"
        record["sequential"] = seq
    print(line)
    benchmark.extra_info.update(record)
    assert fused["seconds"] < chunked["seconds"]


MEMORY_SCRIPT = r"""
import json, resource, sys
def rss_gb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**30
import torch
after_import = rss_gb()
torch.set_num_threads(2)
from sedge.models.config import model_config
from sedge.models.model import build_model
model = build_model(model_config(sys.argv[1]), seed=0).train()
x, y = torch.randn(16, 16000), torch.randint(0, 35, (16,))
peaks = []
for _ in range(int(sys.argv[2])):
    torch.nn.functional.cross_entropy(model(x), y).backward()
    peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
print(json.dumps({"import_torch_rss_gb": after_import, "peak_gb_after_step": peaks}))
"""


def peak_by_step(name: str, steps: int, keep_freed: bool) -> dict:
    """Process peak after each training step (batch 16 × 16,000) of ``name``, in its own process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(child_environment() if keep_freed else {})
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, name, str(steps)], capture_output=True, text=True,
                         check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_full_peak_memory_by_step(benchmark):
    """Memory only (no timing: valid on a busy machine): the peak of ``full``'s training step over
    eight steps with glibc's default allocation and with freed memory kept, next to what ``import torch``
    alone holds. Written to ``records/train_memory_full.json``."""
    from pathlib import Path
    import time
    glibc = benchmark.pedantic(peak_by_step, args=("full", 8, False), rounds=1, iterations=1)
    kept = peak_by_step("full", 8, True)
    print(f"\nfull, peak after steps 1 … 8: glibc default {[round(p, 2) for p in glibc['peak_gb_after_step']]} GB, "
          f"freed memory kept {[round(p, 2) for p in kept['peak_gb_after_step']]} GB; import torch alone "
          f"{glibc['import_torch_rss_gb']:.2f} GB (goal: 1.2 GB peak)")
    record = {"glibc_default": glibc, "freed_memory_kept": kept, "batch": 16, "samples": 16000, "threads": 2,
              "measured": time.strftime("%Y-%m-%d")}
    (Path(__file__).parent / "records" / "train_memory_full.json").write_text(json.dumps(record, indent=1) + "\n")
    benchmark.extra_info.update(record)
    assert len(glibc["peak_gb_after_step"]) == 8


def test_eval_forward_of_s_per_clip_one_thread(benchmark):
    sgemm = measure("", "sgemm", 3, threads=1)["mac_per_s"]
    r = benchmark.pedantic(measure, args=("s", "eval", 3, 1), rounds=1, iterations=1)
    per_clip, limit = r["seconds"] / 32, r["macs_fwd"] / 32 / sgemm
    print(f"\ns eval forward: {1e3 * per_clip:.1f} ms per clip on one thread, MAC limit {1e3 * limit:.1f} ms "
          f"({per_clip / limit:.1f}×; goal 2×)")
    benchmark.extra_info.update(eval=r, per_clip_s=per_clip, limit_s=limit)
