"""The Configure page's logic: widget specs from RunConfig metadata, form state, validation and uploads.

Form widgets use the session-state keys `cfg_<field>`; a dataset field (`dataset`, and CycleGAN's
`domain_b`) is chosen outside the form with `cfg_<field>_source` (a builtin name or UPLOAD_CHOICE)
plus `<field>_file` (the saved upload).
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from gan_core.config import DEFAULT_FAMILY, RunConfig, field_info, field_names, load_preset
from gan_core.data.datasets import COLOUR_DATASET, DIGITS_DATASET, OFFLINE_DATASET, THICK_DATASET
from gan_core.data.images import encode_png, make_grid
from gan_core.data.imageset import ImageSet
from gan_core.data.uploads import load_npz, load_zip
from gan_core.errors import ConfigError, DataError
from gan_core.store.runs import atomic_write_bytes

SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Family & architecture", ("family", "architecture")),
    ("Loss & regularizers", ("loss", "regularizers")),
    ("Optimizer", ("optimizer",)),
    ("Schedule", ("schedule",)),
    ("Output & performance", ("output", "performance")),
)
DATASET_CHOICES = (OFFLINE_DATASET, "mnist", "fashion_mnist", DIGITS_DATASET, THICK_DATASET, COLOUR_DATASET, "cifar10")
UPLOAD_CHOICE = "upload .npz/.zip"
DATASET_FIELDS = ("dataset", "domain_b")  # fields chosen outside the form: a builtin dataset or an upload


def source_key(name: str) -> str:
    """The session-state key of a dataset field's selectbox (a builtin name or UPLOAD_CHOICE)."""
    return f"cfg_{name}_source"


def file_key(name: str) -> str:
    """The session-state key of a dataset field's saved upload."""
    return f"{name}_file"


SOURCE_KEY, FILE_KEY = source_key("dataset"), file_key("dataset")
UPLOADS_DIRNAME = "_uploads"
PREVIEW_COUNT = 64
FLOAT_STEPS = {"g_lr": 1e-5, "d_lr": 1e-5, "width": 0.125, "gp_weight": 1.0, "ema_decay": 0.001}
FLOAT_FORMATS = {"g_lr": "%.2e", "d_lr": "%.2e", "width": "%.3f", "gp_weight": "%.1f"}


def family_in(state: Mapping[str, Any]) -> str:
    """The family the form holds (the default one before the form has any)."""
    return state.get(widget_key("family"), DEFAULT_FAMILY)


def form_fields(groups: tuple[str, ...], family: str = DEFAULT_FAMILY) -> list[str]:
    """The fields of a config of `family` in some form groups, in config.json's order."""
    return [name for name in field_names(family) if field_info(name, family)["group"] in groups]


def error_section(field_errors: Mapping[str, str], family: str = DEFAULT_FAMILY) -> str | None:
    """The title of the first form section with a field in error (the tab to show), None when none has one."""
    for title, groups in SECTIONS:
        if any(name in field_errors for name in form_fields(groups, family)):
            return title
    return None


def widget_key(name: str) -> str:
    """The session-state key of a field's widget."""
    return f"cfg_{name}"


def form_keys(family: str = DEFAULT_FAMILY) -> tuple[str, ...]:
    """The session-state keys of a form for a config of `family`."""
    names = field_names(family)
    return (
        *(widget_key(name) for name in names if name not in DATASET_FIELDS),
        *(key for name in DATASET_FIELDS if name in names for key in (source_key(name), file_key(name))),
    )


def widget_spec(name: str, family: str = DEFAULT_FAMILY) -> dict[str, Any]:
    """How to draw one field: kind (checkbox/selectbox/number/text), label, help, limits, step, options, format."""
    info = field_info(name, family)
    spec: dict[str, Any] = {
        "kind": "text", "label": info["label"], "help": info["help"],
        "min": None, "max": None, "step": None, "options": None, "format": None, "max_chars": info.get("max_len"),
    }
    if info["type"] == "bool":
        spec["kind"] = "checkbox"
    elif "choices" in info:
        spec.update(kind="selectbox", options=list(info["choices"]))
    elif info["type"] == "int":
        spec.update(kind="number", min=int(info["min"]), max=int(info["max"]), step=1, format="%d")
    elif info["type"] == "float":
        spec.update(
            kind="number", min=float(info["min"]), max=float(info["max"]),
            step=FLOAT_STEPS.get(name, 0.01), format=FLOAT_FORMATS.get(name, "%.4f"),
        )
    return spec


# ---- form state <-> config -----------------------------------------------------------------
def dataset_source(dataset: str) -> str:
    """The dataset selectbox choice for a dataset value: a builtin name or UPLOAD_CHOICE."""
    return dataset if dataset in DATASET_CHOICES else UPLOAD_CHOICE


def form_state(config: RunConfig) -> dict[str, Any]:
    """Session-state entries that put a config into the form (floats as floats, as number_input needs)."""
    state: dict[str, Any] = {}
    for name in field_names(config.family):
        value = getattr(config, name)
        if name in DATASET_FIELDS:
            state[source_key(name)] = dataset_source(value)
            state[file_key(name)] = "" if value in DATASET_CHOICES else value
        else:
            state[widget_key(name)] = float(value) if field_info(name, config.family)["type"] == "float" else value
    return state


