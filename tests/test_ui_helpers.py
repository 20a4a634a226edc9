"""The dashboard's testable helpers: runs table, form specs and validation, uploads, summaries, comparison."""

import io
import re
import time

import numpy as np
import pytest
from PIL import Image

from gan_core.config import RunConfig, field_info, field_names, load_preset, preset_names
from gan_core.dashboard import compare
from gan_core.dashboard import forms as ui_forms
from gan_core.dashboard import runs_table as ui_runs
from gan_core.dashboard.summary import dataset_shape, summarize
from gan_core.errors import ConfigError, DataError
from gan_core.history_metrics import ADVERSARIAL_METRICS
from gan_core.store.runs import RunStore

TINY = RunConfig(
    dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=6, sample_every=3, checkpoint_every=3
)


def npz_bytes(n=32, labels=True, side=28):
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    arrays = {"x": rng.integers(0, 256, (n, side, side), dtype=np.uint8)}
    if labels:
        arrays["y"] = np.arange(n) % 3
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def history_row(step, g_loss, d_loss):
    return {
        "step": step, "epoch": 1, "g_loss": g_loss, "d_loss": d_loss, "d_real": 0.6, "d_fake": 0.4,
        "g_grad_norm": 1.0, "d_grad_norm": 1.0, "images_per_sec": 100.0 + step, "elapsed_sec": step * 0.1,
    }


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


# ---- runs table ------------------------------------------------------------------------------
def test_format_seconds_and_time():
    assert ui_runs.format_seconds(None) == ""
    assert ui_runs.format_seconds(42.7) == "42s"
    assert ui_runs.format_seconds(185) == "3m 05s"
    assert ui_runs.format_seconds(2 * 3600 + 7 * 60 + 5) == "2h 07m"
    assert ui_runs.format_time(None) == ""
    stamp = time.mktime((2024, 5, 1, 12, 30, 0, 0, 0, -1))
    assert ui_runs.format_time(stamp) == "2024-05-01 12:30"


def test_runs_table_rows_and_a_broken_run(store):
    first = store.create(TINY.replace(name="first", conditional=True))
    first.update_status(state="finished", step=6, total_steps=6, train_seconds=75, started=time.time())
    first.append_history([history_row(5, 1.5, 0.5), history_row(6, 1.25, 0.75)])
    broken = store.create(TINY.replace(name="broken"))
    broken.config_path.write_text("{not json")
    table = ui_runs.runs_table(store)
    columns = list(ui_runs.COLUMNS)
    assert list(table.columns) == columns[:columns.index("step") + 1] + ["G loss", "D loss"] + columns[columns.index("step") + 1:]
    rows = {row["run"]: row for row in table.to_dict("records")}
    assert rows[first.id]["status"] == "finished"
    assert rows[first.id]["model"] == "dcgan conditional"
    assert rows[first.id]["step"] == "6/6"
    assert (rows[first.id]["G loss"], rows[first.id]["D loss"]) == (1.25, 0.75)
    assert rows[first.id]["duration"] == "1m 15s"
    assert rows[broken.id]["status"] == "broken"
    assert "broken config.json" in rows[broken.id]["message"]


def test_runs_table_reports_a_broken_status_and_a_dead_queued_worker(store):
    bad_status = store.create(TINY)
    bad_status.status_path.write_text("[]")
    dead = store.create(TINY.replace(name="dead"))
    dead.update_status(pid=2**22 + 12345)  # no such process: its waiting worker is gone
    rows = {row["run"]: row for row in ui_runs.runs_table(store).to_dict("records")}
    assert rows[bad_status.id]["status"] == "broken"
    assert rows[dead.id]["status"] == "crashed"
    assert rows[dead.id]["step"] == "0/?"


def test_run_exists(store):
    run = store.create(TINY)
    assert ui_runs.run_exists(store, run.id)
    assert not ui_runs.run_exists(store, None)
    assert not ui_runs.run_exists(store, "../etc")
    assert not ui_runs.run_exists(store, "missing-run")


