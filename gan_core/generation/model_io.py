"""Model files in and out: downloads of a run's networks and files, checked uploads of generators and runs.

Uploaded `.keras` files are refused before Keras reads them when their config.json names a Lambda
(or another code-running) layer, any module outside Keras, or a Keras object outside
`ALLOWED_KERAS_OBJECTS` (the layers the families export), and are then loaded with
`safe_mode=True`. Uploaded run zips are checked member by member and unpacked into a hidden
folder of the store that is renamed into place only when everything is in it.
"""

from __future__ import annotations

import io
import json
import lzma
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gan_core import families
from gan_core.config import RunConfig
from gan_core.data.images import encode_png, make_grid
from gan_core.data.uploads import MAX_FILE_BYTES
from gan_core.errors import DataError, GanError, RunError
from gan_core.families.base import DataSpec
from gan_core.generation.sampling import LoadedGenerator, checkpoint_path, checkpoint_steps, export_generator, load_generator
from gan_core.lazy_tf import keras, tf
from gan_core.store.runs import STATES, Run, RunStore, atomic_write_json, export_zip, new_run_id, validate_run_id

MB = 1024 * 1024
MAX_MODEL_BYTES = MAX_FILE_BYTES  # the most the server lets through (.streamlit/config.toml maxUploadSize)
MAX_MODEL_CONFIG_BYTES = 16 * MB
MAX_RUN_ZIP_BYTES = MAX_FILE_BYTES
MAX_RUN_UNPACKED_BYTES = 4096 * MB
MAX_RUN_MEMBERS = 10_000
MAX_RUN_JSON_BYTES = 1 * MB
ZIP_ERRORS = (  # what reading a damaged archive raises; zlib and lzma report corrupt compressed data
    zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, RuntimeError, NotImplementedError, zlib.error, lzma.LZMAError,
)
GRID_WIDTH = 720
UNSAFE_CLASSES = ("Lambda", "__lambda__", "TFSMLayer", "TorchModuleWrapper")
# The Keras objects an uploaded generator's config may name, by module: those the families' exported networks are
# built from (tests/test_model_io.py builds every preset's exports and checks they pass), and Sequential.
ALLOWED_KERAS_OBJECTS = {
    "keras": {"DTypePolicy"},
    "keras.initializers": {"Constant", "GlorotUniform", "Ones", "RandomNormal", "RandomUniform", "Zeros"},
    "keras.layers": {
        "Activation", "Add", "BatchNormalization", "Concatenate", "Conv2D", "Conv2DTranspose", "Cropping2D", "Dense", "Dropout",
        "Embedding", "Flatten", "GroupNormalization", "InputLayer", "LeakyReLU", "Multiply", "PReLU", "Permute", "ReLU",
        "Rescaling", "Reshape", "SpectralNormalization", "UnitNormalization", "UpSampling2D",
    },
    "keras.src.models.functional": {"Functional"},
    "keras.src.models.sequential": {"Sequential"},
    "keras.src.ops.numpy": {"Clip", "GetItem"},
}
CHECKPOINT_NAME = re.compile(r"^ckpt-\d+$")
CHECKPOINT_PATH_LINE = re.compile(r'^\s*(model_checkpoint_path|all_model_checkpoint_paths)\s*:\s*"(.*)"\s*$')


@dataclass(frozen=True)
class Download:
    """One file offered for download."""

    label: str
    file_name: str
    data: bytes
    mime: str


# ---- downloads ---------------------------------------------------------------------------
def model_bytes(model: keras.Model) -> bytes:
    """The model as `.keras` file bytes (written to a temporary folder that is always removed)."""
    with tempfile.TemporaryDirectory(prefix="gan-model-") as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return path.read_bytes()


def load_export(run: Run, role: str, step: int | None = None) -> keras.Model:
    """Restore one network the run's family exports (e.g. "discriminator") at a checkpoint step, default the newest."""
    key, model = _exports(run)[role]
    return _restored(run, checkpoint_path(run, step), role, key, model)


def _exports(run: Run) -> dict[str, tuple[str, keras.Model]]:
    """The networks the run's family exports, freshly built, by role, with their checkpoint keys."""
    config, status = run.config(), run.raw_status()
    spec = DataSpec(tuple(status["image_shape"]), int(status.get("num_classes", 0)))
    return families.get(config.family).exports(config, spec)


