"""The evaluator network of a dataset: a small CNN classifier trained once on its training split and cached on disk.

No pretrained Inception weights are available offline, so, as TF-GAN does for MNIST, every labelled dataset
gets its own classifier: Conv32-pool-Conv64-pool-Dense128-DenseK, trained with small random shifts (images
larger than 32 pixels are first resized to fit 32×32). Two layers of it give the feature spaces:

- the Fréchet distance uses the penultimate Dense layer ("features", 128-d, after ReLU), which follows the
  classes closely (a generator missing three digits moves FD from about 9 to about 50 on mnist-5k);
- precision/recall and density/coverage use the last conv block ("conv_features", flattened, 1600-d on
  28×28), L2-normalised and projected to 128-d by a fixed Gaussian matrix. Measured on mnist-5k at N=500, the
  128-d layer puts pixel noise inside the real k-NN balls (precision 0.5 to 1.0 for uniform, Gaussian and
  salt noise: a classifier maps inputs it never saw near real digits), while this space gives 0.00 for
  them and keeps real-vs-real at about 0.85.

Its softmax gives the class probabilities. It is cached as `<fingerprint>.keras` plus `<fingerprint>.json`
(held-out accuracy, layers, sizes) under `$GAN_CACHE_DIR` or `~/.cache/gan-workbench/evaluators`; the
fingerprint is the sha256 of the training images and labels, their shape, the evaluator version and the
number of epochs, so new data or a new design retrains.

Unlabelled datasets have no classifier: their evaluator is a fixed random projection of the pixels
(downscaled to at most 32×32, scaled to [0, 1]) to 128 dimensions, which keeps Euclidean distances roughly
(Johnson–Lindenstrauss), so FD, SWD and the k-NN metrics still exist; class metrics do not.

Datasets with no test split of their own (user files) hold out a fixed 10% (per class when labelled,
seed 0) for evaluation; the generator saw those images, so their floor is slightly optimistic.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from gan_core.data.datasets import BUILTIN_DATASETS, load_dataset
from gan_core.data.imageset import ImageSet
from gan_core.errors import DataError
from gan_core.store.runs import atomic_write_json

EVALUATOR_VERSION = "cnn-v1"
FEATURE_LAYER = "features"
CONV_LAYER = "conv_features"
FEATURE_DIM = 128
MAX_SIDE = 32
BATCH_SIZE = 64
PREDICT_BATCH = 500
SEED = 0
HELDOUT_FRACTION = 0.1
MAX_EPOCHS = 20
MIN_EPOCHS = 5
IMAGES_TO_SEE = 90_000  # epochs = this / training images, clipped to [MIN_EPOCHS, MAX_EPOCHS]

Progress = Callable[[float, str], None]


@dataclass(frozen=True, eq=False)
class ReferenceData:
    """A dataset's training split (the classifier's and the generator's data) and its held-out split."""

    train: ImageSet
    heldout: ImageSet


def default_cache_dir() -> Path:
    """`$GAN_CACHE_DIR` when set, else ~/.cache/gan-workbench/evaluators."""
    return Path(os.environ.get("GAN_CACHE_DIR") or Path.home() / ".cache" / "gan-workbench" / "evaluators")


def _subset(data: ImageSet, idx: np.ndarray) -> ImageSet:
    labels = None if data.labels is None else data.labels[idx]
    return ImageSet(data.images[idx], labels, data.class_names, data.source)


def reference_data(dataset: str) -> ReferenceData:
    """Train and held-out splits: the dataset's own for builtins, a fixed 10% split for user files."""
    key = str(dataset).strip().lower()
    if key in BUILTIN_DATASETS:
        return ReferenceData(load_dataset(dataset, "train"), load_dataset(dataset, "test"))
    data = load_dataset(dataset, "all")
    rng = np.random.default_rng(SEED)
    groups = [np.arange(data.num_images)] if data.labels is None else [np.flatnonzero(data.labels == c) for c in np.unique(data.labels)]
    held = np.concatenate([rng.permutation(g)[: max(1, int(round(len(g) * HELDOUT_FRACTION)))] for g in groups])
    mask = np.zeros(data.num_images, bool)
    mask[held] = True
    if mask.all() or mask.sum() < 2:
        raise DataError(f"Dataset '{dataset}' is too small to hold out images for evaluation.")
    return ReferenceData(_subset(data, np.flatnonzero(~mask)), _subset(data, np.flatnonzero(mask)))


