"""PSNR and SSIM against values computed by hand."""

import numpy as np
import pytest

from gan_core.errors import DataError
from gan_core.evaluation.restoration import PSNR_CAP, psnr, ssim


def flat(value: float, n: int = 1, side: int = 12) -> np.ndarray:
    return np.full((n, side, side, 1), value, np.uint8)


def test_psnr_of_a_constant_offset_is_ten_log_of_peak_over_offset_squared():
    a, b = flat(100), flat(110)
    assert psnr(a, b)[0] == pytest.approx(10 * np.log10(255**2 / 10**2))
    assert psnr(a, a)[0] == PSNR_CAP


def test_psnr_of_a_mean_squared_error_of_one_is_48_13_db():
    a = flat(100, side=8)
    b = a.copy()
    b[0, ::2, :, 0] += 1  # half the pixels off by one, half by zero ...
    b[0, 1::2, :, 0] -= 1  # ... the other half by minus one: every squared error is 1
    assert psnr(a, b)[0] == pytest.approx(20 * np.log10(255), abs=1e-9)
    assert psnr(a, b)[0] == pytest.approx(48.1308, abs=1e-4)


def test_ssim_is_one_for_identical_images_and_the_luminance_term_for_flat_ones():
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (2, 16, 16, 1), dtype=np.uint8)
    np.testing.assert_allclose(ssim(noisy, noisy), 1.0)
    c1 = (0.01 * 255) ** 2
    # Flat images have no variance: SSIM is the luminance term alone, (2 mu_a mu_b + C1) / (mu_a² + mu_b² + C1).
    assert ssim(flat(100, side=9), flat(150, side=9))[0] == pytest.approx((2 * 100 * 150 + c1) / (100**2 + 150**2 + c1))


def test_ssim_falls_as_noise_grows_and_is_one_value_per_image():
    rng = np.random.default_rng(1)
    clean = rng.integers(60, 196, (3, 20, 20, 1)).astype(np.uint8)
    values = [ssim(clean, np.clip(clean + rng.normal(0, s, clean.shape), 0, 255).astype(np.uint8)) for s in (2, 10, 40)]
    assert all(v.shape == (3,) for v in values)
    assert (values[0] > values[1]).all() and (values[1] > values[2]).all()


def test_mismatched_or_tiny_images_are_one_sentence():
    with pytest.raises(DataError, match=r"same \(N, H, W, C\) shape; got \(1, 12, 12, 1\) and \(1, 10, 10, 1\)\.$"):
        psnr(flat(0), flat(0, side=10))
    with pytest.raises(DataError, match=r"^SSIM needs images of at least 7x7 pixels; got 5x5\.$"):
        ssim(flat(0, side=5), flat(0, side=5))
