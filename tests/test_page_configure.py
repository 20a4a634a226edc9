"""The Configure page: presets, the form and its errors, dataset uploads and checks, model summary, Train."""

import importlib
import io
import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from gan_core.config import field_info, load_preset
from gan_core.dashboard import preload
from gan_core.dashboard.forms import UPLOAD_CHOICE
from gan_core.data import datasets
from gan_core.errors import DataError
from gan_core.store import jobs
from gan_core.store.runs import RunStore
from tests.waiting import APPTEST_TIMEOUT

APP = Path(__file__).resolve().parent.parent / "app.py"
TINY_FORM = {
    "cfg_width": 0.125, "cfg_latent_dim": 8, "cfg_batch_size": 16, "cfg_steps": 6,
    "cfg_sample_every": 3, "cfg_checkpoint_every": 3,
}


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_RUNS_DIR", str(tmp_path / "runs"))
    return RunStore(tmp_path / "runs")


@pytest.fixture(autouse=True)
def tensorflow_imported():
    """As in a server whose background import has ended: the page draws its model summary at once."""
    importlib.import_module("keras")


@pytest.fixture
def at(store):
    page = AppTest.from_file(str(APP), default_timeout=APPTEST_TIMEOUT).run()
    page.switch_page("pages/configure.py").run()
    assert not page.exception
    return page


def npz_bytes(n=40, side=32, classes=4):
    buffer = io.BytesIO()
    images = np.random.default_rng(1).integers(0, 256, (n, side, side, 1), dtype=np.uint8)
    np.savez(buffer, x=images, y=np.arange(n) % classes)
    return buffer.getvalue()


def metrics(page):
    return {metric.label: metric.value for metric in page.metric}


def submit(page, label):
    next(button for button in page.button if button.label == label).click().run()
    assert not page.exception
    return page


def test_renders_every_group_with_the_default_preset(at):
    assert [tab.label for tab in at.tabs] == [
        "Family & architecture", "Loss & regularizers", "Optimizer", "Schedule", "Output & performance",
    ]
    assert at.selectbox(key="preset").value == "dcgan"
    assert at.selectbox(key="cfg_dataset_source").value == "mnist-5k"
    dcgan = load_preset("dcgan")
    assert at.number_input(key="cfg_width").value == dcgan.width == 0.5
    assert at.number_input(key="cfg_epochs").value == dcgan.epochs
    assert at.selectbox(key="cfg_loss").value == "bce"
    assert at.number_input(key="cfg_batch_size").proto.help == "Images per training step."
    assert not at.error
    assert set(metrics(at)) == {"Generator parameters", "Discriminator parameters"}
    assert [button.label for button in at.download_button] == ["Download config.json"]


def test_while_the_server_imports_tensorflow_the_page_is_usable_and_the_summary_says_it_is_loading(store, monkeypatch):
    """Only the model summary needs TensorFlow: the form, Check, Train and the download are there before it."""
    monkeypatch.setattr(preload, "ready", lambda: False)
    page = AppTest.from_file(str(APP), default_timeout=APPTEST_TIMEOUT).run()
    page.switch_page("pages/configure.py").run()
    assert not page.exception and not metrics(page)
    assert [info.value for info in page.info] == ["Loading TensorFlow to build the models (a few seconds after the server starts)…"]
    assert [button.label for button in page.download_button] == ["Download config.json"]
    assert {"Train", "Check"} <= {button.label for button in page.button}
    monkeypatch.setattr(preload, "ready", lambda: True)
    page.run()
    assert set(metrics(page)) == {"Generator parameters", "Discriminator parameters"} and not page.info


def test_changing_the_preset_loads_its_values_and_the_tutorial_summary(at):
    at.selectbox(key="preset").set_value("wgan-gp").run()
    assert (at.selectbox(key="cfg_loss").value, at.number_input(key="cfg_d_steps").value) == ("wgan-gp", 5)
    assert at.number_input(key="cfg_g_beta2").value == 0.9
    at.selectbox(key="preset").set_value("tutorial-dcgan").run()
    assert at.number_input(key="cfg_batch_size").value == 256
    assert metrics(at) == {"Generator parameters": "2,330,944", "Discriminator parameters": "212,865"}
    generator_table = at.dataframe[0].value
    assert generator_table["params"].sum() == 2_330_944
    assert list(generator_table.columns) == ["layer", "type", "output_shape", "params"]


def test_lapgan_srgan_and_cyclegan_offer_the_stabilizers_off_with_their_help(at):
    for preset in ("lapgan", "srgan", "cyclegan"):
        at.selectbox(key="preset").set_value(preset).run()
        assert at.selectbox(key="cfg_family").value == preset and not at.exception
        for name in ("r1_weight", "feature_matching"):
            widget = at.number_input(key=f"cfg_{name}")
            assert (widget.value, widget.proto.help) == (0.0, field_info(name, preset)["help"])
        diffaugment = at.text_input(key="cfg_diffaugment")
        assert (diffaugment.value, diffaugment.proto.help) == ("", field_info("diffaugment", preset)["help"])


