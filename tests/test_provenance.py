"""What a run records besides its config to be reproduced: the Workbench's commit (marked when changed locally),
the environment entries a start and a resume append, and how Compare folds a changed field."""

import json
import shlex
import subprocess
import sys

import pytest

from gan_core.errors import RunError
from gan_core.store import provenance
from gan_core.store.runs import RunStore
from tests.test_page_compare import TINY


def _git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def test_the_workbench_version_is_its_commit_marked_when_tracked_files_changed(tmp_path):
    assert provenance.workbench_version(str(tmp_path)) == "unknown (not a git checkout)"
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.py").write_text("x = 1\n")
    _git(repo, "add", "a.py")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "one")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert provenance.workbench_version(str(repo)) == commit and len(commit) == 40
    (repo / "a.py").write_text("x = 2\n")
    (repo / "untracked.txt").write_text("runs are not code\n")
    provenance.workbench_version.cache_clear()
    assert provenance.workbench_version(str(repo)) == f"{commit} with local changes"


def test_a_resume_appends_an_entry_and_replaces_those_it_redoes_and_compare_folds_changes(tmp_path):
    run = RunStore(tmp_path).create(TINY)
    base = provenance.entry({"tensorflow": "2.21.0", "keras": "3.15.1", "numpy": "2.0"}, "Some CPU", 1, "float32", False, 0)
    assert set(provenance.FIELDS) <= set(base) and base["xla"] == "off" and base["command"] == shlex.join(sys.orig_argv)
    provenance.record(run, base)
    provenance.record(run, base | {"from_step": 6, "tensorflow": "2.22.0"})
    provenance.record(run, base | {"from_step": 9, "host": "other"})
    provenance.record(run, base | {"from_step": 6, "tensorflow": "2.22.0", "replicas": 2})  # resumed from 6 again
    found = provenance.entries(run)
    assert [e["from_step"] for e in found] == [0, 6] and found[1]["replicas"] == 2
    folded = provenance.summary(found)
    assert folded["tensorflow"] == "2.21.0 → 2.22.0" and folded["replicas"] == "1 → 2" and folded["device"] == "Some CPU"
    assert provenance.summary([])["tensorflow"] == "not recorded"


def test_a_broken_environment_file_is_one_sentence(tmp_path):
    run = RunStore(tmp_path).create(TINY)
    (run.dir / provenance.FILE).write_text("{not json")
    with pytest.raises(RunError, match=rf"^Run '{run.id}' has a broken environment\.json: "):
        provenance.entries(run)
    (run.dir / provenance.FILE).write_text(json.dumps({"a": 1}))
    with pytest.raises(RunError, match=r"its environment\.json is not a list of entries\.$"):
        provenance.entries(run)
