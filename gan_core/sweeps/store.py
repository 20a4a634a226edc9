"""Sweeps on disk and in Optuna: `<runs>/.sweeps/<sweep_id>/` and the study that holds the trials.

The study is the source of truth: it holds the spec (a study user attribute) and every trial, so a
worker on another machine needs only the sweep id and the storage URL. By default the storage is a
journal file in the sweep's folder (no server); `postgresql://...` (or any SQLAlchemy URL) shares it
between machines. The folder keeps `sweep.json` (id, storage, spec), a `STOP` file while the user
stops it, and `workers/<host>-<pid>`, touched by each live worker, for the page's state line.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gan_core.errors import ConfigError, RunError
from gan_core.store.runs import RunStore, atomic_write_json, pid_alive, validate_run_id
from gan_core.sweeps.spec import SweepSpec

SWEEPS_FOLDER = ".sweeps"  # hidden, so the run store and the runs table never take it for a run
JOURNAL = "study.log"
STALE_SECONDS = 120.0  # a worker (or trial) whose heartbeat is older than this is taken for dead


@dataclass(frozen=True)
class Sweep:
    """A sweep folder; every accessor reads the disk afresh."""

    dir: Path

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def stop_path(self) -> Path:
        return self.dir / "STOP"

    def record(self) -> dict[str, Any]:
        try:
            return json.loads((self.dir / "sweep.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunError(f"Sweep '{self.id}' cannot be read (its sweep.json: {exc}).") from None

    def spec(self) -> SweepSpec:
        return SweepSpec.from_dict(self.record()["spec"])

    @property
    def storage(self) -> str:
        """The Optuna storage URL, or '' for the journal file in this folder."""
        return self.record().get("storage", "")

    def stop_requested(self) -> bool:
        return self.stop_path.exists()

    def heartbeat(self, pid: int | None = None) -> None:
        """Mark this process (or a worker just started by it, so the page reads the sweep as running at once) as live."""
        folder = self.dir / "workers"
        folder.mkdir(exist_ok=True)
        (folder / f"{socket.gethostname()}-{pid or os.getpid()}").write_text(str(time.time()))

    def leave(self) -> None:
        (self.dir / "workers" / f"{socket.gethostname()}-{os.getpid()}").unlink(missing_ok=True)

    def live_workers(self) -> list[str]:
        """The workers that beat lately (on this host: whose process is alive)."""
        folder, host, now = self.dir / "workers", socket.gethostname(), time.time()
        live = []
        for path in sorted(folder.glob("*")) if folder.is_dir() else []:
            name, _, pid = path.name.rpartition("-")
            fresh = now - path.stat().st_mtime < STALE_SECONDS
            if (pid_alive(int(pid)) if name == host and pid.isdigit() else fresh):
                live.append(path.name)
        return live


class SweepStore:
    """The sweeps of one run store."""

    def __init__(self, runs: RunStore) -> None:
        self.runs = runs
        self.root = runs.root / SWEEPS_FOLDER

    def create(self, spec: SweepSpec, storage: str = "") -> Sweep:
        """A new sweep folder and its study, with the spec in both."""
        check_storage(storage)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", spec.name).strip("-")[:30] or "sweep"
        sweep = Sweep(self.root / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}-{secrets.token_hex(2)}")
        sweep.dir.mkdir(parents=True)
        try:
            atomic_write_json(sweep.dir / "sweep.json", {"id": sweep.id, "storage": storage, "created": time.time(), "spec": spec.to_dict()})
            open_study(sweep, spec).set_user_attr("spec", spec.to_dict())
        except BaseException:  # an unreachable storage, a full disk: no half-made sweep is left behind
            shutil.rmtree(sweep.dir, ignore_errors=True)
            raise
        return sweep

    def join(self, sweep_id: str, storage: str) -> Sweep:
        """This machine's folder for a sweep created elsewhere in a shared storage (what sweep-worker on another host does)."""
        validate_run_id(sweep_id)
        sweep = Sweep(self.root / sweep_id)
        if (sweep.dir / "sweep.json").exists():
            return sweep
        check_storage(storage)
        import optuna

        try:
            study = optuna.load_study(study_name=sweep_id, storage=database_storage(storage))
        except KeyError:
            raise RunError(f"No sweep '{sweep_id}' in the storage {redacted(storage)}.") from None
        sweep.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(sweep.dir / "sweep.json", {"id": sweep_id, "storage": storage, "created": time.time(), "spec": study.user_attrs["spec"]})
        return sweep

    def get(self, sweep_id: str) -> Sweep:
        sweep = Sweep(self.root / validate_run_id(sweep_id))
        if not (sweep.dir / "sweep.json").is_file():
            raise RunError(f"No sweep '{sweep_id}' in {self.root}.")
        return sweep

    def list(self) -> list[Sweep]:
        """Sweeps newest first."""
        found = [Sweep(p) for p in self.root.glob("*") if (p / "sweep.json").is_file()] if self.root.is_dir() else []
        return sorted(found, key=lambda s: s.id, reverse=True)


def check_storage(storage: str) -> None:
    """'' (the journal file) or a database URL such as postgresql://user:password@host/db."""
    if storage and not re.match(r"^[a-z][a-z0-9+]*://", storage):
        raise ConfigError(f"--storage must be a database URL such as postgresql://user:password@host/db; got '{redacted(storage)}'.")


def redacted(storage: str) -> str:
    """A storage URL with its password hidden, for messages and pages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", storage)[:120]


def driver_url(storage: str) -> str:
    """A PostgreSQL URL pinned to the psycopg driver that requirements.txt installs (SQLAlchemy 1.4 would pick psycopg2)."""
    return re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", storage)


def open_study(sweep: Sweep, spec: SweepSpec | None = None):
    """The sweep's Optuna study, created on first use, with its sampler (seeded) and direction."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = spec or sweep.spec()
    return optuna.create_study(
        study_name=sweep.id, storage=_storage(sweep), sampler=_sampler(spec), direction=spec.direction, load_if_exists=True,
    )


def _storage(sweep: Sweep):
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if not sweep.storage:
        return JournalStorage(JournalFileBackend(str(sweep.dir / JOURNAL)))
    return database_storage(sweep.storage)


def database_storage(url: str):
    """Optuna's storage in a database; a missing driver, a refused connection or a bad URL is one sentence."""
    from optuna.storages import RDBStorage

    try:
        return RDBStorage(driver_url(url), engine_kwargs={"pool_pre_ping": True})
    except Exception as exc:
        raise RunError(f"Cannot open the sweep storage {redacted(url)}: {str(exc).splitlines()[0][:200]}") from None


def _sampler(spec: SweepSpec):
    """Grid, TPE or random; seeded from the spec and this process, so two workers of one sweep draw different trials."""
    import optuna

    seed = (spec.seed * 1_000_003 + os.getpid()) % 2**32
    if spec.search == "grid":
        return optuna.samplers.GridSampler({d.field: list(d.grid()) for d in spec.dimensions}, seed=seed)
    if spec.search == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(5, max(1, spec.trials // 3)))
    return optuna.samplers.RandomSampler(seed=seed)
