"""The Sweep page: the new-sweep form, a sweep's live trials table and Optuna's figures, stop/resume, and Make preset."""

import json
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from streamlit.testing.v1 import AppTest

from gan_core.config import RunConfig, load_preset, preset_names
from gan_core.dashboard.sweeps import _importances, importance_figure
from gan_core.store.runs import RunStore
from gan_core.sweeps import worker as sweep_worker
from gan_core.sweeps.spec import SweepSpec, parse_dimension
from gan_core.sweeps.store import SweepStore, open_study
from tests.waiting import APPTEST_TIMEOUT

APP = Path(__file__).resolve().parent.parent / "app.py"
BASE = RunConfig(dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GAN_PRESETS_DIR", str(tmp_path / "presets"))
    started = []
    monkeypatch.setattr(sweep_worker, "start_worker", lambda sweep, store: started.append(sweep.id))
    store = RunStore(tmp_path / "runs")
    store.started = started
    return store


def sweep_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=APPTEST_TIMEOUT).run()
    at.switch_page("pages/sweep.py").run()
    assert not at.exception
    return at


def finished_sweep(store: RunStore):
    """A sweep whose three trials ended (two completed, one failed), each with a run in the store."""
    spec = SweepSpec(name="lr sweep", base=BASE.to_dict(), trials=3, budget_steps=20,
                     dimensions=(parse_dimension("g_lr=1e-4:1e-3:log", BASE), parse_dimension("loss=bce,hinge", BASE)))
    sweep = SweepStore(store).create(spec)
    study = open_study(sweep)
    distributions = {"g_lr": FloatDistribution(1e-4, 1e-3, log=True), "loss": CategoricalDistribution(["bce", "hinge"])}
    for number, (g_lr, loss, value) in enumerate([(2e-4, "bce", 80.0), (6e-4, "hinge", 55.5), (1e-4, "hinge", None)]):
        run = store.create(spec.trial_config({"g_lr": g_lr, "loss": loss}, number))
        run.update_status(state="finished", step=20, sweep=sweep.id, trial=number)
        attrs = {"run_id": run.id} | ({} if value else {"error": "its run diverged: Training diverged at step 7"})
        study.add_trial(optuna.trial.create_trial(
            params={"g_lr": g_lr, "loss": loss}, distributions=distributions, value=value, user_attrs=attrs,
            state=optuna.trial.TrialState.COMPLETE if value else optuna.trial.TrialState.FAIL,
        ))
    return sweep, study


def test_with_no_sweeps_the_form_starts_one_from_the_preset_and_the_fields_chosen(store):
    at = sweep_page()
    assert "No sweeps yet" in at.info[0].value
    assert at.multiselect[0].value == ["g_lr", "batch_size", "loss"]
    at.text_input(key="sweep_range_dcgan_g_lr").set_value("1e-4:1e-3:log")
    at.button[0].click().run()  # Start sweep
    assert not at.exception and not at.error
    [sweep] = SweepStore(store).list()
    spec = sweep.spec()
    assert [d.text() for d in spec.dimensions] == ["g_lr=0.0001:0.001:log", "batch_size=16,32,64", "loss=bce,minimax,lsgan,hinge"]
    assert (spec.search, spec.trials, spec.budget_steps, spec.objective, spec.direction) == ("random", 6, 300, "frechet_distance", "minimize")
    assert store.started == [sweep.id]
    assert at.selectbox(key="sweep_id").value == sweep.id


def test_a_bad_range_is_refused_in_a_sentence_and_starts_nothing(store):
    at = sweep_page()
    at.text_input(key="sweep_range_dcgan_g_lr").set_value("1e-3:1e-4")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["g_lr's range must go from a lower to a higher value; got 0.001 to 0.0001."]
    assert SweepStore(store).list() == [] and store.started == []


def test_a_sweep_shows_its_trials_figures_and_best_trial_which_becomes_a_preset(store):
    sweep, study = finished_sweep(store)
    at = sweep_page()
    table = at.dataframe[0].value
    assert list(table["trial"]) == [0, 1, 2] and list(table["state"]) == ["complete", "complete", "failed"]
    assert table.loc[2, "error"].startswith("its run diverged") and table.loc[1, "frechet_distance"] == 55.5
    assert all(link.startswith("./train?run=") for link in table["run"])
    assert "finished: 3 of 3 trials ended" in at.get("progress")[0].proto.text
    charts = at.get("plotly_chart")
    assert len(charts) == 3
    history, parallel = (json.loads(chart.proto.spec) for chart in charts[:2])
    assert history["data"][0]["y"] == [80.0, 55.5] and history["data"][1]["y"][:2] == [80.0, 55.5]  # each trial, the best so far
    assert parallel["layout"]["xaxis"]["ticktext"] == ["frechet_distance", "g_lr", "loss"]  # an axis per parameter
    assert len([trace for trace in parallel["data"] if len(trace["x"]) == 3]) == 2  # a line per completed trial
    assert "Trial #1: frechet_distance = 55.5" in at.markdown[-1].value
    at.text_input(key="sweep_preset_name").set_value("my-best")
    next(b for b in at.button if b.label == "Make preset").click().run()
    assert "Saved preset 'my-best'" in at.success[0].value
    assert "my-best" in preset_names() and load_preset("my-best").g_lr == 6e-4
    assert at.session_state["run_id"] == study.trials[1].user_attrs["run_id"]


def test_parameter_importances_are_fitted_once_per_set_of_completed_trials(store, monkeypatch):
    """fANOVA fits a random forest: a live sweep's ticks reuse the figure until a trial completes."""
    sweep, study = finished_sweep(store)
    fits = []
    plot = optuna.visualization.plot_param_importances
    monkeypatch.setattr(optuna.visualization, "plot_param_importances", lambda *args, **kw: fits.append(kw) or plot(*args, **kw))
    _importances.clear()

    def bars(figure):  # each parameter's importance
        return dict(zip(figure.data[0].y, figure.data[0].x))

    first = bars(importance_figure(sweep, study, "frechet_distance"))
    assert bars(importance_figure(sweep, open_study(sweep), "frechet_distance")) == first and len(fits) == 1
    study.add_trial(optuna.trial.create_trial(
        params={"g_lr": 3e-4, "loss": "bce"}, value=70.0,
        distributions={"g_lr": FloatDistribution(1e-4, 1e-3, log=True), "loss": CategoricalDistribution(["bce", "hinge"])},
    ))
    third = bars(importance_figure(sweep, study, "frechet_distance"))
    assert len(fits) == 2 and third != first


def test_a_paused_sweep_can_be_resumed_and_a_running_one_stopped(store):
    spec = SweepSpec(name="paused", base=BASE.to_dict(), trials=2, budget_steps=20, dimensions=(parse_dimension("loss=bce,hinge", BASE),))
    sweep = SweepStore(store).create(spec)
    at = sweep_page()
    assert "paused: 0 of 2 trials ended" in at.get("progress")[0].proto.text
    next(b for b in at.button if b.label == "Resume sweep").click().run()
    assert store.started == [sweep.id]
    sweep.heartbeat()  # this test process as its live worker
    at = sweep_page()
    next(b for b in at.button if b.label == "Stop sweep").click().run()
    assert sweep.stop_requested()
    sweep.leave()