def test_a_cross_field_error_is_shown_at_the_top_and_blocks_training(at, store):
    at.number_input(key="cfg_epochs").set_value(0)
    at.number_input(key="cfg_steps").set_value(0)
    submit(at, "Train")
    assert [error.value for error in at.error] == [
        "Set epochs or steps above 0; both are 0, so the run would train nothing."
    ]
    assert not at.metric and not at.download_button
    assert store.list() == []


def test_a_valid_upload_shows_a_preview_and_class_counts_and_is_saved(at, store):
    at.selectbox(key="cfg_dataset_source").set_value(UPLOAD_CHOICE).run()
    assert not at.error  # nothing uploaded yet is a prompt, not a mistake
    assert at.info[0].value == "Choose a file: training waits for it."
    assert at.warning[0].value == "Upload the dataset file above to see the model summary and to train."
    assert not at.metric and not at.download_button
    at.file_uploader[-1].set_value(("my digits.npz", npz_bytes(), "application/octet-stream")).run()
    assert not at.exception and not at.error
    saved = list((store.root / "_uploads").iterdir())
    assert len(saved) == 1 and saved[0].name.endswith("_my_digits.npz")
    assert saved[0].read_bytes() == npz_bytes()
    assert at.success[0].value.endswith("40 images of 32x32x1 pixels, 4 classes.")
    assert [image.captions for image in at.image] == [["The first 64 images"]]
    counts = at.dataframe[0].value
    assert counts.to_dict("records") == [{"class": str(c), "images": 10} for c in range(4)]
    generator = at.dataframe[1].value
    assert generator["output_shape"].iloc[-1] == "(None, 32, 32, 1)"
    at.selectbox(key="preset").set_value("mlp-gan").run()
    assert at.selectbox(key="cfg_dataset_source").value == UPLOAD_CHOICE and at.selectbox(key="cfg_family").value == "mlp"
    # its batch of 64 is more than the 40 images: said before Train, as the worker would refuse it
    assert [error.value for error in at.error] == ["One training step takes 64 images, more than the dataset's 40; lower batch_size."]
    assert not at.metric and not at.download_button
    assert store.list() == []


def test_a_bad_upload_shows_one_sentence_and_writes_nothing(at, store):
    at.selectbox(key="cfg_dataset_source").set_value(UPLOAD_CHOICE).run()
    buffer = io.BytesIO()
    np.savez(buffer, images=np.zeros((20, 28, 28), np.uint8))
    at.file_uploader[-1].set_value(("bad.npz", buffer.getvalue(), "application/octet-stream")).run()
    assert not at.exception
    errors = [error.value for error in at.error]
    assert errors[0] == "'bad.npz' has no array named 'x' (found: images); save images with np.savez(path, x=images)."
    assert not (store.root / "_uploads").exists()
    assert not at.metric


@pytest.mark.parametrize(("name", "stand_in"), [("fashion_mnist", "mnist-5k"), ("cifar10", "mnist-5k-colour")])
def test_a_failed_download_offers_the_offline_set(at, monkeypatch, name, stand_in):
    def offline(name, split):
        raise DataError(f"Could not download '{name}' (no network?): no route. Use the bundled offline set.")

    monkeypatch.setattr(datasets, "_load_keras", offline)
    at.selectbox(key="cfg_dataset_source").set_value(name).run()
    submit(at, "Check dataset")
    assert at.error[0].value.startswith(f"Could not download '{name}' (no network?)")
    submit(at, f"Use {stand_in} instead")
    assert at.selectbox(key="cfg_dataset_source").value == stand_in
    assert not at.error


def test_the_offline_colour_set_is_checked_and_summarised_in_colour(at):
    at.selectbox(key="cfg_dataset_source").set_value("mnist-5k-colour").run()
    submit(at, "Check dataset")
    assert not at.error
    assert at.success[0].value == "mnist-5k-colour is ready: 4500 images of 32x32x3 pixels, 10 classes."
    generator = at.dataframe[0].value
    assert generator["output_shape"].iloc[-1] == "(None, 32, 32, 3)"


def test_a_config_json_fills_the_form_and_a_bad_one_is_one_sentence(at):
    at.file_uploader[0].set_value(("config.json", load_preset("cgan").to_json().encode(), "application/json")).run()
    assert at.checkbox(key="cfg_conditional").value is True
    assert at.text_input(key="cfg_name").value == "cgan"
    at.file_uploader[0].set_value(("config.json", b'{"latnt_dim": 3}', "application/json")).run()
    assert at.error[0].value.startswith("Unknown configuration key 'latnt_dim'. Did you mean 'latent_dim'?")