# ---- form specs and state ----------------------------------------------------------------------
def test_widget_specs_follow_the_field_metadata():
    assert ui_forms.widget_spec("conditional")["kind"] == "checkbox"
    loss = ui_forms.widget_spec("loss")
    assert loss["kind"] == "selectbox" and loss["options"] == ["bce", "minimax", "lsgan", "hinge", "wgan-gp"]
    batch = ui_forms.widget_spec("batch_size")
    assert (batch["kind"], batch["min"], batch["max"], batch["step"], batch["format"]) == ("number", 1, 4096, 1, "%d")
    width = ui_forms.widget_spec("width")
    assert (width["min"], width["max"]) == (0.125, 4.0) and isinstance(width["min"], float)
    assert ui_forms.widget_spec("g_lr")["format"] == "%.2e"
    name = ui_forms.widget_spec("name")
    assert (name["kind"], name["max_chars"]) == ("text", 60)
    assert name["help"] == field_info("name")["help"]


def test_every_form_field_is_in_exactly_one_section_with_a_label():
    placed = [name for _, groups in ui_forms.SECTIONS for name in ui_forms.form_fields(groups)]
    assert sorted(placed) == sorted(n for n in field_names() if n != "dataset")
    labels = [ui_forms.widget_spec(name)["label"] for name in placed]
    assert all(labels) and len(set(labels)) == len(labels)


@pytest.mark.parametrize("preset", preset_names())
def test_form_state_round_trips_every_preset(preset):
    config = load_preset(preset)
    state = ui_forms.form_state(config)
    assert set(state) == set(ui_forms.form_keys(config.family))
    assert ui_forms.config_from_values(ui_forms.values_from_state(state)) == config


def test_form_state_keeps_floats_float_and_file_datasets_as_uploads():
    state = ui_forms.form_state(RunConfig(width=1, gp_weight=10, dataset="/data/my.npz"))
    assert isinstance(state["cfg_width"], float) and isinstance(state["cfg_gp_weight"], float)
    assert state[ui_forms.SOURCE_KEY] == ui_forms.UPLOAD_CHOICE
    assert state[ui_forms.FILE_KEY] == "/data/my.npz"
    assert ui_forms.values_from_state(state)["dataset"] == "/data/my.npz"


def test_a_preset_changes_the_hyperparameters_but_not_the_dataset_unless_made_for_another():
    state = ui_forms.preset_state("wgan-gp")
    assert ui_forms.SOURCE_KEY not in state and ui_forms.FILE_KEY not in state
    assert (state["cfg_loss"], state["cfg_d_steps"], state["cfg_name"]) == ("wgan-gp", 5, "wgan-gp")
    colour = ui_forms.preset_state("dcgan-colour")  # made for its own dataset: it brings it
    assert (colour[ui_forms.SOURCE_KEY], colour[ui_forms.FILE_KEY]) == ("mnist-5k-colour", "")


def test_errors_by_field_names_each_bad_value_with_the_engines_message():
    values = ui_forms.values_from_state(ui_forms.form_state(load_preset("dcgan")))
    values.update(batch_size=0, dropout=0.95, loss="gan", conditional="yes", latent_dim=2.5)
    errors = ui_forms.errors_by_field(values)
    assert set(errors) == {"batch_size", "dropout", "loss", "conditional", "latent_dim"}
    assert errors["batch_size"] == "batch_size must be an integer between 1 and 4096; got 0."
    assert errors["dropout"].startswith("dropout must be a number between 0 and 0.9")
    assert "one of bce" in errors["loss"]
    check = ui_forms.check_form(values)
    assert check.config is None and check.field_errors == errors and check.form_error is None
    assert ui_forms.error_section(errors) == "Family & architecture"  # the tab the page opens
    assert ui_forms.error_section({"g_lr": "...", "epochs": "..."}) == "Optimizer" and ui_forms.error_section({}) is None


def test_cross_field_errors_are_not_blamed_on_one_field():
    values = ui_forms.values_from_state(ui_forms.form_state(load_preset("dcgan")))
    values.update(epochs=0, steps=0)
    assert ui_forms.errors_by_field(values) == {}
    check = ui_forms.check_form(values)
    assert check.config is None
    assert check.form_error == "Set epochs or steps above 0; both are 0, so the run would train nothing."
    values.update(steps=5)
    assert ui_forms.check_form(values).config.steps == 5


