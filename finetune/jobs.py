"""Training jobs for the Fine-tune tab: one runs at a time, the rest wait in a FIFO queue.

Each job trains in a child process of its own (``finetune.process_runner``); a thread here follows it.

    jobs = JobManager(data_dir)
    job_id = jobs.submit(config, owner="browser-token")   # queued; starts when the one before it ends
    jobs.get(job_id)                                      # JobSnapshot: state, progress, ETA, losses, log, metrics
    jobs.stop(job_id, owner)                              # only the owner; a checkpoint is kept
    jobs.resume(job_id, owner)                            # a new job continuing the stopped run
    jobs.close()

Each run keeps ``DATA_DIR/runs/<run_id>/job.json`` (state and progress) and ``job.log`` (the log lines, plus
the traceback of an internal error), so a restarted server lists stopped and interrupted runs and resumes
those with a checkpoint. No Gradio here. Tests: ``pytest tests/test_jobs.py -q``.

One file over ~300 lines on purpose: it is one class, ``JobManager``, whose queue, follower thread and owner
checks share one lock; the run-folder files are already in ``finetune.job_files``, the states in ``job_state``.
"""

from __future__ import annotations

import copy
import gc
import logging
import secrets
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from assistant.core.errors import InputError, UserError
from finetune.failures import explain as explain_failure
from finetune.config import FinetuneConfig
from finetune.job_files import append_log, load_points, restore_records, write_job_file
from finetune.job_state import STATES, JobRecord, JobSnapshot, eta_seconds
from finetune.process_runner import TrainingProcessEnded, run_in_process
from finetune.recipe import RunSummary
from finetune.run_ids import new_run_id, run_folder

log = logging.getLogger(__name__)

__all__ = ["STATES", "JobManager", "JobSnapshot", "NotOwnerError", "eta_seconds"]
Runner = Callable[..., RunSummary]
"""``runner(config, run_dir, resume, on_event, stop_event)``: ``finetune.recipe.run``'s contract (the recipe in a
child process by default); ``resume`` is False for a new job and True for ``JobManager.resume``."""


class NotOwnerError(UserError):
    """Someone other than the job's owner tried to stop or resume it."""


