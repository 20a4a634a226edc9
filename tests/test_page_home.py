"""The Home page (pages/home.py, the default page of app.py): empty state, the runs table, broken runs and selecting a run."""

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gan_core.config import RunConfig
from gan_core.store.runs import RunStore
from tests.waiting import APPTEST_TIMEOUT

APP = Path(__file__).resolve().parent.parent / "app.py"
TINY = RunConfig(
    dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=6, sample_every=3, checkpoint_every=3
)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_RUNS_DIR", str(tmp_path / "runs"))
    return RunStore(tmp_path / "runs")


def home() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=APPTEST_TIMEOUT).run()


def add_run(store, name, state, step, g_loss):
    run = store.create(TINY.replace(name=name))
    run.update_status(state=state, step=step, total_steps=6, started=time.time(), train_seconds=3.0)
    run.append_history(
        [{"step": step, "epoch": 1, "g_loss": g_loss, "d_loss": 0.5, "d_real": 0.6, "d_fake": 0.4,
          "g_grad_norm": 1.0, "d_grad_norm": 1.0, "images_per_sec": 50.0, "elapsed_sec": 3.0}]
    )
    return run


def test_empty_store_tells_a_newcomer_what_to_click(store):
    at = home()
    assert not at.exception
    assert at.title[0].value == "GAN Workbench"
    assert [info.value for info in at.info] == [
        "No runs yet: open Configure, keep the dcgan preset and press Train — "
        "digits appear in about two minutes on a CPU."
    ]
    assert [link.value for link in at.get("page_link")] == ["New experiment"]
    assert not at.dataframe


def test_table_lists_every_run_with_its_status(store):
    finished = add_run(store, "first", "finished", 6, 1.25)
    stopped = add_run(store, "second", "stopped", 3, 2.5)
    at = home()
    assert not at.exception and not at.info
    table = at.dataframe[0].value.set_index("run")
    assert set(table.index) == {finished.id, stopped.id}
    assert table.loc[finished.id, "status"] == "finished" and table.loc[finished.id, "step"] == "6/6"
    assert table.loc[stopped.id, "status"] == "stopped" and table.loc[stopped.id, "G loss"] == 2.5
    assert table.loc[stopped.id, "name"] == "second" and table.loc[stopped.id, "model"] == "dcgan"


def test_a_broken_run_shows_as_broken_and_the_others_still_load(store):
    good = add_run(store, "good", "finished", 6, 1.0)
    broken = add_run(store, "broken", "finished", 6, 1.0)
    broken.config_path.write_text('{"latent_dim": -3}')
    at = home()
    assert not at.exception
    table = at.dataframe[0].value.set_index("run")
    assert table.loc[good.id, "status"] == "finished"
    assert table.loc[broken.id, "status"] == "broken"
    assert "latent_dim must be an integer between 1 and 1024" in table.loc[broken.id, "message"]


def test_selecting_a_row_selects_the_run_and_links_its_pages(store):
    add_run(store, "one", "finished", 6, 1.0)
    add_run(store, "two", "finished", 6, 1.0)
    at = home()
    assert "Select a row" in at.caption[0].value
    assert [link.value for link in at.get("page_link")] == ["New experiment"]
    second = at.dataframe[0].value["run"].tolist()[1]
    at.session_state["runs_table"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert at.session_state["run_id"] == second
    assert at.query_params["run"] == second
    links = [link.value for link in at.get("page_link")]
    assert links == ["New experiment", "Train", "Generate", "Evaluate", "Compare", "Models"]
    assert all(link.proto.icon.startswith(":material/") for link in at.get("page_link"))  # links, not plain text
    long = "Stopped on request." + " A long message the table's column cuts." * 5
    store.get(second).update_status(message=long)
    at.run()
    assert f"Run **{second}**: {long}" in [text.value for text in at.markdown]  # said whole under the table
