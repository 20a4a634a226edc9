"""How long each page takes to draw in a browser, the first time, with 50 runs in the store.

    python3 -m bench.first_render [--runs 50] [--repeats 3]

Trains one tiny dcgan run, copies it to `--runs` runs (history, samples, checkpoints and all), starts
`streamlit run app.py` over that store and waits until it is healthy. Each visit opens a page's URL (with
`?run=` of the newest run) in a new tab and is timed from the navigation to the moment the page's title is
drawn (its first elements are on screen), and to the moment the server says the page's script has ended (its
`script_finished` message on the WebSocket: every element sent, cached computations such as Configure's model
summary done; before 2026-12-06 the bench read the absence of the "Running..." widget, which is absent too before it shows).
"All drawn" waits, on Configure, for its model summary, which the page draws once the server has imported TensorFlow.
Pages are opened one after another without pause, Home first, as the sidebar lists them. Two browsers:

- **Returning user** (the target's measure): the browser already holds Streamlit's own JavaScript, which
  the server marks immutable for a year, from an earlier visit of every page (a first server on the same
  port, then stopped). On a freshly started server, each page's first visit is the server's first draw of that page;
  `--repeats` - 1 later rounds give the median of later visits.
- **Empty cache**: a new browser for every visit, so each one also downloads and parses Streamlit's
  JavaScript (what a user's very first visit pays once), on the same server after the rounds above.

With `--during-import`, each page but Home is instead opened once per fresh server while the server imports
TensorFlow: Home first, then the page `preload.AFTER_PAGE_S` + 0.3 s after Home's script ended (the import
begins once no page has run for AFTER_PAGE_S and lasts about 5 s). `--against DIR` runs the same visits, in
turns, on the server of another checkout (e.g. a `git worktree` of the previous commit), side by side.

Target: every page's first visit under 2 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from bench.dashboard_overhead import ROOT, Chromium, end_group, free_port, start_server
from gan_core.config import RunConfig
from gan_core.dashboard import preload
from gan_core.dashboard.common import page_specs
from gan_core.store.runs import RunStore
from gan_core.training.loop import train_run

TINY = dict(dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=20, sample_every=5, checkpoint_every=10)
TIMEOUT_MS = 60_000
TITLES = {"": "GAN Workbench", "configure": "Configure a run"}
LAST_PARTS = {"configure": "Generator parameters"}  # drawn after the script has ended, once the server has imported TensorFlow
TARGET_SECONDS = 2.0
IMPORT_BEGUN_S = preload.AFTER_PAGE_S + 0.3  # after Home's script ended: the server's import of TensorFlow is under way


def fill_store(root: Path, count: int) -> str:
    """`count` copies of one trained tiny run; returns the newest id."""
    store = RunStore(root)
    original = store.create(RunConfig(**TINY, name="original"))
    train_run(original)
    for i in range(1, count):
        shutil.copytree(original.dir, root / f"{original.id}-copy{i:02d}")
    return sorted(run.id for run in store.list())[-1]


def render_seconds(page, url: str, title: str, last_part: str | None) -> tuple[float, float, float]:
    """Seconds from navigating `page` to `url` to its title drawn, to its script finished (and the title drawn),
    and to `last_part` on screen (a part the page draws after its script has ended; else the second figure again)."""
    finished: list[float] = []
    page.on("websocket", lambda socket: socket.on("framereceived", lambda frame: finished.extend(script_finished(frame))))
    started = time.perf_counter()
    page.goto(url)
    page.get_by_role("heading", name=title).first.wait_for(timeout=TIMEOUT_MS)
    drawn = time.perf_counter() - started
    while not finished and time.perf_counter() - started < TIMEOUT_MS / 1000:
        page.wait_for_timeout(10)  # Playwright calls the frame handler while it waits
    ended = max(drawn, finished[0] - started)
    if last_part:
        page.get_by_text(last_part).first.wait_for(timeout=TIMEOUT_MS)
        return drawn, ended, time.perf_counter() - started
    return drawn, ended, ended


def script_finished(frame: str | bytes) -> list[float]:
    """[now] when a WebSocket frame from the server says the page's script ended (not for a rerun), else []."""
    if isinstance(frame, str):
        return []
    message = ForwardMsg.FromString(frame)
    ended = message.WhichOneof("type") == "script_finished" and message.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY
    return [time.perf_counter()] if ended else []


def visit(context, url: str, title: str, last_part: str | None) -> tuple[float, float, float]:
    """One timed visit in a new tab of `context`: (title drawn, script finished, all drawn) in seconds."""
    page = context.new_page()
    try:
        return render_seconds(page, url, title, last_part)
    finally:
        page.close()


