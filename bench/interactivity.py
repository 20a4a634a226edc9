"""How quickly the dashboard answers: a Generate click, Start to first step, and a training job's memory.

    python3 -m bench.interactivity [--parts grid start rss] [--repeats 30] [--starts 3] [--seconds 60] [--rss-presets dcgan tutorial-dcgan]

All on mnist-5k with the default `dcgan` preset (`load_preset("dcgan")`), in a temporary run store.

grid: a run of the preset trains `--train-steps` steps in this process to get a checkpoint.
  Then, as pages/generate.py does on every click with the generator already in its
  session cache: `model_cache.runs_with_checkpoints` + the cache key (the lookup itself is
  Streamlit's `st.cache_resource`, which needs a running session), `latents.grid_for` (64 digits)
  + `model_io.grid_png` (grid and PNG encoding), and the rest of the page's work (the `.npz`
  download, the Interpolate and Latent walk views; the page now computes only the open one). Each is timed `--repeats` times, a new seed each click:
  the median and p95. The first load and first click (weights restored, first call of the
  model) are shown apart. Target: the 64-digit grid in at most 100 ms.
  After every rerun in a process that imported Keras, Streamlit calls
  `keras.backend.clear_session()` (which drops TensorFlow's kernel cache and runs a full
  garbage collection) and then collects again (`runner.postScriptGC`). So one row times the
  grid right after `clear_session()`, and the last rows rerun the whole page in
  `streamlit.testing.v1.AppTest` (the server side of a click, Streamlit included, no
  browser), with the page script's own share, and once more after `gc.freeze()` (a what-if:
  the objects alive then are exempt from collection; the app does not do this).
start: from just before `jobs.start_job(store, config)` (what the Configure page's Train
  button calls) until status.json's "step" is at least 1, which is when the Train page's
  progress line first shows a training step (it reads it every 2 s, which is not counted).
  status.json is polled every `--poll` seconds. The breakdown comes from the same polling and
  from status.json's own "started" time (set when training begins, after the models are
  built) and the first history.csv row's images/s (which gives the first call's duration:
  tracing plus one step). Runs one after the other `--starts` times. Target: at most 15 s.
rss: a job of each of `--rss-presets` (default `dcgan`, then `tutorial-dcgan` with batch 256), each started with
  `jobs.start_job` and sampled every 0.5 s for `--seconds` (VmRSS and the kernel's peak VmHWM
  from /proc/<pid>/status), then stopped with `jobs.stop_job`. Target: peak at most 1.5 GB.

Run it on an otherwise idle machine: every figure here is wall-clock time or memory of a
process sharing the CPU with whatever else runs.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gan_core.config import RunConfig, load_preset
from gan_core.errors import RunError
from gan_core.store import jobs
from gan_core.store.runs import Run, RunStore, pid_alive

ROOT = Path(__file__).resolve().parent.parent
GRID_IMAGES = 64
GRID_TARGET_MS = 100
START_TARGET_S = 15
RSS_TARGET_GB = 1.5
GB = 1024**3
LONG = {"steps": 1_000_000}  # a job that runs until it is stopped


# --------------------------------------------------------------------------- jobs


def worker_pid(run: Run) -> int | None:
    pid = run.raw_status().get("pid")
    return pid if isinstance(pid, int) else None


def stop_and_wait(run: Run, timeout: float = 90) -> None:
    """Stop a job the way the Train page does; SIGTERM, then SIGKILL, its process group if it lingers."""
    pid = worker_pid(run)
    try:
        jobs.stop_job(run)
    except RunError:
        pass
    deadline = time.monotonic() + timeout
    while pid is not None and pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if pid is None or not pid_alive(pid):
            break
        try:
            os.killpg(pid, sig)  # the worker leads its own session (start_new_session=True)
        except ProcessLookupError:
            break
        time.sleep(5)
    if pid is not None:
        try:
            os.waitpid(pid, os.WNOHANG)  # reap our child so it leaves no zombie
        except ChildProcessError:
            pass


# --------------------------------------------------------------------------- grid


def timed_ms(fn: Callable[[int], object], repeats: int, before: Callable[[], object] | None = None) -> list[float]:
    """Milliseconds of fn(seed) for seeds 1..repeats; `before` runs untimed ahead of each call."""
    times = []
    for seed in range(1, repeats + 1):
        if before is not None:
            before()
        started = time.perf_counter()
        fn(seed)
        times.append((time.perf_counter() - started) * 1000)
    return times


def grid_times(store: RunStore, config: RunConfig, train_steps: int, repeats: int) -> list[tuple[str, str, str]]:
    """(what, median, p95) rows for a Generate click on a cached generator."""
    import keras

    from gan_core.dashboard import model_cache
    from gan_core.generation import latents, model_io
    from gan_core.generation.sampling import load_generator, samples_npz
    from gan_core.training.loop import train_run

    run = store.create(config.replace(steps=train_steps, sample_every=train_steps, checkpoint_every=train_steps))
    started = time.perf_counter()
    train_run(run)
    print(f"trained {train_steps} steps for a checkpoint in {time.perf_counter() - started:.1f} s", flush=True)

    started = time.perf_counter()
    step = model_cache.runs_with_checkpoints(store)[run.id][-1]
    loaded = load_generator(run, step)
    load_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    images, _, cols = latents.grid_for(loaded, GRID_IMAGES, 0)
    model_io.grid_png(images, cols)
    first_ms = (time.perf_counter() - started) * 1000

    def lookup(seed: int) -> None:
        # What a cache hit costs on top of Streamlit's own lookup: the checkpoint list and the cache key.
        steps = model_cache.runs_with_checkpoints(store)[run.id]
        model_cache.checkpoint_key(run, steps[-1])

    def grid(seed: int) -> bytes:
        images, _, cols = latents.grid_for(loaded, GRID_IMAGES, seed)
        return model_io.grid_png(images, cols)

    def whole_page(seed: int) -> None:
        lookup(seed)
        images, labels, cols = latents.grid_for(loaded, GRID_IMAGES, seed)
        model_io.grid_png(images, cols)
        samples_npz(images, labels)
        path, _, cols = latents.interpolation_images(loaded, seed, seed + 1, 10, True, None)
        model_io.grid_png(path, cols)
        walk, _, cols = latents.walk_images(loaded, seed, 0, -3.0, 3.0, 10, None)
        model_io.grid_png(walk, cols)

    rows = [
        ("first load: restore the checkpoint (cache miss)", f"{load_ms:.0f}", "-"),
        ("first click: 64-digit grid right after loading", f"{first_ms:.0f}", "-"),
        (f"**64-digit grid: sample + grid + PNG** (target <= {GRID_TARGET_MS} ms)", *summary(timed_ms(grid, repeats))),
        (
            "64-digit grid right after keras.backend.clear_session() (Streamlit calls it after every rerun)",
            *summary(timed_ms(grid, repeats, before=lambda: keras.backend.clear_session(free_memory=False))),
        ),
        ("cached generator lookup (runs_with_checkpoints + the cache key)", *summary(timed_ms(lookup, repeats))),
        ("all the page computes per click (lookup, grid, .npz, interpolate, walk)", *summary(timed_ms(whole_page, repeats))),
    ]
    rerun_ms, script_ms, frozen_ms = apptest_times(store, repeats)
    rows.append(("whole page rerun in AppTest (server side: Streamlit included, no browser)", *summary(rerun_ms)))
    rows.append(("  of which the page script itself", *summary(script_ms)))
    rows.append(("whole page rerun in AppTest after gc.freeze() (what-if: not what the app does)", *summary(frozen_ms)))
    return rows


# Runs the Generate page inside a timer, so a rerun's script time can be told from Streamlit's own.
TIMED_PAGE = """
import time
import streamlit as st
_started = time.perf_counter()
try:
    exec(compile(open({page!r}).read(), {page!r}, "exec"), {{"__name__": "__main__", "__file__": {page!r}}})
