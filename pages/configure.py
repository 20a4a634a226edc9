"""Configure: choose a preset and a dataset, edit every hyperparameter, check the models, then train."""

import streamlit as st

from gan_core.config import RunConfig, field_names, load_preset, preset_names
from gan_core.dashboard import forms
from gan_core.dashboard.common import get_store, select_run, start_page, tensorflow_ready
from gan_core.dashboard.summary import data_problem, dataset_shape, summarize
from gan_core.data.datasets import OFFLINE_DATASET, load_dataset, offline_stand_in
from gan_core.errors import GanError
from gan_core.store import jobs

start_page("Configure a run")

DEFAULT_PRESET = "dcgan"


@st.cache_data(show_spinner="Building the models…", max_entries=32)
def model_summary(config_json: str, image_shape: tuple[int, int, int], num_classes: int) -> dict:
    """The summary of a config, cached: building the models takes a moment."""
    return summarize(RunConfig.from_json(config_json), image_shape, num_classes)


@st.cache_data(show_spinner="Checking the data against the settings…", max_entries=16)
def cached_data_problem(config_json: str) -> str | None:
    """Why the data cannot feed a config (None when it can), cached: files are validated once per config."""
    return data_problem(RunConfig.from_json(config_json))


@st.cache_data(show_spinner="Reading the dataset…", max_entries=8)
def cached_dataset_shape(dataset: str) -> tuple[tuple[int, int, int], int]:
    """Image shape and class count of a dataset, cached: a file is validated once."""
    return dataset_shape(dataset)


def draw_model_summary(config: RunConfig) -> None:
    """Each network's parameter count and layer table, side by side."""
    try:
        image_shape, num_classes = cached_dataset_shape(config.dataset)
        summary = model_summary(config.to_json(), image_shape, num_classes)
    except GanError as exc:
        st.error(str(exc))
        return
    for column, part in zip(st.columns(len(summary["parts"])), summary["parts"]):
        column.metric(f"{part.replace('_', ' ').capitalize()} parameters", f"{summary[f'{part}_params']:,}")
        column.dataframe(summary[part], hide_index=True, height=35 * (len(summary[part]) + 1) + 3)


def load_preset_into_form() -> None:
    """Put the chosen preset's hyperparameters into the form."""
    st.session_state.update(forms.preset_state(st.session_state["preset"]))


def load_config_file() -> None:
    """Put an uploaded config.json into the form, or keep its one-sentence error."""
    uploaded = st.session_state["config_file"]
    if uploaded is None:
        return
    try:
        st.session_state.update(forms.form_state(RunConfig.from_json(uploaded.getvalue().decode("utf-8", "replace"))))
        st.session_state["config_file_error"] = None
    except GanError as exc:
        st.session_state["config_file_error"] = str(exc)


def read_dataset_upload(name: str) -> None:
    """Validate and save a new upload for a dataset field, or keep its one-sentence error."""
    uploaded = st.session_state[f"{name}_upload"]
    st.session_state.update({f"{name}_saved": None, f"{name}_upload_error": None, forms.file_key(name): ""})
    if uploaded is None:
        return
    try:
        upload = forms.accept_upload(uploaded.getvalue(), uploaded.name, get_store().root)
    except GanError as exc:
        st.session_state[f"{name}_upload_error"] = str(exc)
        return
    st.session_state.update({f"{name}_saved": upload, forms.file_key(name): str(upload.path)})


def dataset_picker(name: str, label: str, help: str) -> str:
    """A dataset field's selectbox and, for UPLOAD_CHOICE, its uploader with the upload's preview; returns the choice."""
    source = st.selectbox(label, [*forms.DATASET_CHOICES, forms.UPLOAD_CHOICE], key=forms.source_key(name), help=help)
    if source != forms.UPLOAD_CHOICE:
        return source
    st.file_uploader(
        "Images as .npz (arrays x and optional integer labels y) or .zip (PNG/JPEG, one folder per class)",
        type=["npz", "zip"], key=f"{name}_upload", on_change=read_dataset_upload, args=(name,),
    )
    upload = st.session_state.get(f"{name}_saved")
    if forms.upload_pending(st.session_state, name) and not st.session_state.get(f"{name}_upload_error"):
        st.info("Choose a file: training waits for it.")
    elif st.session_state.get(f"{name}_upload_error"):
        st.error(st.session_state[f"{name}_upload_error"])
    elif upload and str(upload.path) == st.session_state[forms.file_key(name)]:
        st.success(f"Saved as {upload.path}: {upload.about}")
        preview, counts = st.columns([3, 2])
        preview.image(upload.preview, caption="The first 64 images")
        counts.dataframe(upload.counts, hide_index=True)
    elif st.session_state.get(forms.file_key(name)):
        st.caption(f"Using the file {st.session_state[forms.file_key(name)]}.")
    return source


def check_builtin(name: str) -> None:
    """Try to load a builtin dataset (downloading it) and remember the outcome."""
    try:
        st.session_state["dataset_check"] = (name, None, forms.describe_images(load_dataset(name)))
    except GanError as exc:
        st.session_state["dataset_check"] = (name, str(exc), None)


