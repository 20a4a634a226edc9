"""The run store: one folder per run, the single source of truth for every page and command.

    runs/<run_id>/config.json     the RunConfig
                  status.json     state, step, pid, times, dataset actually used
                  history.csv     one row per training step (appended, see history_rows)
                  metrics.csv     cheap quality metrics every `eval_every` steps (appended the same way);
                                  status.json's `quality_floor` holds the real-vs-real Fréchet distance
                                  at the same N (`quality_n`), the line a perfect generator would reach
                  samples/        fixed-seed sample grids, step_000050.png ...
                  checkpoints/    tf.train.CheckpointManager files
                  exports/        generator.keras and other exports

Whole-file writes go through a temp file in the same folder and `os.replace`, so a reader
never sees half a file. history.csv and metrics.csv are appended line by line; readers drop
a trailing partial line, and a resume cuts them back to the restored checkpoint's step.
This module imports no TensorFlow, so the dashboard can read runs cheaply.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from gan_core.config import RunConfig
from gan_core.errors import ConfigError, RunError
from gan_core.history_metrics import Metric, from_status, history_columns

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
STATES = ("queued", "running", "finished", "stopped", "diverged", "crashed")
ACTIVE_STATES = ("queued", "running")
METRICS_COLUMNS = ("step", "frechet_distance", "classes_covered", "class_kl")
CLASS_COLUMNS = ("classes_covered", "class_kl")  # empty for unlabelled datasets


def default_runs_dir() -> Path:
    """`GAN_RUNS_DIR` when set, else ./runs."""
    return Path(os.environ.get("GAN_RUNS_DIR") or "runs")


# ---- atomic writes ----------------------------------------------------------------------
def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a whole file so readers see the old or the new content, never a mix."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_error(what: str, exc: BaseException) -> RunError:
    """One sentence for a failed write: an OSError, or a TensorFlow error ending in the OS reason ('...; File too large [Op:SaveV2]')."""
    if isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror
    else:
        text = re.sub(r"\{\{.*?\}\}|\[Op:\w+\]", "", str(exc)).strip()
        reason = text.splitlines()[-1].rsplit(";", 1)[-1].strip().rstrip(".") if text else type(exc).__name__
    return RunError(f"Could not write {what}: {reason}.")


# ---- run ids ----------------------------------------------------------------------------
def validate_run_id(run_id: str) -> str:
    """Return the id, or raise RunError if it could name anything outside the store."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id) or ".." in run_id:
        raise RunError(
            f"'{run_id}' is not a valid run id: use letters, digits, '-', '_' and '.', "
            "starting with a letter or digit, at most 80 characters."
        )
    return run_id


def new_run_id(config: RunConfig) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", config.name or config.family).strip("-")[:30]
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{slug or 'run'}-{secrets.token_hex(2)}"


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


