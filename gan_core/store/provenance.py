"""What reproduces a run besides its config: software versions, the Workbench's commit, the device, precision and command.

The trainer appends one entry to <run>/environment.json each time a worker starts or resumes the
run ("from_step" says where), so a run resumed under another TensorFlow or on another machine says
so. `summary` folds a run's entries into one value per field ("2.20.0 → 2.21.0" when a field
changed), which Compare sets side by side with the other runs'. This module imports no TensorFlow:
the trainer hands it what only TensorFlow knows (versions, devices).
"""

from __future__ import annotations

import functools
import json
import platform
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from gan_core.errors import RunError
from gan_core.store.runs import Run, atomic_write_json

FILE = "environment.json"
ROOT = Path(__file__).resolve().parents[2]
# The fields Compare shows, in order, with their labels.
FIELDS = {
    "workbench": "Workbench (git commit)",
    "python": "Python",
    "tensorflow": "TensorFlow",
    "keras": "Keras",
    "numpy": "NumPy",
    "device": "Device",
    "replicas": "Replicas",
    "precision": "Precision (dtype policy)",
    "xla": "XLA",
    "command": "Command",
    "host": "Host",
}


@functools.cache
def workbench_version(root: str = str(ROOT)) -> str:
    """The Workbench's git commit, marked when tracked files have local changes; 'unknown' outside a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return "unknown (not a git checkout)"
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not found)"
    return commit.stdout.strip() + (" with local changes" if changed.stdout.strip() else "")


def entry(versions: dict[str, str], device: str, replicas: int, precision: str, xla: bool, step: int) -> dict[str, Any]:
    """The environment of the worker starting (or resuming) a run at `step`."""
    return {
        "from_step": step,
        "workbench": workbench_version(),
        "python": platform.python_version(),
        **versions,
        "device": device,
        "replicas": replicas,
        "precision": precision,
        "xla": "on" if xla else "off",
        "command": shlex.join(getattr(sys, "orig_argv", sys.argv)),
        "host": socket.gethostname(),
    }


def record(run: Run, new: dict[str, Any]) -> None:
    """Append an entry to the run's environment.json, dropping entries from at or after its step (a resume replaces what it redoes)."""
    kept = [old for old in entries(run) if old.get("from_step", 0) < new["from_step"]]
    atomic_write_json(run.dir / FILE, [*kept, new])


def entries(run: Run) -> list[dict[str, Any]]:
    """The run's environment entries, oldest first; [] for a run made before they were recorded."""
    path = run.dir / FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"Run '{run.id}' has a broken {FILE}: {exc}.") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise RunError(f"Run '{run.id}': its {FILE} is not a list of entries.")
    return data


def summary(found: list[dict[str, Any]]) -> dict[str, str]:
    """One text per field: its value, or its values in the order the run met them ("a → b") when a resume changed it."""
    folded = {}
    for field in FIELDS:
        values = list(dict.fromkeys(str(item[field]) for item in found if field in item))
        folded[field] = " → ".join(values) if values else "not recorded"
    return folded
