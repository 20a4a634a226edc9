"""The Generate page and the per-session generator cache behind it, on tiny trained runs."""

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from gan_core.config import RunConfig
from gan_core.dashboard import model_cache, preload
from gan_core.generation import latents, model_io
from gan_core.generation.sampling import load_generator
from gan_core.store.runs import RunStore
from gan_core.training.loop import train_run
from tests.waiting import APPTEST_TIMEOUT

TINY = dict(dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=6, sample_every=3, checkpoint_every=3, seed=9)
LAPGAN = dict(TINY, family="lapgan", noise_dim=4)
SRGAN = dict(TINY, family="srgan", blocks=1, feature_weight=0.0)
del SRGAN["latent_dim"]
STYLEGAN = dict(TINY, family="stylegan", w_dim=8, mapping_layers=2)
CYCLEGAN = {key: value for key, value in TINY.items() if key != "latent_dim"} | dict(family="cyclegan", blocks=1, pool_size=4, batch_size=4)
LATENT = ["Grid", "Interpolate", "Latent walk"]  # the views of every noise-to-image run
APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGE = "pages/generate.py"


def generate_page() -> AppTest:
    """The page with app.py as the entry point, as in `streamlit run app.py` (so page links resolve).

    AppTest finds a page of st.navigation only after a first run, so the session starts on Home.
    """
    return AppTest.from_file(APP, default_timeout=APPTEST_TIMEOUT).run().switch_page(PAGE)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("runs"))
    train_run(store.create(RunConfig(**TINY, name="plain")))
    train_run(store.create(RunConfig(**TINY, name="conditional", conditional=True)))
    train_run(store.create(RunConfig(**LAPGAN, name="pyramid")))
    train_run(store.create(RunConfig(**SRGAN, name="super-resolution")))
    train_run(store.create(RunConfig(**CYCLEGAN, name="thin-to-thick")))
    train_run(store.create(RunConfig(**STYLEGAN, name="styles")))
    return store


@pytest.fixture(scope="module")
def runs(store):
    by_name = {run.config().name: run for run in store.list()}
    return by_name["plain"], by_name["conditional"]


def named(store, name):
    (run,) = [run for run in store.list() if run.config().name == name]
    return run


@pytest.fixture(scope="module")
def pyramid(store):
    return named(store, "pyramid")


@pytest.fixture
def page(store, monkeypatch):
    monkeypatch.setenv("GAN_RUNS_DIR", str(store.root))

    def open_page(run_id=None, **state):
        at = generate_page()
        for key, value in dict(state, run_id=run_id).items():
            at.session_state[key] = value
        return at.run()

    return open_page


@pytest.fixture
def counted_loads(monkeypatch):
    """The (run, step) of every checkpoint restore, with the session caches emptied first."""
    st.cache_resource.clear()
    calls = []

    def counting(run, step=None):
        calls.append((run.id, step))
        return load_generator(run, step)

    monkeypatch.setattr(model_cache, "load_generator", counting)
    yield calls
    st.cache_resource.clear()


def _load_script(requests):
    from pathlib import Path

    import streamlit as st

    from gan_core.dashboard import model_cache
    from gan_core.store.runs import Run

    st.session_state["loaded"] = [model_cache.get_generator(Run(Path(folder)), step) for folder, step in requests]


def loads_in_a_session(*requests):
    """The generators `get_generator` returns for (run, step) requests, in one script run of a browser session.

    Session-scoped caches exist only while a script runs. AppTest gives every session the same id, so
    successive calls share one session's cache, as reruns of one browser tab do.
    """
    at = AppTest.from_function(_load_script, args=([(str(run.dir), step) for run, step in requests],), default_timeout=APPTEST_TIMEOUT)
    at.run()
    assert not at.exception
    return at.session_state["loaded"]


# ---- the cache ---------------------------------------------------------------------------
def test_the_same_checkpoint_is_loaded_once_per_session(runs, counted_loads):
    plain, _ = runs
    first, again, newest, six = loads_in_a_session((plain, 3), (plain, 3), (plain, None), (plain, 6))
    assert again is first and newest is six
    assert counted_loads == [(plain.id, 3), (plain.id, 6)]
    assert loads_in_a_session((plain, 3))[0] is first  # a rerun of the same session


def test_a_new_checkpoint_index_reloads_the_generator(runs, counted_loads):
    plain, _ = runs
    loads_in_a_session((plain, 6))
    index = plain.checkpoints_dir / "checkpoint"
    later = index.stat().st_mtime_ns + 5_000_000_000
    os.utime(index, ns=(later, later))
    loads_in_a_session((plain, 6))
    assert counted_loads == [(plain.id, 6), (plain.id, 6)]


