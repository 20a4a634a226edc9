"""Latent vectors for the Generate page: seeded grids, interpolations and one-dimension walks.

`label` selects classes of a conditional generator: an int for one class, "rows" for one row
per class (every row shares the same latent vectors), None for the default (classes cycle in
grids). Every function returns (uint8 images, labels or None, grid columns).
"""

from __future__ import annotations

from typing import Literal, Union

import numpy as np

from gan_core import families
from gan_core.data.images import interleaved, scaled_to, to_uint8
from gan_core.errors import RunError
from gan_core.families.adversarial import run_generator as generate
from gan_core.families.adversarial import shrunk
from gan_core.generation.sampling import LoadedGenerator, check_truncation, sample

ROWS = "rows"
MAX_STEPS = 64
Label = Union[int, None, Literal["rows"]]
Images = tuple[np.ndarray, Union[np.ndarray, None], int]


def seeded_latents(n: int, latent_dim: int, seed: int) -> np.ndarray:
    """n standard-normal latent vectors from a seed (the same ones `generation.sample` uses)."""
    if seed < 0:
        raise RunError(f"seed must be 0 or more; got {seed}.")
    return np.random.default_rng(seed).standard_normal((n, latent_dim), dtype=np.float32)


def interpolate(z0: np.ndarray, z1: np.ndarray, steps: int, spherical: bool = True) -> np.ndarray:
    """`steps` vectors from z0 to z1: along the great circle with linearly changing length, or straight."""
    _check_steps(steps)
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    norm0, norm1 = np.linalg.norm(z0), np.linalg.norm(z1)
    if not spherical or min(norm0, norm1) == 0:
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    u0, u1 = z0 / norm0, z1 / norm1
    angle = np.arccos(np.clip(np.dot(u0, u1), -1.0, 1.0))
    if np.sin(angle) < 1e-6:
        directions = (1 - t) * u0 + t * u1
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    else:
        directions = (np.sin((1 - t) * angle) * u0 + np.sin(t * angle) * u1) / np.sin(angle)
    return (directions * ((1 - t) * norm0 + t * norm1)).astype(np.float32)


def latent_walk(z: np.ndarray, dim: int, values: np.ndarray) -> np.ndarray:
    """Copies of z with only dimension `dim` set to each of `values`."""
    z = np.asarray(z, np.float32)
    if not 0 <= dim < z.shape[-1]:
        raise RunError(f"dimension must be between 0 and {z.shape[-1] - 1}; got {dim}.")
    walk = np.repeat(z[None, :], len(values), axis=0)
    walk[:, dim] = values
    return walk


def class_choices(loaded: LoadedGenerator) -> dict[Label, str]:
    """The class control's options and their captions: one row per class, then each class."""
    names = loaded.class_names or tuple(str(i) for i in range(loaded.num_classes))
    return {ROWS: "One row per class", **{i: f"{i}: {name}" if name != str(i) else name for i, name in enumerate(names)}}


def grid_for(loaded: LoadedGenerator, n: int, seed: int, label: Label = None, truncation: float = 1.0) -> Images:
    """n images from a seed, truncated by psi (1: none); "rows" gives one row per class with the same z in each column."""
    if label != ROWS:
        images, labels = sample(loaded, n, seed=seed, label=label, truncation=truncation)
        conditional_cols = loaded.conditional and label is None and loaded.num_classes > 1
        return images, labels, min(n, loaded.num_classes) if conditional_cols else int(np.ceil(np.sqrt(n)))
    check_truncation(families.get(loaded.config.family), truncation)
    per_class = max(1, n // max(1, loaded.num_classes))
    return _rows(loaded, shrunk(seeded_latents(per_class, loaded.latent_dim, seed), truncation), label)


def interpolation_images(
    loaded: LoadedGenerator, seed_a: int, seed_b: int, steps: int, spherical: bool = True, label: Label = None
) -> Images:
    """Images along the path from seed A's latent vector to seed B's (one row per class for "rows"/None)."""
    z0 = seeded_latents(1, loaded.latent_dim, seed_a)[0]
    z1 = seeded_latents(1, loaded.latent_dim, seed_b)[0]
    return _rows(loaded, interpolate(z0, z1, steps, spherical), label)


def walk_images(
    loaded: LoadedGenerator, seed: int, dim: int, low: float, high: float, steps: int, label: Label = None
) -> Images:
    """Images as one latent dimension of a seed's vector moves from low to high."""
    _check_steps(steps)
    z = seeded_latents(1, loaded.latent_dim, seed)[0]
    return _rows(loaded, latent_walk(z, dim, np.linspace(low, high, steps, dtype=np.float32)), label)


def stage_view(loaded: LoadedGenerator) -> str:
    """The name of the Generate view that shows the generator's stages; "" when its family draws in one stage."""
    return families.get(loaded.config.family).stage_view


def stage_images(loaded: LoadedGenerator, n: int, seed: int, redraws: int = 0) -> tuple[np.ndarray, list[str]]:
    """n samples, each as a row of its stages (coarsest first) scaled up to the final size, and the stage names.

    `redraws` > 0 replaces the part of z that only the last stage reads with fresh noise (the
    `redraws`-th draw for this seed), so the coarser stages stay and only the finest detail changes.
    """
    family = families.get(loaded.config.family)
    z = seeded_latents(n, loaded.latent_dim, seed)
    if redraws:
        detail = family.detail_noise(loaded.config)
        if detail is None:
            raise RunError("This generator has no noise of its own for the finest stage to redraw.")
        z[:, detail] = np.random.default_rng([seed, redraws]).standard_normal((n, detail.stop - detail.start), dtype=np.float32)
    stages = family.stages(loaded.model, loaded.config, z)
    if not stages:
        raise RunError(f"The {loaded.config.family} family draws in one stage; there are no stages to show.")
    scaled = [scaled_to(to_uint8(images), stages[-1][1].shape[1]) for _, images in stages]
    return interleaved(scaled), [name for name, _ in stages]


def _rows(loaded: LoadedGenerator, z: np.ndarray, label: Label) -> Images:
    """One row of z per class (for "rows", or None on a conditional model) or a single row."""
    if not loaded.conditional:
        if label == ROWS:
            raise RunError("One row per class needs a conditional generator; this one has no classes.")
        return to_uint8(generate(loaded.model, z)), None, len(z)
    if label == ROWS or label is None:
        classes = np.arange(loaded.num_classes, dtype=np.int32)
    elif 0 <= label < loaded.num_classes:
        classes = np.array([label], np.int32)
    else:
        raise RunError(f"label must be between 0 and {loaded.num_classes - 1}; got {label}.")
    labels = np.repeat(classes, len(z))
    return to_uint8(generate(loaded.model, np.tile(z, (len(classes), 1)), labels)), labels, len(z)


def _check_steps(steps: int) -> None:
    if not 2 <= steps <= MAX_STEPS:
        raise RunError(f"steps must be between 2 and {MAX_STEPS}; got {steps}.")
