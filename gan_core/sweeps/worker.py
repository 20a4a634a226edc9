"""The sweep worker: asks Optuna for trials, trains each as an ordinary queued run, and tells Optuna the objective.

`python -m gan_core sweep-worker SWEEP_ID` runs one; the Sweep page and `sweep` start one detached.
Any number of workers, on one machine or several (a shared database storage), work on one sweep:

- Budget: trial numbers are handed out by the storage, one at a time, so the trials counted are
  those numbered below the planned count, less the ones replaced after a lost worker; a worker
  that draws a trial past the budget marks it "over budget" (failed) and trains nothing.
- A trial records its run id, its worker (host and pid) and a heartbeat. A worker adopts the
  running trials of a dead worker (same host: its process is gone; another host: no heartbeat for
  STALE_SECONDS): a trial whose run it can see goes on (the run's own worker was never the
  sweep worker); one whose run it cannot see fails and, with on_crash=retry, is queued again.
- A trial's run that crashed is resumed from its checkpoint (at most MAX_RETRIES times) with
  on_crash=retry, or fails with on_crash=fail; a diverged or stopped run fails with its reason.
- The STOP file stops the sweep: the worker stops its running trials (each saves a checkpoint),
  marks them stopped, and exits; "Resume sweep" starts a worker again, which resumes them.
No TensorFlow is imported here: each trial trains in its own process.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Callable

from gan_core.errors import GanError, RunError
from gan_core.store import jobs
from gan_core.store.runs import RunStore, pid_alive
from gan_core.sweeps.objective import read_objective
from gan_core.sweeps.spec import MAX_RETRIES, SweepSpec
from gan_core.sweeps.store import STALE_SECONDS, Sweep, open_study

POLL_SECONDS = 2.0


def start_worker(sweep: Sweep, store: RunStore) -> None:
    """Start a sweep worker detached from this process (the Sweep page's Start and Resume), its output in the sweep's worker.log."""
    sweep.stop_path.unlink(missing_ok=True)
    worker = jobs.spawn_detached(["sweep-worker", sweep.id, "--runs-dir", str(store.root.resolve())], sweep.dir / "worker.log")
    sweep.heartbeat(worker.pid)


def distributions(spec: SweepSpec) -> dict[str, Any]:
    """Optuna's distribution of each dimension (a grid search's as the choices of its grid)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    found = {}
    for d in spec.dimensions:
        if spec.search == "grid" or d.kind == "choice":
            found[d.field] = CategoricalDistribution(list(d.grid()))
        elif d.kind == "int":
            found[d.field] = IntDistribution(int(d.low), int(d.high), log=d.log)
        else:
            found[d.field] = FloatDistribution(float(d.low), float(d.high), log=d.log)
    return found


def counted(trial) -> bool:
    """Whether a trial uses the budget: not drawn past it, not replaced by a retry."""
    return not trial.user_attrs.get("over_budget") and not trial.user_attrs.get("replaced")


