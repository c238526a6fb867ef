"""Pareto fronts of accuracy against cost, shared by the pruning, deployment and comparison chapters."""
from __future__ import annotations

import numpy as np


def pareto_mask(cost, accuracy) -> np.ndarray:
    """True for the points no other point dominates (cost ≤ and accuracy ≥, one of them strictly):
    the best accuracy reachable at each cost."""
    cost, accuracy = np.asarray(cost, float), np.asarray(accuracy, float)
    keep = np.ones(len(cost), bool)
    for i in range(len(cost)):
        dominated = (cost <= cost[i]) & (accuracy >= accuracy[i]) & ((cost < cost[i]) | (accuracy > accuracy[i]))
        keep[i] = not dominated.any()
    return keep
