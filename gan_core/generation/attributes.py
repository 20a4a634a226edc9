"""Measurable attributes of a digit image: stroke thickness, slant and size, from its ink (light on dark).

With I the ink (grey level in [0, 1]) and mu the central moments of I (y grows downwards):

- slant: the shear that the ink's second moments show, atan(-mu11 / mu02), in degrees; a digit whose top
  leans to the right measures positive, an upright one 0;
- size: sqrt(12 (mu20 + mu02)), in pixels: the length of a thin uniform line with the same spread of ink;
- thickness: 2 A / P, in pixels, with A the area of the ink (I >= 0.5) and P its outline (ink pixels'
  edges that touch background): a stroke of width t and length L >> t has A = tL and P ~ 2L.

An image without ink measures NaN (its thickness too when no pixel reaches 0.5).
"""

from __future__ import annotations

import numpy as np

ATTRIBUTES = {
    "thickness": "Stroke thickness (px)",
    "slant": "Slant (degrees, top to the right > 0)",
    "size": "Size (px)",
}


def ink(images: np.ndarray) -> np.ndarray:
    """(N, H, W) float ink in [0, 1] of uint8 images (N, H, W, C), their channels averaged."""
    return np.asarray(images, np.float32).mean(axis=-1) / 255.0


def measure(images: np.ndarray) -> dict[str, np.ndarray]:
    """Each attribute of each uint8 image (N, H, W, C), by attribute name."""
    x = ink(images)
    n, height, width = x.shape
    mass = x.sum(axis=(1, 2))
    empty = mass < 1e-6
    safe = np.where(empty, 1.0, mass)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    cy = (x * ys).sum(axis=(1, 2)) / safe
    cx = (x * xs).sum(axis=(1, 2)) / safe
    dy, dx = ys[None] - cy[:, None, None], xs[None] - cx[:, None, None]
    mu20 = (x * dx * dx).sum(axis=(1, 2)) / safe
    mu02 = (x * dy * dy).sum(axis=(1, 2)) / safe
    mu11 = (x * dx * dy).sum(axis=(1, 2)) / safe
    slant = np.degrees(np.arctan2(-mu11, np.maximum(mu02, 1e-6)))
    size = np.sqrt(12.0 * (mu20 + mu02))
    solid = np.pad(x >= 0.5, ((0, 0), (1, 1), (1, 1)))
    area = solid.sum(axis=(1, 2)).astype(np.float32)
    outline = (np.diff(solid, axis=1).sum(axis=(1, 2)) + np.diff(solid, axis=2).sum(axis=(1, 2))).astype(np.float32)
    thickness = np.where(area > 0, 2.0 * area / np.maximum(outline, 1.0), np.nan)
    found = {"thickness": thickness, "slant": slant, "size": size}
    return {name: np.where(empty, np.nan, value).astype(np.float64) for name, value in found.items()}