def test_a_session_keeps_at_most_three_generators_least_recently_used_first(runs, counted_loads):
    plain, conditional = runs
    loads_in_a_session((plain, 3), (plain, 6), (conditional, 3), (plain, 3), (conditional, 6))
    assert len(counted_loads) == 4  # (plain, 3) was still cached the second time
    loads_in_a_session((plain, 3), (conditional, 3), (conditional, 6))
    assert len(counted_loads) == 4
    loads_in_a_session((plain, 6))  # the least recently used entry made room for (conditional, 6)
    assert counted_loads[-1] == (plain.id, 6) and len(counted_loads) == 5


def test_an_uploaded_generator_is_loaded_once_per_file(runs, monkeypatch):
    plain, _ = runs
    data = model_io.model_bytes(load_generator(plain).model)
    calls = []

    def counting(data, name):
        calls.append(name)
        return model_io.load_generator_file(data, name)

    monkeypatch.setattr(model_cache, "load_generator_file", counting)
    state = {}
    assert model_cache.uploaded_generator(state) is None
    first = model_cache.get_uploaded_generator(state, "g.keras", data)
    assert model_cache.get_uploaded_generator(state, "g.keras", data) is first
    assert model_cache.uploaded_generator(state) is first and calls == ["g.keras"]


def test_cached_generation_of_64_digits_takes_well_under_a_second(runs, counted_loads):
    plain, _ = runs
    loaded = loads_in_a_session((plain, None))[0]
    assert loads_in_a_session((plain, None))[0] is loaded and len(counted_loads) == 1  # the second rerun restores nothing
    started = time.perf_counter()  # what a click costs once cached (AppTest's own start-up is not the page's)
    images, _, cols = latents.grid_for(loaded, 64, seed=1)
    model_io.grid_png(images, cols)
    assert images.shape[0] == 64
    assert time.perf_counter() - started < 1.0


def test_runs_with_checkpoints_skips_runs_without_one(store, runs, tmp_path):
    plain, conditional = runs
    assert model_cache.runs_with_checkpoints(store) == {run.id: [3, 6] for run in store.list()}
    assert set(model_cache.runs_with_checkpoints(store)) == {run.id for run in store.list()}
    fresh = RunStore(tmp_path)
    fresh.create(RunConfig(**TINY))
    assert model_cache.runs_with_checkpoints(fresh) == {}


# ---- the page ----------------------------------------------------------------------------
def test_the_page_draws_a_grid_for_the_selected_run_and_a_new_seed_changes_it(page, runs):
    plain, _ = runs
    at = page(plain.id)
    assert not at.exception and not at.error
    assert at.selectbox[0].value == plain.id
    assert [s.label for s in at.selectbox] == ["Run"]
    view = at.segmented_control(key="gen_view")
    assert view.options == LATENT + ["Project", "Edit"] and view.value == "Grid"
    assert len(at.image) == 1 and at.image[0].captions == ["64 images, seed 0"], "only the open view is computed"
    assert [d.label for d in at.download_button] == ["Picture (.png)", "Images (.npz)", "1000 samples (.npz)", "1000 samples (.zip)"]
    before = at.image[0].value
    at.number_input(key="gen_seed").set_value(7).run()
    assert not at.exception and at.image[0].value != before
    assert at.image[0].captions == ["64 images, seed 7"]


def test_a_conditional_run_offers_one_row_per_class_or_a_single_class(page, runs):
    _, conditional = runs
    at = page(conditional.id)
    assert not at.exception and not at.error
    classes = at.selectbox[1]
    assert classes.label == "Class" and classes.value == latents.ROWS
    assert classes.options[:2] == ["One row per class", "0"]
    assert at.image[0].captions == ["60 images (6 per class: 64 rounded to whole rows), seed 0"]
    classes.set_value(3).run()
    assert not at.exception and at.image[0].captions == ["64 images, seed 0"]


def test_a_lapgan_run_shows_each_sample_as_its_pyramid_and_redraws_only_the_finest_noise(page, runs, pyramid):
    at = page(pyramid.id)
    assert not at.exception and not at.error
    assert at.segmented_control(key="gen_view").options == LATENT + ["Pyramid", "Project", "Edit"]
    assert at.image[0].captions == ["64 images, seed 0"]
    at.segmented_control(key="gen_view").set_value("Pyramid").run()
    assert not at.exception and len(at.image) == 1
    assert at.image[0].captions == ["7x7 | 14x14 | 28x28 (each scaled to the final size), seed 0"]
    before = at.image[0].value
    next(b for b in at.button if b.label == "Redraw only the finest level's noise").click().run()
    assert not at.exception and at.image[0].value != before
    assert at.image[0].captions == ["7x7 | 14x14 | 28x28 (each scaled to the final size), seed 0, finest level's noise redrawn 1 time"]
    at.selectbox[0].set_value(runs[0].id).run()  # a one-stage family: the view falls back to the grid
    assert not at.exception and at.segmented_control(key="gen_view").options == LATENT + ["Project", "Edit"]
    assert at.image[0].captions == ["64 images, seed 0"]


