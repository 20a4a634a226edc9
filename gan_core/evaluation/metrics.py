"""Sample-quality metrics as pure numpy functions on feature vectors, class probabilities and images.

Every pairwise computation (distances, KID kernel sums) is done in row blocks of at most BLOCK_BYTES, so 10,000 × 10,000
feature sets or 2,000 × 60,000 pixel sets never build a full distance matrix in memory.
"""

from __future__ import annotations

import warnings

import numpy as np

BLOCK_BYTES = 64 * 1024 * 1024
SWD_KERNEL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


# ---- Fréchet distance ---------------------------------------------------------------------
def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (rows are samples) in float64."""
    x = np.asarray(features, dtype=np.float64)
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def frechet_from_statistics(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """‖μ1−μ2‖² + Tr(Σ1 + Σ2 − 2(Σ1Σ2)^½) between two Gaussians."""
    from scipy import linalg  # imported here: 0.3 s that the dashboard's Train page (via the report) need not pay

    with warnings.catch_warnings():  # a singular product is expected (e.g. collapsed samples) and handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():  # nudge both covariances, as pytorch-fid does
            offset = np.eye(sigma1.shape[0]) * 1e-6
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return float(max(value, 0.0))


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (FID-style)."""
    return frechet_from_statistics(*feature_statistics(features_a), *feature_statistics(features_b))


# ---- kernel distance (KID) ----------------------------------------------------------------
def polynomial_kernel_sum(a: np.ndarray, b: np.ndarray, skip_diagonal: bool = False) -> float:
    """Sum of k(x, y) = (x·y/d + 1)³ over all rows x of a and y of b (without the diagonal when a is b), in row blocks.

    The kernel values are float32 (as the features are; twice as fast) and summed in float64.
    """
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    d = a.shape[1]
    total = 0.0
    step = _block_rows(len(b), itemsize=4)
    for start in range(0, len(a), step):
        k = a[start:start + step] @ b.T / np.float32(d) + np.float32(1.0)
        k = k * k * k
        if skip_diagonal:
            rows = np.arange(len(k))
            k[rows, start + rows] = 0.0
        total += float(k.sum(dtype=np.float64))
    return total


def mmd2_unbiased(a: np.ndarray, b: np.ndarray) -> float:
    """The unbiased estimate of MMD² between two feature sets under the cubic polynomial kernel (may be slightly negative)."""
    m, n = len(a), len(b)
    if min(m, n) < 2:
        raise ValueError(f"The kernel distance needs at least 2 samples on each side; got {m} and {n}.")
    within_a = polynomial_kernel_sum(a, a, skip_diagonal=True) / (m * (m - 1))
    within_b = polynomial_kernel_sum(b, b, skip_diagonal=True) / (n * (n - 1))
    return within_a + within_b - 2.0 * polynomial_kernel_sum(a, b) / (m * n)


