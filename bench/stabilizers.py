"""The default preset with and without the stabilizers (feature matching, R1, DiffAugment) at the same training budget.

    python3 -m bench.stabilizers [--budget 180] [--slice 30] [--out docs/stabilizers.png]

One process trains the default preset (`dcgan`) as it is and with each combination of COMBINATIONS, in turns of
`--slice` seconds until each has trained `--budget` seconds (bench/families.py's race: a busy machine slows every
contender alike), judged after every turn by the cached mnist-5k evaluator: held-out Fréchet distance and classes
covered, beside the real-data floor. It ends by saying whether the best combination that covers all ten classes
reaches TARGET x the default's FD.
"""

from __future__ import annotations

import argparse
import tempfile

from bench.families import LONG, race, report
from bench.loops import gan_core_loop
from bench.time_to_quality import Entry, Judge, turn_options
from gan_core.config import load_preset
from gan_core.evaluation.evaluate import real_floor, reference_data
from gan_core.store.runs import RunStore

DEFAULT_PRESET = "dcgan"  # what Configure opens with (pages/configure.py)
TARGET = 0.6
COMBINATIONS = {
    "default": {},
    "+diffaugment": dict(diffaugment="translation,cutout"),
    "+feature matching": dict(feature_matching=1.0),
    "+R1": dict(r1_weight=1.0),
    "+all three": dict(diffaugment="translation,cutout", feature_matching=1.0, r1_weight=1.0),
}


def verdict(last: dict[str, dict], classes: int = 10) -> str:
    """The best combination covering every class, and its FD as a share of the default's."""
    default = last["default"]["fd"]
    covering = {name: m["fd"] for name, m in last.items() if name != "default" and m.get("classes_covered") == classes}
    if not covering:
        return f"No combination covers all {classes} classes; the default's FD is {default:.1f}."
    best = min(covering, key=covering.get)
    ratio = covering[best] / default
    reached = "meets" if ratio <= TARGET else "misses"
    return (
        f"Best with {classes} classes: {best}, FD {covering[best]:.1f} = {ratio:.2f} x the default's {default:.1f}; "
        f"it {reached} the {TARGET} x target."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    turn_options(parser, 180.0, 30.0, "docs/stabilizers.png", "combination")
    args = parser.parse_args()
    judge = Judge()
    floor = real_floor(judge.evaluator, reference_data(judge.dataset), judge.n).result["values"]
    store = RunStore(tempfile.mkdtemp(prefix="stabilizers-"))
    entries = []
    for name, changes in COMBINATIONS.items():
        config = load_preset(DEFAULT_PRESET).replace(**LONG, **changes)
        entries.append(Entry(name, gan_core_loop(config, store), config.batch_size))
    print(f"# bench/stabilizers.py: preset {DEFAULT_PRESET} with {', '.join(COMBINATIONS)}, {args.budget:g} s each in turns of "
          f"{args.slice:g} s, N = {judge.n}")
    last = race(entries, judge, args.budget, args.slice)
    report(entries, last, floor, args.out, on=f" ({DEFAULT_PRESET})")
    print(verdict(last))


if __name__ == "__main__":
    main()