def missing_defaults(state: Mapping[str, Any], family: str) -> dict[str, Any]:
    """Form entries, at the family's defaults, of the fields the form does not hold yet (after a change of family)."""
    defaults = form_state(RunConfig(family=family))
    return {key: value for key, value in defaults.items() if key not in state and key not in (SOURCE_KEY, FILE_KEY)}


def preset_state(name: str) -> dict[str, Any]:
    """Form entries of a preset's hyperparameters; the dataset the user chose stays as it is, unless the preset
    was made for another dataset than the default (dcgan-colour brings mnist-5k-colour)."""
    state = form_state(preset := load_preset(name))
    if preset.dataset == OFFLINE_DATASET:
        del state[SOURCE_KEY], state[FILE_KEY]
    return state


def upload_pending(state: Mapping[str, Any], name: str) -> bool:
    """True when a dataset field is set to upload a file and none is saved yet (a prompt, not an error)."""
    return state.get(source_key(name)) == UPLOAD_CHOICE and not state.get(file_key(name))


def values_from_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """The field values held by the form's widgets."""
    names = field_names(family_in(state))
    values = {name: state[widget_key(name)] for name in names if widget_key(name) in state}
    values["dataset"] = OFFLINE_DATASET
    for name in DATASET_FIELDS:
        if source_key(name) in state and name in names:
            source = state[source_key(name)]
            values[name] = source if source != UPLOAD_CHOICE else state.get(file_key(name), "")
    return values


def config_from_values(values: dict[str, Any]) -> RunConfig:
    """A validated RunConfig from form values; raises ConfigError with one sentence."""
    return RunConfig.from_dict(values)


def errors_by_field(values: dict[str, Any]) -> dict[str, str]:
    """The engine's message for each value that is invalid on its own (other fields left valid)."""
    errors = {}
    family = values.get("family", DEFAULT_FAMILY)
    try:
        base = RunConfig(family=family, steps=1)  # every cross-field rule holds, so one changed field is judged alone
    except ConfigError as exc:
        return {"family": str(exc)}
    for name, value in values.items():
        try:
            base.replace(**{name: value})
        except ConfigError as exc:
            errors[name] = str(exc)
    return errors


@dataclass(frozen=True)
class FormCheck:
    """The outcome of checking the form: a config, or errors per field and across fields."""

    config: RunConfig | None
    field_errors: dict[str, str]
    form_error: str | None


def check_form(values: dict[str, Any]) -> FormCheck:
    """Validate form values field by field, then as a whole (cross-field rules)."""
    field_errors = errors_by_field(values)
    if field_errors:
        return FormCheck(None, field_errors, None)
    try:
        return FormCheck(config_from_values(values), {}, None)
    except ConfigError as exc:
        return FormCheck(None, {}, str(exc))


# ---- dataset uploads -----------------------------------------------------------------------
def read_upload(data: bytes, name: str) -> ImageSet:
    """Validate uploaded bytes as an .npz or .zip dataset (nothing is written); raises DataError."""
    suffix = Path(name).suffix.lower()
    if suffix == ".npz":
        return load_npz(io.BytesIO(data), name)
    if suffix == ".zip":
        return load_zip(io.BytesIO(data), name)
    raise DataError(f"'{name}' is neither a .npz nor a .zip file.")


def uploads_dir(runs_root: Path) -> Path:
    """Where validated uploads are kept: <runs root>/_uploads (ignored by RunStore.list)."""
    return Path(runs_root) / UPLOADS_DIRNAME


def save_upload(data: bytes, name: str, runs_root: Path) -> Path:
    """Store validated upload bytes atomically as _uploads/<sha256 prefix>_<safe name>; returns the path."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name).strip("._") or "dataset"
    path = uploads_dir(runs_root) / f"{hashlib.sha256(data).hexdigest()[:16]}_{safe[-80:]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        atomic_write_bytes(path, data)
    return path


@dataclass(frozen=True)
class Upload:
    """A validated dataset upload, saved: where, a sentence about it, a preview grid and the class counts."""

    path: Path
    about: str
    preview: bytes
    counts: pd.DataFrame


def accept_upload(data: bytes, name: str, runs_root: Path) -> Upload:
    """Validate uploaded bytes and, only when they pass, save them; raises DataError with one sentence."""
    images = read_upload(data, name)
    path = save_upload(data, name, runs_root)
    return Upload(path, describe_images(images), preview_png(images), class_counts(images))


def preview_png(images: ImageSet, count: int = PREVIEW_COUNT) -> bytes:
    """A PNG grid of the first `count` images, 8 per row, doubled in size."""
    return encode_png(make_grid(images.images[:count], cols=8), scale=2)


def class_counts(images: ImageSet) -> pd.DataFrame:
    """Images per class (one 'unlabelled' row when the set has no labels)."""
    if images.labels is None:
        return pd.DataFrame({"class": ["unlabelled"], "images": [images.num_images]})
    counts = np.bincount(images.labels, minlength=images.num_classes)
    return pd.DataFrame({"class": list(images.class_names), "images": counts.astype(int)})


def describe_images(images: ImageSet) -> str:
    """One sentence about a dataset: count, image size and classes."""
    h, w, c = images.image_shape
    classes = f"{images.num_classes} classes" if images.num_classes else "no labels"
    return f"{images.num_images} images of {h}x{w}x{c} pixels, {classes}."
