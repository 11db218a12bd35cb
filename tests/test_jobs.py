"""The training job manager on the tiny in-code Llama, and the memory/time estimate.

    pytest tests/test_jobs.py -q
"""

import json
import threading
import time
from pathlib import Path

import pytest

from assistant.core.errors import InputError
from finetune.adapters import AdapterStore
from finetune.config import FinetuneConfig
from finetune.estimate import (EMBEDDED_SHAPES, estimate_for_config, estimate_run, lora_params, model_shape,
                               training_steps)
from finetune.jobs import JobManager, NotOwnerError, eta_seconds

SAMPLES = Path(__file__).resolve().parents[1] / "finetune" / "samples"


def config(tmp_path, base, **overrides) -> FinetuneConfig:
    values = dict(task="classification", data=str(SAMPLES / "sentiment_en.csv"), base=str(base), max_steps=2,
                  batch_size=4, eval_limit=4, data_dir=str(tmp_path / "data"))
    values.update(overrides)
    return FinetuneConfig(**values)


def wait_until_done(jobs: JobManager, job_id: str, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snapshot = jobs.get(job_id)
        if not snapshot.active:
            return snapshot
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {jobs.get(job_id).state} after {timeout} s")


@pytest.fixture
def jobs(tmp_path):
    manager = JobManager(tmp_path / "data")
    yield manager
    manager.close()


def test_jobs_queue_in_order_a_bad_one_fails_readably_and_the_next_one_finishes(tmp_path, tiny_llm_dir, jobs):
    bad_file = tmp_path / "one_class.csv"
    bad_file.write_text("text,label\n" + "".join(f"review number {i},positive\n" for i in range(20)))
    good = jobs.submit(config(tmp_path, tiny_llm_dir, output="sentiment-test"), owner="alice")
    bad = jobs.submit(config(tmp_path, tiny_llm_dir, data=str(bad_file)), owner="alice")
    after = jobs.submit(config(tmp_path, tiny_llm_dir, max_steps=1, output="after-the-failure"), owner="bob")
    assert jobs.get(good).queue_position in (0, None), "first in line, or already running"
    assert (jobs.get(bad).queue_position, jobs.get(after).queue_position) == (1, 2)

    done = wait_until_done(jobs, good)
    assert done.state == "finished", done.error
    assert done.step == done.total_steps == 2 and [p[0] for p in done.train_points] == [1, 2]
    assert done.adapter == "sentiment-test" and set(done.metrics) == {"base", "adapter"}
    assert "accuracy" in done.metrics["adapter"] and done.elapsed > 0 and done.eta is None
    assert any("python -m finetune" in line and "--max-steps 2" in line for line in done.log)
    saved = json.loads((tmp_path / "data" / "runs" / done.run_id / "job.json").read_text())
    assert saved["state"] == "finished" and saved["adapter"] == "sentiment-test"

    failed = wait_until_done(jobs, bad)
    assert failed.state == "failed"
    assert "one_class.csv" in failed.error and "at least 2 classes" in failed.error
    assert not failed.error.startswith("internal error") and "Traceback" not in "\n".join(failed.log)

    assert wait_until_done(jobs, after).state == "finished", "the queue goes on after a failed job"
    names = sorted(a.name for a in AdapterStore(tmp_path / "data" / "adapters").list())
    assert names == ["after-the-failure", "sentiment-test"]
    assert [jobs.get(j).state for j in (good, bad, after)] == ["finished", "failed", "finished"]
    assert jobs.current() is None
    assert [s.job_id for s in jobs.jobs_for("alice")] == [bad, good] and jobs.jobs_for("carol") == []


def test_only_the_owner_stops_and_a_stopped_run_resumes_with_the_step_count(tmp_path, tiny_llm_dir, jobs):
    # 40 steps: Stop reaches the training process a few steps after it is asked for, never after the last one
    job_id = jobs.submit(config(tmp_path, tiny_llm_dir, max_steps=40, output="resumed"), owner="alice")
    with pytest.raises(NotOwnerError):
        jobs.stop(job_id, owner="mallory")
    deadline = time.monotonic() + 300
    while jobs.get(job_id).step < 2 and jobs.get(job_id).state in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.05)  # as the tab polls
    jobs.stop(job_id, owner="alice")
    stopped = wait_until_done(jobs, job_id)
    run_dir = tmp_path / "data" / "runs" / stopped.run_id
    # Stop reaches the training process as a signal while it trains: it takes effect at the step it is on.
    assert stopped.state == "stopped" and 2 <= stopped.step < 40 and stopped.resumable and stopped.stop_requested
    assert (run_dir / "checkpoint.pt").is_file() and AdapterStore(tmp_path / "data" / "adapters").list() == []

    # A restarted server lists it as resumable, also when it died while "running" (owner-less then).
    record = json.loads((run_dir / "job.json").read_text())
    (run_dir / "job.json").write_text(json.dumps({**record, "state": "running"}))
    restarted = JobManager(tmp_path / "data")
    try:
        [listed] = restarted.resumable()
        assert listed.run_id == stopped.run_id and listed.owner is None and listed.step == stopped.step
        assert "server stopped while this run was training" in listed.log[-1]
    finally:
        restarted.close()

    with pytest.raises(NotOwnerError):
        jobs.resume(job_id, owner="mallory")
    resumed_id = jobs.resume(stopped.run_id, owner="alice")
    assert resumed_id != job_id
    with pytest.raises(InputError, match="only a stopped run"):
        jobs.resume(job_id, owner="alice")
    resumed = wait_until_done(jobs, resumed_id)
    assert resumed.state == "finished", resumed.error
    assert resumed.run_id == stopped.run_id and resumed.step == 40
    assert [p[0] for p in resumed.train_points] == list(range(1, 41)), "the loss curve continues the stopped one"
    assert not jobs.get(job_id).resumable and resumed.adapter == "resumed"


