"""Graph convexity of class regions in a representation (Dorszewski, Tětková, Hansen 2024; SPEC §10).

Per layer, one vector per clip (its time mean). A K-nearest-neighbour graph (K = 10, Euclidean
edge lengths, symmetrised) approximates the data manifold. For each class, up to ``max_pairs``
same-class pairs are drawn; for each pair the shortest path is found and scores the fraction of
its *interior* nodes that carry the same label (a direct edge scores 1, no path scores 0). The
layer's convexity is the mean over all scored pairs × 100.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree


def knn_graph(X: np.ndarray, k: int = 10) -> csr_matrix:
    """Symmetrised kNN graph with Euclidean edge lengths."""
    n = len(X)
    k = min(k, n - 1)
    dist, idx = cKDTree(X).query(X, k=k + 1)
    rows = np.repeat(np.arange(n), k)
    cols, w = idx[:, 1:].ravel(), np.maximum(dist[:, 1:].ravel(), 1e-12)
    G = csr_matrix((w, (rows, cols)), shape=(n, n))
    return G.maximum(G.T)


def _path(pred: np.ndarray, src: int, dst: int) -> list[int] | None:
    if src == dst:
        return [src]
    if pred[dst] < 0:
        return None
    out = [dst]
    while out[-1] != src:
        out.append(int(pred[out[-1]]))
    return out[::-1]


def graph_convexity(X: np.ndarray, labels: np.ndarray, k: int = 10, max_pairs: int = 5000,
                    max_sources: int = 200, seed: int = 0) -> float:
    """Mean path-label purity over sampled same-class pairs, × 100 (see module docstring).

    Pairs are drawn from at most ``max_sources`` source clips per class (one Dijkstra run each),
    so the cost stays bounded for large sets."""
    X = np.asarray(X, np.float64)
    labels = np.asarray(labels)
    if len(X) != len(labels) or len(X) < 2:
        raise ValueError(f"graph_convexity: need ≥ 2 vectors with one label each, got {len(X)} and {len(labels)}")
    G = knn_graph(X, k)
    rng = np.random.default_rng(seed)
    scores = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < 2:
            continue
        sources = rng.choice(members, size=min(max_sources, len(members)), replace=False)
        per_source = max(1, max_pairs // len(sources))
        _, pred = dijkstra(G, directed=False, indices=sources, return_predecessors=True)
        for row, s in enumerate(sources):
            others = members[members != s]
            targets = rng.choice(others, size=min(per_source, len(others)), replace=False)
            for t in targets:
                path = _path(pred[row], int(s), int(t))
                if path is None:
                    scores.append(0.0)
                elif len(path) <= 2:
                    scores.append(1.0)
                else:
                    scores.append(float(np.mean(labels[path[1:-1]] == c)))
    if not scores:
        raise ValueError("graph_convexity: no class has two members")
    return 100.0 * float(np.mean(scores))


def layer_convexity(features: list[np.ndarray], labels: np.ndarray, **kw) -> list[float]:
    """Convexity of every layer from per-layer features (N, T, H) or (N, H) (time mean taken)."""
    return [graph_convexity(f.mean(axis=1) if f.ndim == 3 else f, labels, **kw) for f in features]
