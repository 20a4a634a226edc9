"""Applying a trained image-to-image run to a user's own images: from the CLI, on the Generate page, and refusals."""

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from gan_core.config import RunConfig
from gan_core.errors import DataError, RunError
from gan_core.generation.apply import apply_upload, directions, reverse_network
from gan_core.generation.sampling import load_generator
from gan_core.store.runs import RunStore
from gan_core.training.loop import train_run
from tests.waiting import APPTEST_TIMEOUT

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(dataset="mnist-5k", width=0.125, batch_size=16, steps=2, sample_every=2, checkpoint_every=2, seed=5, precision="float32")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("runs"))
    train_run(store.create(RunConfig(**TINY, family="srgan", blocks=1, feature_weight=0.0, name="sr")))
    train_run(store.create(RunConfig(**TINY, family="dcgan", latent_dim=8, name="noise")))
    train_run(store.create(RunConfig(**TINY | {"batch_size": 4}, family="cyclegan", blocks=1, pool_size=4, name="thick")))
    return store


def run_named(store, name):
    (run,) = [run for run in store.list() if run.config().name == name]
    return run


def png(side: int, mode: str = "L") -> bytes:
    pixels = np.random.default_rng(side).integers(0, 256, (side, side, 3 if mode == "RGB" else 1), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels if mode == "RGB" else pixels[..., 0], mode).save(buffer, format="PNG")
    return buffer.getvalue()


def npz(images: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=images)
    return buffer.getvalue()


def test_a_full_size_digit_is_degraded_first_and_a_small_one_goes_in_as_it_is(store):
    loaded = load_generator(run_named(store, "sr"))
    full = apply_upload(loaded, png(28), "digit.png")
    assert full.inputs.shape == (1, 7, 7, 1) and full.outputs.shape == (1, 28, 28, 1)
    assert "first degraded the run's way (x4) to 7x7" in full.note
    small = apply_upload(loaded, npz(np.zeros((3, 7, 7), np.uint8)), "batch.npz")
    assert small.outputs.shape == (3, 28, 28, 1) and "went in as they are" in small.note
    colour = apply_upload(loaded, png(28, "RGB"), "colour.png")
    assert colour.inputs.shape == (1, 7, 7, 1)
    assert full.grid().shape[1] == 2 * 28 + 3 * 2  # input beside output, with the grid's padding


@pytest.mark.parametrize(
    "data, name, message",
    [
        (b"not an image", "digit.png", r"^'digit.png' member 'digit.png' is not a readable PNG/JPEG image\.$"),
        (b"", "digit.png", r"^'digit.png' is not a valid .png file: it is empty \(0 bytes\)\.$"),
        (b"{}", "digit.json", r"^'digit.json' is not a .png, .jpg, .jpeg, .npz or .zip file\.$"),
        (npz(np.zeros((2, 3, 3), np.uint8)), "tiny.npz", r"^Images in 'tiny.npz' are 3x3 pixels; height and width must be between 4 and 256\.$"),
    ],
    ids=["garbage", "empty", "wrong-type", "too-small"],
)
def test_hostile_or_wrong_uploads_are_refused_in_one_sentence(store, data, name, message):
    with pytest.raises(DataError, match=message):
        apply_upload(load_generator(run_named(store, "sr")), data, name)


def test_a_zip_with_a_path_outside_the_archive_is_refused(store):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("../evil.png", png(28))
    with pytest.raises(DataError, match="evil.png"):
        apply_upload(load_generator(run_named(store, "sr")), buffer.getvalue(), "batch.zip")


def test_a_size_the_generator_does_not_take_and_a_noise_run_are_refused(store):
    with pytest.raises(RunError, match=r"^'odd.png' holds 20x20 images; this generator takes 7x7 images, or 28x28 ones"):
        apply_upload(load_generator(run_named(store, "sr")), png(20), "odd.png")
    with pytest.raises(RunError, match=r"is a dcgan run, which draws images from noise; Apply needs an image-to-image run"):
        apply_upload(load_generator(run_named(store, "noise")), png(28), "digit.png")


def test_a_cyclegan_run_applies_either_direction_and_only_it_reverses(store):
    loaded = load_generator(run_named(store, "thick"))
    ways = directions(loaded)
    assert list(ways) == ["mnist-5k -> mnist-5k-thick", "mnist-5k-thick -> mnist-5k"]
    digits = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    forward, backward = (apply_upload(loaded, npz(digits), "d.npz", network) for network in ways.values())
    assert forward.outputs.shape == backward.outputs.shape == (3, 28, 28, 1)
    assert not np.array_equal(forward.outputs, backward.outputs)
    np.testing.assert_array_equal(forward.outputs, apply_upload(loaded, npz(digits), "d.npz").outputs)  # A->B by default
    assert reverse_network(loaded) is ways["mnist-5k-thick -> mnist-5k"]
    with pytest.raises(RunError, match=r"^--reverse is for runs that translate both ways \(cyclegan\); this srgan run has one direction\.$"):
        reverse_network(load_generator(run_named(store, "sr")))


def cli(*args, runs):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "gan_core", *args, "--runs-dir", str(runs)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_cli_applies_a_run_to_a_file_and_refuses_in_one_line(store, tmp_path):
    run = run_named(store, "sr")
    source = tmp_path / "digits.npz"
    source.write_bytes(npz(np.zeros((4, 28, 28, 1), np.uint8)))
    result = cli("apply", run.id, "--in", str(source), "--out", str(tmp_path / "out.npz"), runs=store.root)
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "out.npz")["x"].shape == (4, 28, 28, 1)
    assert "Wrote 4 outputs of step 2" in result.stdout
    result = cli("apply", run.id, "--in", str(source), "--out", str(tmp_path / "pair.png"), runs=store.root)
    assert result.returncode == 0 and Image.open(tmp_path / "pair.png").size == (4 * (2 * 28 + 6), 4 * (4 * 28 + 10))
    missing = cli("apply", run.id, "--in", str(tmp_path / "nope.png"), "--out", str(tmp_path / "x.npz"), runs=store.root)
    assert missing.returncode != 0 and missing.stderr.strip().splitlines() == [f"error: Could not read '{tmp_path / 'nope.png'}': No such file or directory."]
    assert not (tmp_path / "x.npz").exists()
    thick = run_named(store, "thick").id
    for flags, name in (((), "ab.npz"), (("--reverse",), "ba.npz")):
        result = cli("apply", thick, "--in", str(source), "--out", str(tmp_path / name), *flags, runs=store.root)
        assert result.returncode == 0, result.stderr
    assert not np.array_equal(np.load(tmp_path / "ab.npz")["x"], np.load(tmp_path / "ba.npz")["x"])
    one_way = cli("apply", run.id, "--in", str(source), "--out", str(tmp_path / "r.npz"), "--reverse", runs=store.root)
    assert one_way.returncode != 0 and "--reverse is for runs that translate both ways" in one_way.stderr


def test_the_generate_page_applies_an_upload_and_offers_the_results(store, monkeypatch):
    monkeypatch.setenv("GAN_RUNS_DIR", str(store.root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APPTEST_TIMEOUT).run()
    at.query_params["run"] = run_named(store, "sr").id
    at.switch_page("pages/generate.py").run()
    assert at.segmented_control(key="gen_view").options == ["Pairs", "Apply to your images"]
    at.segmented_control(key="gen_view").set_value("Apply to your images").run()
    assert not at.exception
    assert "images of 28x28 are first degraded the way the run was trained" in at.info[0].value
