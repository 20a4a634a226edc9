"""Layering: the run store, the job queue, the pages' run tables and the generation modules the pages import read runs
(their checkpoint steps too) without importing TensorFlow."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "legacy_runs" / "cgan"

PROBE = f"""
import shutil, sys, tempfile
from pathlib import Path
from gan_core.dashboard import compare, model_cache
from gan_core.generation.sampling import checkpoint_steps
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
assert checkpoint_steps(run) == [2] and model_cache.runs_with_checkpoints(store) == {{"cgan": [2]}}
print(sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras")))
"""


def test_reading_runs_for_the_pages_imports_no_tensorflow():
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def module_imports() -> dict[str, set[str]]:
    """Each gan_core module and the gan_core modules it imports, at its top or inside a function (not for type checking)."""
    import ast

    def nodes(tree):
        for node in ast.iter_child_nodes(tree):
            if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
                continue
            yield node
            yield from nodes(node)

    graph = {}
    for path in (ROOT / "gan_core").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found = set()
        for node in nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gan_core"):
                found |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name.startswith("gan_core")}
        graph[name] = found
    return {name: {m for m in found if m in graph and m != name} for name, found in graph.items()}


def test_gan_core_has_no_import_circles():
    graph = module_imports()
    assert "gan_core.data.datasets" in graph and "gan_core.families.adversarial" in graph
    done, path = set(), []

    def visit(name):
        assert name not in path, f"import circle: {' -> '.join(path[path.index(name):] + [name])}"
        if name in done:
            return
        path.append(name)
        for imported in graph[name]:
            visit(imported)
        path.pop()
        done.add(name)

    for name in graph:
        visit(name)


def test_only_the_dashboard_package_and_the_pages_import_streamlit():
    importers = {
        str(path.relative_to(ROOT)) for path in ROOT.rglob("*.py")
        if "streamlit" in path.read_text() and ("import streamlit" in path.read_text() or "from streamlit" in path.read_text())
        and path.parts[len(ROOT.parts)] in ("gan_core",)
    }
    assert importers and all(path.startswith("gan_core/dashboard/") for path in importers), importers
