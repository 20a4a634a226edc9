"""The Pairs view of image-to-image families (Generate): held-out examples as rows of named columns, with PSNR and SSIM.

Each row is one held-out image: its degraded input, the baseline, the generator's output and the
original last, every column scaled (nearest) to the original's size. Each column the size of the
original is scored against it.
"""

from __future__ import annotations

import numpy as np

from gan_core import families
from gan_core.data.images import interleaved, scaled_to, to_uint8
from gan_core.evaluation.restoration import psnr, ssim
from gan_core.generation.sampling import LoadedGenerator

MAX_ROWS = 16


def is_image_to_image(loaded: LoadedGenerator) -> bool:
    """True when the generator maps an image to an image (its family shows pairs, not latent views)."""
    return families.get(loaded.config.family).image_to_image


def pair_rows(loaded: LoadedGenerator, n: int, seed: int) -> tuple[np.ndarray, list[str], list[dict]]:
    """n rows of the family's columns as uint8 images (row-major), the column names, and each column's scores."""
    columns = families.get(loaded.config.family).pairs(loaded.model, loaded.config, min(n, MAX_ROWS), seed)
    names = list(columns)
    pictures = [to_uint8(images) for images in columns.values()]
    original = pictures[-1]
    scores = [
        {"column": name, "PSNR (dB)": float(np.mean(psnr(images, original))), "SSIM": float(np.mean(ssim(images, original)))}
        for name, images in zip(names[:-1], pictures[:-1])
        if images.shape == original.shape
    ]
    return interleaved([scaled_to(images, original.shape[1]) for images in pictures]), names, scores