def test_upload_with_no_file_is_an_error_on_the_dataset():
    state = ui_forms.form_state(load_preset("dcgan"))
    state[ui_forms.SOURCE_KEY] = ui_forms.UPLOAD_CHOICE
    errors = ui_forms.errors_by_field(ui_forms.values_from_state(state))
    assert list(errors) == ["dataset"]


# ---- uploads --------------------------------------------------------------------------------------
def test_read_upload_validates_without_writing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    images = ui_forms.read_upload(npz_bytes(), "digits.npz")
    assert images.image_shape == (28, 28, 1) and images.num_classes == 3
    with pytest.raises(DataError, match="has no array named 'x'"):
        buffer = io.BytesIO()
        np.savez(buffer, images=np.zeros((20, 28, 28), np.uint8))
        ui_forms.read_upload(buffer.getvalue(), "wrong.npz")
    with pytest.raises(DataError, match="neither a .npz nor a .zip"):
        ui_forms.read_upload(b"hello", "notes.txt")
    assert list(tmp_path.iterdir()) == []


def test_save_upload_is_content_addressed_safe_and_ignored_by_the_store(store):
    data = npz_bytes()
    path = ui_forms.save_upload(data, "../../my digits!.npz", store.root)
    assert path.parent == store.root / "_uploads"
    assert path.name.endswith("_my_digits_.npz") and ".." not in path.name
    assert path.read_bytes() == data
    assert ui_forms.save_upload(data, "../../my digits!.npz", store.root) == path
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left behind
    run = store.create(TINY.replace(dataset=str(path)))
    assert [r.id for r in store.list()] == [run.id]
    assert dataset_shape(str(path)) == ((28, 28, 1), 3)


def test_accept_upload_saves_only_what_passes_validation(store):
    with pytest.raises(DataError, match="holds 3 images; at least 16 are needed"):
        ui_forms.accept_upload(npz_bytes(n=3), "few.npz", store.root)
    assert not ui_forms.uploads_dir(store.root).exists()
    upload = ui_forms.accept_upload(npz_bytes(), "digits.npz", store.root)
    assert upload.path.parent == ui_forms.uploads_dir(store.root) and upload.path.read_bytes() == npz_bytes()
    assert upload.about == "32 images of 28x28x1 pixels, 3 classes."
    assert upload.preview.startswith(b"\x89PNG") and upload.counts["images"].sum() == 32


def test_preview_and_class_counts():
    images = ui_forms.read_upload(npz_bytes(n=70), "digits.npz")
    picture = Image.open(io.BytesIO(ui_forms.preview_png(images)))
    assert picture.size == ((8 * 30 + 2) * 2, (8 * 30 + 2) * 2)  # 64 images, 8 per row, 2 px border, doubled
    counts = ui_forms.class_counts(images)
    assert counts.to_dict("records") == [
        {"class": "0", "images": 24}, {"class": "1", "images": 23}, {"class": "2", "images": 23},
    ]
    unlabelled = ui_forms.read_upload(npz_bytes(labels=False), "plain.npz")
    assert ui_forms.class_counts(unlabelled).to_dict("records") == [{"class": "unlabelled", "images": 32}]
    assert ui_forms.describe_images(unlabelled) == "32 images of 28x28x1 pixels, no labels."


# ---- model summary --------------------------------------------------------------------------------
def test_summary_of_the_tutorial_dcgan_matches_the_tutorial():
    shape, classes = dataset_shape("mnist-5k")
    summary = summarize(load_preset("tutorial-dcgan"), shape, classes)
    assert summary["generator_params"] == 2_330_944
    assert summary["discriminator_params"] == 212_865
    assert sum(row["params"] for row in summary["generator"]) == 2_330_944
    assert summary["discriminator"][-1]["output_shape"] == "(None, 1)"


def test_the_builtin_shape_table_covers_every_builtin_and_matches_the_offline_sets():
    from gan_core.dashboard.summary import BUILTIN_SHAPES
    from gan_core.data.datasets import BUILTIN_DATASETS, load_dataset, needs_download

    assert set(BUILTIN_SHAPES) == set(BUILTIN_DATASETS)
    for name in BUILTIN_DATASETS:
        if not needs_download(name):
            data = load_dataset(name, "test")
            assert dataset_shape(name) == (data.image_shape, data.num_classes)
    assert dataset_shape("cifar10") == dataset_shape("mnist-5k-colour") == ((32, 32, 3), 10)


