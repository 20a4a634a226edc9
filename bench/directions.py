"""Generate's attribute directions on a run, with and without holding the class by the evaluator.

    python3 -m bench.directions RUN_ID [--runs-dir runs] [--n 256] [--out docs/directions.png]

The run's attribute directions are found as the Edit view finds them (512 samples, seed 1), once
without the evaluator (each attribute regressed on the latents alone) and once with the class held
(each direction projected off the span of the evaluator's class-logit directions, InterFaceGAN's
conditional manipulation). `--n` other samples (seed 99) are each moved +2 and -2 steps along every
direction; for each move the table gives the share whose class the evaluator reads as before, the
mean change of the attribute in its own units, and the share moved the right way (NaN images, no
ink, left out). The projected direction changes its attribute less per step, so a third row moves
along the unprojected direction only as far as the projected one is predicted to change it: what
is kept there is kept by moving less. A fourth row moves as Generate's sliders do (`edits.walk`: along
the attribute's gradient at each sample, held off the class the evaluator reads and the other attributes),
on a conditional run too. A seeded random direction, moved as far, gives the share any move of that length
keeps. On a conditional run every sample keeps a seeded class label while it moves
(the Edit view holds the class that way), so "class kept" is the share the evaluator still reads as it did
before the move with the label unchanged; the projection adds nothing there. The sliders hold the class by that
same evaluator, so a second judge that shares nothing with it, a 3-nearest-neighbour classifier on the
training digits' pixels (`Judge`), gives "kept (k-NN)" beside it. `--out` shows a few samples
moved -2..+2 along thickness: straight along the held direction (left) and as the sliders move them (right).
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from bench.two_minutes import side_by_side
from gan_core.data.images import make_grid, to_uint8
from gan_core.evaluation.evaluator import reference_data
from gan_core.generation.attributes import ATTRIBUTES, measure
from gan_core.generation.directions import Direction, find_directions, moved
from gan_core.generation.edits import walk
from gan_core.generation.latent_space import LatentSpace, latent_space
from gan_core.generation.projection import evaluator_for
from gan_core.generation.sampling import load_generator
from gan_core.store.runs import RunStore

SEED = 99  # not the fit's seed 1
STEPS = 2.0
SHOWN = 8
STRIP = np.linspace(-STEPS, STEPS, 5)


def moved_images(
    space: LatentSpace, latents: np.ndarray, labels: np.ndarray | None, direction: Direction, amount: float, evaluator=None
) -> np.ndarray:
    """uint8 images of the latents (with their class labels on a conditional run) moved `amount` steps along the direction:
    straight, or with an evaluator as the sliders move them (edits.walk)."""
    if evaluator is None:
        return to_uint8(space.images(moved(latents, {direction: amount}), labels))
    each = [None] * len(latents) if labels is None else [int(label) for label in np.ravel(labels)]
    ends = [walk(space, latent, {direction: amount}, label, evaluator) for latent, label in zip(latents, each)]
    return to_uint8(space.images(np.stack(ends), labels))


def effect(space: LatentSpace, evaluator, latents: np.ndarray, labels: np.ndarray | None, direction: Direction, amount: float,
           before: dict, judge: Judge, walked: bool = False) -> dict:
    """Class kept, mean attribute change and share moved the right way, for one move of every latent (as the sliders move it if `walked`)."""
    images = moved_images(space, latents, labels, direction, amount, evaluator if walked else None)
    change = measure(images)[direction.attribute] - before[direction.attribute]
    valid = np.isfinite(change)
    kept, kept_knn = kept_share(evaluator, images, before, judge)
    return {"kept": kept, "kept_knn": kept_knn, "change": change[valid].mean(), "right": (np.sign(amount) * change[valid] > 0).mean()}


def kept_share(evaluator, images: np.ndarray, before: dict, judge: "Judge") -> tuple[float, float]:
    """The shares of images the evaluator, and the judge, read as the class each read before the move."""
    return float(np.mean(np.argmax(evaluator.probabilities(images), axis=1) == before["class"])), float(np.mean(judge(images) == before["knn"]))


class Judge:
    """A 3-nearest-neighbour classifier on the pixels of a dataset's training digits (Euclidean distance)."""

    def __init__(self, dataset: str, k: int = 3) -> None:
        data = reference_data(dataset)
        self.x, self.y, self.k = self.flat(data.train.images), data.train.labels, k
        self.accuracy = float(np.mean(self(data.heldout.images) == data.heldout.labels))

    @staticmethod
    def flat(images: np.ndarray) -> np.ndarray:
        return np.asarray(images, np.float32).reshape(len(images), -1) / 255.0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(images), 256):
            x = self.flat(images[start : start + 256])
            distances = (x * x).sum(1)[:, None] - 2 * x @ self.x.T + (self.x * self.x).sum(1)[None]
            nearest = self.y[np.argsort(distances, axis=1)[:, : self.k]]
            out.append(np.array([np.bincount(row, minlength=10).argmax() for row in nearest]))
        return np.concatenate(out)


