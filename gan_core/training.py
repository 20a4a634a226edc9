"""The GradientTape training loop: a compiled step, samples, checkpoints and history on disk.

One `tf.function` runs `k` training steps per call (k = steps_per_call, fewer at sample or
checkpoint boundaries, passed as a tensor so it never retraces). Each step does
`d_steps - 1` discriminator-only updates and then one joint update in which a single
forward pass feeds both tapes, as in the TensorFlow DCGAN tutorial. Everything runs under
a `tf.distribute` strategy, so the same code serves one CPU, several GPUs and several
machines. The noise is drawn for the global batch and each replica takes the rows of its
images, and batch normalization is synchronized across replicas (`gan.build_parts`), so a
run gives the same losses on one device as on several with the same global batch.

With `eval_every` > 0 a QualityMonitor appends cheap quality metrics (Fréchet distance, classes
covered, class KL) to metrics.csv every `eval_every` steps; see its docstring.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import tensorflow as tf

from gan_core import devices
from gan_core.config import RunConfig
from gan_core.datasets import ImageSet, load_dataset, make_pipeline, steps_per_epoch
from gan_core.errors import ConfigError, GanError, RunError
from gan_core.evaluation import SEED as EVAL_SEED
from gan_core.evaluation import check_n, cheap_metrics, make_reference, reference_data, subset
from gan_core.evaluator import get_evaluator
from gan_core.gan import build_parts, fixed_inputs, generate, grid_columns
from gan_core.images import make_grid, save_png, to_uint8
from gan_core.losses import d_probabilities, discriminator_loss, generator_loss, gradient_penalty
from gan_core.runs import Run, unreadable_reason, write_error

METRICS = ("g_loss", "d_loss", "d_real", "d_fake", "g_grad_norm", "d_grad_norm")
STATUS_EVERY_SEC = 1.0
KEEP_CHECKPOINTS = 3
# A loss this large is divergence even while finite: healthy GAN losses stay within about 1e3, and
# learning rates of 1e3 send them past 1e12 in one step, after which D saturates and every gradient is 0.
LOSS_LIMIT = 1e6
LOSSES = ("g_loss", "d_loss")
QUALITY_N = 1000
EVALUATOR_EPOCHS_ENV = "GAN_EVALUATOR_EPOCHS"


@dataclass
class Progress:
    """What a progress display needs after each compiled call."""

    step: int
    total_steps: int
    epoch: int
    row: dict[str, float]
    seconds: float


ProgressCallback = Callable[[Progress], None]


def check_data_fits(config: RunConfig, data: ImageSet) -> None:
    """Raise ConfigError when the dataset cannot feed this configuration."""
    if config.conditional and data.num_classes < 2:
        raise ConfigError(f"conditional=true needs a labelled dataset; '{data.source}' has no class labels.")
    height, width, _ = data.image_shape
    if config.architecture == "dcgan" and (height % 4 or width % 4):
        raise ConfigError(f"The dcgan architecture needs image sides divisible by 4; '{data.source}' has {height}x{width} images.")
    if config.batch_size * config.d_steps > len(data.images):
        raise ConfigError(
            f"batch_size x d_steps ({config.batch_size * config.d_steps}) is larger than the dataset ({len(data.images)} images)."
        )


def evaluator_epochs() -> int | None:
    """Epochs for training a missing evaluator: $GAN_EVALUATOR_EPOCHS when set (tests use 1 for speed), else its default."""
    value = os.environ.get(EVALUATOR_EPOCHS_ENV, "").strip()
    return int(value) if value else None


class QualityMonitor:
    """Cheap quality metrics every `eval_every` steps, appended to metrics.csv; a failure turns it off with a note.

    `start` loads the dataset's evaluator (training it the first time, ~20 s), the statistics of
    N = min(QUALITY_N, held-out images) held-out images and the real-vs-real floor (N training images),
    which goes to status.json as `quality_floor` with `quality_n`. Each point generates N images with the
    sampling generator from the same seeded latents (and cycling labels) as `generation.sample`, so it is the
    Fréchet distance the Evaluate page reports at that N for a checkpoint of the same step.
    """

    def __init__(self, run: Run, config: RunConfig, num_classes: int, sampler: tf.keras.Model) -> None:
        self.run, self.config, self.sampler = run, config, sampler
        self.every = config.eval_every
        self.labels = (np.arange(QUALITY_N) % num_classes).astype(np.int32) if config.conditional else None
        self.note = ""

    @property
    def on(self) -> bool:
        return self.every > 0

    def start(self, step: int) -> None:
        """Cut metrics.csv back to `step`, then prepare the evaluator, the reference and the floor."""
        self.run.truncate_metrics(step)
        if not self.on:
            return
        message = self.run.raw_status().get("message", "")
        self.run.update_status(message="Preparing the quality metrics: loading the evaluator (the first use per dataset trains it, about 20 s).")
        try:
            data = reference_data(self.config.dataset)
            self.evaluator = get_evaluator(self.config.dataset, progress=self._report, epochs=evaluator_epochs(), data=data)
            self.n = check_n(min(QUALITY_N, data.heldout.num_images), data)
            self.reference = make_reference(self.evaluator, data, self.n)
            real = data.train.images[subset(data.train.num_images, self.n)]
            floor = cheap_metrics(lambda n: real[:n], self.evaluator, self.reference, self.n)
            self.z = np.random.default_rng(EVAL_SEED).standard_normal((self.n, self.config.latent_dim), dtype=np.float32)
        except Exception as exc:  # the evaluator, the data or the metrics can fail in many ways; training goes on
            self._fail(step, exc)
            return
        self.run.update_status(message=message, quality_floor=floor["fd"], quality_n=self.n)

    def after(self, step: int) -> None:
        """Measure when `step` is a multiple of eval_every (the last step of a finished run is measured by `_finish`)."""
        if self.on and step % self.every == 0:
            self.measure(step)

    def measure(self, step: int) -> None:
        """Append one metrics.csv row for the generator as it is at `step`."""
        try:
            values = cheap_metrics(self._generate, self.evaluator, self.reference, self.n)
            self.run.append_metrics([{
                "step": step, "frechet_distance": values["fd"],
                "classes_covered": values.get("classes_covered"), "class_kl": values.get("class_kl"),
            }])
        except Exception as exc:  # see start
            self._fail(step, exc)

    def _generate(self, n: int) -> np.ndarray:
        labels = None if self.labels is None else self.labels[:n]
        return to_uint8(generate(self.sampler, self.z[:n], labels))

    def _report(self, fraction: float, message: str) -> None:
        self.run.update_status(message=f"Preparing the quality metrics: {message[:1].lower()}{message[1:]}.")

    def _fail(self, step: int, exc: Exception) -> None:
        reason = str(exc).rstrip(".") if isinstance(exc, GanError) else f"{type(exc).__name__}: {exc}"
        self.note = f"Quality metrics failed at step {step} and are off for the rest of this run ({reason})."
        self.every = 0
        self.run.update_status(message=self.note)


class Trainer:
    """Trains one run folder; `fit` returns the final status."""

    def __init__(
        self,
        run: Run,
        *,
        strategy: tf.distribute.Strategy | None = None,
        stop_event: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.run = run
        self.config = run.config()
        self.stop_event = stop_event or threading.Event()
        self.on_progress = on_progress
        self.notes: list[str] = []
        devices.configure_gpus()
        self.strategy = strategy or devices.choose_strategy()
        self.data = load_dataset(self.config.dataset)
        check_data_fits(self.config, self.data)
        self.policy = devices.precision_policy(self.config.precision)
        self.steps_per_epoch = steps_per_epoch(len(self.data.images), self.config.batch_size * self.config.d_steps)
        self.total_steps = self.config.steps or self.config.epochs * self.steps_per_epoch
        with self.strategy.scope():
            self.parts = build_parts(self.config, self.data.image_shape, self.data.num_classes, self.policy)
        self.checkpoint = self.parts.checkpoint()
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(run.checkpoints_dir), max_to_keep=KEEP_CHECKPOINTS, checkpoint_name="ckpt"
        )
        dataset = make_pipeline(
            self.data.images, self.data.labels, self.config.batch_size * self.config.d_steps, self.config.seed
        )
        self.iterator = iter(self.strategy.experimental_distribute_dataset(dataset))
        self.train_fn = tf.function(self._train_calls, jit_compile=devices.use_xla(self.config.xla))
        self.quality = QualityMonitor(run, self.config, self.data.num_classes, self.parts.sampler)

    # ---- the compiled step ------------------------------------------------------------
    def _train_calls(self, iterator, k):
        """Run k steps; return a k×len(METRICS) tensor of metrics averaged over replicas."""
        metrics = tf.TensorArray(tf.float32, size=k)
        rows = self.config.batch_size * self.config.d_steps
        for i in tf.range(k):
            images, labels = next(iterator)
            z = self.parts.rng.normal([rows, self.config.latent_dim])  # the global batch's noise, one row per image
            per_replica = self.strategy.run(self._replica_step, args=(images, labels, z))
            metrics = metrics.write(i, self.strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None))
            if self.parts.ema_generator is not None:
                self._update_ema()
        return metrics.stack()

    def _replica_step(self, images, labels, z):
        z = _replica_rows(z, tf.shape(images)[0])
        images_chunks = tf.split(images, self.config.d_steps)
        label_chunks = tf.split(labels, self.config.d_steps)
        z_chunks = tf.split(z, self.config.d_steps)
        for j in range(self.config.d_steps - 1):
            self._discriminator_update(images_chunks[j], label_chunks[j], z_chunks[j])
        return self._joint_update(images_chunks[-1], label_chunks[-1], z_chunks[-1])

    def _g_inputs(self, z, labels):
        return [z, labels] if self.config.conditional else z

    def _d_inputs(self, images, labels):
        return [images, labels] if self.config.conditional else images

    def _d_loss(self, real, fake, labels, real_logits, fake_logits):
        loss = discriminator_loss(self.config.loss, real_logits, fake_logits, self.config.label_smoothing)
        if self.config.loss == "wgan-gp":
            gp_labels = labels if self.config.conditional else None
            loss += self.config.gp_weight * gradient_penalty(self.parts.discriminator, real, fake, gp_labels)
        return loss

    def _scaled(self, optimizer, loss):
        """The loss to differentiate (inside the tape): split over replicas, loss-scaled for float16."""
        return optimizer.scale_loss(loss / self.strategy.num_replicas_in_sync)

    def _apply(self, optimizer, tape, scaled_loss, variables):
        """Apply the gradient of a `_scaled` loss; return the unscaled global gradient norm."""
        grads = tape.gradient(scaled_loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        norm = tf.linalg.global_norm(grads) * self.strategy.num_replicas_in_sync
        scale = getattr(optimizer, "dynamic_scale", None)
        return norm / tf.cast(scale, tf.float32) if scale is not None else norm

    def _discriminator_update(self, real, labels, z):
        G, D = self.parts.generator, self.parts.discriminator
        fake = G(self._g_inputs(z, labels), training=True)
        with tf.GradientTape() as tape:
            real_logits = D(self._d_inputs(real, labels), training=True)
            fake_logits = D(self._d_inputs(fake, labels), training=True)
            d_loss = self._scaled(self.parts.d_optimizer, self._d_loss(real, fake, labels, real_logits, fake_logits))
        self._apply(self.parts.d_optimizer, tape, d_loss, D.trainable_variables)

    def _joint_update(self, real, labels, z):
        G, D = self.parts.generator, self.parts.discriminator
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = G(self._g_inputs(z, labels), training=True)
            real_logits = D(self._d_inputs(real, labels), training=True)
            fake_logits = D(self._d_inputs(fake, labels), training=True)
            g_loss = generator_loss(self.config.loss, fake_logits)
            d_loss = self._d_loss(real, fake, labels, real_logits, fake_logits)
            g_scaled = self._scaled(self.parts.g_optimizer, g_loss)
            d_scaled = self._scaled(self.parts.d_optimizer, d_loss)
        g_norm = self._apply(self.parts.g_optimizer, g_tape, g_scaled, G.trainable_variables)
        d_norm = self._apply(self.parts.d_optimizer, d_tape, d_scaled, D.trainable_variables)
        return tf.stack([
            tf.cast(g_loss, tf.float32),
            tf.cast(d_loss, tf.float32),
            d_probabilities(self.config.loss, real_logits),
            d_probabilities(self.config.loss, fake_logits),
            g_norm,
            d_norm,
        ])

    def _update_ema(self):
        """EMA of generator weights, with warm-up so early samples are not dominated by the init."""
        t = tf.cast(self.parts.g_optimizer.iterations, tf.float32)
        decay = tf.minimum(self.config.ema_decay, (1.0 + t) / (10.0 + t))
        for ema_weight, weight in zip(self.parts.ema_generator.weights, self.parts.generator.weights):
            ema_weight.assign(decay * ema_weight + (1.0 - decay) * weight)

    # ---- the loop ---------------------------------------------------------------------
    def fit(self, resume: bool = False) -> dict:
        """Train to total_steps (or until stopped or diverged) and return the final status."""
        step = self._restore() if resume else self._start_fresh()
        status = self.run.raw_status()
        self._train_seconds = float(status.get("train_seconds", 0.0))
        self.run.update_status(
            state="running", step=step, total_steps=self.total_steps, steps_per_epoch=self.steps_per_epoch,
            pid=os.getpid(), host=socket.gethostname(), started=status.get("started", time.time()),
            dataset=self.data.source, image_shape=list(self.data.image_shape),
            num_classes=self.data.num_classes, class_names=list(self.data.class_names),
            precision=self.policy, message=" ".join(self.notes), finished=None,
        )
        self.quality.start(step)
        if step == 0:
            self._save_samples(0)
        pending: list[dict] = []
        last_status = time.monotonic()
        while step < self.total_steps:
            if self.stop_event.is_set() or self.run.stop_requested():
                return self._finish(step, pending, "stopped", "Stopped on request.")
            k = self._call_size(step)
            started = time.perf_counter()
            values = self.train_fn(self.iterator, tf.constant(k, dtype=tf.int32)).numpy()
            seconds = time.perf_counter() - started
            self._train_seconds += seconds
            rows = self._rows(step, values, seconds)
            bad = _first_diverged(values)
            if bad is not None:
                return self._diverge(step + bad + 1, pending + rows[:bad], rows[bad])
            pending += rows
            step += k
            if step % self.config.sample_every == 0:
                self._save_samples(step)
            if step % self.config.checkpoint_every == 0:
                self._save_checkpoint(step, pending)
            self.quality.after(step)
            if time.monotonic() - last_status > STATUS_EVERY_SEC:
                self._flush(pending)
                self.run.update_status(step=step, train_seconds=self._train_seconds)
                last_status = time.monotonic()
            if self.on_progress:
                self.on_progress(Progress(step, self.total_steps, rows[-1]["epoch"], rows[-1], seconds))
        return self._finish(step, pending, "finished", "")

    def _start_fresh(self) -> int:
        if self.manager.latest_checkpoint:
            raise RunError(f"Run '{self.run.id}' already has checkpoints; resume it instead of training it again.")
        return 0

    def _restore(self) -> int:
        """Restore the newest readable checkpoint, falling back to older ones (with a note naming each), never to scratch."""
        unreadable = []
        for path in reversed(self.manager.checkpoints):
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except Exception as exc:  # a damaged file fails in many ways (OpError, IndexError, ...)
                name = os.path.basename(path)
                self.notes.append(f"Checkpoint {name} could not be read ({unreadable_reason(path, exc)}); using an older one.")
                unreadable.append(name)
                continue
            step = int(self.parts.step.numpy())
            self.run.truncate_history(step)
            self.notes.append(f"Resumed from step {step}.")
            return step
        broken = f" ({', '.join(unreadable)} could not be read)" if unreadable else ""
        raise RunError(f"Run '{self.run.id}' has no readable checkpoint to resume from{broken}; start a new run instead.")

    def _call_size(self, step: int) -> int:
        """Steps in the next call: never past the end or a sample/checkpoint/quality boundary."""
        config = self.config
        limits = [
            config.steps_per_call,
            self.total_steps - step,
            config.sample_every - step % config.sample_every,
            config.checkpoint_every - step % config.checkpoint_every,
        ]
        if self.quality.on:
            limits.append(self.quality.every - step % self.quality.every)
        return max(1, min(limits))

    def _rows(self, step: int, values: np.ndarray, seconds: float) -> list[dict]:
        images_per_sec = len(values) * self.config.batch_size * self.config.d_steps / max(seconds, 1e-9)
        rows = []
        for i, metrics in enumerate(values):
            row = {"step": step + i + 1, "epoch": (step + i) // self.steps_per_epoch + 1}
            row.update({name: float(v) for name, v in zip(METRICS, metrics)})
            row.update(images_per_sec=round(images_per_sec, 1), elapsed_sec=round(self._train_seconds, 3))
            rows.append(row)
        return rows

    def _flush(self, pending: list[dict]) -> None:
        if pending:
            with _writing(f"history.csv at step {int(pending[-1]['step'])}"):
                self.run.append_history(pending)
            pending.clear()

    def _save_samples(self, step: int) -> None:
        z, labels = fixed_inputs(self.config, self.data.num_classes)
        images = to_uint8(generate(self.parts.sampler, z, labels))
        grid = make_grid(images, cols=grid_columns(self.config, self.data.num_classes, len(z)))
        with _writing(f"the samples for step {step}"):
            save_png(self.run.samples_dir / f"step_{step:06d}.png", grid)

    def _save_checkpoint(self, step: int, pending: list[dict]) -> None:
        """History first, then the checkpoint, so history always reaches the checkpoint's step."""
        self._flush(pending)
        self.parts.step.assign(step)
        with _writing(f"the checkpoint for step {step}"):  # on failure the older checkpoints stay
            self.manager.save(checkpoint_number=step)
        self.run.update_status(step=step, train_seconds=self._train_seconds, last_checkpoint_step=step)

    def _finish(self, step: int, pending: list[dict], state: str, message: str) -> dict:
        if step % self.config.sample_every:
            self._save_samples(step)
        if step % self.config.checkpoint_every or not self.manager.latest_checkpoint:
            self._save_checkpoint(step, pending)
        self._flush(pending)
        if state == "finished" and self.quality.on and step % self.quality.every:
            self.quality.measure(step)
        message = " ".join(filter(None, [*self.notes, message, self.quality.note]))
        return self.run.update_status(state=state, step=step, message=message, finished=time.time(), train_seconds=self._train_seconds)

    def _diverge(self, bad_step: int, good_rows: list[dict], bad_row: dict) -> dict:
        self._flush(good_rows)
        bad = ", ".join(f"{k}={bad_row[k]:.3g}" for k in METRICS if _out_of_range(k, bad_row[k]))
        latest = self.manager.latest_checkpoint
        kept = f"the checkpoint at step {latest.rsplit('-', 1)[1]} is kept" if latest else "there is no checkpoint yet"
        message = (
            f"Training diverged at step {bad_step} ({bad}); {kept}. "
            "Try lower learning rates, label smoothing, or the wgan-gp loss."
        )
        return self.run.update_status(state="diverged", step=bad_step - 1, message=message, finished=time.time(), train_seconds=self._train_seconds)