def test_summary_of_the_colour_preset_draws_rgb_from_an_8x8_start():
    summary = summarize(load_preset("dcgan-colour"), *dataset_shape("mnist-5k-colour"))
    shapes = [row["output_shape"] for row in summary["generator"]]
    assert "(None, 8, 8, 128)" in shapes and "(None, 16, 16, 32)" in shapes and shapes[-1] == "(None, 32, 32, 3)"
    assert summary["discriminator"][0]["output_shape"] == "(None, 32, 32, 3)"


def test_summary_refuses_a_conditional_model_without_labels():
    with pytest.raises(ConfigError, match="needs a labelled dataset"):
        summarize(TINY.replace(conditional=True), (28, 28, 1), 0)


# ---- compare ---------------------------------------------------------------------------------------
def test_default_selection():
    ids = ["c-newest", "b", "a-oldest"]
    assert compare.default_selection(ids, "b") == ["b", "c-newest"]
    assert compare.default_selection(ids, "c-newest") == ["c-newest", "b"]
    assert compare.default_selection(ids, None) == ["c-newest", "b"]
    assert compare.default_selection(ids, "gone") == ["c-newest", "b"]
    assert compare.default_selection(["only"], "only") == ["only"]


def test_config_table_and_differing_fields():
    table = compare.config_table({"a": TINY.to_dict(), "b": TINY.replace(g_lr=1e-3, conditional=True).to_dict()})
    assert list(table.columns) == ["a", "b"] and list(table.index) == list(field_names())
    assert table.loc["g_lr"].tolist() == ["0.0002", "0.001"]
    assert table.loc["conditional"].tolist() == ["false", "true"]
    assert compare.differing_fields(table) == ["conditional", "g_lr"]
    css = compare.highlight_differences(table).to_html().split("</style>")[0]
    styled_rows = {int(row) for row in re.findall(r"_row(\d+)_col\d+", css)}
    assert "background-color: #fff3b0" in css
    assert {table.index[row] for row in styled_rows} == {"conditional", "g_lr"}


def test_overlay_figure_has_one_smoothed_trace_per_run():
    rows = {"a": [history_row(s, 1.0 + s % 2, 0.5) for s in range(1, 11)], "b": [history_row(1, 3.0, 0.1)]}
    g_loss = ADVERSARIAL_METRICS[0]
    figure = compare.overlay_figure(rows, g_loss, 0.0)
    assert [trace.name for trace in figure.data] == ["a", "b"] and figure.layout.title.text == "G loss"
    assert list(figure.data[0].y) == [2.0, 1.0] * 5
    rows["c"] = [{"step": 1.0, "code_mse": 0.5}]  # a run of another family has no G loss: no line
    assert [trace.name for trace in compare.overlay_figure(rows, g_loss, 0.0).data] == ["a", "b"]
    smoothed = compare.overlay_figure(rows, g_loss, 0.9)
    assert max(smoothed.data[0].y[1:]) < 2.0 and smoothed.data[0].y[0] == 2.0


def test_final_figures(store):
    run = store.create(TINY)
    run.update_status(state="stopped", step=60, total_steps=100, train_seconds=42)
    run.append_history([history_row(s, float(s), 1.0) for s in range(1, 61)])
    empty = store.create(TINY)
    table = compare.final_figures({"done": run, "new": empty}).set_index("run")
    assert table.loc["done", "final step"] == 60 and table.loc["done", "state"] == "stopped"
    assert table.loc["done", "G loss (last)"] == 60.0
    assert table.loc["done", "G loss (mean of last 50)"] == pytest.approx(sum(range(11, 61)) / 50)
    assert table.loc["done", "images/s"] == pytest.approx(100 + sum(range(11, 61)) / 50, abs=0.05)
    assert table.loc["done", "train time"] == "42s"
    assert table.loc["new", "final step"] == 0 and table.loc["new", "state"] == "queued"

