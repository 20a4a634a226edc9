"""The Evaluate page's usefulness section through AppTest: CAS and the augmentation test on a tiny conditional run."""

from gan_core.dashboard import preload
from gan_core.evaluation import usefulness
from tests.test_page_evaluate import open_page, trained
from tests.test_page_evaluate import store as evaluate_store

store = evaluate_store  # the Evaluate page tests' fixture: a runs folder with the session's evaluator
STEPS = dict(steps=4, sample_every=4, checkpoint_every=4)


def test_cas_and_the_augmentation_test_show_a_table_and_a_sentence_for_a_conditional_run(store):
    run = trained(store, conditional=True, **STEPS)
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
    run = trained(store, **STEPS)
    at = open_page(run.id)
    assert not at.exception
    assert usefulness.UNCONDITIONAL in [info.value for info in at.info]
    assert not [b for b in at.button if b.key in ("cas_go", "aug_go")]


def test_while_the_server_imports_tensorflow_the_section_says_so_and_the_rest_of_the_page_is_drawn(store, monkeypatch):
    run = trained(store, conditional=True, **STEPS)
    monkeypatch.setattr(preload, "ready", lambda: False)
    at = open_page(run.id)
    assert not at.exception and at.multiselect[0].value == [run.id]
    assert [info.value for info in at.info] == ["Loading TensorFlow to load the generator (a few seconds after the server starts)…"]
    assert not [b for b in at.button if b.key in ("cas_go", "aug_go")]
    monkeypatch.setattr(preload, "ready", lambda: True)
    at.run()
    assert not at.exception and {"cas_go", "aug_go"} <= {b.key for b in at.button}
