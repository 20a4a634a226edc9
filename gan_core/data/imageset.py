"""ImageSet, the images (and labels) every data source returns, and how a user's name or path is quoted."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

SHOWN_CHARS = 200  # longest name or path quoted in an error message


@dataclass(frozen=True, eq=False)
class ImageSet:
    """A set of uint8 images (N, H, W, C) with optional integer labels 0..num_classes-1."""

    images: np.ndarray
    labels: np.ndarray | None
    class_names: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        """Check the shape/dtype contract so a broken loader fails loudly."""
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] not in (1, 3):
            raise ValueError(
                f"ImageSet images must be uint8 (N, H, W, 1|3), got {self.images.dtype} {self.images.shape}"
            )
        if self.labels is not None and self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"ImageSet labels must have shape ({self.images.shape[0]},), got {self.labels.shape}")

    @property
    def num_classes(self) -> int:
        """Number of classes, 0 when the set is unlabelled."""
        return 0 if self.labels is None else len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape of one image as (H, W, C)."""
        h, w, c = self.images.shape[1:]
        return int(h), int(w), int(c)

    @property
    def num_images(self) -> int:
        """Number of images N."""
        return int(self.images.shape[0])


def shown(text: str | os.PathLike) -> str:
    """A user's name or path as a message quotes it: on one line, control characters escaped, at most SHOWN_CHARS."""
    safe = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(text))
    return safe if len(safe) <= SHOWN_CHARS else safe[: SHOWN_CHARS - 3] + "..."
