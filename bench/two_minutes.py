"""Train presets for the same wall-clock budget, evaluate them, and show their grids side by side.

    python3 -m bench.two_minutes [--seconds 120] [--presets dcgan tutorial-dcgan] [--out docs/two-minutes.png]

Each preset trains on mnist-5k in this process, one after the other, for `--seconds` of
wall-clock time (start-up and tracing included), then stops with a checkpoint. It prints
steps, images/s and the final losses of each, evaluates each final generator on the 500
held-out digits (`gan_core.evaluation.evaluate`), prints a markdown table of the metrics beside their
real-vs-real floor, and writes one PNG with a labelled grid per preset. Run it on an
otherwise idle machine: the figures are only fair when nothing else runs.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time

import numpy as np
from PIL import Image, ImageDraw

from gan_core.config import load_preset
from gan_core.evaluation.evaluate import evaluate_run
from gan_core.store.runs import RunStore
from gan_core.training.loop import train_run

TABLE_METRICS = ("fd", "classifier_score", "precision", "recall", "coverage", "classes_covered", "swd")


def train_for(preset: str, seconds: float, store: RunStore) -> tuple[dict, Image.Image]:
    run = store.create(load_preset(preset).replace(dataset="mnist-5k", epochs=10_000, steps=0, sample_every=10**6))
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    started = time.monotonic()
    timer.start()
    try:
        status = train_run(run, stop_event=stop)
    finally:
        timer.cancel()
    rows = run.history_rows()
    last = rows[-1]
    print(
        f"{preset:>16}: {status['step']:5d} steps in {time.monotonic() - started:5.1f} s, "
        f"{np.median([r['images_per_sec'] for r in rows]):7.0f} img/s (median), "
        f"G {last['g_loss']:.3f} D {last['d_loss']:.3f}, run {run.dir}"
    )
    status["evaluation"] = evaluate_run(run)
    return status, Image.open(run.sample_paths()[-1]).convert("L")


def markdown_table(results: dict[str, dict]) -> str:
    """One row per preset plus the floor row: the metrics a reader compares first."""
    first = next(iter(results.values()))["evaluation"]
    labels = {row["key"]: row["label"] for row in first["metrics"]}
    keys = [k for k in TABLE_METRICS if k in labels]
    lines = ["| preset | steps | " + " | ".join(labels[k] for k in keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for preset, status in results.items():
        values = {row["key"]: row["value"] for row in status["evaluation"]["metrics"]}
        lines.append(f"| `{preset}` | {status['step']:,} | " + " | ".join(f"{values[k]:.3g}" for k in keys) + " |")
    floors = {row["key"]: row["floor"] for row in first["metrics"]}
    lines.append("| real held-out vs train (floor) | | " + " | ".join(f"{floors[k]:.3g}" for k in keys) + " |")
    return "\n".join(lines)


def side_by_side(panels: list[tuple[str, Image.Image]], scale: int = 2) -> Image.Image:
    width = sum(p.width * scale for _, p in panels) + 10 * (len(panels) + 1)
    height = max(p.height * scale for _, p in panels) + 34
    canvas = Image.new("RGB" if any(p.mode == "RGB" for _, p in panels) else "L", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    left = 10
    for title, panel in panels:
        draw.text((left, 8), title, fill=0)
        canvas.paste(panel.resize((panel.width * scale, panel.height * scale), Image.NEAREST), (left, 28))
        left += panel.width * scale + 10
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--presets", nargs="+", default=["dcgan", "tutorial-dcgan"])
    parser.add_argument("--out", default="docs/two-minutes.png")
    args = parser.parse_args()
    store = RunStore(tempfile.mkdtemp(prefix="two-minutes-"))
    panels, results = [], {}
    for preset in args.presets:
        status, grid = train_for(preset, args.seconds, store)
        results[preset] = status
        panels.append((f"{preset}: {status['step']} steps in {args.seconds:.0f} s", grid))
    side_by_side(panels).save(args.out)
    evaluator = next(iter(results.values()))["evaluation"]["evaluator"]
    print(f"\nN = {next(iter(results.values()))['evaluation']['n']}, evaluator held-out accuracy {evaluator['accuracy']:.1%}\n")
    print(markdown_table(results))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