class SweepWorker:
    """One worker process's share of a sweep."""

    def __init__(self, sweep: Sweep, store: RunStore, parallel: int | None = None, poll: float = POLL_SECONDS,
                 say: Callable[[str], None] = print) -> None:
        self.sweep, self.store, self.poll, self.say = sweep, store, poll, say
        self.spec = sweep.spec()
        self.study = open_study(sweep, self.spec)
        self.parallel = parallel or jobs.max_jobs()
        self.me = f"{socket.gethostname()}:{os.getpid()}"
        self.mine: dict[int, str] = {}  # trial number -> run id, the trials this worker watches

    # ---- the loop ---------------------------------------------------------------------
    def run(self) -> str:
        """Work until the budget is spent and every trial ended, or the sweep is stopped; return a closing line."""
        self.sweep.heartbeat()
        try:
            while True:
                self.adopt_orphans()
                self.settle()
                if self.sweep.stop_requested():
                    if self.stop_trials():
                        return f"Sweep {self.sweep.id} stopped; resume it to go on."
                else:
                    while len(self.mine) < self.parallel and self.launch_next():
                        pass
                    if not self.mine and self.remaining() == 0 and not self.others_running():
                        return self.summary()
                self.beat()
                time.sleep(self.poll)
        finally:
            self.sweep.leave()

    def trials(self, states=None) -> list:
        return self.study.get_trials(deepcopy=False, states=states)

    def remaining(self) -> int:
        """Trials still to start in the whole sweep: a retry queued for a lost trial (waiting) is one of them."""
        from optuna.trial import TrialState

        started = [t for t in self.trials() if t.state != TrialState.WAITING]
        return max(0, self.spec.planned_trials() - sum(counted(t) for t in started))

    def others_running(self) -> bool:
        from optuna.trial import TrialState

        return any(t.number not in self.mine for t in self.trials((TrialState.RUNNING,)))

    def summary(self) -> str:
        from optuna.trial import TrialState

        done = self.trials((TrialState.COMPLETE,))
        failed = [t for t in self.trials((TrialState.FAIL,)) if counted(t)]
        if not done:
            return f"Sweep {self.sweep.id} finished: no trial completed ({len(failed)} failed)."
        best = self.study.best_trial
        return (f"Sweep {self.sweep.id} finished: {len(done)} trials completed, {len(failed)} failed; best #{best.number} "
                f"{self.spec.objective}={best.value:.4g} with {_params_text(best.params)} (run {best.user_attrs.get('run_id')}).")

    # ---- starting trials ----------------------------------------------------------------
    def launch_next(self) -> bool:
        """Ask for one trial and start its run; False when the budget is spent."""
        from optuna.trial import TrialState

        if self.remaining() == 0:
            return False
        trial = self.study.ask(distributions(self.spec))
        before = [t for t in self.trials() if t.number < trial.number]
        if sum(counted(t) for t in before) >= self.spec.planned_trials():
            trial.set_user_attr("over_budget", True)
            self.study.tell(trial, state=TrialState.FAIL)
            return False
        trial.set_user_attr("worker", self.me)
        trial.set_user_attr("heartbeat", time.time())
        try:
            config = self.spec.trial_config(trial.params, trial.number)
            run = jobs.start_job(self.store, config, tags={"sweep": self.sweep.id, "trial": trial.number})
        except GanError as exc:
            self._fail(trial.number, str(exc))
            return True
        trial.set_user_attr("run_id", run.id)
        self.mine[trial.number] = run.id
        self.say(f"trial #{trial.number}: run {run.id} with {_params_text(trial.params)}")
        return True

    # ---- watching trials ----------------------------------------------------------------
    def settle(self) -> None:
        """Tell Optuna the trials whose runs ended; resume or fail the crashed ones."""
        for number, run_id in list(self.mine.items()):
            try:
                run = self.store.get(run_id)
                state = jobs.job_status(run)["state"]
            except GanError as exc:
                self._fail(number, f"its run cannot be read ({exc})")
                continue
            if state == "finished":
                self._complete(number, run)
            elif state == "crashed":
                self._crashed(number, run)
            elif state in ("stopped", "diverged") and not self.sweep.stop_requested():
                message = run.raw_status().get("message") or state
                self._fail(number, f"its run {state}: {message}")

    def _complete(self, number: int, run) -> None:
        try:
            value = read_objective(run, self.spec.objective)
        except GanError as exc:
            self._fail(number, str(exc))
            return
        self.study.tell(number, value, skip_if_finished=True)
        self.mine.pop(number)
        self.say(f"trial #{number}: {self.spec.objective}={value:.4g}")

    def _crashed(self, number: int, run) -> None:
        trial = self.study.trials[number]
        retries = int(trial.user_attrs.get("retries", 0))
        reason = run.raw_status().get("message") or "its worker process ended"
        if self.spec.on_crash != "retry" or retries >= MAX_RETRIES:
            self._fail(number, f"its run crashed: {reason}")
            return
        try:
            jobs.resume_job(self.store, run.id)
        except RunError:  # another worker resumed it first
            return
        self._set(number, "retries", retries + 1)
        self.say(f"trial #{number}: its run crashed ({reason}); resumed from its checkpoint (retry {retries + 1} of {MAX_RETRIES})")

    def _fail(self, number: int, reason: str) -> None:
        from optuna.trial import TrialState

        self._set(number, "error", reason[:500])
        self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
        self.mine.pop(number, None)
        self.say(f"trial #{number} failed: {reason}")

    def _set(self, number: int, key: str, value: Any) -> None:
        """Set a user attribute of a trial by number (Optuna's public API does so only through a live Trial)."""
        self.study._storage.set_trial_user_attr(self.study._storage.get_trial_id_from_study_id_trial_number(self.study._study_id, number), key, value)

    def beat(self) -> None:
        self.sweep.heartbeat()
        for number in self.mine:
            self._set(number, "heartbeat", time.time())

    # ---- lost workers and stopping ----------------------------------------------------------
    def adopt_orphans(self) -> None:
        """Take over the running trials of workers that died."""
        from optuna.trial import TrialState

        for trial in self.trials((TrialState.RUNNING,)):
            if trial.number in self.mine or _alive(trial):
                continue
            self._set(trial.number, "worker", self.me)
            run_id = trial.user_attrs.get("run_id")
            if run_id and (self.store.root / run_id).is_dir():
                self.mine[trial.number] = run_id
                if jobs.job_status(self.store.get(run_id))["state"] == "stopped":
                    jobs.resume_job(self.store, run_id)  # stopped with the sweep: it goes on with it
                self.say(f"trial #{trial.number}: taken over from a worker that ended (run {run_id})")
                continue
            if self.spec.on_crash == "retry":  # queued before the lost trial ends, so no racing worker sees a free slot
                self.study.enqueue_trial(trial.params)
                self._set(trial.number, "replaced", True)
            self._fail(trial.number, f"its worker {trial.user_attrs.get('worker', '?')} stopped answering")

    def stop_trials(self) -> bool:
        """Stop this worker's running trials; True once none is still training."""
        for run_id in self.mine.values():
            run = self.store.get(run_id)
            if jobs.is_active(run):
                jobs.stop_job(run)
        return not any(jobs.is_active(self.store.get(run_id)) for run_id in self.mine.values())


def _alive(trial) -> bool:
    """Whether the worker that owns a running trial still works on it."""
    host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return pid_alive(int(pid)) and int(pid) != os.getpid()
    return time.time() - float(trial.user_attrs.get("heartbeat", 0)) < STALE_SECONDS


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