class JobManager:
    """The training queue of one app. Thread-safe; a failing job never stops the worker thread."""

    def __init__(self, data_dir: str | Path, runner: Runner = run_in_process):
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.runs_dir = self.data_dir / "runs"
        self._runner = runner
        self._lock = threading.Condition()
        self._jobs: dict[str, JobRecord] = {}
        self._latest: dict[str, JobRecord] = {}  # run id -> its newest job
        self._queue: deque[JobRecord] = deque()
        self._running: JobRecord | None = None
        self._closing = False
        self._restore()
        self._worker = threading.Thread(target=self._work, name="finetune-jobs", daemon=True)
        self._worker.start()

    # --- public API -----------------------------------------------------------------------------

    def submit(self, config: FinetuneConfig, owner: str) -> str:
        """Queue a new run of ``config``; returns the job id (the run id: ``finetune.run_ids.new_run_id``)."""
        config = copy.copy(config)
        config.data_dir = str(self.data_dir)
        return self._enqueue(JobRecord(_new_id(), new_run_id(config.task), owner, config))

    def resume(self, key: str, owner: str) -> str:
        """Queue a job that continues the stopped run ``key`` (a job id or run id) from its checkpoint."""
        with self._lock:
            job = self._find(key)
            self._check_owner(job, owner, "resume")
            latest = self._latest_of_run(job.run_id)
            if latest.state != "stopped":
                raise InputError(f"Run {job.run_id} is {latest.state}; only a stopped run can be resumed.")
            if not (self.runs_dir / job.run_id / "checkpoint.pt").is_file():
                raise InputError(f"Run {job.run_id} has no checkpoint (it stopped before training began); "
                                 "start it again instead.")
            if not Path(latest.config.data).is_file():
                raise InputError(f"The training file of run {job.run_id} is gone ({Path(latest.config.data).name}); "
                                 "start a new run with the file instead.")
            points = load_points(self.runs_dir / job.run_id)
            resumed = JobRecord(_new_id(), job.run_id, owner, copy.copy(latest.config), resume=True,
                                step=latest.step, total_steps=latest.total_steps, train_points=points[0],
                                val_points=points[1])
        return self._enqueue(resumed)

    def stop(self, key: str, owner: str) -> JobSnapshot:
        """Stop a running job at the next step (checkpoint kept) or take a queued one off the queue."""
        with self._lock:
            job = self._find(key)
            self._check_owner(job, owner, "stop")
            if job.state == "queued":
                self._queue.remove(job)
                job.state, job.ended = "stopped", time.monotonic()
                self._log(job, "Cancelled before it started.")
            elif job.state == "running":
                job.stop_event.set()
                self._log(job, "Stop requested: the run stops after the current step and keeps a checkpoint.")
            else:
                raise InputError(f"Job {job.job_id} is already {job.state}; there is nothing to stop.")
            return self._snapshot(job)

    def get(self, key: str) -> JobSnapshot:
        with self._lock:
            return self._snapshot(self._find(key))

    def find(self, key: str | None) -> JobSnapshot | None:
        """Like ``get`` but None for an unknown or empty key."""
        with self._lock:
            job = self._lookup(key) if key else None
            return self._snapshot(job) if job else None

    def pid(self, key: str) -> int | None:
        """The process id of the job's training process while it runs, else None."""
        with self._lock:
            job = self._find(key)
            return job.pid if job.state == "running" else None

    def current(self) -> JobSnapshot | None:
        with self._lock:
            return self._snapshot(self._running) if self._running else None

    def jobs_for(self, owner: str) -> list[JobSnapshot]:
        """The owner's jobs, newest first."""
        with self._lock:
            return [self._snapshot(j) for j in reversed(self._jobs.values()) if j.owner == owner]

    def resumable(self) -> list[JobSnapshot]:
        """Stopped runs with a checkpoint (this session's and those found on disk), newest first."""
        with self._lock:
            return [self._snapshot(j) for j in reversed(self._jobs.values()) if self._is_resumable(j)]

    def close(self, timeout: float = 60) -> None:
        """Stop the running job (checkpoint kept), cancel the queue and end the worker thread."""
        with self._lock:
            self._closing = True
            for job in self._queue:
                job.state = "stopped"
                self._log(job, "Cancelled: the server is shutting down.")
            self._queue.clear()
            if self._running:
                self._running.stop_event.set()
            self._lock.notify_all()
        self._worker.join(timeout)

    # --- the worker -----------------------------------------------------------------------------

    def _enqueue(self, job: JobRecord) -> str:
        with self._lock:
            if self._closing:
                raise UserError.keyed("jobs.shutting_down")
            self._jobs[job.job_id] = self._latest[job.run_id] = job
            self._queue.append(job)
            self._log(job, f"Queued ({'resume of ' if job.resume else ''}run {job.run_id}).")
            self._lock.notify_all()
        return job.job_id

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    self._lock.wait()
                if self._closing:
                    return
                job = self._running = self._queue.popleft()
                job.state, job.began = "running", time.monotonic()
                run_dir = run_folder(self.data_dir, job.run_id)
                run_dir.mkdir(parents=True, exist_ok=True)
                self._log(job, "Started.")
            try:
                summary = self._runner(job.config, run_dir, job.resume,
                                       lambda kind, payload: self._on_event(job, kind, payload), job.stop_event)
                self._end(job, summary.status)
            except TrainingProcessEnded as exc:  # killed, crashed: how it ended, and resumable with a checkpoint
                self._end(job, "stopped" if exc.resumable else "failed", str(exc))
            except UserError as exc:
                self._end(job, "failed", str(exc))
            except BaseException as exc:  # noqa: BLE001 - a bug in one job must not end the queue
                known = explain_failure(exc)  # out of memory, disk full: the fix, not a traceback
                if known is not None:
                    self._end(job, "failed", str(known), traceback.format_exc())
                else:
                    self._end(job, "failed", f"internal error: {type(exc).__name__}: {exc}", traceback.format_exc())
            finally:
                gc.collect()  # the run's model is garbage now: give its memory back before the next job

    def _on_event(self, job: JobRecord, kind: str, payload: dict) -> None:
        with self._lock:
            now = time.monotonic()
            if kind == "process":
                job.pid = payload.get("pid")
            elif kind == "status":
                self._log(job, payload["message"])
            elif kind == "start":
                job.total_steps, job.last_step_clock = payload["total_steps"], now
                self._log(job, f"Training {payload['total_steps']} steps on {payload['train_examples']} examples "
                               f"({payload['val_examples']} for validation). Same run from the command line: "
                               f"{payload['command']}")
            elif kind == "step":
                line = job.record_step(payload, now)
                if line:
                    self._log(job, line)
            elif kind == "metrics":
                job.metrics = copy.deepcopy(payload)
            elif kind == "stopped":
                self._log(job, f"Stopped at step {payload['step']}; the checkpoint is kept: Resume continues from it.")
            elif kind == "finished":
                job.summary, job.adapter = copy.deepcopy(payload), payload.get("adapter")
                self._log(job, f"Adapter saved as '{job.adapter}'.")
            self._touch(job)

    def _end(self, job: JobRecord, state: str, error: str | None = None, trace: str | None = None) -> None:
        with self._lock:
            job.state, job.error, job.ended = state, error, time.monotonic()
            self._running = None
            if error:
                self._log(job, f"Failed: {error}" if state == "failed" else error)
            if trace:
                log.error("Job %s failed with an internal error; traceback in %s", job.job_id,
                          self.runs_dir / job.run_id / "job.log")
                append_log(self.runs_dir / job.run_id, trace)
            self._touch(job)

    # --- helpers (called with the lock held) ------------------------------------------------------

    def _touch(self, job: JobRecord) -> None:
        job.version += 1
        if job.state != "queued":
            write_job_file(self.runs_dir / job.run_id, job, job.elapsed)

    def _log(self, job: JobRecord, message: str) -> None:
        line = f"{datetime.now():%H:%M:%S} {message}"
        job.log.append(line)
        job.version += 1
        if job.state != "queued" or job.resume:
            append_log(self.runs_dir / job.run_id, line)

    def _lookup(self, key: str) -> JobRecord | None:
        if key in self._jobs:
            return self._jobs[key]
        same_run = [j for j in self._jobs.values() if j.run_id == key]
        return same_run[-1] if same_run else None

    def _find(self, key: str) -> JobRecord:
        job = self._lookup(key or "")
        if job is None:
            raise InputError(f"There is no job or run called '{key}'. Pick one from the list of runs.")
        return job

    def _latest_of_run(self, run_id: str) -> JobRecord:
        return self._latest[run_id]

    def _is_resumable(self, job: JobRecord) -> bool:
        return (job.state == "stopped" and self._latest.get(job.run_id) is job
                and (self.runs_dir / job.run_id / "checkpoint.pt").is_file())

    @staticmethod
    def _check_owner(job: JobRecord, owner: str, action: str) -> None:
        if job.owner is not None and job.owner != owner:
            key = {"stop": "jobs.not_owner_stop", "resume": "jobs.not_owner_resume"}[action]
            raise NotOwnerError.keyed(key, job=job.job_id)

    def _position(self, job: JobRecord) -> int | None:
        if job.state != "queued" or job not in self._queue:
            return None
        return self._queue.index(job) + (1 if self._running else 0)

    def _snapshot(self, job: JobRecord) -> JobSnapshot:
        return job.snapshot(self._position(job), self._is_resumable(job))

    def _restore(self) -> None:
        """Runs of earlier server processes (owner-less: anyone may resume them)."""
        for job in restore_records(self.runs_dir):
            self._jobs[job.job_id] = self._latest[job.run_id] = job


def _new_id() -> str:
    return f"job-{secrets.token_hex(4)}"
