"""Training jobs for the Fine-tune tab: one runs at a time in a background thread, the rest wait in a FIFO queue.

    jobs = JobManager(data_dir)
    job_id = jobs.submit(config, owner="browser-token")   # queued; starts when the one before it ends
    jobs.get(job_id)                                      # JobSnapshot: state, progress, ETA, losses, log, metrics
    jobs.stop(job_id, owner)                              # only the owner; a checkpoint is kept
    jobs.resume(job_id, owner)                            # a new job continuing the stopped run
    jobs.close()

Each run keeps ``DATA_DIR/runs/<run_id>/job.json`` (state and progress) and ``job.log`` (the log lines, plus
the traceback of an internal error), so a restarted server lists stopped and interrupted runs and resumes
those with a checkpoint. No Gradio here. Tests: ``pytest tests/test_jobs.py -q``.
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
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from assistant.errors import InputError, UserError
from finetune.config import FinetuneConfig
from finetune.job_files import config_from_run, load_points, read_job_file, restorable_runs, write_job_file
from finetune.recipe import RunSummary, run

log = logging.getLogger(__name__)

STATES = ("queued", "running", "stopped", "finished", "failed")
LOG_LINES = 200
Runner = Callable[..., RunSummary]


class NotOwnerError(UserError):
    """Someone other than the job's owner tried to stop or resume it."""


def eta_seconds(step_durations: list[float], step: int, total: int) -> float | None:
    """Seconds left: the mean of the last (up to 10) step durations times the steps to go."""
    recent = step_durations[-10:]
    if not recent or total <= 0:
        return None
    return max(0, total - step) * sum(recent) / len(recent)


@dataclass(frozen=True)
class JobSnapshot:
    """An immutable copy of one job, safe to render from any thread."""

    job_id: str
    run_id: str
    owner: str | None
    config: FinetuneConfig
    state: str
    queue_position: int | None
    step: int
    total_steps: int
    elapsed: float
    eta: float | None
    train_points: tuple[tuple[int, float], ...]
    val_points: tuple[tuple[int, float], ...]
    log: tuple[str, ...]
    metrics: dict | None
    summary: dict | None
    error: str | None
    adapter: str | None
    stop_requested: bool
    resumable: bool
    created: str
    version: int

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def command(self) -> str:
        return self.config.cli_command()


@dataclass
class _Job:
    job_id: str
    run_id: str
    owner: str | None
    config: FinetuneConfig
    resume: bool = False
    state: str = "queued"
    step: int = 0
    total_steps: int = 0
    began: float | None = None  # time.monotonic() when it started running
    ended: float | None = None
    saved_elapsed: float = 0.0  # for runs restored from job.json
    last_step_clock: float | None = None
    step_durations: list[float] = field(default_factory=list)
    train_points: list[tuple[int, float]] = field(default_factory=list)
    val_points: list[tuple[int, float]] = field(default_factory=list)
    log: deque = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    metrics: dict | None = None
    summary: dict | None = None
    error: str | None = None
    adapter: str | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    created: str = field(default_factory=lambda: datetime.now().isoformat(timespec="seconds"))
    version: int = 0

    @property
    def elapsed(self) -> float:
        if self.began is None:
            return self.saved_elapsed
        return (self.ended or time.monotonic()) - self.began


