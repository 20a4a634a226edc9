"""Projecting a user's image (a drawing or an upload) into a generator's latent space: Generate's Project view and `project`.

The image is read with the upload checks of Apply (`data.uploads.load_images`), made the generator's size (a
dark drawing on a light background inverted for grey generators, which draw light digits on dark; an image of
another size cropped to its ink, scaled to fill 20/28 of the side, and centred on its centre of mass, as MNIST
digits are), then the latent (z, or StyleGAN's w) is optimised with Adam from the best of STARTS random latents
(the KEEP best are optimised side by side) to lower the distance

    mean((G(latent) - image)^2) over pixels in [-1, 1]  +  ||f(G(latent)) - f(image)||^2 / ||f(image)||^2

where f is the evaluator's 128-d feature layer (the one the Fréchet distance uses). Datasets without a
classifier, and generators whose images the evaluator cannot read, use the pixel term alone.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from gan_core.data.images import encode_png, make_grid, to_uint8
from gan_core.data.uploads import load_images
from gan_core.errors import DataError, GanError, RunError
from gan_core.evaluation.evaluator import FEATURE_LAYER, ClassifierEvaluator, Evaluator, get_evaluator
from gan_core.generation.apply import PNG_SCALE, with_channels
from gan_core.generation.latent_space import LatentSpace, latent_space
from gan_core.generation.sampling import LoadedGenerator
from gan_core.lazy_tf import keras, tf
from gan_core.store.runs import atomic_write_bytes

STEPS = 200
MAX_STEPS = 2000
STARTS = 64
KEEP = 4
LEARNING_RATE = 0.05
INK_FRACTION = 20 / 28  # of the side, as MNIST digits fill their 28x28 frame
SEED = 0

Progress = Callable[[float, str], None]


@dataclass
class Projection:
    """An image projected into a latent space: what went in, what the generator draws from the found latent, and how close."""

    target: np.ndarray  # uint8 (H, W, C): the image at the generator's size
    reconstruction: np.ndarray  # uint8 (H, W, C)
    latent: np.ndarray  # (dim,)
    space: str  # "z" or "w"
    label: int | None  # the class a conditional generator drew it as
    before: float  # the distance from the best random latent
    after: float  # the distance from the optimised latent
    features: bool  # whether the distance has the evaluator's feature term
    note: str

    def png(self) -> bytes:
        """The image beside its reconstruction, enlarged."""
        return encode_png(make_grid(np.stack([self.target, self.reconstruction]), cols=2), scale=PNG_SCALE)

    def summary(self) -> str:
        """One sentence with the distance before and after."""
        kind = "pixel + feature" if self.features else "pixel"
        return (
            f"Distance ({kind}) {self.before:.4f} from the best of {STARTS} random latents, "
            f"{self.after:.4f} after optimising {self.space}" + (f" as class {self.label}." if self.label is not None else ".")
        )


def fit_image(images: np.ndarray, shape: tuple[int, int, int], name: str) -> tuple[np.ndarray, str]:
    """One uint8 image made the generator's (H, W, C), and a sentence saying how."""
    if len(images) != 1:
        raise DataError(f"'{name}' holds {len(images)} images; projection takes one.")
    height, width, channels = shape
    image = with_channels(images, channels)[0].astype(np.float32)
    steps = []
    if channels == 1 and np.mean(np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])) > 127:
        image = 255 - image
        steps.append("inverted (the digits are light on dark)")
    if image.shape[:2] != (height, width):
        image = _framed(image, height, width, name)
        steps.append(f"cropped to its ink and centred in {height}x{width}")
    note = f"'{name}' was " + " and ".join(steps) + "." if steps else f"'{name}' went in as it is."
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), note


