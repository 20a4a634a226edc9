"""Are a conditional run's generated digits useful as training data? Two tests with the evaluator's own CNN design.

- Classification accuracy score (CAS, Ravuri & Vinyals 2019): train the classifier on N generated labelled images,
  test it on the real held-out split, beside the same classifier trained on N real training images.
- Augmentation: the classifier trained on a small real subset, against the same subset plus M generated images,
  over several seeds (each seed picks the real subset, the generated samples and the training randomness). Both see
  the same number of images: the real subset alone trains for epochs × (real + M) / real epochs (rounded), so the
  added images are not credited with the extra gradient steps they bring.

Only conditional runs take part: their generator says which class each image is. Labelling an unconditional run's
images with the evaluator would teach the small classifier what the evaluator learnt from the whole training
split, so the harness would measure the evaluator, not the generator.
"""

from __future__ import annotations

import numpy as np

from gan_core.data.imageset import ImageSet
from gan_core.errors import RunError
from gan_core.evaluation.evaluator import Progress, ReferenceData, reference_data, train_classifier

EPOCHS = 5
MAX_EPOCHS = 20
MAX_IMAGES = 10_000
MAX_SEEDS = 5


def _check(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise RunError(f"{name} must be a whole number between {low} and {high}; got {value!r}.")
    return int(value)


UNCONDITIONAL = "CAS and the augmentation test need a conditional run: only its generator says which class each image is."


def _conditional(loaded) -> None:
    if not loaded.conditional:
        raise RunError(UNCONDITIONAL)


def accuracy_of(images: np.ndarray, labels: np.ndarray, data: ReferenceData, epochs: int, seed: int,
                progress: Progress | None = None) -> float:
    """Held-out accuracy of the evaluator's CNN trained from scratch (seeded) on these labelled images."""
    import keras

    keras.utils.set_random_seed(seed)
    train = ImageSet(np.asarray(images, np.uint8), np.asarray(labels, np.int64), data.train.class_names, data.train.source)
    return train_classifier(ReferenceData(train, data.heldout), epochs, progress)[1]


def real_subset(data: ReferenceData, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n training images and labels picked by a seed."""
    idx = np.random.default_rng(seed).choice(data.train.num_images, n, replace=False)
    return data.train.images[idx], data.train.labels[idx]


def classification_accuracy_score(loaded, n: int = 1000, epochs: int = EPOCHS, seed: int = 0,
                                  progress: Progress | None = None) -> dict:
    """Held-out accuracy of the classifier trained on n generated images, and on n real ones."""
    from gan_core.generation.sampling import sample

    _conditional(loaded)
    data = reference_data(loaded.config.dataset)
    n = _check("N", n, 10, min(MAX_IMAGES, data.train.num_images))
    epochs = _check("Epochs", epochs, 1, MAX_EPOCHS)
    report = progress or (lambda fraction, message: None)
    images, labels = sample(loaded, n, seed=seed)
    generated = accuracy_of(images, labels, data, epochs, seed, lambda f, m: report(0.5 * f, f"Trained on generated: {m}"))
    real_images, real_labels = real_subset(data, n, seed)
    real = accuracy_of(real_images, real_labels, data, epochs, seed, lambda f, m: report(0.5 + 0.5 * f, f"Trained on real: {m}"))
    return {"n": n, "epochs": epochs, "heldout_images": data.heldout.num_images, "generated": generated, "real": real}


def cas_table(result: dict) -> list[dict]:
    """Display rows: what the classifier was trained on, and its held-out accuracy."""
    return [
        {"Trained on": f"{result['n']} generated digits", "Held-out accuracy": f"{100 * result['generated']:.1f}%"},
        {"Trained on": f"{result['n']} real digits", "Held-out accuracy": f"{100 * result['real']:.1f}%"},
    ]


def cas_sentence(result: dict) -> str:
    """CAS beside the real baseline in one sentence."""
    gap = 100 * (result["real"] - result["generated"])
    return (
        f"Trained on {result['n']} generated digits, the classifier reads {100 * result['generated']:.1f}% of the "
        f"{result['heldout_images']} real held-out digits right; trained on as many real digits, {100 * result['real']:.1f}% "
        f"({abs(gap):.1f} points {'less' if gap >= 0 else 'more'} with generated digits)."
    )


def augmentation(loaded, real_n: int = 500, generated_m: int = 1000, seeds: int = 3, epochs: int = EPOCHS,
                 progress: Progress | None = None) -> dict:
    """Held-out accuracy of real_n real images alone and with generated_m generated ones, for each of `seeds` seeds."""
    from gan_core.generation.sampling import sample

    _conditional(loaded)
    data = reference_data(loaded.config.dataset)
    real_n = _check("Real images", real_n, 10, data.train.num_images)
    generated_m = _check("Generated images", generated_m, 1, MAX_IMAGES)
    seeds = _check("Seeds", seeds, 1, MAX_SEEDS)
    epochs = _check("Epochs", epochs, 1, MAX_EPOCHS)
    report = progress or (lambda fraction, message: None)
    alone, added = [], []
    same_images_seen = max(1, round(epochs * (real_n + generated_m) / real_n))
    for seed in range(seeds):
        images, labels = real_subset(data, real_n, seed)
        fake, fake_labels = sample(loaded, generated_m, seed=1000 + seed)
        order = np.random.default_rng(seed).permutation(generated_m)  # sample() gives the classes in turn
        part = _part(report, 2 * seed, 2 * seeds, f"Seed {seed + 1}, real only")
        alone.append(accuracy_of(images, labels, data, same_images_seen, seed, part))
        both = np.concatenate([images, fake[order]]), np.concatenate([labels, fake_labels[order]])
        part = _part(report, 2 * seed + 1, 2 * seeds, f"Seed {seed + 1}, real + generated")
        added.append(accuracy_of(*both, data, epochs, seed, part))
    return {"real_n": real_n, "generated_m": generated_m, "seeds": seeds, "epochs": epochs,
            "heldout_images": data.heldout.num_images, "real_only": alone, "with_generated": added}


def _part(report: Progress, index: int, parts: int, label: str) -> Progress:
    """Progress of part `index` of `parts`, scaled into the whole and labelled."""
    return lambda fraction, message: report((index + fraction) / parts, f"{label}: {message}")


def _mean_std(values: list[float]) -> str:
    return f"{100 * np.mean(values):.1f}% ± {100 * np.std(values):.1f}"


def augmentation_table(result: dict) -> list[dict]:
    """Display rows: training set, held-out accuracy mean ± std over the seeds, and each seed's accuracy."""
    return [
        {"Training set": name, "Held-out accuracy (mean ± std)": _mean_std(values),
         "Per seed": ", ".join(f"{100 * v:.1f}%" for v in values)}
        for name, values in (
            (f"{result['real_n']} real", result["real_only"]),
            (f"{result['real_n']} real + {result['generated_m']} generated", result["with_generated"]),
        )
    ]


def augmentation_sentence(result: dict) -> str:
    """'The generated digits helped/hurt/made no clear difference: ...', judged on the per-seed differences."""
    gains = 100 * (np.array(result["with_generated"]) - np.array(result["real_only"]))
    mean, spread = float(gains.mean()), float(gains.std())
    verdict = "helped" if mean > max(spread, 0.1) else "hurt" if mean < -max(spread, 0.1) else "made no clear difference"
    return (
        f"The generated digits {verdict}: {result['real_n']} real digits alone reach {_mean_std(result['real_only'])} "
        f"held-out accuracy over {result['seeds']} seed{'s' * (result['seeds'] != 1)}; "
        f"adding {result['generated_m']} generated "
        f"digits reaches {_mean_std(result['with_generated'])} ({mean:+.1f} ± {spread:.1f} points per seed)."
    )
