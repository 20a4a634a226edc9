"""The Evaluate page's usefulness section through AppTest: CAS and the augmentation test on a tiny conditional run."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gan_core.config import RunConfig
from gan_core.evaluation import usefulness
from gan_core.store.runs import RunStore

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path, monkeypatch, cache_dir):
    monkeypatch.setenv("GAN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GAN_CACHE_DIR", str(cache_dir))
    return RunStore(tmp_path / "runs")


def trained(store, **changes):
    from gan_core.training.loop import train_run

    base = dict(dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=4, sample_every=4, checkpoint_every=4, seed=1)
    run = store.create(RunConfig(**(base | changes)))
    train_run(run)
    return run


def open_page(run_id: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages/evaluate.py"), default_timeout=120)
    at.session_state["run_id"] = run_id
    return at.run()


def test_cas_and_the_augmentation_test_show_a_table_and_a_sentence_for_a_conditional_run(store):
    run = trained(store, conditional=True)
    at = open_page(run.id)
    assert not at.exception
    at.number_input(key="cas_n").set_value(40)
    at.number_input(key="cas_epochs").set_value(1)
    at.button(key="cas_go").click().run()
    assert not at.exception and not at.error
    assert at.get("progress")[0].proto.value == 100
    (table,) = [frame.value for frame in at.dataframe]
    assert table["Trained on"].tolist() == ["40 generated digits", "40 real digits"]
    assert any(md.value.startswith("Trained on 40 generated digits") for md in at.markdown)

    at.number_input(key="aug_real").set_value(40)
    at.number_input(key="aug_fake").set_value(40)
    at.number_input(key="aug_seeds").set_value(2)
    at.number_input(key="aug_epochs").set_value(1)
    at.button(key="aug_go").click().run()
    assert not at.exception and not at.error
    tables = [frame.value for frame in at.dataframe]
    assert tables[-1]["Training set"].tolist() == ["40 real", "40 real + 40 generated"]
    assert any(md.value.startswith("The generated digits ") and "over 2 seeds" in md.value for md in at.markdown)


def test_an_unconditional_run_gets_one_sentence_instead(store):
    run = trained(store)
    at = open_page(run.id)
    assert not at.exception
    assert usefulness.UNCONDITIONAL in [info.value for info in at.info]
    assert not [b for b in at.button if b.key in ("cas_go", "aug_go")]
