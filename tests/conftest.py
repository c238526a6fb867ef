import os

os.environ.setdefault("SEDGE_CACHE", os.path.join(os.path.dirname(__file__), "..", "cache"))

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_addoption(parser):
    parser.addoption("--benchmarks", action="store_true", default=False,
                     help="run the speed/memory benchmarks under tests/benchmarks")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--benchmarks"):
        return
    skip = pytest.mark.skip(reason="benchmark: run with `make benchmark` (pytest tests/benchmarks --benchmarks)")
    for item in items:
        if "benchmarks" in item.path.parts:
            item.add_marker(skip)
