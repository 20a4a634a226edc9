"""Directions in a generator's latent space, found once per generator: the sliders of Generate's Edit view.

A principal direction's slider moves a sample straight along it (`moved`). An attribute's slider follows the
attribute's gradient at the sample instead (`edits.walk`); its direction here names the slider and stands in
for that gradient where too few samples around the sample have ink to fit it.

- Attribute directions: SAMPLES latents are drawn (with random classes for a conditional generator), their
  images measured (`attributes.measure`), and each attribute regressed on the latents by least squares (with
  the class as one-hot columns, so the direction changes the style within a class). The direction is the
  unit vector of the latent coefficients; `per_unit` is the attribute change the fit predicts per one
  standard deviation of the sampled latents along it.
- The class, for an unconditional generator (InterFaceGAN's conditional manipulation, Shen et al. 2020): the
  dataset's evaluator reads each sample's class logits, they are regressed on the latents too, and each
  attribute's coefficients are projected onto the orthogonal complement of the span of the class coefficients,
  so moving along it changes the predicted logits as little as a linear fit can. Without an evaluator (an
  unlabelled upload), or when the class directions fill the latent space, the class is not held.
- The other attributes, likewise (InterFaceGAN's conditional manipulation with several conditions): each
  attribute's coefficients are also projected off the other attributes' coefficients, so a thickness move
  changes the fitted slant and size by nothing. On a 3,000-step cgan run, +2 steps of thickness changed the
  slant by +4.0 degrees before (half of what +2 steps of slant do) and by +0.9 after (docs/QUALITY.md).
- Principal directions (unsupervised, as GANSpace): PCA of w for StyleGAN, and for z-fed generators PCA of
  the first layer's activations (z itself is isotropic noise), each component's coordinates regressed back
  on the latents to give a direction in the latent space.

A step is measured in standard deviations of the sampled latents along the direction (`spread`), so one
slider range suits z and w; several moves add up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gan_core.data.images import to_uint8
from gan_core.errors import RunError
from gan_core.evaluation.evaluator import Evaluator
from gan_core.generation.attributes import ATTRIBUTES, measure
from gan_core.generation.latent_space import BATCH, LatentSpace
from gan_core.lazy_tf import keras

SAMPLES = 512
COMPONENTS = 3
SEED = 1  # not the Grid's seed 0, so a page's random sample is not among the fitted ones
MAX_AMOUNT = 5.0
FLOOR = 1e-6


@dataclass(frozen=True, eq=False)
class Direction:
    """A unit vector in the latent space and how far one step along it goes."""

    name: str  # the label shown
    vector: np.ndarray  # (dim,), unit length
    spread: float  # the std of the sampled latents along it: one step
    per_unit: float | None = None  # the attribute's predicted change per step (attribute directions)
    attribute: str = ""  # the attribute it was fitted to, or ""
    class_hold: str = ""  # attribute directions: how the class is held, "label", "evaluator", "none" or "full" (class_basis)


def find_directions(
    space: LatentSpace, samples: int = SAMPLES, seed: int = SEED, components: int = COMPONENTS,
    evaluator: Evaluator | None = None,
) -> dict[str, Direction]:
    """The attribute directions and the first principal ones, by name; an unconditional generator's class is held by `evaluator`."""
    latents = space.random(samples, seed)
    labels = np.random.default_rng(seed).integers(0, space.num_classes, samples).astype(np.int32) if space.conditional else None
    design = _design(latents, labels, space.num_classes)
    images = to_uint8(space.images(latents, labels))
    measured = measure(images)
    hold, basis = class_basis(space, design, images, evaluator)
    fitted_attributes = {}
    for attribute in ATTRIBUTES:
        if (fitted := fit_measured(design, measured[attribute])) is not None:
            fitted_attributes[attribute] = fitted[: space.dim]
    found = {}
    for attribute, coefficients in fitted_attributes.items():
        others = [fitted for name, fitted in fitted_attributes.items() if name != attribute]
        held = orthonormal(np.column_stack([basis, *others]))
        coefficients = coefficients - held @ (held.T @ coefficients)  # no part along the class or the other attributes
        label = ATTRIBUTES[attribute]
        norm = float(np.linalg.norm(coefficients))
        if norm == 0:
            continue
        vector = coefficients / norm
        spread = float(np.std(latents @ vector))
        found[label] = Direction(label, vector, spread, norm * spread, attribute, hold)
    activations = latents if space.name == "w" else first_layer_activations(space, latents, labels)
    centred = activations - activations.mean(axis=0)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    explained = singular**2 / max(float(np.sum(singular**2)), 1e-12)
    coordinates = centred @ axes[:components].T
    fitted = np.linalg.lstsq(design, coordinates, rcond=None)[0][: space.dim]
    for i in range(min(components, fitted.shape[1])):
        vector = fitted[:, i] / max(float(np.linalg.norm(fitted[:, i])), 1e-12)
        source = "w" if space.name == "w" else "the first layer"
        name = f"Principal direction {i + 1} ({100 * explained[i]:.0f}% of the variance of {source})"
        found[name] = Direction(name, vector, float(np.std(latents @ vector)))
    return found


