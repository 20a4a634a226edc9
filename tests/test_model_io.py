"""Downloads and checked uploads of models and runs, on a tiny trained run."""

import io
import json
import os
import stat
import tempfile
import zipfile

import keras
import numpy as np
import pytest

from gan_core import families
from gan_core.config import RunConfig
from gan_core.errors import DataError
from gan_core.families.base import DataSpec
from gan_core.generation import model_io
from gan_core.generation.latents import seeded_latents
from gan_core.generation.sampling import checkpoint_steps, load_generator, sample, samples_npz
from gan_core.store.runs import RunStore
from gan_core.training.loop import train_run

TINY = dict(dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=6, sample_every=3, checkpoint_every=3, seed=5)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    trained = RunStore(tmp_path_factory.mktemp("runs")).create(RunConfig(**TINY, name="source run"))
    train_run(trained)
    return trained


@pytest.fixture(scope="module")
def downloads(run):
    return {item.label: item for item in model_io.run_downloads(run, 3)}


@pytest.fixture(scope="module")
def generator_bytes(downloads):
    return downloads["Generator (.keras)"].data


@pytest.fixture(scope="module")
def run_zip(downloads):
    return downloads["Whole run (.zip)"].data


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A private temp dir and an empty second store; `unchanged()` says neither gained anything."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    store = RunStore(tmp_path / "store")
    store.root.mkdir()

    def unchanged() -> bool:
        return not any(temp.iterdir()) and not any(store.root.iterdir())

    return store, unchanged


