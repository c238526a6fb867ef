"""Small shared fixtures for the tests: a micro model configuration and a learnable toy task."""
import numpy as np

from sedge.models.config import ModelConfig
from sedge.data import KeywordData, Split

MICRO = ModelConfig("micro", (4, 4), (4, 6), trainable_skip=True, batchnorm=True, init="orthogonal", n_classes=3)


def toy_data(n=48, length=400, seed=0) -> KeywordData:
    """Three classes that differ in level and pitch: learnable in a few steps."""
    rng = np.random.default_rng(seed)

    def split(m):
        y = rng.integers(0, 3, m)
        t = np.arange(length) / 16000
        x = (y[:, None] - 1.0) + 0.3 * np.sin(2 * np.pi * (500 + 1500 * y[:, None]) * t) \
            + 0.2 * rng.standard_normal((m, length))
        return Split((x * 12000).astype(np.int16), y.astype(np.int64), [f"s{i}" for i in range(m)])
    return KeywordData("toy", ["a", "b", "c"], split(n), split(24), split(24))