def _framed(image: np.ndarray, height: int, width: int, name: str) -> np.ndarray:
    """The ink's bounding box scaled to fill INK_FRACTION of the frame, centred on its centre of mass."""
    grey = image.mean(axis=-1)
    ink = grey > 0.2 * max(float(grey.max()), 1.0)
    if grey.max() < 16 or not ink.any():
        raise DataError(f"'{name}' has no ink to project: draw or upload a digit first.")
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = INK_FRACTION * min(height, width) / max(crop.shape[:2])
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    resized = np.stack([np.asarray(Image.fromarray(crop[..., c]).resize(size, Image.LANCZOS)) for c in range(crop.shape[-1])], -1)
    resized = np.clip(resized, 0, 255)
    weights = resized.mean(axis=-1) + 1e-6
    cy, cx = (np.indices(weights.shape) * weights).reshape(2, -1).sum(axis=1) / weights.sum()
    top = int(np.clip(round(height / 2 - cy), 0, height - resized.shape[0]))
    left = int(np.clip(round(width / 2 - cx), 0, width - resized.shape[1]))
    frame = np.zeros((height, width, image.shape[-1]), np.float32)
    frame[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return frame


def feature_network(evaluator: Evaluator | None, shape: tuple[int, int, int]) -> keras.Model | None:
    """The evaluator's feature layer as a network on uint8-valued floats; None without a classifier of this image shape."""
    if not isinstance(evaluator, ClassifierEvaluator) or evaluator.image_shape != tuple(shape):
        return None
    return keras.Model(evaluator.model.input, evaluator.model.get_layer(FEATURE_LAYER).output)


def evaluator_for(loaded: LoadedGenerator, progress: Progress | None = None) -> Evaluator | None:
    """The evaluator of the run's dataset (trained now if not cached, as training would); None if its data is unreadable."""
    from gan_core.training.loop import evaluator_epochs

    try:
        return get_evaluator(loaded.config.dataset, progress=progress, epochs=evaluator_epochs())
    except GanError:
        return None


def guess_label(loaded: LoadedGenerator, target: np.ndarray, evaluator: Evaluator | None) -> int:
    """The class a conditional generator should draw the image as: the evaluator's most likely one, else 0."""
    if isinstance(evaluator, ClassifierEvaluator) and evaluator.num_classes == loaded.num_classes:
        if evaluator.image_shape == target.shape:
            return int(np.argmax(evaluator.probabilities(target[None])[0]))
    return 0


class _Distance:
    """Pixel (+ feature) distance of each generated image to one target, as a TF function of the images."""

    def __init__(self, target: np.ndarray, features: keras.Model | None) -> None:
        self.target = tf.constant(target[None].astype(np.float32) / 127.5 - 1.0)
        self.features = features
        if features is not None:
            self.target_features = features(self.target * 127.5 + 127.5, training=False)
            self.scale = tf.reduce_sum(tf.square(self.target_features)) + 1e-6

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        pixel = tf.reduce_mean(tf.square(images - self.target), axis=[1, 2, 3])
        if self.features is None:
            return pixel
        found = self.features(images * 127.5 + 127.5, training=False)
        return pixel + tf.reduce_sum(tf.square(found - self.target_features), axis=1) / self.scale


def project(
    loaded: LoadedGenerator, target: np.ndarray, steps: int = STEPS, label: int | None = None,
    evaluator: Evaluator | None = None, progress: Progress | None = None, note: str = "",
) -> Projection:
    """Optimise the latent whose image is closest to `target` (uint8, the generator's H x W x C)."""
    space = latent_space(loaded)
    if not 1 <= steps <= MAX_STEPS:
        raise RunError(f"steps must be between 1 and {MAX_STEPS}; got {steps}.")
    shape = space.image_shape
    if tuple(target.shape) != shape:
        raise DataError(f"The image has shape {tuple(target.shape)}; this generator draws images of shape {shape}.")
    if space.conditional:
        label = guess_label(loaded, target, evaluator) if label is None else label
        if not 0 <= label < space.num_classes:
            raise RunError(f"label must be between 0 and {space.num_classes - 1}; got {label}.")
    else:
        label = None
    features = feature_network(evaluator, shape)
    distance = _Distance(target, features)
    starts = space.random(STARTS, SEED)
    start_distances = distance(space.draw(tf.constant(starts), _labels(space, label, STARTS))).numpy()
    best = np.argsort(start_distances)[:KEEP]
    latents = tf.Variable(starts[best])
    labels = _labels(space, label, KEEP)
    optimizer = keras.optimizers.Adam(LEARNING_RATE)

    @tf.function
    def step() -> tf.Tensor:
        with tf.GradientTape() as tape:
            found = distance(space.draw(latents, labels))
            loss = tf.reduce_sum(found)
        optimizer.apply_gradients([(tape.gradient(loss, latents), latents)])
        return found

    for i in range(steps):
        step()
        if progress and (i % 10 == 9 or i == steps - 1):
            progress((i + 1) / steps, f"Projecting: step {i + 1} of {steps}")
    final = distance(space.draw(latents, labels)).numpy()
    winner = int(np.argmin(final))
    latent = latents.numpy()[winner]
    reconstruction = to_uint8(space.images(latent[None], _labels(space, label, 1)))[0]
    return Projection(target, reconstruction, latent, space.name, label, float(start_distances[best[0]]), float(final[winner]),
                      features is not None, note)


def _labels(space: LatentSpace, label: int | None, n: int) -> np.ndarray | None:
    return np.full(n, label or 0, np.int32) if space.conditional else None


def project_upload(
    loaded: LoadedGenerator, data: bytes, name: str, steps: int = STEPS, label: int | None = None,
    evaluator: Evaluator | None = None, progress: Progress | None = None,
) -> Projection:
    """Check the image bytes (in memory) as Apply does, fit them to the generator and project them."""
    target, note = fit_image(load_images(data, name), latent_space(loaded).image_shape, name)
    return project(loaded, target, steps, label, evaluator, progress, note)


def project_file(
    loaded: LoadedGenerator, source: Path, out: Path | None, steps: int = STEPS, label: int | None = None,
    evaluator: Evaluator | None = None, progress: Progress | None = None,
) -> Projection:
    """Project an image file; write the image beside its reconstruction as .png, or the latent as .npy."""
    if out is not None and out.suffix.lower() not in (".png", ".npy"):
        raise RunError(f"--out must end in .png or .npy; got '{out.name}'.")
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise RunError(f"Could not read '{source}': {exc.strerror or exc}.") from None
    projection = project_upload(loaded, data, source.name, steps, label, evaluator, progress)
    if out is not None:
        atomic_write_bytes(out, projection.png() if out.suffix.lower() == ".png" else latent_npy(projection))
    return projection


def latent_npy(projection: Projection) -> bytes:
    """The found latent as .npy bytes (shape (1, dim))."""
    buffer = io.BytesIO()
    np.save(buffer, projection.latent[None].astype(np.float32))
    return buffer.getvalue()
