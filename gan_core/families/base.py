"""The contract every GAN family implements, and what the training loop hands it.

The loop (gan_core.training.loop) owns scheduling, the `tf.distribute` strategy, the run's RNG, steps
per call, checkpoints, sample grids, divergence and quality metrics; it never names a family.
A family owns its settings, its networks and optimizers, its train step and its sampler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gan_core.config import RunConfig, Settings
from gan_core.data.imageset import ImageSet
from gan_core.history_metrics import Metric
from gan_core.lazy_tf import keras, tf


@dataclass(frozen=True)
class DataSpec:
    """What a family needs to know of its data to build networks."""

    image_shape: tuple[int, int, int]
    num_classes: int


@dataclass
class Parts:
    """A run's trainable state by name: networks, optimizers and extra checkpointed state.

    The names are the checkpoint's keys, so they must stay the same for old runs to restore.
    """

    networks: dict[str, keras.Model]
    optimizers: dict[str, keras.optimizers.Optimizer]
    sampler: str  # the network that draws samples and is exported as the generator
    state: dict[str, Any] = field(default_factory=dict)
    # What the step calls that is not checkpointed itself: frozen helpers (a feature network), views of the networks (ProGAN's stages)
    fixed: dict[str, Any] = field(default_factory=dict)

    def checkpoint_items(self) -> dict[str, Any]:
        return {**self.networks, **self.optimizers, **self.state}

    @property
    def sampling_model(self) -> keras.Model:
        return self.networks[self.sampler]


@dataclass(frozen=True)
class Phase:
    """A part of training with its own compiled step (ProGAN's stages): from step `start` to the next phase's start."""

    start: int
    label: str


@dataclass
class Column:
    """One column of an image-to-image family's Pairs view: n images, and how Generate and Evaluate score them."""

    images: np.ndarray  # n images in [-1, 1]
    labels: np.ndarray | None = None  # the class each image should still read as (None: unlabelled)
    read_by: str = ""  # the dataset whose evaluator reads its classes ("" = not read)
    scored_against: str = ""  # the column PSNR and SSIM compare it with ("" = not scored)


class StepContext:
    """Loss scaling and gradient application across replicas, and the phase being traced: what a train step asks the loop for."""

    def __init__(self, strategy: tf.distribute.Strategy, phase: int = 0) -> None:
        self.replicas = strategy.num_replicas_in_sync
        self.phase = phase  # the index of the family's `phases` this step belongs to (a Python int: each phase is traced apart)

    def scaled(self, optimizer: keras.optimizers.Optimizer, loss: tf.Tensor) -> tf.Tensor:
        """The loss to differentiate (inside the tape): split over replicas, loss-scaled for float16."""
        return optimizer.scale_loss(loss / self.replicas)

    def apply(self, optimizer: keras.optimizers.Optimizer, tape: tf.GradientTape, scaled_loss: tf.Tensor, variables) -> tf.Tensor:
        """Apply the gradient of a `scaled` loss; return the unscaled global gradient norm.

        Under float16 loss scaling the scale is read before the update (which halves it after an
        overflow and doubles it after a run of good steps); a step the scaler skipped for overflowing
        returns a non-finite norm, which the loop records as skipped, not as divergence.
        """
        scale = getattr(optimizer, "dynamic_scale", None)
        scale = None if scale is None else tf.identity(tf.cast(scale, tf.float32))
        grads = tape.gradient(scaled_loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        norm = tf.linalg.global_norm(grads) * self.replicas
        return norm if scale is None else norm / scale


class GanFamily:
    """One GAN family: subclass it in one module and add one line to `gan_core.families.FAMILIES`."""

    name: str = ""
    settings: type[Settings] = Settings
    metrics: tuple[Metric, ...] = ()
    divergence_advice = "Try lower learning rates."
    stage_view = ""  # the Generate view that shows `stages` (e.g. "Pyramid"); "" for families that draw in one stage
    image_to_image = False  # the sampler maps an image to an image: Generate shows `pairs` instead of latent views
    # Evaluate compares the sampler's images with held-out ones as distributions (FD, precision, near-copies); False
    # for families whose outputs restore those very held-out images (SRGAN), which Evaluate scores by `pairs` alone.
    compares_distributions = True
    style_based = False  # the sampler is a StyleGAN generator: Generate adds the style-mixing view

    # ---- data -------------------------------------------------------------------------
    def check_data(self, config: RunConfig, data: ImageSet) -> None:
        """Raise ConfigError with one sentence when the dataset cannot feed this family."""

    def rows_per_step(self, config: RunConfig) -> int:
        """Images one training step takes from the data."""
        return config.batch_size

    # ---- training -----------------------------------------------------------------------
    def build(self, config: RunConfig, spec: DataSpec, sync_batch_norm: bool) -> Parts:
        """Networks, optimizers (built) and extra state, under the dtype policy and seed the loop has set."""
        raise NotImplementedError

    def draws(self, config: RunConfig, rng: tf.random.Generator, rows: int, spec: DataSpec) -> dict[str, tf.Tensor]:
        """Random tensors for the global batch, one row per image (each replica gets the rows of its images)."""
        return {}

    def train_step(
        self, parts: Parts, config: RunConfig, images: tf.Tensor, labels: tf.Tensor, draws: dict[str, tf.Tensor], ctx: StepContext
    ) -> dict[str, tf.Tensor]:
        """One step on one replica's batch; returns a float32 scalar per declared metric."""
        raise NotImplementedError

    def run_metrics(self, config: RunConfig) -> tuple[Metric, ...]:
        """The metrics a new run of this config records (a subset of `metrics`: those its settings leave on).

        A metric that `needs` a setting only when that setting is above 0 (a stabilizer's or a loss term's weight):
        a run without the term would chart a line of zeros.
        """
        return tuple(m for m in self.metrics if not m.needs or getattr(config, m.needs) > 0)

    def phases(self, config: RunConfig, spec: DataSpec) -> tuple[Phase, ...]:
        """The phases of training in order, the first starting at step 0; () for a family that trains one way throughout.

        The loop compiles the step once per phase (`StepContext.phase`), never runs one call across a phase's
        start, saves the sample grid at each start (the end of the previous phase), and lists the phases in
        status.json for the charts.
        """
        return ()

    def after_step(self, parts: Parts, config: RunConfig) -> None:
        """Work after each step outside the replicas (e.g. an EMA of weights)."""
        return None

    def warning(self, config: RunConfig, recent: list[dict[str, float]]) -> str | None:
        """A sentence when recent history shows a known failure of this family (written to status.json)."""
        return None

    # ---- sampling -----------------------------------------------------------------------
    def sampler(self, config: RunConfig, spec: DataSpec) -> tuple[str, keras.Model]:
        """The sampling network of a restored run, freshly built, and its checkpoint key."""
        raise NotImplementedError

    def generate(
        self, model: keras.Model, config: RunConfig, num_classes: int, n: int, seed: int, label: int | None = None,
        truncation: float = 1.0, networks: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """n images in [-1, 1] (and their labels, for class-conditional samplers) from a seed.

        `truncation` in [0, 1] trades variety for typical images (1: the plain samples, 0: the average
        one); `networks` are the partners restored beside the sampler, by checkpoint key.
        """
        raise NotImplementedError

    def sample_grid(
        self, model: keras.Model, config: RunConfig, num_classes: int, networks: dict[str, keras.Model] | None = None
    ) -> tuple[np.ndarray, int]:
        """The fixed-seed images of a run's sample grids, and the grid's columns (`networks`: the partners, by checkpoint key)."""
        raise NotImplementedError

    def stages(self, model: keras.Model, config: RunConfig, z: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """The named images of each stage of drawing z, coarsest first, each in [-1, 1]; [] for one-stage families."""
        return []

    def detail_noise(self, config: RunConfig) -> slice | None:
        """The part of z that only the last stage reads (redrawing it changes fine detail alone); None if none."""
        return None

    def model_inputs(self, config: RunConfig, originals: np.ndarray, seed: int) -> np.ndarray:
        """Image-to-image families: the sampler's inputs made from images of the training size in [-1, 1] (SRGAN degrades them)."""
        raise NotImplementedError

    def pairs(
        self, model: keras.Model, config: RunConfig, n: int, seed: int, networks: dict[str, keras.Model] | None = None
    ) -> dict[str, Column]:
        """Image-to-image families: n held-out examples as named columns (inputs, baselines, outputs, originals)."""
        raise NotImplementedError

    def directions(self, model: keras.Model, config: RunConfig, partners: dict[str, keras.Model]) -> dict[str, keras.Model]:
        """Image-to-image families: the networks Apply can run, by what they do (the sampler first)."""
        return {"restore": model}

    def partners(self, config: RunConfig, spec: DataSpec) -> dict[str, Any]:
        """Networks or state, freshly built by checkpoint key, restored beside the sampler because the views use them (CycleGAN's B->A, StyleGAN's w_avg)."""
        return {}

    def target_dataset(self, config: RunConfig) -> str:
        """The dataset the sampler's images belong to, whose evaluator and held-out images measure them."""
        return config.dataset

    def exports(self, config: RunConfig, spec: DataSpec) -> dict[str, tuple[str, keras.Model]]:
        """Freshly built networks that Models and `export` offer as .keras files: role -> (checkpoint key, network)."""
        return {"generator": self.sampler(config, spec)}


def suffixed(draws: dict[str, Any], suffix: str) -> dict[str, Any]:
    """One network's draws among several (a family with one discriminator per domain or level): each key + _suffix."""
    return {f"{key}_{suffix}": value for key, value in draws.items()}


def unsuffixed(draws: dict[str, Any], suffix: str) -> dict[str, Any]:
    """The draws whose keys end in _suffix, without it: what `suffixed` made for that network."""
    return {key.removesuffix(f"_{suffix}"): value for key, value in draws.items() if key.endswith(f"_{suffix}")}

