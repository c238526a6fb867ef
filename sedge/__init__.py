"""sedge: efficient raw-audio keyword classification with S-Edge state space models.

Importing sedge asks PyTorch's CPU allocator for transparent huge pages on large tensors
(``THP_MEM_ALLOC_ENABLE``), which removes most page-fault time from training on CPU; set the
variable to 0 yourself to opt out.
"""
import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

__version__ = "0.1.0"