def _restored(run: Run, where: tuple[int, str], role: str, key: str, model: keras.Model) -> keras.Model:
    """`model` with the weights that checkpoint `where` (step, path) holds under `key`."""
    step, path = where
    restored = tf.train.Checkpoint(**{key: model}).restore(path)
    try:
        restored.assert_existing_objects_matched()
    except AssertionError:
        raise RunError(f"Run '{run.id}': the {role} in checkpoint {step} does not match the run's config.") from None
    restored.expect_partial()
    return model


def run_zip_bytes(run: Run) -> bytes:
    """The whole run as `.zip` bytes, with exports/generator.keras refreshed first when it has a checkpoint."""
    if checkpoint_steps(run):
        export_generator(run)
    with tempfile.TemporaryDirectory(prefix="gan-zip-") as folder:
        return export_zip(run, Path(folder) / f"{run.id}.zip").read_bytes()


def run_downloads(run: Run, step: int | None) -> list[Download]:
    """The generator and discriminator at `step` (when the run has checkpoints) and the whole run."""
    files = []
    if checkpoint_steps(run):
        loaded = load_generator(run, step)
        where = checkpoint_path(run, loaded.step)
        for role, (key, model) in _exports(run).items():
            model = loaded.model if role == "generator" else _restored(run, where, role, key, model)
            label = role.replace("_", " ").capitalize()
            file_name = f"{run.id}-{role}-step{loaded.step}.keras"
            files.append(Download(f"{label} (.keras)", file_name, model_bytes(model), "application/octet-stream"))
    files.append(Download("Whole run (.zip)", f"{run.id}.zip", run_zip_bytes(run), "application/zip"))
    return files


