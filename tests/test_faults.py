"""kill -9 in the middle of training: saved adapters and the list stay intact, the run resumes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from finetune.adapters import AdapterStore
from finetune.config import FinetuneConfig
from finetune.jobs import JobManager
from tests.recipe_runs import run_new

SAMPLE = str(Path("finetune/samples/sentiment_en.csv").resolve())


def finetune_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "finetune", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_kill_9_mid_training_keeps_adapters_and_the_run_resumes(tmp_path, tiny_llm_dir):
    data_dir = tmp_path / "data"
    run_new(FinetuneConfig(task="classification", data=SAMPLE, base=str(tiny_llm_dir), max_steps=2, eval_limit=4,
                       data_dir=str(data_dir), output="earlier"))
    store = AdapterStore(data_dir / "adapters")
    before = [(a.name, a.created) for a in store.list()]

    proc = finetune_cli("--task", "classification", "--data", SAMPLE, "--base", str(tiny_llm_dir), "--max-steps",
                        "400", "--save-every", "2", "--batch-size", "2", "--eval-limit", "4",
                        "--data-dir", str(data_dir), "--output", "interrupted")
    runs = data_dir / "runs"
    deadline = time.monotonic() + 180
    checkpoint = None
    while checkpoint is None and time.monotonic() < deadline and proc.poll() is None:
        found = [p for p in runs.glob("*/checkpoint.pt")]
        checkpoint = found[0] if found else None
        time.sleep(0.2)
    assert checkpoint is not None, "no checkpoint was written before the deadline"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    after = AdapterStore(data_dir / "adapters")
    assert [(a.name, a.created) for a in after.list()] == before, "the adapter list changed"
    assert not [p for p in (data_dir / "adapters").iterdir() if p.name.startswith(".")], "a half-written folder"
    run_id = checkpoint.parent.name
    assert run_id in [r.run_id for r in JobManager(data_dir).resumable()], "the run is not offered for resume"

    saved = json.loads((checkpoint.parent / "config.json").read_text())
    steps_before = len((checkpoint.parent / "metrics.jsonl").read_text().splitlines())
    resumed = finetune_cli("--resume", run_id, "--data-dir", str(data_dir), "--max-steps", str(steps_before + 3))
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    assert saved["output"] == "interrupted"
    assert "interrupted" in [a.name for a in AdapterStore(data_dir / "adapters").list()]
    steps = [json.loads(line)["step"] for line in (checkpoint.parent / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, steps_before + 4)), "the log must read as one uninterrupted run"
