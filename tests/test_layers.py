"""Layering: the run store, the job queue and the pages' run tables read runs without importing TensorFlow."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "legacy_runs" / "cgan"

PROBE = f"""
import shutil, sys, tempfile
from pathlib import Path
from gan_core.dashboard import compare
from gan_core.store import jobs
from gan_core.dashboard import runs_table as ui_runs
from gan_core.store.runs import RunStore
root = Path(tempfile.mkdtemp()) / "runs"
shutil.copytree({str(FIXTURE)!r}, root / "cgan")
store = RunStore(root)
run = store.get("cgan")
table = ui_runs.runs_table(store)
view = jobs.job_state(run)
assert list(table["model"]) == ["dcgan conditional"] and "G loss" in table.columns, table
assert view.headline[0][0] == "G loss" and len(run.history_frame()) == 2
assert "G loss (last)" in compare.final_figures({{"cgan": run}}).columns
assert run.config().family == "dcgan" and run.config().latent_dim == 4
print(sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras")))
"""


def test_reading_runs_for_the_pages_imports_no_tensorflow():
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
