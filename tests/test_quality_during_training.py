"""Quality metrics during training (eval_every): metrics.csv, its floor, resume, failures, and the Train/Compare charts."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from gan_core.config import RunConfig, load_preset
from gan_core.dashboard.compare import quality_overlay_figure, quality_series
from gan_core.evaluation.evaluate import cheap_metrics, make_reference, reference_data
from gan_core.evaluation.evaluator import get_evaluator
from gan_core.generation.sampling import load_generator, sample
from gan_core.store.runs import RunStore
from gan_core.training import loop as training
from gan_core.training.loop import Trainer, train_run
from tests.waiting import APPTEST_TIMEOUT

ROOT = Path(__file__).resolve().parent.parent


def tiny(**changes) -> RunConfig:
    base = dict(
        dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=6,
        sample_every=3, checkpoint_every=3, eval_every=3, seed=1,
    )
    return RunConfig(**(base | changes))


@pytest.fixture(scope="module")
def quick_evaluator(tmp_path_factory):
    """A one-epoch mnist-5k evaluator in a private cache, which the trainer finds through the environment."""
    cache = tmp_path_factory.mktemp("evaluators")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GAN_CACHE_DIR", str(cache))
        patch.setenv(training.EVALUATOR_EPOCHS_ENV, "1")
        evaluator = get_evaluator("mnist-5k", cache_dir=cache, epochs=1)
        yield cache, evaluator


@pytest.fixture
def store(tmp_path, quick_evaluator):
    return RunStore(tmp_path / "runs")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, quick_evaluator):
    """Two finished runs with quality metrics every 3 steps, for the pages."""
    store = RunStore(tmp_path_factory.mktemp("quality") / "runs")
    slow = store.create(tiny(name="slow"))
    fast = store.create(tiny(name="fast", g_lr=1e-3))
    for run in (slow, fast):
        assert train_run(run)["state"] == "finished"
    return store, slow, fast


def metric_steps(run) -> list[int]:
    return [int(row["step"]) for row in run.metrics_rows()]


def test_metrics_are_written_every_eval_every_steps_beside_their_floor(store, quick_evaluator):
    cache, _ = quick_evaluator
    run = store.create(tiny())
    status = train_run(run)
    assert status["state"] == "finished" and status["message"] == ""
    assert metric_steps(run) == [3, 6]
    for row in run.metrics_rows():
        assert math.isfinite(row["frechet_distance"]) and row["frechet_distance"] > 0
        assert 0 <= row["classes_covered"] <= 10 and row["class_kl"] >= 0
    assert status["quality_n"] == 500  # mnist-5k holds out 500 images
    assert 0 < status["quality_floor"] < min(row["frechet_distance"] for row in run.metrics_rows())
    assert len(list(Path(cache).glob("*.keras"))) == 1  # the trainer reused the cached evaluator
    assert [int(r["step"]) for r in run.history_rows()] == [1, 2, 3, 4, 5, 6]


def test_a_point_is_the_fd_of_the_checkpoint_sampled_like_the_evaluate_page(store, quick_evaluator):
    _, evaluator = quick_evaluator
    run = store.create(tiny(conditional=True, precision="float32"))  # bfloat16 sampling differs in the 5th digit
    train_run(run)
    data = reference_data("mnist-5k")
    images, labels = sample(load_generator(run, 6), 500, seed=0)
    assert labels[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    expected = cheap_metrics(lambda n: images[:n], evaluator, make_reference(evaluator, data, 500), 500)
    assert run.metrics_rows()[-1]["frechet_distance"] == pytest.approx(expected["fd"], rel=1e-6)
    assert run.metrics_rows()[-1]["classes_covered"] == expected["classes_covered"]


def test_calls_stop_at_quality_boundaries_and_the_last_step_is_measured(store):
    run = store.create(tiny(steps=7, steps_per_call=4, sample_every=100, checkpoint_every=100))
    trainer = Trainer(run)
    trainer.fit()
    assert metric_steps(run) == [3, 6, 7]
    assert trainer.train_fn.experimental_get_tracing_count() == 1


def test_off_by_default_and_in_the_presets(store):
    run = store.create(tiny(eval_every=0))
    status = train_run(run)
    assert not run.metrics_path.exists() and "quality_floor" not in status
    assert all(load_preset(name).eval_every == 0 for name in ("dcgan", "cgan", "tutorial-dcgan"))


def test_resume_cuts_metrics_back_to_the_checkpoint(store):
    run = store.create(tiny(steps=5, eval_every=2, checkpoint_every=3, sample_every=100))
    train_run(run)
    assert metric_steps(run) == [2, 4, 5]
    run.update_status(state="crashed")
    # Simulate a crash after step 5 was measured but before its checkpoint: drop ckpt-5.
    manager_state = run.checkpoints_dir / "checkpoint"
    manager_state.write_text(manager_state.read_text().replace("ckpt-5", "ckpt-3"))
    status = Trainer(run).fit(resume=True)
    assert status["step"] == 5
    assert metric_steps(run) == [2, 4, 5]  # 4 and 5 measured again after the cut, not appended twice


def test_a_failing_evaluator_never_stops_training(store, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no evaluator today")

    monkeypatch.setattr(training, "get_evaluator", broken)
    run = store.create(tiny())
    status = train_run(run)
    assert status["state"] == "finished" and status["step"] == 6
    assert status["message"] == (
        "Quality metrics failed at step 0 and are off for the rest of this run (RuntimeError: no evaluator today)."
    )
    assert not run.metrics_path.exists()


def test_a_metric_failure_mid_run_keeps_the_points_so_far(store, monkeypatch):
    calls = []
    real = training.cheap_metrics

    def fails_on_the_third_call(*args, **kwargs):  # 1: the floor, 2: step 3, 3: step 6
        calls.append(1)
        if len(calls) == 3:
            raise FloatingPointError("singular covariance")
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "cheap_metrics", fails_on_the_third_call)
    run = store.create(tiny(steps=9))
    status = train_run(run)
    assert status["state"] == "finished" and status["step"] == 9
    assert "Quality metrics failed at step 6" in status["message"] and "FloatingPointError" in status["message"]
    assert metric_steps(run) == [3] and len(calls) == 3


def test_unlabelled_data_gets_fd_without_class_metrics(store, tmp_path):
    path = tmp_path / "unlabelled.npz"
    np.savez(path, x=np.random.default_rng(0).integers(0, 255, (200, 28, 28), dtype=np.uint8))
    run = store.create(tiny(dataset=str(path)))
    status = train_run(run)
    assert status["state"] == "finished" and status["quality_n"] == 20
    rows = run.metrics_rows()
    assert [int(r["step"]) for r in rows] == [3, 6]
    assert all(math.isfinite(r["frechet_distance"]) and r["classes_covered"] is None and r["class_kl"] is None for r in rows)
    assert run.metrics_path.read_text().splitlines()[1].endswith(",,")


def test_a_bad_evaluator_epochs_setting_is_a_note_not_a_crash(store, monkeypatch):
    monkeypatch.setenv(training.EVALUATOR_EPOCHS_ENV, "many")
    status = train_run(store.create(tiny(steps=3)))
    assert status["state"] == "finished" and "Quality metrics failed at step 0" in status["message"]


# ---- pages ------------------------------------------------------------------------------------
def chart_traces(page) -> list[list[str]]:
    return [[trace["name"] for trace in json.loads(chart.proto.spec)["data"]] for chart in page.get("plotly_chart")]


def test_the_train_page_charts_quality_in_its_own_tab(trained, monkeypatch):
    store, slow, _ = trained
    monkeypatch.setenv("GAN_RUNS_DIR", str(store.root))
    at = AppTest.from_file(str(ROOT / "pages/train.py"), default_timeout=APPTEST_TIMEOUT)
    at.session_state["run_id"] = slow.id
    at.session_state["train_tab"] = "Quality"  # the user opens the tab: only the open tab draws its chart
    at.run()
    assert not at.exception
    assert [tab.label for tab in at.tabs] == ["Losses", "Quality", "D outputs", "Gradient norms", "Throughput"]
    quality = at.tabs[1]
    assert chart_traces(quality) == [["Fréchet distance", "Real-vs-real floor", "Classes covered"]]
    spec = json.loads(quality.get("plotly_chart")[0].proto.spec)
    assert spec["data"][0]["x"] == [3, 6] and spec["data"][1]["y"][0] == pytest.approx(slow.status()["quality_floor"])
    assert quality.caption[0].value.startswith("Fréchet distance of 500 generated images to 500 held-out images")
    assert len(at.get("plotly_chart")) == 1, "the other tabs draw nothing until opened"


def test_the_compare_page_overlays_quality_when_runs_have_it(trained, monkeypatch):
    store, slow, fast = trained
    monkeypatch.setenv("GAN_RUNS_DIR", str(store.root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APPTEST_TIMEOUT).run()
    at.session_state["run_id"] = slow.id
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    assert [s.value for s in at.subheader][:2] == ["Losses", "Quality"]
    assert chart_traces(at)[2] == [slow.id, fast.id, "Real-vs-real floor"]


def test_quality_overlay_draws_each_distinct_floor(trained):
    _, slow, fast = trained
    rows, floors = quality_series({"slow": slow, "fast": fast})
    assert list(rows) == ["slow", "fast"] and floors["slow"] == floors["fast"]
    figure = quality_overlay_figure(rows, {"slow": 1.0, "fast": 2.0})
    assert [t.name for t in figure.data] == ["slow", "fast", "Real-vs-real floor (slow)", "Real-vs-real floor (fast)"]
    assert figure.data[2].line.dash == "dash" and figure.layout.yaxis.type == "log"
    assert quality_series({}) == ({}, {})
