"""Evaluation of any sedge network: logits in eval mode, accuracy, confusion matrix.

    logits = model((wave − mean) / std),   accuracy = mean(argmax logits = label)
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from sedge.training.device import model_device


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 64, progress: bool = False) -> torch.Tensor:
    """Logits (on the CPU) for normalised waveforms ``x`` (N, L) in eval mode, computed on the model's device."""
    was_training = model.training
    model.eval()
    dev = model_device(model)
    out = []
    it = range(0, len(x), batch_size)
    for i in tqdm(it, desc="evaluating", unit="batch", disable=not progress, leave=False):
        out.append(model(x[i:i + batch_size].to(dev)).cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, getattr(getattr(model, "cfg", None), "n_classes", 0))


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(1) == labels).float().mean()) if len(labels) else float("nan")


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros((n, n), np.int64)
    np.add.at(m, (labels, pred), 1)
    return m
