"""Compare: loss curves of several runs on one chart, their configs side by side and their final figures."""

import streamlit as st

from gan_core.dashboard import report
from gan_core.dashboard.common import get_store, page_link, selected_run_id, start_page
from gan_core.dashboard.compare import (
    config_table,
    default_selection,
    differences_sentence,
    differing_fields,
    environment_table,
    final_figures,
    headline_metrics,
    highlight_differences,
    overlay_figure,
    quality_overlay_figure,
    quality_series,
    run_configs,
)

start_page("Compare runs")

store = get_store()
runs_found = store.list()
run_ids = [run.id for run in runs_found]
trained_ids = [run.id for run in runs_found if run.history_path.is_file()]
if len(run_ids) < 2:
    st.info("Comparing needs at least two runs: train another one from the Configure page.")
    page_link("pages/configure.py", label="Configure a run", icon=":material/add_circle:")
    st.stop()

chosen = st.multiselect("Runs", run_ids, default=default_selection(trained_ids or run_ids, selected_run_id()))
smoothing = st.slider("Smoothing", 0.0, 0.99, 0.6, 0.01, help="Exponential moving average of the losses.")
if not chosen:
    st.stop()
runs = {run_id: store.get(run_id) for run_id in chosen}
st.download_button(
    "Download report (HTML)", data=lambda: report.comparison_report(runs, smoothing), file_name=f"comparison-of-{len(runs)}-runs.html",
    mime="text/html", on_click="ignore", icon=":material/download:",
    help="One file with these runs' charts, configs, environments and last sample grids; it opens offline in any browser.",
)

st.subheader("Losses")
rows = {run_id: run.history_rows() for run_id, run in runs.items()}
if not any(rows.values()):
    st.info("None of these runs has logged a training step yet.")
metrics = headline_metrics(runs)
for index, metric in enumerate(metrics):
    if index % 2 == 0:
        columns = st.columns(2)
    columns[index % 2].plotly_chart(overlay_figure(rows, metric, smoothing), key=f"overlay_{metric.name}")

quality_rows, floors = quality_series(runs)
if quality_rows:
    st.subheader("Quality")
    st.plotly_chart(quality_overlay_figure(quality_rows, floors), key="overlay_quality")

st.subheader("Configurations")
configs, problems = run_configs(runs)
for problem in problems:
    st.warning(problem)
table = config_table(configs)
differing = differing_fields(table)
only_differing = st.toggle("Only the fields that differ", value=False)
shown = table.loc[differing] if only_differing else table
st.caption(differences_sentence(table, differing))
st.dataframe(  # the index holds the field names, wide enough to read whole
    highlight_differences(shown), height=35 * (len(shown) + 1) + 3,
    column_config={"_index": st.column_config.TextColumn("field", width="medium")},
)

st.subheader("Environment")
environment = environment_table(runs)
differing = differing_fields(environment)
st.caption(
    "What reproduces each run besides its config, as its workers recorded it (a → b: a resume changed it). "
    + (f"Differs: {', '.join(differing)}." if differing else "The same for these runs.")
)
st.dataframe(
    highlight_differences(environment), height=35 * (len(environment) + 1) + 3,
    column_config={"_index": st.column_config.TextColumn("what", width="medium")},
)

st.subheader("Final figures")
st.dataframe(final_figures(runs), hide_index=True)