class JobManager:
    """The training queue of one app. Thread-safe; a failing job never stops the worker thread."""

    def __init__(self, data_dir: str | Path, runner: Runner = run):
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.runs_dir = self.data_dir / "runs"
        self._runner = runner
        self._lock = threading.Condition()
        self._jobs: dict[str, _Job] = {}
        self._queue: deque[_Job] = deque()
        self._running: _Job | None = None
        self._listeners: list[Callable[[JobSnapshot], None]] = []
        self._closing = False
        self.finished_count = 0  # bumps when an adapter is published: lists of adapters refresh on it
        self._restore()
        self._worker = threading.Thread(target=self._work, name="finetune-jobs", daemon=True)
        self._worker.start()

    # --- public API -----------------------------------------------------------------------------

    def submit(self, config: FinetuneConfig, owner: str) -> str:
        """Queue a new run of ``config``; returns the job id (the run id is derived from the task and time)."""
        config = copy.copy(config)
        config.data_dir = str(self.data_dir)
        run_id = f"{config.task}-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        return self._enqueue(_Job(_new_id(), run_id, owner, config))

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
                raise InputError(f"The training file of run {job.run_id} is gone ({latest.config.data}); "
                                 "start a new run with the file instead.")
            points = load_points(self.runs_dir / job.run_id)
            resumed = _Job(_new_id(), job.run_id, owner, copy.copy(latest.config), resume=True,
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
            snapshot = self._snapshot(job)
        self._notify(snapshot)
        return snapshot

    def get(self, key: str) -> JobSnapshot:
        with self._lock:
            return self._snapshot(self._find(key))

    def find(self, key: str | None) -> JobSnapshot | None:
        """Like ``get`` but None for an unknown or empty key."""
        with self._lock:
            job = self._lookup(key) if key else None
            return self._snapshot(job) if job else None

    def current(self) -> JobSnapshot | None:
        with self._lock:
            return self._snapshot(self._running) if self._running else None

    def queue_position(self, key: str) -> int | None:
        """How many jobs run before this queued one (the running job included); None when not queued."""
        with self._lock:
            return self._position(self._find(key))

    def jobs_for(self, owner: str) -> list[JobSnapshot]:
        """The owner's jobs, newest first."""
        with self._lock:
            return [self._snapshot(j) for j in reversed(self._jobs.values()) if j.owner == owner]

    def all(self) -> list[JobSnapshot]:
        with self._lock:
            return [self._snapshot(j) for j in reversed(self._jobs.values())]

    def resumable(self) -> list[JobSnapshot]:
        """Stopped runs with a checkpoint (this session's and those found on disk), newest first."""
        return [s for s in self.all() if s.resumable]

    def add_listener(self, callback: Callable[[JobSnapshot], None]) -> None:
        """``callback(snapshot)`` after every change of any job, from the worker or the caller's thread."""
        with self._lock:
            self._listeners.append(callback)

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

    def _enqueue(self, job: _Job) -> str:
        with self._lock:
            if self._closing:
                raise UserError("The server is shutting down; start the run again after it restarts.")
            self._jobs[job.job_id] = job
            self._queue.append(job)
            self._log(job, f"Queued ({'resume of ' if job.resume else ''}run {job.run_id}).")
            snapshot = self._snapshot(job)
            self._lock.notify_all()
        self._notify(snapshot)
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
                (self.runs_dir / job.run_id).mkdir(parents=True, exist_ok=True)
                self._log(job, "Started.")
            try:
                summary = self._runner(job.config, lambda kind, payload: self._on_event(job, kind, payload),
                                       job.stop_event, resume_run=job.run_id)
                self._end(job, summary.status)
            except UserError as exc:
                self._end(job, "failed", str(exc))
            except BaseException as exc:  # noqa: BLE001 - a bug in one job must not end the queue
                self._end(job, "failed", f"internal error: {type(exc).__name__}: {exc}", traceback.format_exc())
            finally:
                gc.collect()  # the run's model is garbage now: give its memory back before the next job

    def _on_event(self, job: _Job, kind: str, payload: dict) -> None:
        with self._lock:
            now = time.monotonic()
            if kind == "status":
                self._log(job, payload["message"])
            elif kind == "start":
                job.total_steps, job.last_step_clock = payload["total_steps"], now
                self._log(job, f"Training {payload['total_steps']} steps on {payload['train_examples']} examples "
                               f"({payload['val_examples']} for validation).")
            elif kind == "step":
                self._record_step(job, payload, now)
            elif kind == "metrics":
                job.metrics = copy.deepcopy(payload)
            elif kind == "stopped":
                self._log(job, f"Stopped at step {payload['step']}; the checkpoint is kept: Resume continues from it.")
            elif kind == "finished":
                job.summary, job.adapter = copy.deepcopy(payload), payload.get("adapter")
                self._log(job, f"Adapter saved as '{job.adapter}'.")
            snapshot = self._touch(job)
        self._notify(snapshot)

    def _record_step(self, job: _Job, record: dict, now: float) -> None:
        step = int(record["step"])
        job.step, job.total_steps = step, int(record.get("total_steps") or job.total_steps)
        if job.last_step_clock is not None:
            job.step_durations.append(now - job.last_step_clock)
            del job.step_durations[:-50]
        job.last_step_clock = now
        job.train_points = [p for p in job.train_points if p[0] < step] + [(step, float(record["loss"]))]
        if record.get("val_loss") is not None:
            job.val_points = [p for p in job.val_points if p[0] < step] + [(step, float(record["val_loss"]))]
            self._log(job, f"step {step}/{job.total_steps} · loss {record['loss']:.4f} · "
                           f"validation loss {record['val_loss']:.4f}")

    def _end(self, job: _Job, state: str, error: str | None = None, trace: str | None = None) -> None:
        with self._lock:
            job.state, job.error, job.ended = state, error, time.monotonic()
            self._running = None
            if error:
                self._log(job, f"Failed: {error}")
            if trace:
                log.error("Job %s failed with an internal error; traceback in %s", job.job_id,
                          self.runs_dir / job.run_id / "job.log")
                self._append_log_file(job, trace)
            if state == "finished":
                self.finished_count += 1
            snapshot = self._touch(job)
        self._notify(snapshot)

    # --- helpers (called with the lock held) ------------------------------------------------------

    def _touch(self, job: _Job) -> JobSnapshot:
        job.version += 1
        if job.state != "queued":
            write_job_file(self.runs_dir / job.run_id, job, job.elapsed)
        return self._snapshot(job)

    def _log(self, job: _Job, message: str) -> None:
        line = f"{datetime.now():%H:%M:%S} {message}"
        job.log.append(line)
        job.version += 1
        if job.state != "queued" or job.resume:
            self._append_log_file(job, line)

    def _append_log_file(self, job: _Job, text: str) -> None:
        try:
            folder = self.runs_dir / job.run_id
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / "job.log", "a", encoding="utf-8") as handle:
                handle.write(text.rstrip("\n") + "\n")
        except OSError as exc:  # the in-memory log still shows it
            log.warning("Cannot write the log of job %s: %s", job.job_id, exc)

    def _notify(self, snapshot: JobSnapshot) -> None:
        for callback in list(self._listeners):
            try:
                callback(snapshot)
            except Exception:  # noqa: BLE001 - a broken listener must not break the job
                log.exception("A job listener failed")

    def _lookup(self, key: str) -> _Job | None:
        if key in self._jobs:
            return self._jobs[key]
        same_run = [j for j in self._jobs.values() if j.run_id == key]
        return same_run[-1] if same_run else None

    def _find(self, key: str) -> _Job:
        job = self._lookup(key or "")
        if job is None:
            raise InputError(f"There is no job or run called '{key}'. Pick one from the list of runs.")
        return job

    def _latest_of_run(self, run_id: str) -> _Job:
        return [j for j in self._jobs.values() if j.run_id == run_id][-1]

    @staticmethod
    def _check_owner(job: _Job, owner: str, action: str) -> None:
        if job.owner is not None and job.owner != owner:
            raise NotOwnerError(f"Only the browser session that started job {job.job_id} may {action} it; "
                                "you can watch its progress here.")

    def _position(self, job: _Job) -> int | None:
        if job.state != "queued" or job not in self._queue:
            return None
        return self._queue.index(job) + (1 if self._running else 0)

    def _snapshot(self, job: _Job) -> JobSnapshot:
        resumable = (job.state == "stopped" and self._latest_of_run(job.run_id) is job
                     and (self.runs_dir / job.run_id / "checkpoint.pt").is_file())
        return JobSnapshot(
            job.job_id, job.run_id, job.owner, copy.copy(job.config), job.state, self._position(job), job.step,
            job.total_steps, job.elapsed,
            eta_seconds(job.step_durations, job.step, job.total_steps) if job.state == "running" else None,
            tuple(job.train_points), tuple(job.val_points), tuple(job.log), copy.deepcopy(job.metrics),
            copy.deepcopy(job.summary), job.error, job.adapter, job.stop_event.is_set(), resumable, job.created,
            job.version)

    def _restore(self) -> None:
        """Jobs of earlier server runs, from their job.json (or checkpoint, for CLI runs); owner-less."""
        for folder in restorable_runs(self.runs_dir):
            saved = read_job_file(folder)
            try:
                config = config_from_run(folder)
            except (UserError, OSError, ValueError, TypeError) as exc:
                log.warning("Skipping run %s: %s", folder.name, exc)
                continue
            job = _Job(saved.get("job_id") or folder.name, folder.name, None, config,
                       state=saved.get("state", "stopped"), step=int(saved.get("step", 0)),
                       total_steps=int(saved.get("total_steps", 0)), saved_elapsed=float(saved.get("elapsed", 0)),
                       error=saved.get("error"), adapter=saved.get("adapter"), metrics=saved.get("metrics"),
                       created=saved.get("created", ""))
            job.train_points, job.val_points = load_points(folder)
            if job.train_points and not job.step:
                job.step = job.train_points[-1][0]
            if job.state in ("queued", "running"):
                interrupted = "The server stopped while this run was training"
                if (folder / "checkpoint.pt").is_file():
                    job.state = "stopped"
                    self._log(job, f"{interrupted}; Resume continues from its last checkpoint.")
                else:
                    job.state, job.error = "failed", f"{interrupted}, before its first checkpoint; start it again."
                write_job_file(folder, job, job.elapsed)
            self._jobs[job.job_id] = job


def _new_id() -> str:
    return f"job-{secrets.token_hex(4)}"
