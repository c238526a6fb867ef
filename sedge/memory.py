"""Keep freed memory in the process, so that big CPU tensors do not fault in fresh pages every batch.

glibc serves every block above its mmap threshold (32 MB at most) with a new ``mmap`` and returns
it to the kernel on ``free``. An S-Edge layer's output is a (batch, time, channels) tensor — 65 MB
per layer of ``full`` at 16 one-second clips — so every batch of every layer gets freshly mapped
pages, which the kernel must zero on first touch (``clear_page``; with the transparent huge pages
:mod:`sedge` asks for, 2 MB at a time). Measured with ``perf`` on an evaluation pass of ``full``
(16 clips, one thread, the fused kernel with a vectorised epilogue): about 20 % of the time went to
zeroing pages (the README's training-speed section has the timings).

:func:`keep_freed_memory` tells glibc (``mallopt``) to serve large blocks from the heap
(``M_MMAP_MAX`` = 0) and never to give the top of the heap back (``M_TRIM_THRESHOLD``), so a freed
layer output is reused by the next one. Nothing computed changes — only where the bytes live. The
cost: the process keeps its peak heap until it exits (training ``tiny`` at batch 16: about 15 %
more resident memory). The ``sedge`` command applies it to itself, and ``sedge book`` passes the
same setting to the notebook kernels through glibc's environment variables
(:func:`child_environment`). ``SEDGE_KEEP_FREED_MEMORY=0`` turns both off; on a C library other
than glibc they do nothing.
"""
from __future__ import annotations

import ctypes
import os
import platform

OPT_OUT = "SEDGE_KEEP_FREED_MEMORY"
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4                   # mallopt parameters (glibc's malloc.h)
TRIM_THRESHOLD = 2**31 - 1                                # the largest value mallopt takes (an int)


def _wanted() -> bool:
    return os.environ.get(OPT_OUT, "1") != "0" and platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def keep_freed_memory() -> bool:
    """Apply the setting to this process (from now on); True if glibc took it."""
    if not _wanted():
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    except (OSError, AttributeError):
        return False


def child_environment() -> dict[str, str | None]:
    """Environment variables that give a child process (a notebook kernel) the same setting from its
    start: glibc's ``MALLOC_MMAP_MAX_`` and ``MALLOC_TRIM_THRESHOLD_``; empty when opted out (values
    the user set already are kept)."""
    if not _wanted():
        return {}
    wanted = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD)}
    return {name: os.environ.get(name, value) for name, value in wanted.items()}
