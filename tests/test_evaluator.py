"""The evaluator: the mnist-5k classifier with the real settings, its disk cache and fingerprint, user files."""

import json

import numpy as np
import pytest

from gan_core.data.datasets import load_dataset
from gan_core.errors import DataError
from gan_core.evaluation import evaluator
from gan_core.evaluation.evaluator import ClassifierEvaluator, default_epochs, fingerprint, get_evaluator, reference_data


@pytest.fixture(scope="module")
def mnist_evaluator(cache_dir):
    # The real settings: 20 epochs over the 4500 training images, about 20-40 s on 2 CPU cores the first time.
    return get_evaluator("mnist-5k", cache_dir)


def save_npz(path, images, labels=None):
    arrays = {"x": images} if labels is None else {"x": images, "y": labels}
    np.savez(path, **arrays)
    return str(path)


def test_the_mnist5k_classifier_reaches_97_percent_on_its_500_held_out_digits(mnist_evaluator):
    assert isinstance(mnist_evaluator, ClassifierEvaluator)
    assert mnist_evaluator.accuracy >= 0.97  # measured: 0.986
    held = load_dataset("mnist-5k", "test")
    predicted = np.argmax(mnist_evaluator.probabilities(held.images), axis=1)
    assert np.mean(predicted == held.labels) == pytest.approx(mnist_evaluator.accuracy)


def test_the_classifier_gives_features_knn_features_and_probabilities(mnist_evaluator):
    images = load_dataset("mnist-5k", "test").images[:30]
    seen = mnist_evaluator.observe(images)
    assert seen.features.shape == (30, 128) and seen.knn_features.shape == (30, 128)
    assert (seen.features >= 0).all()  # after ReLU
    np.testing.assert_allclose(seen.probs.sum(axis=1), 1.0, rtol=1e-5)
    assert "penultimate Dense layer, 128-d" in mnist_evaluator.feature_layer
    assert "last conv block flattened (1600-d)" in mnist_evaluator.knn_layer
    assert mnist_evaluator.num_classes == 10


def test_the_evaluator_refuses_images_of_another_shape(mnist_evaluator):
    with pytest.raises(DataError, match=r"Images of shape \(32, 32, 1\) cannot be evaluated against a dataset of \(28, 28, 1\) images"):
        mnist_evaluator.features(np.zeros((4, 32, 32, 1), np.uint8))


def test_the_cache_holds_the_model_and_its_facts_and_is_reloaded_without_training(mnist_evaluator, cache_dir, monkeypatch):
    key = mnist_evaluator.fingerprint
    info = json.loads((cache_dir / f"{key[:32]}.json").read_text())
    assert info["fingerprint"] == key and info["accuracy"] == mnist_evaluator.accuracy
    assert info["feature_layer"] == "features" and info["epochs"] == 20 and info["heldout_images"] == 500
    assert (cache_dir / f"{key[:32]}.keras").is_file()
    assert not list(cache_dir.glob(".*"))  # no temp files left behind

    monkeypatch.setattr(evaluator, "_LOADED", {})
    monkeypatch.setattr(evaluator, "train_classifier", lambda *args: pytest.fail("trained again instead of loading the cache"))
    reloaded = get_evaluator("mnist-5k", cache_dir)
    assert reloaded is not mnist_evaluator and reloaded.accuracy == mnist_evaluator.accuracy
    images = load_dataset("mnist-5k", "test").images[:20]
    np.testing.assert_allclose(reloaded.features(images), mnist_evaluator.features(images), rtol=1e-5, atol=1e-5)


def test_the_fingerprint_follows_pixels_labels_and_epochs():
    train = load_dataset("mnist-5k", "train")
    base = fingerprint(train, 20)
    assert base == fingerprint(load_dataset("mnist-5k", "train"), 20)
    assert fingerprint(train, 3) != base
    images = train.images.copy()
    images[0, 0, 0, 0] ^= 1
    assert fingerprint(type(train)(images, train.labels, train.class_names, train.source), 20) != base
    labels = train.labels.copy()
    labels[0] = (labels[0] + 1) % 10
    assert fingerprint(type(train)(train.images, labels, train.class_names, train.source), 20) != base


def test_epochs_aim_at_about_ninety_thousand_images_seen():
    assert default_epochs(4500) == 20
    assert default_epochs(60_000) == 5
    assert default_epochs(100) == 20


def test_builtin_datasets_use_their_own_test_split():
    data = reference_data("mnist-5k")
    assert (data.train.num_images, data.heldout.num_images) == (4500, 500)