# ---- one run ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """A run folder; every accessor reads the disk afresh."""

    dir: Path

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def config_path(self) -> Path:
        return self.dir / "config.json"

    @property
    def status_path(self) -> Path:
        return self.dir / "status.json"

    @property
    def history_path(self) -> Path:
        return self.dir / "history.csv"

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.csv"

    @property
    def samples_dir(self) -> Path:
        return self.dir / "samples"

    @property
    def checkpoints_dir(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def exports_dir(self) -> Path:
        return self.dir / "exports"

    @property
    def stop_path(self) -> Path:
        return self.dir / "STOP"

    def config(self) -> RunConfig:
        try:
            return RunConfig.from_file(self.config_path)
        except ConfigError as exc:
            raise RunError(f"Run '{self.id}' has a broken config.json: {exc}") from None

    def raw_status(self) -> dict[str, Any]:
        try:
            data = json.loads(self.status_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"Run '{self.id}' has no status.json.") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise RunError(f"Run '{self.id}' has a broken status.json: {exc}.") from None
        if not isinstance(data, dict) or data.get("state") not in STATES:
            raise RunError(f"Run '{self.id}' has a status.json without a valid state.")
        return data

    def status(self) -> dict[str, Any]:
        """The stored status, with a running run whose worker is gone reported as crashed."""
        data = self.raw_status()
        if data["state"] == "running" and data.get("host") == socket.gethostname():
            pid = data.get("pid")
            if isinstance(pid, int) and not pid_alive(pid):
                data["state"] = "crashed"
                data["message"] = "The training process ended without saying why (killed or crashed); resume continues from the last checkpoint."
        return data

    def update_status(self, **fields: Any) -> dict[str, Any]:
        """Merge fields into status.json atomically; only the worker that owns the run calls this."""
        try:
            data = self.raw_status()
        except RunError:
            data = {}
        data.update(fields, updated=time.time())
        atomic_write_json(self.status_path, data)
        return data

    def metrics(self) -> tuple[Metric, ...]:
        """The named scalars the run's family declared (status.json); history.csv has one column each."""
        try:
            return from_status(self.raw_status())
        except RunError:
            return from_status({})

    def history_columns(self) -> tuple[str, ...]:
        return history_columns(self.metrics())

    def append_history(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append rows to history.csv, flushed and fsynced."""
        append_rows(self.history_path, self.history_columns(), rows)

    def history_frame(self) -> pd.DataFrame:
        """Complete rows of history.csv, one float column per history column (see read_frame)."""
        return read_frame(self.history_path, self.history_columns())

    def history_rows(self) -> list[dict[str, float]]:
        """Complete rows of history.csv as dicts (see read_frame)."""
        return self.history_frame().to_dict("records")

    def history_tail(self, n: int) -> list[dict[str, float]]:
        """The last n complete rows of history.csv, reading only the end of the file: what a polling page needs."""
        return read_tail(self.history_path, self.history_columns(), n).to_dict("records")

    def truncate_history(self, last_step: int) -> None:
        """Keep only history rows with step <= last_step (after restoring that checkpoint)."""
        truncate_rows(self.history_path, self.history_columns(), last_step)

    def append_metrics(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append quality rows (METRICS_COLUMNS) to metrics.csv, flushed and fsynced."""
        append_rows(self.metrics_path, METRICS_COLUMNS, rows)

    def metrics_rows(self) -> list[dict[str, float | None]]:
        """Complete rows of metrics.csv (class columns None for unlabelled data); [] when there is none."""
        return read_rows(self.metrics_path, METRICS_COLUMNS, optional=CLASS_COLUMNS)

    def truncate_metrics(self, last_step: int) -> None:
        """Keep only quality rows with step <= last_step; a run without metrics.csv is left without one."""
        if self.metrics_path.exists():
            truncate_rows(self.metrics_path, METRICS_COLUMNS, last_step, optional=CLASS_COLUMNS)

    def sample_paths(self) -> list[Path]:
        return sorted(self.samples_dir.glob("step_*.png"))

    def request_stop(self) -> None:
        """Ask the worker to stop at its next step (it saves a checkpoint first)."""
        atomic_write_text(self.stop_path, f"{time.time()}\n")

    def stop_requested(self) -> bool:
        return self.stop_path.exists()


# ---- appended CSV files (history.csv, metrics.csv) ----------------------------------------
def append_rows(path: Path, columns: tuple[str, ...], rows: Iterable[dict[str, Any]]) -> None:
    """Append rows, flushed and fsynced, writing the header for a new file; missing values stay empty."""
    new_file = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        if new_file:
            writer.writeheader()
        for row in rows:
            writer.writerow({k: v for k, v in row.items() if v is not None})
        handle.flush()
        os.fsync(handle.fileno())


def read_rows(path: Path, columns: tuple[str, ...], optional: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Complete rows as floats (empty `optional` cells as None); a partial last line or a row with a bad value is dropped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        try:
            rows.append({k: _parse(k, v, optional) for k, v in row.items() if k in columns})
        except (TypeError, ValueError):
            continue
    return rows


def unreadable_reason(prefix: str | Path, exc: BaseException) -> str:
    """Why a checkpoint could not be restored, in a few words: its error type, or that its files are gone."""
    return type(exc).__name__ if os.path.exists(f"{prefix}.index") else "its files are missing"


def read_frame(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Complete rows as float columns; a partial last line or a row with a bad value is dropped.

    The C parser reads a long history ten times faster than the csv module, which matters to a page
    that polls it. A cell written as nan stays NaN (a diverged step); a cell that is no number drops its row.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return _empty_frame(columns)
    return _parse_frame(data, columns)


def read_tail(path: Path, columns: tuple[str, ...], n: int) -> pd.DataFrame:
    """The last n complete rows (see read_frame), reading the end of the file and not all of it."""
    try:
        with open(path, "rb") as handle:
            header = handle.readline()
            size = handle.seek(0, os.SEEK_END)
            chunk = max(4096, n * 256)
            while True:
                start = max(len(header), size - chunk)
                handle.seek(start)
                data = handle.read(size - start)
                if start > len(header):  # the chunk begins inside a line: drop that line's end
                    cut = data.find(b"\n")
                    data = data[cut + 1:] if cut >= 0 else b""
                frame = _parse_frame(header + data, columns)
                if len(frame) >= n or start == len(header):
                    return frame.tail(n).reset_index(drop=True)
                chunk *= 4
    except FileNotFoundError:
        return _empty_frame(columns)


def _parse_frame(data: bytes, columns: tuple[str, ...]) -> pd.DataFrame:
    data = data[: data.rfind(b"\n") + 1]
    try:
        cells = pd.read_csv(
            io.BytesIO(data), keep_default_na=False, na_values=["nan", "-nan"], on_bad_lines="skip", low_memory=False,
            encoding="utf-8", encoding_errors="replace",
        )
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        return _empty_frame(columns)
    cells = cells.reindex(columns=list(columns))
    numbers = cells.apply(pd.to_numeric, errors="coerce")
    bad = (numbers.isna() & cells.notna()).any(axis=1)
    return numbers[~bad].astype("float64").reset_index(drop=True)


def _empty_frame(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype="float64") for column in columns})


def truncate_rows(path: Path, columns: tuple[str, ...], last_step: int, optional: tuple[str, ...] = ()) -> None:
    """Rewrite the file atomically with only the rows whose step <= last_step."""
    rows = [r for r in read_rows(path, columns, optional) if r["step"] <= last_step]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _compact(k, v) for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())


def _parse(key: str, value: str | None, optional: tuple[str, ...]) -> float | None:
    return None if value == "" and key in optional else float(value)


def _compact(key: str, value: float | None) -> Any:
    if value is None:
        return ""
    return int(value) if key in ("step", "epoch", "classes_covered") else value


# ---- the store --------------------------------------------------------------------------
class RunStore:
    """All runs under one root folder."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_runs_dir()

    def create(self, config: RunConfig) -> Run:
        """Make the run's folder whole under a hidden name, then rename it: list() never sees a run without status."""
        self.root.mkdir(parents=True, exist_ok=True)
        run_dir = self.root / new_run_id(config)
        staging = Run(self.root / f".{run_dir.name}.creating")
        staging.dir.mkdir()
        try:
            for sub in (staging.samples_dir, staging.checkpoints_dir, staging.exports_dir):
                sub.mkdir()
            atomic_write_text(staging.config_path, config.to_json())
            atomic_write_json(staging.status_path, {"state": "queued", "step": 0, "created": time.time()})
            staging.dir.rename(run_dir)
        except BaseException:  # a full disk: leave no half-made run behind
            shutil.rmtree(staging.dir, ignore_errors=True)
            raise
        return Run(run_dir)

    def get(self, run_id: str) -> Run:
        run = Run(self.root / validate_run_id(run_id))
        if not run.dir.is_dir():
            raise RunError(f"No run '{run_id}' in {self.root}.")
        return run

    def list(self) -> list[Run]:
        """Runs newest first (run ids start with their creation time)."""
        if not self.root.is_dir():
            return []
        found = [Run(p) for p in self.root.iterdir() if p.is_dir() and RUN_ID_PATTERN.match(p.name)]
        return sorted(found, key=lambda r: r.id, reverse=True)

    def delete(self, run_id: str) -> None:
        run = self.get(run_id)
        if run.status()["state"] == "running":
            raise RunError(f"Run '{run_id}' is still training; stop it before deleting it.")
        shutil.rmtree(run.dir)


def export_zip(run: Run, out_path: str | Path) -> Path:
    """Zip the run (config, status, history, samples, checkpoints, exports) atomically."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(run.dir.rglob("*")):
                if path.is_file() and not path.name.startswith(".") and path != run.stop_path:
                    archive.write(path, f"{run.id}/{path.relative_to(run.dir)}")
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path
