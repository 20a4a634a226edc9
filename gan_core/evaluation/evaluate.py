"""Evaluating a run's generator: N generated images against N real held-out images, beside the real-vs-real floor.

Every metric is computed twice at the same N: generated vs a fixed subset of the held-out split, and that
held-out subset vs N training images (the "floor", what a perfect generator reaches). KID is the unbiased MMD²
with the cubic polynomial kernel k(x, y) = (x·y/d + 1)³ on the FD features, mean ± std over KID_SUBSETS draws of
min(KID_SUBSET_SIZE, N/2) images a side (half of N, so that the draws differ at small N); being unbiased, it is
near 0 (even slightly negative) for two sets from one distribution at any N, where FD grows as N shrinks.
Results saved before KID was added display without it. Class metrics use the
evaluator classifier's argmax; a class is *covered* when it gets at least COVERED_FRACTION (¼) of its share of
the training labels; the class KL is KL(predicted class shares ‖ training label shares) in nats. The
memorisation check finds each of the first NN_SAMPLES generated images' nearest training image (L2 on pixels
scaled to [0, 1]) and flags it when closer than the 1st percentile of held-out→train nearest distances
of one half of the held-out images; the floor's share of near-copies is measured on the other half.
Results are saved as `evaluations/step_XXXXXX_nNNNN.json` in the run folder and reloaded instead of recomputed.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from gan_core import families
from gan_core.data.images import encode_png
from gan_core.errors import RunError
from gan_core.evaluation import metrics
from gan_core.evaluation.columns import KEPT, PSNR, SSIM, column_scores
from gan_core.evaluation.evaluator import (
    EVALUATOR_VERSION,
    Evaluator,
    Observation,
    Progress,
    ReferenceData,
    fingerprint,
    get_evaluator,
    reference_data,
)
from gan_core.store.runs import Run, atomic_write_json

RESULT_FORMAT = 2  # 2: image-to-image runs add their column scores
MAX_N = 10_000
MIN_N = 10
SEED = 0
NN_SAMPLES = 2000
NN_PAIRS = 8
NN_PERCENTILE = 1.0
COVERED_FRACTION = 0.25
K_PRECISION_RECALL = 3
K_DENSITY_COVERAGE = 5
SCORE_SPLITS = 10
KID_SUBSETS = 50
KID_SUBSET_SIZE = 1000

LABELS = {
    "fd": "Fréchet distance (evaluator features)",
    "kid": "Kernel distance (KID, evaluator features)",
    "classifier_score": f"Classifier score ({SCORE_SPLITS} splits)",
    "precision": f"Precision (k={K_PRECISION_RECALL})",
    "recall": f"Recall (k={K_PRECISION_RECALL})",
    "density": f"Density (k={K_DENSITY_COVERAGE})",
    "coverage": f"Coverage (k={K_DENSITY_COVERAGE})",
    "classes_covered": "Classes covered (≥ ¼ of expected share)",
    "class_kl": "Class KL to training labels (nats)",
    "conditional_accuracy": "Accuracy on the requested class",
    "swd": "Sliced Wasserstein ×10³ (7×7 Laplacian patches)",
    "nn_median": "Median distance to nearest training image",
    "memorised": "Share closer to a training image than 99% of held-out",
}
BETTER = {
    "fd": "lower", "kid": "lower", "classifier_score": "higher", "precision": "higher", "recall": "higher", "density": "near 1",
    "coverage": "higher", "classes_covered": "higher", "class_kl": "lower", "conditional_accuracy": "higher",
    "swd": "lower", "nn_median": "near floor", "memorised": "lower",
}
COLUMNS_CAPTION = (
    "Held-out examples column by column: PSNR and SSIM against the column named, and the share of images whose class "
    "the evaluator of the column's dataset still reads as the original's."
)
USES_EVALUATOR = (
    "fd", "kid", "classifier_score", "precision", "recall", "density", "coverage", "classes_covered", "class_kl", "conditional_accuracy",
)


# ---- the comparison of one candidate set against one reference set ------------------------
@dataclass
class Side:
    """One image set with what the evaluator sees in it."""

    images: np.ndarray
    seen: Observation


def run_evaluator(evaluator: Evaluator, images: np.ndarray) -> Side:
    """Run the evaluator over a set of images."""
    return Side(images, evaluator.observe(images))


def compare(candidate: Side, reference: Side, data: ReferenceData, requested: np.ndarray | None) -> dict:
    """All set-level metrics of candidate against reference (plus class metrics when there are probabilities)."""
    values = {"fd": metrics.frechet_distance(reference.seen.features, candidate.seen.features)}
    stds = {}
    values["kid"], stds["kid"] = metrics.kernel_distance(
        reference.seen.features, candidate.seen.features, KID_SUBSETS, kid_subset_size(len(candidate.images)), SEED,
    )
    values.update(metrics.prdc(reference.seen.knn_features, candidate.seen.knn_features, K_PRECISION_RECALL, K_DENSITY_COVERAGE))
    values["swd"] = 1e3 * float(np.mean(metrics.sliced_wasserstein(candidate.images, reference.images, seed=SEED)))
    probs = candidate.seen.probs
    if probs is not None:
        values["classifier_score"], stds["classifier_score"] = metrics.classifier_score(probs, SCORE_SPLITS)
        hist = metrics.class_histogram(probs, data.train.num_classes)
        prior = label_shares(data)
        values["classes_covered"] = metrics.classes_covered(hist, prior, COVERED_FRACTION)
        values["class_kl"] = metrics.kl_divergence(hist, prior)
        values["histogram"] = hist.tolist()
        if requested is not None:
            values["conditional_accuracy"] = float(np.mean(np.argmax(probs, axis=1) == requested))
            values["per_class_accuracy"] = per_class_accuracy(probs, requested, data.train.num_classes)
    return {"values": values, "stds": stds}


def kid_subset_size(n: int) -> int:
    """Images a side in each KID draw: half of N (at least 2), at most KID_SUBSET_SIZE."""
    return int(min(KID_SUBSET_SIZE, max(2, n // 2)))


def label_shares(data: ReferenceData) -> np.ndarray:
    """Share of each class in the training labels."""
    counts = np.bincount(data.train.labels, minlength=data.train.num_classes)
    return counts / counts.sum()


def per_class_accuracy(probs: np.ndarray, requested: np.ndarray, num_classes: int) -> list[float | None]:
    """Share of samples of each requested class that the classifier assigns to it (None for unrequested classes)."""
    predicted = np.argmax(probs, axis=1)
    return [float(np.mean(predicted[requested == c] == c)) if np.any(requested == c) else None for c in range(num_classes)]


# ---- the floor (real held-out vs real train), cached per process ----------------------------
@dataclass
class Floor:
    """The held-out subset (the reference of generated images) and everything real-vs-real at this N."""

    heldout: Side
    result: dict
    threshold: float


_FLOORS: dict[tuple, Floor] = {}
MAX_FLOORS = 4  # each holds up to MAX_N images and their features


def subset(n_total: int, n: int) -> np.ndarray:
    """The first n of a fixed permutation (kept shuffled, so score splits mix classes): the same real images for every run."""
    return np.random.default_rng(SEED).permutation(n_total)[:n]


def flat_pixels(images: np.ndarray) -> np.ndarray:
    """Images as float32 rows in [0, 1], the space of the nearest-neighbour check."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def real_floor(evaluator: Evaluator, data: ReferenceData, n: int) -> Floor:
    """Held-out subset vs a training subset at the same N, computed once per evaluator, data and N."""
    key = (evaluator.fingerprint or fingerprint(data.train, 0), fingerprint(data.heldout, 0), evaluator.kind, n)
    if key in _FLOORS:
        return _FLOORS[key]
    idx = subset(data.heldout.num_images, n)
    heldout = run_evaluator(evaluator, data.heldout.images[idx])
    labels = None if data.heldout.labels is None else data.heldout.labels[idx]
    train = run_evaluator(evaluator, data.train.images[subset(data.train.num_images, n)])
    result = compare(heldout, train, data, labels)
    _, nn = metrics.nearest_neighbours(flat_pixels(heldout.images[:NN_SAMPLES]), flat_pixels(data.train.images))
    calibration, measured = near_copy_halves(nn[:, 0])
    threshold = float(np.percentile(calibration, NN_PERCENTILE))
    result["values"]["nn_median"] = float(np.median(nn[:, 0]))
    result["values"]["memorised"] = float(np.mean(measured < threshold))  # real images the threshold never saw
    _FLOORS[key] = Floor(heldout, result, threshold)
    while len(_FLOORS) > MAX_FLOORS:
        del _FLOORS[next(iter(_FLOORS))]
    return _FLOORS[key]


