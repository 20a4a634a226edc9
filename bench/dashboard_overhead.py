"""Training speed with the Train page open in a browser against the same job with no page open.

    python3 -m bench.dashboard_overhead [--rounds 2] [--seconds 60] [--warmup 10] [--cold-server]
                                        [--pairs 6] [--window 20] [--settle 4]

Starts `streamlit run app.py` on a free port over a temporary run store and, before measuring,
opens the Configure page and then the Train page once in headless Chromium, as a user does on
the way to training (the Configure page imports TensorFlow into the server process, which
changes what every later rerun costs; `--cold-server` skips it). Then, `--rounds` times, two
jobs of the `dcgan` preset (run until stopped), each started with `jobs.start_job`, the function
the Configure page's Train button calls, and stopped with `jobs.stop_job`:

  A  no browser open (the server idles);
  B  a fresh headless Chromium on `/train?run=<id>` from the moment the job starts, so the page's
     status fragment reruns every 5 s and its chart fragment every 10 s (reading history.csv,
     drawing the losses chart and the sample grid).

The order of A and B alternates every round. Each job trains for `--seconds` after its first
step shows in status.json; its first `--warmup` of those seconds (the first calls, the page
loading) are left out. Over the rest, the figures are the median `images_per_sec` of its
history.csv rows and its steps per wall-clock second (from status.json, read every 0.5 s),
with the CPU (in cores, from /proc) used meanwhile by the worker, the Streamlit server and the
browser, which shows where a difference comes from.
The overhead is 1 - B/A, from the medians over rounds and per round. Target: at most 5%.
At the end of B the page must show the run's current step, which proves it was polling.

Separate jobs carry the machine's drift (on this shared 2-core machine, ±10% between jobs a
minute apart), so the figure to quote comes from `--pairs`: one more long job, with the page
opened and closed around it in A B B A windows of `--window` seconds (`--settle` seconds after
each switch left out). The same worker runs both conditions side by side; the figure to quote
is the median over adjacent pairs of 1 - open/closed steps per wall-clock second (a paired
estimate that a single slow window cannot move), shown beside the overhead of the medians.

Chromium is $CHROMIUM_PATH, `chromium` or `chromium-browser` on PATH, else Playwright's own.
Run it on an otherwise idle machine: both sides share the CPU with whatever else runs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from gan_core.config import RunConfig, load_preset
from gan_core.errors import RunError
from gan_core.store import jobs
from gan_core.store.runs import Run, RunStore, pid_alive

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}
SECOND = 1000  # Playwright timeouts are in milliseconds
TARGET = 0.05
SHOWN_STEP = re.compile(r"Running: step ([\d,]+) /")
EXCEPTION = '[data-testid="stException"]'


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def end_group(pid: int, timeout: float = 15) -> None:
    """SIGTERM a session leader's process group, then SIGKILL the group if the leader lingers."""
    try:
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):
            os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, os.WNOHANG)  # reap our child
    except ChildProcessError:
        pass


