"""The GradientTape training loop: a compiled step, samples, checkpoints and history on disk.

The loop never names a family: the run's family (gan_core.families) builds the networks,
draws the random tensors of each global batch, runs the step on each replica and returns
named scalars, which become history.csv's columns. One `tf.function` runs `k` steps per call
(k = steps_per_call, fewer at sample or checkpoint boundaries, passed as a tensor so it never
retraces). Everything runs under a `tf.distribute` strategy, so the same code serves one CPU,
several GPUs and several machines. The family's random draws are made for the global batch and
each replica takes the rows of its images, and batch normalization is synchronized across
replicas, so a run gives the same losses on one device as on several with the same global batch.

With `eval_every` > 0 a QualityMonitor appends cheap quality metrics (Fréchet distance, classes
covered, class KL) to metrics.csv every `eval_every` steps; see its docstring.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from gan_core import families
from gan_core.config import RunConfig
from gan_core.data.datasets import load_dataset, make_pipeline, steps_per_epoch
from gan_core.data.images import make_grid, save_png, to_uint8
from gan_core.errors import GanError, RefusedError
from gan_core.evaluation.evaluate import SEED as EVAL_SEED
from gan_core.evaluation.evaluate import cheap_metrics, check_n, make_reference, reference_data, subset
from gan_core.evaluation.evaluator import get_evaluator
from gan_core.families.base import DataSpec, GanFamily, Parts, Phase, StepContext
from gan_core.families.data_fit import check_data_fits
from gan_core.history_metrics import Metric
from gan_core.store import provenance
from gan_core.store.runs import ACTIVE_STATES, Run, unreadable_reason, write_error
from gan_core.training import devices
from gan_core.training.events import EventLog

STATUS_EVERY_SEC = 1.0
KEEP_CHECKPOINTS = 3
# A loss this large is divergence even while finite: healthy GAN losses stay within about 1e3, and
# learning rates of 1e3 send them past 1e12 in one step, after which D saturates and every gradient is 0.
LOSS_LIMIT = 1e6
RECENT_ROWS = 200  # history rows kept in memory for the family's warning rule
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
    metrics: tuple[Metric, ...]  # the family's declared metrics, for the progress line


ProgressCallback = Callable[[Progress], None]


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

    def __init__(self, run: Run, config: RunConfig, family: GanFamily, num_classes: int, sampler: keras.Model) -> None:
        self.run, self.config, self.family, self.num_classes, self.sampler = run, config, family, num_classes, sampler
        self.events: EventLog | None = None  # the trainer's TensorBoard log, when the run writes one
        self.every = config.eval_every
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
            target = self.family.target_dataset(self.config)
            data = reference_data(target)
            self.evaluator = get_evaluator(target, progress=self._report, epochs=evaluator_epochs(), data=data)
            self.n = check_n(min(QUALITY_N, data.heldout.num_images), data)
            self.reference = make_reference(self.evaluator, data, self.n)
            real = data.train.images[subset(data.train.num_images, self.n)]
            floor = cheap_metrics(lambda n: real[:n], self.evaluator, self.reference, self.n)
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
            row = {"frechet_distance": values["fd"], "classes_covered": values.get("classes_covered"), "class_kl": values.get("class_kl")}
            self.run.append_metrics([{"step": step, **row}])
            if self.events is not None:
                self.events.scalars(step, {f"Quality/{name}": value for name, value in row.items()})
                self.events.flush()
        except Exception as exc:  # see start
            self._fail(step, exc)

    def _generate(self, n: int) -> np.ndarray:
        images, _ = self.family.generate(self.sampler, self.config, self.num_classes, n, EVAL_SEED)
        return to_uint8(images)

    def _report(self, fraction: float, message: str) -> None:
        self.run.update_status(message=f"Preparing the quality metrics: {message[:1].lower()}{message[1:]}.")

    def _fail(self, step: int, exc: Exception) -> None:
        reason = str(exc).rstrip(".") if isinstance(exc, GanError) else f"{type(exc).__name__}: {exc}"
        self.note = f"Quality metrics failed at step {step} and are off for the rest of this run ({reason})."
        self.every = 0
        self.run.update_status(message=self.note)


def short_of_last_phase(phases: Sequence[Phase], total_steps: int) -> str | None:
    """The sentence for a run that ends before its last phase starts (a ProGAN run too short to reach full size), else None."""
    if not phases or total_steps > phases[-1].start:
        return None
    reached = [phase for phase in phases if phase.start < total_steps][-1]
    last = phases[-1]
    return (
        f"This run ends at step {total_steps:,}, before its last phase ({last.label}) starts at step {last.start:,}: it trains "
        f"up to {reached.label} only. Give it more than {last.start:,} steps to reach {last.label}."
    )


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
        self.family = families.get(self.config.family)
        check_data_fits(self.config, self.data)
        # A run that has trained keeps the metrics its history.csv has columns for (its family may declare more since).
        self.metrics: tuple[Metric, ...] = run.metrics() if run.history_path.exists() else self.family.run_metrics(self.config)
        self.policy = devices.precision_policy(self.config.precision)
        self.rows_per_step = self.family.rows_per_step(self.config)
        self.steps_per_epoch = steps_per_epoch(len(self.data.images), self.rows_per_step)
        self.total_steps = self.config.steps or self.config.epochs * self.steps_per_epoch
        self.spec = DataSpec(self.data.image_shape, self.data.num_classes)
        with self.strategy.scope():
            self.parts = self._build()
        self.checkpoint = tf.train.Checkpoint(**self.parts.checkpoint_items(), step=self.step, rng=self.rng)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(run.checkpoints_dir), max_to_keep=KEEP_CHECKPOINTS, checkpoint_name="ckpt"
        )
        dataset = make_pipeline(self.data.images, self.data.labels, self.rows_per_step, self.config.seed)
        self.iterator = iter(self.strategy.experimental_distribute_dataset(dataset))
        self.phases = self.family.phases(self.config, self.spec)
        self.phase_starts = [phase.start for phase in self.phases][1:]
        if note := short_of_last_phase(self.phases, self.total_steps):
            self.notes.append(note)
        self.train_fn = tf.function(self._train_calls, jit_compile=devices.use_xla(self.config.xla), autograph=False)
        self.quality = QualityMonitor(run, self.config, self.family, self.data.num_classes, self.parts.sampling_model)
        self.recent: list[dict] = []
        self.events: EventLog | None = None  # opened by fit when the run writes TensorBoard events

    def _build(self) -> Parts:
        """The family's parts (inside the strategy's scope), seeded, under the run's dtype policy; then the step and RNG.

        With more than one replica in sync, batch normalization uses the statistics of the global batch,
        so training matches one device with the same global batch.
        """
        sync = self.strategy.num_replicas_in_sync > 1
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(self.policy)
        try:
            keras.utils.set_random_seed(self.config.seed)
            parts = self.family.build(self.config, self.spec, sync)
        finally:
            keras.mixed_precision.set_global_policy(previous)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.rng = tf.random.Generator.from_seed(self.config.seed)
        return parts

    # ---- the compiled step ------------------------------------------------------------
    def _train_calls(self, iterator, k, phase):
        """Run k steps of a phase (a Python int: one trace per phase); return a k x len(metrics) tensor of the family's metrics averaged over replicas."""
        ctx = StepContext(self.strategy, phase)

        def one_step(i, values):
            images, labels = next(iterator)
            draws = self.family.draws(self.config, self.rng, self.rows_per_step, self.spec)  # for the global batch, one row per image
            per_replica = self.strategy.run(functools.partial(self._replica_step, ctx=ctx), args=(images, labels, draws))
            values = values.write(i, self.strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None))
            self.family.after_step(self.parts, self.config)
            return i + 1, values

        start = (tf.constant(0), tf.TensorArray(tf.float32, size=k))
        _, values = tf.while_loop(lambda i, _: i < k, one_step, start, maximum_iterations=k)
        return values.stack()

    def _replica_step(self, images, labels, draws, ctx):
        local = tf.shape(images)[0]
        draws = {name: _replica_rows(tensor, local) for name, tensor in draws.items()}
        scalars = self.family.train_step(self.parts, self.config, images, labels, draws, ctx)
        return tf.stack([tf.cast(scalars[m.name], tf.float32) for m in self.metrics])

    # ---- the loop ---------------------------------------------------------------------
    def fit(self, resume: bool = False) -> dict:
        """Train to total_steps (or until stopped or diverged) and return the final status."""
        step = self._restore() if resume else self._start_fresh()
        with _writing("the run's samples folder"):  # a run copied without its empty folders (git, a zip) gets them back
            self.run.samples_dir.mkdir(exist_ok=True)
        status = self.run.raw_status()
        self._train_seconds = float(status.get("train_seconds", 0.0))
        self.run.update_status(
            state="running", step=step, start_step=step, total_steps=self.total_steps, steps_per_epoch=self.steps_per_epoch,
            metrics=[m.to_dict() for m in self.metrics], warning=None,
            pid=os.getpid(), host=socket.gethostname(), started=status.get("started", time.time()),
            dataset=self.data.source, image_shape=list(self.data.image_shape),
            num_classes=self.data.num_classes, class_names=list(self.data.class_names),
            precision=self.policy, message=" ".join(self.notes), finished=None,
            phases=[dataclasses.asdict(phase) for phase in self.phases],
        )
        with _writing("the run's environment.json"):
            provenance.record(self.run, provenance.entry(
                {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}, devices.device_description(),
                self.strategy.num_replicas_in_sync, self.policy, devices.use_xla(self.config.xla), step,
            ))
        if self.config.tensorboard:
            with _writing("the TensorBoard event file"):
                self.events = self.quality.events = EventLog(self.run.dir, step)
        self.quality.start(step)
        if step == 0:
            self._save_samples(0)
        pending: list[dict] = []
        last_status = time.monotonic()
        while step < self.total_steps:
            if self.stop_event.is_set() or self.run.stop_requested():
                return self._finish(step, pending, "stopped", "Stopped on request.")
            if self.config.time_limit and self._train_seconds >= self.config.time_limit:
                return self._finish(step, pending, "finished", f"Reached the time limit of {self.config.time_limit} s of training at step {step}.")
            k = self._call_size(step)
            started = time.perf_counter()
            values = self.train_fn(self.iterator, tf.constant(k, dtype=tf.int32), self.phase_at(step)).numpy()
            seconds = time.perf_counter() - started
            self._train_seconds += seconds
            rows = self._rows(step, values, seconds)
            bad = _first_diverged(self.metrics, values, self.policy == "mixed_float16")
            if bad is not None:
                return self._diverge(step + bad + 1, pending + rows[:bad], rows[bad])
            pending += rows
            self.recent = (self.recent + rows)[-RECENT_ROWS:]
            step += k
            if step % self.config.sample_every == 0 or step in self.phase_starts:
                self._save_samples(step)
            if step % self.config.checkpoint_every == 0:
                self._save_checkpoint(step, pending)
            self.quality.after(step)
            if time.monotonic() - last_status > STATUS_EVERY_SEC:
                self._flush(pending)
                self.run.update_status(step=step, train_seconds=self._train_seconds, warning=self.family.warning(self.config, self.recent))
                last_status = time.monotonic()
            if self.on_progress:
                self.on_progress(Progress(step, self.total_steps, rows[-1]["epoch"], rows[-1], seconds, self.metrics))
        return self._finish(step, pending, "finished", "")

    def _start_fresh(self) -> int:
        if self.manager.latest_checkpoint:
            raise RefusedError(f"Run '{self.run.id}' already has checkpoints; resume it instead of training it again.")
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
            step = int(self.step.numpy())
            self.run.truncate_history(step)
            self.notes.append(f"Resumed from step {step}.")
            return step
        broken = f" ({', '.join(unreadable)} could not be read)" if unreadable else ""
        raise RefusedError(f"Run '{self.run.id}' has no readable checkpoint to resume from{broken}; start a new run instead.")

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
        limits += [start - step for start in self.phase_starts if start > step][:1]
        return max(1, min(limits))

    def phase_at(self, step: int) -> int:
        """The index of the family's phase that the step after `step` steps belongs to."""
        return sum(start <= step for start in self.phase_starts)

    def _rows(self, step: int, values: np.ndarray, seconds: float) -> list[dict]:
        images_per_sec = len(values) * self.rows_per_step / max(seconds, 1e-9)
        rows = []
        for i, scalars in enumerate(values):
            row = {"step": step + i + 1, "epoch": (step + i) // self.steps_per_epoch + 1}
            row.update({m.name: float(v) for m, v in zip(self.metrics, scalars)})
            row.update(images_per_sec=round(images_per_sec, 1), elapsed_sec=round(self._train_seconds, 3))
            rows.append(row)
        return rows

    def _flush(self, pending: list[dict]) -> None:
        if pending:
            with _writing(f"history.csv at step {int(pending[-1]['step'])}"):
                self.run.append_history(pending)
            if self.events is not None:
                with _writing(f"the TensorBoard events of step {int(pending[-1]['step'])}"):
                    for row in pending:
                        values = {f"{m.group}/{m.name}": row[m.name] for m in self.metrics}
                        self.events.scalars(row["step"], values | {"Throughput/images_per_sec": row["images_per_sec"]})
                    self.events.flush()
            pending.clear()

    def _save_samples(self, step: int) -> None:
        images, cols = self.family.sample_grid(self.parts.sampling_model, self.config, self.data.num_classes, self.parts.networks)
        grid = make_grid(to_uint8(images), cols=cols)
        with _writing(f"the samples for step {step}"):
            save_png(self.run.samples_dir / f"step_{step:06d}.png", grid)
        if self.events is not None:
            with _writing(f"the TensorBoard samples of step {step}"):
                self.events.image(step, "Samples", grid)
                self.events.flush()

    def _save_checkpoint(self, step: int, pending: list[dict]) -> None:
        """History first, then the checkpoint, so history always reaches the checkpoint's step."""
        self._flush(pending)
        self.step.assign(step)
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
        self._close_events()
        return self.run.update_status(
            state=state, step=step, message=message, finished=time.time(), train_seconds=self._train_seconds,
            warning=self.family.warning(self.config, self.recent),
        )

    def _close_events(self) -> None:
        if self.events is not None:
            self.events.close()
            self.events = self.quality.events = None

    def _diverge(self, bad_step: int, good_rows: list[dict], bad_row: dict) -> dict:
        self._flush(good_rows)
        self._close_events()
        bad = ", ".join(f"{m.name}={bad_row[m.name]:.3g}" for m in self.metrics if _out_of_range(m, bad_row[m.name], self.policy == "mixed_float16"))
        latest = self.manager.latest_checkpoint
        kept = f"the checkpoint at step {latest.rsplit('-', 1)[1]} is kept" if latest else "there is no checkpoint yet"
        message = (
            f"Training diverged at step {bad_step} ({bad}); {kept}. "
            f"{self.family.divergence_advice}"
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


def _out_of_range(metric: Metric, value: float, loss_scaled: bool = False) -> bool:
    """A metric that means divergence: not finite (unless a skipped float16 step), or a loss beyond ±LOSS_LIMIT."""
    if not np.isfinite(value):
        return not (loss_scaled and metric.skippable)
    return metric.loss and abs(value) > LOSS_LIMIT


def _first_diverged(metrics: tuple[Metric, ...], values: np.ndarray, loss_scaled: bool) -> int | None:
    """Index of the first row (step) with a metric out of range; None when every row is fine."""
    bad_rows = [i for i, row in enumerate(values) if any(_out_of_range(m, v, loss_scaled) for m, v in zip(metrics, row))]
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

    An OSError (a full disk, a read-only run folder) is re-raised as a one-sentence RunError. A refusal
    (RefusedError) leaves status.json as it was, unless the job queue had marked the run queued or running
    for this worker: then it ends as crashed with the sentence, so the page does not wait for it forever.
    """
    try:
        trainer = Trainer(run, strategy=strategy, stop_event=stop_event, on_progress=on_progress)
        return trainer.fit(resume=resume)
    except RefusedError as exc:
        with contextlib.suppress(GanError, OSError):
            if run.raw_status().get("state") in ACTIVE_STATES:
                run.update_status(state="crashed", message=str(exc), finished=time.time())
        raise
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