def _replica_rows(global_rows: tf.Tensor, local_count: tf.Tensor) -> tf.Tensor:
    """This replica's rows of a global-batch tensor: replica r holds rows [r*n, (r+1)*n), as its images do."""
    start = tf.distribute.get_replica_context().replica_id_in_sync_group * local_count
    return global_rows[start:start + local_count]


@contextlib.contextmanager
def _writing(what: str) -> Iterator[None]:
    """Turn a failed write (disk full, read-only folder; from Python or from TensorFlow) into one RunError sentence."""
    try:
        yield
    except (OSError, tf.errors.OpError) as exc:
        raise write_error(what, exc) from None


def _out_of_range(name: str, value: float) -> bool:
    """A metric that means divergence: not finite, or a loss beyond ±LOSS_LIMIT."""
    return not np.isfinite(value) or (name in LOSSES and abs(value) > LOSS_LIMIT)


def _first_diverged(values: np.ndarray) -> int | None:
    """Index of the first row (step) with a metric out of range; None when every row is fine."""
    bad_rows = [i for i, row in enumerate(values) if any(_out_of_range(k, v) for k, v in zip(METRICS, row))]
    return bad_rows[0] if bad_rows else None


def train_run(
    run: Run,
    *,
    resume: bool = False,
    stop_event: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> dict:
    """Train a run folder to its end; failures are recorded in status.json (when it can be written) and re-raised.

    An OSError (a full disk, a read-only run folder) is re-raised as a one-sentence RunError.
    """
    try:
        trainer = Trainer(run, strategy=strategy, stop_event=stop_event, on_progress=on_progress)
        return trainer.fit(resume=resume)
    except (GanError, OSError) as exc:
        error = exc if isinstance(exc, GanError) else write_error(f"to the run folder '{run.dir}'", exc)
        with contextlib.suppress(OSError):  # the disk that failed may refuse this write too
            run.update_status(state="crashed", message=str(error), finished=time.time(), pid=os.getpid(), host=socket.gethostname())
        if error is exc:
            raise
        raise error from None
    except BaseException as exc:
        with contextlib.suppress(OSError):
            run.update_status(
                state="crashed", message=f"Training failed: {type(exc).__name__}: {exc}",
                finished=time.time(), pid=os.getpid(), host=socket.gethostname(),
            )
        raise