def grid_png(images: np.ndarray, cols: int, width: int = GRID_WIDTH) -> bytes:
    """A grid of the images as PNG bytes, enlarged by a whole factor to about `width` pixels."""
    grid = make_grid(images, cols)
    return encode_png(grid, scale=max(1, width // grid.shape[1]))


# ---- uploaded generators -----------------------------------------------------------------
def load_generator_file(data: bytes, name: str) -> keras.Model:
    """Load an uploaded generator `.keras` file after refusing anything that could run code."""
    if len(data) > MAX_MODEL_BYTES:
        raise DataError(f"'{name}' is {len(data) / MB:.0f} MB, larger than the {MAX_MODEL_BYTES // MB} MB limit for models.")
    check_keras_config(read_keras_config(data, name), name)
    with tempfile.TemporaryDirectory(prefix="gan-upload-") as folder:
        path = Path(folder) / "upload.keras"
        path.write_bytes(data)
        try:
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as exc:  # Keras reports bad files with many exception types
            raise DataError(f"'{name}' is not a readable .keras file ({type(exc).__name__}).") from None
    check_image_generator(model, name)
    return model


def read_keras_config(data: bytes, name: str) -> Any:
    """The parsed config.json of `.keras` bytes, read without loading anything."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        info = archive.getinfo("config.json")
    except KeyError:
        raise DataError(f"'{name}' is not a readable .keras file: it has no config.json.") from None
    except (*ZIP_ERRORS, ValueError):
        raise DataError(f"'{name}' is not a readable .keras file.") from None
    with archive:
        if info.file_size > MAX_MODEL_CONFIG_BYTES:
            raise DataError(f"'{name}' has a config.json of {info.file_size // MB} MB, too large for a model.")
        try:
            return json.loads(archive.read(info))
        except (*ZIP_ERRORS, ValueError, RecursionError):
            raise DataError(f"'{name}' is not a readable .keras file: its config.json is damaged.") from None


def check_keras_config(config: Any, name: str) -> None:
    """Raise DataError for a Lambda-like layer or a module/registered name outside Keras anywhere in the config."""
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        class_name = item.get("class_name")
        if class_name in UNSAFE_CLASSES:
            inner = item.get("config")
            layer = item.get("name") or (inner.get("name") if isinstance(inner, dict) else None)
            named = f" ('{layer}')" if isinstance(layer, str) else ""
            raise DataError(f"'{name}' was refused: it contains a {class_name} layer{named}, which can run arbitrary code.")
        module = item.get("module")
        if "module" in item and module is not None and not _is_keras_module(module):
            raise DataError(f"'{name}' was refused: it refers to module '{module}', which is not part of Keras.")
        if "module" in item and module is not None and (
            not isinstance(class_name, str) or class_name not in ALLOWED_KERAS_OBJECTS.get(module, ())
        ):
            raise DataError(
                f"'{name}' was refused: it refers to '{module}.{class_name}', "
                "which is not one of the Keras layers generators are built from."
            )
        registered = item.get("registered_name")
        if isinstance(registered, str) and ">" in registered and not _is_keras_module(registered.split(">", 1)[0]):
            raise DataError(f"'{name}' was refused: it refers to the custom object '{registered}', which is not part of Keras.")
        stack.extend(item.values())


def _is_keras_module(module: Any) -> bool:
    return isinstance(module, str) and (module == "keras" or module.startswith("keras."))


def check_image_generator(model: keras.Model, name: str) -> None:
    """Refuse a model that does not map z (and a label) to one batch of 1- or 3-channel images."""
    outputs = model.outputs
    if len(outputs) != 1 or len(outputs[0].shape) != 4 or outputs[0].shape[-1] not in (1, 3):
        shapes = ", ".join(str(tuple(o.shape)) for o in outputs)
        raise DataError(f"'{name}' is not an image generator: its output is {shapes}, not a batch of 1- or 3-channel images.")
    inputs = model.inputs
    if len(inputs) not in (1, 2) or len(inputs[0].shape) != 2 or not inputs[0].shape[-1]:
        shapes = ", ".join(str(tuple(i.shape)) for i in inputs)
        raise DataError(f"'{name}' is not a generator this app can drive: it needs a (batch, latent) input, it has {shapes}.")
    if len(inputs) == 2 and (len(inputs[1].shape) > 2 or (len(inputs[1].shape) == 2 and inputs[1].shape[-1] != 1)):
        raise DataError(f"'{name}' has a second input of shape {tuple(inputs[1].shape)}; a class label input must be (batch, 1).")
    if len(inputs) == 2 and not _label_classes(model):
        raise DataError(f"'{name}' has a label input but no Embedding layer, so its number of classes is unknown.")
    z = np.zeros((1, inputs[0].shape[-1]), np.float32)
    try:
        model([z, np.zeros((1, 1), np.int32)] if len(inputs) == 2 else z, training=False)
    except Exception as exc:  # any failure of a user's model to run
        raise DataError(f"'{name}' failed to generate an image ({type(exc).__name__}).") from None


def _label_classes(model: keras.Model) -> int:
    for layer in model.layers:
        if isinstance(layer, keras.layers.Embedding):
            return int(layer.input_dim)
    return 0


def as_loaded_generator(model: keras.Model, name: str) -> LoadedGenerator:
    """Wrap an uploaded generator so sampling code treats it like a run's (latent size, classes inferred)."""
    latent_dim = int(model.inputs[0].shape[-1])
    conditional = len(model.inputs) == 2
    num_classes = _label_classes(model) if conditional else 0
    try:
        config = RunConfig(name=Path(name).stem[:60], latent_dim=latent_dim, conditional=conditional)
    except GanError as exc:
        raise DataError(f"'{name}' cannot be used here: {exc}") from None
    return LoadedGenerator(model, config, 0, num_classes, tuple(str(i) for i in range(num_classes)))


# ---- uploaded runs -----------------------------------------------------------------------
def import_run_zip(store: RunStore, data: bytes, name: str = "The run .zip") -> Run:
    """Unpack an exported run into the store under a new run id; nothing is left behind on failure."""
    if len(data) > MAX_RUN_ZIP_BYTES:
        raise DataError(f"{name} is {len(data) / MB:.0f} MB, larger than the {MAX_RUN_ZIP_BYTES // MB} MB limit.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (*ZIP_ERRORS, ValueError):
        raise DataError(f"{name} is not a readable .zip file.") from None
    with archive:
        files = _run_members(archive, name)
        config, status = _run_metadata(archive, files, name)
        store.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".import-", dir=store.root))
        try:
            _unpack(archive, files, staging, name)
            if status["state"] in ("running", "queued"):
                status.update(state="stopped", message="Imported while it was still training; resume continues from its last checkpoint.")
            status.pop("pid", None)
            atomic_write_json(staging / "status.json", status)
            os.chmod(staging, 0o755)
            target = _new_run_dir(store, config)
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return Run(target)


def _run_members(archive: zipfile.ZipFile, name: str) -> dict[str, zipfile.ZipInfo]:
    """Regular-file members by their path inside the single top folder, after checking every member."""
    infos = archive.infolist()
    if len(infos) > MAX_RUN_MEMBERS:
        raise DataError(f"{name} has {len(infos)} entries, more than the {MAX_RUN_MEMBERS} limit.")
    if sum(info.file_size for info in infos) > MAX_RUN_UNPACKED_BYTES:
        raise DataError(f"{name} would unpack to more than {MAX_RUN_UNPACKED_BYTES // MB} MB.")
    members = [(info, _member_parts(info, name)) for info in infos]
    tops = {parts[0] for _, parts in members}
    if len(tops) != 1:
        raise DataError(f"{name} must hold exactly one run folder; it holds {len(tops)} top-level entries.")
    files = {}
    for info, parts in members:
        if info.is_dir() or len(parts) == 1:
            continue
        relative = "/".join(parts[1:])
        if relative in files:
            raise DataError(f"{name} contains '{info.filename}' twice.")
        files[relative] = info
    return files


def _member_parts(info: zipfile.ZipInfo, name: str) -> list[str]:
    """The path parts of a member, refusing absolute paths, '..', odd characters, links and special files."""
    path = info.filename
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise DataError(f"{name} was refused: '{path}' is a symbolic link.")
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise DataError(f"{name} was refused: '{path}' is not a regular file or folder.")
    parts = path.rstrip("/").split("/")
    if path.startswith("/") or "\\" in path or "\0" in path or re.match(r"^[A-Za-z]:", path):
        raise DataError(f"{name} was refused: the member '{path}' has an absolute or non-portable path.")
    if any(part in ("", ".", "..") for part in parts):
        raise DataError(f"{name} was refused: the member '{path}' has an empty, '.' or '..' path part.")
    return parts


def _run_metadata(archive: zipfile.ZipFile, files: dict[str, zipfile.ZipInfo], name: str) -> tuple[RunConfig, dict]:
    """The zip's validated config and status, after checking its checkpoint index names only local files."""
    for required in ("config.json", "status.json"):
        if required not in files:
            raise DataError(f"{name} is not an exported run: its folder has no {required}.")
    config_bytes = _read_small(archive, files["config.json"], name)
    status_bytes = _read_small(archive, files["status.json"], name)
    try:
        config = RunConfig.from_json(config_bytes.decode("utf-8"))
    except UnicodeDecodeError:
        raise DataError(f"{name} has a config.json that is not UTF-8 text.") from None
    except GanError as exc:
        raise DataError(f"{name} has an invalid config.json: {exc}") from None
    try:
        status = json.loads(status_bytes)
    except (ValueError, RecursionError):
        raise DataError(f"{name} has a status.json that is not valid JSON.") from None
    if not isinstance(status, dict) or status.get("state") not in STATES:
        raise DataError(f"{name} has a status.json without a valid state.")
    if "checkpoints/checkpoint" in files:
        _check_checkpoint_index(_read_small(archive, files["checkpoints/checkpoint"], name), files, status, name)
    return config, status


def _read_small(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
    """A small metadata member's bytes, refusing oversized or unreadable ones."""
    if info.file_size > MAX_RUN_JSON_BYTES:
        raise DataError(f"{name} has a '{info.filename}' of {info.file_size // MB} MB, too large for run metadata.")
    try:
        return archive.read(info)
    except ZIP_ERRORS:
        raise DataError(f"{name} has an unreadable member '{info.filename}'.") from None


def _check_checkpoint_index(index: bytes, files: dict[str, zipfile.ZipInfo], status: dict, name: str) -> None:
    shape = status.get("image_shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and v > 0 for v in shape)):
        raise DataError(f"{name} has checkpoints but its status.json has no valid image_shape.")
    for line in index.decode("utf-8", errors="replace").splitlines():
        match = CHECKPOINT_PATH_LINE.match(line)
        if not match:
            continue
        if not CHECKPOINT_NAME.match(match.group(2)):
            raise DataError(f"{name} was refused: its checkpoint index points to '{match.group(2)}', outside the run.")
        if f"checkpoints/{match.group(2)}.index" not in files:
            raise DataError(f"{name} is incomplete: checkpoint '{match.group(2)}' is listed but missing.")


def _unpack(archive: zipfile.ZipFile, files: dict[str, zipfile.ZipInfo], folder: Path, name: str) -> None:
    for relative, info in files.items():
        target = folder / relative
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(target, "xb") as out:
                shutil.copyfileobj(source, out, 1 * MB)
        except ZIP_ERRORS as exc:
            raise DataError(f"{name} could not be unpacked at '{info.filename}' ({type(exc).__name__}).") from None


def _new_run_dir(store: RunStore, config: RunConfig) -> Path:
    while True:
        target = store.root / validate_run_id(new_run_id(config))
        if not target.exists():
            return target
