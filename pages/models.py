"""Models: download a run's generator, discriminator or whole run; upload a run .zip or a generator .keras."""

import streamlit as st

from gan_core.dashboard import model_cache
from gan_core.dashboard.common import get_store, run_picker, select_run, start_page
from gan_core.errors import GanError
from gan_core.generation import model_io
from gan_core.generation.sampling import checkpoint_steps

start_page("Models")
store = get_store()
download_tab, upload_tab = st.tabs(["Download", "Upload"])

# The upload tab runs first so that a run imported from a .zip is already selected below.
with upload_tab:
    st.subheader("Import a run (.zip)")
    run_zip = st.file_uploader("A run exported from this dashboard or by `python -m gan_core export`", type="zip")
    if run_zip is not None and st.button("Import run"):
        try:
            imported = model_io.import_run_zip(store, run_zip.getvalue(), name=f"'{run_zip.name}'")
        except GanError as exc:
            st.error(str(exc))
        else:
            select_run(imported.id)
            st.success(f"Imported as run '{imported.id}'; it is now the selected run.")

    st.subheader("Use a generator (.keras)")
    generator_file = st.file_uploader(
        "A Keras generator mapping a latent vector (and a class label) to images", type="keras"
    )
    if generator_file is not None:
        try:
            model_cache.get_uploaded_generator(st.session_state, generator_file.name, generator_file.getvalue())
        except GanError as exc:
            st.error(str(exc))
    uploaded = model_cache.uploaded_generator(st.session_state)
    if uploaded is not None:
        st.success(
            f"Generator '{uploaded.config.name}' is ready: latent size {uploaded.latent_dim}, "
            f"{uploaded.num_classes or 'no'} classes."
        )
        if st.button("Generate with it", icon=":material/auto_awesome:", on_click=model_cache.use_uploaded_generator, args=(st.session_state,)):
            st.switch_page("pages/generate.py")

with download_tab:
    runs = store.list()
    if not runs:
        st.info("No runs yet: train one, or import a run .zip in the Upload tab.")
        st.stop()
    run = store.get(run_picker([run.id for run in runs], key="models_run"))
    steps = checkpoint_steps(run)
    step = steps[-1] if steps else None
    if len(steps) > 1:
        step = st.select_slider("Checkpoint step (for the .keras files)", steps, value=steps[-1])
    if not steps:
        st.caption("This run has no checkpoint yet, so only the run folder can be downloaded.")

    if st.button("Prepare downloads", type="primary"):
        with st.spinner("Exporting the networks and zipping the run..."):
            try:
                model_cache.prepare_downloads(st.session_state, run, step)
            except GanError as exc:
                st.error(str(exc))
    files = model_cache.prepared_downloads(st.session_state, run, step)
    if files:
        for column, item in zip(st.columns(len(files)), files):
            column.download_button(item.label, item.data, item.file_name, item.mime, on_click="ignore")
