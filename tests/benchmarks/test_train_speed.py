"""Training-path speed and memory: forward+backward of a batch of 16 one-second clips (SPEC §1).

Each measurement runs in its own process (2 threads) so that peak memory is its own. Our chunked
scan is compared with the plain sequential recurrence ``sedge.scan.diag_scan_loop`` (one Python
step per sample, ``unbind`` so that its backward stays O(L)); everything else in the model is shared. The authors'
PyTorch implementation is quoted for context: ≈1.4 s (tiny) and ≈14 s at 6.7 GB peak (full) on 2
cores of this kind of CPU. Run with ``make benchmark``.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

AUTHORS = {"tiny": (1.4, None), "full": (14.0, 6.7)}

SCRIPT = r"""
import json, resource, sys, time
import torch, sedge
import sedge.layer, sedge.scan
from sedge.config import model_config
from sedge.model import build_model
torch.set_num_threads(2)
name, impl, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
if impl == "sequential":           # the plain loop, one Python step per sample (sedge.scan's reference)
    sedge.layer.diag_scan = sedge.scan.diag_scan_loop
model = build_model(model_config(name), seed=0).train()
x = torch.randn(16, 16000)
y = torch.randint(0, 35, (16,))
times = []
for _ in range(reps + 1):
    t = time.perf_counter()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    times.append(time.perf_counter() - t)
print(json.dumps({"seconds": min(times[1:]), "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def measure(name: str, impl: str, reps: int) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT, name, impl, str(reps)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ["tiny", "full"])
def test_forward_backward_speed(name, benchmark):
    ours = benchmark.pedantic(measure, args=(name, "chunked", 3), rounds=1, iterations=1)
    seq = measure(name, "sequential", 1)
    a_time, a_mem = AUTHORS[name]
    print(f"\n{name}: chunked scan {ours['seconds']:.2f} s, peak {ours['peak_gb']:.2f} GB | "
          f"sequential {seq['seconds']:.2f} s, peak {seq['peak_gb']:.2f} GB | "
          f"speed-up vs sequential ×{seq['seconds'] / ours['seconds']:.1f}, "
          f"vs authors' reported {a_time} s ×{a_time / ours['seconds']:.2f}"
          + (f", memory vs authors' {a_mem} GB ×{ours['peak_gb'] / a_mem:.2f}" if a_mem else ""))
    benchmark.extra_info.update(ours=ours, sequential=seq)
    assert ours["seconds"] < seq["seconds"]
