"""How long each page takes to draw in a browser, the first time, with 50 runs in the store.

    python3 -m bench.first_render [--runs 50] [--repeats 3]

Trains one tiny dcgan run, copies it to `--runs` runs (history, samples, checkpoints and all), starts
`streamlit run app.py` over that store and waits until it is healthy. Then, for each page, a fresh
headless Chromium opens its URL (with `?run=` of the newest run) and the time is measured from the
navigation to the moment the page's title is drawn and Streamlit has stopped running the script
(no "Running..." status widget). The first page opened pays the server's first imports; each page
is opened `--repeats` times in turn, and the table gives the first visit and the median of the
rest. Target: every page under 2 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.dashboard_overhead import Chromium, end_group, start_server
from gan_core.config import RunConfig
from gan_core.dashboard.common import page_specs
from gan_core.store.runs import RunStore
from gan_core.training.loop import train_run

TINY = dict(dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=20, sample_every=5, checkpoint_every=10)
TIMEOUT_MS = 60_000


def fill_store(root: Path, count: int) -> str:
    """`count` copies of one trained tiny run; returns the newest id."""
    store = RunStore(root)
    original = store.create(RunConfig(**TINY, name="original"))
    train_run(original)
    for i in range(1, count):
        shutil.copytree(original.dir, root / f"{original.id}-copy{i:02d}")
    return sorted(run.id for run in store.list())[-1]


def render_seconds(chromium: Chromium, url: str, title: str) -> float:
    """Seconds from navigating to `url` to its title drawn with the script finished."""
    page = chromium.open()
    started = time.perf_counter()
    page.goto(url)
    page.get_by_role("heading", name=title).first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=TIMEOUT_MS)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="first-render-"))
    newest = fill_store(root / "runs", args.runs)
    server, url = start_server(root / "runs", root / "server.log")
    chromium = Chromium()
    titles = {"": "GAN Workbench", "configure": "Configure a run"}
    times: dict[str, list[float]] = {}
    try:
        for _ in range(args.repeats):
            for spec in page_specs():
                title = titles.get(spec.url_path, spec.title)
                times.setdefault(spec.title, []).append(render_seconds(chromium, f"{url}/{spec.url_path}?run={newest}", title))
    finally:
        chromium.stop()
        end_group(server.pid)
    print(f"# bench/first_render.py: {args.runs} runs in the store, {time.strftime('%Y-%m-%d')}")
    print("\n| page | first visit (s) | later visits, median (s) |\n|---|---:|---:|")
    for page, seconds in times.items():
        print(f"| {page} | {seconds[0]:.2f} | {statistics.median(seconds[1:]) if len(seconds) > 1 else float('nan'):.2f} |")
    print(f"\nslowest: {max(max(s) for s in times.values()):.2f} s (target: every page under 2 s)")


if __name__ == "__main__":
    main()
