"""How a run is named and started: one run-id minting function, and ``resume`` said explicitly by whoever
starts the run (a new job False, ``JobManager.resume`` True), with a clear refusal when there is nothing to
resume from.

    pytest tests/test_run_plumbing.py -q
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.core.errors import InputError
from assistant.core.machine_settings import MachineSettings
from finetune.config import FinetuneConfig
from finetune.jobs import JobManager
from finetune.recipe import RunSummary, run
from finetune.run_ids import new_run_id, run_folder
from tests.test_jobs import wait_until_done

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = str(ROOT / "finetune" / "samples" / "sentiment_en.csv")
RUN_ID = re.compile(r"classification-\d{8}-\d{6}-[0-9a-f]{4}")


def test_a_new_job_says_resume_false_and_its_resume_says_true_in_the_same_run_folder(tmp_path):
    calls = []

    def runner(config, run_dir, resume, on_event, stop_event):
        calls.append((run_dir, resume))
        if not resume:  # the first run stops with a checkpoint, as a Stop would leave it
            (run_dir / "checkpoint.pt").write_bytes(b"checkpoint")
            on_event("stopped", {"step": 1})
            return RunSummary(run_dir.name, "stopped", 1)
        return RunSummary(run_dir.name, "finished", 2)

    jobs = JobManager(tmp_path / "data", runner=runner)
    try:
        first = wait_until_done(jobs, jobs.submit(FinetuneConfig(data=SAMPLE), owner="alice"), timeout=30)
        assert first.state == "stopped" and first.resumable
        resumed = wait_until_done(jobs, jobs.resume(first.run_id, owner="alice"), timeout=30)
        assert resumed.state == "finished" and resumed.run_id == first.run_id
    finally:
        jobs.close()
    folder = run_folder(tmp_path / "data", first.run_id).resolve()
    assert calls == [(folder, False), (folder, True)]
    assert RUN_ID.fullmatch(first.run_id), first.run_id


@pytest.mark.parametrize("method", ["supervised", "preference"])
def test_a_resume_without_a_checkpoint_is_refused_before_any_work(tmp_path, method):
    config = FinetuneConfig(data=SAMPLE, method=method, data_dir=str(tmp_path))
    run_dir = run_folder(tmp_path, "classification-20261128-120000")
    run_dir.mkdir(parents=True)
    with pytest.raises(InputError, match="has no checkpoint to resume from.*Start it again as a new run"):
        run(config, run_dir, MachineSettings(), True)
    assert sorted(run_dir.iterdir()) == []  # nothing read into it, nothing written


def test_the_cli_refuses_to_resume_a_run_without_a_checkpoint(tmp_path):
    run_dir = run_folder(tmp_path, "classification-20261128-120000")  # an older CLI run's id: still accepted
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(FinetuneConfig(data=SAMPLE, data_dir=str(tmp_path)).to_dict()))
    result = subprocess.run([sys.executable, "-m", "finetune", "--resume", run_dir.name, "--data-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT,
                            env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2, result.stderr
    assert "Run classification-20261128-120000 has no checkpoint to resume from" in result.stderr.splitlines()[-1]


def test_run_ids_are_minted_in_one_place():
    assert RUN_ID.fullmatch(new_run_id("classification"))
    minting = [path.relative_to(ROOT).as_posix() for path in (ROOT / "finetune").rglob("*.py")
               if "%Y%m%d-%H%M%S" in path.read_text(encoding="utf-8")]
    assert minting == ["finetune/run_ids.py"]