def _wait_for_exit(pid: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:  # already reaped
            return
        time.sleep(0.2)
    raise AssertionError(f"worker {pid} still running after {timeout} s")


def test_train_on_a_run_store_that_cannot_be_written_is_one_sentence(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    root = tmp_path / "file" / "runs"
    monkeypatch.setenv("GAN_RUNS_DIR", str(root))
    page = AppTest.from_file(str(APP), default_timeout=APPTEST_TIMEOUT).run()
    page.switch_page("pages/configure.py").run()
    for key, value in TINY_FORM.items():
        page.number_input(key=key).set_value(value)
    submit(page, "Train")
    assert [error.value for error in page.error] == [f"Could not start the run in {root}: Not a directory."]


def test_train_creates_a_run_and_opens_the_train_page(at, store, monkeypatch):
    # A run already "running" in this (live) process fills the only slot, so the new run's worker
    # waits in the queue without loading TensorFlow and stops at once when the test stops it.
    monkeypatch.setenv("GAN_MAX_JOBS", "1")
    busy = store.create(load_preset("dcgan"))
    busy.update_status(state="running", pid=os.getpid(), host=socket.gethostname())
    for key, value in TINY_FORM.items():
        at.number_input(key=key).set_value(value)
    at.text_input(key="cfg_name").set_value("from the form")
    next(button for button in at.button if button.label == "Train").click().run()
    assert not at.exception
    run = next(run for run in store.list() if run.id != busy.id)
    try:
        expected = {key.removeprefix("cfg_"): value for key, value in TINY_FORM.items()}
        assert run.config() == load_preset("dcgan").replace(name="from the form", **expected)
        assert at.session_state["run_id"] == run.id
        assert run.status()["state"] == "queued"
    finally:
        jobs.stop_job(run)
        _wait_for_exit(run.raw_status()["pid"])
    assert run.status()["state"] == "stopped"


def test_the_cyclegan_preset_offers_domain_b_as_a_dataset_or_an_upload(at, store, monkeypatch):
    assert not [box for box in at.selectbox if box.key == "cfg_domain_b_source"]  # only cyclegan has a domain B
    at.selectbox(key="preset").set_value("cyclegan").run()
    assert not at.exception and not at.error
    assert at.selectbox(key="cfg_domain_b_source").value == "mnist-5k-thick"
    assert set(metrics(at)) == {f"{name} parameters" for name in ("Generator a to b", "Generator b to a", "Discriminator a", "Discriminator b")}
    at.selectbox(key="cfg_domain_b_source").set_value(UPLOAD_CHOICE).run()
    assert not at.error and at.info[0].value == "Choose a file: training waits for it."
    at.file_uploader[-1].set_value(("big.npz", npz_bytes(side=32), "application/octet-stream")).run()
    (big,) = (store.root / "_uploads").iterdir()
    assert [error.value for error in at.error] == [  # the worker's own check, said before Train
        f"domain_b '{big}' has 32x32x1 images but domain A 'mnist-5k' has 28x28x1: both domains need images of one size."
    ]
    assert not at.metric and not at.download_button
    at.file_uploader[-1].set_value(("thick.npz", npz_bytes(side=28), "application/octet-stream")).run()
    assert not at.exception and not at.error
    (saved,) = set((store.root / "_uploads").iterdir()) - {big}
    assert at.success[0].value == f"Saved as {saved}: 40 images of 28x28x1 pixels, 4 classes."
    assert at.selectbox(key="cfg_dataset_source").value == "mnist-5k"  # domain A is untouched
    assert len(metrics(at)) == 4
    at.selectbox(key="cfg_domain_b_source").set_value("sklearn-digits").run()
    monkeypatch.setenv("GAN_MAX_JOBS", "1")
    busy = store.create(load_preset("dcgan"))
    busy.update_status(state="running", pid=os.getpid(), host=socket.gethostname())
    submit(at, "Train")
    run = next(run for run in store.list() if run.id != busy.id)
    try:
        assert run.config() == load_preset("cyclegan").replace(domain_b="sklearn-digits")
    finally:
        jobs.stop_job(run)
        _wait_for_exit(run.raw_status()["pid"])


def test_an_out_of_range_number_is_stated_beside_its_field_and_blocks_train_and_the_download(at, store):
    """The browser no longer clamps or keeps the old value: the engine's sentence is shown and nothing goes on."""
    at.number_input(key="cfg_epochs").set_value(-3)
    submit(at, "Check")
    assert [error.value for error in at.error] == ["epochs must be an integer between 0 and 100000; got -3."]
    assert not at.download_button and not at.metric
    assert at.warning[0].value == "Fix the values marked above to see the model summary and to train."
    submit(at, "Train")
    assert store.list() == []
    at.number_input(key="cfg_epochs").set_value(2)
    submit(at, "Check")
    assert not at.error and [button.label for button in at.download_button] == ["Download config.json"]
