"""Run ids and run folders: the one place a training run is named, for the job manager and the CLI alike.

    run_id = new_run_id("classification")          # 'classification-20261205-171348-a3f0'
    folder = run_folder(config.data_dir, run_id)   # DATA_DIR/runs/<run_id> (not created here)

The task and the start time make the id readable; four hex digits keep two runs started in the same second
apart. Older CLI runs named ``<task>-<date>-<time>`` (no suffix) still list and resume: nothing parses an id.
Tests: ``pytest tests/test_jobs.py -q -k run_id``.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path


def new_run_id(task: str) -> str:
    """A fresh, unique run id for a run of ``task``."""
    return f"{task}-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def run_folder(data_dir: str | Path, run_id: str) -> Path:
    """Where run ``run_id`` keeps its checkpoint, metrics and job files."""
    return Path(data_dir) / "runs" / run_id
