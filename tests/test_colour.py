"""Colour 32×32 images through the Workbench: training, sample grids and GIF, the evaluator, Generate, Evaluate, uploads, cifar10 offline."""

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from gan_core.config import RunConfig, is_user_preset, load_preset, preset_names
from gan_core.dashboard.charts import training_gif
from gan_core.data.datasets import load_dataset
from gan_core.errors import ConfigError
from gan_core.evaluation import evaluator
from gan_core.evaluation.evaluate import pair_images
from gan_core.evaluation.metrics import frechet_distance
from gan_core.store.runs import RunStore
from gan_core.training.loop import train_run
from tests.waiting import APPTEST_TIMEOUT

ROOT = Path(__file__).resolve().parents[1]
COLOUR = "mnist-5k-colour"
TINY = dict(dataset=COLOUR, width=0.125, latent_dim=8, batch_size=16, steps=6, sample_every=3, checkpoint_every=3, seed=5)
EVALUATOR_EPOCHS = 2  # the real default is 20 (about a minute here); 2 already tells the colour digits apart


def rgb(png: bytes | Path) -> np.ndarray:
    """A PNG's pixels, refusing anything but an RGB picture."""
    picture = Image.open(io.BytesIO(png) if isinstance(png, bytes) else png)
    assert picture.mode == "RGB", picture.mode
    return np.asarray(picture).astype(np.int16)


def colourful(pixels: np.ndarray) -> float:
    """Mean absolute difference between channels: 0 for a grey picture."""
    return float(np.mean(np.abs(pixels[..., 0] - pixels[..., 1]) + np.abs(pixels[..., 1] - pixels[..., 2])))


