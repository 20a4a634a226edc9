"""CAS and the augmentation harness on a tiny conditional run, with one-epoch classifiers."""

import numpy as np
import pytest

from gan_core.config import RunConfig
from gan_core.errors import RunError
from gan_core.evaluation import usefulness
from gan_core.generation.sampling import load_generator
from gan_core.store.runs import RunStore


def tiny(**changes) -> RunConfig:
    base = dict(dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=4, sample_every=4, checkpoint_every=4, seed=1)
    return RunConfig(**(base | changes))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from gan_core.training.loop import train_run

    store = RunStore(tmp_path_factory.mktemp("runs"))
    loaded = []
    for config in (tiny(name="cgan", conditional=True), tiny(name="plain")):
        run = store.create(config)
        train_run(run)
        loaded.append(load_generator(run))
    return loaded


def test_cas_trains_on_generated_and_on_real_digits_and_real_wins_for_an_untrained_generator(runs):
    conditional, _ = runs
    progress = []
    result = usefulness.classification_accuracy_score(conditional, n=200, epochs=3, progress=lambda f, m: progress.append(f))
    assert result["n"] == 200 and result["heldout_images"] == 500
    assert result["real"] > 0.3  # 200 real digits, three short epochs
    assert result["generated"] < result["real"] - 0.1  # four training steps make blobs
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert [row["Trained on"] for row in usefulness.cas_table(result)] == ["200 generated digits", "200 real digits"]
    assert "points less with generated digits" in usefulness.cas_sentence(result)


def test_the_harness_runs_each_seed_twice_and_says_plainly_that_blobs_hurt(runs):
    conditional, _ = runs
    result = usefulness.augmentation(conditional, real_n=200, generated_m=400, seeds=2, epochs=1)
    assert len(result["real_only"]) == len(result["with_generated"]) == 2
    assert result["real_only"][0] != result["real_only"][1]  # each seed picks its own real subset
    table = usefulness.augmentation_table(result)
    assert [row["Training set"] for row in table] == ["200 real", "200 real + 400 generated"]
    assert " ± " in table[0]["Held-out accuracy (mean ± std)"]
    assert np.mean(result["with_generated"]) < np.mean(result["real_only"])  # twice as many blobs as digits, the same images seen
    assert usefulness.augmentation_sentence(result).startswith("The generated digits hurt: 200 real digits alone reach")


def test_the_verdict_follows_the_per_seed_differences():
    base = {"real_n": 500, "generated_m": 1000, "seeds": 3, "real_only": [0.80, 0.82, 0.81]}
    assert "helped" in usefulness.augmentation_sentence(base | {"with_generated": [0.85, 0.86, 0.84]})
    assert "hurt" in usefulness.augmentation_sentence(base | {"with_generated": [0.70, 0.72, 0.71]})
    assert "no clear difference" in usefulness.augmentation_sentence(base | {"with_generated": [0.83, 0.80, 0.80]})


def test_an_unconditional_run_and_values_out_of_bounds_are_refused_in_one_sentence(runs):
    conditional, plain = runs
    with pytest.raises(RunError, match="need a conditional run"):
        usefulness.classification_accuracy_score(plain)
    with pytest.raises(RunError, match="need a conditional run"):
        usefulness.augmentation(plain)
    with pytest.raises(RunError, match=r"^Seeds must be a whole number between 1 and 5; got 9\.$"):
        usefulness.augmentation(conditional, seeds=9)
    with pytest.raises(RunError, match="^N must be a whole number between 10 and"):
        usefulness.classification_accuracy_score(conditional, n=5)