def kernel_distance(
    features_a: np.ndarray, features_b: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0,
) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018): mean and std of the unbiased MMD² over `subsets` random draws of
    min(subset_size, both sizes) rows from each set without replacement, as torch-fidelity computes it."""
    a, b = np.asarray(features_a), np.asarray(features_b)
    size = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    values = [
        mmd2_unbiased(a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)])
        for _ in range(subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


# ---- classifier score ---------------------------------------------------------------------
def classifier_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Inception-score style exp E[KL(p(y|x) ‖ p(y))]: mean and std over `splits` parts."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    scores = []
    for part in np.array_split(p, min(splits, len(p))):
        marginal = part.mean(axis=0, keepdims=True)
        scores.append(np.exp(np.mean(np.sum(part * (np.log(part) - np.log(marginal)), axis=1))))
    return float(np.mean(scores)), float(np.std(scores))


# ---- class distribution -------------------------------------------------------------------
def class_histogram(probs: np.ndarray, num_classes: int) -> np.ndarray:
    """Share of samples whose most likely class is each class (sums to 1)."""
    counts = np.bincount(np.argmax(probs, axis=1), minlength=num_classes)
    return counts / max(1, counts.sum())


def classes_covered(hist: np.ndarray, expected: np.ndarray | None = None, fraction: float = 0.25) -> int:
    """Classes that get at least `fraction` of their expected share (default: uniform)."""
    hist = np.asarray(hist, dtype=np.float64)
    expected = np.full(len(hist), 1.0 / len(hist)) if expected is None else np.asarray(expected, dtype=np.float64)
    return int(np.sum(hist >= fraction * expected))


def kl_divergence(p: np.ndarray, q: np.ndarray, floor: float = 1e-12) -> float:
    """KL(p ‖ q) in nats; terms with p = 0 count 0 and q is floored at `floor` so the value stays finite."""
    p = np.asarray(p, dtype=np.float64)
    q = np.maximum(np.asarray(q, dtype=np.float64), floor)
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


# ---- distances ----------------------------------------------------------------------------
def _block_rows(n_cols: int, itemsize: int = 8) -> int:
    return max(1, BLOCK_BYTES // max(1, n_cols * itemsize))


def _sq_distances(a: np.ndarray, b: np.ndarray, b_norms: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between the rows of a and b (clipped at 0)."""
    d = np.sum(a * a, axis=1, keepdims=True) + b_norms[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def knn_radii(features: np.ndarray, ks: tuple[int, ...]) -> dict[int, np.ndarray]:
    """Distance from every row to its k-th nearest other row, for each k in ks."""
    x = np.asarray(features, dtype=np.float64)
    if max(ks) >= len(x):
        raise ValueError(f"k={max(ks)} needs more than {max(ks)} samples; got {len(x)}.")
    norms = np.sum(x * x, axis=1)
    radii = {k: np.empty(len(x)) for k in ks}
    step = _block_rows(len(x))
    for start in range(0, len(x), step):
        d = _sq_distances(x[start:start + step], x, norms)
        smallest = np.sort(np.partition(d, max(ks), axis=1)[:, : max(ks) + 1], axis=1)
        for k in ks:  # column 0 is the row itself (distance 0)
            radii[k][start:start + step] = np.sqrt(smallest[:, k])
    return radii


def prdc(real: np.ndarray, fake: np.ndarray, k_pr: int = 3, k_dc: int = 5) -> dict[str, float]:
    """Precision/recall (k-NN balls, k_pr) and density/coverage (real balls, k_dc) in one blocked pass."""
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    real_radii = knn_radii(real, (k_pr, k_dc))
    fake_radius = knn_radii(fake, (k_pr,))[k_pr]
    real_norms = np.sum(real * real, axis=1)
    in_real_pr = np.zeros(len(fake), bool)
    density_hits = 0
    covered = np.zeros(len(real), bool)
    recalled = np.zeros(len(real), bool)
    step = _block_rows(len(real))
    for start in range(0, len(fake), step):
        d = np.sqrt(_sq_distances(fake[start:start + step], real, real_norms))
        in_real_pr[start:start + step] = (d <= real_radii[k_pr][None, :]).any(axis=1)
        inside_dc = d <= real_radii[k_dc][None, :]
        density_hits += int(inside_dc.sum())
        covered |= inside_dc.any(axis=0)
        recalled |= (d <= fake_radius[start:start + step, None]).any(axis=0)
    return {
        "precision": float(in_real_pr.mean()),
        "recall": float(recalled.mean()),
        "density": float(density_hits / (k_dc * len(fake))),
        "coverage": float(covered.mean()),
    }


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Kynkäänniemi et al. 2019: share of fake inside the real k-NN manifold, and of real inside the fake one."""
    result = prdc(real, fake, k_pr=k, k_dc=k)
    return result["precision"], result["recall"]


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Naeem et al. 2020: mean count of real k-NN balls holding each fake / k, and share of real balls hit."""
    result = prdc(real, fake, k_pr=k, k_dc=k)
    return result["density"], result["coverage"]


def nearest_neighbours(queries: np.ndarray, pool: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Indices and Euclidean distances (N×k, nearest first) of each query's k nearest rows of pool (flattened)."""
    q = np.asarray(queries, dtype=np.float32).reshape(len(queries), -1)
    p = np.asarray(pool, dtype=np.float32).reshape(len(pool), -1)
    norms = np.sum(p.astype(np.float64) ** 2, axis=1).astype(np.float32)
    indices = np.empty((len(q), k), np.int64)
    distances = np.empty((len(q), k))
    step = _block_rows(len(p), itemsize=4)
    for start in range(0, len(q), step):
        d = _sq_distances(q[start:start + step], p, norms)
        part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < len(p) else np.tile(np.arange(len(p)), (len(d), 1))
        part_d = np.take_along_axis(d, part, axis=1)
        order = np.argsort(part_d, axis=1)
        indices[start:start + step] = np.take_along_axis(part, order, axis=1)
        distances[start:start + step] = np.sqrt(np.take_along_axis(part_d, order, axis=1))
    return indices, distances


# ---- sliced Wasserstein distance on Laplacian-pyramid patches -----------------------------
def _blur(images: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    out = ndimage.correlate1d(images, SWD_KERNEL, axis=1, mode="reflect")
    return ndimage.correlate1d(out, SWD_KERNEL, axis=2, mode="reflect")


def pyramid_down(images: np.ndarray) -> np.ndarray:
    """Blur with the 5-tap binomial kernel and keep every second row and column."""
    return _blur(images)[:, ::2, ::2]


def pyramid_up(images: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Insert zeros between pixels, blur (×4 to keep brightness) and crop to (H, W)."""
    n, h, w, c = images.shape
    up = np.zeros((n, 2 * h, 2 * w, c), dtype=images.dtype)
    up[:, ::2, ::2] = images
    return 4.0 * _blur(up)[:, : shape[0], : shape[1]]


def laplacian_pyramid(images: np.ndarray, min_side: int = 7) -> list[np.ndarray]:
    """Band-pass levels, finest first, ending with the low-pass image whose smaller side is at least min_side."""
    current = np.asarray(images, dtype=np.float64)
    levels = []
    while min(current.shape[1:3]) // 2 >= min_side:
        smaller = pyramid_down(current)
        levels.append(current - pyramid_up(smaller, current.shape[1:3]))
        current = smaller
    levels.append(current)
    return levels


def _patches(level: np.ndarray, size: int, per_image: int, rng: np.random.Generator) -> np.ndarray:
    """per_image random size×size patches of every image, flattened to (N·per_image, size·size·C)."""
    n, h, w, c = level.shape
    size_h, size_w = min(size, h), min(size, w)
    ys = rng.integers(0, h - size_h + 1, (n, per_image))
    xs = rng.integers(0, w - size_w + 1, (n, per_image))
    rows = ys[..., None] + np.arange(size_h)
    cols = xs[..., None] + np.arange(size_w)
    idx = np.arange(n)[:, None, None, None]
    patches = level[idx, rows[..., :, None], cols[..., None, :]]  # (n, per_image, size_h, size_w, c)
    return patches.reshape(n * per_image, size_h * size_w * c)


def swd_points(a: np.ndarray, b: np.ndarray, directions: int = 128, repeats: int = 4, seed: int = 0) -> float:
    """Sliced Wasserstein-1 distance between equal-size point sets: mean |sorted projections| gap over random unit directions."""
    if len(a) != len(b):
        raise ValueError(f"swd_points needs point sets of equal size; got {len(a)} and {len(b)}.")
    rng = np.random.default_rng(seed)
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    results = []
    for _ in range(repeats):
        dirs = rng.standard_normal((directions, a.shape[1]))
        dirs = (dirs / np.linalg.norm(dirs, axis=1, keepdims=True)).astype(np.float32)
        projected_a = np.sort(dirs @ a.T, axis=1)  # sort along contiguous rows: much faster than axis 0
        projected_b = np.sort(dirs @ b.T, axis=1)
        results.append(np.mean(np.abs(projected_a - projected_b), dtype=np.float64))
    return float(np.mean(results))


def sliced_wasserstein(
    images_a: np.ndarray, images_b: np.ndarray, patch_size: int = 7, max_descriptors: int = 32768,
    directions: int = 128, repeats: int = 4, seed: int = 0,
) -> list[float]:
    """SWD per Laplacian-pyramid level (finest first) between random 7×7 patches of two image sets.

    As in ProGAN/TF-GAN, with two documented simplifications: each level's patches are normalised by the
    per-channel mean and std of both sets pooled (so a brightness shift still counts), and at most
    `max_descriptors` patches per set and level are drawn (up to 128 per image).
    """
    n = min(len(images_a), len(images_b))
    per_image = int(np.clip(max_descriptors // max(1, n), 1, 128))
    rng = np.random.default_rng(seed)
    levels_a = laplacian_pyramid(np.asarray(images_a[:n], dtype=np.float64))
    levels_b = laplacian_pyramid(np.asarray(images_b[:n], dtype=np.float64))
    distances = []
    for level_a, level_b in zip(levels_a, levels_b):
        channels = level_a.shape[-1]
        pa = _patches(level_a, patch_size, per_image, rng).reshape(-1, channels)
        pb = _patches(level_b, patch_size, per_image, rng).reshape(-1, channels)
        both = np.concatenate([pa, pb])
        mean, std = both.mean(axis=0), both.std(axis=0) + 1e-8
        pa = ((pa - mean) / std).reshape(n * per_image, -1)
        pb = ((pb - mean) / std).reshape(n * per_image, -1)
        distances.append(swd_points(pa, pb, directions, repeats, seed))
    return distances
