"""The Compare page on two tiny runs trained in-process: overlaid losses, configs side by side, final figures."""

import json
import shutil
from pathlib import Path

import pytest
import tensorflow as tf
from streamlit.testing.v1 import AppTest

from gan_core.config import RunConfig
from gan_core.store import provenance
from gan_core.store.runs import RunStore
from gan_core.training import devices
from gan_core.training.loop import train_run
from tests.waiting import APPTEST_TIMEOUT

APP = Path(__file__).resolve().parent.parent / "app.py"
TINY = RunConfig(
    dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=6, sample_every=3, checkpoint_every=3
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("compare") / "runs")
    slow = store.create(TINY.replace(name="slow"))
    fast = store.create(TINY.replace(name="fast", g_lr=1e-3))
    for run in (slow, fast):
        assert train_run(run)["state"] == "finished"
    return store, slow, fast


def compare_page(selected: str | None = None) -> AppTest:
    """The Compare page, reached from Home with `selected` as the selected run."""
    at = AppTest.from_file(str(APP), default_timeout=APPTEST_TIMEOUT).run()
    at.session_state["run_id"] = selected
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    return at


@pytest.fixture
def runs_dir(trained, monkeypatch):
    monkeypatch.setenv("GAN_RUNS_DIR", str(trained[0].root))


def chart_traces(page) -> list[list[str]]:
    return [[trace["name"] for trace in json.loads(chart.proto.spec)["data"]] for chart in page.get("plotly_chart")]


def test_two_runs_overlaid_with_their_configs_and_final_figures(runs_dir, trained):
    _, slow, fast = trained
    at = compare_page(slow.id)
    assert at.multiselect[0].value == [slow.id, fast.id]
    assert chart_traces(at) == [[slow.id, fast.id], [slow.id, fast.id]]
    configs = at.dataframe[0].value
    assert list(configs.columns) == [slow.id, fast.id]
    assert configs.loc["g_lr"].tolist() == ["0.0002", "0.001"]
    assert at.caption[0].value == "2 of 35 fields differ: name, g_lr."
    finals = at.dataframe[2].value.set_index("run")
    assert finals.loc[slow.id, "final step"] == 6 and finals.loc[fast.id, "state"] == "finished"
    assert finals["G loss (last)"].notna().all()


def test_the_chosen_runs_download_as_one_report(runs_dir, trained, deferred_downloads):
    _, slow, fast = trained
    at = compare_page(slow.id)
    assert [button.label for button in at.get("download_button")] == ["Download report (HTML)"]
    at.slider[0].set_value(0.0).run()
    document = deferred_downloads["comparison-of-2-runs.html"]()  # built only when clicked, with the page's smoothing
    assert "<title>Comparison of 2 runs</title>" in document and "at step 6</figcaption>" in document
    assert document.count('class="plotly-graph-div"') == 2 and '<tr class="differs"><th>g_lr</th><td>0.0002</td><td>0.001</td></tr>' in document
    losses = [row["g_loss"] for row in slow.history_rows()]
    assert json.dumps(losses, separators=(",", ":")).strip("[]") in document, "unsmoothed, as the slider says"


def test_each_runs_environment_is_set_side_by_side_and_a_changed_one_is_marked(trained, tmp_path, monkeypatch):
    store, slow, fast = trained
    shutil.copytree(store.root, tmp_path / "runs")
    monkeypatch.setenv("GAN_RUNS_DIR", str(tmp_path / "runs"))
    at = compare_page(slow.id)
    environment = at.dataframe[1].value
    assert list(environment.index) == list(provenance.FIELDS.values()) and list(environment.columns) == [slow.id, fast.id]
    assert environment.loc["TensorFlow"].tolist() == [tf.__version__] * 2 and environment.loc["Precision (dtype policy)", slow.id] == devices.precision_policy("auto")
    assert at.caption[1].value.endswith("The same for these runs.")
    copy = RunStore(tmp_path / "runs").get(fast.id)
    provenance.record(copy, provenance.entries(copy)[0] | {"from_step": 6, "tensorflow": "9.9.9"})
    at = compare_page(slow.id)
    assert at.dataframe[1].value.loc["TensorFlow", fast.id] == f"{tf.__version__} → 9.9.9"
    assert at.caption[1].value.endswith("Differs: TensorFlow.")


def test_only_differing_fields_and_highlighting(runs_dir):
    at = compare_page()
    at.toggle[0].set_value(True).run()
    table = at.dataframe[0]
    assert list(table.value.index) == ["name", "g_lr"]
    assert "background-color: #fff3b0" in table.proto.arrow_data.styler.styles
    assert json.loads(table.proto.columns)["_index"] == {"label": "field", "width": "medium", "type_config": {"type": "text"}}


def test_one_run_chosen_draws_one_line_per_chart(runs_dir, trained):
    _, slow, _ = trained
    at = compare_page()
    at.multiselect[0].set_value([slow.id]).run()
    assert chart_traces(at) == [[slow.id], [slow.id]]
    assert at.caption[0].value == "0 of 35 fields differ."


def test_fewer_than_two_runs_points_to_configure(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_RUNS_DIR", str(tmp_path / "runs"))
    at = compare_page()
    assert at.info[0].value.startswith("Comparing needs at least two runs")
    assert not at.multiselect
