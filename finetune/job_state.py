"""What the job manager knows about one job: the mutable ``JobRecord`` it updates from the recipe's events,
and the immutable ``JobSnapshot`` it hands out. Used by ``finetune.jobs``; tests: ``pytest tests/test_jobs.py -q``.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from finetune.config import FinetuneConfig

STATES = ("queued", "running", "stopped", "finished", "failed")
LOG_LINES = 200  # kept in memory per job; job.log on disk has them all


def eta_seconds(step_durations: list[float], step: int, total: int) -> float | None:
    """Seconds left: the mean of the last (up to 10) step durations times the steps to go."""
    recent = step_durations[-10:]
    if not recent or total <= 0:
        return None
    return max(0, total - step) * sum(recent) / len(recent)


@dataclass(frozen=True, kw_only=True)
class JobSnapshot:
    """An immutable copy of one job, safe to render from any thread."""

    job_id: str
    run_id: str
    owner: str | None  # None: anyone may stop or resume it (runs found on disk after a restart)
    config: FinetuneConfig
    state: str
    queue_position: int | None  # jobs that run before this queued one (the running one included)
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
    version: int  # goes up on every change: a view redraws only when it moved

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def command(self) -> str:
        return self.config.cli_command()


@dataclass
class JobRecord:
    """The manager's live record of a job (guarded by the manager's lock)."""

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
    pid: int | None = None  # the training process, while it runs
    created: str = field(default_factory=lambda: datetime.now().isoformat(timespec="seconds"))
    version: int = 0

    @property
    def elapsed(self) -> float:
        if self.began is None:
            return self.saved_elapsed
        return (self.ended or time.monotonic()) - self.began

    def record_step(self, record: dict, now: float) -> str | None:
        """Take one "step" event; returns a log line for steps with a validation loss."""
        step = int(record["step"])
        self.step, self.total_steps = step, int(record.get("total_steps") or self.total_steps)
        if self.last_step_clock is not None:
            self.step_durations.append(now - self.last_step_clock)
            del self.step_durations[:-50]
        self.last_step_clock = now
        # A resumed run may repeat steps logged after its checkpoint: the newer values replace them.
        self.train_points = [p for p in self.train_points if p[0] < step] + [(step, float(record["loss"]))]
        if record.get("val_loss") is None:
            return None
        self.val_points = [p for p in self.val_points if p[0] < step] + [(step, float(record["val_loss"]))]
        return f"step {step}/{self.total_steps} · loss {record['loss']:.4f} · validation loss {record['val_loss']:.4f}"

    def snapshot(self, queue_position: int | None, resumable: bool) -> JobSnapshot:
        eta = eta_seconds(self.step_durations, self.step, self.total_steps) if self.state == "running" else None
        return JobSnapshot(
            job_id=self.job_id, run_id=self.run_id, owner=self.owner, config=copy.copy(self.config),
            state=self.state, queue_position=queue_position, step=self.step, total_steps=self.total_steps,
            elapsed=self.elapsed, eta=eta, train_points=tuple(self.train_points), val_points=tuple(self.val_points),
            log=tuple(self.log), metrics=copy.deepcopy(self.metrics), summary=copy.deepcopy(self.summary),
            error=self.error, adapter=self.adapter, stop_requested=self.stop_event.is_set(), resumable=resumable,
            created=self.created, version=self.version)
