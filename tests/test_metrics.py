"""gan_core.evaluation.metrics on hand-checked cases and on real-vs-real / real-vs-noise sets."""

import numpy as np
import pytest

from gan_core.data.datasets import load_dataset
from gan_core.evaluation import metrics


# ---- Fréchet distance ---------------------------------------------------------------------
def test_frechet_of_two_diagonal_gaussians_matches_the_closed_form():
    # ‖μ1−μ2‖² + Σ (√a − √b)² for diagonal covariances: 1 + 4 + (1 − 2)² + (2 − 1)² = 7
    value = metrics.frechet_from_statistics(np.zeros(2), np.diag([1.0, 4.0]), np.array([1.0, 2.0]), np.diag([4.0, 1.0]))
    assert value == pytest.approx(7.0)


def test_frechet_of_samples_approaches_the_gaussian_value_and_is_zero_for_one_set():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20_000, 3))
    # N(0, I) vs N(1, 4I) per dimension: 1 + (1 − 2)² = 2, times 3 dimensions
    assert metrics.frechet_distance(a, 2 * a + 1) == pytest.approx(6.0, rel=0.02)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_of_a_collapsed_set_is_finite():
    rng = np.random.default_rng(0)
    collapsed = np.ones((100, 4))  # zero covariance: a singular product
    assert np.isfinite(metrics.frechet_distance(rng.standard_normal((100, 4)), collapsed))


# ---- classifier score ---------------------------------------------------------------------
def test_classifier_score_is_the_class_count_for_confident_balanced_samples():
    probs = np.eye(4)[np.arange(40) % 4]  # every split of 4 holds each class once
    mean, std = metrics.classifier_score(probs, splits=10)
    assert mean == pytest.approx(4.0) and std == pytest.approx(0.0)


def test_classifier_score_is_one_for_uninformative_or_single_class_samples():
    assert metrics.classifier_score(np.full((50, 10), 0.1))[0] == pytest.approx(1.0)
    assert metrics.classifier_score(np.eye(10)[np.zeros(50, int)])[0] == pytest.approx(1.0)


# ---- classes ------------------------------------------------------------------------------
def test_class_histogram_counts_the_most_likely_class():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    np.testing.assert_allclose(metrics.class_histogram(probs, 3), [0.5, 0.25, 0.25])
    np.testing.assert_allclose(metrics.class_histogram(probs[:1], 3), [1.0, 0.0, 0.0])


def test_a_set_missing_three_classes_covers_seven():
    hist = np.array([1 / 7] * 7 + [0.0] * 3)
    assert metrics.classes_covered(hist) == 7


def test_a_class_counts_as_covered_from_a_quarter_of_its_expected_share():
    expected = np.array([0.5, 0.3, 0.2])
    assert metrics.classes_covered(np.array([0.9, 0.075, 0.025]), expected) == 2  # 0.075 = ¼·0.3, 0.025 < ¼·0.2
    assert metrics.classes_covered(np.array([0.93, 0.07, 0.0]), expected) == 1


def test_kl_divergence_hand_checked_values():
    assert metrics.kl_divergence([0.25] * 4, [0.25] * 4) == pytest.approx(0.0)
    assert metrics.kl_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(np.log(2))
    assert metrics.kl_divergence([1 / 7] * 7 + [0] * 3, [0.1] * 10) == pytest.approx(np.log(10 / 7))
    assert np.isfinite(metrics.kl_divergence([0.5, 0.5], [1.0, 0.0]))


# ---- k-NN metrics -------------------------------------------------------------------------
def test_precision_recall_density_coverage_hand_checked_in_one_dimension():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])  # every 1-NN radius is 1
    fake = np.array([[0.5], [10.0]])  # 1-NN radius of each fake point: 9.5
    result = metrics.prdc(real, fake, k_pr=1, k_dc=1)
    assert result["precision"] == 0.5  # 0.5 lies in a real ball, 10 does not
    assert result["recall"] == 1.0  # every real point lies within 9.5 of 0.5
    assert result["density"] == 1.0  # 0.5 lies in the balls of 0 and 1: (2 + 0) / (1 · 2)
    assert result["coverage"] == 0.5  # the balls of 0 and 1 hold a fake point
    assert metrics.precision_recall(real, fake, k=1) == (0.5, 1.0)
    assert metrics.density_coverage(real, fake, k=1) == (1.0, 0.5)


