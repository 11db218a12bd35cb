"""The one-click first fine-tune: its settings pass the tab's own checks, and the real run learns.

    pytest tests/test_quickstart.py -q          # the last test trains MiniLM for real (~20-40 s on 2 cores)
"""

import time

import pytest

from assistant.ui.quickstart import QUICKSTARTS, adapter_to_select, quickstart_form, start_quickstart, status_line
from finetune.config import FinetuneConfig
from finetune.jobs import JobManager
from finetune.recipe import RunSummary


def test_every_quickstart_form_is_a_valid_head_config(tmp_path):
    for name, quick in QUICKSTARTS.items():
        form = quickstart_form(name)
        config = FinetuneConfig(**form, data="x", data_dir=str(tmp_path))
        assert config.base == "minilm-l6-v2" and config.resolved_approach == "head", name
        assert 0 < config.max_steps <= 150, "a quickstart must stay about a minute long"


def test_start_queues_the_sample_with_the_quickstart_settings(tmp_path):
    seen = []

    def runner(config, run_dir, resume, emit, stop):
        seen.append(config)
        emit("finished", {"adapter": "try-sentiment"})
        return RunSummary(run_id=run_dir.name, status="finished", steps=1, adapter="try-sentiment")

    jobs = JobManager(tmp_path, runner=runner)
    try:
        job_id = start_quickstart(jobs, "sentiment", owner="me")
        for _ in range(100):
            if jobs.get(job_id).state == "finished":
                break
            time.sleep(0.05)
        assert jobs.get(job_id).state == "finished", jobs.get(job_id).log
    finally:
        jobs.close()
    config = seen[0]
    assert config.task == "classification" and config.max_steps == 60 and config.learning_rate == 1e-3
    assert config.data.startswith(str(tmp_path / "datasets")) and config.data.endswith(".csv")
    assert adapter_to_select(jobs, job_id) == "try-sentiment"
    assert "try-sentiment" in status_line(jobs.get(job_id)) and "selected" in status_line(jobs.get(job_id))
    assert adapter_to_select(jobs, None) is None


@pytest.mark.real
@pytest.mark.parametrize(("name", "metric", "at_least"), [("sentiment", "accuracy", 0.8), ("ner", "f1", 0.5)])
def test_a_quickstart_trains_a_clearly_better_adapter_in_about_a_minute(tmp_path, name, metric, at_least):
    jobs = JobManager(tmp_path)
    began = time.monotonic()
    try:
        job_id = start_quickstart(jobs, name, owner="me")
        while jobs.get(job_id).active and time.monotonic() - began < 600:
            time.sleep(0.5)
        snapshot = jobs.get(job_id)
    finally:
        jobs.close()
    wall = time.monotonic() - began
    assert snapshot.state == "finished", snapshot.log
    base, adapter = snapshot.metrics["base"][metric], snapshot.metrics["adapter"][metric]
    print(f"{name} quickstart: {wall:.0f} s, {metric} {base:.3f} -> {adapter:.3f}")
    assert adapter >= at_least and adapter - base >= 0.2, (base, adapter)