def page_urls(url: str, run_id: str) -> dict[str, tuple[str, str, str | None]]:
    """Each page's title in the table -> (its URL, the heading that shows it is drawn, its last part), in sidebar order."""
    return {
        spec.title: (f"{url}/{spec.url_path}?run={run_id}", TITLES.get(spec.url_path, spec.title), LAST_PARTS.get(spec.url_path))
        for spec in page_specs()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--during-import", action="store_true", help="open each page while the server imports TensorFlow")
    parser.add_argument("--against", type=Path, help="another checkout whose server gets the same --during-import visits, in turns")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="first-render-"))
    newest = fill_store(root / "runs", args.runs)
    if args.during_import:
        trees = {"this checkout": ROOT} | ({f"{args.against}": args.against.resolve()} if args.against else {})
        print_during_import(args.runs, during_import(root, newest, trees, args.repeats))
        return
    port = free_port()
    chromium = Chromium()
    returning: dict[str, list[tuple[float, float, float]]] = {}
    empty_cache: dict[str, tuple[float, float, float]] = {}
    try:
        context = warmed_up(chromium, root, newest, port)
        server, url = start_server(root / "runs", root / "server.log", port=port)
        try:
            for _ in range(args.repeats):
                for title, target in page_urls(url, newest).items():
                    returning.setdefault(title, []).append(visit(context, *target))
            for title, target in page_urls(url, newest).items():
                empty_cache[title] = visit(chromium.open_context(), *target)
        finally:
            end_group(server.pid)
    finally:
        chromium.stop()
    print_table(args.runs, returning, empty_cache)


def warmed_up(chromium: Chromium, root: Path, newest: str, port: int):
    """A browser context of a returning user: every page visited once on a first server on `port`, then stopped."""
    context = chromium.open_context()
    warmup, url = start_server(root / "runs", root / "warm-up.log", port=port)
    for target in page_urls(url, newest).values():
        visit(context, *target)
    end_group(warmup.pid)
    return context


def during_import(root: Path, newest: str, trees: dict[str, Path], repeats: int) -> dict[str, dict[str, list[float]]]:
    """Page -> tree -> seconds to each visit's script finished, the page opened while a fresh server of that tree imports TensorFlow."""
    port = free_port()
    chromium = Chromium()
    seconds: dict[str, dict[str, list[float]]] = {}
    try:
        context = warmed_up(chromium, root, newest, port)
        for _ in range(repeats):
            for title in list(page_urls("", newest))[1:]:  # every page but Home
                for name, tree in trees.items():
                    server, url = start_server(root / "runs", root / "server.log", port=port, tree=tree)
                    try:
                        home, *_ = page_urls(url, newest).values()
                        visit(context, *home)
                        time.sleep(IMPORT_BEGUN_S)
                        _, finished, _ = visit(context, *page_urls(url, newest)[title])
                        seconds.setdefault(title, {}).setdefault(name, []).append(finished)
                    finally:
                        end_group(server.pid)
    finally:
        chromium.stop()
    return seconds


def print_during_import(runs: int, seconds: dict[str, dict[str, list[float]]]) -> None:
    print(f"# bench/first_render.py --during-import: {runs} runs in the store, {time.strftime('%Y-%m-%d')}")
    names = list(next(iter(seconds.values())))
    print("\nSeconds from navigation to the page's script finished, opened while the server imports TensorFlow (each visit):\n")
    print("| page | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for title, by_tree in seconds.items():
        print(f"| {title} | " + " | ".join(", ".join(f"{value:.2f}" for value in by_tree[name]) for name in names) + " |")
    for name in names:
        every = [value for by_tree in seconds.values() for value in by_tree[name]]
        print(f"\n{name}: median {statistics.median(every):.2f} s, slowest {max(every):.2f} s over {len(every)} visits")


def print_table(runs: int, returning: dict[str, list[tuple[float, float, float]]], empty_cache: dict[str, tuple[float, float, float]]) -> None:
    print(f"# bench/first_render.py: {runs} runs in the store, {time.strftime('%Y-%m-%d')}")
    print("\n| page | first visit: drawn (s) | first visit: finished (s) | first visit: all drawn (s) | later visits, median (s) | empty browser cache (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for title, visits in returning.items():
        later = statistics.median(finished for _, finished, _ in visits[1:]) if len(visits) > 1 else float("nan")
        print(f"| {title} | {visits[0][0]:.2f} | {visits[0][1]:.2f} | {visits[0][2]:.2f} | {later:.2f} | {empty_cache[title][1]:.2f} |")
    slowest = max(visits[0][1] for visits in returning.values())
    print(f"\nslowest first visit, script finished: {slowest:.2f} s (target: every page under {TARGET_SECONDS:.0f} s)")


if __name__ == "__main__":
    main()
