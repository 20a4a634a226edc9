"""The Pairs view of image-to-image families (Generate): held-out examples as rows of named columns, with PSNR and SSIM.

Each row is one held-out example: for SRGAN its degraded input, the baseline, the generator's output
and the original; for CycleGAN A, A->B, A->B->A, B, B->A, B->A->B. Every column is scaled (nearest) to
the largest size, and each column with a reference column is scored against it.
"""

from __future__ import annotations

import numpy as np

from gan_core import families
from gan_core.data.images import interleaved, scaled_to, to_uint8
from gan_core.evaluation.columns import column_scores
from gan_core.generation.sampling import LoadedGenerator

MAX_ROWS = 16


def is_image_to_image(loaded: LoadedGenerator) -> bool:
    """True when the generator maps an image to an image (its family shows pairs, not latent views)."""
    return families.get(loaded.config.family).image_to_image


def pair_rows(loaded: LoadedGenerator, n: int, seed: int) -> tuple[np.ndarray, list[str], list[dict]]:
    """n rows of the family's columns as uint8 images (row-major), the column names, and the scored columns' PSNR and SSIM."""
    family = families.get(loaded.config.family)
    columns = family.pairs(loaded.model, loaded.config, min(n, MAX_ROWS), seed, loaded.partners)
    side = max(column.images.shape[1] for column in columns.values())
    pictures = [scaled_to(to_uint8(column.images), side) for column in columns.values()]
    return interleaved(pictures), list(columns), column_scores(columns)
