"""The Train page through AppTest: empty store, a finished run with charts and samples, stop and resume."""

import shlex
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gan_core.config import RunConfig
from gan_core.store import jobs, provenance
from tests.waiting import APPTEST_TIMEOUT, wait_for

ROOT = Path(__file__).resolve().parent.parent
PAGE = "pages/train.py"


def tiny(**changes) -> RunConfig:
    base = dict(
        dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=6, sample_every=3, checkpoint_every=3, seed=1,
    )
    return RunConfig(**(base | changes))


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


@pytest.fixture
def store(job_store):
    return job_store


def test_an_empty_store_points_to_the_configure_page(store):
    # page_link resolves pages against the app's entry script, so open the page the way the app does.
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APPTEST_TIMEOUT).run()
    at.switch_page(PAGE).run()
    assert not at.exception
    assert "No runs yet" in at.info[0].value
    assert [(link.proto.label, link.proto.page) for link in at.get("page_link")] == [("Configure a run", "configure")]
    assert not at.get("plotly_chart")


def test_a_finished_run_shows_progress_charts_samples_and_can_train_more(store, deferred_downloads):
    from gan_core.training.loop import train_run

    run = store.create(tiny())
    train_run(run)
    store.create(tiny(name="newer"))  # the newest run is not the selected one
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=APPTEST_TIMEOUT)
    at.session_state["run_id"] = run.id
    at.run()
    assert not at.exception
    assert at.selectbox[0].value == run.id
    progress = at.get("progress")[0].proto
    assert progress.value == 100 and progress.text == "Finished: step 6 / 6, epoch 1"
    assert [tab.label for tab in at.tabs] == ["Losses", "Quality", "D outputs", "Gradient norms", "Throughput"]
    assert len(at.get("plotly_chart")) == 1, "only the open tab draws its chart"
    for label in ("D outputs", "Gradient norms", "Throughput"):
        at.session_state["train_tab"] = label
        at.run()
        assert len(at.get("plotly_chart")) == 1 and not at.exception
    at.session_state["train_tab"] = "Quality"
    at.run()
    assert not at.get("plotly_chart") and at.tabs[1].caption[0].value.startswith("Quality metrics are off for this run")
    at.session_state["train_tab"] = "Losses"
    at.run()
    assert at.get("image")[0].proto.imgs[0].caption == "The same fixed noise at step 6"
    slider = at.select_slider[0]
    assert slider.options == ["0", "3", "6"] and slider.value == 6
    slider.set_value(3).run()
    assert at.get("image")[0].proto.imgs[0].caption == "The same fixed noise at step 3"
    assert [b.label for b in at.get("download_button")] == ["Download the training as a GIF", "Download report (HTML)"]
    document = deferred_downloads[f"{run.id}.html"]()  # built only when clicked
    assert f"<title>Run report: {run.id}</title>" in document and document.count('class="plotly-graph-div"') == 4
    assert [b.label for b in at.button] == ["Resume"]

    at.number_input[0].set_value(3)
    button(at, "Resume").click().run()
    assert not at.exception
    wait_for(lambda: run.status()["state"] == "finished" and run.status()["step"] == 9, what="3 more steps")
    at.run()
    assert at.get("progress")[0].proto.text == "Finished: step 9 / 9, epoch 1"
    assert [int(r["step"]) for r in run.history_rows()] == list(range(1, 10))
    first, resumed = provenance.entries(run)  # trained in this process, resumed by a worker the page started
    assert (first["from_step"], resumed["from_step"]) == (0, 6) and first["command"] == shlex.join(sys.orig_argv)
    assert f"-m gan_core work {run.id}" in resumed["command"] and resumed["tensorflow"] == first["tensorflow"]


def test_stop_on_the_page_stops_a_running_job(store):
    run = jobs.start_job(store, tiny(steps=2000, sample_every=1000, checkpoint_every=1000))
    wait_for(lambda: run.status()["state"] == "running", what="the job to start")
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=APPTEST_TIMEOUT).run()
    assert not at.exception
    assert at.selectbox[0].value == run.id
    button(at, "Stop").click().run()
    assert not at.exception
    wait_for(lambda: run.status()["state"] == "stopped", what="the worker to stop")
    at.run()
    assert [b.label for b in at.button] == ["Resume"]
    assert at.get("progress")[0].proto.text.startswith("Stopped: step")


def test_a_progan_run_shows_its_resolution_timeline_and_stage_starts_on_the_charts(store):
    import json

    from gan_core.training.loop import train_run

    run = store.create(RunConfig(
        family="progan", dataset="mnist-5k", channels="8,8,8,4", latent_dim=8, batch_size=8, fade_images=16, stable_images=16,
        steps=12, sample_every=100, checkpoint_every=100, seed=3,
    ))
    train_run(run)
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=APPTEST_TIMEOUT)
    at.session_state["run_id"] = run.id
    at.run()
    assert not at.exception
    assert [tab.label for tab in at.tabs] == ["Losses", "Quality", "D outputs", "Gradient norms", "Regularizers", "Growth", "Throughput"]
    layout = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]
    assert [(shape["x0"], shape["line"]["dash"]) for shape in layout["shapes"]] == [(2, "dot"), (6, "dot"), (10, "dot")]
    assert [note["text"] for note in layout["annotations"]] == ["8x8", "16x16", "32x32"]
    assert [sub.value for sub in at.subheader] == ["Resolution timeline", "Samples"]
    captions = [image.proto.imgs[0].caption for image in at.get("image")]
    assert captions == ["4x4 at step 2", "8x8 at step 6", "16x16 at step 10", "32x32 at step 12", "The same fixed noise at step 12"]
    at.session_state["train_tab"] = "Growth"
    at.run()
    growth = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    assert [trace["name"] for trace in growth] == ["Stage (0 = 4x4)", "Fade-in alpha"] and growth[1]["y"][2] == 0.5
