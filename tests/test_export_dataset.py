"""Synthetic labelled datasets: .npz and .zip of PNGs by class, written by the CLI and read back by the upload checks."""

import io

import numpy as np
import pytest

from gan_core import cli
from gan_core.config import RunConfig
from gan_core.data import uploads
from gan_core.data.datasets import load_dataset
from gan_core.data.images import png_zip
from gan_core.store.runs import RunStore


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    from gan_core.training.loop import train_run

    store = RunStore(tmp_path_factory.mktemp("runs"))
    config = RunConfig(
        dataset="mnist-5k", conditional=True, width=0.125, latent_dim=8, batch_size=16, steps=4, sample_every=4,
        checkpoint_every=4, seed=1,
    )
    run = store.create(config)
    train_run(run)
    return store, run


def test_a_png_zip_by_class_folder_round_trips_through_the_upload_checks():
    digits = load_dataset("mnist-5k", "test")
    picked = np.random.default_rng(0).permutation(digits.num_images)[:40]  # the split is sorted by class
    images, labels = digits.images[picked], digits.labels[picked]
    back = uploads.load_zip(io.BytesIO(png_zip(images, labels, digits.class_names)), "digits.zip")
    order = np.lexsort((np.arange(40), labels))  # the upload reads members sorted by folder, then file
    assert np.array_equal(back.images, images[order]) and back.class_names == digits.class_names
    assert np.array_equal(back.labels, labels[order])
    flat = uploads.load_zip(io.BytesIO(png_zip(images, None)), "flat.zip")
    assert flat.labels is None and np.array_equal(flat.images, images)


def test_generate_writes_1000_labelled_digits_as_npz_and_zip_that_uploads_accept(conditional_run, tmp_path, capsys):
    store, run = conditional_run
    for name in ("digits.npz", "digits.zip"):
        assert cli.main(["generate", run.id, "--n", "1000", "--out", str(tmp_path / name), "--runs-dir", str(store.root)]) == 0
    npz = uploads.load_npz(tmp_path / "digits.npz")
    archive = uploads.load_zip(tmp_path / "digits.zip")
    assert npz.images.shape == archive.images.shape == (1000, 28, 28, 1)
    assert npz.class_names == archive.class_names == tuple(str(c) for c in range(10))
    assert np.array_equal(npz.labels, np.arange(1000) % 10)  # the classes in turn
    assert np.array_equal(np.bincount(archive.labels), np.full(10, 100))
    first_threes = npz.images[npz.labels == 3]
    assert np.array_equal(archive.images[archive.labels == 3], first_threes)  # the same digits in both files


@pytest.mark.parametrize("args, message", [
    (["--n", "0", "--out", "digits.zip"], "n must be between 1 and 10000; got 0."),
    (["--n", "10", "--out", "digits.tar"], "--out must end in .npz, .zip or .png; got 'digits.tar'."),
])
def test_a_refused_value_is_one_sentence_and_leaves_no_file(conditional_run, tmp_path, capsys, args, message, monkeypatch):
    store, run = conditional_run
    monkeypatch.chdir(tmp_path)
    assert cli.main(["generate", run.id, *args, "--runs-dir", str(store.root)]) == cli.EXIT_USER_ERROR
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert list(tmp_path.iterdir()) == []
