"""Several users at once: jobs started together share GAN_MAX_JOBS slots in submission order and all
finish, and each browser session keeps its own selected run (nothing per user is cached process-wide)."""

import ast
import fcntl
import threading
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from gan_core.config import RunConfig
from gan_core.dashboard.common import get_store
from gan_core.store import jobs
from tests.waiting import APPTEST_TIMEOUT

ROOT = Path(__file__).resolve().parent.parent
TRAIN = str(ROOT / "pages/train.py")
SESSIONS, SLOTS, STEPS = 4, 2, 20
TIMEOUT = 300
CACHES = {"cache_data", "cache_resource", "lru_cache", "cache"}
PER_USER = {"session_state", "query_params", "context", "user", "selected_run_id", "select_run", "get_store"}
VALUE_TYPES = {"str", "int", "float", "bool", "tuple", "None"}


def tiny(**changes) -> RunConfig:
    base = dict(dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=STEPS, sample_every=100, checkpoint_every=100)
    return RunConfig(**(base | changes))


def queue_states(store, runs) -> list[str]:
    """Every run's state, read under the queue lock so no worker claims a slot halfway through the reading."""
    with open(store.root / ".queue.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return [jobs.job_status(run)["state"] for run in runs]
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def skipped(states: list[str]) -> int:
    """Jobs still queued ahead of the last job that has started (states in submission order).

    A worker claims a slot only when every job ahead of it fits in the free slots too, so these can only
    be jobs whose workers were slower to start than a later one's: never more than the free slots.
    """
    begun = [i for i, state in enumerate(states) if state != "queued"]
    return states[: begun[-1]].count("queued") if begun else 0


def test_jobs_started_by_four_sessions_at_once_share_two_slots_in_submission_order(job_store, monkeypatch):
    monkeypatch.setenv("GAN_MAX_JOBS", str(SLOTS))
    barrier, started, failures = threading.Barrier(SESSIONS), [], []

    def session(i: int) -> None:  # what the Configure page's Train button does
        barrier.wait()
        try:
            started.append(jobs.start_job(get_store(), tiny(name=f"session-{i}", seed=i)))
        except Exception as exc:  # reported below: a thread's exception would otherwise vanish
            failures.append(exc)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(SESSIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == [] and len(started) == SESSIONS
    runs = sorted(started, key=lambda run: run.raw_status()["queued_at"])  # the order the queue saw them in

    samples, deadline = [], time.monotonic() + TIMEOUT
    while not samples or any(state in ("queued", "running") for state in samples[-1]):
        assert time.monotonic() < deadline, f"the jobs did not all end: {samples[-1]}"
        samples.append(queue_states(job_store, runs))
        time.sleep(0.1)

    for states in samples:
        assert states.count("running") <= SLOTS, states
        assert skipped(states) <= SLOTS - states.count("running"), f"a later job took an earlier one's slot: {states}"
    assert max(states.count("running") for states in samples) == SLOTS, "two jobs should have trained together"
    assert any(states.count("queued") == SESSIONS - SLOTS for states in samples), "the rest should have waited"
    assert samples[-1] == ["finished"] * SESSIONS
    for run in runs:
        assert [int(row["step"]) for row in run.history_rows()] == list(range(1, STEPS + 1))


def test_two_browser_sessions_each_keep_their_own_run(job_store):
    for name in ("a", "b", "c"):
        job_store.create(tiny(name=name)).update_status(state="stopped", message="Stopped before training started.")
    default, mine, yours = [run.id for run in job_store.list()]  # the page opens the newest run by default
    first, second = AppTest.from_file(TRAIN, default_timeout=APPTEST_TIMEOUT), AppTest.from_file(TRAIN, default_timeout=APPTEST_TIMEOUT)
    first.run()
    second.run()
    first.selectbox[0].select(mine).run()
    second.selectbox[0].select(yours).run()
    for _ in range(2):  # each rerun of one session leaves the other's choice alone
        first.run()
        second.run()
        assert not first.exception and not second.exception
        assert (first.selectbox[0].value, first.session_state["run_id"], first.query_params["run"]) == (mine,) * 3
        assert (second.selectbox[0].value, second.session_state["run_id"], second.query_params["run"]) == (yours,) * 3

    third = AppTest.from_file(TRAIN, default_timeout=APPTEST_TIMEOUT).run()  # a new visitor sees the default, not someone's pick
    assert third.selectbox[0].value == default
    linked = AppTest.from_file(TRAIN, default_timeout=APPTEST_TIMEOUT)
    linked.query_params["run"] = yours  # a shared ?run= link opens that run
    assert linked.run().selectbox[0].value == yours


def cached_functions() -> list[tuple[str, ast.FunctionDef]]:
    """Every function of the app and the engine under st.cache_data, st.cache_resource or functools caches."""
    found = []
    for path in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "gan_core").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and any(
                name in CACHES for decorator in node.decorator_list for name in _names(decorator)
            ):
                found.append((f"{path.relative_to(ROOT)}:{node.name}", node))
    return found


def _names(node: ast.AST) -> set[str]:
    return {n.attr if isinstance(n, ast.Attribute) else n.id for n in ast.walk(node) if isinstance(n, (ast.Attribute, ast.Name))}


def test_process_wide_caches_hold_nothing_per_user():
    """Cached results are shared by every session, so a cached function may depend only on plain values
    (a config as JSON, a dataset name or content-addressed upload path) and never on a session's state."""
    cached = cached_functions()
    assert "pages/configure.py:model_summary" in dict(cached)  # the scan finds the caches there are
    for where, function in cached:
        arguments = function.args.posonlyargs + function.args.args + function.args.kwonlyargs
        kinds = {arg.arg: arg.annotation and _names(arg.annotation) for arg in arguments}
        assert all(kind and kind <= VALUE_TYPES for kind in kinds.values()), f"{where} takes more than plain values: {kinds}"
        assert not _names(function) & PER_USER, f"{where} reads per-session state"
