"""Evaluation on known cases (real, noise, missing classes, copies) and end to end on tiny trained runs."""

import csv
import io
import json

import numpy as np
import pytest

from gan_core.config import RunConfig
from gan_core.errors import RunError
from gan_core.evaluation import evaluate as evaluation
from gan_core.evaluation import metrics
from gan_core.evaluation.evaluate import cheap_metrics, evaluate_images, evaluate_run, format_report, make_reference
from gan_core.evaluation.evaluator import get_evaluator, reference_data
from gan_core.generation import sampling as generation
from gan_core.store.runs import RunStore


def tiny(**changes) -> RunConfig:
    base = dict(dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=6, sample_every=3, checkpoint_every=3, seed=1)
    return RunConfig(**(base | changes))


@pytest.fixture(scope="module")
def data():
    return reference_data("mnist-5k")


@pytest.fixture(scope="module")
def mnist_evaluator(cache_dir, data):
    return get_evaluator("mnist-5k", cache_dir, data=data)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return RunStore(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def trained_run(store):
    from gan_core.training.loop import train_run

    run = store.create(tiny())
    train_run(run)
    return run


def values(result, key="value"):
    return {row["key"]: row[key] for row in result["metrics"]}


def unused_train_images(data, n, keep=None, seed=1):
    """n training images (optionally only of some classes) other than the ones the floor uses."""
    rng = np.random.default_rng(seed)
    floor_idx = evaluation.subset(data.train.num_images, n)
    allowed = np.setdiff1d(np.arange(data.train.num_images), floor_idx)
    if keep is not None:
        allowed = allowed[np.isin(data.train.labels[allowed], keep)]
    idx = rng.permutation(allowed)[:n]
    return data.train.images[idx], data.train.labels[idx]


# ---- known cases ------------------------------------------------------------------------------
def test_the_near_copy_threshold_is_calibrated_on_held_out_images_and_flags_copies_not_new_real_images(mnist_evaluator, data):
    held = data.heldout.images[evaluation.subset(data.heldout.num_images, 500)]
    floor_images, unseen = held[:250], held[250:]  # the floor at N = 250 uses the first 250; the rest it never sees
    _, nn = metrics.nearest_neighbours(evaluation.flat_pixels(floor_images), evaluation.flat_pixels(data.train.images))
    threshold = np.percentile(nn[1::2, 0], evaluation.NN_PERCENTILE)
    new_real = evaluate_images(unseen, None, mnist_evaluator, data, 250)
    assert new_real["nearest"]["threshold"] == pytest.approx(threshold)
    floor = values(new_real, "floor")["memorised"]
    assert floor == pytest.approx(np.mean(nn[0::2, 0] < threshold))  # measured on the half that did not set the threshold
    assert values(new_real)["memorised"] <= 0.03 and floor <= 0.03  # real images the threshold never saw: (almost) none flagged
    copies, _ = unused_train_images(data, 250)
    assert values(evaluate_images(copies, None, mnist_evaluator, data, 250))["memorised"] == 1.0


def test_real_images_score_at_the_floor_and_copies_of_training_images_are_flagged(mnist_evaluator, data):
    images, _ = unused_train_images(data, 300)
    result = evaluate_images(images, None, mnist_evaluator, data, 300)
    got, floor = values(result), values(result, "floor")
    assert floor["fd"] < 20 and got["fd"] < 2 * floor["fd"]
    for key in ("precision", "recall", "coverage"):
        assert floor[key] > 0.75 and got[key] > floor[key] - 0.1
    assert got["classes_covered"] == floor["classes_covered"] == 10
    assert floor["classifier_score"] > 8 and got["classifier_score"] > 8
    # they are training images: every one is its own nearest training image
    assert got["memorised"] == 1.0 and got["nn_median"] == pytest.approx(0.0, abs=1e-2)
    assert floor["memorised"] <= 0.02 and floor["nn_median"] > 3
    pair = result["nearest"]["pairs"][0]
    assert pair["flagged"] and pair["distance"] == pytest.approx(0.0, abs=1e-2)
    assert np.array_equal(data.train.images[pair["train_index"]], images[pair["generated_index"]])


def test_noise_is_far_above_the_floor(mnist_evaluator, data):
    noise = np.random.default_rng(0).integers(0, 256, (300, 28, 28, 1), dtype=np.uint8)
    result = evaluate_images(noise, None, mnist_evaluator, data, 300)
    got, floor = values(result), values(result, "floor")
    assert got["fd"] > 20 * floor["fd"]
    assert got["precision"] < 0.05 and got["recall"] < 0.05 and got["coverage"] < 0.05
    assert got["swd"] > 5 * floor["swd"]
    assert got["classes_covered"] <= 2 and got["classifier_score"] < 2
    assert got["memorised"] == 0.0


def test_a_set_missing_three_classes_is_seen_covering_seven(mnist_evaluator, data):
    images, _ = unused_train_images(data, 300, keep=list(range(7)))
    result = evaluate_images(images, None, mnist_evaluator, data, 300)
    got, floor = values(result), values(result, "floor")
    assert got["classes_covered"] == 7
    assert got["class_kl"] > 0.25 > 0.05 > floor["class_kl"]
    assert got["recall"] < 0.9 * floor["recall"] and got["fd"] > 2.5 * floor["fd"]
    shares = result["classes"]["generated"]
    assert sum(shares[7:]) < 0.02 and sum(result["classes"]["real"]) == pytest.approx(1.0)


def test_conditional_accuracy_compares_requested_and_recognised_classes(mnist_evaluator, data):
    images, labels = unused_train_images(data, 200)
    right = evaluate_images(images, labels, mnist_evaluator, data, 200)
    wrong = evaluate_images(images, (labels + 1) % 10, mnist_evaluator, data, 200)
    assert values(right)["conditional_accuracy"] > 0.95
    assert values(wrong)["conditional_accuracy"] < 0.05
    assert values(right, "floor")["conditional_accuracy"] > 0.95  # the classifier on held-out digits
    assert len(right["classes"]["generated_accuracy"]) == 10
    assert "conditional_accuracy" not in values(evaluate_images(images, None, mnist_evaluator, data, 200))


def test_n_must_fit_the_held_out_split(mnist_evaluator, data):
    images = data.train.images[:600]
    with pytest.raises(RunError, match=r"N must be a whole number between 10 and 500 \(the held-out images of 'mnist-5k'\); got 600"):
        evaluate_images(images, None, mnist_evaluator, data, 600)
    with pytest.raises(RunError, match="got 5"):
        evaluate_images(images, None, mnist_evaluator, data, 5)
    with pytest.raises(RunError, match="Need 100 images to evaluate; got 50"):
        evaluate_images(images[:50], None, mnist_evaluator, data, 100)


def test_a_dataset_too_small_to_hold_out_ten_images_is_refused_in_one_sentence(tmp_path):
    np.savez(tmp_path / "few.npz", x=np.zeros((50, 8, 8), np.uint8))
    with pytest.raises(RunError, match=r"holds out only 5 images for evaluation .* at least 100 images\.$"):
        evaluation.largest_n(str(tmp_path / "few.npz"))
    assert evaluation.largest_n("mnist-5k") == 500


# ---- cheap metrics for the training loop ------------------------------------------------------
def test_cheap_metrics_follow_the_full_evaluation_from_one_draw_and_one_evaluator_pass(mnist_evaluator, data, monkeypatch):
    reference = make_reference(mnist_evaluator, data, n=1000)
    assert reference.n == 500  # all the held-out digits there are
    np.testing.assert_allclose(make_reference(mnist_evaluator, "mnist-5k").mu, reference.mu, rtol=1e-6)
    images, _ = unused_train_images(data, 1000, keep=list(range(7)))
    draws, passes = [], []
    observe = mnist_evaluator.observe
    monkeypatch.setattr(mnist_evaluator, "observe", lambda x: passes.append(len(x)) or observe(x))
    result = cheap_metrics(lambda n: draws.append(n) or images[:n], mnist_evaluator, reference, n=1000)
    assert draws == [1000] and passes == [1000]  # no bootstrap, no second pass: its cost is one forward pass of n images
    assert set(result) == {"fd", "classes_covered", "class_kl"}
    assert result["classes_covered"] == 7 and result["class_kl"] > 0.25 and result["fd"] > 20
    real, _ = unused_train_images(data, 1000)
    assert cheap_metrics(lambda n: real[:n], mnist_evaluator, reference, n=1000)["fd"] < result["fd"] / 3


# ---- end to end on trained runs ---------------------------------------------------------------
def test_evaluate_run_saves_a_json_result_and_reloads_it(trained_run, cache_dir, monkeypatch):
    progress = []
    result = evaluate_run(trained_run, n=200, progress=lambda f, m: progress.append((f, m)), cache_dir=cache_dir)
    assert result["run_id"] == trained_run.id and result["step"] == 6 and result["n"] == 200
    assert result["evaluator"]["kind"] == "classifier" and result["evaluator"]["accuracy"] >= 0.97
    assert [row["key"] for row in result["metrics"]] == [
        "fd", "kid", "classifier_score", "precision", "recall", "density", "coverage", "classes_covered", "class_kl",
        "swd", "nn_median", "memorised",
    ]
    got, floor = values(result), values(result, "floor")
    assert got["fd"] > 5 * floor["fd"]  # six training steps make blobs, not digits
    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    path = trained_run.dir / "evaluations" / "step_000006_n0200.json"
    assert json.loads(path.read_text()) == json.loads(json.dumps(result))

    monkeypatch.setattr(generation, "load_generator", lambda *a, **k: pytest.fail("recomputed instead of reloading"))
    assert evaluate_run(trained_run, n=200, step=6, cache_dir=cache_dir) == json.loads(path.read_text())


def test_a_report_csv_and_json_come_from_a_result(trained_run, cache_dir):
    result = evaluate_run(trained_run, n=200, cache_dir=cache_dir)
    report = format_report(result)
    assert f"Run {trained_run.id}  step 6  N=200  dataset mnist-5k" in report
    assert "held-out accuracy" in report and "Fréchet distance (evaluator features)" in report
    assert "Real floor" in report and "Closest pair" in report
    rows = list(csv.DictReader(io.StringIO(evaluation.results_csv([result]))))
    assert len(rows) == len(result["metrics"]) and rows[0]["metric"] == "fd" and rows[0]["run_id"] == trained_run.id
    assert float(rows[0]["evaluator_accuracy"]) == result["evaluator"]["accuracy"]
    assert rows[-1]["metric"] == "memorised" and rows[-1]["evaluator_accuracy"] == ""
    assert json.loads(evaluation.results_json([result]))[0]["run_id"] == trained_run.id
    table = evaluation.metric_table(result)
    assert list(table[0]) == ["Metric", "Generated", "Real held-out vs train", "Better"]  # the evaluator's accuracy is in the caption, once
    assert table[0]["Metric"] == "Fréchet distance (evaluator features) *" and not table[-1]["Metric"].endswith("*")
    assert "Metrics marked with an asterisk use its features: the penultimate Dense layer" in evaluation.evaluator_caption(result)
    generated, nearest, caption = evaluation.pair_images(result)[0]
    assert generated.startswith(b"\x89PNG") and nearest.startswith(b"\x89PNG") and caption.startswith("distance ")
    assert len(evaluation.histogram_figure(result).data) == 2


def test_evaluate_run_refuses_a_bad_step_n_or_a_run_without_checkpoints(trained_run, store, cache_dir):
    with pytest.raises(RunError, match="has no checkpoint at step 4"):
        evaluate_run(trained_run, n=50, step=4, cache_dir=cache_dir)
    with pytest.raises(RunError, match="between 10 and 500"):
        evaluate_run(trained_run, n=501, cache_dir=cache_dir)
    fresh = store.create(tiny(name="untrained"))
    with pytest.raises(RunError, match="has no checkpoint yet"):
        evaluate_run(fresh, cache_dir=cache_dir)


def test_a_conditional_run_gets_per_class_accuracy(store, cache_dir):
    from gan_core.training.loop import train_run

    run = store.create(tiny(name="cgan", conditional=True))
    train_run(run)
    result = evaluate_run(run, n=100, cache_dir=cache_dir)
    assert result["conditional"] is True and "conditional_accuracy" in values(result)
    assert all(a is not None for a in result["classes"]["generated_accuracy"])  # 100 samples cycle through the 10 classes


def test_an_unlabelled_dataset_still_gets_swd_fd_and_knn_numbers(tmp_path, store, cache_dir):
    from gan_core.training.loop import train_run

    images = reference_data("mnist-5k").train.images[:400]
    np.savez(tmp_path / "digits.npz", x=images)
    run = store.create(tiny(name="unlabelled", dataset=str(tmp_path / "digits.npz")))
    train_run(run)
    result = evaluate_run(run, cache_dir=cache_dir)
    assert result["n"] == 40 and result["classes"] is None and result["evaluator"]["kind"] == "pixels"
    keys = [row["key"] for row in result["metrics"]]
    assert keys == ["fd", "kid", "precision", "recall", "density", "coverage", "swd", "nn_median", "memorised"]
    assert "no classifier" in evaluation.evaluator_caption(result)
    assert evaluation.metric_table(result)[0]["Metric"] == "Fréchet distance (evaluator features) *"
