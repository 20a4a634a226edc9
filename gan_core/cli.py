"""The command line: train, resume, generate, apply, project, export, evaluate, report, list runs, and the sweep commands
(`sweeps/commands.py`).

TensorFlow is imported only by the commands that need it, so `runs`, `report` and `--help` are quick.
Errors a user can cause, and a run folder that cannot be written (a full disk, no permission), print one
sentence and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from gan_core.config import load_config, preset_names
from gan_core.errors import GanError
from gan_core.history_metrics import progress_text
from gan_core.store.runs import RunStore, export_zip, write_error
from gan_core.sweeps import commands as sweep_commands

EXIT_USER_ERROR = 2
EXIT_NOT_FINISHED = 3
NO_TENSORFLOW = ("runs", "report", *sweep_commands.COMMANDS)  # quick commands: their process never imports TensorFlow


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gan_core", description="Train and use GANs from the terminal.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("--runs-dir", help="Run store folder (default: $GAN_RUNS_DIR or ./runs).")
        sub.add_argument("--verbose", action="store_true", help="Also show TensorFlow's own start-up messages.")
        return sub

    train = add("train", "Train a new run; prints its run id first.")
    train.add_argument("--config", required=True, help=f"A preset ({', '.join(preset_names())}) or a JSON file.")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Override one config field (repeatable).")

    resume = add("resume", "Continue a stopped, crashed or finished run from its last checkpoint.")
    resume.add_argument("run_id")
    resume.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Change the schedule, e.g. epochs=20.")

    work = add("work", "Train a run already in the store (how the dashboard starts its worker jobs).")
    work.add_argument("run_id")
    work.add_argument("--resume", action="store_true", help="Continue from the last checkpoint.")

    generate = add("generate", "Generate images from a run's generator.")
    generate.add_argument("run_id")
    generate.add_argument("--n", type=int, default=64, help="Number of images (default 64).")
    generate.add_argument(
        "--out", required=True,
        help="Output file: .npz (arrays x, y) or .zip (PNGs in one folder per class), both a dataset the Workbench accepts "
        "as an upload; or .png (a grid).",
    )
    generate.add_argument("--label", type=int, help="Class to generate (conditional runs only).")
    generate.add_argument("--seed", type=int, default=0, help="Latent seed (default 0).")
    generate.add_argument("--step", type=int, help="Checkpoint step (default: the newest).")
    generate.add_argument(
        "--truncation", type=float, default=1.0, metavar="PSI",
        help="Truncation psi in [0, 1]: 1 (default) draws as trained, lower values give more typical, less varied images.",
    )

    apply = add("apply", "Apply an image-to-image run (srgan, restore, cyclegan) to your images: one PNG/JPEG, or a batch as .npz or .zip.")
    apply.add_argument("run_id")
    apply.add_argument("--in", dest="source", required=True, help="Images of the generator's input size, or of the training size (degraded first).")
    apply.add_argument("--out", required=True, help="Output file: .npz (array x) or .png (each input beside its output).")
    apply.add_argument("--step", type=int, help="Checkpoint step (default: the newest).")
    apply.add_argument("--reverse", action="store_true", help="cyclegan: translate domain B to A instead of A to B.")

    project = add("project", "Project a PNG/JPEG digit into a noise-to-image run's latent space; prints the distances.")
    project.add_argument("run_id")
    project.add_argument("--in", dest="source", required=True, help="The image: any size (cropped to its ink).")
    project.add_argument("--out", help="Write the image beside its reconstruction (.png) or the found latent (.npy).")
    project.add_argument("--steps", type=int, default=200, help="Optimisation steps (default 200).")
    project.add_argument("--label", type=int, help="Class to draw it as (conditional runs; default: the evaluator's guess).")
    project.add_argument("--step", type=int, help="Checkpoint step (default: the newest).")

    export = add("export", "Export a run as a .zip (with its generator as a .keras file).")
    export.add_argument("run_id")
    export.add_argument("--out", required=True, help="The .zip file to write.")

    evaluate = add("evaluate", "Measure a run's generator against held-out images (saved in the run folder).")
    evaluate.add_argument("run_id")
    evaluate.add_argument("--n", type=int, help="Images per side (default: the held-out set size, at most 10000).")
    evaluate.add_argument("--step", type=int, help="Checkpoint step (default: the newest).")
    evaluate.add_argument("--json", action="store_true", help="Print the full result as JSON.")

    report = add("report", "Write a run's report: one HTML file (charts, sample grids, quality, config, environment) that opens offline.")
    report.add_argument("run_id")
    report.add_argument("--out", help="The .html file to write (default: RUN_ID.html in the current folder).")

    add("runs", "List runs with their status and last losses.")
    sweep_commands.add_parsers(add)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose and args.command not in NO_TENSORFLOW:
        import_tensorflow_quietly()
    store = RunStore(args.runs_dir)
    try:
        return COMMANDS[args.command](args, store)
    except GanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:  # a file outside the training loop (which words its own): an export, a full disk, ...
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}.", file=sys.stderr)
        return EXIT_USER_ERROR


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and Keras with their C++ start-up lines (absl, oneDNN, CUDA probing) sent to /dev/null.

    Those lines are written to file descriptor 2 before TF_CPP_MIN_LOG_LEVEL is read, so only a
    redirect hides them; Python's own errors after the import still reach the terminal.
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras  # noqa: F401  (imports TensorFlow, its backend)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# ---- commands ---------------------------------------------------------------------------
SCHEDULE_KEYS = ("epochs", "steps", "time_limit", "sample_every", "checkpoint_every", "eval_every", "steps_per_call")


def cmd_train(args: argparse.Namespace, store: RunStore) -> int:
    config = load_config(args.config).with_overrides(args.set)
    if not _is_chief():
        with tempfile.TemporaryDirectory(prefix="gan-worker-") as scratch:
            print("non-chief worker: training in step with the chief, which writes the run", file=sys.stderr)
            return _train(RunStore(scratch).create(config), resume=False)
    run = store.create(config)
    print(run.id, flush=True)
    try:
        return _train(run, resume=False)
    except GanError:
        if not any(run.checkpoints_dir.iterdir()):
            store.delete(run.id)  # refused before training anything: leave no empty run behind
        raise


def _is_chief() -> bool:
    from gan_core.training.devices import is_chief

    return is_chief()


def cmd_resume(args: argparse.Namespace, store: RunStore) -> int:
    from gan_core.config import parse_assignment

    run = store.get(args.run_id)
    changes = dict(parse_assignment(a) for a in args.set)
    for key in changes:
        if key not in SCHEDULE_KEYS:
            raise GanError(f"Only the schedule can change on resume ({', '.join(SCHEDULE_KEYS)}); '{key}' cannot.")
    if not _is_chief():  # reads the run (shared folder, or a copy on its machine) and writes only its own copy
        with tempfile.TemporaryDirectory(prefix="gan-worker-") as scratch:
            print("non-chief worker: resuming in step with the chief from a copy of its run", file=sys.stderr)
            copy = RunStore(scratch).get(shutil.copytree(run.dir, Path(scratch) / run.id).name)
            copy.config_path.write_text(copy.config().replace(**changes).to_json())
            return _train(copy, resume=True)
    if run.status()["state"] == "running":
        raise GanError(f"Run '{run.id}' is still training (pid {run.status().get('pid')}); stop it first.")
    if changes:
        from gan_core.store.runs import atomic_write_text

        try:
            atomic_write_text(run.config_path, run.config().replace(**changes).to_json())
        except OSError as exc:
            raise write_error(f"the new schedule to {run.config_path}", exc) from None
    run.stop_path.unlink(missing_ok=True)
    return _train(run, resume=True)


def cmd_work(args: argparse.Namespace, store: RunStore) -> int:
    from gan_core.store.jobs import wait_for_turn

    run = store.get(args.run_id)
    if not wait_for_turn(store, run):
        print(f"run {run.id}: not trained; it was stopped, deleted or taken by another worker while queued.", file=sys.stderr)
        return 0
    return _train(run, resume=args.resume)


def _train(run, resume: bool) -> int:
    from gan_core.training.loop import train_run
    from gan_core.training.progress import TerminalProgress

    stop = threading.Event()
    _stop_on_signals(stop)
    progress = TerminalProgress()
    try:
        status = train_run(run, resume=resume, stop_event=stop, on_progress=progress)
    finally:
        progress.close()
    print(f"run {run.id}: {status['state']} at step {status['step']}. {status.get('message', '')}".rstrip(), file=sys.stderr)
    return 0 if status["state"] in ("finished", "stopped") else EXIT_NOT_FINISHED


def _stop_on_signals(stop: threading.Event) -> None:
    """First SIGINT/SIGTERM: stop after the current step with a checkpoint; a second SIGINT aborts."""

    def handler(signum, frame):
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping after this step (saving a checkpoint)...", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def cmd_generate(args: argparse.Namespace, store: RunStore) -> int:
    from gan_core import families
    from gan_core.generation.sampling import check_out, check_truncation, load_generator, sample, save_samples

    run = store.get(args.run_id)
    check_out(args.out)
    check_truncation(families.get(run.config().family), args.truncation)
    loaded = load_generator(run, args.step)
    if loaded.note:
        print(loaded.note, file=sys.stderr)
    images, labels = sample(loaded, args.n, seed=args.seed, label=args.label, truncation=args.truncation)
    out = save_samples(images, labels, args.out, loaded.class_names)
    print(f"wrote {len(images)} images from step {loaded.step} to {out}")
    return 0


def cmd_apply(args: argparse.Namespace, store: RunStore) -> int:
    from gan_core.generation.apply import apply_file
    from gan_core.generation.sampling import load_generator

    loaded = load_generator(store.get(args.run_id), args.step)
    if loaded.note:
        print(loaded.note, file=sys.stderr)
    applied = apply_file(loaded, Path(args.source), Path(args.out), args.reverse)
    print(f"{applied.note} Wrote {len(applied.outputs)} outputs of step {loaded.step} to {args.out}")
    return 0


def cmd_project(args: argparse.Namespace, store: RunStore) -> int:
    from gan_core.generation.projection import evaluator_for, project_file
    from gan_core.generation.sampling import load_generator

    loaded = load_generator(store.get(args.run_id), args.step)
    if loaded.note:
        print(loaded.note, file=sys.stderr)

    def progress(fraction: float, message: str) -> None:
        print(f"{100 * fraction:3.0f}% {message}", file=sys.stderr, flush=True)

    out = Path(args.out) if args.out else None
    found = project_file(loaded, Path(args.source), out, args.steps, args.label, evaluator_for(loaded, progress), progress)
    print(f"{found.note} {found.summary()}" + (f" Wrote {out}." if out else ""))
    return 0


def cmd_export(args: argparse.Namespace, store: RunStore) -> int:
    from gan_core.generation.sampling import export_generator

    run = store.get(args.run_id)
    if not args.out.endswith(".zip"):
        raise GanError(f"--out must end in .zip; got '{args.out}'.")
    export_generator(run)
    out = export_zip(run, args.out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def cmd_evaluate(args: argparse.Namespace, store: RunStore) -> int:
    import json

    from gan_core.evaluation.evaluate import evaluate_run, format_report

    def progress(fraction: float, message: str) -> None:
        print(f"{100 * fraction:3.0f}% {message}", file=sys.stderr, flush=True)

    result = evaluate_run(store.get(args.run_id), n=args.n, step=args.step, progress=progress)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


def cmd_report(args: argparse.Namespace, store: RunStore) -> int:
    from gan_core.dashboard.report import run_report
    from gan_core.store.runs import atomic_write_text

    run = store.get(args.run_id)
    out = Path(args.out or f"{run.id}.html")
    if out.suffix.lower() not in (".html", ".htm"):
        raise GanError(f"--out must end in .html; got '{out}'.")
    try:
        atomic_write_text(out, run_report(run))
    except OSError as exc:
        raise write_error(f"the report to {out}", exc) from None
    print(out)
    return 0


def cmd_runs(args: argparse.Namespace, store: RunStore) -> int:
    runs = store.list()
    if not runs:
        print(f"no runs in {store.root}")
        return 0
    print(f"{'RUN ID':<44} {'STATE':<9} {'STEP':>13}  {'DATASET':<10} LATEST")
    for run in runs:
        print(_run_line(run))
    return 0


def _run_line(run) -> str:
    try:
        status = run.status()
    except GanError as exc:
        return f"{run.id:<44} {'broken':<9} {exc}"
    rows = run.history_tail(1)
    latest = progress_text(run.metrics(), rows[-1]) if rows else "-"
    steps = f"{status.get('step', 0)}/{status.get('total_steps', '?')}"
    return f"{run.id:<44} {status['state']:<9} {steps:>13}  {status.get('dataset', '-'):<10} {latest}"


COMMANDS = {
    "train": cmd_train,
    "resume": cmd_resume,
    "work": cmd_work,
    "generate": cmd_generate,
    "apply": cmd_apply,
    "project": cmd_project,
    "export": cmd_export,
    "evaluate": cmd_evaluate,
    "report": cmd_report,
    "runs": cmd_runs,
    **sweep_commands.COMMANDS,
}
