"""The Evaluate page through AppTest: empty store, evaluating one run, reloading it, comparing two runs."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gan_core.config import RunConfig
from gan_core.store.runs import RunStore
from tests.waiting import APPTEST_TIMEOUT

ROOT = Path(__file__).resolve().parent.parent
PAGE = "pages/evaluate.py"


def tiny(**changes) -> RunConfig:
    base = dict(dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=6, sample_every=3, checkpoint_every=3, seed=1)
    return RunConfig(**{key: value for key, value in (base | changes).items() if value is not None})  # None: a field the family lacks


@pytest.fixture
def store(tmp_path, monkeypatch, cache_dir):
    monkeypatch.setenv("GAN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GAN_CACHE_DIR", str(cache_dir))
    return RunStore(tmp_path / "runs")


def trained(store, **changes):
    from gan_core.training.loop import train_run

    run = store.create(tiny(**changes))
    train_run(run)
    return run


def open_page(run_id: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=APPTEST_TIMEOUT)  # the first evaluation may train the evaluator
    if run_id:
        at.session_state["run_id"] = run_id
    return at.run()


def evaluate_button(at: AppTest):
    return next(b for b in at.button if b.label.startswith("Evaluate"))


def test_an_empty_store_points_to_the_train_page(store):
    # page_link resolves pages against the app's entry script, so open the page the way the app does.
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APPTEST_TIMEOUT).run()
    at.switch_page(PAGE).run()
    assert not at.exception
    assert "No run has a checkpoint yet" in at.info[0].value
    assert [link.proto.page for link in at.get("page_link")] == ["train"]  # the url path of pages/train.py


def test_evaluating_a_run_shows_the_metric_table_histogram_and_neighbours_and_saves_them(store):
    run = trained(store)
    at = open_page(run.id)
    assert not at.exception
    assert at.multiselect[0].value == [run.id]
    assert at.selectbox[0].value == 6 and at.number_input[0].value == 500
    assert not at.dataframe and not at.get("plotly_chart")
    at.number_input[0].set_value(100).run()
    assert evaluate_button(at).label == "Evaluate (1 of 1 not evaluated yet)"
    evaluate_button(at).click().run()
    assert not at.exception and not at.error
    progress = at.get("progress")[0].proto
    assert progress.value == 100 and progress.text == f"{run.id}: Done"
    assert not [b for b in at.button if b.label.startswith("Evaluate")]  # no "1 of 1 not evaluated yet" beside the results

    table = at.dataframe[0].value
    assert list(table.columns) == ["Metric", "Generated", "Real held-out vs train", "Better"]
    assert table["Metric"].iloc[0] == "Fréchet distance (evaluator features) *"
    assert "held-out accuracy" in at.caption[0].value
    assert len(at.get("plotly_chart")) == 1
    pairs = at.get("image")
    assert len(pairs) == 8 and all(len(pair.proto.imgs) == 2 for pair in pairs)  # generated beside its nearest
    assert pairs[0].proto.imgs[0].caption == "generated" and pairs[0].proto.imgs[1].caption.startswith("distance ")
    assert [b.proto.label for b in at.get("download_button")] == ["Results (.csv)", "Results (.json)"]
    assert (run.dir / "evaluations" / "step_000006_n0100.json").is_file()

    again = open_page(run.id)
    again.number_input[0].set_value(100).run()
    assert not again.exception
    assert not [b for b in again.button if b.label.startswith("Evaluate")]  # reloaded, nothing to compute
    assert again.dataframe[0].value.equals(table)


def test_two_runs_are_compared_side_by_side(store):
    first, second = trained(store, name="first"), trained(store, name="second", seed=2)
    at = open_page(first.id)
    at.multiselect[0].set_value([first.id, second.id]).run()
    at.number_input[0].set_value(50).run()
    assert evaluate_button(at).label == "Evaluate (2 of 2 not evaluated yet)"
    evaluate_button(at).click().run()
    assert not at.exception
    comparison = at.dataframe[0].value
    assert comparison["Run"].tolist() == [first.id, second.id]
    assert {"Step", "N", "Evaluator accuracy", "Fréchet distance (evaluator features)"} <= set(comparison.columns)
    assert len(at.tabs) == 2


def test_an_srgan_run_is_scored_column_by_column_without_distribution_metrics(store):
    """Its outputs restore the held-out digits themselves, so FD and near-copies would mean nothing."""
    run = trained(store, family="srgan", blocks=1, feature_weight=0.0, latent_dim=None)
    at = open_page(run.id)
    at.number_input[0].set_value(50).run()
    evaluate_button(at).click().run()
    assert not at.exception and not at.error
    (table,) = [frame.value for frame in at.dataframe]
    assert list(table["column"]) == ["Bicubic", "SRGAN", "Original"]
    assert list(table["against"].fillna("")) == ["Original", "Original", ""]
    assert table["Class kept (%)"].between(0, 100).all() and table["Class kept (%)"].iloc[-1] > 80  # the originals: the evaluator's accuracy
    assert not at.get("plotly_chart") and not at.get("image")
    assert "Held-out examples, column by column" in [header.value for header in at.subheader]


def test_a_cyclegan_run_is_scored_against_domain_b_and_column_by_column(store):
    run = trained(store, family="cyclegan", blocks=1, pool_size=4, batch_size=4, latent_dim=None)
    at = open_page(run.id)
    at.number_input[0].set_value(50).run()
    evaluate_button(at).click().run()
    assert not at.exception and not at.error
    columns, metrics = (frame.value for frame in at.dataframe[:2])
    assert list(columns["column"]) == ["A", "A->B", "A->B->A", "B", "B->A", "B->A->B"]
    a, b = "mnist-5k evaluator", "mnist-5k-thick evaluator"
    assert list(columns["read by"]) == [a, b, a, b, a, b]
    assert metrics["Metric"].iloc[0] == "Fréchet distance (evaluator features) *"
    result = (run.dir / "evaluations" / "step_000006_n0050.json").read_text()
    assert '"dataset": "mnist-5k-thick"' in result