def colour_file(tmp_path):
    """90 labelled 40×40 RGB images in three learnable classes: mid, dark, bright noise."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (90, 40, 40, 3), dtype=np.uint8)
    labels = np.repeat([0, 1, 2], 30)
    images[labels == 1] //= 4
    images[labels == 2] = 200 + images[labels == 2] // 5
    return save_npz(tmp_path / "colours.npz", images, labels), images


def test_a_labelled_user_file_holds_out_ten_percent_per_class_and_gets_its_own_classifier(tmp_path):
    path, images = colour_file(tmp_path)
    data = reference_data(path)
    assert data.heldout.num_images == 9 and np.bincount(data.heldout.labels).tolist() == [3, 3, 3]
    assert data.train.num_images == 81

    progress = []
    found = get_evaluator(path, tmp_path / "cache", progress=lambda f, m: progress.append((f, m)), epochs=2)
    assert isinstance(found, ClassifierEvaluator) and found.num_classes == 3
    assert progress == [(0.5, "Training the evaluator classifier: epoch 1 of 2"), (1.0, "Training the evaluator classifier: epoch 2 of 2")]
    assert found.model.get_layer(index=1).__class__.__name__ == "Resizing"  # 40 px sides are resized to 32
    assert found.features(images[:5]).shape == (5, 128)
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1


def test_an_unlabelled_user_file_gets_a_pixel_projection_and_no_classifier(tmp_path):
    rng = np.random.default_rng(0)
    path = save_npz(tmp_path / "faces.npz", rng.integers(0, 256, (50, 64, 64, 3), dtype=np.uint8))
    data = reference_data(path)
    assert (data.train.num_images, data.heldout.num_images) == (45, 5)
    found = get_evaluator(path, tmp_path / "cache")
    assert found.kind == "pixels" and found.accuracy is None and found.num_classes == 0
    seen = found.observe(data.heldout.images)
    assert seen.features.shape == (5, 128) and seen.probs is None
    np.testing.assert_array_equal(found.features(data.heldout.images), seen.features)  # a fixed projection
    assert "downscaled to at most 32×32" in found.describe()["feature_layer"]
    with pytest.raises(DataError, match="no class labels"):
        found.probabilities(data.heldout.images)
    assert not (tmp_path / "cache").exists()  # nothing to train, nothing cached


def test_an_unreadable_cached_model_is_trained_again(tmp_path, monkeypatch):
    path, _ = colour_file(tmp_path)
    first = get_evaluator(path, tmp_path / "cache", epochs=1)
    model_file = tmp_path / "cache" / f"{first.fingerprint[:32]}.keras"
    model_file.write_bytes(b"not a keras file")
    monkeypatch.setattr(evaluator, "_LOADED", {})
    progress = []
    again = get_evaluator(path, tmp_path / "cache", progress=lambda f, m: progress.append(f), epochs=1)
    assert progress == [1.0] and again.fingerprint == first.fingerprint
    assert model_file.read_bytes().startswith(b"PK")  # a fresh .keras (zip) file replaced the broken one


def test_the_classifier_is_float32_under_the_devices_mixed_policy_and_a_mixed_cache_is_retrained(tmp_path, monkeypatch):
    """The policy of a worker training with precision 'mixed' on the device in use (CPU: bfloat16, GPU: float16)."""
    import keras

    from gan_core.training import devices

    path, images = colour_file(tmp_path)
    worker_policy = devices.precision_policy("mixed")
    keras.mixed_precision.set_global_policy(worker_policy)  # a worker training in mixed precision that needs an evaluator
    try:
        found = get_evaluator(path, tmp_path / "cache", epochs=1)
        assert keras.mixed_precision.global_policy().name == worker_policy  # the worker's policy is left as it was
        weighted = [layer for layer in found.model.layers if layer.weights]
        assert weighted and {layer.dtype_policy.name for layer in weighted} == {"float32"}
        assert found.features(images[:4]).dtype == np.float32
        mixed = evaluator._classifier((40, 40, 3), 3)  # what a cache written before the fix holds
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model_file = tmp_path / "cache" / f"{found.fingerprint[:32]}.keras"
    evaluator._save_model(mixed, model_file)
    monkeypatch.setattr(evaluator, "_LOADED", {})
    progress = []
    again = get_evaluator(path, tmp_path / "cache", progress=lambda f, m: progress.append(f), epochs=1)
    assert progress == [1.0] and {layer.dtype_policy.name for layer in again.model.layers if layer.weights} == {"float32"}
