"""KID: the unbiased MMD² with the cubic polynomial kernel, checked by hand, blocked, and in a run's evaluation beside FD."""

import json

import numpy as np
import pytest

from gan_core.evaluation import evaluate as evaluation
from gan_core.evaluation import metrics
from gan_core.evaluation.evaluator import get_evaluator, reference_data


def by_hand(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD² written out term by term with Python loops."""
    d = x.shape[1]

    def k(u, v):
        return (float(np.dot(u, v)) / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_mmd2_matches_a_hand_computation_on_a_tiny_example():
    # d = 1, k(u, v) = (uv + 1)^3. Within x: k(0, 1) = 1, twice, over 2·1 -> 1. Within y: k(1, 2) = 27 -> 27.
    # Across: k(0,1) + k(0,2) + k(1,1) + k(1,2) = 1 + 1 + 8 + 27 = 37, over 4 -> 9.25. MMD² = 1 + 27 - 2 · 9.25 = 9.5.
    assert metrics.mmd2_unbiased(np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])) == pytest.approx(9.5)
    rng = np.random.default_rng(3)
    a, b = rng.random((7, 5)), rng.random((6, 5)) + 0.3
    assert metrics.mmd2_unbiased(a, b) == pytest.approx(by_hand(a, b), rel=1e-5)


def test_mmd2_is_the_same_in_small_row_blocks(monkeypatch):
    rng = np.random.default_rng(0)
    a, b = rng.random((300, 16)), rng.random((200, 16)) + 0.1
    whole = metrics.mmd2_unbiased(a, b)
    monkeypatch.setattr(metrics, "BLOCK_BYTES", 4 * 300 * 7)  # 7 rows a block
    assert metrics.mmd2_unbiased(a, b) == pytest.approx(whole, rel=1e-6)


def test_kid_of_identical_sets_is_about_zero_and_grows_with_a_shift():
    rng = np.random.default_rng(1)
    x = np.abs(rng.standard_normal((400, 32))).astype(np.float32)
    same = metrics.kernel_distance(x, x.copy(), subsets=20, subset_size=200)
    y = np.abs(rng.standard_normal((400, 32))).astype(np.float32)
    other_draw = metrics.kernel_distance(x, y, subsets=20, subset_size=200)
    shifted = [metrics.kernel_distance(x, x + shift, subsets=20, subset_size=200)[0] for shift in (0.1, 0.3, 1.0)]
    assert abs(same[0]) < 0.02 * shifted[1] and abs(other_draw[0]) < 0.02 * shifted[1]  # may be slightly negative
    assert shifted[0] < shifted[1] < shifted[2]
    assert same[1] > 0  # the draws differ, so their spread is measured


def test_kid_takes_at_most_the_smaller_set_and_its_draws_are_seeded():
    rng = np.random.default_rng(2)
    a, b = rng.random((30, 4)), rng.random((20, 4)) + 0.2
    mean, std = metrics.kernel_distance(a[:20], b, subsets=5, subset_size=1000)
    assert std == pytest.approx(0.0, abs=1e-9)  # every draw is the whole of both sets, in another order
    assert mean == pytest.approx(metrics.mmd2_unbiased(a[:20], b), rel=1e-6)
    assert metrics.kernel_distance(a, b, 10, 8, seed=4) == metrics.kernel_distance(a, b, 10, 8, seed=4)
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.mmd2_unbiased(a[:1], b)


def test_kid_sits_beside_fd_in_an_evaluation_with_its_real_floor_and_old_results_still_display(cache_dir):
    data = reference_data("mnist-5k")
    evaluator = get_evaluator("mnist-5k", cache_dir, data=data)
    n = 200
    unused = np.setdiff1d(np.arange(data.train.num_images), evaluation.subset(data.train.num_images, n))
    unused = np.random.default_rng(1).permutation(unused)  # the training split is sorted by class
    real = evaluation.evaluate_images(data.train.images[unused[:n]], None, evaluator, data, n)
    noise = np.random.default_rng(0).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
    fake = evaluation.evaluate_images(noise, None, evaluator, data, n)
    rows = {result_id: {row["key"]: row for row in result["metrics"]} for result_id, result in (("real", real), ("noise", fake))}
    assert [row["key"] for row in real["metrics"]][:2] == ["fd", "kid"]
    kid = rows["real"]["kid"]
    assert kid["uses_evaluator"] and kid["better"] == "lower" and kid["std"] > 0 and kid["floor_std"] > 0
    assert abs(kid["floor"]) < 2 * kid["floor_std"] and abs(kid["value"]) < 2 * kid["std"]  # real vs real: about 0
    assert rows["noise"]["kid"]["value"] > 5 * (abs(kid["floor"]) + kid["floor_std"])
    table = evaluation.metric_table(real)
    assert table[1]["Metric"] == "Kernel distance (KID, evaluator features) *" and " ± " in table[1]["Generated"]
    assert "kid" in evaluation.results_csv([real])

    old = json.loads(json.dumps(real))
    old["metrics"] = [row for row in old["metrics"] if row["key"] != "kid"]  # saved before KID was added
    assert [row["Metric"] for row in evaluation.metric_table(old)][0].startswith("Fréchet")
    assert "Kernel distance" not in evaluation.format_report(old)