def use_offline_dataset(name: str) -> None:
    """Switch the dataset to the bundled offline set that stands in for `name`."""
    st.session_state[forms.SOURCE_KEY] = offline_stand_in(name)


def field_widget(name: str, error: str | None) -> None:
    """The widget of one config field, drawn from its spec, with its error under it."""
    spec, key = forms.widget_spec(name, family), forms.widget_key(name)
    if spec["kind"] == "checkbox":
        st.checkbox(spec["label"], key=key, help=spec["help"])
    elif spec["kind"] == "selectbox":
        st.selectbox(spec["label"], spec["options"], key=key, help=spec["help"])
    elif spec["kind"] == "number":  # no min/max here: the browser would keep an out-of-range entry silently; the engine's sentence shows below
        st.number_input(spec["label"], step=spec["step"], format=spec["format"], key=key, help=spec["help"])
    else:
        st.text_input(spec["label"], key=key, help=spec["help"], max_chars=spec["max_chars"])
    if error:
        st.error(error)


# Widget values are dropped when the user visits another page; keep a copy to come back to.
if forms.SOURCE_KEY not in st.session_state:
    saved = st.session_state.get("saved_form")
    st.session_state.update(saved or {"preset": DEFAULT_PRESET, **forms.form_state(load_preset(DEFAULT_PRESET))})

family = forms.family_in(st.session_state)
st.session_state.update(forms.missing_defaults(st.session_state, family))
st.session_state["saved_form"] = {key: st.session_state[key] for key in ("preset", *forms.form_keys(family)) if key in st.session_state}
check = forms.check_form(forms.values_from_state(st.session_state))

left, right = st.columns([2, 3])
left.selectbox(
    "Preset", preset_names(), key="preset", on_change=load_preset_into_form,
    help="Loads every field below. tutorial-dcgan is the TensorFlow DCGAN tutorial; dcgan is a faster half-width copy.",
)
right.file_uploader("…or load a config.json", type=["json"], key="config_file", on_change=load_config_file)
if st.session_state.get("config_file_error"):
    right.error(st.session_state["config_file_error"])

st.subheader("Data")
OFFLINE_HELP = (
    "mnist-5k, sklearn-digits (scikit-learn's 8x8 digits, upscaled), mnist-5k-thick (thick strokes) "
    "and mnist-5k-colour (colour 32x32 digits over photo patches) work offline"
)
source = dataset_picker("dataset", "Dataset", f"{OFFLINE_HELP}; mnist, fashion_mnist and cifar10 (colour 32x32) are downloaded once.")
if source not in (OFFLINE_DATASET, forms.UPLOAD_CHOICE):
    if st.button("Check dataset", help="Loads it now (downloading it the first time) to see that training can use it."):
        with st.spinner(f"Loading {source}…"):
            check_builtin(source)
    checked = st.session_state.get("dataset_check")
    if checked and checked[0] == source:
        if checked[1]:
            st.error(checked[1])
            st.button(f"Use {offline_stand_in(source)} instead", on_click=use_offline_dataset, args=(source,))
        else:
            st.success(f"{source} is ready: {checked[2]}")
if "dataset" in check.field_errors and not forms.upload_pending(st.session_state, "dataset"):
    st.error(check.field_errors["dataset"])
if "domain_b" in field_names(family):
    dataset_picker("domain_b", "Domain B (CycleGAN translates the dataset above to it and back)", f"{OFFLINE_HELP}. Both domains need images of one size.")
    if "domain_b" in check.field_errors and not forms.upload_pending(st.session_state, "domain_b"):
        st.error(check.field_errors["domain_b"])

st.subheader("Hyperparameters")
with st.form("config_form", border=False, enter_to_submit=False):
    if check.form_error:
        st.error(check.form_error)
    titles = [title for title, _ in forms.SECTIONS]
    for tab, (_, groups) in zip(st.tabs(titles, default=forms.error_section(check.field_errors, family)), forms.SECTIONS):
        with tab:
            columns = st.columns(3)
            for i, name in enumerate(forms.form_fields(groups, family)):
                with columns[i % 3]:
                    field_widget(name, check.field_errors.get(name))
    train_col, check_col, _ = st.columns([1, 1, 8])
    train = train_col.form_submit_button("Train", type="primary")
    check_col.form_submit_button("Check", help="Validate the values and update the model summary.")

if check.config is None:
    waiting = [name for name in forms.DATASET_FIELDS if forms.upload_pending(st.session_state, name)]
    if waiting and set(check.field_errors) <= set(waiting):
        st.warning("Upload the dataset file above to see the model summary and to train.")
    else:
        st.warning("Fix the values marked above to see the model summary and to train.")
    st.stop()
config = check.config
if problem := cached_data_problem(config.to_json()):  # what the worker would refuse, said before Train
    st.error(problem)
    st.stop()
st.download_button("Download config.json", config.to_json(), file_name="config.json", mime="application/json")

if train:
    try:
        run = jobs.start_job(get_store(), config)
    except GanError as exc:
        st.error(str(exc))
    else:
        select_run(run.id)
        st.switch_page("pages/train.py", query_params={"run": run.id})

st.subheader("Model summary")
if tensorflow_ready("build the models"):
    draw_model_summary(config)