def test_a_stylegan_run_mixes_styles_moves_truncation_and_interpolates_in_z_and_w(page, runs, store):
    at = page(named(store, "styles").id)
    assert not at.exception and not at.error
    assert at.segmented_control(key="gen_view").options == LATENT + ["Style mixing", "Project", "Edit"]
    plain = at.image[0].value
    at.slider(key="gen_truncation").set_value(0.0).run()
    assert not at.exception and at.image[0].captions == ["64 images, seed 0, truncation ψ 0"] and at.image[0].value != plain

    at.segmented_control(key="gen_view").set_value("Style mixing").run()
    assert not at.exception and not at.error and at.slider(key="gen_truncation").value == 0.0  # ψ is kept across views
    assert at.image[0].captions == [
        "Top row: column seeds 100-104; left column: row seeds 0-3. Each cell: the row's styles for blocks 7x7, 14x14, 14x14, "
        "the column's for 28x28, 28x28."
    ]
    at.slider(key="gen_truncation").set_value(1.0).run()
    mixed = at.image[0].value
    at.select_slider(key="gen_mix_cut_5").set_value(1).run()
    assert not at.exception and at.image[0].value != mixed and "blocks 7x7, the column's for 14x14" in at.image[0].captions[0]
    at.toggle(key="gen_noise").set_value(False).run()
    assert not at.exception and not at.error
    assert [b.label for b in at.get("download_button")] == ["Picture (.png)", "Images (.npz)", "1000 samples (.npz)", "1000 samples (.zip)"]

    at.segmented_control(key="gen_view").set_value("Interpolate").run()
    assert not at.exception and not at.error
    assert at.image[0].captions == ["Seed 0 to seed 1. Top: along the great circle in z; bottom: along a straight line in w."]
    assert all(t.key != "gen_spherical" for t in at.toggle)  # StyleGAN shows both paths instead of one of two

    at.selectbox[0].set_value(runs[0].id).run()  # another family: the style view goes, the grid keeps its ψ slider
    assert not at.exception and at.segmented_control(key="gen_view").options == LATENT + ["Project", "Edit"]


def test_an_srgan_run_shows_held_out_pairs_with_psnr_and_ssim_instead_of_latent_views(page, runs, store):
    at = page(named(store, "super-resolution").id)
    assert not at.exception and not at.error
    assert at.segmented_control(key="gen_view").options == ["Pairs", "Apply to your images"]
    assert at.image[0].captions == ["Low-res (7x7) | Bicubic | SRGAN | Original: 16 held-out images, seed 0"]
    scores = at.dataframe[0].value
    assert list(scores["column"]) == ["Bicubic", "SRGAN"] and (scores["PSNR (dB)"] > 0).all() and (scores["SSIM"] <= 1).all()
    before = at.image[0].value
    at.number_input(key="gen_seed").set_value(3).run()
    assert not at.exception and at.image[0].value != before
    at.selectbox[0].set_value(runs[0].id).run()
    assert not at.exception and at.segmented_control(key="gen_view").options == LATENT + ["Project", "Edit"]


def test_a_cyclegan_run_shows_both_triplets_and_applies_either_direction(page, store):
    at = page(named(store, "thin-to-thick").id)
    assert not at.exception and not at.error
    assert at.image[0].captions == ["A | A->B | A->B->A | B | B->A | B->A->B: 16 held-out images, seed 0"]
    scores = at.dataframe[0].value
    assert list(scores["column"]) == ["A->B->A", "B->A->B"] and list(scores["against"]) == ["A", "B"]
    at.segmented_control(key="gen_view").set_value("Apply to your images").run()
    assert not at.exception
    assert at.radio(key="gen_apply_way").options == ["mnist-5k -> mnist-5k-thick", "mnist-5k-thick -> mnist-5k"]
    assert "Images of 28x28 pixels go in as they are." in at.info[0].value


def test_picking_another_run_and_step_selects_it(page, runs):
    plain, conditional = runs
    at = page(plain.id)
    at.selectbox[0].set_value(conditional.id).run()
    assert not at.exception and at.session_state["run_id"] == conditional.id
    at.select_slider[0].set_value(3).run()
    assert not at.exception and "Checkpoint at step 3." in [c.value for c in at.caption]


def test_a_url_with_run_opens_the_page_on_that_run(store, runs, monkeypatch):
    _, conditional = runs
    monkeypatch.setenv("GAN_RUNS_DIR", str(store.root))
    at = AppTest.from_file(APP, default_timeout=APPTEST_TIMEOUT).run()
    at.query_params["run"] = conditional.id  # as a browser opening /generate?run=... directly
    at.switch_page(PAGE).run()
    assert not at.exception and at.selectbox[0].value == conditional.id
    assert at.session_state["run_id"] == conditional.id and at.query_params["run"] == conditional.id