def test_a_bug_in_a_job_is_an_internal_error_with_the_traceback_in_the_log_file(tmp_path):
    def broken_runner(config, run_dir, resume, on_event, stop_event):
        on_event("status", {"message": "about to fail"})
        raise ZeroDivisionError("division by zero in a buggy step")

    manager = JobManager(tmp_path / "data", runner=broken_runner)
    try:
        first = manager.submit(FinetuneConfig(data="x.csv", data_dir=str(tmp_path)), owner="alice")
        second = manager.submit(FinetuneConfig(data="y.csv", data_dir=str(tmp_path)), owner="bob")
        for job_id in (first, second):  # the worker survives the first failure and runs the second job
            snapshot = wait_until_done(manager, job_id, timeout=30)
            assert snapshot.state == "failed"
            assert snapshot.error == "internal error: ZeroDivisionError: division by zero in a buggy step"
            assert "Traceback" not in "\n".join(snapshot.log)
            log_file = (tmp_path / "data" / "runs" / snapshot.run_id / "job.log").read_text()
            assert "Traceback (most recent call last)" in log_file and "about to fail" in log_file
    finally:
        manager.close()


def test_a_queued_job_can_be_cancelled_and_unknown_ids_are_explained(tmp_path):
    started, release = threading.Event(), threading.Event()

    def slow_runner(config, run_dir, resume, on_event, stop_event):
        started.set()
        release.wait(30)
        raise InputError("released")

    manager = JobManager(tmp_path / "data", runner=slow_runner)
    try:
        first = manager.submit(FinetuneConfig(data="x.csv"), owner="alice")
        started.wait(30)
        second = manager.submit(FinetuneConfig(data="x.csv"), owner="alice")
        third = manager.submit(FinetuneConfig(data="x.csv"), owner="alice")
        assert (manager.current().job_id, manager.get(second).queue_position, manager.get(third).queue_position) == (
            first, 1, 2)
        cancelled = manager.stop(second, owner="alice")
        assert cancelled.state == "stopped" and not cancelled.resumable
        assert manager.get(third).queue_position == 1
        with pytest.raises(InputError, match="no job or run called 'nope'"):
            manager.get("nope")
        with pytest.raises(InputError, match="already stopped"):
            manager.stop(second, owner="alice")
    finally:
        release.set()
        manager.close()


def test_eta_uses_recent_step_times():
    assert eta_seconds([], 0, 10) is None
    assert eta_seconds([2.0, 4.0], 2, 10) == pytest.approx(8 * 3.0)
    assert eta_seconds([100.0] + [1.0] * 10, 11, 21) == pytest.approx(10.0), "only the last 10 steps count"
    assert eta_seconds([1.0], 12, 10) == 0


