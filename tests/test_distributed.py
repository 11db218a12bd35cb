"""Data parallel training under torchrun (2 CPU processes, gloo): one adapter, the loss of a single process.

Each of the two processes trains on 4 examples of every global batch of 8; the single process
trains on all 8. The first step's loss is identical (same weights, same examples); later steps
stay within 3%: DDP averages the two halves' gradients, each a mean over its own target tokens,
where one process takes the mean over all tokens at once.
"""

import json
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same kernels in both runs
COMMON = ["--task", "classification", "--data", "finetune/samples/sentiment_en.csv", "--max-steps", "4",
          "--learning-rate", "0.002", "--eval-limit", "4"]


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--standalone", *args], capture_output=True, text=True, timeout=180,
                          env=ENV)


def test_two_processes_save_one_adapter_with_the_single_process_loss(tmp_path, tiny_llm_dir):
    one = subprocess.run([sys.executable, "-m", "finetune", *COMMON, "--base", str(tiny_llm_dir), "--batch-size", "8",
                          "--output", "one", "--data-dir", str(tmp_path / "one")], capture_output=True, text=True,
                         timeout=300, env=ENV)
    assert one.returncode == 0, one.stderr[-2000:]
    two = _torchrun("-m", "finetune", *COMMON, "--base", str(tiny_llm_dir), "--batch-size", "4", "--output", "two",
                    "--data-dir", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr[-3000:]
    assert [p.name for p in (tmp_path / "two" / "adapters").iterdir()] == ["two"]  # rank 0 saved, once
    assert two.stdout.count('"train_tokens_per_second"') == 1  # one report, from rank 0
    meta = json.loads((tmp_path / "two" / "adapters" / "two" / "metadata.json").read_text())
    assert meta["world_size"] == 2 and meta["steps"] == 4
    single = [json.loads(line) for line in (tmp_path / "one" / "adapters" / "one" / "metrics.jsonl").open()]
    data_parallel = [json.loads(line) for line in (tmp_path / "two" / "adapters" / "two" / "metrics.jsonl").open()]
    assert [r["step"] for r in data_parallel] == [1, 2, 3, 4]
    assert data_parallel[0]["loss"] == pytest.approx(single[0]["loss"], rel=1e-4)
    assert data_parallel[0]["tokens"] == single[0]["tokens"]  # both ranks' tokens counted
    for a, b in zip(single, data_parallel):
        assert b["loss"] == pytest.approx(a["loss"], rel=0.03)


@pytest.mark.parametrize("case, expected", [
    ("same", "agreed"),
    ("settings", "rank 1 was started with different settings or data than rank 0 (settings)"),
    ("unreadable", "rank 1 of 2: cannot read data.csv (permission denied) (no rank trains"),
])
def test_ranks_that_disagree_all_stop_with_one_clear_error(case, expected):
    result = _torchrun("-m", "tests.distributed_probe", case)
    assert result.returncode == 0, result.stderr[-3000:]
    # Both ranks report (their lines may interleave in torchrun's merged output).
    assert result.stdout.count(expected) == 2 and "rank 0: " in result.stdout and "rank 1: " in result.stdout, \
        result.stdout
