"""Evaluate: quality numbers for one or more runs, each beside what real held-out images score against real training images."""

import pandas as pd
import streamlit as st

from gan_core.dashboard import model_cache
from gan_core.dashboard.common import (
    get_store,
    page_link,
    score_formats,
    select_run,
    selected_run_id,
    start_page,
    tensorflow_ready,
)
from gan_core.errors import GanError
from gan_core.evaluation import evaluate as evaluation
from gan_core.evaluation import usefulness

start_page("Evaluate")

store = get_store()
runs = model_cache.runs_with_checkpoints(store)
if not runs:
    st.info("No run has a checkpoint yet: train one first.")
    page_link("pages/train.py", label="Train", icon=":material/model_training:")
    st.stop()

ids = list(runs)
current = selected_run_id()
chosen = st.multiselect("Runs", ids, default=[current if current in ids else ids[0]])
if not chosen:
    st.info("Pick at least one run to evaluate.")
    st.stop()
if current not in chosen:
    select_run(chosen[0])

steps = {}
for column, run_id in zip(st.columns(len(chosen)), chosen):
    steps[run_id] = column.selectbox(f"Checkpoint of {run_id}", runs[run_id], index=len(runs[run_id]) - 1, key=f"eval_step_{run_id}")

try:
    largest_n = min(evaluation.default_n(store.get(run_id)) for run_id in chosen)
except GanError as exc:
    st.error(str(exc))
    st.stop()
n = int(st.number_input(
    "N: generated images, compared with as many real held-out images", evaluation.MIN_N, largest_n, largest_n,
    help=f"At most {largest_n}, the held-out images of the dataset (and never more than {evaluation.MAX_N}).",
))

targets = [(store.get(run_id), steps[run_id]) for run_id in chosen]
results = evaluation.saved_results(targets, n)
missing = [target for target, result in zip(targets, results) if result is None]
button = st.empty()  # replaced once everything chosen is evaluated, so the label never contradicts the results below
if missing and button.button(f"Evaluate ({len(missing)} of {len(targets)} not evaluated yet)", type="primary"):
    bar = st.progress(0.0, text="Starting")
    try:
        evaluation.evaluate_runs(missing, n, progress=lambda fraction, message: bar.progress(fraction, text=message))
    except GanError as exc:
        st.error(str(exc))
    results = evaluation.saved_results(targets, n)
    if all(result is not None for result in results):
        button.empty()
elif missing:
    st.caption("Evaluating trains the dataset's evaluator classifier the first time (about half a minute for mnist-5k); results are saved in the run folder.")

with st.expander("Usefulness: CAS and augmentation"):
    use_id = st.selectbox("Run", chosen, key="use_run") if len(chosen) > 1 else chosen[0]
    loaded = None
    try:
        if tensorflow_ready("load the generator"):
            loaded = model_cache.get_generator(store.get(use_id), steps[use_id])
    except GanError as exc:
        st.error(str(exc))
    if loaded is not None and not loaded.conditional:
        st.info(usefulness.UNCONDITIONAL)
    elif loaded is not None:
        st.caption(
            "Small classifiers of the evaluator's design, trained from scratch and tested on the real held-out digits. "
            "CAS: trained on N generated digits, beside N real ones. Augmentation: a small real subset alone, and with M "
            "generated digits added (the subset alone trains longer, so both see as many images), over several seeds."
        )
        kept = st.session_state.setdefault("usefulness", {})
        cas_tab, aug_tab = st.tabs(["CAS", "Augmentation"])
        with cas_tab:
            n_col, epochs_col = st.columns(2)
            cas_n = int(n_col.number_input("N", 10, usefulness.MAX_IMAGES, 1000, step=100, key="cas_n"))
            cas_epochs = int(epochs_col.number_input("Epochs", 1, usefulness.MAX_EPOCHS, usefulness.EPOCHS, key="cas_epochs"))
            key = ("cas", use_id, steps[use_id], cas_n, cas_epochs)
            if st.button("Compute CAS", key="cas_go"):
                bar = st.progress(0.0, text="Starting")
                try:
                    kept[key] = usefulness.classification_accuracy_score(
                        loaded, cas_n, cas_epochs, progress=lambda f, m: bar.progress(f, text=m))
                except GanError as exc:
                    st.error(str(exc))
            if key in kept:
                st.dataframe(pd.DataFrame(usefulness.cas_table(kept[key])), hide_index=True)
                st.write(usefulness.cas_sentence(kept[key]))
        with aug_tab:
            real_col, fake_col, seeds_col, epochs_col = st.columns(4)
            real_n = int(real_col.number_input("Real digits", 10, 5000, 500, step=100, key="aug_real"))
            fake_m = int(fake_col.number_input("Generated digits", 1, usefulness.MAX_IMAGES, 1000, step=100, key="aug_fake"))
            seeds = int(seeds_col.number_input("Seeds", 1, usefulness.MAX_SEEDS, 3, key="aug_seeds"))
            aug_epochs = int(epochs_col.number_input("Epochs", 1, usefulness.MAX_EPOCHS, usefulness.EPOCHS, key="aug_epochs"))
            key = ("augmentation", use_id, steps[use_id], real_n, fake_m, seeds, aug_epochs)
            if st.button("Run the augmentation test", key="aug_go"):
                bar = st.progress(0.0, text="Starting")
                try:
                    kept[key] = usefulness.augmentation(
                        loaded, real_n, fake_m, seeds, aug_epochs, progress=lambda f, m: bar.progress(f, text=m))
                except GanError as exc:
                    st.error(str(exc))
            if key in kept:
                st.dataframe(pd.DataFrame(usefulness.augmentation_table(kept[key])), hide_index=True)
                st.write(usefulness.augmentation_sentence(kept[key]))

done = [result for result in results if result is not None]
if not done:
    st.stop()

if len(done) > 1:
    st.subheader("Runs side by side")
    st.dataframe(pd.DataFrame(evaluation.comparison_rows(done)), hide_index=True)

for tab, result in zip(st.tabs([f"{r['run_id']} · step {r['step']}" for r in done]), done):
    with tab:
        st.caption(evaluation.evaluator_caption(result))
        if result.get("columns"):
            st.subheader("Held-out examples, column by column")
            st.caption(evaluation.COLUMNS_CAPTION)
            st.dataframe(pd.DataFrame(result["columns"]), hide_index=True, column_config=score_formats())
        table = evaluation.metric_table(result)
        if table:
            st.dataframe(pd.DataFrame(table), hide_index=True, height=35 * (len(table) + 1) + 3)
        if result["classes"] is not None:
            st.subheader("Classes")
            st.plotly_chart(evaluation.histogram_figure(result), key=f"classes_{result['run_id']}")
            st.dataframe(pd.DataFrame(evaluation.class_table(result)), hide_index=True)
        if pairs := evaluation.pair_images(result):
            st.subheader("Nearest training images")
            st.caption(evaluation.nearest_caption(result))
            for column, (generated, nearest, caption) in zip(st.columns(len(pairs)), pairs):
                column.image([generated, nearest], caption=["generated", caption])

csv_col, json_col = st.columns(2)
csv_col.download_button("Results (.csv)", evaluation.results_csv(done), "evaluation.csv", "text/csv", on_click="ignore")
json_col.download_button("Results (.json)", evaluation.results_json(done), "evaluation.json", "application/json", on_click="ignore")