def test_the_interpolation_and_walk_views_redraw_their_images_and_keep_their_values(page, runs):
    plain, _ = runs
    at = page(plain.id)
    at.segmented_control(key="gen_view").set_value("Interpolate").run()
    assert not at.exception and len(at.image) == 1 and at.image[0].captions == ["Seed 0 to seed 1"]
    assert [box.label for box in at.number_input] == ["Seed A", "Seed B", "Samples", "Dataset seed"]  # no second, unused Seed
    assert [d.label for d in at.download_button] == ["Picture (.png)", "Images (.npz)", "1000 samples (.npz)", "1000 samples (.zip)"]
    interpolation = at.image[0].value
    at.number_input(key="gen_seed_b").set_value(5)
    at.toggle(key="gen_spherical").set_value(False).run()
    assert not at.exception and at.image[0].value != interpolation
    assert at.image[0].captions == ["Seed 0 to seed 5"]

    at.segmented_control(key="gen_view").set_value("Latent walk").run()
    assert not at.exception and len(at.image) == 1 and not at.toggle
    assert [box.label for box in at.number_input] == ["Seed", "Dimension", "Samples", "Dataset seed"]
    assert [d.label for d in at.download_button] == ["Picture (.png)", "Images (.npz)", "1000 samples (.npz)", "1000 samples (.zip)"]
    walk = at.image[0].value
    at.slider(key="gen_walk_range").set_value((-1.0, 4.0)).run()
    assert not at.exception and at.image[0].value != walk
    assert at.image[0].captions == ["Dimension 0 from -1.0 to 4.0"]

    at.segmented_control(key="gen_view").set_value("Interpolate").run()  # its values were kept meanwhile
    assert at.number_input(key="gen_seed_b").value == 5 and at.toggle(key="gen_spherical").value is False
    assert at.image[0].captions == ["Seed 0 to seed 5"]
    at.segmented_control(key="gen_view").set_value("Grid").run()
    assert len(at.image) == 1 and at.image[0].captions == ["64 images, seed 0"]


def test_an_uploaded_generator_can_be_used_instead_of_a_run(page, runs):
    plain, _ = runs
    loaded = model_io.as_loaded_generator(load_generator(plain).model, "shared.keras")
    at = page(**{model_cache.UPLOAD_KEY: ("digest", loaded)})
    assert [r.label for r in at.radio] == ["Generator"]
    at.radio[0].set_value("upload").run()
    assert not at.exception and not at.selectbox
    assert at.image[0].captions == ["64 images, seed 0"]


def test_without_checkpoints_the_page_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_RUNS_DIR", str(tmp_path))
    at = generate_page().run()
    assert not at.exception and not at.image
    assert "No run has a checkpoint yet" in at.info[0].value


def test_a_conditional_run_downloads_a_synthetic_dataset_that_the_upload_checks_accept(page, runs, deferred_downloads):
    from gan_core.data import uploads

    _, conditional = runs
    at = page(conditional.id)
    at.number_input(key="gen_dataset_n").set_value(50).run()
    assert not at.exception
    labels = [b.proto.label for b in at.get("download_button")]
    assert "50 samples (.npz)" in labels and "50 samples (.zip)" in labels
    (zip_name,) = [name for name in deferred_downloads if name.endswith("-50-seed0.zip")]
    (npz_name,) = [name for name in deferred_downloads if name.endswith("-50-seed0.npz")]
    archive = uploads.load_zip(io.BytesIO(deferred_downloads[zip_name]()), zip_name)
    arrays = uploads.load_npz(io.BytesIO(deferred_downloads[npz_name]()), npz_name)
    assert archive.images.shape == arrays.images.shape == (50, 28, 28, 1)
    assert np.array_equal(np.bincount(archive.labels), np.full(10, 5)) and np.array_equal(arrays.labels, np.arange(50) % 10)


def test_while_the_server_imports_tensorflow_the_page_says_so_and_draws_the_grid_once_it_has(page, runs, monkeypatch):
    """Picking a run needs no TensorFlow; loading its generator does, so the page waits for the server's import with a note."""
    monkeypatch.setattr(preload, "ready", lambda: False)
    at = page(runs[0].id)
    assert not at.exception and not at.image
    assert [info.value for info in at.info] == ["Loading TensorFlow to load the generator (a few seconds after the server starts)…"]
    monkeypatch.setattr(preload, "ready", lambda: True)
    at.run()
    assert not at.exception and not at.info and at.image[0].captions == ["64 images, seed 0"]