def near_copy_halves(distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Held-out nearest-training distances in two: odd positions set the near-copy threshold, even ones measure its floor."""
    return distances[1::2], distances[0::2]


# ---- evaluating images and runs ----------------------------------------------------------
def check_n(n: int, data: ReferenceData) -> int:
    """N as an int between MIN_N and the held-out size (at most MAX_N), or a RunError."""
    top = min(MAX_N, data.heldout.num_images)
    if top < MIN_N:
        raise RunError(
            f"'{data.train.source}' holds out only {top} images for evaluation and evaluating needs at least {MIN_N}; "
            f"use a dataset of at least {MIN_N * 10} images."
        )
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not MIN_N <= n <= top:
        raise RunError(f"N must be a whole number between {MIN_N} and {top} (the held-out images of '{data.train.source}'); got {n!r}.")
    return int(n)


def _png_b64(image: np.ndarray) -> str:
    scale = max(1, 84 // max(image.shape[:2]))
    return base64.b64encode(encode_png(image, scale)).decode("ascii")


def nearest_pairs(images: np.ndarray, data: ReferenceData, floor: Floor) -> tuple[dict, list[dict]]:
    """Memorisation values and the NN_PAIRS closest (generated, nearest training image) pairs."""
    checked = images[:NN_SAMPLES]
    idx, dist = metrics.nearest_neighbours(flat_pixels(checked), flat_pixels(data.train.images))
    dist, idx = dist[:, 0], idx[:, 0]
    values = {"nn_median": float(np.median(dist)), "memorised": float(np.mean(dist < floor.threshold))}
    pairs = [
        {
            "generated_index": int(i), "train_index": int(idx[i]), "distance": float(dist[i]),
            "flagged": bool(dist[i] < floor.threshold),
            "generated_png": _png_b64(checked[i]), "train_png": _png_b64(data.train.images[idx[i]]),
        }
        for i in np.argsort(dist, kind="stable")[:NN_PAIRS]
    ]
    return values, pairs


def evaluate_images(
    images: np.ndarray, requested: np.ndarray | None, evaluator: Evaluator, data: ReferenceData,
    n: int | None = None, progress: Progress | None = None,
) -> dict:
    """All metrics of N uint8 images (with the classes they were asked for, if any) and their floor."""
    report = progress or (lambda fraction, message: None)
    n = check_n(len(images) if n is None else n, data)
    if len(images) < n:
        raise RunError(f"Need {n} images to evaluate; got {len(images)}.")
    images, requested = images[:n], None if requested is None else np.asarray(requested)[:n]
    report(0.1, "Computing the real-vs-real floor")
    floor = real_floor(evaluator, data, n)
    report(0.5, "Running the evaluator on the generated images")
    generated = run_evaluator(evaluator, images)
    report(0.6, "Comparing generated and held-out images")
    result = compare(generated, floor.heldout, data, requested if evaluator.num_classes else None)
    report(0.85, "Looking for near-copies of training images")
    nn_values, pairs = nearest_pairs(images, data, floor)
    result["values"].update(nn_values)
    report(1.0, "Done")
    return assemble(result, floor, evaluator, data, n, pairs)


def assemble(result: dict, floor: Floor, evaluator: Evaluator, data: ReferenceData, n: int, pairs: list[dict]) -> dict:
    """The JSON-ready result: metric rows with their floors, class shares, nearest pairs, evaluator facts."""
    values, floor_values = result["values"], floor.result["values"]
    rows = []
    for key in LABELS:
        if key in values:
            rows.append({
                "key": key, "label": LABELS[key], "better": BETTER[key],
                "value": float(values[key]), "std": result["stds"].get(key),
                "floor": float(floor_values[key]), "floor_std": floor.result["stds"].get(key),
                "uses_evaluator": key in USES_EVALUATOR,
            })
    classes = None
    if "histogram" in values:
        classes = {
            "names": list(data.train.class_names), "generated": values["histogram"], "real": floor_values["histogram"],
            "training_labels": label_shares(data).tolist(),
            "generated_accuracy": values.get("per_class_accuracy"), "real_accuracy": floor_values.get("per_class_accuracy"),
        }
    nearest = {"threshold": floor.threshold, "percentile": NN_PERCENTILE, "checked": min(n, NN_SAMPLES), "pairs": pairs}
    return result_without_metrics(evaluator, data, n) | {"metrics": rows, "classes": classes, "nearest": nearest}


def result_without_metrics(evaluator: Evaluator, data: ReferenceData, n: int) -> dict:
    """A result's fields before any metric: format, N, seed, dataset and the evaluator (with the sizes of its splits)."""
    facts = evaluator.describe() | {"train_images": data.train.num_images, "heldout_images": data.heldout.num_images}
    return {
        "format": RESULT_FORMAT, "n": n, "seed": SEED, "dataset": data.train.source, "evaluator": facts,
        "metrics": [], "classes": None, "nearest": None,
    }


def result_path(run: Run, step: int, n: int) -> Path:
    """Where a run's evaluation at a checkpoint step and N is saved."""
    return run.dir / "evaluations" / f"step_{step:06d}_n{n:04d}.json"


def load_result(run: Run, step: int, n: int) -> dict | None:
    """A saved evaluation of this step and N made with the current formats, else None."""
    try:
        result = json.loads(result_path(run, step, n).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    current = isinstance(result, dict) and result.get("format") == RESULT_FORMAT
    return result if current and result.get("evaluator", {}).get("version") == EVALUATOR_VERSION else None


def saved_evaluations(run: Run) -> list[dict]:
    """Every evaluation saved in the run folder with the current formats, by step and then N."""
    found = []
    for path in sorted((run.dir / "evaluations").glob("step_*_n*.json")):
        match = re.fullmatch(r"step_(\d+)_n(\d+)", path.stem)
        if match and (result := load_result(run, int(match[1]), int(match[2]))) is not None:
            found.append(result)
    return found


@lru_cache(maxsize=16)
def largest_n(dataset: str) -> int:
    """min(MAX_N, held-out images of a dataset), or a RunError when that is below MIN_N."""
    data = reference_data(dataset)
    return check_n(min(MAX_N, data.heldout.num_images), data)


def measured_dataset(run: Run) -> str:
    """The dataset a run's generated images belong to (CycleGAN's domain B; the run's dataset otherwise)."""
    config = run.config()
    return families.get(config.family).target_dataset(config)


def default_n(run: Run) -> int:
    """The default (and largest) N for a run: largest_n of the dataset its images belong to."""
    return largest_n(measured_dataset(run))


def saved_results(targets: list[tuple[Run, int]], n: int) -> list[dict | None]:
    """The saved evaluation of each (run, step) at this N, or None where there is none yet."""
    return [load_result(run, step, n) for run, step in targets]


def evaluate_runs(targets: list[tuple[Run, int]], n: int, progress: Progress | None = None) -> list[dict]:
    """Evaluate several (run, step) pairs in turn, reporting one overall progress from 0 to 1."""
    report = progress or (lambda fraction, message: None)
    results = []
    for i, (run, step) in enumerate(targets):
        def scaled(fraction: float, message: str, i: int = i, run_id: str = run.id) -> None:
            report((i + fraction) / len(targets), f"{run_id}: {message}")

        results.append(evaluate_run(run, n, step, progress=scaled))
    return results


def evaluate_run(
    run: Run, n: int | None = None, step: int | None = None, progress: Progress | None = None,
    cache_dir: str | Path | None = None, force: bool = False,
) -> dict:
    """Evaluate a run's generator at a checkpoint (default newest); reload the saved result unless force."""
    from gan_core.generation.sampling import checkpoint_steps, load_generator, sample

    report = progress or (lambda fraction, message: None)
    steps = checkpoint_steps(run)
    step = steps[-1] if step is None and steps else step
    dataset = measured_dataset(run)
    data = reference_data(dataset)
    n = check_n(largest_n(dataset) if n is None else n, data)
    if step is not None and not force and (saved := load_result(run, step, n)) is not None:
        report(1.0, "Loaded the saved evaluation")
        return saved
    started = time.time()
    family = families.get(run.config().family)
    loaded = load_generator(run, step)
    evaluator = get_evaluator(dataset, cache_dir, lambda f, m: report(0.4 * f, m), data=data)
    if family.compares_distributions:
        report(0.4, f"Generating {n} images")
        images, labels = sample(loaded, n, seed=SEED)
        share = 0.5 if family.image_to_image else 0.6
        result = evaluate_images(images, labels, evaluator, data, n, lambda f, m: report(0.4 + share * f, m))
    else:
        result = result_without_metrics(evaluator, data, n)
    if family.image_to_image:
        report(0.9, f"Scoring {n} held-out examples column by column")
        columns = family.pairs(loaded.model, loaded.config, n, SEED, loaded.partners)
        result["columns"] = column_scores(columns, lambda name: get_evaluator(name, cache_dir))
    result |= {
        "run_id": run.id, "step": loaded.step, "conditional": loaded.conditional,
        "created": time.time(), "seconds": round(time.time() - started, 2),
    }
    path = result_path(run, loaded.step, n)
    path.parent.mkdir(exist_ok=True)
    atomic_write_json(path, result)
    return result


# ---- cheap metrics for the training loop -----------------------------------------------------
@dataclass
class Reference:
    """Held-out feature statistics and training label shares for cheap_metrics."""

    mu: np.ndarray
    sigma: np.ndarray
    label_shares: np.ndarray | None
    n: int


def make_reference(evaluator: Evaluator, data: ReferenceData | str, n: int = 1000) -> Reference:
    """Statistics of up to n held-out images, computed once before training."""
    data = reference_data(data) if isinstance(data, str) else data
    images = data.heldout.images[subset(data.heldout.num_images, min(n, data.heldout.num_images))]
    mu, sigma = metrics.feature_statistics(evaluator.features(images))
    shares = label_shares(data) if evaluator.num_classes else None
    return Reference(mu, sigma, shares, len(images))


def cheap_metrics(generator_fn: Callable[[int], np.ndarray], evaluator: Evaluator, reference: Reference, n: int = 1000) -> dict:
    """FD (and classes covered, class KL when labelled) of n generated uint8 images: fast enough for every M steps."""
    seen = evaluator.observe(generator_fn(n))
    features, probs = seen.features, seen.probs
    result = {"fd": metrics.frechet_from_statistics(*metrics.feature_statistics(features), reference.mu, reference.sigma)}
    if probs is not None:
        hist = metrics.class_histogram(probs, len(reference.label_shares))
        result["classes_covered"] = metrics.classes_covered(hist, reference.label_shares, COVERED_FRACTION)
        result["class_kl"] = metrics.kl_divergence(hist, reference.label_shares)
    return result


# ---- presenting results -----------------------------------------------------------------------
def _number(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "—"
    text = f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return f"{text} ± {std:.2g}" if std is not None else text


def evaluator_caption(result: dict) -> str:
    """One line saying which evaluator produced the numbers and how good it is."""
    info = result["evaluator"]
    if info["kind"] == "classifier":
        return (
            f"Evaluator: CNN classifier trained on {info['train_images']} training images, held-out accuracy "
            f"{100 * info['accuracy']:.1f}% on {info['heldout_images']} images. Metrics marked with an asterisk use its features: "
            f"{info['feature_layer']}."
        )
    return f"Evaluator: no labels, so no classifier. Metrics marked with an asterisk use {info['feature_layer']}."


def metric_table(result: dict) -> list[dict]:
    """Display rows: metric (with an asterisk when it uses the evaluator, whose accuracy the caption states), generated, real floor, which is better."""
    return [
        {
            "Metric": f"{row['label']} *" if row["uses_evaluator"] else row["label"], "Generated": _number(row["value"], row["std"]),
            "Real held-out vs train": _number(row["floor"], row["floor_std"]), "Better": row["better"],
        }
        for row in result["metrics"]
    ]


def class_table(result: dict) -> list[dict]:
    """Per-class rows: generated and real shares, and accuracy on requested classes for conditional runs."""
    classes = result["classes"]
    if classes is None:
        return []
    rows = []
    for i, name in enumerate(classes["names"]):
        row = {"Class": name, "Generated share": classes["generated"][i], "Real share": classes["real"][i]}
        if classes["generated_accuracy"] is not None:
            row["Accuracy on requested class"] = classes["generated_accuracy"][i]
            row["Real accuracy"] = classes["real_accuracy"][i]
        rows.append(row)
    return rows


def comparison_rows(results: list[dict]) -> list[dict]:
    """One row per evaluated run: run, step, N, evaluator accuracy and every metric value."""
    rows = []
    for result in results:
        accuracy = result["evaluator"]["accuracy"]
        row = {"Run": result.get("run_id", ""), "Step": result.get("step"), "N": result["n"],
               "Evaluator accuracy": None if accuracy is None else round(accuracy, 4)}
        row.update({metric["label"]: metric["value"] for metric in result["metrics"]})
        row.update(column_values(result))
        rows.append(row)
    return rows


def column_values(result: dict) -> dict[str, float]:
    """An image-to-image run's column scores as "column: score" -> value (empty for other runs)."""
    return {
        f"{row['column']}: {score}": row[score]
        for row in result.get("columns", [])
        for score in (PSNR, SSIM, KEPT)
        if score in row
    }


def results_csv(results: list[dict]) -> str:
    """Long-format CSV: one line per run and metric, with the floor beside the value."""
    buffer = io.StringIO()
    fields = ["run_id", "step", "n", "metric", "label", "value", "std", "floor", "floor_std", "evaluator_accuracy"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for result in results:
        for row in result["metrics"]:
            writer.writerow({
                "run_id": result.get("run_id", ""), "step": result.get("step"), "n": result["n"], "metric": row["key"],
                "label": row["label"], "value": row["value"], "std": row["std"], "floor": row["floor"],
                "floor_std": row["floor_std"], "evaluator_accuracy": result["evaluator"]["accuracy"] if row["uses_evaluator"] else None,
            })
        for label, value in column_values(result).items():
            writer.writerow({"run_id": result.get("run_id", ""), "step": result.get("step"), "n": result["n"], "metric": label, "label": label, "value": value})
    return buffer.getvalue()


def results_json(results: list[dict]) -> str:
    """All results as one JSON document."""
    return json.dumps(results, indent=2, sort_keys=True)


def nearest_caption(result: dict) -> str:
    """What the nearest-neighbour pairs show and how a near-copy is decided."""
    nearest = result["nearest"]
    return (
        f"The {len(nearest['pairs'])} generated images closest to a training image (of the first {nearest['checked']}), "
        f"by L2 distance on pixels in [0, 1]; a distance below {nearest['threshold']:.3f}, which only "
        f"{nearest['percentile']:g}% of half the real held-out images reach, marks a near-copy "
        "(the floor column: the share of the other half that does)."
    )


def pair_images(result: dict) -> list[tuple[bytes, bytes, str]]:
    """(generated PNG, nearest training PNG, caption) for each nearest-neighbour pair (none for restoring families)."""
    if result["nearest"] is None:
        return []
    return [
        (base64.b64decode(p["generated_png"]), base64.b64decode(p["train_png"]),
         f"distance {p['distance']:.2f}{' — near-copy' if p['flagged'] else ''}")
        for p in result["nearest"]["pairs"]
    ]


def histogram_figure(result: dict):
    """Plotly grouped bars: share of each class among generated and real held-out images."""
    import plotly.graph_objects as go

    classes = result["classes"]
    figure = go.Figure([
        go.Bar(name="Generated", x=classes["names"], y=classes["generated"]),
        go.Bar(name="Real held-out", x=classes["names"], y=classes["real"]),
    ])
    figure.update_layout(barmode="group", yaxis_title="Share of images", xaxis_title="Class (evaluator's guess)", xaxis_type="category")
    return figure


def format_report(result: dict) -> str:
    """A readable text table of one result."""
    nearest = result["nearest"]
    lines = [
        f"Run {result.get('run_id', '?')}  step {result.get('step', '?')}  N={result['n']}  dataset {result['dataset']}",
        evaluator_caption(result),
        "",
    ]
    table = metric_table(result)
    if table:
        width = max(len(row["Metric"]) for row in table)
        lines.append(f"{'Metric':<{width}}  {'Generated':>16}  {'Real floor':>16}  Better")
        for row in table:
            lines.append(f"{row['Metric']:<{width}}  {row['Generated']:>16}  {row['Real held-out vs train']:>16}  {row['Better']}")
    if result["classes"] is not None:
        shares = "  ".join(f"{name}:{100 * share:.0f}%" for name, share in zip(result["classes"]["names"], result["classes"]["generated"]))
        lines += ["", f"Generated class shares: {shares}"]
    if result.get("columns"):
        lines += ["", COLUMNS_CAPTION] + [f"  {label}: {value:.4g}" for label, value in column_values(result).items()]
    if nearest is not None:
        closest = nearest["pairs"][0]
        lines += [
            "", nearest_caption(result),
            f"Closest pair: generated #{closest['generated_index']} and training #{closest['train_index']} at "
            f"{closest['distance']:.3f}{' (near-copy)' if closest['flagged'] else ''}.",
        ]
    return "\n".join(lines)
