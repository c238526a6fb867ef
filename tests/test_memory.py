"""sedge.memory: big freed blocks are reused instead of being unmapped and faulted in afresh."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from sedge.memory import OPT_OUT, child_environment, keep_freed_memory

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")

# Allocate, touch and free a 64 MB block five times; print the page faults of the last four rounds.
FAULTS = """
import json, resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from sedge.memory import keep_freed_memory
    assert keep_freed_memory()
counts = []
for _ in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = np.empty(16 * 2**20, np.float32)
    block.fill(1.0)
    del block
    counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(sum(counts[1:])))
"""


def _faults(mode: str, **env: str) -> int:
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True,
                         env={**os.environ, **env})
    return json.loads(out.stdout)


def test_keep_freed_memory_reuses_a_freed_block_instead_of_faulting_in_new_pages():
    default, kept = _faults("default"), _faults("keep")
    assert default >= 100, f"glibc did not unmap the freed 64 MB block ({default} faults): the test shows nothing"
    assert kept * 10 < default, f"{kept} page faults with the setting against {default} without"


def test_the_child_environment_gives_a_new_process_the_same_setting():
    env = child_environment()
    assert set(env) == {"MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_"}
    assert _faults("default", **env) * 10 < _faults("default")


def test_the_setting_can_be_turned_off(monkeypatch):
    monkeypatch.setenv(OPT_OUT, "0")
    assert child_environment() == {}
    assert keep_freed_memory() is False