def fit_measured(design: np.ndarray, values: np.ndarray) -> np.ndarray | None:
    """Least-squares coefficients of `values` on the columns of `design`, over the images that measured a value (not NaN);
    None when too few did to fit them (an untrained generator's images without ink)."""
    valid = np.isfinite(values)
    if valid.sum() < design.shape[1] + 2:
        return None
    return np.linalg.lstsq(design[valid], values[valid], rcond=None)[0]


def _design(latents: np.ndarray, labels: np.ndarray | None, num_classes: int) -> np.ndarray:
    """The regression's columns: the latents, the class as one-hot (conditional), and a constant."""
    columns = [latents.astype(np.float64)]
    if labels is not None:
        columns.append(np.eye(num_classes)[labels])
    else:
        columns.append(np.ones((len(latents), 1)))
    return np.concatenate(columns, axis=1)


def class_basis(
    space: LatentSpace, design: np.ndarray, images: np.ndarray, evaluator: Evaluator | None
) -> tuple[str, np.ndarray]:
    """How the class is held ("label", "evaluator", "none": no evaluator for this data, "full": the class directions
    fill the latent space), and an orthonormal basis (dim, k) of the latent directions the
    evaluator's class logits were fitted along (k = 0 unless the evaluator holds the class)."""
    nothing = np.zeros((space.dim, 0))
    if space.conditional:
        return "label", nothing
    if not holds_class(space, evaluator):
        return "none", nothing
    logits = class_logits(evaluator, images)
    coefficients = np.linalg.lstsq(design, logits, rcond=None)[0][: space.dim]
    basis = orthonormal(coefficients)
    if basis.shape[1] >= space.dim:
        return "full", nothing
    return "evaluator", basis


def holds_class(space: LatentSpace, evaluator: Evaluator | None) -> bool:
    """Whether the evaluator reads classes of this generator's images (a classifier of images of its shape)."""
    return evaluator is not None and evaluator.num_classes > 0 and evaluator.image_shape == space.image_shape


def orthonormal(columns: np.ndarray) -> np.ndarray:
    """An orthonormal basis (dim, k) of the span of `columns` (dim, n), k <= n."""
    if columns.shape[1] == 0:
        return columns
    basis, singular, _ = np.linalg.svd(columns, full_matrices=False)
    return basis[:, singular > 1e-9 * max(float(singular.max()), 1e-300)]


def class_logits(evaluator: Evaluator, images: np.ndarray) -> np.ndarray:
    """The evaluator's class logits of uint8 images, centred per image (log-probabilities less their mean: the same
    differences), with probabilities floored at FLOOR so the classes it rules out do not dominate the fit."""
    log_probs = np.log(np.clip(evaluator.probabilities(images).astype(np.float64), FLOOR, 1.0))
    return log_probs - log_probs.mean(axis=1, keepdims=True)


def first_layer_activations(space: LatentSpace, latents: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """The activations of the generator's first layer with weights (a Dense or convolution), flattened; the images without one."""
    network = space.network
    layer = next((layer for layer in network.layers if hasattr(layer, "kernel")), None)
    if layer is None:
        return space.images(latents, labels).reshape(len(latents), -1)
    inner = keras.Model(network.inputs if len(network.inputs) > 1 else network.inputs[0], layer.output)
    out = []
    for start in range(0, len(latents), BATCH):
        inputs = latents[start : start + BATCH]
        if labels is not None:
            inputs = [inputs, labels[start : start + BATCH]]
        out.append(np.asarray(inner(inputs, training=False), np.float32).reshape(len(latents[start : start + BATCH]), -1))
    return np.concatenate(out)


def moved(latent: np.ndarray, moves: dict[Direction, float]) -> np.ndarray:
    """The latent moved by each direction's amount of steps (the moves add up)."""
    out = np.asarray(latent, np.float64).copy()
    for direction, amount in moves.items():
        check_amount(amount)
        out += amount * direction.spread * direction.vector
    return out.astype(np.float32)


def check_amount(amount: float) -> None:
    if not -MAX_AMOUNT <= amount <= MAX_AMOUNT:
        raise RunError(f"the amount must be between {-MAX_AMOUNT:g} and {MAX_AMOUNT:g} steps; got {amount:g}.")
