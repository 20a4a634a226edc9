"""The Generate page's views of style-based generators: a style-mixing grid, and paths in z beside paths in w.

Every function takes the truncation psi (1: none) and whether the per-pixel noise is on (the
generator's fixed noise maps) or off (zeros), and returns uint8 images with the grid's columns.
"""

from __future__ import annotations

import numpy as np

from gan_core import families
from gan_core.data.images import to_uint8
from gan_core.errors import RunError
from gan_core.families.stylegan import StyleSampler
from gan_core.generation.latents import interpolate, seeded_latents
from gan_core.generation.sampling import LoadedGenerator, check_truncation

VIEW = "Style mixing"
MAX_SOURCES = 8


def is_style_based(loaded: LoadedGenerator) -> bool:
    """True when the run's family draws through per-block styles (its Generate page has the style views)."""
    return families.get(loaded.config.family).style_based and "w_avg" in loaded.partners


def style_sampler(loaded: LoadedGenerator, psi: float) -> StyleSampler:
    """The run's mapping and synthesis networks with its average w, after checking psi."""
    if not is_style_based(loaded):
        raise RunError(f"The {loaded.config.family} family has no styles to mix; style views need a StyleGAN run's checkpoint.")
    check_truncation(families.get(loaded.config.family), psi)
    return StyleSampler(loaded.model, loaded.partners["w_avg"])


def block_names(loaded: LoadedGenerator) -> list[str]:
    """The size each style block draws at, in order ("7x7", "14x14", ...): what the cut-over slider moves across."""
    synthesis = loaded.model.get_layer("synthesis")
    noises = synthesis.inputs[len(synthesis.inputs) // 2 :]
    return [f"{noise.shape[1]}x{noise.shape[2]}" for noise in noises]


def mixing_grid(
    loaded: LoadedGenerator, row_seeds: list[int], column_seeds: list[int], cut: int, psi: float = 1.0, noise: bool = True
) -> tuple[np.ndarray, int]:
    """The style-mixing grid: a blank corner, the column seeds' images across the top, the row seeds' images down the left,
    and in each cell the row's w for the blocks before `cut` (coarse: pose, thickness) with the column's w from `cut` on (fine)."""
    styles = style_sampler(loaded, psi)
    if not 1 <= cut < styles.blocks:
        raise RunError(f"the cut-over block must be between 1 and {styles.blocks - 1}; got {cut}.")
    for name, seeds in (("row", row_seeds), ("column", column_seeds)):
        if not 1 <= len(seeds) <= MAX_SOURCES:
            raise RunError(f"give between 1 and {MAX_SOURCES} {name} seeds; got {len(seeds)}.")
    w_rows, w_columns = (styles.w(_latents_of(loaded, seeds), psi) for seeds in (row_seeds, column_seeds))
    rows, columns = len(row_seeds), len(column_seeds)
    coarse = np.repeat(w_rows, columns, axis=0)
    fine = np.tile(w_columns, (rows, 1))
    mixed = styles.images([coarse if block < cut else fine for block in range(styles.blocks)], noise)
    sources_rows, sources_columns = styles.images(w_rows, noise), styles.images(w_columns, noise)
    corner = np.full_like(sources_rows[:1], -1.0)
    grid = [corner, sources_columns]
    for r in range(rows):
        grid += [sources_rows[r : r + 1], mixed[r * columns : (r + 1) * columns]]
    return to_uint8(np.concatenate(grid)), columns + 1


def z_and_w_paths(
    loaded: LoadedGenerator, seed_a: int, seed_b: int, steps: int, psi: float = 1.0, noise: bool = True
) -> tuple[np.ndarray, int]:
    """Two rows from seed A to seed B: the top along the great circle in z, the bottom along a straight line in w."""
    styles = style_sampler(loaded, psi)
    z = _latents_of(loaded, [seed_a, seed_b])
    in_z = styles.w(interpolate(z[0], z[1], steps, spherical=True), psi)
    ends = styles.w(z, psi)
    in_w = interpolate(ends[0], ends[1], steps, spherical=False)
    return to_uint8(styles.images(np.concatenate([in_z, in_w]), noise)), steps


def _latents_of(loaded: LoadedGenerator, seeds: list[int]) -> np.ndarray:
    """The latent vector of each seed, one row per seed (each seed's first vector, as Grid draws it)."""
    return np.concatenate([seeded_latents(1, loaded.latent_dim, seed) for seed in seeds])
