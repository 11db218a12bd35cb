"""The small files a training job keeps in ``DATA_DIR/runs/<run_id>/`` so a restarted server can list it.

    job.json      state, step, elapsed time, error, adapter, metrics and the config (written atomically)
    job.log       the job's log lines (and the traceback of an internal error)
    metrics.jsonl one line per optimizer step, written by the training loop (read here for the loss curve)
    checkpoint.pt the training loop's checkpoint: present means the run can be resumed

Used by ``finetune.jobs``; tested through ``pytest tests/test_jobs.py -q``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from assistant.core.atomic_files import atomic_write_text
from assistant.core.errors import InputError, UserError
from finetune.config import FinetuneConfig
from finetune.job_state import JobRecord

log = logging.getLogger(__name__)

JOB_FILE = "job.json"


def write_job_file(folder: Path, job: JobRecord, elapsed: float) -> None:
    """Write ``folder/job.json`` for a job (temp file + rename: never half-written)."""
    record = {"job_id": job.job_id, "run_id": job.run_id, "owner": job.owner, "state": job.state, "step": job.step,
              "total_steps": job.total_steps, "elapsed": round(elapsed, 2), "created": job.created,
              "error": job.error, "adapter": job.adapter, "metrics": job.metrics, "config": job.config.to_dict()}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / JOB_FILE, json.dumps(record, ensure_ascii=False, indent=2, default=str))
    except OSError:
        pass  # the job itself goes on; only the listing after a restart would miss it


def read_job_file(folder: Path) -> dict:
    """The saved job record, or {} when there is none or it is unreadable."""
    try:
        record = json.loads((folder / JOB_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def config_from_run(folder: Path) -> FinetuneConfig:
    """The run's config: from job.json, else the recipe's config.json; ``data_dir`` is the folder's data dir."""
    values = read_job_file(folder).get("config")
    if not isinstance(values, dict):
        try:
            values = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{folder.name} has no readable job.json or config.json") from exc
    known = set(FinetuneConfig.__dataclass_fields__)
    values = {k: v for k, v in values.items() if k in known}
    values["data_dir"] = str(folder.parent.parent)
    return FinetuneConfig(**values)


def load_points(folder: Path) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(train, validation) loss points from metrics.jsonl; a step logged twice (a crash, then resume) keeps
    its last value."""
    train: dict[int, float] = {}
    val: dict[int, float] = {}
    try:
        lines = (folder / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return [], []
    for line in lines:
        try:
            record = json.loads(line)
            step = int(record["step"])
            train[step] = float(record["loss"])
            if record.get("val_loss") is not None:
                val[step] = float(record["val_loss"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash
    return sorted(train.items()), sorted(val.items())


def _unfinished(folder: Path) -> bool:
    """A run without job.json (started from the CLI) that has a checkpoint and did not reach its last step."""
    if not (folder / "checkpoint.pt").is_file() or not (folder / "config.json").is_file():
        return False
    try:
        last = json.loads((folder / "metrics.jsonl").read_text(encoding="utf-8").splitlines()[-1])
        return int(last["step"]) < int(last["total_steps"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return True


def restorable_runs(runs_dir: Path) -> list[Path]:
    """Run folders with a job.json, or unfinished CLI runs with a checkpoint; oldest first."""
    if not runs_dir.is_dir():
        return []
    found = [p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
             and ((p / JOB_FILE).is_file() or _unfinished(p))]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def append_log(folder: Path, text: str) -> None:
    """Append lines to ``folder/job.log`` (best effort: the in-memory log still has them)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "job.log", "a", encoding="utf-8") as handle:
            handle.write(text.rstrip("\n") + "\n")
    except OSError as exc:
        log.warning("Cannot write %s: %s", folder / "job.log", exc)


def restore_records(runs_dir: Path) -> list[JobRecord]:
    """Jobs of earlier server processes, oldest first, without an owner. A run that was queued or running
    when the server stopped becomes "stopped" if it has a checkpoint (resumable), else "failed"."""
    records = []
    for folder in restorable_runs(runs_dir):
        saved = read_job_file(folder)
        try:
            config = config_from_run(folder)
        except (UserError, OSError, ValueError, TypeError) as exc:
            log.warning("Skipping run %s: %s", folder.name, exc)
            continue
        job = JobRecord(saved.get("job_id") or folder.name, folder.name, None, config,
                        state=saved.get("state", "stopped"), step=int(saved.get("step", 0)),
                        total_steps=int(saved.get("total_steps", 0)), saved_elapsed=float(saved.get("elapsed", 0)),
                        error=saved.get("error"), adapter=saved.get("adapter"), metrics=saved.get("metrics"),
                        created=saved.get("created", ""))
        job.train_points, job.val_points = load_points(folder)
        if job.train_points and not job.step:
            job.step, job.total_steps = job.train_points[-1][0], job.total_steps or _last_total(folder)
        if job.state in ("queued", "running"):
            interrupted = "The server stopped while this run was training"
            if (folder / "checkpoint.pt").is_file():
                job.state = "stopped"
                message = f"{interrupted}; Resume continues from its last checkpoint."
                job.log.append(message)
                append_log(folder, message)
            else:
                job.state, job.error = "failed", f"{interrupted}, before its first checkpoint; start it again."
            write_job_file(folder, job, job.elapsed)
        records.append(job)
    return records


def _last_total(folder: Path) -> int:
    try:
        return int(json.loads((folder / "metrics.jsonl").read_text(encoding="utf-8").splitlines()[-1])["total_steps"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return 0