def test_estimate_on_known_inputs():
    shape = EMBEDDED_SHAPES["smollm2-135m-instruct"]
    assert lora_params(shape, 16, "all-linear") == 30 * 16 * (1152 + 768 + 768 + 1152 + 3 * 2112)
    assert lora_params(shape, 8, "q_proj,v_proj") == 30 * 8 * (1152 + 768)
    kwargs = dict(quant="nf4", approach="generative", lora_r=16, target_modules="all-linear", batch_size=8,
                  grad_accum=1, seq_tokens=100, steps=10, eval_rows=4, task="classification")
    roomy = estimate_run(shape, available_bytes=64 * 2**30, **kwargs)
    assert roomy.train_tokens == 10 * 8 * 100
    assert roomy.seconds_low == pytest.approx(8000 / 400, rel=0.01)
    assert roomy.seconds_high == pytest.approx(8000 / 150, rel=0.01)
    assert roomy.weights_bytes == int(shape.linear_params * 0.5625 + (shape.params - shape.linear_params) * 4)
    assert 0.5 * 2**30 < roomy.memory_bytes < 4 * 2**30 and roomy.fits and roomy.warning == ""
    full = estimate_run(shape, available_bytes=None, **{**kwargs, "quant": "none"})
    assert full.weights_bytes == shape.params * 4 > roomy.weights_bytes and full.fits is None
    tight = estimate_run(shape, available_bytes=256 * 2**20, **kwargs)
    assert tight.fits is False and "lower the batch size" in tight.warning
    gpu = estimate_run(shape, device="cuda", **kwargs)
    assert gpu.seconds_high < roomy.seconds_low and "CUDA" in gpu.summary()


def test_model_shape_of_a_folder_matches_the_real_parameter_count(tiny_llm_dir):
    from transformers import AutoModelForCausalLM

    real = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny_llm_dir).parameters())
    assert model_shape(str(tiny_llm_dir)).params == pytest.approx(real, rel=0.05)
    assert model_shape("someone/not-on-disk") is None
    assert estimate_for_config(FinetuneConfig(data="x.csv", base="someone/not-on-disk"), 100, 50) is None


def test_training_steps_match_the_recipe_split():
    cfg = FinetuneConfig(data="x.csv", batch_size=8)
    assert training_steps(cfg, 120) == 14  # 108 training rows after the 10 % split, 8 per step
    assert training_steps(FinetuneConfig(data="x.csv", max_steps=3), 10_000) == 3


def test_the_estimate_of_base_auto_is_the_estimate_of_the_base_it_picks():
    auto = estimate_for_config(FinetuneConfig(data="x.csv"), 2000, 100, "cpu", "en")
    head = estimate_for_config(FinetuneConfig(data="x.csv", base="minilm-l6-v2"), 2000, 100, "cpu", "en")
    chinese = estimate_for_config(FinetuneConfig(data="x.csv"), 2000, 100, "cpu", "zh")
    qwen = estimate_for_config(FinetuneConfig(data="x.csv", base="qwen2.5-coder-0.5b-instruct"), 2000, 100, "cpu",
                               "zh")
    assert auto == head and chinese == qwen and auto.seconds_high < qwen.seconds_low


def test_kill_9_of_the_training_process_leaves_the_manager_serving_and_the_run_resumable(tmp_path, tiny_llm_dir,
                                                                                         jobs):
    import os
    import signal

    import psutil

    job_id = jobs.submit(config(tmp_path, tiny_llm_dir, max_steps=40, save_every=2, output="survivor"), owner="bob")
    deadline = time.monotonic() + 300
    while jobs.get(job_id).step < 4 and time.monotonic() < deadline:  # a checkpoint exists after step 2
        time.sleep(0.1)
    [child] = [p for p in psutil.Process().children(recursive=True) if "finetune.worker" in " ".join(p.cmdline())]
    assert child.pid != os.getpid()  # training really runs in a process of its own
    os.kill(child.pid, signal.SIGKILL)
    ended = wait_until_done(jobs, job_id)
    assert ended.state == "stopped" and ended.resumable, ended
    assert "ended by SIGKILL" in ended.log[-1] and "Resume continues from its last checkpoint" in ended.log[-1]
    assert AdapterStore(tmp_path / "data" / "adapters").list() == []  # nothing half-written
    resumed = wait_until_done(jobs, jobs.resume(ended.run_id, owner="bob"))
    assert resumed.state == "finished" and resumed.adapter == "survivor", resumed.error


def test_the_servers_machine_settings_reach_the_training_process(tmp_path):
    """The cache dir (and device, trust setting) the server runs with is what the training process loads with:
    a GGUF base is converted into the server's cache, not the default one."""
    from assistant.core.machine_settings import MachineSettings
    from finetune.process_runner import process_runner
    from tests.tiny_models import build_tiny_gguf

    gguf, _ = build_tiny_gguf(tmp_path / "gguf")
    cache = tmp_path / "server-cache"
    manager = JobManager(tmp_path / "data", process_runner(MachineSettings("cpu", cache, False)))
    try:
        done = wait_until_done(manager, manager.submit(config(tmp_path, gguf, output="rt"), owner="o"))
    finally:
        manager.close()
    assert done.state == "finished", done.error
    assert any((cache / "converted").iterdir())  # the base was converted into the server's cache
