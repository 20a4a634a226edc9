"""The sweep commands of the command line: sweep, sweep-worker, sweeps and save-preset (no TensorFlow in this process)."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Callable

from gan_core.config import load_config, preset_names
from gan_core.errors import ConfigError
from gan_core.store.runs import RunStore
from gan_core.sweeps.spec import ON_CRASH, SEARCHES, SweepSpec, check, default_direction, parse_dimension
from gan_core.sweeps.store import SweepStore, redacted

VARY_HELP = "A field to vary: g_lr=1e-4:1e-3:log (a range), batch_size=16,32,64 or loss=bce,hinge (choices); repeatable."


def add_parsers(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Declare the sweep commands with the CLI's own `add` (which adds --runs-dir and --verbose)."""
    sweep = add("sweep", "Start a hyperparameter sweep and work on it here (prints its id first); Ctrl-C stops it.")
    sweep.add_argument("--config", required=True, help=f"The base: a preset ({', '.join(preset_names())}) or a JSON file.")
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Override one base field (repeatable).")
    sweep.add_argument("--vary", action="append", default=[], metavar="FIELD=RANGE", required=True, help=VARY_HELP)
    sweep.add_argument("--search", choices=SEARCHES, default="random", help="random (default), tpe (Optuna's TPE) or grid.")
    sweep.add_argument("--trials", type=int, default=6, help="Number of trials (default 6; a grid stops at its size).")
    budget = sweep.add_mutually_exclusive_group(required=True)
    budget.add_argument("--steps", type=int, help="Training steps per trial.")
    budget.add_argument("--seconds", type=int, help="Seconds of training per trial.")
    sweep.add_argument("--objective", default="frechet_distance", help="frechet_distance (default), classes_covered, class_kl or a family metric.")
    sweep.add_argument("--direction", choices=("minimize", "maximize"), help="Default: the objective's better side.")
    sweep.add_argument("--on-crash", choices=ON_CRASH, default="retry", help="A crashed trial is resumed (retry, default) or marked failed.")
    sweep.add_argument("--name", help="The sweep's name (default: the base's name).")
    sweep.add_argument("--seed", type=int, default=0, help="The search's seed (default 0).")
    sweep.add_argument("--storage", default="", help="Optuna storage URL shared by several machines, e.g. postgresql://user:pw@host/db "
                       "(default: a journal file in the runs folder).")
    sweep.add_argument("--detach", action="store_true", help="Start the worker in the background and return at once.")

    worker = add("sweep-worker", "Work on a sweep: run its trials until its budget is spent (start one on each machine).")
    worker.add_argument("sweep_id")
    worker.add_argument("--storage", default="", help="The sweep's storage URL, on a machine that did not create the sweep.")
    worker.add_argument("--parallel", type=int, help="Trials this worker keeps in flight (default: $GAN_MAX_JOBS, 1).")

    add("sweeps", "List sweeps with their progress and best trial.")

    preset = add("save-preset", "Save a run's config as a named preset of yours (e.g. a sweep's best trial), shown on Configure.")
    preset.add_argument("run_id")
    preset.add_argument("name")


def cmd_sweep(args: argparse.Namespace, store: RunStore) -> int:
    base = load_config(args.config).with_overrides(args.set)
    spec = SweepSpec(
        name=args.name or base.name or base.family, base=base.to_dict(),
        dimensions=tuple(parse_dimension(text, base) for text in args.vary), search=args.search, trials=args.trials,
        budget_steps=args.steps or 0, budget_seconds=args.seconds or 0, objective=args.objective,
        direction=args.direction or default_direction(args.objective), on_crash=args.on_crash, seed=args.seed,
    )
    check(spec)
    sweep = SweepStore(store).create(spec, args.storage)
    print(sweep.id, flush=True)
    if args.detach:
        from gan_core.sweeps.worker import start_worker

        start_worker(sweep, store)
        print(f"working in the background (log: {sweep.dir / 'worker.log'}); `python -m gan_core sweeps` shows progress", file=sys.stderr)
        return 0
    return _work(sweep, store, None)


def cmd_sweep_worker(args: argparse.Namespace, store: RunStore) -> int:
    sweeps = SweepStore(store)
    sweep = sweeps.join(args.sweep_id, args.storage) if args.storage else sweeps.get(args.sweep_id)
    if args.parallel is not None and args.parallel < 1:
        raise ConfigError(f"--parallel must be at least 1; got {args.parallel}.")
    return _work(sweep, store, args.parallel)


def _work(sweep, store: RunStore, parallel: int | None) -> int:
    from gan_core.sweeps.worker import SweepWorker

    sweep.stop_path.unlink(missing_ok=True)

    def stop(signum, frame):
        sweep.stop_path.touch()
        print("\nstopping the sweep: its running trials save a checkpoint; `sweep-worker` resumes it", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    where = f" (storage {redacted(sweep.storage)})" if sweep.storage else ""
    print(f"sweep {sweep.id}{where}: {sweep.spec().planned_trials()} trials of {sweep.spec().budget_text()}", file=sys.stderr, flush=True)
    worker = SweepWorker(sweep, store, parallel=parallel, say=lambda line: print(line, file=sys.stderr, flush=True))
    print(worker.run(), flush=True)
    return 0


def cmd_sweeps(args: argparse.Namespace, store: RunStore) -> int:
    from gan_core.sweeps.progress import sweep_line

    sweeps = SweepStore(store).list()
    if not sweeps:
        print(f"no sweeps in {store.root}")
        return 0
    for sweep in sweeps:
        print(sweep_line(sweep))
    return 0


def cmd_save_preset(args: argparse.Namespace, store: RunStore) -> int:
    from gan_core.store.presets import save_user_preset

    path = save_user_preset(args.name, store.get(args.run_id).config())
    print(f"saved preset '{args.name}' ({path}); train it with --config {args.name}")
    return 0


COMMANDS = {"sweep": cmd_sweep, "sweep-worker": cmd_sweep_worker, "sweeps": cmd_sweeps, "save-preset": cmd_save_preset}
