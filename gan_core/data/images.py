"""Turning generated batches into grids and PNG files."""

from __future__ import annotations

import io
import math
import re
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from gan_core.store.runs import atomic_write_bytes


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Map generator output in [-1, 1] to uint8 pixels."""
    return np.clip(np.rint((np.asarray(images, dtype=np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def scaled_to(images: np.ndarray, height: int) -> np.ndarray:
    """Images (N, H, W, C) enlarged by a whole factor (nearest neighbour) to `height` rows."""
    factor = max(1, height // images.shape[1])
    return np.repeat(np.repeat(images, factor, axis=1), factor, axis=2)


def interleaved(columns: list[np.ndarray]) -> np.ndarray:
    """Equal-sized image batches, one per column, interleaved row by row: what a grid of len(columns) columns shows."""
    return np.stack(columns, axis=1).reshape(-1, *columns[0].shape[1:])


def make_grid(images: np.ndarray, cols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile N×H×W×C uint8 images into one (rows·H)×(cols·W)×C image with a dark border."""
    n, h, w, c = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype=np.uint8)
    for i, image in enumerate(images):
        top, left = pad + (i // cols) * (h + pad), pad + (i % cols) * (w + pad)
        grid[top : top + h, left : left + w] = image
    return grid


def picture(image: np.ndarray) -> Image.Image:
    """A PIL image of an H×W×C uint8 image: greyscale ("L") for one channel, "RGB" for three."""
    return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def encode_png(image: np.ndarray, scale: int = 1) -> bytes:
    """PNG bytes of an H×W×C uint8 image, enlarged `scale` times without smoothing."""
    shown = picture(image)
    if scale > 1:
        shown = shown.resize((shown.width * scale, shown.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    shown.save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(path: str | Path, image: np.ndarray, scale: int = 1) -> Path:
    """Write an image as PNG atomically."""
    atomic_write_bytes(Path(path), encode_png(image, scale))
    return Path(path)


def class_folder(name: str, index: int) -> str:
    """The folder of a class in a PNG zip: its name when that is a plain file name, else its index."""
    return name if re.fullmatch(r"[A-Za-z0-9_\- ]{1,64}", name) and name.strip() == name else str(index)


def png_zip(images: np.ndarray, labels: np.ndarray | None, class_names: tuple[str, ...] = ()) -> bytes:
    """A .zip of one PNG per image, in one folder per class when labelled (`3/000012.png`), as dataset uploads read it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, image in enumerate(images):
            if labels is None:
                name = f"{i:06d}.png"
            else:
                label = int(labels[i])
                name = f"{class_folder(class_names[label] if label < len(class_names) else str(label), label)}/{i:06d}.png"
            archive.writestr(name, encode_png(image))
    return buffer.getvalue()
