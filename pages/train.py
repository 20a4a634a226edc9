"""Train: watch a run train live, stop or resume it, and scrub through its sample grids."""

import streamlit as st

from gan_core.dashboard import charts, report
from gan_core.dashboard.common import get_store, page_link, run_picker, start_page
from gan_core.errors import GanError
from gan_core.history_metrics import groups as metric_groups
from gan_core.store import jobs

POLL_SECONDS = 5  # state, progress, the latest losses and the newest sample grid
CHART_SECONDS = 10  # charts: redrawing a chart costs the browser CPU the job needs (an image costs next to nothing)

start_page("Train")
store = get_store()
runs = store.list()
if not runs:
    st.info("No runs yet. Configure a run and start it on the Configure page; it trains here.")
    page_link("pages/configure.py", label="Configure a run", icon=":material/tune:")
    st.stop()

run = store.get(run_picker([run.id for run in runs], key="train_run"))

try:
    polling = jobs.is_active(run)
except GanError as exc:
    st.error(str(exc))
    st.stop()


def quality_tab(run) -> None:
    metric_rows = run.metrics_rows()
    try:
        status, eval_every = run.raw_status(), run.config().eval_every
    except GanError as exc:
        st.error(str(exc))
        return
    if metric_rows:
        st.plotly_chart(charts.quality_figure(metric_rows, status.get("quality_floor")))
    st.caption(charts.quality_caption(eval_every, status.get("quality_n"), bool(metric_rows)))


def recorded_phases(run) -> list[dict]:
    """The stages a growing run has recorded (ProGAN), [] for others or an unreadable status (live_status says why)."""
    try:
        return run.raw_status().get("phases") or []
    except GanError:
        return []


@st.fragment(run_every=POLL_SECONDS if polling else None)
def live_status(polling: bool) -> None:
    try:
        view = jobs.job_state(run)
    except GanError as exc:
        st.error(str(exc))
        return
    if view.active != polling:
        st.rerun()

    if view.active:
        if st.button(
            "Stopping…" if view.stopping else "Stop", icon=":material/stop:", disabled=view.stopping,
            help="A queued run stops at once; a running one after its current step, with a checkpoint.",
        ):
            jobs.stop_job(run)
            st.rerun()
    elif view.resumable:
        changes = {}
        if view.state == "finished":
            config = run.config()
            unit = jobs.schedule_unit(config)
            amount = st.number_input(f"More {unit} to train", min_value=1, value=1 if unit == "epochs" else 500, step=1)
            changes = jobs.more_training(config, int(amount))
        if st.button("Resume", icon=":material/play_arrow:", help="Continues from the last checkpoint in a new worker."):
            try:
                jobs.resume_job(store, run.id, changes)
            except GanError as exc:
                st.error(str(exc))
            else:
                st.rerun()

    st.progress(view.progress, text=jobs.progress_text(view))
    state, speed, *values = st.columns(2 + len(view.headline))
    state.metric("State", "stopping" if view.stopping else view.state)
    speed.metric("Images/s", f"{view.images_per_sec:,.0f}" if view.images_per_sec is not None else "-")
    for column, (label, value) in zip(values, view.headline):
        column.metric(label, f"{value:.3f}" if value is not None else "-")
    for warning in view.warnings:
        (st.error if warning.level == "error" else st.warning)(warning.text)
    if view.state == "diverged":
        page_link("pages/configure.py", label="Configure a new run with lower learning rates", icon=":material/tune:")
    if view.message and not view.warnings:
        st.caption(view.message)
    if view.state == "crashed":
        with st.expander("Worker log"):
            st.code(jobs.log_tail(run) or "(empty)", language=None)


@st.fragment(run_every=CHART_SECONDS if polling else None)
def live_charts() -> None:
    history = run.history_frame()
    phases = recorded_phases(run)
    groups = metric_groups(run.metrics())
    names = list(groups)
    # Only the open tab draws its chart, for the same reason the charts refresh less often than the status.
    # The first group (the family's losses) comes first, with a smoothing slider; then quality, the other groups, throughput.
    titles = [names[0], "Quality", *names[1:], "Throughput"]
    tabs = dict(zip(titles, st.tabs(titles, key="train_tab", on_change="rerun")))
    for index, name in enumerate(names):
        if tabs[name].open:
            with tabs[name]:
                smoothing = None
                if index == 0:
                    smoothing = st.slider("Smoothing", 0.0, 0.99, 0.6, 0.01, help="Exponential moving average, as in TensorBoard.")
                st.plotly_chart(charts.metric_figure(history, name, groups[name], smoothing, phases))
    if tabs["Quality"].open:
        with tabs["Quality"]:
            quality_tab(run)
    if tabs["Throughput"].open:
        tabs["Throughput"].plotly_chart(charts.throughput_figure(history))


@st.fragment(run_every=POLL_SECONDS if polling else None)
def live_samples() -> None:
    paths = run.sample_paths()
    if not paths:
        return
    phases = recorded_phases(run)
    timeline = charts.phase_grids(phases, paths)
    if timeline:
        st.subheader("Resolution timeline")
        st.caption("The same fixed noise at the end of each stage (the newest grid for the stage under way), upsampled to the data's size.")
        for column, (caption, path) in zip(st.columns(len(phases)), timeline):
            column.image(charts.enlarged_png(path, min_side=240), caption=caption, output_format="PNG")
    st.subheader("Samples")
    by_step = {charts.sample_step(path): path for path in paths}
    step = max(by_step)
    if len(by_step) > 1:
        step = st.select_slider("Sample grid at step", options=list(by_step), value=step)
    st.image(charts.enlarged_png(by_step[step]), caption=f"The same fixed noise at step {step:,}", output_format="PNG")
    st.download_button(
        "Download the training as a GIF", data=lambda: charts.training_gif(paths), file_name=f"{run.id}.gif",
        mime="image/gif", on_click="ignore", icon=":material/download:",
    )


live_status(polling)
live_charts()
live_samples()
st.download_button(  # built on click: the fragments above rerun while training, this button does not rebuild anything
    "Download report (HTML)", data=lambda: report.run_report(run), file_name=f"{run.id}.html", mime="text/html",
    on_click="ignore", icon=":material/download:",
    help="One file with this run's charts, sample grids, quality, config and environment; it opens offline in any browser.",
)
