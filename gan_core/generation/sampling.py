"""Generating digits from a trained run: load its generator, sample, save, export."""

from __future__ import annotations

import io
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gan_core import families
from gan_core.config import RunConfig
from gan_core.data.images import make_grid, png_zip, save_png, to_uint8
from gan_core.errors import RunError
from gan_core.families.base import DataSpec, GanFamily
from gan_core.lazy_tf import keras, tf
from gan_core.store.runs import Run, atomic_write_bytes, unreadable_reason


@dataclass
class LoadedGenerator:
    """A run's sampling generator restored from one checkpoint."""

    model: keras.Model
    config: RunConfig
    step: int
    num_classes: int
    class_names: tuple[str, ...]
    note: str = ""  # set when damaged newer checkpoints were skipped
    partners: dict[str, Any] = field(default_factory=dict)  # other networks or state the family's views use, by checkpoint key

    @property
    def latent_dim(self) -> int:
        """The size of the noise vector the sampler takes (its first input)."""
        return int(self.model.inputs[0].shape[-1])

    @property
    def conditional(self) -> bool:
        """True when the sampler also takes a class label (its second input)."""
        return len(self.model.inputs) == 2


CHECKPOINT_LINE = re.compile(r'^(?:model_checkpoint_path|all_model_checkpoint_paths): "(.*)"$', re.MULTILINE)


def checkpoint_steps(run: Run) -> list[int]:
    """Steps of the checkpoints a run keeps, oldest first.

    Read from the checkpoint state file that tf.train.CheckpointManager keeps (`checkpoint`, text protobuf lines such
    as `all_model_checkpoint_paths: "ckpt-300"`) without TensorFlow, which pages that only list steps do not load.
    """
    try:
        text = (run.checkpoints_dir / "checkpoint").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    paths = {match.group(1) for match in CHECKPOINT_LINE.finditer(text)}
    return sorted({int(step) for path in paths if (step := path.rsplit("-", 1)[-1]).isdigit()})


def checkpoint_path(run: Run, step: int | None = None) -> tuple[int, str]:
    """The step and checkpoint prefix to restore: the given step, default the newest."""
    steps = checkpoint_steps(run)
    if not steps:
        raise RunError(f"Run '{run.id}' has no checkpoint yet; train it first.")
    step = steps[-1] if step is None else step
    if step not in steps:
        raise RunError(f"Run '{run.id}' has no checkpoint at step {step}; it has {', '.join(map(str, steps))}.")
    return step, str(run.checkpoints_dir / f"ckpt-{step}")


def load_generator(run: Run, step: int | None = None) -> LoadedGenerator:
    """Restore the generator (its EMA copy when the run keeps one) at a step; by default the newest readable one."""
    config = run.config()
    status = run.raw_status()
    checkpoint_path(run, step)  # one sentence for a run without checkpoints or an unknown step
    candidates = [step] if step is not None else checkpoint_steps(run)[::-1]
    spec = DataSpec(tuple(status["image_shape"]), int(status.get("num_classes", 0)))
    family = families.get(config.family)
    unreadable = []
    for candidate in candidates:
        key, model = family.sampler(config, spec)
        partners = family.partners(config, spec)
        prefix = run.checkpoints_dir / f"ckpt-{candidate}"
        try:
            restored = tf.train.Checkpoint(**{key: model}, **partners).restore(str(prefix))
        except Exception as exc:  # a damaged file fails in many ways (OpError, IndexError, ...)
            unreadable.append(f"ckpt-{candidate} ({unreadable_reason(prefix, exc)})")
            continue
        _check_matched(run, candidate, key, restored)
        note = f"Checkpoint {', '.join(unreadable)} could not be read; using step {candidate}." if unreadable else ""
        return LoadedGenerator(model, config, candidate, spec.num_classes, tuple(status.get("class_names", ())), note, partners)
    advice = "pick another step" if step is not None else "train it again or start a new run"
    raise RunError(f"Run '{run.id}' has no readable checkpoint: {', '.join(unreadable)} could not be read; {advice}.")


