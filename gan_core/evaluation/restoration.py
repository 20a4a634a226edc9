"""Full-reference image quality: PSNR and SSIM of restored or super-resolved images against the originals.

Both take uint8 images (N, H, W, C) and return one value per image. SSIM is Wang et al. (2004)
with a 7x7 Gaussian window (sigma 1.5, small enough for 28x28 digits), K1 = 0.01, K2 = 0.03,
computed per channel over the window positions that fit inside the image and averaged.
"""

from __future__ import annotations

import numpy as np

from gan_core.errors import DataError

DATA_RANGE = 255.0
WINDOW, SIGMA = 7, 1.5
K1, K2 = 0.01, 0.03
PSNR_CAP = 100.0  # identical images: the distance is 0 and the PSNR infinite; reported as this many dB


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 4:
        raise DataError(f"Images to compare must have the same (N, H, W, C) shape; got {a.shape} and {b.shape}.")
    return a.astype(np.float64), b.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Peak signal-to-noise ratio in dB of each pair, 10 log10(255² / mean squared error)."""
    a, b = _pair(a, b)
    mse = np.mean((a - b) ** 2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        values = 10.0 * np.log10(DATA_RANGE**2 / mse)
    return np.minimum(values, PSNR_CAP)


def _window() -> np.ndarray:
    x = np.arange(WINDOW) - (WINDOW - 1) / 2
    w = np.exp(-(x**2) / (2 * SIGMA**2))
    return w / w.sum()


def _blur(x: np.ndarray) -> np.ndarray:
    """Separable Gaussian filtering over height and width, 'valid' positions only."""
    w = _window()
    rows = sum(w[i] * x[:, i : x.shape[1] - WINDOW + 1 + i] for i in range(WINDOW))
    return sum(w[i] * rows[:, :, i : x.shape[2] - WINDOW + 1 + i] for i in range(WINDOW))


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Structural similarity of each pair, in [-1, 1] (1 for identical images)."""
    a, b = _pair(a, b)
    if min(a.shape[1:3]) < WINDOW:
        raise DataError(f"SSIM needs images of at least {WINDOW}x{WINDOW} pixels; got {a.shape[1]}x{a.shape[2]}.")
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    mu_a, mu_b = _blur(a), _blur(b)
    var_a = _blur(a * a) - mu_a**2
    var_b = _blur(b * b) - mu_b**2
    cov = _blur(a * b) - mu_a * mu_b
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return index.mean(axis=(1, 2, 3))
