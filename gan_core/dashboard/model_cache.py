"""Per-session caches of loaded generators (Streamlit's session-scoped `st.cache_resource`), and of
the uploaded generator and prepared downloads (`st.session_state`).

A run's generator is cached under (run folder, checkpoint step, mtime of the checkpoint index),
so moving a slider never reloads weights while a new checkpoint is picked up. A session keeps
at most MAX_GENERATORS of them (the oldest goes first) and drops them when it disconnects; one
uploaded generator, one set of prepared downloads, the last generator's latent directions and its last
projection. Nothing here is shared between sessions.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, MutableMapping

import streamlit as st

from gan_core.generation.directions import SAMPLES, Direction, find_directions
from gan_core.generation.latent_space import latent_space
from gan_core.generation.model_io import Download, as_loaded_generator, load_generator_file, run_downloads
from gan_core.generation.projection import Projection, evaluator_for
from gan_core.generation.sampling import LoadedGenerator, checkpoint_steps, load_generator
from gan_core.store.runs import Run, RunStore

MAX_GENERATORS = 3
UPLOAD_KEY = "_gan_uploaded_generator"
SOURCE_KEY = "gen_source"  # Generate's choice between a run's checkpoint ("run") and the uploaded generator ("upload")
DOWNLOADS_KEY = "_gan_downloads"
DIRECTIONS_KEY = "_gan_directions"
PROJECTION_KEY = "_gan_projection"


def checkpoint_key(run: Run, step: int | None) -> tuple[str, int | None, int]:
    """What identifies a run's weights at a step: its folder, the step and when its checkpoints last changed."""
    index = run.checkpoints_dir / "checkpoint"
    return str(run.dir), step, index.stat().st_mtime_ns if index.exists() else 0


@st.cache_resource(scope="session", max_entries=MAX_GENERATORS, show_spinner="Loading the generator...")
def _generator(run_dir: str, step: int | None, index_mtime_ns: int) -> LoadedGenerator:
    """A run's generator at a step; a changed checkpoint index (`index_mtime_ns`) makes a new entry."""
    return load_generator(Run(Path(run_dir)), step)


def get_generator(run: Run, step: int | None = None) -> LoadedGenerator:
    """The run's generator at a step (default the newest), loaded once per checkpoint and browser session."""
    steps = checkpoint_steps(run)
    if step is None and steps:
        step = steps[-1]
    return _generator(*checkpoint_key(run, step))


def get_uploaded_generator(state: MutableMapping[str, Any], name: str, data: bytes) -> LoadedGenerator:
    """Check and load an uploaded generator `.keras` file once (by its sha256); it becomes the session's upload."""
    digest = hashlib.sha256(data).hexdigest()
    current = state.get(UPLOAD_KEY)
    if current is not None and current[0] == digest:
        return current[1]
    loaded = as_loaded_generator(load_generator_file(data, name), name)
    state[UPLOAD_KEY] = (digest, loaded)
    return loaded


def uploaded_generator(state: MutableMapping[str, Any]) -> LoadedGenerator | None:
    """The generator this session uploaded last, if any."""
    current = state.get(UPLOAD_KEY)
    return current[1] if current is not None else None


def runs_with_checkpoints(store: RunStore) -> dict[str, list[int]]:
    """Run ids (newest first) that have a checkpoint, with their checkpoint steps."""
    found = {}
    for run in store.list():
        steps = checkpoint_steps(run)
        if steps:
            found[run.id] = steps
    return found


def prepare_downloads(state: MutableMapping[str, Any], run: Run, step: int | None) -> list[Download]:
    """Build the run's download files and keep them (replacing any earlier ones) for later reruns."""
    files = run_downloads(run, step)
    state[DOWNLOADS_KEY] = (checkpoint_key(run, step), files)
    return files


def prepared_downloads(state: MutableMapping[str, Any], run: Run, step: int | None) -> list[Download] | None:
    """The files prepared for exactly this run, step and checkpoint state, if any."""
    current = state.get(DOWNLOADS_KEY)
    return current[1] if current is not None and current[0] == checkpoint_key(run, step) else None


def use_uploaded_generator(state: MutableMapping[str, Any]) -> None:
    """Make Generate open on the uploaded generator (Models' "Generate with it")."""
    state[SOURCE_KEY] = "upload"


def generator_key(loaded: LoadedGenerator) -> tuple[str, int, int]:
    """What tells this session's generators apart: the run's name, the step and the network object."""
    return loaded.config.name, loaded.step, id(loaded.model)


def latent_directions(state: MutableMapping[str, Any], loaded: LoadedGenerator) -> dict[str, Direction]:
    """The generator's attribute and principal directions, found once per generator (the last one's are kept); the
    dataset's evaluator holds an unconditional generator's class."""
    current = state.get(DIRECTIONS_KEY)
    if current is not None and current[0] == generator_key(loaded):
        return current[1]
    with st.spinner(f"Finding directions from {SAMPLES} samples..."):
        space = latent_space(loaded)
        found = find_directions(space, evaluator=None if space.conditional else evaluator_for(loaded))
    state[DIRECTIONS_KEY] = (generator_key(loaded), found)
    return found


def keep_projection(state: MutableMapping[str, Any], loaded: LoadedGenerator, projection: Projection) -> None:
    """Keep the last projection, for the Project view's reruns and as the Edit view's sample."""
    state[PROJECTION_KEY] = (generator_key(loaded), projection)


def kept_projection(state: MutableMapping[str, Any], loaded: LoadedGenerator) -> Projection | None:
    """The session's last projection into this generator, if any."""
    current = state.get(PROJECTION_KEY)
    return current[1] if current is not None and current[0] == generator_key(loaded) else None
