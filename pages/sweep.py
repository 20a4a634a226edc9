"""Sweep: start a hyperparameter search over a preset's fields, watch its trials live, and keep the best as a preset."""

import streamlit as st

from gan_core.config import load_preset, preset_names
from gan_core.dashboard.common import get_store, select_run, start_page
from gan_core.dashboard.sweeps import (
    history_figure,
    importance_figure,
    parallel_figure,
    starting_fields,
    starting_range,
    varied_fields,
)
from gan_core.errors import GanError
from gan_core.store.presets import save_user_preset
from gan_core.sweeps.progress import best_trial, sweep_state, trials_frame
from gan_core.sweeps.spec import ON_CRASH, SEARCHES, SweepSpec, check, default_direction, objective_names, parse_dimension
from gan_core.sweeps.store import SweepStore, open_study
from gan_core.sweeps.worker import start_worker

POLL_SECONDS = 5
SWEEP_KEY = "sweep_id"
SAVED_KEY = "sweep_preset_saved"

start_page("Sweep")
store = get_store()
sweeps = SweepStore(store)
found = sweeps.list()


def new_sweep_form() -> None:
    preset = st.selectbox("Base preset", preset_names(), index=preset_names().index("dcgan"), key="sweep_preset")
    base = load_preset(preset)
    family = base.family
    fields = st.multiselect("Fields to vary", varied_fields(family), default=starting_fields(family), key=f"sweep_fields_{family}")
    ranges = {}
    for name in fields:
        ranges[name] = st.text_input(
            name, starting_range(family, name, getattr(base, name)), key=f"sweep_range_{family}_{name}",
            help="low:high for a range (add :log for a log scale) or a,b,c for choices.",
        )
    left, middle, right = st.columns(3)
    search = left.radio("Search", SEARCHES, horizontal=True, help="random draws, tpe learns from earlier trials (Optuna's TPE), grid tries every combination.")
    trials = middle.number_input("Trials", 1, 1000, 6)
    on_crash = right.radio("A crashed trial", ON_CRASH, horizontal=True, help="retry: resumed from its checkpoint; fail: marked failed.")
    unit = left.radio("Budget per trial", ("steps", "seconds"), horizontal=True)
    amount = middle.number_input(f"Training {unit} per trial", 1, 10_000_000, 300 if unit == "steps" else 60)
    objective = right.selectbox("Objective", objective_names(family), help="Quality metrics are measured at each trial's last step.")
    direction = left.radio("Direction", ("minimize", "maximize"), index=("minimize", "maximize").index(default_direction(objective)), horizontal=True)
    name = middle.text_input("Sweep name", f"{preset} sweep", max_chars=60)
    if st.button("Start sweep", type="primary", icon=":material/play_arrow:"):
        try:
            spec = SweepSpec(
                name=name, base=base.to_dict(), dimensions=tuple(parse_dimension(f"{k}={v}", base) for k, v in ranges.items()),
                search=search, trials=int(trials), budget_steps=int(amount) if unit == "steps" else 0,
                budget_seconds=int(amount) if unit == "seconds" else 0, objective=objective, direction=direction, on_crash=on_crash,
            )
            check(spec)
            sweep = sweeps.create(spec)
            start_worker(sweep, store)
        except GanError as exc:
            st.error(str(exc))
            return
        st.session_state[SWEEP_KEY] = sweep.id
        st.rerun()


with st.expander("New sweep", expanded=not found, icon=":material/add_circle:"):
    new_sweep_form()
if not found:
    st.info("No sweeps yet: choose the fields to vary above and start one. Trials train as ordinary runs, one at a time by default.")
    st.stop()

ids = [s.id for s in found]
if st.session_state.get(SWEEP_KEY) not in ids:
    st.session_state[SWEEP_KEY] = ids[0]
sweep = sweeps.get(st.selectbox("Sweep", ids, key=SWEEP_KEY))
try:
    spec, study = sweep.spec(), open_study(sweep)
except GanError as exc:
    st.error(str(exc))
    st.stop()
active = sweep_state(sweep, study) in ("running", "stopping")


@st.fragment(run_every=POLL_SECONDS if active else None)
def live_sweep(active: bool) -> None:
    """Everything that changes while the sweep works, redrawn on every tick; the tick that sees it end stops the ticks."""
    study = open_study(sweep, spec)
    state = sweep_state(sweep, study)
    table = trials_frame(sweep, study, store)
    ended = int(table["state"].isin(["complete", "failed"]).sum())
    st.progress(min(1.0, ended / spec.planned_trials()), text=f"{state}: {ended} of {spec.planned_trials()} trials ended "
                f"({spec.search} search, {spec.budget_text()} each, {spec.direction} {spec.objective})")
    controls = st.container()  # always there, so a state change never shifts the elements below
    if state == "running":
        if controls.button("Stop sweep", icon=":material/stop:", help="Running trials stop after their current step, with a checkpoint."):
            sweep.stop_path.touch()
            st.rerun()
    elif state in ("stopped", "paused"):
        if controls.button("Resume sweep", icon=":material/play_arrow:", help="Starts a worker that resumes the stopped trials and goes on."):
            start_worker(sweep, store)
            st.rerun()
    elif state == "stopping":
        controls.button("Stopping…", icon=":material/stop:", disabled=True)
    numbers = [spec.objective, *(d.field for d in spec.dimensions if d.kind == "float")]  # 1.37e-04, not 0.0001
    st.dataframe(
        table.assign(run=["./train?run=" + run_id if run_id else None for run_id in table["run"]]), hide_index=True,
        column_config={"run": st.column_config.LinkColumn("run", display_text=r"run=(.*)", width=290), "state": st.column_config.TextColumn(width="small")}
        | {name: st.column_config.NumberColumn(format="%.3g", width=None if name == spec.objective else "small") for name in numbers},
    )
    history, parallel, importance = st.tabs(["Optimization history", "Parallel coordinates", "Parameter importances"])
    history.plotly_chart(history_figure(study, spec.objective), key="sweep_history")
    parallel.plotly_chart(parallel_figure(study, spec.objective), key="sweep_parallel")
    importance.plotly_chart(importance_figure(sweep, study, spec.objective), key="sweep_importance")
    best_trial_box(best_trial(study))
    if active and state not in ("running", "stopping"):
        st.rerun()  # the whole page again, drawn the same, with no more ticks


def best_trial_box(best) -> None:
    if best is None:
        return
    run_id = best.user_attrs.get("run_id", "")
    st.subheader("Best trial")
    st.write(f"Trial #{best.number}: {spec.objective} = {best.value:.4g}, run `{run_id}`")
    st.json(best.params)
    name = st.text_input("Preset name", f"{spec.name.replace(' ', '-')}-best"[:40], key="sweep_preset_name")
    if st.button("Make preset", icon=":material/bookmark_add:", help="Saves the best trial's config as your preset, offered on Configure."):
        try:
            path = save_user_preset(name, store.get(run_id).config())
        except GanError as exc:
            st.error(str(exc))
        else:
            select_run(run_id)
            st.session_state[SAVED_KEY] = (sweep.id, f"Saved preset '{name}' ({path}). Choose it on Configure to train it again.")
    saved_for, message = st.session_state.get(SAVED_KEY, ("", ""))
    if saved_for == sweep.id:  # kept across ticks, so the confirmation does not vanish 5 s later
        st.success(message)


live_sweep(active)