def write(tmp_path, data: bytes, name: str = "model.keras"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def rezip(data: bytes, *, drop=(), add=(), edit=None) -> bytes:
    """A copy of a zip without `drop` members, with `add` (ZipInfo or name, bytes) pairs, and members passed through edit(name, bytes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if info.filename in drop:
                continue
            content = source.read(info)
            target.writestr(info.filename, edit(info.filename, content) if edit else content)
        for member, content in add:
            target.writestr(member, content)
    return out.getvalue()


def edit_config(data: bytes, change) -> bytes:
    def edit(name, content):
        if name != "config.json":
            return content
        config = json.loads(content)
        change(config)
        return json.dumps(config).encode()

    return rezip(data, edit=edit)


def forbid_loading(monkeypatch):
    def fail(*args, **kwargs):
        pytest.fail("keras.saving.load_model was called on a file that should have been refused first")

    monkeypatch.setattr(keras.saving, "load_model", fail)


# ---- downloads ---------------------------------------------------------------------------
def test_downloads_are_the_generator_discriminator_and_run(run, downloads):
    assert list(downloads) == ["Generator (.keras)", "Discriminator (.keras)", "Whole run (.zip)"]
    assert downloads["Generator (.keras)"].file_name == f"{run.id}-generator-step3.keras"
    assert downloads["Whole run (.zip)"].mime == "application/zip"


def test_the_generator_file_loads_in_plain_keras_and_draws_the_same_images(run, generator_bytes, tmp_path):
    model = keras.saving.load_model(write(tmp_path, generator_bytes), compile=False)
    z = seeded_latents(16, 8, seed=11)
    expected = np.asarray(load_generator(run, 3).model(z, training=False))
    np.testing.assert_allclose(np.asarray(model(z, training=False)), expected, atol=1e-6)
    assert not np.allclose(expected, np.asarray(load_generator(run, 6).model(z, training=False)))


def test_the_discriminator_file_holds_the_trained_weights(run, downloads, tmp_path):
    model = keras.saving.load_model(write(tmp_path, downloads["Discriminator (.keras)"].data), compile=False)
    images = sample(load_generator(run), 8, seed=1)[0].astype(np.float32) / 127.5 - 1.0
    restored = model_io.load_export(run, "discriminator", 3)
    np.testing.assert_allclose(np.asarray(model(images, training=False)), np.asarray(restored(images, training=False)), atol=1e-6)
    fresh = families.get("dcgan").discriminator(run.config(), DataSpec((28, 28, 1), 10))
    assert not np.allclose(np.asarray(fresh(images, training=False)), np.asarray(restored(images, training=False)))


def test_samples_and_grids_as_bytes(run):
    images, _ = sample(load_generator(run), 10, seed=0)
    labels = np.arange(10, dtype=np.int32)
    with np.load(io.BytesIO(samples_npz(images, labels))) as arrays:
        np.testing.assert_array_equal(arrays["x"], images)
        np.testing.assert_array_equal(arrays["y"], labels)
    with np.load(io.BytesIO(samples_npz(images, None))) as arrays:
        assert list(arrays) == ["x"]
    png = model_io.grid_png(images, cols=5, width=400)
    from PIL import Image

    picture = Image.open(io.BytesIO(png))
    assert png.startswith(b"\x89PNG") and picture.width == 152 * 2 and picture.height == 62 * 2


def test_a_run_zip_round_trips_into_another_store_under_a_new_id(run, run_zip, scratch):
    store, _ = scratch
    with zipfile.ZipFile(io.BytesIO(run_zip)) as archive:
        assert f"{run.id}/exports/generator.keras" in archive.namelist()
    imported = model_io.import_run_zip(store, run_zip)
    assert imported.id != run.id and imported.dir.parent == store.root
    assert [r.id for r in store.list()] == [imported.id]
    assert imported.status()["state"] == "finished" and imported.config() == run.config()
    assert checkpoint_steps(imported) == [3, 6]
    np.testing.assert_array_equal(sample(load_generator(imported), 8, seed=2)[0], sample(load_generator(run), 8, seed=2)[0])
    assert not [p for p in store.root.iterdir() if p.name.startswith(".")]


def test_an_imported_run_that_was_training_becomes_stopped(run, run_zip, scratch):
    store, _ = scratch

    def running(name, content):
        return json.dumps({**json.loads(content), "state": "running", "pid": 1}).encode() if name.endswith("/status.json") else content

    imported = model_io.import_run_zip(store, rezip(run_zip, edit=running))
    status = imported.status()
    assert status["state"] == "stopped" and "pid" not in status and "resume" in status["message"]


# ---- refused uploads ---------------------------------------------------------------------
def test_an_uploaded_generator_is_checked_loaded_and_described(generator_bytes, scratch):
    _, unchanged = scratch
    model = model_io.load_generator_file(generator_bytes, "mine.keras")
    loaded = model_io.as_loaded_generator(model, "mine.keras")
    assert loaded.config.latent_dim == 8 and not loaded.config.conditional and loaded.config.name == "mine"
    assert sample(loaded, 4, seed=0)[0].shape == (4, 28, 28, 1)
    assert unchanged()


def test_a_conditional_generator_upload_knows_its_classes(tmp_path):
    conditional = RunStore(tmp_path).create(RunConfig(**TINY, conditional=True))
    train_run(conditional)
    data = model_io.model_bytes(load_generator(conditional).model)
    loaded = model_io.as_loaded_generator(model_io.load_generator_file(data, "c.keras"), "c.keras")
    assert loaded.config.conditional and loaded.num_classes == 10
    assert set(sample(loaded, 5, seed=0, label=2)[1]) == {2}


def test_a_lambda_layer_is_refused_before_loading(scratch, monkeypatch):
    _, unchanged = scratch
    inputs = keras.Input((8,))
    outputs = keras.layers.Reshape((2, 2, 2))(keras.layers.Lambda(lambda x: x * 2.0, name="double")(inputs))
    data = model_io.model_bytes(keras.Model(inputs, keras.layers.Conv2D(1, 1)(outputs)))
    forbid_loading(monkeypatch)
    with pytest.raises(DataError, match=r"^'evil.keras' was refused: it contains a Lambda layer \('double'\)"):
        model_io.load_generator_file(data, "evil.keras")
    assert unchanged()


@pytest.mark.parametrize("module", ["os", "subprocess", "builtins", "kerasx.layers"])
def test_a_module_outside_keras_is_refused_before_loading(generator_bytes, scratch, monkeypatch, module):
    _, unchanged = scratch

    def point_at(config):
        layer = config["config"]["layers"][-1]
        layer.update(module=module, class_name="system")

    data = edit_config(generator_bytes, point_at)
    forbid_loading(monkeypatch)
    with pytest.raises(DataError, match=f"refers to module '{module}', which is not part of Keras"):
        model_io.load_generator_file(data, "evil.keras")
    assert unchanged()


def test_a_custom_registered_object_is_refused_before_loading(generator_bytes, scratch, monkeypatch):
    _, unchanged = scratch
    data = edit_config(generator_bytes, lambda config: config["config"]["layers"][-1].update(registered_name="evil>Shell"))
    forbid_loading(monkeypatch)
    with pytest.raises(DataError, match="custom object 'evil>Shell'"):
        model_io.load_generator_file(data, "evil.keras")
    assert unchanged()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda good: good[: len(good) // 2], "'bad.keras' is not a readable .keras file."),
        (lambda good: np.random.default_rng(0).bytes(5000), "'bad.keras' is not a readable .keras file."),
        (lambda good: b"", "'bad.keras' is not a readable .keras file."),
        (lambda good: rezip(good, drop=("config.json",)), "'bad.keras' is not a readable .keras file: it has no config.json."),
        (lambda good: rezip(good, edit=lambda n, c: b"{not json" if n == "config.json" else c), "its config.json is damaged"),
    ],
)
def test_unreadable_generator_files_are_refused_in_one_sentence(generator_bytes, scratch, make, message):
    _, unchanged = scratch
    with pytest.raises(DataError) as refused:
        model_io.load_generator_file(make(generator_bytes), "bad.keras")
    assert message in str(refused.value) and str(refused.value).count(". ") == 0
    assert unchanged()


def test_a_damaged_weights_file_is_refused_after_the_config_check(generator_bytes, scratch):
    _, unchanged = scratch
    data = rezip(generator_bytes, edit=lambda n, c: c[:100] if n == "model.weights.h5" else c)
    with pytest.raises(DataError, match=r"^'bad.keras' is not a readable .keras file \("):
        model_io.load_generator_file(data, "bad.keras")
    assert unchanged()


def test_a_model_that_does_not_make_images_is_refused(scratch):
    _, unchanged = scratch
    inputs = keras.Input((8,))
    data = model_io.model_bytes(keras.Model(inputs, keras.layers.Dense(3)(inputs)))
    with pytest.raises(DataError, match=r"'dense.keras' is not an image generator: its output is \(None, 3\)"):
        model_io.load_generator_file(data, "dense.keras")
    assert unchanged()


def names(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.namelist()


def symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda good, top: rezip(good, add=[(f"{top}/../escaped.txt", b"x")]), "'..' path part"),
        (lambda good, top: rezip(good, add=[("/tmp/absolute.txt", b"x")]), "absolute or non-portable path"),
        (lambda good, top: rezip(good, add=[(symlink(f"{top}/samples/link.png"), "/etc/passwd")]), "is a symbolic link"),
        (lambda good, top: rezip(good, drop=(f"{top}/config.json",)), "its folder has no config.json"),
        (lambda good, top: rezip(good, add=[("other/config.json", b"{}")]), "exactly one run folder; it holds 2"),
        (lambda good, top: rezip(good, add=[("loose.txt", b"x")]), "exactly one run folder; it holds 2 top-level entries."),
        (lambda good, top: rezip(good, drop=[n for n in names(good) if n != f"{top}/config.json"]), "its folder has no status.json"),
        (lambda good, top: good[:-200], "is not a readable .zip file"),
        (
            lambda good, top: rezip(good, edit=lambda n, c: c.replace(b'"latent_dim": 8', b'"latent_dim": 0') if n.endswith("/config.json") else c),
            "has an invalid config.json: latent_dim must be an integer between 1 and 1024; got 0.",
        ),
        (
            lambda good, top: rezip(good, edit=lambda n, c: c.replace(b'"ckpt-6"', b'"/etc/ckpt-6"') if n.endswith("checkpoints/checkpoint") else c),
            "checkpoint index points to '/etc/ckpt-6', outside the run",
        ),
    ],
)
def test_unsafe_or_broken_run_zips_are_refused_and_leave_nothing(run, run_zip, scratch, make, message):
    store, unchanged = scratch
    with pytest.raises(DataError, match="^The run .zip") as refused:
        model_io.import_run_zip(store, make(run_zip, run.id))
    assert message in str(refused.value)
    assert unchanged()


def test_a_failure_while_unpacking_removes_the_half_written_folder(run, run_zip, scratch, monkeypatch):
    store, unchanged = scratch
    real_open = open

    def failing_open(path, mode="r", *args, **kwargs):
        if "x" in mode and str(path).endswith(".png"):
            raise OSError(28, "No space left on device")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", failing_open)
    with pytest.raises(DataError, match="could not be unpacked at .* \\(OSError\\)"):
        model_io.import_run_zip(store, run_zip)
    assert unchanged()
    assert os.listdir(store.root) == []


# ---- the allow-list against what the families export, and hostile files loaded for real ------------------
def exported_configs():
    """config.json of every network each preset's family exports (and dcgan with spectral norm), by preset and role."""
    from gan_core.config import load_preset, preset_names

    configs = {}
    for preset in [*preset_names(), "dcgan+spectral_norm"]:
        config = load_preset(preset.split("+")[0])
        if preset.endswith("+spectral_norm"):
            config = config.replace(spectral_norm=True)
        shape = (32, 32, 3) if config.dataset in ("cifar10", "mnist-5k-colour") else (28, 28, 1)
        for role, (_, model) in families.get(config.family).exports(config, DataSpec(shape, 10)).items():
            configs[f"{preset} {role}"] = model_io.read_keras_config(model_io.model_bytes(model), f"{preset}.keras")
    return configs


def named_objects(config) -> set[tuple[str, str]]:
    stack, found = [config], set()
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if item.get("module") is not None:
                found.add((item["module"], item.get("class_name")))
            stack.extend(item.values())
    return found


def test_the_upload_allow_list_is_what_the_families_export():
    used = set()
    for where, config in exported_configs().items():
        model_io.check_keras_config(config, where)  # raises DataError naming the preset and role if refused
        used |= named_objects(config)
    allowed = {(module, name) for module, names in model_io.ALLOWED_KERAS_OBJECTS.items() for name in names}
    assert allowed - used == {("keras.src.models.sequential", "Sequential")}  # nothing allowed that no export needs


def hostile(generator_bytes, change) -> bytes:
    return edit_config(generator_bytes, lambda config: change(config["config"]["layers"][-1]))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda layer: layer["config"].update(activation={"module": "keras.utils", "class_name": "function", "config": "get_file",
                                                          "registered_name": "function"}),
         "refers to 'keras.utils.function', which is not one of the Keras layers generators are built from"),
        (lambda layer: layer.update(module="keras.src.saving.serialization_lib", class_name="deserialize_keras_object"),
         "refers to 'keras.src.saving.serialization_lib.deserialize_keras_object', which is not one of the Keras layers"),
        (lambda layer: layer.update(module="keras.nowhere", class_name="Shell"), "refers to 'keras.nowhere.Shell'"),
    ],
)
def test_hostile_keras_names_are_refused_by_a_real_load(generator_bytes, scratch, change, message):
    _, unchanged = scratch
    with pytest.raises(DataError, match=f"^'evil.keras' was refused: it {message}"):
        model_io.load_generator_file(hostile(generator_bytes, change), "evil.keras")
    assert unchanged()


def test_keras_safe_mode_refuses_a_lambda_that_got_past_the_scan(scratch, monkeypatch):
    """The second wall: with the config scan switched off, Keras' own safe_mode still refuses to deserialize the Lambda."""
    _, unchanged = scratch
    ran = []
    inputs = keras.Input((8,))
    outputs = keras.layers.Reshape((2, 2, 2))(keras.layers.Lambda(lambda x: ran.append(1) or x * 2.0, name="double")(inputs))
    data = model_io.model_bytes(keras.Model(inputs, keras.layers.Conv2D(1, 1)(outputs)))
    ran.clear()
    monkeypatch.setattr(model_io, "check_keras_config", lambda config, name: None)
    with pytest.raises(DataError, match=r"^'evil.keras' is not a readable .keras file \(ValueError\)\.$"):
        model_io.load_generator_file(data, "evil.keras")
    assert ran == [] and unchanged()
