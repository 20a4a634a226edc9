"""Editing one sample: Generate's Edit view moves it along directions and measures it before and after.

The attribute sliders move it along the attributes' local gradients.

An attribute direction of `directions.find_directions` is one least-squares fit over 512 samples: the
average way the attribute changes across the latent space. At a given sample the attribute may grow
along another direction, and a step along the average one changed the class of more samples than a
random step of the same length did (docs/QUALITY.md, "Edit view"). So a slider here follows the
attribute's gradient at the sample itself, estimated again every `SUBSTEP` steps:

- `PROBES` latents around the current one (the sampled latents' deviations from their mean, times
  `PROBE_SCALE`; the same seeded deviations each time) are drawn, measured (`attributes.measure`) and,
  where the dataset has an evaluator, read by it; every attribute and the class log-probabilities are
  regressed on the deviations by least squares.
- Each moved attribute's gradient is projected off the other attributes' gradients and off the class
  log-probabilities' gradients (InterFaceGAN's conditional manipulation, fitted at the sample), and the
  latent takes its share of the substep along that unit vector. A step is the sampled latents' standard
  deviation along it, as for the straight directions.

Where the class and the other attributes leave no direction (a latent space of fewer dimensions than
the gradients held), only the other attributes are held, then nothing; where too few probes have ink
to fit an attribute (an untrained generator), its global direction is used for that substep.
Principal directions are moved straight (`directions.moved`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from gan_core.data.images import to_uint8
from gan_core.evaluation.evaluator import Evaluator
from gan_core.generation.attributes import ATTRIBUTES, measure
from gan_core.generation.directions import Direction, check_amount, class_logits, fit_measured, holds_class, moved, orthonormal
from gan_core.generation.latent_space import LatentSpace

SUBSTEP = 0.5  # steps between two estimates of the gradients
PROBES = 256
PROBE_SCALE = 0.5
PROBE_SEED = 7
HOLDS = {
    "evaluator": "held off the class the evaluator reads and off the other attributes",
    "label": "the class kept by the label, the other attributes held",
    "none": "the other attributes held; the class is not held: no evaluator for this data",
    "full": "the other attributes held; the class is not held: its gradients and theirs fill the latent space",
}


def walk(
    space: LatentSpace, latent: np.ndarray, moves: dict[Direction, float], label: int | None = None,
    evaluator: Evaluator | None = None, progress: Callable[[float, str], None] | None = None,
) -> np.ndarray:
    """The latent moved by each direction's amount of steps: attribute directions along their local gradients, the others straight."""
    for amount in moves.values():
        check_amount(amount)
    out = moved(latent, {direction: amount for direction, amount in moves.items() if not direction.attribute}).astype(np.float64)
    walked = {direction: amount for direction, amount in moves.items() if direction.attribute and amount != 0}
    if not walked:
        return out.astype(np.float32)
    samples = space.random(PROBES, PROBE_SEED).astype(np.float64)
    deviations = PROBE_SCALE * (samples - samples.mean(axis=0))
    labels = np.full(PROBES, label or 0, np.int32) if space.conditional else None
    reader = evaluator if holds_class(space, evaluator) else None
    substeps = math.ceil(max(abs(amount) for amount in walked.values()) / SUBSTEP)
    for i in range(substeps):
        if progress is not None:
            progress(i / substeps, f"Following the attributes' gradients: step {i + 1} of {substeps}")
        images = to_uint8(space.images((out + deviations).astype(np.float32), labels))
        gradients = local_gradients(deviations, images, reader)
        for direction, amount in walked.items():
            vector = held_gradient(gradients, direction, space.dim)
            spread = float(np.std(deviations @ vector)) / PROBE_SCALE
            out += amount / substeps * spread * vector
    return out.astype(np.float32)


def hold_note(space: LatentSpace, evaluator: Evaluator | None) -> str:
    """What the attribute sliders hold as they move, in words (a value of HOLDS)."""
    if holds_class(space, evaluator):
        held = evaluator.num_classes - 1 + len(ATTRIBUTES) - 1  # the centred log-probabilities' rank and the other attributes
        return HOLDS["evaluator" if space.dim > held else "label" if space.conditional else "full"]
    return HOLDS["label" if space.conditional else "none"]


def local_gradients(deviations: np.ndarray, images: np.ndarray, evaluator: Evaluator | None) -> dict[str, np.ndarray | None]:
    """Each attribute's gradient (dim,) at the latent the probes deviate from (None where too few probes have ink),
    and under "class" the class log-probabilities' gradients (dim, classes; (dim, 0) without an evaluator)."""
    design = np.column_stack([deviations, np.ones(len(deviations))])
    found: dict[str, np.ndarray | None] = {}
    for attribute, values in measure(images).items():
        fitted = fit_measured(design, values)
        found[attribute] = None if fitted is None else fitted[:-1]
    logits = class_logits(evaluator, images) if evaluator is not None else np.zeros((len(images), 0))
    found["class"] = np.linalg.lstsq(design, logits, rcond=None)[0][:-1]
    return found


def held_gradient(gradients: dict[str, np.ndarray | None], direction: Direction, dim: int) -> np.ndarray:
    """The unit vector along the attribute's gradient off the other attributes' and the class's gradients (see the module doc)."""
    own = gradients[direction.attribute]
    if own is None or not np.linalg.norm(own) > 0:
        return direction.vector
    others = [gradient for name, gradient in gradients.items() if name not in (direction.attribute, "class") and gradient is not None]
    for columns in ([*others, *gradients["class"].T], others, []):
        basis = orthonormal(np.column_stack(columns)) if columns else np.zeros((dim, 0))
        vector = own - basis @ (basis.T @ own)
        norm = float(np.linalg.norm(vector))
        if norm > 1e-9 * float(np.linalg.norm(own)):
            return vector / norm
    return direction.vector


def before_after(
    space: LatentSpace, latent: np.ndarray, moves: dict[Direction, float], label: int | None = None,
    evaluator: Evaluator | None = None, progress: Callable[[float, str], None] | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """The sample and the sample moved (`walk`; uint8, 2 images), and each attribute measured on both."""
    labels = np.full(2, label or 0, np.int32) if space.conditional else None
    after = walk(space, latent, moves, label, evaluator, progress)
    images = to_uint8(space.images(np.stack([np.asarray(latent, np.float32), after]), labels))
    measured = measure(images)
    table = pd.DataFrame(
        [{"attribute": ATTRIBUTES[name], "before": values[0], "after": values[1], "change": values[1] - values[0]}
         for name, values in measured.items()]
    )
    return images, table