def random_direction(space: LatentSpace, latents: np.ndarray) -> Direction:
    """A seeded random unit direction, its step the latents' spread along it."""
    vector = np.random.default_rng(SEED).standard_normal(space.dim)
    vector /= np.linalg.norm(vector)
    return Direction("random", vector, float(np.std(latents @ vector)))


def strip(space: LatentSpace, latents: np.ndarray, labels: np.ndarray | None, direction: Direction, evaluator=None) -> Image.Image:
    """Each latent moved along the direction over STRIP (as the sliders move it, given the evaluator), one row per latent."""
    labels = [None] * len(latents) if labels is None else labels[:, None]
    rows = [np.concatenate([moved_images(space, z[None], y, direction, amount, evaluator) for amount in STRIP]) for z, y in zip(latents, labels)]
    return Image.fromarray(make_grid(np.concatenate(rows), cols=len(STRIP))[..., 0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_id")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--out", default="docs/directions.png")
    args = parser.parse_args()
    loaded = load_generator(RunStore(args.runs_dir).get(args.run_id))
    space, evaluator = latent_space(loaded), evaluator_for(loaded)
    variants = {name: {d.attribute: d for d in find_directions(space, evaluator=given).values() if d.attribute}
                for name, given in (("without", None), ("with", evaluator))}
    latents = space.random(args.n, SEED)
    labels = np.random.default_rng(SEED).integers(0, space.num_classes, args.n).astype(np.int32) if space.conditional else None
    images = to_uint8(space.images(latents, labels))
    judge = Judge(loaded.config.dataset)
    before = measure(images) | {"class": np.argmax(evaluator.probabilities(images), axis=1), "knn": judge(images)}
    print(f"# bench/directions.py: run {args.run_id} (step {loaded.step}), {args.n} samples (seed {SEED}) moved ±{STEPS:g} steps")
    print(f"# the evaluator reads {evaluator.accuracy:.1%} of the held-out real digits correctly, the k-NN judge {judge.accuracy:.1%}")
    if labels is not None:
        read = np.mean(before["class"] == labels)
        print(f"# conditional: each sample keeps its label; the evaluator reads {read:.1%} of them as their label")
    print("\n| attribute | class projection | move | predicted change | class kept | kept (k-NN) | mean change | moved the right way |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for attribute, label in ATTRIBUTES.items():
        free, held = variants["without"][attribute], variants["with"][attribute]
        rows = (("without", free, STEPS, False), ("with", held, STEPS, False),
                ("without, moved as far as with", free, STEPS * held.per_unit / free.per_unit, False),
                ("local gradient, held (the sliders)", held, STEPS, True))
        for name, direction, steps, walked in rows:
            for amount in (steps, -steps):
                row = effect(space, evaluator, latents, labels, direction, amount, before, judge, walked)
                print(f"| {label} | {name} | {amount:+.2f} | {amount * direction.per_unit:+.2f} | {row['kept']:.0%} | {row['kept_knn']:.0%} "
                      f"| {row['change']:+.2f} | {row['right']:.0%} |")
    noise = random_direction(space, latents)
    for amount in (STEPS, -STEPS):
        kept, kept_knn = kept_share(evaluator, moved_images(space, latents, labels, noise, amount), before, judge)
        print(f"| (a random direction) | | {amount:+.2f} | | {kept:.0%} | {kept_knn:.0%} | | |")
    shown = None if labels is None else labels[:SHOWN]
    thickness = variants["with"]["thickness"]
    panels = [(f"thickness {STRIP[0]:g}..{STRIP[-1]:+g} steps, {name}", strip(space, latents[:SHOWN], shown, thickness, given))
              for name, given in (("straight (held)", None), ("as the sliders move", evaluator))]
    side_by_side(panels).save(args.out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