def _check_matched(run: Run, step: int, key: str, restored: Any) -> None:
    """Raise RunError unless the checkpoint gave every weight of the sampler and its partners (else they would stay random)."""
    try:
        restored.assert_existing_objects_matched()
    except AssertionError:
        raise RunError(
            f"Run '{run.id}': checkpoint {step} holds no weights for its sampler '{key}' (or a partner); "
            "the run's config or family changed since it was trained."
        ) from None
    restored.expect_partial()  # the checkpoint also holds D, the optimizers and the step, which sampling does not build


def sample(
    loaded: LoadedGenerator, n: int, seed: int = 0, label: int | None = None, truncation: float = 1.0
) -> tuple[np.ndarray, np.ndarray | None]:
    """n uint8 images (and their labels for conditional runs) from a seed, truncated by psi = `truncation` (1: none)."""
    if n < 1 or n > 10_000:
        raise RunError(f"n must be between 1 and 10000; got {n}.")
    conditional = loaded.conditional
    if label is not None and not conditional:
        raise RunError("label is only for conditional runs; this run is unconditional.")
    if label is not None and not 0 <= label < loaded.num_classes:
        raise RunError(f"label must be between 0 and {loaded.num_classes - 1}; got {label}.")
    family = families.get(loaded.config.family)
    check_truncation(family, truncation)
    # Only a truncated draw passes the new arguments, so families written before truncation keep working.
    extra = {} if truncation == 1 else {"truncation": float(truncation), "networks": loaded.partners}
    images, labels = family.generate(loaded.model, loaded.config, loaded.num_classes, n, seed, label, **extra)
    return to_uint8(images), labels


def check_truncation(family: GanFamily, truncation: float) -> None:
    """Raise RunError unless psi is in [0, 1] and the family draws from noise (image-to-image families only take 1)."""
    if not 0 <= truncation <= 1:
        raise RunError(f"truncation must be between 0 and 1; got {truncation}.")
    if truncation != 1 and family.image_to_image:
        raise RunError(f"truncation is for generators that draw from noise; the {family.name} family maps images to images.")


SAMPLE_SUFFIXES = (".npz", ".zip", ".png")


def check_out(out: str | Path) -> Path:
    """The output path of samples, or a RunError naming the suffixes allowed."""
    out = Path(out)
    if out.suffix.lower() not in SAMPLE_SUFFIXES:
        raise RunError(f"--out must end in .npz, .zip or .png; got '{out.name}'.")
    return out


def save_samples(
    images: np.ndarray, labels: np.ndarray | None, out: str | Path, class_names: tuple[str, ...] = (),
) -> Path:
    """Write samples atomically as .npz (x, and y when labelled), a .zip of PNGs by class folder, or a .png grid.

    The .npz and .zip are datasets the Workbench accepts as uploads (gan_core.data.uploads).
    """
    out = check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".png":
        return save_png(out, make_grid(images))
    if suffix == ".zip":
        atomic_write_bytes(out, png_zip(images, labels, class_names))
        return out
    atomic_write_bytes(out, samples_npz(images, labels))
    return out


def samples_npz(images: np.ndarray, labels: np.ndarray | None) -> bytes:
    """Samples as `.npz` bytes: x (uint8 NHWC) and, for labelled samples, y."""
    buffer = io.BytesIO()
    arrays = {"x": images} if labels is None else {"x": images, "y": labels}
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def dataset_file(loaded: LoadedGenerator, n: int, seed: int, suffix: str) -> bytes:
    """n samples (the classes in turn, for conditional runs) as a dataset file the Workbench accepts: ".npz" or ".zip"."""
    images, labels = sample(loaded, n, seed=seed)
    return png_zip(images, labels, loaded.class_names) if suffix == ".zip" else samples_npz(images, labels)


def export_generator(run: Run, step: int | None = None) -> Path:
    """Save the sampling generator as exports/generator.keras (plain Keras can load it)."""
    loaded = load_generator(run, step)
    run.exports_dir.mkdir(exist_ok=True)
    target = run.exports_dir / "generator.keras"
    fd, tmp = tempfile.mkstemp(dir=run.exports_dir, prefix=".generator.", suffix=".keras")
    os.close(fd)
    try:
        loaded.model.save(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
