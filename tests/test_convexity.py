import numpy as np
import pytest

from sedge.compress.convexity import graph_convexity, knn_graph, layer_convexity


def test_separated_clusters_score_100():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.1, (60, 5))
    b = rng.normal(10, 0.1, (60, 5))
    X, y = np.concatenate([a, b]), np.repeat([0, 1], 60)
    assert graph_convexity(X, y) == pytest.approx(100.0)


def test_interleaved_classes_score_low():
    rng = np.random.default_rng(1)
    X = rng.normal(0, 1, (200, 4))
    y = rng.integers(0, 2, 200)                     # labels independent of position
    assert 30 < graph_convexity(X, y) < 70


def test_a_non_convex_class_scores_below_a_convex_one():
    """Class 0 on both ends of a line with class 1 in the middle: paths between the ends cross 1."""
    t = np.linspace(0, 1, 300)[:, None]
    X = np.concatenate([t, 0.01 * np.sin(40 * t)], axis=1)
    split = ((t[:, 0] > 0.4) & (t[:, 0] < 0.6)).astype(int)
    convex = (t[:, 0] > 0.5).astype(int)
    assert graph_convexity(X, convex) == pytest.approx(100.0)
    assert graph_convexity(X, split) < 95          # end-to-end class-0 paths cross class 1


def test_graph_is_symmetric_and_layer_means_taken():
    X = np.random.default_rng(2).normal(size=(30, 3))
    G = knn_graph(X, 5)
    assert (G != G.T).nnz == 0 and G.nnz >= 30 * 5
    feats = [np.random.default_rng(3).normal(size=(30, 7, 3))] * 2
    y = np.repeat([0, 1, 2], 10)
    assert len(layer_convexity(feats, y, k=5)) == 2


def test_bad_input():
    with pytest.raises(ValueError):
        graph_convexity(np.zeros((1, 2)), np.zeros(1))
    with pytest.raises(ValueError, match="no class has two members"):
        graph_convexity(np.eye(3), np.arange(3))
