"""Home: every run with its status; pick one to open its pages. The router (app.py) makes it the default page."""

import streamlit as st

from gan_core.dashboard.common import get_store, page_link, select_run, selected_run_id, start_page
from gan_core.dashboard.runs_table import RUN_PAGES, run_exists, runs_table

start_page("GAN Workbench")
st.write(
    "Train generative adversarial networks on MNIST-style images and watch them learn, step by step. "
    "Configure a run, follow its losses and samples while it trains, then generate, compare and download models."
)
page_link("pages/configure.py", label="New experiment", icon=":material/add_circle:")

store = get_store()
table = runs_table(store)

st.subheader("Runs")
if table.empty:
    st.info(
        "No runs yet: open Configure, keep the dcgan preset and press Train — "
        "digits appear in about two minutes on a CPU."
    )
    st.stop()

current = selected_run_id()
selected_rows = table.index[table["run"] == current].tolist()
event = st.dataframe(
    table,
    key="runs_table",
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    selection_default={"selection": {"rows": selected_rows}},
    column_config={
        "G loss": st.column_config.NumberColumn(format="%.3f"),
        "D loss": st.column_config.NumberColumn(format="%.3f"),
        "message": st.column_config.TextColumn(width="large"),
    },
)
if event.selection.rows:
    current = table.iloc[event.selection.rows[0]]["run"]
    if current != selected_run_id():
        select_run(current)

if run_exists(store, current):
    message = table.loc[table["run"] == current, "message"].iloc[0] if (table["run"] == current).any() else ""
    st.write(f"Run **{current}**:" + (f" {message}" if message else ""))  # the whole message, which the table's column cuts
    for column, (label, (page, icon)) in zip(st.columns(len(RUN_PAGES)), RUN_PAGES.items()):
        column.page_link(page, label=label, icon=icon, query_params={"run": current})
else:
    st.caption("Select a row to open its run on the Train, Generate, Compare or Models page.")
