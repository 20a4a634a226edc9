"""The Models page: download buttons for a run, uploads of run zips and generator files."""

import io
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gan_core.config import RunConfig
from gan_core.dashboard import model_cache
from gan_core.generation import model_io
from gan_core.generation.sampling import load_generator
from gan_core.store.runs import RunStore
from gan_core.training.loop import train_run
from tests.waiting import APPTEST_TIMEOUT

TINY = dict(dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=6, sample_every=3, checkpoint_every=3, seed=4)
APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGE = "pages/models.py"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = RunStore(tmp_path_factory.mktemp("source")).create(RunConfig(**TINY, name="trained"))
    train_run(run)
    return run


@pytest.fixture
def store(tmp_path, trained):
    """A store holding a copy of the trained run (imported, so each test may change it)."""
    store = RunStore(tmp_path / "runs")
    model_io.import_run_zip(store, model_io.run_zip_bytes(trained))
    return store


@pytest.fixture
def page(store, monkeypatch):
    monkeypatch.setenv("GAN_RUNS_DIR", str(store.root))

    def open_page(run_id=None):
        at = AppTest.from_file(APP, default_timeout=APPTEST_TIMEOUT).run().switch_page(PAGE)  # pages resolve after a first run
        at.session_state["run_id"] = run_id
        return at.run()

    return open_page


def click(at: AppTest, label: str) -> AppTest:
    next(button for button in at.button if button.label == label).click()
    return at.run()


def uploader(at: AppTest, kind: str):
    return next(u for u in at.file_uploader if kind in u.allowed_type)


def test_prepared_downloads_offer_the_generator_discriminator_and_run(page, store):
    (run,) = store.list()
    at = page(run.id)
    assert not at.exception and not at.download_button
    at = click(at, "Prepare downloads")
    assert not at.exception and not at.error
    assert [d.label for d in at.download_button] == ["Generator (.keras)", "Discriminator (.keras)", "Whole run (.zip)"]
    at.select_slider[0].set_value(3).run()
    assert not at.exception and not at.download_button
    files = model_cache.prepared_downloads(at.session_state, run, 6)
    assert [f.file_name for f in files] == [f"{run.id}-generator-step6.keras", f"{run.id}-discriminator-step6.keras", f"{run.id}.zip"]


def test_a_run_without_checkpoints_offers_only_its_folder(page, store):
    fresh = store.create(RunConfig(**TINY, name="fresh"))
    at = click(page(fresh.id), "Prepare downloads")
    assert not at.exception and not at.error
    assert [d.label for d in at.download_button] == ["Whole run (.zip)"]
    assert "no checkpoint yet" in at.caption[0].value


def test_a_bad_generator_upload_is_refused_in_one_sentence(page):
    at = page()
    uploader(at, ".keras").set_value(("bad.keras", b"not a model at all", "application/octet-stream"))
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["'bad.keras' is not a readable .keras file."]
    assert model_cache.uploaded_generator(at.session_state) is None


def test_a_generator_upload_is_kept_for_the_generate_page(page, trained):
    at = page()
    data = model_io.model_bytes(load_generator(trained).model)
    uploader(at, ".keras").set_value(("digits.keras", data, "application/octet-stream"))
    at.run()
    assert not at.exception and not at.error
    assert "Generator 'digits' is ready: latent size 8, no classes." in [s.value for s in at.success]
    assert model_cache.uploaded_generator(at.session_state).config.latent_dim == 8
    at = click(at, "Generate with it")
    assert not at.exception
    assert at.radio(key="gen_source").value == "upload"  # the uploaded generator, not a run's checkpoint
    assert not at.selectbox and at.image[0].captions == ["64 images, seed 0"]


def test_importing_a_run_zip_adds_and_selects_a_new_run(page, store, trained):
    before = {run.id for run in store.list()}
    at = page()
    uploader(at, ".zip").set_value(("mine.zip", model_io.run_zip_bytes(trained), "application/zip"))
    at = click(at.run(), "Import run")
    assert not at.exception and not at.error
    (new_id,) = {run.id for run in store.list()} - before
    assert at.session_state["run_id"] == new_id and at.selectbox[0].value == new_id
    assert f"Imported as run '{new_id}'; it is now the selected run." in [s.value for s in at.success]


def test_a_bad_run_zip_is_refused_and_the_store_is_unchanged(page, store):
    before = sorted(p.name for p in store.root.iterdir())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("run/../../escape.txt", b"x")
    at = page()
    uploader(at, ".zip").set_value(("evil.zip", buffer.getvalue(), "application/zip"))
    at = click(at.run(), "Import run")
    assert not at.exception
    assert [e.value for e in at.error] == [
        "'evil.zip' was refused: the member 'run/../../escape.txt' has an empty, '.' or '..' path part."
    ]
    assert sorted(p.name for p in store.root.iterdir()) == before