def test_a_set_against_itself_gets_full_precision_recall_and_coverage():
    x = np.random.default_rng(0).standard_normal((300, 8))
    result = metrics.prdc(x, x)
    assert result["precision"] == result["recall"] == result["coverage"] == 1.0


def test_real_vs_far_noise_has_zero_precision_and_recall():
    rng = np.random.default_rng(0)
    result = metrics.prdc(rng.standard_normal((300, 8)), rng.standard_normal((300, 8)) + 6.0)
    assert result == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_knn_metrics_give_the_same_answer_in_small_blocks(monkeypatch):
    rng = np.random.default_rng(1)
    real, fake = rng.standard_normal((200, 5)), rng.standard_normal((150, 5)) * 1.3
    whole = metrics.prdc(real, fake)
    monkeypatch.setattr(metrics, "BLOCK_BYTES", 8 * 200 * 7)  # 7 rows per block
    assert metrics.prdc(real, fake) == whole


def test_knn_radii_refuse_too_few_samples():
    with pytest.raises(ValueError, match="k=3 needs more than 3 samples"):
        metrics.knn_radii(np.zeros((3, 2)), (3,))


def test_nearest_neighbours_hand_checked_and_blocked(monkeypatch):
    pool = np.array([[0.0], [3.0], [10.0]])
    queries = np.array([[1.0], [9.0]])
    idx, dist = metrics.nearest_neighbours(queries, pool, k=2)
    np.testing.assert_array_equal(idx, [[0, 1], [2, 1]])
    np.testing.assert_allclose(dist, [[1.0, 2.0], [1.0, 6.0]])
    monkeypatch.setattr(metrics, "BLOCK_BYTES", 4 * 3)  # one query per block
    idx_blocked, dist_blocked = metrics.nearest_neighbours(queries, pool, k=2)
    np.testing.assert_array_equal(idx_blocked, idx)
    np.testing.assert_allclose(dist_blocked, dist)


def test_nearest_neighbours_find_an_exact_copy_among_training_images():
    train = load_dataset("mnist-5k", "train").images
    copies = train[[7, 4000, 123]]
    idx, dist = metrics.nearest_neighbours(copies, train)
    np.testing.assert_array_equal(idx[:, 0], [7, 4000, 123])
    np.testing.assert_allclose(dist[:, 0], 0.0, atol=1e-2)


# ---- sliced Wasserstein -------------------------------------------------------------------
def test_swd_points_is_the_mean_gap_of_sorted_values_in_one_dimension():
    a = np.array([[0.0], [1.0], [2.0]])
    assert metrics.swd_points(a, a + 1.0) == pytest.approx(1.0)
    assert metrics.swd_points(a, a[::-1]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="equal size"):
        metrics.swd_points(a, a[:2])


def test_laplacian_pyramid_levels_and_exact_reconstruction():
    images = load_dataset("mnist-5k", "test").images[:4].astype(np.float64)
    levels = metrics.laplacian_pyramid(images)
    assert [level.shape[1:3] for level in levels] == [(28, 28), (14, 14), (7, 7)]
    rebuilt = levels[-1]
    for level in reversed(levels[:-1]):
        rebuilt = level + metrics.pyramid_up(rebuilt, level.shape[1:3])
    np.testing.assert_allclose(rebuilt, images, atol=1e-9)


def test_sliced_wasserstein_real_vs_real_is_far_below_real_vs_noise():
    test = load_dataset("mnist-5k", "test").images
    train = load_dataset("mnist-5k", "train").images
    rng = np.random.default_rng(0)
    held = test[rng.permutation(len(test))[:200]]  # the splits are sorted by class: draw at random
    real = np.mean(metrics.sliced_wasserstein(held, train[rng.permutation(len(train))[:200]]))
    noise = np.mean(metrics.sliced_wasserstein(held, rng.integers(0, 256, (200, 28, 28, 1), dtype=np.uint8)))
    assert noise > 5 * real