def heldout_sample(dataset: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """n held-out images of a dataset picked by a seed, as floats in [-1, 1], and their labels (None when unlabelled)."""
    heldout = reference_data(dataset).heldout
    picked = np.random.default_rng(seed).choice(heldout.num_images, n, replace=n > heldout.num_images)
    labels = None if heldout.labels is None else heldout.labels[picked]
    return heldout.images[picked].astype(np.float32) / 127.5 - 1.0, labels


def default_epochs(num_train: int) -> int:
    """Epochs so the classifier sees about IMAGES_TO_SEE images (at least MIN_EPOCHS, at most MAX_EPOCHS)."""
    return int(np.clip(math.ceil(IMAGES_TO_SEE / max(1, num_train)), MIN_EPOCHS, MAX_EPOCHS))


def fingerprint(data: ImageSet, epochs: int) -> str:
    """sha256 of the images, labels, their shape, the evaluator version and the epochs."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(data.images).tobytes())
    if data.labels is not None:
        digest.update(np.ascontiguousarray(data.labels, dtype=np.int64).tobytes())
    digest.update(f"{data.images.shape}|{EVALUATOR_VERSION}|epochs={epochs}".encode())
    return digest.hexdigest()


@dataclass
class Observation:
    """What the evaluator sees in a set of images: FD features, k-NN features and class probabilities."""

    features: np.ndarray
    knn_features: np.ndarray
    probs: np.ndarray | None


def _projection(dim: int) -> np.ndarray:
    """The fixed Gaussian random projection from dim to FEATURE_DIM dimensions (seed 0)."""
    return (np.random.default_rng(SEED).standard_normal((dim, FEATURE_DIM)) / np.sqrt(FEATURE_DIM)).astype(np.float32)


class Evaluator:
    """Features (and class probabilities when labelled) for uint8 images of one dataset; this base class has no classifier."""

    kind = "pixels"
    accuracy: float | None = None
    fingerprint: str | None = None
    feature_layer = f"pixels (downscaled to at most {MAX_SIDE}×{MAX_SIDE}, in [0, 1]) randomly projected to {FEATURE_DIM}-d"
    knn_layer = feature_layer

    def __init__(self, image_shape: tuple[int, int, int], class_names: tuple[str, ...] = ()) -> None:
        self.image_shape = tuple(int(v) for v in image_shape)
        self.class_names = tuple(class_names)

    @property
    def num_classes(self) -> int:
        """Number of classes the evaluator tells apart (0: none)."""
        return len(self.class_names) if self.kind == "classifier" else 0

    def check(self, images: np.ndarray) -> np.ndarray:
        """The images as an array, refusing any other shape than the dataset's."""
        images = np.asarray(images)
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise DataError(f"Images of shape {tuple(images.shape[1:])} cannot be evaluated against a dataset of {self.image_shape} images.")
        return images

    def observe(self, images: np.ndarray) -> Observation:
        """Random projection of downscaled pixels, used for both FD and the k-NN metrics."""
        pixels = _downscale(self.check(images)).reshape(len(images), -1)
        features = pixels @ _projection(pixels.shape[1])
        return Observation(features, features, None)

    def features(self, images: np.ndarray) -> np.ndarray:
        """The FD feature vectors (N × 128)."""
        return self.observe(images).features

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities (N × K); an unlabelled dataset has none."""
        probs = self.observe(images).probs
        if probs is None:
            raise DataError("This dataset has no class labels, so there is no classifier to give class probabilities.")
        return probs

    def describe(self) -> dict:
        """JSON-ready facts shown beside every number computed with this evaluator."""
        return {
            "kind": self.kind, "accuracy": self.accuracy, "feature_layer": self.feature_layer, "knn_layer": self.knn_layer,
            "fingerprint": self.fingerprint, "version": EVALUATOR_VERSION, "class_names": list(self.class_names),
        }


def _downscale(images: np.ndarray) -> np.ndarray:
    """float32 images in [0, 1], average-pooled by whole factors until both sides are at most MAX_SIDE."""
    x = images.astype(np.float32) / 255.0
    n, h, w, c = x.shape
    factor = max(1, math.ceil(max(h, w) / MAX_SIDE))
    if factor > 1:
        h2, w2 = h // factor, w // factor
        x = x[:, : h2 * factor, : w2 * factor].reshape(n, h2, factor, w2, factor, c).mean(axis=(2, 4))
    return x


class ClassifierEvaluator(Evaluator):
    """A trained CNN: FD features from its penultimate layer, k-NN features from its last conv block, softmax."""

    kind = "classifier"

    def __init__(self, model, accuracy: float, fingerprint: str, class_names: tuple[str, ...]) -> None:
        import keras

        super().__init__(tuple(model.input_shape[1:]), class_names)
        self.model = model
        self.accuracy = float(accuracy)
        self.fingerprint = fingerprint
        conv = model.get_layer(CONV_LAYER).output
        self.feature_layer = f"the penultimate Dense layer, {FEATURE_DIM}-d, after ReLU (layer '{FEATURE_LAYER}')"
        self.knn_layer = (
            f"the last conv block flattened ({conv.shape[-1]}-d), L2-normalised, "
            f"randomly projected to {FEATURE_DIM}-d (layer '{CONV_LAYER}')"
        )
        self._outputs = keras.Model(model.input, [conv, model.get_layer(FEATURE_LAYER).output, model.output])
        self._projection = _projection(int(conv.shape[-1]))

    def observe(self, images: np.ndarray) -> Observation:
        """One batched pass: penultimate features, projected conv features, probabilities."""
        images = self.check(images)
        parts: list[list[np.ndarray]] = [[], [], []]
        for start in range(0, len(images), PREDICT_BATCH):
            outputs = self._outputs(images[start:start + PREDICT_BATCH].astype(np.float32), training=False)
            for part, output in zip(parts, outputs):
                part.append(np.asarray(output))
        conv, features, probs = (np.concatenate(p) for p in parts)
        conv /= np.maximum(np.linalg.norm(conv, axis=1, keepdims=True), 1e-6)
        return Observation(features, conv @ self._projection, probs)


def build_classifier(image_shape: tuple[int, int, int], num_classes: int):
    """The evaluator CNN (uint8-valued float input, softmax output), with seeded initialisers, in float32 whatever the global policy.

    A worker that trains under mixed_bfloat16 and finds no cached evaluator (srgan's feature loss, `eval_every`) builds
    it here: built under that policy it would compute in bfloat16 and give bfloat16 features to float32 losses.
    """
    import keras

    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        return _classifier(image_shape, num_classes)
    finally:
        keras.mixed_precision.set_global_policy(policy)


def _classifier(image_shape: tuple[int, int, int], num_classes: int):
    """The evaluator CNN's layers under the current dtype policy."""
    import keras
    from keras import layers

    h, w, _ = image_shape
    x = inputs = keras.Input(shape=image_shape)
    if max(h, w) > MAX_SIDE:
        scale = MAX_SIDE / max(h, w)
        x = layers.Resizing(max(8, round(h * scale)), max(8, round(w * scale)))(x)
    x = layers.Rescaling(1.0 / 255.0)(x)
    x = layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=SEED)(x)
    for i, filters in enumerate((32, 64)):
        x = layers.Conv2D(filters, 3, activation="relu", kernel_initializer=keras.initializers.HeUniform(SEED + i))(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten(name=CONV_LAYER)(x)
    x = layers.Dropout(0.25, seed=SEED)(x)
    x = layers.Dense(FEATURE_DIM, activation="relu", name=FEATURE_LAYER, kernel_initializer=keras.initializers.HeUniform(SEED + 2))(x)
    x = layers.Dropout(0.5, seed=SEED + 1)(x)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_initializer=keras.initializers.GlorotUniform(SEED + 3))(x)
    return keras.Model(inputs, outputs, name="evaluator")


def train_classifier(data: ReferenceData, epochs: int, progress: Progress | None = None) -> tuple[object, float]:
    """Train the CNN on the training split with a fixed seed; return it and its held-out accuracy."""
    import keras

    model = build_classifier(data.train.image_shape, data.train.num_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", jit_compile=False)
    x = data.train.images.astype(np.float32)
    y = data.train.labels.astype(np.int32)
    rng = np.random.default_rng(SEED)
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        model.fit(x[order], y[order], batch_size=BATCH_SIZE, epochs=1, shuffle=False, verbose=0)
        if progress:
            progress((epoch + 1) / epochs, f"Training the evaluator classifier: epoch {epoch + 1} of {epochs}")
    predicted = np.argmax(ClassifierEvaluator(model, 0.0, "", data.train.class_names).probabilities(data.heldout.images), axis=1)
    return model, float(np.mean(predicted == data.heldout.labels))


def _save_model(model, target: Path) -> None:
    """Save a .keras file atomically (temp file in the same folder, then os.replace)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".keras")
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_LOADED: dict[tuple[str, str], ClassifierEvaluator] = {}


def get_evaluator(
    dataset: str, cache_dir: str | Path | None = None, progress: Progress | None = None,
    epochs: int | None = None, data: ReferenceData | None = None,
) -> Evaluator:
    """The dataset's evaluator: the cached classifier, trained now when missing; a pixel projection when unlabelled."""
    data = data or reference_data(dataset)
    if data.train.num_classes < 2:
        return Evaluator(data.train.image_shape)
    epochs = epochs or default_epochs(data.train.num_images)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = fingerprint(data.train, epochs)
    memo_key = (str(cache.resolve()), key)
    if memo_key in _LOADED:
        return _LOADED[memo_key]
    model_path, info_path = cache / f"{key[:32]}.keras", cache / f"{key[:32]}.json"
    info = _read_info(info_path, key)
    model = _load_model(model_path) if info is not None else None
    if model is None:
        model, accuracy = train_classifier(data, epochs, progress)
        cache.mkdir(parents=True, exist_ok=True)
        _save_model(model, model_path)
        info = {
            "fingerprint": key, "version": EVALUATOR_VERSION, "accuracy": accuracy, "feature_layer": FEATURE_LAYER,
            "knn_layer": CONV_LAYER, "feature_dim": FEATURE_DIM, "epochs": epochs, "dataset": data.train.source,
            "train_images": data.train.num_images, "heldout_images": data.heldout.num_images,
            "class_names": list(data.train.class_names),
        }
        atomic_write_json(info_path, info)
    evaluator = ClassifierEvaluator(model, info["accuracy"], key, data.train.class_names)
    _LOADED[memo_key] = evaluator
    return evaluator


def _load_model(path: Path):
    """The cached model, or None when it is missing, unreadable or not float32 (then it is trained again)."""
    import keras

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception:  # a missing, truncated or foreign file fails in many ways; retraining fixes all of them
        return None
    return model if all(layer.dtype_policy.name == "float32" for layer in model.layers if layer.weights) else None  # mixed: built under bfloat16


def _read_info(path: Path, key: str) -> dict | None:
    """The cached evaluator's facts when they belong to this fingerprint, else None."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return info if isinstance(info, dict) and info.get("fingerprint") == key else None
