"""Tests for gan_core.data.datasets: builtin sources, file dispatch, download failure and the tf.data pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from gan_core.data import datasets
from gan_core.data.datasets import load_dataset, make_pipeline, steps_per_epoch
from gan_core.data.imageset import ImageSet
from gan_core.errors import DataError


@pytest.fixture(scope="module")
def mnist5k_all() -> ImageSet:
    """The whole offline set, loaded once for the module."""
    return load_dataset("mnist-5k", split="all")


def test_mnist5k_train_shapes_dtypes_and_balance() -> None:
    ds = load_dataset("mnist-5k")
    assert ds.images.shape == (4500, 28, 28, 1) and ds.images.dtype == np.uint8
    assert ds.labels is not None and ds.labels.dtype == np.int64 and ds.labels.shape == (4500,)
    assert np.bincount(ds.labels).tolist() == [450] * 10
    assert ds.class_names == tuple(str(d) for d in range(10))
    assert ds.num_classes == 10 and ds.image_shape == (28, 28, 1) and ds.num_images == 4500
    assert ds.source == "mnist-5k"
    assert ds.images.max() > 200 and ds.images.min() == 0


def test_mnist5k_test_split_is_held_out(mnist5k_all: ImageSet) -> None:
    train, test = load_dataset("mnist-5k", "train"), load_dataset("mnist-5k", "test")
    assert test.images.shape == (500, 28, 28, 1)
    assert np.bincount(test.labels).tolist() == [50] * 10
    assert mnist5k_all.images.shape == (5000, 28, 28, 1)
    # train + test partition "all" exactly (compare as row sets via bytes)
    rows = lambda s: sorted(im.tobytes() + bytes([lab]) for im, lab in zip(s.images, s.labels))  # noqa: E731
    assert sorted(rows(train) + rows(test)) == rows(mnist5k_all)
    # deterministic
    np.testing.assert_array_equal(load_dataset("mnist-5k", "test").images, test.images)


def test_loaded_arrays_are_independent_copies() -> None:
    a = load_dataset("mnist-5k", "all")
    a.images[0, 0, 0, 0] = 123
    assert load_dataset("mnist-5k", "all").images[0, 0, 0, 0] == 0


def test_unknown_split() -> None:
    with pytest.raises(DataError, match="Unknown split 'val': use one of train, test, all."):
        load_dataset("mnist-5k", "val")


def test_unknown_name() -> None:
    with pytest.raises(DataError) as err:
        load_dataset("foo")
    assert str(err.value) == (
        "Unknown dataset 'foo': use one of mnist, fashion_mnist, mnist-5k or the path of a .npz or .zip file."
    )


def test_missing_file(tmp_path) -> None:
    missing = tmp_path / "nope.npz"
    with pytest.raises(DataError, match="does not exist") as err:
        load_dataset(str(missing))
    assert str(missing) in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_user_file_dispatch_and_no_test_split(tmp_path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((20, 8, 8), np.uint8))
    ds = load_dataset(str(path))
    assert ds.images.shape == (20, 8, 8, 1) and ds.labels is None and ds.num_classes == 0
    assert ds.source == str(path)
    assert load_dataset(path, "all").images.shape[0] == 20
    with pytest.raises(DataError, match="has no test split"):
        load_dataset(str(path), "test")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_download_failure_points_to_offline_set(monkeypatch, name: str) -> None:
    import keras

    def offline() -> None:
        raise Exception("URL fetch failure on https://example/x.npz: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(getattr(keras.datasets, name), "load_data", offline)
    with pytest.raises(DataError) as err:
        load_dataset(name)
    msg = str(err.value)
    assert msg == (
        f"Could not download '{name}' (no network?): [Errno -2] Name or service not known. "
        "Use the bundled offline set with dataset=mnist-5k."
    )


def test_download_oserror_is_data_error(monkeypatch) -> None:
    import keras

    def offline() -> None:
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    expected = r"Could not download 'mnist' \(no network\?\): network unreachable\..*mnist-5k"
    with pytest.raises(DataError, match=expected):
        load_dataset("mnist")


def test_keras_split_mapping(monkeypatch) -> None:
    import keras

    tr = (np.full((6, 28, 28), 1, np.uint8), np.arange(6, dtype=np.uint8) % 10)
    te = (np.full((4, 28, 28), 2, np.uint8), np.arange(4, dtype=np.uint8))
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", lambda: (tr, te))
    train, test, full = (load_dataset("fashion_mnist", s) for s in ("train", "test", "all"))
    assert train.images.shape == (6, 28, 28, 1) and test.images.shape == (4, 28, 28, 1)
    assert full.images.shape == (10, 28, 28, 1) and full.labels.dtype == np.int64
    assert test.images.max() == 2 and train.class_names[0] == "T-shirt/top" and train.class_names[9] == "Ankle boot"
    assert full.source == "fashion_mnist"


def test_make_pipeline_batches(mnist5k_all: ImageSet) -> None:
    ds = make_pipeline(mnist5k_all.images[:100], mnist5k_all.labels[:100], batch_size=32, seed=1)
    x, y = next(iter(ds))
    assert x.dtype.name == "float32" and y.dtype.name == "int32"
    assert tuple(x.shape) == (32, 28, 28, 1) and tuple(y.shape) == (32,)
    assert float(x.numpy().min()) >= -1.0 and float(x.numpy().max()) <= 1.0
    assert float(x.numpy().min()) == -1.0 and float(x.numpy().max()) == 1.0  # 0 -> -1, 255 -> 1


def test_make_pipeline_drop_remainder_no_repeat(mnist5k_all: ImageSet) -> None:
    ds = make_pipeline(mnist5k_all.images[:100], None, batch_size=32, seed=0, repeat=False)
    batches = list(ds)
    assert len(batches) == 3 == steps_per_epoch(100, 32)
    assert all(tuple(x.shape) == (32, 28, 28, 1) for x, _ in batches)
    assert all(int(y.numpy().max()) == 0 for _, y in batches)  # unlabelled -> zeros


def test_make_pipeline_scaling_is_exact() -> None:
    images = np.array([0, 51, 255, 128] * 4, np.uint8).reshape(16, 1, 1, 1)
    ds = make_pipeline(images, np.arange(16), batch_size=16, seed=3, repeat=False)
    (x, y), = list(ds)
    got = dict(zip(y.numpy().tolist(), x.numpy().reshape(-1).tolist()))
    np.testing.assert_allclose([got[i] for i in range(4)], [-1.0, 51 / 127.5 - 1, 1.0, 128 / 127.5 - 1], atol=1e-6)


def test_make_pipeline_seeded_shuffle_is_reproducible(mnist5k_all: ImageSet) -> None:
    def first_labels(seed: int) -> np.ndarray:
        ds = make_pipeline(mnist5k_all.images[:64], mnist5k_all.labels[:64], 8, seed)
        return next(iter(ds))[1].numpy()

    np.testing.assert_array_equal(first_labels(7), first_labels(7))


def test_make_pipeline_batch_too_large() -> None:
    with pytest.raises(DataError) as err:
        make_pipeline(np.zeros((10, 8, 8, 1), np.uint8), None, batch_size=64, seed=0)
    assert "64" in str(err.value) and "10" in str(err.value)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_batch_sizes(bad) -> None:
    with pytest.raises(DataError, match="Batch size must be a whole number of at least 1"):
        steps_per_epoch(100, bad)


def test_steps_per_epoch() -> None:
    assert steps_per_epoch(4500, 64) == 70
    assert steps_per_epoch(10, 64) == 1
    assert steps_per_epoch(128, 64) == 2


def test_imageset_contract() -> None:
    with pytest.raises(ValueError):
        ImageSet(np.zeros((2, 8, 8), np.uint8), None, (), "x")
    s = ImageSet(np.zeros((2, 8, 8, 3), np.uint8), None, (), "x")
    assert s.num_classes == 0 and s.image_shape == (8, 8, 3)
    assert datasets.BUILTIN_DATASETS == ("mnist", "fashion_mnist", "mnist-5k")
