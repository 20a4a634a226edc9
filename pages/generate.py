"""Generate: sample images from a run's checkpoint or an uploaded generator, interpolate, walk the latent space, mix styles
(StyleGAN), project a drawing into the latent space and edit a sample's attributes; for image-to-image families, restore
held-out images."""

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from gan_core.dashboard import model_cache
from gan_core.dashboard.common import get_store, page_link, run_picker, score_formats, start_page, tensorflow_ready
from gan_core.errors import GanError
from gan_core.generation import apply, directions, edits, latents, model_io, pairs, projection, sampling, styles
from gan_core.generation.latent_space import latent_space

MAX_SEED = 2**31 - 1
VIEWS = ["Grid", "Interpolate", "Latent walk"]
PAIRS, APPLY = "Pairs", "Apply to your images"  # the views of image-to-image families
PROJECT, EDIT = "Project", "Edit"  # the latent views of noise-to-image families
CANVAS_SIDE = 224  # pixels: within the upload checks' 256, and 8 times a 28x28 digit
KEEP = "page"  # a view's widgets keep their values while another view is shown

start_page("Generate")


def truncation_slider() -> float:
    """The truncation psi: 1 draws as trained, lower values trade variety for typical images."""
    return st.slider(
        "Truncation ψ", 0.0, 1.0, 1.0, step=0.05, key="gen_truncation", persist_state=KEEP,
        help="1 draws as trained; lower values pull each sample towards the average (the latent's centre, or StyleGAN's average w): "
        "more typical, less varied.",
    )


def noise_toggle() -> bool:
    return st.toggle("Per-pixel noise", value=True, key="gen_noise", persist_state=KEEP, help="Off: the noise maps are zeros, so only the styles draw.")


def class_select(loaded, key: str, guess: bool = False):
    """A conditional generator's class as an int (or None: the evaluator's guess); None for unconditional ones."""
    if not loaded.conditional:
        return None
    classes = {i: caption for i, caption in latents.class_choices(loaded).items() if i != latents.ROWS}
    options = [None, *classes] if guess else list(classes)
    return st.selectbox("Class", options, key=key, format_func=lambda i: "The evaluator's guess" if i is None else classes[i])


def strip_downloads(png: bytes, images, labels, stem: str) -> None:
    """Download buttons for a view's picture (.png) and its images (.npz)."""
    png_col, npz_col = st.columns(2)
    png_col.download_button("Picture (.png)", png, f"{stem}.png", "image/png", on_click="ignore")
    npz_col.download_button("Images (.npz)", sampling.samples_npz(images, labels), f"{stem}.npz", "application/octet-stream", on_click="ignore")


store = get_store()
uploaded = model_cache.uploaded_generator(st.session_state)
runs = model_cache.runs_with_checkpoints(store)
source = "run"
if uploaded is not None:
    source = st.radio(
        "Generator", ["run", "upload"], horizontal=True, key=model_cache.SOURCE_KEY,
        format_func=lambda choice: "A run's checkpoint" if choice == "run" else f"Uploaded: {uploaded.config.name}",
    )

try:
    if source == "upload":
        loaded, name = uploaded, uploaded.config.name
        st.caption(f"Latent size {loaded.latent_dim}, {loaded.num_classes or 'no'} classes.")
    else:
        if not runs:
            st.info("No run has a checkpoint yet: train one first, or upload a generator on the Models page.")
            page_link("pages/train.py", label="Train", icon=":material/model_training:")
            st.stop()
        run_id = run_picker(list(runs), key="gen_run")
        steps = runs[run_id]
        step = st.select_slider("Checkpoint step", steps, value=steps[-1]) if len(steps) > 1 else steps[0]
        if not tensorflow_ready("load the generator"):
            st.stop()
        loaded = model_cache.get_generator(store.get(run_id), step)
        name = f"{run_id}-step{loaded.step}"
        st.caption(f"Checkpoint at step {loaded.step}.")
except GanError as exc:
    st.error(str(exc))
    st.stop()

# Only the chosen view is computed (st.tabs would run them all on every rerun).
stage_view = latents.stage_view(loaded)
style_view = styles.VIEW if styles.is_style_based(loaded) else ""
latent_views = VIEWS + [view for view in (stage_view, style_view) if view] + [PROJECT, EDIT]
views = [PAIRS, APPLY] if pairs.is_image_to_image(loaded) else latent_views
if st.session_state.get("gen_view", views[0]) not in views:  # a view kept from a generator of another family
    st.session_state["gen_view"] = views[0]
view = st.segmented_control("View", views, default=views[0], required=True, key="gen_view")