finally:
    st.session_state["_bench_script_ms"] = (time.perf_counter() - _started) * 1000
"""


def apptest_times(store: RunStore, repeats: int) -> tuple[list[float], list[float], list[float]]:
    """Rerun pages/generate.py after a seed change, its generator already in the session cache.

    Returns the rerun times, the page script's own times, and rerun times after `gc.freeze()`.
    """
    from streamlit.testing.v1 import AppTest

    os.environ["GAN_RUNS_DIR"] = str(store.root)
    script = store.root.parent / "timed_generate_page.py"
    script.write_text(TIMED_PAGE.format(page=str(ROOT / "pages" / "generate.py")))
    at = AppTest.from_file(str(script), default_timeout=120)
    at.run()
    if at.exception or at.error or not at.number_input(key="gen_seed"):
        raise SystemExit(f"the Generate page failed in AppTest: {[e.value for e in (*at.exception, *at.error)]}")
    script_ms = []

    def click(seed: int) -> None:
        at.number_input(key="gen_seed").set_value(seed).run()
        if at.exception:
            raise SystemExit(f"the Generate page failed in AppTest: {at.exception[0].value}")
        script_ms.append(at.session_state["_bench_script_ms"])

    rerun_ms = timed_ms(click, repeats)
    gc.freeze()
    try:
        frozen_ms = timed_ms(lambda seed: click(repeats + seed), repeats)
    finally:
        gc.unfreeze()
    return rerun_ms, script_ms[:repeats], frozen_ms


def summary(values_ms: list[float]) -> tuple[str, str]:
    return f"{statistics.median(values_ms):.0f}", f"{np.percentile(values_ms, 95):.0f}"


# --------------------------------------------------------------------------- start to first step


def time_to_first_step(store: RunStore, config: RunConfig, poll: float, timeout: float = 300) -> dict[str, float]:
    """Seconds from start_job to each milestone of one job; the job is stopped afterwards."""
    wall0 = time.time()
    t0 = time.perf_counter()
    run = jobs.start_job(store, config)
    marks = {"start_job returned": time.perf_counter() - t0}
    try:
        while "first step on disk (status step >= 1)" not in marks:
            if time.perf_counter() - t0 > timeout:
                raise SystemExit(f"no training step within {timeout:.0f} s; see {run.dir / 'worker.log'}")
            status = run.raw_status()
            now = time.perf_counter() - t0
            if status["state"] not in ("queued", "running"):
                raise SystemExit(f"the job ended as {status['state']}: {status.get('message')}; see {run.dir / 'worker.log'}")
            if status["state"] == "running":
                marks.setdefault("worker claimed its run (python up, queue lock)", now)
            if status.get("started"):
                marks.setdefault("training began (status 'started')", status["started"] - wall0)
            if (status.get("step") or 0) >= 1:
                marks["first step on disk (status step >= 1)"] = now
            time.sleep(poll)
        rows = run.history_rows()
        if rows:
            marks["first call (trace + 1 step), from history"] = config.batch_size * config.d_steps / rows[0]["images_per_sec"]
    finally:
        stop_and_wait(run)
    return marks


def import_seconds() -> float:
    """Seconds a fresh Python takes to import gan_core.training.loop (TensorFlow and Keras), as the worker does."""
    code = "import time; t = time.perf_counter(); import gan_core.training.loop; print(time.perf_counter() - t)"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise SystemExit(f"importing gan_core.training.loop failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.split()[-1])


def start_table(results: list[dict[str, float]]) -> str:
    names = list(results[0])
    lines = [
        "| milestone (s after pressing Train) | " + " | ".join(f"start {i + 1}" for i in range(len(results))) + " | median |",
        "|---|" + "---:|" * (len(results) + 1),
    ]
    for name in names:
        values = [r.get(name, float("nan")) for r in results]
        label = f"**{name}** (target <= {START_TARGET_S} s)" if name.startswith("first step") else name
        if name.startswith(("first call", "importing")):
            label = f"{name} [a duration, not a time]"
        lines.append(f"| {label} | " + " | ".join(f"{v:.2f}" for v in values) + f" | {statistics.median(values):.2f} |")
    return "\n".join(lines)


def breakdown(results: list[dict[str, float]]) -> str:
    med = {name: statistics.median(r[name] for r in results) for name in results[0]}
    claimed = med.get("worker claimed its run (python up, queue lock)", float("nan"))
    began = med.get("training began (status 'started')", float("nan"))
    first = med["first step on disk (status step >= 1)"]
    call = med.get("first call (trace + 1 step), from history", float("nan"))
    parts = [
        ("worker process start, imports, queue claim", claimed),
        ("TensorFlow import, data load, model and pipeline build", began - claimed),
        ("  of which importing gan_core.training.loop (TF, Keras), timed apart", med["importing gan_core.training.loop, timed apart"]),
        ("step-0 sample grid, first call (trace + 1 step), status write", first - began),
        ("  of which the first call", call),
    ]
    lines = ["| part (medians) | seconds |", "|---|---:|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in parts]
    return "\n".join(lines)


# --------------------------------------------------------------------------- memory


def proc_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss(store: RunStore, config: RunConfig, seconds: float) -> dict[str, float]:
    """Peak VmRSS (sampled every 0.5 s) and VmHWM of one job's worker over `seconds` from start_job."""
    run = jobs.start_job(store, config)
    pid = worker_pid(run)
    rss, hwm, step = 0, 0, 0
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            now_rss, now_hwm = proc_kb(pid, "VmRSS"), proc_kb(pid, "VmHWM")
            if now_rss is None or not pid_alive(pid):
                raise SystemExit(f"the {config.name} worker ended early: {run.status().get('message')}; see {run.dir / 'worker.log'}")
            rss, hwm = max(rss, now_rss), max(hwm, now_hwm or 0)
            time.sleep(0.5)
        status = run.raw_status()
        if status.get("state") != "running" or not status.get("step"):
            raise SystemExit(f"the {config.name} job did not train within {seconds:.0f} s; raise --seconds")
        step = int(status["step"])
        hwm = max(hwm, proc_kb(pid, "VmHWM") or 0)
    finally:
        stop_and_wait(run)
    return {"rss": rss * 1024 / GB, "hwm": hwm * 1024 / GB, "step": step}


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=("grid", "start", "rss"), default=["grid", "start", "rss"])
    parser.add_argument("--repeats", type=int, default=30, help="Generate clicks timed")
    parser.add_argument("--train-steps", type=int, default=10, help="steps trained for the Generate checkpoint")
    parser.add_argument("--starts", type=int, default=3, help="times Start is pressed")
    parser.add_argument("--poll", type=float, default=0.02, help="status.json polling interval, seconds")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long each memory job runs")
    parser.add_argument("--rss-presets", nargs="+", default=["dcgan", "tutorial-dcgan"], help="the presets whose jobs' memory is measured")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["GAN_MAX_JOBS"] = "1"

    dcgan = load_preset("dcgan")
    print(f"# bench/interactivity.py: preset dcgan on {dcgan.dataset}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="interactivity-") as tmp:
        store = RunStore(Path(tmp) / "runs")
        if "grid" in args.parts:
            rows = grid_times(store, dcgan, args.train_steps, args.repeats)
            print(f"\n### Generate page, one click ({args.repeats} clicks, new seed each)\n")
            print("| what | median ms | p95 ms |\n|---|---:|---:|")
            print("\n".join(f"| {what} | {median} | {p95} |" for what, median, p95 in rows), flush=True)
        if "start" in args.parts:
            config = dcgan.replace(**LONG)
            results = []
            for i in range(args.starts):
                results.append(time_to_first_step(store, config, args.poll))
                results[-1]["importing gan_core.training.loop, timed apart"] = import_seconds()
                print(f"start {i + 1}: first step after {results[-1]['first step on disk (status step >= 1)']:.2f} s", flush=True)
            print(f"\n### Train pressed to first training step (polled every {args.poll * 1000:.0f} ms)\n")
            print(start_table(results) + "\n\n" + breakdown(results), flush=True)
        if "rss" in args.parts:
            lines = []
            for preset in args.rss_presets:
                config = load_preset(preset).replace(**LONG)
                found = peak_rss(store, config, args.seconds)
                lines.append(
                    f"| {preset} (batch {config.batch_size}) | {found['rss']:.2f} | {found['hwm']:.2f} | {found['step']:,} |"
                )
                print(f"{preset}: peak VmHWM {found['hwm']:.2f} GB", flush=True)
            print(f"\n### Training job memory over {args.seconds:g} s (target <= {RSS_TARGET_GB} GB)\n")
            print("| job | peak VmRSS sampled, GB | VmHWM, GB | steps reached |\n|---|---:|---:|---:|")
            print("\n".join(lines))


if __name__ == "__main__":
    main()