def stop_and_wait(run: Run, timeout: float = 90) -> None:
    """Stop a job as the Train page does and wait for its worker to end; force it if it lingers."""
    pid = run.raw_status().get("pid")
    try:
        jobs.stop_job(run)
    except RunError:
        pass
    if not isinstance(pid, int):
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        end_group(pid)  # the worker leads its own session (start_new_session=True)
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def start_server(
    runs_dir: Path, log: Path, timeout: float = 120, port: int | None = None, tree: Path = ROOT,
) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` of the checkout `tree` (this one by default) on `port` (a free one by default) over runs_dir;
    returns it once /_stcore/health answers ok."""
    port = port or free_port()
    env = dict(os.environ, GAN_RUNS_DIR=str(runs_dir), GAN_MAX_JOBS="1", TF_CPP_MIN_LOG_LEVEL="3")
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
        "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
    ]
    with open(log, "wb") as out:
        server = subprocess.Popen(
            command, cwd=tree, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"streamlit exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return server, url
        except OSError:
            pass
        time.sleep(0.3)
    end_group(server.pid)
    raise SystemExit(f"streamlit was not healthy after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


class Chromium:
    """Launches headless Chromium through Playwright, with one clear error when it cannot."""

    def __init__(self) -> None:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            raise SystemExit("This benchmark needs Playwright: pip install -r requirements-dev.txt") from None
        self.executable = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
        self.playwright = sync_playwright().start()
        self.browser = None

    def open(self):
        """A new browser (closing any earlier one) and a page in it."""
        return self.open_context().new_page()

    def open_context(self):
        """A new browser (closing any earlier one) and a context in it: the context's pages share one HTTP cache."""
        from playwright.sync_api import Error as PlaywrightError

        self.close_browser()
        try:
            self.browser = self.playwright.chromium.launch(executable_path=self.executable, args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            raise SystemExit(
                f"Chromium could not start ({str(exc).splitlines()[0]}): install chromium, set CHROMIUM_PATH, "
                "or run `playwright install chromium`."
            ) from None
        return self.browser.new_context(viewport=VIEWPORT)

    def close_browser(self) -> None:
        if self.browser is not None:
            self.browser.close()
            self.browser = None

    def stop(self) -> None:
        try:
            self.close_browser()
        finally:
            self.playwright.stop()


def process_tree(root: int) -> set[int]:
    """root and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo += children.get(pid, [])
    return found


def cpu_seconds(pids: set[int]) -> dict[int, float]:
    """User + system CPU seconds of each live process."""
    ticks, found = os.sysconf("SC_CLK_TCK"), {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return found


Snapshot = tuple[float, dict[str, dict[int, float]]]


class CpuMeter:
    """CPU used by the training worker, the Streamlit server and the browser (our other descendants)."""

    def __init__(self, server_pid: int, worker_pid: int) -> None:
        self.server_pid, self.worker_pid = server_pid, worker_pid

    def snapshot(self) -> Snapshot:
        """The time and every group's CPU seconds per process."""
        server, worker = process_tree(self.server_pid), process_tree(self.worker_pid)
        browser = process_tree(os.getpid()) - server - worker - {os.getpid()}
        groups = {"worker": cpu_seconds(worker), "server": cpu_seconds(server), "browser": cpu_seconds(browser)}
        return time.monotonic(), groups

    @staticmethod
    def cores(before: Snapshot, after: Snapshot) -> dict[str, float]:
        """Average cores each group used between two snapshots (processes alive at both)."""
        seconds, old, new = after[0] - before[0], before[1], after[1]
        return {group: sum(new[group][pid] - old[group].get(pid, new[group][pid]) for pid in new[group]) / seconds for group in new}


# --------------------------------------------------------------------------- one job


@dataclass
class Job:
    """What one job did in its measured window."""

    condition: str
    steps: int
    seconds: float
    steps_per_sec: float
    images_per_sec: float
    page: str
    cores: dict[str, float]


def warm_up(chromium: Chromium, url: str, cold: bool) -> None:
    """Visit the pages a user passes on the way to training, so the server has imported what they import."""
    page = chromium.open()
    try:
        if not cold:
            page.goto(f"{url}/configure", timeout=120 * SECOND)
            page.get_by_text("Generator parameters").wait_for(timeout=180 * SECOND)
        page.goto(f"{url}/train", timeout=120 * SECOND)
        page.get_by_text("No runs yet").wait_for(timeout=120 * SECOND)
    finally:
        chromium.close_browser()


def step_at(samples: list[tuple[float, int]], when: float) -> tuple[float, int]:
    """The first (time, step) sample at or after `when`."""
    return next(s for s in samples if s[0] >= when)


def measure(
    store: RunStore, config: RunConfig, seconds: float, warmup: float, chromium: Chromium | None, server: int, url: str
) -> Job:
    """Run one job for `seconds` after its first step, with the Train page open when `chromium` is given."""
    run = jobs.start_job(store, config)
    meter = CpuMeter(server, run.raw_status()["pid"])
    page, cpu_start = None, None
    try:
        if chromium is not None:
            page = chromium.open()
            page.goto(f"{url}/train?run={run.id}", timeout=120 * SECOND)
        wait = page.wait_for_timeout if page is not None else (lambda ms: time.sleep(ms / 1000))
        samples: list[tuple[float, int]] = []
        first = None
        deadline = time.monotonic() + 300
        while first is None or time.monotonic() < first + seconds:
            step, now = step_now(run), time.monotonic()
            if step >= 1:
                first = first or now
                samples.append((now, step))
                if cpu_start is None and now >= first + warmup:
                    cpu_start = meter.snapshot()
            elif now > deadline:
                raise SystemExit(f"no training step within 300 s; see {run.dir / 'worker.log'}")
            wait(500)
        cpu_end = meter.snapshot()
        shown = check_page(page, samples[-1][1]) if page is not None else "-"
    finally:
        if page is not None:
            chromium.close_browser()
        stop_and_wait(run)

    (t0, s0), (t1, s1) = step_at(samples, first + warmup), samples[-1]
    if s1 <= s0:
        raise SystemExit(f"no steps in the measured window; raise --seconds above --warmup ({warmup:g} s)")
    rows = [r for r in run.history_rows() if s0 < r["step"] <= s1]
    return Job(
        condition="B: Train page open" if page is not None else "A: no page open",
        steps=s1 - s0,
        seconds=t1 - t0,
        steps_per_sec=(s1 - s0) / (t1 - t0),
        images_per_sec=statistics.median(r["images_per_sec"] for r in rows),
        page=shown,
        cores=CpuMeter.cores(cpu_start, cpu_end),
    )


@dataclass
class Window:
    """One stretch of a single long job, with the Train page open or closed."""

    page_open: bool
    steps_per_sec: float
    images_per_sec: float
    cores: dict[str, float]


def interleaved(
    store: RunStore, config: RunConfig, pairs: int, seconds: float, settle: float, warmup: float,
    chromium: Chromium, server: int, url: str,
) -> list[Window]:
    """One job; the Train page is opened and closed around it in A B B A order, `seconds` per window.

    The same worker in both conditions, windows side by side: slow drift in the machine's speed
    cancels, which separate jobs cannot promise. `settle` seconds after each switch are left out, so
    the page's first load is not counted against the steady polling it is meant to measure.
    """
    run = jobs.start_job(store, config)
    meter = CpuMeter(server, run.raw_status()["pid"])
    windows: list[Window] = []
    try:
        wait_for_steps(run, warmup)
        order = [False, True, True, False] * ((pairs + 1) // 2)
        for page_open in order[: 2 * pairs]:
            page = None
            if page_open:
                page = chromium.open()
                page.goto(f"{url}/train?run={run.id}", timeout=120 * SECOND)
            time.sleep(settle)
            before, cpu_before, t0 = step_now(run), meter.snapshot(), time.monotonic()
            time.sleep(seconds)
            after, cpu_after, t1 = step_now(run), meter.snapshot(), time.monotonic()
            if page is not None:
                check_page(page, after)
                chromium.close_browser()
            rows = [r for r in run.history_rows() if before < r["step"] <= after]
            if not rows:
                raise SystemExit(f"no steps in a {seconds:g} s window; see {run.dir / 'worker.log'}")
            windows.append(Window(
                page_open, (after - before) / (t1 - t0), statistics.median(r["images_per_sec"] for r in rows),
                CpuMeter.cores(cpu_before, cpu_after),
            ))
            print(f"window {len(windows)}, page {'open' if page_open else 'closed'}: "
                  f"{windows[-1].steps_per_sec:.2f} steps/s, {windows[-1].images_per_sec:,.0f} images/s", flush=True)
    finally:
        chromium.close_browser()
        stop_and_wait(run)
    return windows


def step_now(run: Run) -> int:
    """The run's step from status.json; fails when the job is no longer running."""
    status = run.raw_status()
    if status["state"] not in ("queued", "running"):
        raise SystemExit(f"the job ended as {status['state']}: {status.get('message')}; see {run.dir / 'worker.log'}")
    return int(status.get("step") or 0)


def wait_for_steps(run: Run, warmup: float) -> None:
    """Wait for the first step (up to 300 s), then `warmup` more seconds of training."""
    deadline = time.monotonic() + 300
    while step_now(run) < 1:
        if time.monotonic() > deadline:
            raise SystemExit(f"no training step within 300 s; see {run.dir / 'worker.log'}")
        time.sleep(0.5)
    time.sleep(warmup)


def check_page(page, status_step: int) -> str:
    """The step the Train page shows now; fails when it shows an exception or no running step at all."""
    if page.locator(EXCEPTION).count():
        raise SystemExit(f"the Train page shows an exception: {page.locator(EXCEPTION).first.inner_text()[:500]}")
    text = page.get_by_test_id("stProgress").inner_text(timeout=30 * SECOND)
    found = SHOWN_STEP.search(text)
    if not found:
        raise SystemExit(f"the Train page does not show a running step (it shows '{text}'); it was not polling")
    return f"step {int(found.group(1).replace(',', '')):,} (status {status_step:,})"


# --------------------------------------------------------------------------- main


def overhead(a: float, b: float) -> str:
    return f"{(1 - b / a) * 100:+.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="pairs of jobs, one without and one with the page")
    parser.add_argument("--seconds", type=float, default=60.0, help="training seconds per job after its first step")
    parser.add_argument("--warmup", type=float, default=10.0, help="first training seconds of each job left out")
    parser.add_argument("--cold-server", action="store_true", help="do not open the Configure page first")
    parser.add_argument("--pairs", type=int, default=6, help="page-closed/page-open window pairs of one long job (0: none)")
    parser.add_argument("--window", type=float, default=20.0, help="seconds per window of the long job")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds left out after each page switch")
    args = parser.parse_args()
    if args.rounds and args.seconds <= args.warmup + 2:
        parser.error("--seconds must exceed --warmup by a few seconds")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["GAN_MAX_JOBS"] = "1"

    config = load_preset("dcgan").replace(steps=1_000_000)
    server_state = "server without TensorFlow (--cold-server)" if args.cold_server else "server after a Configure visit"
    print(f"# bench/dashboard_overhead.py: dcgan on mnist-5k, {args.rounds} rounds, {args.seconds:g} s per job "
          f"({args.warmup:g} s left out), {server_state}, {os.cpu_count()} CPUs", flush=True)
    results: list[tuple[Job, Job]] = []
    with tempfile.TemporaryDirectory(prefix="dashboard-overhead-") as tmp:
        store = RunStore(Path(tmp) / "runs")
        store.root.mkdir()
        server, chromium = None, None
        try:
            chromium = Chromium()
            chromium.open()  # fails with one clear sentence before anything else starts
            chromium.close_browser()
            server, url = start_server(store.root, Path(tmp) / "streamlit.log")
            warm_up(chromium, url, args.cold_server)
            for r in range(args.rounds):
                order = [None, chromium] if r % 2 == 0 else [chromium, None]
                done = {}
                for browser in order:
                    job = measure(store, config, args.seconds, args.warmup, browser, server.pid, url)
                    done[browser is None] = job
                    print(f"round {r + 1}, {job.condition}: {job.images_per_sec:,.0f} images/s, "
                          f"{job.steps_per_sec:.2f} steps/s, page {job.page}", flush=True)
                results.append((done[True], done[False]))
            windows = interleaved(store, config, args.pairs, args.window, args.settle, args.warmup, chromium, server.pid, url) if args.pairs else []
        finally:
            for run in store.list():
                if run.raw_status().get("state") in ("queued", "running"):
                    stop_and_wait(run)
            if chromium is not None:
                chromium.stop()
            if server is not None:
                end_group(server.pid)

    if results:
        print_rounds(results)
    if windows:
        print_windows(windows, args.window)


def print_rounds(results: list[tuple[Job, Job]]) -> None:
    print("\n| round | job | window s | steps | steps/s | median images/s | CPU cores: worker, server, browser "
          "| Train page showed at the end |")
    print("|---:|---|---:|---:|---:|---:|---|---|")
    for r, pair in enumerate(results, 1):
        for job in pair:
            cores = ", ".join(f"{job.cores[group]:.2f}" for group in ("worker", "server", "browser"))
            print(f"| {r} | {job.condition} | {job.seconds:.1f} | {job.steps:,} | {job.steps_per_sec:.2f} "
                  f"| {job.images_per_sec:,.0f} | {cores} | {job.page} |")
    a_ips = statistics.median(a.images_per_sec for a, _ in results)
    b_ips = statistics.median(b.images_per_sec for _, b in results)
    a_sps = statistics.median(a.steps_per_sec for a, _ in results)
    b_sps = statistics.median(b.steps_per_sec for _, b in results)
    per_round = [1 - b.images_per_sec / a.images_per_sec for a, b in results]
    print(f"\n| measure | A: no page | B: Train page open | overhead 1 - B/A (target <= {TARGET:.0%}) |")
    print("|---|---:|---:|---:|")
    print(f"| median images/s (history.csv) | {a_ips:,.0f} | {b_ips:,.0f} | {overhead(a_ips, b_ips)} |")
    print(f"| steps per wall-clock second | {a_sps:.2f} | {b_sps:.2f} | {overhead(a_sps, b_sps)} |")
    print(f"| images/s overhead per round | | | {', '.join(f'{o * 100:+.1f}%' for o in per_round)} |")


def print_windows(windows: list[Window], seconds: float) -> None:
    closed = [w for w in windows if not w.page_open]
    opened = [w for w in windows if w.page_open]
    pairs = [1 - b.steps_per_sec / a.steps_per_sec for a, b in zip(closed, opened)]  # A B B A: the i-th of each is adjacent
    print(f"\nOne long job, the Train page closed and open in A B B A order, {len(windows)} windows of {seconds:g} s:\n")
    print(f"| measure | page closed | page open | overhead 1 - open/closed (target <= {TARGET:.0%}) |")
    print("|---|---:|---:|---:|")
    for name, key in (("median steps per wall-clock second", "steps_per_sec"), ("median images/s (history.csv)", "images_per_sec")):
        a, b = statistics.median(getattr(w, key) for w in closed), statistics.median(getattr(w, key) for w in opened)
        print(f"| {name} | {a:,.2f} | {b:,.2f} | {overhead(a, b)} |")
    for group in ("worker", "server", "browser"):
        a, b = statistics.median(w.cores[group] for w in closed), statistics.median(w.cores[group] for w in opened)
        print(f"| CPU cores used by the {group} | {a:.3f} | {b:.3f} | |")
    print(f"| steps/s overhead per adjacent pair | | | {', '.join(f'{o * 100:+.1f}%' for o in pairs)} |")
    print(f"| **median of the pairs' steps/s overheads** | | | **{statistics.median(pairs) * 100:+.1f}%** |")


if __name__ == "__main__":
    main()
