"""Generate's Project and Edit views (AppTest): a drawing passed to the canvas is projected, and sliders move a sample."""

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from gan_core.config import RunConfig
from gan_core.generation import edits
from gan_core.generation.attributes import ATTRIBUTES, measure
from gan_core.store.runs import RunStore
from gan_core.training.loop import train_run
from tests.waiting import APPTEST_TIMEOUT

TINY = dict(family="mlp", dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=6, sample_every=6,
            checkpoint_every=6, seed=2, precision="float32")
APP = str(Path(__file__).resolve().parents[1] / "app.py")
THICKNESS = ATTRIBUTES["thickness"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("runs"))
    train_run(store.create(RunConfig(**TINY, name="plain")))
    train_run(store.create(RunConfig(**TINY, name="conditional", conditional=True)))
    train_run(store.create(RunConfig(**dict(TINY, latent_dim=16), name="wide")))
    return store


def run_named(store, name):
    (run,) = [run for run in store.list() if run.config().name == name]
    return run


@pytest.fixture
def page(store, evaluator_env, monkeypatch):
    monkeypatch.setenv("GAN_RUNS_DIR", str(store.root))

    def open_view(run_name, view, **state):
        at = AppTest.from_file(APP, default_timeout=APPTEST_TIMEOUT).run().switch_page("pages/generate.py")
        for key, value in dict(state, run_id=run_named(store, run_name).id, gen_view=view).items():
            at.session_state[key] = value
        return at.run()

    return open_view


def canvas_state(stroke: bool = True) -> dict:
    """What the drawing component reports after a user drew a '7' (white on black, 224x224, as a PNG data URL)."""
    image = Image.new("RGBA", (224, 224), (0, 0, 0, 255))
    if stroke:
        ImageDraw.Draw(image).line([(50, 50), (170, 50), (90, 190)], fill=(255, 255, 255, 255), width=18)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    return {"drawing": {"raw": {"objects": [{"type": "path"}] if stroke else []}, "data": url}}


def slider(at, label):
    (found,) = [s for s in at.slider if s.label == label]
    return found


def button(at, label):
    (found,) = [b for b in at.button if b.label == label]
    return found


def test_a_drawing_on_the_canvas_is_projected_and_becomes_the_edit_views_sample(page):
    at = page("plain", "Project")
    assert not at.exception and not at.error
    assert button(at, "Project").disabled, "nothing drawn yet"
    at.session_state["gen_canvas"] = canvas_state()
    at.run()
    assert not button(at, "Project").disabled
    button(at, "Project").click().run()
    assert not at.exception and not at.error
    assert at.image[0].captions == ["Your image (as the generator sees it) | its reconstruction"]
    (summary,) = [m.value for m in at.markdown if m.value.startswith("Distance")]
    before, after = (float(word.rstrip(".")) for word in summary.split() if word[0].isdigit() and "." in word)
    assert after < before
    assert any("'drawing.png' was cropped to its ink and centred in 28x28." in c.value for c in at.caption)
    assert [d.label for d in at.download_button] == ["Image and reconstruction (.png)", "Latent z (.npy)", "1000 samples (.npz)", "1000 samples (.zip)"]

    at.segmented_control(key="gen_view").set_value("Edit").run()
    at.radio(key="gen_edit_source").set_value("Your projected image").run()
    assert not at.exception and at.image[0].captions == ["Before | after"]
    table = at.dataframe[0].value
    projected = at.session_state["_gan_projection"][1]
    expected = measure(projected.reconstruction[None])["thickness"][0]
    assert table.set_index("attribute").loc[THICKNESS, "before"] == pytest.approx(expected, nan_ok=True)


def test_an_empty_drawing_is_refused_with_one_sentence(page):
    at = page("plain", "Project", gen_canvas=canvas_state(stroke=False))
    button(at, "Project").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["'drawing.png' has no ink to project: draw or upload a digit first."]


def test_each_slider_moves_a_random_sample_and_the_table_says_by_how_much(page):
    at = page("plain", "Edit")
    assert not at.exception and not at.error
    labels = {s.label for s in at.slider}
    principal = labels - set(ATTRIBUTES.values())
    assert set(ATTRIBUTES.values()) <= labels and len(principal) == 3
    assert all(label.startswith("Principal direction") for label in principal)
    assert any(edits.HOLDS["full"] in c.value for c in at.caption)  # 8 dims < 9 class and 2 attribute gradients
    table = at.dataframe[0].value
    assert list(table["attribute"]) == list(ATTRIBUTES.values())
    np.testing.assert_allclose(table["change"].fillna(0), 0)  # no slider moved: the sample is unchanged
    before_image = at.image[0].value
    slider(at, THICKNESS).set_value(4.0).run()
    moved = at.dataframe[0].value.set_index("attribute")
    assert not at.exception and at.image[0].value != before_image
    assert moved.loc[THICKNESS, "after"] != moved.loc[THICKNESS, "before"]


def test_a_conditional_run_edits_a_sample_of_the_chosen_class(page):
    at = page("conditional", "Edit")
    assert not at.exception and not at.error
    at.selectbox(key="gen_edit_class").set_value(3).run()
    slider(at, ATTRIBUTES["slant"]).set_value(-3.0).run()
    assert not at.exception and at.image[0].captions == ["Before | after"]
    assert any(edits.HOLDS["label"] in c.value for c in at.caption)  # 8 dims: the evaluator's class gradients fill them


def test_an_unconditional_run_with_room_for_its_class_directions_holds_the_class_by_the_evaluator(page):
    at = page("wide", "Edit")
    assert not at.exception and not at.error
    assert any(edits.HOLDS["evaluator"] in c.value for c in at.caption)
    slider(at, THICKNESS).set_value(2.0).run()
    assert not at.exception and at.image[0].captions == ["Before | after"]
