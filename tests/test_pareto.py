import numpy as np

from sedge.report.pareto import pareto_mask


def test_pareto_mask_keeps_exactly_the_undominated_points():
    cost = [1, 2, 3, 2, 4, 1]
    acc = [50, 60, 55, 70, 80, 40]
    # (2, 60) loses to (2, 70); (3, 55) to (2, 70); (1, 40) to (1, 50)
    assert pareto_mask(cost, acc).tolist() == [True, False, False, True, True, False]
    assert pareto_mask([1, 1], [5, 5]).tolist() == [True, True]          # ties dominate neither
    rng = np.random.default_rng(0)
    c, a = rng.random(50), rng.random(50)
    m = pareto_mask(c, a)
    front = sorted(zip(c[m], a[m]))
    assert all(a2 > a1 for (_, a1), (_, a2) in zip(front, front[1:]))   # more cost buys more accuracy