# The shared count and seed only where the view reads them (Interpolate and the walk have seeds of their own).
count_col, seed_col, class_col = st.columns(3)
n = count_col.number_input("Images", 1, 256, 64, key="gen_n", persist_state=KEEP) if view in (PAIRS, "Grid") else 0
seed = seed_col.number_input("Seed", 0, MAX_SEED, 0, key="gen_seed", persist_state=KEEP) if view in (PAIRS, "Grid", stage_view) else 0
label = None
if loaded.conditional and view in VIEWS:
    classes = latents.class_choices(loaded)
    label = class_col.selectbox("Class", list(classes), format_func=classes.get)
try:
    if view == PAIRS:
        images, names, scores = pairs.pair_rows(loaded, int(n), int(seed))
        st.image(
            model_io.grid_png(images, len(names)), output_format="PNG",
            caption=f"{' | '.join(names)}: {len(images) // len(names)} held-out images, seed {seed}",
        )
        st.caption("Each column against the one named, averaged over these images (higher is closer); the Evaluate page scores more images and reads their classes.")
        st.dataframe(scores, hide_index=True, column_config=score_formats())

    elif view == APPLY:
        ways = apply.directions(loaded)
        way = st.radio("Direction", list(ways), horizontal=True, key="gen_apply_way") if len(ways) > 1 else next(iter(ways))
        upload = st.file_uploader(
            "Your images: one PNG or JPEG, or a batch as .npz (array x) or .zip", type=list(apply.APPLY_SUFFIXES),
            key="gen_apply_file", help=apply.size_hint(loaded),
        )
        if upload is None:
            st.info(apply.size_hint(loaded) + " Nothing you upload is stored.")
        else:
            applied = apply.apply_upload(loaded, upload.getvalue(), upload.name, ways[way])
            grid = applied.png()
            st.image(grid, caption=f"{applied.note} Each input beside the generator's output.", output_format="PNG")
            png_col, npz_col = st.columns(2)
            png_col.download_button("Inputs and outputs (.png)", grid, f"{name}-applied.png", "image/png", on_click="ignore")
            npz_col.download_button(
                "Outputs (.npz)", sampling.samples_npz(applied.outputs, None), f"{name}-applied.npz",
                "application/octet-stream", on_click="ignore",
            )

    elif view == "Grid":
        psi = truncation_slider()
        images, labels, cols = latents.grid_for(loaded, int(n), int(seed), label, psi)
        grid = model_io.grid_png(images, cols)
        rounded = f" ({cols} per class: {n} rounded to whole rows)" * (len(images) != n)
        st.image(grid, caption=f"{len(images)} images{rounded}, seed {seed}" + f", truncation ψ {psi:g}" * (psi != 1), output_format="PNG")
        strip_downloads(grid, images, labels, f"{name}-seed{seed}" + f"-psi{psi:g}" * (psi != 1))

    elif view == style_view:
        blocks = styles.block_names(loaded)
        rows_col, row_from_col, cols_col, col_from_col = st.columns(4)
        rows = rows_col.number_input("Rows", 1, styles.MAX_SOURCES, 4, key="gen_mix_rows", persist_state=KEEP)
        row_from = row_from_col.number_input("Row seeds from", 0, MAX_SEED, 0, key="gen_mix_row_seed", persist_state=KEEP)
        cols = cols_col.number_input("Columns", 1, styles.MAX_SOURCES, 5, key="gen_mix_cols", persist_state=KEEP)
        col_from = col_from_col.number_input("Column seeds from", 0, MAX_SEED, 100, key="gen_mix_col_seed", persist_state=KEEP)
        cut = st.select_slider(
            "Cut-over block", list(range(1, len(blocks))), value=min(3, len(blocks) - 1), key=f"gen_mix_cut_{len(blocks)}", persist_state=KEEP,
            format_func=lambda block: f"{block} ({blocks[block]})",
            help="Blocks before it take the row's style (coarse: shape, slant, thickness); blocks from it on take the column's (fine detail).",
        )
        psi, noise = truncation_slider(), noise_toggle()
        row_seeds, col_seeds = list(range(int(row_from), int(row_from) + int(rows))), list(range(int(col_from), int(col_from) + int(cols)))
        images, grid_cols = styles.mixing_grid(loaded, row_seeds, col_seeds, cut, psi, noise)
        grid = model_io.grid_png(images, grid_cols)
        st.image(
            grid, output_format="PNG",
            caption=f"Top row: column seeds {col_seeds[0]}-{col_seeds[-1]}; left column: row seeds {row_seeds[0]}-{row_seeds[-1]}. "
            f"Each cell: the row's styles for blocks {', '.join(blocks[:cut])}, the column's for {', '.join(blocks[cut:])}.",
        )
        strip_downloads(grid, images, None, f"{name}-mix-cut{cut}")

    elif view == "Interpolate":
        a_col, b_col, steps_col = st.columns(3)
        seed_a = a_col.number_input("Seed A", 0, MAX_SEED, 0, key="gen_seed_a", persist_state=KEEP)
        seed_b = b_col.number_input("Seed B", 0, MAX_SEED, 1, key="gen_seed_b", persist_state=KEEP)
        path_steps = steps_col.slider("Steps", 2, latents.MAX_STEPS, 10, key="gen_path_steps", persist_state=KEEP)
        if style_view:
            psi, noise = truncation_slider(), noise_toggle()
            images, cols = styles.z_and_w_paths(loaded, int(seed_a), int(seed_b), path_steps, psi, noise)
            labels, caption = None, f"Seed {seed_a} to seed {seed_b}. Top: along the great circle in z; bottom: along a straight line in w."
        else:
            spherical = st.toggle("Spherical interpolation (slerp)", value=True, key="gen_spherical", persist_state=KEEP)
            images, labels, cols = latents.interpolation_images(loaded, int(seed_a), int(seed_b), path_steps, spherical, label)
            caption = f"Seed {seed_a} to seed {seed_b}"
        strip = model_io.grid_png(images, cols)
        st.image(strip, caption=caption, output_format="PNG")
        strip_downloads(strip, images, labels, f"{name}-seed{seed_a}-to-{seed_b}")

    elif view == stage_view:
        rows_col, redraw_col = st.columns(2)
        rows = rows_col.number_input("Samples", 1, 16, 6, key="gen_stage_rows", persist_state=KEEP)
        redraws = st.session_state.setdefault("gen_detail_redraws", {}).get(int(seed), 0)
        if redraw_col.button("Redraw only the finest level's noise", help="The coarser levels stay; only the last one's detail changes."):
            redraws = st.session_state["gen_detail_redraws"][int(seed)] = redraws + 1
        images, names = latents.stage_images(loaded, int(rows), int(seed), redraws)
        detail = f", finest level's noise redrawn {redraws} time{'s' * (redraws != 1)}" if redraws else ""
        st.image(
            model_io.grid_png(images, len(names)), output_format="PNG",
            caption=f"{' | '.join(names)} (each scaled to the final size), seed {seed}{detail}",
        )

    elif view == PROJECT:
        source_col, steps_col, class_col = st.columns(3)
        drawn = source_col.radio("Image", ["Draw", "Upload"], horizontal=True, key="gen_project_source") == "Draw"
        steps = steps_col.slider(
            "Optimisation steps", 50, 1000, projection.STEPS, step=50, key="gen_project_steps", persist_state=KEEP,
        )
        with class_col:
            project_label = class_select(loaded, "gen_project_class", guess=True)
        if drawn:
            st.caption("Draw a digit with the mouse, light on dark, as large as the box; the bin icon clears it.")
            canvas = st_canvas(
                stroke_width=18, stroke_color="#FFFFFF", background_color="#000000", height=CANVAS_SIDE, width=CANVAS_SIDE,
                return_image_data=True, key="gen_canvas",
            )
            data, file_name = canvas.image_bytes, "drawing.png"
        else:
            upload = st.file_uploader("Your digit: one PNG or JPEG", type=["png", "jpg", "jpeg"], key="gen_project_file")
            data, file_name = (upload.getvalue(), upload.name) if upload is not None else (None, "")
        if st.button("Project", type="primary", disabled=data is None, help="Find the latent whose image is closest to yours."):
            bar = st.progress(0.0, "Loading the evaluator...")
            evaluator = projection.evaluator_for(loaded, progress=bar.progress)
            found = projection.project_upload(loaded, data, file_name, int(steps), project_label, evaluator, bar.progress)
            model_cache.keep_projection(st.session_state, loaded, found)
            bar.empty()
        found = model_cache.kept_projection(st.session_state, loaded)
        if found is not None:
            picture = found.png()
            st.image(picture, caption="Your image (as the generator sees it) | its reconstruction", output_format="PNG")
            st.write(found.summary())
            st.caption(f"{found.note} The Edit view can now move this reconstruction.")
            png_col, npy_col = st.columns(2)
            png_col.download_button(
                "Image and reconstruction (.png)", picture, f"{name}-projected.png", "image/png", on_click="ignore",
            )
            npy_col.download_button(
                f"Latent {found.space} (.npy)", projection.latent_npy(found), f"{name}-projected-{found.space}.npy",
                "application/octet-stream", on_click="ignore",
            )

    elif view == EDIT:
        space = latent_space(loaded)
        found = model_cache.latent_directions(st.session_state, loaded)
        kept = model_cache.kept_projection(st.session_state, loaded)
        sources = ["Random sample"] + ["Your projected image"] * (kept is not None)
        source_col, seed_col, class_col = st.columns(3)
        from_projection = source_col.radio("Sample", sources, horizontal=True, key="gen_edit_source") != sources[0]
        if from_projection:
            latent, edit_label = kept.latent, kept.label
        else:
            edit_seed = seed_col.number_input("Seed", 0, MAX_SEED, 0, key="gen_edit_seed", persist_state=KEEP)
            latent = space.random(1, int(edit_seed))[0]
            with class_col:
                edit_label = class_select(loaded, "gen_edit_class")
        bar = st.empty()  # the evaluator's training (the first time for this data), then the walk
        evaluator = projection.evaluator_for(loaded, progress=bar.progress)
        st.caption(
            f"Each slider moves the sample in {space.name}, in standard deviations of the generator's samples; the moves add up. "
            f"An attribute slider follows that attribute's gradient at the sample, estimated every {edits.SUBSTEP:g} steps from "
            f"{edits.PROBES} samples around it ({edits.hold_note(space, evaluator)}); principal directions come from PCA."
        )
        slider_cols = st.columns(2)
        moves = {
            direction: slider_cols[i % 2].slider(
                label, -directions.MAX_AMOUNT, directions.MAX_AMOUNT, 0.0, step=0.25, key=f"gen_edit_{i}_{space.name}{space.dim}",
            )
            for i, (label, direction) in enumerate(found.items())
        }
        images, table = edits.before_after(space, latent, moves, edit_label, evaluator, progress=bar.progress)
        bar.empty()
        picture = model_io.grid_png(images, 2)
        st.image(picture, caption="Before | after", output_format="PNG")
        formats = {key: st.column_config.NumberColumn(format="%.2f") for key in table.columns[1:]}
        st.dataframe(table, hide_index=True, column_config=formats)
        strip_downloads(picture, images, None, f"{name}-edited")

    else:
        seed_col, dim_col, steps_col = st.columns(3)
        walk_seed = seed_col.number_input("Seed", 0, MAX_SEED, 0, key="gen_walk_seed", persist_state=KEEP)
        latent_dim = loaded.latent_dim  # in the key, so a kept value always fits this generator
        dim = dim_col.number_input("Dimension", 0, latent_dim - 1, 0, key=f"gen_walk_dim_{latent_dim}", persist_state=KEEP)
        walk_steps = steps_col.slider("Steps", 2, latents.MAX_STEPS, 10, key="gen_walk_steps", persist_state=KEEP)
        low, high = st.slider("Range", -5.0, 5.0, (-3.0, 3.0), step=0.5, key="gen_walk_range", persist_state=KEEP)
        images, labels, cols = latents.walk_images(loaded, int(walk_seed), int(dim), low, high, walk_steps, label)
        strip = model_io.grid_png(images, cols)
        st.image(strip, caption=f"Dimension {dim} from {low} to {high}", output_format="PNG")
        strip_downloads(strip, images, labels, f"{name}-seed{walk_seed}-dim{dim}")
except GanError as exc:
    st.error(str(exc))

if not pairs.is_image_to_image(loaded):
    with st.expander("Synthetic dataset: many samples as a dataset file"):
        st.caption(
            "A file the Workbench accepts as an upload (Configure) or that any script reads: .npz (arrays x and y) or a .zip of PNGs "
            + ("in one folder per class; the classes come in turn." if loaded.conditional else "(unlabelled: this generator takes no class).")
        )
        size_col, seed_col = st.columns(2)
        size = int(size_col.number_input("Samples", 16, 10_000, 1000, step=100, key="gen_dataset_n", persist_state=KEEP))
        data_seed = int(seed_col.number_input("Dataset seed", 0, MAX_SEED, 0, key="gen_dataset_seed", persist_state=KEEP))
        for column, suffix in zip(st.columns(2), (".npz", ".zip")):
            column.download_button(  # built on click
                f"{size} samples ({suffix})", data=lambda suffix=suffix: sampling.dataset_file(loaded, size, data_seed, suffix),
                file_name=f"{name}-{size}-seed{data_seed}{suffix}", mime="application/zip" if suffix == ".zip" else "application/octet-stream",
                on_click="ignore", icon=":material/download:",
            )
