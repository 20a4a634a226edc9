"""Fixtures shared by several test modules."""

import os

import pytest

# On a GPU machine this process and the workers it starts (jobs, CLI subprocesses, which inherit os.environ) share the GPU:
# each must take GPU memory as it needs it, as configure_gpus asks, even when a test ran TensorFlow before any Trainer did.
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")


@pytest.fixture(autouse=True)
def no_background_tensorflow_import(monkeypatch):
    """AppTest gives pages a Streamlit runtime, so the router would start the dashboard server's background import
    of TensorFlow (gan_core.dashboard.preload) in the test process. A test process imports TensorFlow itself: that
    thread would only race the test's own imports and hold the interpreter lock while a page runs (in CI, beside
    three other test processes on 2 cores, Home's 0.2-s AppTest run passed its 60-s timeout). test_navigation
    tests the import in a process of its own; a test may still set `preload.start` back."""
    from gan_core.dashboard import preload

    monkeypatch.setattr(preload, "start", lambda: False)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """One evaluator cache for the whole test session, so the mnist-5k classifier is trained once."""
    path = tmp_path_factory.getbasetemp() / "evaluator-cache"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def job_store(tmp_path, monkeypatch):
    """A run store under tmp_path for tests that launch worker jobs; no worker outlives the test."""
    import os
    import signal

    from gan_core.store.runs import RunStore, pid_alive

    monkeypatch.setenv("GAN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GAN_MAX_JOBS", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    store = RunStore(tmp_path / "runs")
    yield store
    for run in store.list():  # never leave a worker training after a failed test
        pid = run.raw_status().get("pid")
        if isinstance(pid, int) and pid != os.getpid() and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def deferred_downloads(monkeypatch):
    """The callables of the download buttons a page builds on click (`data=callable`), by file name: call one to get the file."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    found = {}
    register = MediaFileManager.add_deferred

    def record(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        found[file_name] = data_callable
        return register(self, data_callable, mimetype, coordinates, file_name=file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    return found


@pytest.fixture
def evaluator_env(cache_dir, monkeypatch, tmp_path):
    """A runs folder whose runs measure quality with the session's evaluator; no training worker outlives the test."""
    import json
    import os
    import signal

    from gan_core.store.runs import pid_alive

    monkeypatch.setenv("GAN_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("GAN_EVALUATOR_EPOCHS", "1")
    monkeypatch.setenv("GAN_MAX_JOBS", "1")
    yield tmp_path / "runs"
    for status in tmp_path.glob("*/*/status.json"):  # every runs folder of the test (a second "machine" too)
        pid = json.loads(status.read_text()).get("pid")
        if isinstance(pid, int) and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