@pytest.fixture(scope="module")
def short_evaluators(cache_dir):
    """The colour set's evaluator is trained for EVALUATOR_EPOCHS epochs, in the session's evaluator cache."""
    patch = pytest.MonkeyPatch()
    patch.setattr(evaluator, "default_epochs", lambda num_train: EVALUATOR_EPOCHS)
    patch.setenv("GAN_CACHE_DIR", str(cache_dir))
    yield cache_dir
    patch.undo()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A conditional dcgan run on the colour set, six steps."""
    store = RunStore(tmp_path_factory.mktemp("colour-runs"))
    train_run(store.create(RunConfig(**TINY, name="colour-cgan", conditional=True)))
    return store


def named(store: RunStore, name: str):
    (run,) = [run for run in store.list() if run.config().name == name]
    return run


def test_the_preset_trains_dcgan_on_the_offline_colour_set():
    config = load_preset("dcgan-colour")
    assert (config.family, config.dataset) == ("dcgan", COLOUR)
    assert load_dataset(config.dataset, "test").image_shape == (32, 32, 3)


def test_a_dcgan_run_on_colour_data_writes_rgb_grids_and_a_colour_gif(store):
    run = named(store, "colour-cgan")
    assert run.raw_status()["state"] == "finished"
    grids = sorted((run.dir / "samples").glob("step_*.png"))
    assert [p.name for p in grids] == ["step_000000.png", "step_000003.png", "step_000006.png"]
    pixels = rgb(grids[-1])
    assert pixels.shape == (10 * 34 + 2, 6 * 34 + 2, 3)  # a row per class, 32×32 images with a 2-pixel border
    assert colourful(pixels) > 2.0  # three different output channels, not one grey channel
    gif = Image.open(io.BytesIO(training_gif(grids)))
    assert gif.n_frames == 3
    gif.seek(2)
    frame = np.asarray(gif.convert("RGB")).astype(np.int16)
    assert colourful(frame) > 2.0


def test_the_evaluator_learns_the_colour_set_and_its_features_see_colour(short_evaluators):
    found = evaluator.get_evaluator(COLOUR)
    assert isinstance(found, evaluator.ClassifierEvaluator) and found.image_shape == (32, 32, 3)
    assert found.accuracy > 0.8  # measured 0.93 after 2 epochs (0.96 after the default 20)
    mnist_key = evaluator.fingerprint(load_dataset("mnist-5k"), EVALUATOR_EPOCHS)
    assert found.fingerprint != mnist_key and (short_evaluators / f"{found.fingerprint[:32]}.keras").is_file()
    ref = evaluator.reference_data(COLOUR)
    train, held = ref.train.images[::9][:500], ref.heldout.images
    grey = np.repeat(np.rint(held.astype(np.float32).mean(-1, keepdims=True)).astype(np.uint8), 3, axis=-1)
    real = frechet_distance(found.features(held), found.features(train))
    greyed = frechet_distance(found.features(grey), found.features(train))
    assert greyed > 3 * real, (real, greyed)  # the same digits without their colours are far from the real set
    with pytest.raises(Exception, match=r"cannot be evaluated against a dataset of \(32, 32, 3\) images"):
        found.features(load_dataset("mnist-5k", "test").images[:4])


def test_the_evaluate_page_scores_a_colour_run_beside_its_floor(store, short_evaluators, monkeypatch):
    monkeypatch.setenv("GAN_RUNS_DIR", str(store.root))
    run = named(store, "colour-cgan")
    at = AppTest.from_file(str(ROOT / "pages" / "evaluate.py"), default_timeout=APPTEST_TIMEOUT)
    at.session_state["run_id"] = run.id
    at.run()
    at.number_input[0].set_value(100).run()
    next(b for b in at.button if b.label.startswith("Evaluate")).click().run()
    assert not at.exception and not at.error
    assert at.dataframe[0].value["Metric"].iloc[0] == "Fréchet distance (evaluator features) *"
    result = json.loads((run.dir / "evaluations" / "step_000006_n0100.json").read_text())
    assert result["dataset"] == COLOUR and result["n"] == 100
    assert result["evaluator"]["accuracy"] > 0.8 and result["evaluator"]["class_names"] == [str(d) for d in range(10)]
    fd = next(row for row in result["metrics"] if row["key"] == "fd")
    assert fd["value"] > 5 * fd["floor"]  # six steps of a tiny generator are far from real colour digits
    assert 0 < fd["floor"] < 30
    assert len(result["classes"]["generated_accuracy"]) == 10  # conditional: per-class accuracy of each asked-for digit
    pairs = pair_images(result)  # rgb() refuses a greyscale PNG: the pairs are shown in colour
    assert pairs and all(rgb(generated).shape[-1] == rgb(nearest).shape[-1] == 3 for generated, nearest, _ in pairs)


def test_the_generate_page_draws_a_colour_run_in_colour(store, monkeypatch):
    monkeypatch.setenv("GAN_RUNS_DIR", str(store.root))
    shown: list[bytes] = []
    draw = st.image

    def record(image, *args, **kwargs):
        shown.append(image)
        return draw(image, *args, **kwargs)

    monkeypatch.setattr(st, "image", record)
    run = named(store, "colour-cgan")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APPTEST_TIMEOUT).run().switch_page("pages/generate.py")
    at.session_state["run_id"] = run.id
    at.run()
    assert not at.exception and not at.error
    assert at.image[0].captions == ["60 images (6 per class: 64 rounded to whole rows), seed 0"]  # one row per class
    grid = rgb(shown[-1])
    scale = grid.shape[0] // (10 * 34 + 2)  # one row of six per class, enlarged for the page
    assert scale >= 1 and grid.shape == (scale * (10 * 34 + 2), scale * (6 * 34 + 2), 3) and colourful(grid) > 2.0
    at.segmented_control(key="gen_view").set_value("Interpolate").run()
    assert not at.exception and not at.error
    strip = rgb(shown[-1])
    assert strip.shape[-1] == 3 and colourful(strip) > 2.0


def colour_upload(tmp_path: Path, suffix: str) -> str:
    """200 labelled images of the colour set as a .npz (x, y) or a .zip of PNGs in one folder per class."""
    data = load_dataset(COLOUR, "test")
    picked = np.concatenate([np.flatnonzero(data.labels == c)[:20] for c in range(10)])
    images, labels = data.images[picked], data.labels[picked]
    path = tmp_path / f"colour{suffix}"
    if suffix == ".npz":
        np.savez(path, x=images, y=labels)
    else:
        with zipfile.ZipFile(path, "w") as archive:
            for i, (image, label) in enumerate(zip(images, labels)):
                buffer = io.BytesIO()
                Image.fromarray(image).save(buffer, format="PNG")
                archive.writestr(f"digit-{label}/{i:03d}.png", buffer.getvalue())
    return str(path)


@pytest.mark.parametrize("suffix", [".npz", ".zip"])
def test_a_colour_upload_loads_in_colour_and_trains(tmp_path, suffix):
    path = colour_upload(tmp_path, suffix)
    loaded = load_dataset(path)
    assert loaded.image_shape == (32, 32, 3) and loaded.num_images == 200 and loaded.num_classes == 10
    assert colourful(loaded.images.astype(np.int16)) > 20
    run = RunStore(tmp_path / "runs").create(RunConfig(**(TINY | dict(dataset=path, steps=3, conditional=True))))
    train_run(run)
    assert run.raw_status()["state"] == "finished"
    assert rgb(sorted((run.dir / "samples").glob("*.png"))[-1]).shape[-1] == 3


def test_cifar10_without_network_is_one_sentence_from_the_command_line(tmp_path):
    # An unreachable proxy makes the download fail here whether or not the machine has network,
    # and an empty KERAS_HOME means no earlier download is found.
    proxy = "http://127.0.0.1:9"
    env = os.environ | {
        "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_HOME": str(tmp_path / "keras"), "no_proxy": "", "NO_PROXY": "",
        "https_proxy": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "HTTP_PROXY": proxy,
    }
    result = subprocess.run(
        [sys.executable, "-m", "gan_core", "train", "--config", "dcgan-colour", "--set", "dataset=cifar10", "--set", "steps=2",
         "--runs-dir", str(tmp_path / "runs")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("error: Could not download 'cifar10' (no network?): ")
    assert line.endswith("Use a bundled offline set: dataset=mnist-5k, or dataset=mnist-5k-colour for colour 32x32 images.")


@pytest.mark.parametrize("preset", [name for name in preset_names() if not is_user_preset(name)])
def test_every_preset_takes_the_colour_set_or_refuses_it_in_one_sentence(preset):
    from gan_core.families.data_fit import check_data_fits

    config = load_preset(preset).replace(dataset=COLOUR)
    data = load_dataset(COLOUR)
    if config.family != "cyclegan":
        check_data_fits(config, data)  # trained on it for a few steps each while this was written
        return
    with pytest.raises(ConfigError) as refused:  # its default domain B is grey 28×28 digits
        check_data_fits(config, data)
    assert str(refused.value) == (
        "domain_b 'mnist-5k-thick' has 28x28x1 images but domain A 'mnist-5k-colour' has 32x32x3: both domains need images of one size."
    )
    check_data_fits(config.replace(domain_b=COLOUR), data)
