"""CycleGAN between two digit domains: the share of held-out digits whose class survives translation.

    python3 -m bench.cyclegan [--domains mnist-5k-thick sklearn-digits] [--budget 300] [--slice 60] [--out docs/cyclegan.png]
                              [--set KEY=VALUE ...]

For each domain B, the `cyclegan` preset (domain A: mnist-5k) trains with gan_core's compiled call,
in turns of `--slice` seconds, until it has trained `--budget` seconds. After every turn the
held-out digits of both domains (500 of mnist-5k, all of B's test split) are translated both
ways and scored as Evaluate scores them: the share whose class the target domain's cached
evaluator still reads as the original's label, beside the share it reads of the untranslated
digits (what doing nothing keeps) and of its own domain's digits (the ceiling: the evaluator's
own accuracy), the PSNR of each cycle (A->B->A against A), and whether A->B looks like
B: the Frechet distance, in B's evaluator features, of the translated digits to B's held-out
digits, beside the untranslated A digits' distance (the start) and B's own training digits'
distance (the floor). Judging is not
counted as training time. The last triplets grid of each domain is saved side by side in `--out`.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace

import numpy as np
from PIL import Image

from bench.loops import gan_core_loop
from bench.time_to_quality import Entry, turn_options
from bench.two_minutes import side_by_side
from gan_core import families
from gan_core.config import load_preset
from gan_core.data.images import interleaved, make_grid, to_uint8
from gan_core.evaluation import metrics
from gan_core.evaluation.columns import KEPT, PSNR, column_scores
from gan_core.evaluation.evaluator import get_evaluator, reference_data
from gan_core.store.runs import RunStore

LONG = dict(epochs=10_000, sample_every=10**6, checkpoint_every=10**6)
SEED = 0
SHOWN = 8


def judge(entry: Entry, config) -> dict[str, dict]:
    """Every held-out digit of both domains translated both ways and scored; keeps a grid of the first ones on the entry."""
    n = max(reference_data(name).heldout.num_images for name in (config.dataset, config.domain_b))
    columns = families.get("cyclegan").pairs(entry.loop.sampler, config, n, SEED, entry.loop.networks)
    shown = np.linspace(0, n - 1, SHOWN).astype(int)
    entry.grid = Image.fromarray(make_grid(interleaved([to_uint8(c.images)[shown] for c in columns.values()]), cols=len(columns))[..., 0])
    scores = {row["column"]: row for row in column_scores(columns, get_evaluator)}
    untranslated = {"A": replace(columns["A"], read_by=config.domain_b), "B": replace(columns["B"], read_by=config.dataset)}
    scores["untranslated"] = {row["column"]: row[KEPT] for row in column_scores(untranslated, get_evaluator)}
    scores["fd"] = frechet_to_b(config.domain_b, {name: to_uint8(columns[name].images) for name in ("A", "A->B")})
    return scores


def frechet_to_b(domain_b: str, images: dict[str, np.ndarray]) -> dict[str, float]:
    """FD of each image set to B's held-out digits in B's evaluator features, and B's training digits' FD (the floor)."""
    data, evaluator = reference_data(domain_b), get_evaluator(domain_b)
    held = evaluator.features(data.heldout.images)
    floor = data.train.images[np.random.default_rng(SEED).choice(data.train.num_images, data.heldout.num_images, replace=False)]
    sets = images | {"floor": floor}
    return {name: metrics.frechet_distance(evaluator.features(x[: len(held)]), held) for name, x in sets.items()}


def line(scores: dict[str, dict]) -> str:
    return (
        f"class kept A->B {scores['A->B'][KEPT]:.1f}% (untranslated {scores['untranslated']['A']:.1f}%, ceiling {scores['B'][KEPT]:.1f}%), "
        f"B->A {scores['B->A'][KEPT]:.1f}% (untranslated {scores['untranslated']['B']:.1f}%, ceiling {scores['A'][KEPT]:.1f}%); cycle PSNR A {scores['A->B->A'][PSNR]:.2f} dB, B {scores['B->A->B'][PSNR]:.2f} dB; "
        f"FD to B {scores['fd']['A->B']:.1f} (untranslated {scores['fd']['A']:.1f}, floor {scores['fd']['floor']:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", nargs="+", default=["mnist-5k-thick", "sklearn-digits"])
    turn_options(parser, 300.0, 60.0, "docs/cyclegan.png", "domain pair")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Change one field of the preset (repeatable).")
    args = parser.parse_args()
    store = RunStore(tempfile.mkdtemp(prefix="cyclegan-"))
    print(f"# bench/cyclegan.py: mnist-5k <-> {', '.join(args.domains)}, {args.budget:g} s each, preset {' '.join(args.set) or 'as it is'}")
    results = []
    for domain in args.domains:
        config = load_preset("cyclegan").with_overrides(args.set).replace(domain_b=domain, **LONG)
        entry = Entry(domain, gan_core_loop(config, store), config.batch_size)
        while entry.seconds < args.budget:
            entry.train_for(min(args.slice, args.budget - entry.seconds))
            scores = judge(entry, config)
            print(f"{domain:>15}: {entry.seconds:5.0f} s, {entry.steps:5d} steps, {line(scores)}", flush=True)
        results.append((entry, scores))
    print("\n| domain B | training s | steps | class kept A->B / untranslated / ceiling | class kept B->A / untranslated / ceiling "
          "| cycle PSNR A / B (dB) | FD to B: A->B / A / floor |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for entry, s in results:
        print(
            f"| {entry.name} | {entry.seconds:.0f} | {entry.steps:,} | {s['A->B'][KEPT]:.1f}% / {s['untranslated']['A']:.1f}% / {s['B'][KEPT]:.1f}% "
            f"| {s['B->A'][KEPT]:.1f}% / {s['untranslated']['B']:.1f}% / {s['A'][KEPT]:.1f}% | {s['A->B->A'][PSNR]:.2f} / {s['B->A->B'][PSNR]:.2f} "
            f"| {s['fd']['A->B']:.1f} / {s['fd']['A']:.1f} / {s['fd']['floor']:.1f} |"
        )
    side_by_side([(f"mnist-5k <-> {e.name}: A | A->B | A->B->A | B | B->A | B->A->B", e.grid) for e, _ in results]).save(args.out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
